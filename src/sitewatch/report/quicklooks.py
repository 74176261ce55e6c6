"""Quicklook PNGs of a run: true colour before/after, score heat map, overlay and chips.

Every image is drawn in pixel coordinates of the analysis grid (``imshow`` extent =
the pixel grid), carries a title with the AOI and the date(s), a scale bar in metres
or kilometres and a north arrow ("image up" for images without a CRS). Figures are
drawn with Pillow (:mod:`sitewatch.report.canvas`): no display, no global state.

=====================  ======================================================
``before.png``          true colour before (shared stretch with after)
``after.png``           true colour after
``score.png``           change score heat map; the threshold marked on the bar
``overlay.png``         after (or the score) with every polygon outlined and named
``chips/<id>_*.png``    a cut-out around each polygon, before and after
=====================  ======================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
from affine import Affine
from PIL import Image

from sitewatch.report.canvas import Figure, colormap_rgb
from sitewatch.report.run import RunData

__all__ = [
    "OUTLINE_COLOR",
    "place_labels",
    "render_chips",
    "render_quicklooks",
    "render_thumbs",
    "stretch_rgb",
]

#: Colour of polygon outlines and ids (cyan: rare in true colour and in 'magma').
OUTLINE_COLOR = "#00e5ff"
#: Colour of unobserved pixels (NaN) in every image.
NODATA_GREY = 0.85
CHIP_MIN_PX = 160
CHIP_MAX_PX = 640
STRETCH_SAMPLE = 1 << 20
"""Pixels per image the display stretch's percentiles are taken from (a regular grid)."""
STRETCH_PERCENTILES = (2.0, 98.0)
"""Percentiles of the true-colour stretch mapped to black and white."""

# --------------------------------------------------------------------------- arrays


def stretch_rgb(
    before: np.ndarray | None,
    after: np.ndarray | None,
    *,
    percentiles: tuple[float, float] = STRETCH_PERCENTILES,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Stretch two true-colour images with one shared per-band percentile stretch.

    The low and high percentiles of each band are computed over the finite pixels of
    *both* images together, so the same colour means the same reflectance before and
    after.

    Parameters
    ----------
    before, after : (3, H, W) ndarray or None
        Red, green, blue (reflectance or DN), NaN where unobserved.
    percentiles : (float, float), optional
        Low and high percentile mapped to 0 and 1.

    Returns
    -------
    before, after : (H, W, 3) float32 ndarray or None
        Values in 0..1; pixels with a NaN band are light grey (0.85). A band without
        contrast (constant, or no finite pixel) maps to 0.5. None stays None.

    Raises
    ------
    ValueError
        If an image is not (3, H, W), the two shapes differ, or ``percentiles`` is
        not 0 <= low < high <= 100.

    Examples
    --------
    >>> a = np.array([0.0, 1.0]).reshape(1, 1, 2).repeat(3, axis=0)
    >>> b = np.array([1.0, 2.0]).reshape(1, 1, 2).repeat(3, axis=0)
    >>> sa, sb = stretch_rgb(a, b, percentiles=(0, 100))
    >>> sa.shape
    (1, 2, 3)
    >>> sa[0, :, 0], sb[0, :, 0]  # 1.0 is mid-grey in both images
    (array([0. , 0.5], dtype=float32), array([0.5, 1. ], dtype=float32))
    >>> stretch_rgb(np.full((3, 1, 1), np.nan), None)[0][0, 0]
    array([0.85, 0.85, 0.85], dtype=float32)
    """
    lo_p, hi_p = (float(p) for p in percentiles)
    if not 0 <= lo_p < hi_p <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
    images = [None if im is None else np.asarray(im, dtype=np.float32) for im in (before, after)]
    shapes = {im.shape for im in images if im is not None}
    for name, im in zip(("before", "after"), images, strict=True):
        if im is not None and (im.ndim != 3 or im.shape[0] != 3):
            raise ValueError(f"{name} must be a (3, H, W) array, got shape {im.shape}")
    if len(shapes) > 1:
        raise ValueError(f"after shape {images[1].shape} != before {images[0].shape}")  # type: ignore[union-attr]
    present = [im for im in images if im is not None]
    if not present:
        return None, None

    limits = _stretch_limits(present, (lo_p, hi_p))
    out = [None if im is None else _apply_stretch(im, limits) for im in images]
    return out[0], out[1]


def _stretch_limits(
    present: Sequence[np.ndarray], percentiles: tuple[float, float]
) -> list[tuple[float, float]]:
    """Per-band (low, high) display limits over the finite pixels of all ``present``."""
    limits = []
    # Percentiles of a display stretch need no more than about a million pixels: a
    # regular subsample of larger images (every pixel of smaller ones).
    step = max(1, math.ceil(math.sqrt(present[0][0].size / STRETCH_SAMPLE)))
    for band in range(3):
        values = np.concatenate(
            [v[np.isfinite(v)] for v in (im[band][::step, ::step] for im in present)]
        )
        if values.size:
            lo, hi = np.percentile(values, list(percentiles))
        else:
            lo = hi = 0.0
        limits.append((float(lo), float(hi)))
    return limits


def _apply_stretch(im: np.ndarray, limits: Sequence[tuple[float, float]]) -> np.ndarray:
    """(3, H, W) -> (H, W, 3) float32 in 0..1 with ``limits``; NaN pixels grey."""
    rgb = np.empty((*im.shape[1:], 3), dtype=np.float32)
    for band, (lo, hi) in enumerate(limits):
        data = im[band]
        if hi > lo:
            rgb[..., band] = np.clip((data - lo) / (hi - lo), 0.0, 1.0)
        else:
            rgb[..., band] = 0.5
    rgb[~np.isfinite(im).all(axis=0)] = NODATA_GREY
    return rgb


class _Stretched:
    """A true-colour image stretched on demand, one window at a time.

    ``image[rows, cols]`` is the ``(h, w, 3)`` result of :func:`stretch_rgb` for that
    window.
    Chips and thumbnails show small windows of a large image; stretching only those
    keeps their pixels identical at a fraction of the cost (two stretches of a whole
    2048 px pair took 0.45 s of a report).
    """

    def __init__(self, raw: np.ndarray, limits: Sequence[tuple[float, float]]) -> None:
        self.raw = raw
        self.limits = limits
        self.shape = (*raw.shape[1:], 3)
        self.ndim = 3

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows, cols = key
        return _apply_stretch(np.asarray(self.raw[:, rows, cols], dtype=np.float32), self.limits)


_RUN_LIMITS: WeakKeyDictionary[RunData, list[tuple[float, float]]] = WeakKeyDictionary()


def _run_limits(run: RunData) -> list[tuple[float, float]] | None:
    """The shared stretch of a run's before and after images (None without either).

    Computed once per run: the quicklooks, the chips and the thumbnails all use it.
    """
    present = [im for im in (run.before_rgb, run.after_rgb) if im is not None]
    if not present:
        return None
    limits = _RUN_LIMITS.get(run)
    if limits is None:
        limits = _stretch_limits(
            [np.asarray(im, dtype=np.float32) for im in present], STRETCH_PERCENTILES
        )
        _RUN_LIMITS[run] = limits
    return limits


def _stretched(run: RunData) -> list[tuple[str, _Stretched]]:
    """The run's before and after images (those it has), stretched lazily as one pair."""
    named = (("before", run.before_rgb), ("after", run.after_rgb))
    present = [(n, im) for n, im in named if im is not None]
    limits = _run_limits(run)
    if limits is None:
        return []
    return [(n, _Stretched(im, limits)) for n, im in present]


def _score_limits(score: np.ndarray, threshold: float | None) -> tuple[float, float]:
    """Colour range of the score: 0 (or p1) to 2x threshold (or p99)."""
    finite = score[np.isfinite(score)]
    if finite.size == 0:
        return 0.0, 1.0
    p1, p99 = (float(v) for v in np.percentile(finite, [1, 99]))
    vmin = min(0.0, p1)
    if threshold is not None and math.isfinite(threshold) and threshold > vmin:
        vmax = vmin + 2 * (threshold - vmin)
    else:
        vmax = p99
    if not vmax > vmin:
        vmax = vmin + 1.0
    return vmin, vmax


def _threshold(run: RunData) -> float | None:
    thr = run.meta.get("threshold")
    value = thr.get("value") if isinstance(thr, dict) else thr
    try:
        value = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------------- geometry


def _feature_id(feature: dict[str, Any], index: int) -> str:
    props = feature.get("properties") or {}
    return str(props.get("id") or feature.get("id") or f"c{index:03d}")


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text) or "feature"


def _chip_window(
    run: RunData, feature: dict[str, Any], pad_px: int
) -> tuple[list[np.ndarray], tuple[int, int, int, int]] | None:
    """A polygon's pixel rings and its bounding box plus ``pad_px``, clipped to the grid.

    ``(rings, (r0, r1, c0, c1))``, or None for a polygon outside the grid.
    """
    rings = _pixel_rings(run, feature.get("geometry"))
    if not rings:
        return None
    h, w = run.shape
    pts = np.concatenate(rings)
    c0 = max(0, math.floor(float(pts[:, 0].min())) - pad_px)
    c1 = min(w, math.ceil(float(pts[:, 0].max())) + pad_px)
    r0 = max(0, math.floor(float(pts[:, 1].min())) - pad_px)
    r1 = min(h, math.ceil(float(pts[:, 1].max())) + pad_px)
    if c1 <= c0 or r1 <= r0:
        return None
    return rings, (r0, r1, c0, c1)


def _pixel_rings(run: RunData, geometry: dict[str, Any] | None) -> list[np.ndarray]:
    """Every ring of a (Multi)Polygon as an (N, 2) array of (col, row)."""
    if not geometry:
        return []
    kind = geometry.get("type")
    coords = geometry.get("coordinates") or []
    if kind == "Polygon":
        polygons = [coords]
    elif kind == "MultiPolygon":
        polygons = coords
    else:
        return []
    rings = []
    for polygon in polygons:
        for ring in polygon:
            xy = np.asarray(ring, dtype=np.float64)
            if xy.ndim != 2 or xy.shape[0] < 2:
                continue
            col, row = run.lonlat_to_pixel(xy[:, 0], xy[:, 1])  # type: ignore[arg-type]
            rings.append(np.column_stack([col, row]))
    return rings


# --------------------------------------------------------------------------- layout


def _nice_length(target: float) -> float:
    """Largest 1, 2 or 5 x 10^n not above ``target`` (0 if ``target`` is not positive)."""
    if not (math.isfinite(target) and target > 0):
        return 0.0
    exp = math.floor(math.log10(target))
    for m in (5, 2, 1):
        value = m * 10.0**exp
        if value <= target * (1 + 1e-9):
            return value
    return 10.0**exp


def _format_length(metres: float) -> str:
    if metres >= 1000:
        return f"{metres / 1000:g} km"
    return f"{metres:g} m"


def _page(shape: tuple[int, int], title: str, *, dpi: int, colorbar: bool = False) -> Figure:
    """Figure for a full-grid quicklook: at most ~7 x 6.3 inches (770 px wide at 110 dpi)."""
    h, w = shape
    right = 1.1 * dpi if colorbar else 0.0
    max_w = 7.0 * dpi - 0.2 * dpi - right
    max_h = 6.3 * dpi
    scale = min(max_w / w, max_h / h)
    return Figure((w * scale, h * scale), title, dpi=dpi, right_px=right, min_width_in=3.2)


def _scale_bar(fig: Figure, *, pixel_size_m: float, fraction: float) -> None:
    """A round-length scale bar of about ``fraction`` of the image width."""
    if not (math.isfinite(pixel_size_m) and pixel_size_m > 0):
        return
    x0, x1 = fig.view[:2]
    length = _nice_length(round(abs(x1 - x0)) * pixel_size_m * fraction)
    if length <= 0:
        return
    fig.scale_bar(length_px=length / pixel_size_m / fig.per_px, text=_format_length(length))


def _decorate(fig: Figure, run: RunData, *, scale_fraction: float = 0.2) -> None:
    _scale_bar(fig, pixel_size_m=run.pixel_size_m, fraction=scale_fraction)
    fig.north_arrow(georeferenced=run.crs is not None)


def _outline(
    fig: Figure, rings: Sequence[np.ndarray], *, offset: tuple[float, float] = (0.0, 0.0)
) -> None:
    fig.lines(rings, color=OUTLINE_COLOR, width_pt=1.8, halo_pt=3.2, offset=offset)


_ENCODER: ContextVar[tuple[ThreadPoolExecutor, list[Future[None]]] | None] = ContextVar(
    "sitewatch_png_encoder", default=None
)


@contextmanager
def background_png() -> Iterator[None]:
    """PNGs of :func:`_save` are encoded on two more threads until the block ends.

    Pillow encodes without the GIL, so the encoding of one figure overlaps the drawing
    of the next (two encoders: the report drew 44 figures in 0.55 s instead of 0.61 s).
    Every PNG is on disk when the block exits; the first error raised by an encoding is
    raised there.
    """
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sitewatch-png")
    pending: list[Future[None]] = []
    token = _ENCODER.set((pool, pending))
    try:
        yield
    finally:
        _ENCODER.reset(token)
        pool.shutdown(wait=True)
    for job in pending:
        job.result()


def _write_png(rgb: np.ndarray, path: Path) -> None:
    # zlib level 1: 2.7x faster than Pillow's default 6 on the 44 PNGs of a 2048 px
    # run (0.99 -> 0.36 s), 12 % larger.
    Image.fromarray(rgb).save(path, format="PNG", compress_level=1)


def _emit_png(rgb: np.ndarray, path: Path) -> Path:
    """Write an RGB array as a PNG; inside :func:`background_png`, on its threads."""
    encoder = _ENCODER.get()
    if encoder is None:
        _write_png(rgb, path)
    else:
        pool, pending = encoder
        pending.append(pool.submit(_write_png, rgb, path))
    return path


def _save(fig: Figure, path: Path) -> Path:
    """Write the figure as an opaque RGB PNG (see :func:`_emit_png`)."""
    return _emit_png(fig.rgb(), path)


def _aoi(run: RunData) -> str:
    # Never the folder's name: while the report is drawn that is a temporary name.
    return str(run.meta.get("aoi_name") or run.meta.get("aoi") or "overlap of the images")


def _span(run: RunData) -> str:
    return f"{run.before_label} → {run.after_label}"


# ---------------------------------------------------------------------------- pages


def _rgb_page(run: RunData, rgb: np.ndarray, title: str, path: Path, *, dpi: int) -> Path:
    fig = _page(run.shape, title, dpi=dpi)
    fig.show(rgb, upsampled=fig.size[0] >= rgb.shape[1])
    _decorate(fig, run)
    return _save(fig, path)


def _score_page(run: RunData, path: Path, *, dpi: int) -> Path:
    thr = _threshold(run)
    limits = _score_limits(run.score, thr)
    title = f"{_aoi(run)} · change score {_span(run)}"
    fig = _page(run.shape, title, dpi=dpi, colorbar=True)
    fig.show(_Mapped(run.score, *limits)[:, :], upsampled=fig.size[0] >= run.shape[1])
    finite = run.score[np.isfinite(run.score)]
    method = run.meta.get("method")
    label = "change score" + (f" ({method})" if method else "")
    if thr is not None:
        label += f"\nthreshold {thr:.3g}"
    fig.colorbar(
        limits[0],
        limits[1],
        extend_max=bool(finite.size and float(finite.max()) > limits[1]),
        label=label,
        mark=thr,
        mark_color=OUTLINE_COLOR,
    )
    _decorate(fig, run)
    return _save(fig, path)


Rect = tuple[float, float, float, float]
"""(x0, y0, x1, y1): x to the right, y down (image rows)."""


def _candidates(box: Rect, size: tuple[float, float], d: float) -> list[Rect]:
    """Label rectangles around ``box`` at distance ``d``: right, above, below, left."""
    bx0, by0, bx1, by1 = box
    lw, lh = size
    cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
    out = []
    for x0 in (bx1 + d, bx0 - d - lw):  # right, left
        for y0 in (by0 - lh, cy - lh / 2, by1):
            out.append((x0, y0, x0 + lw, y0 + lh))
    for y0 in (by0 - d - lh, by1 + d):  # above, below
        for x0 in (bx0, cx - lw / 2, bx1 - lw):
            out.append((x0, y0, x0 + lw, y0 + lh))
    return out


def place_labels(
    boxes: Sequence[Rect],
    sizes: Sequence[tuple[float, float]],
    bounds: tuple[float, float],
    *,
    obstacles: Sequence[Rect] = (),
    gap: float = 1.0,
    rings: int = 40,
) -> list[Rect | None]:
    """Greedy label placement: no two labels overlap, none leaves the image.

    Labels are placed in the order given (largest polygon first, so ``c001`` always
    gets its place), each at the first free spot around its polygon's box, trying
    ever larger distances: next to the polygon when there is room, farther out (the
    caller draws a leader line) when its neighbours are crowded.

    Parameters
    ----------
    boxes : sequence of (x0, y0, x1, y1)
        Bounding box of each polygon, in image pixels (y down).
    sizes : sequence of (width, height)
        Size of each label in the same units.
    bounds : (width, height)
        The image; labels stay inside it.
    obstacles : sequence of (x0, y0, x1, y1)
        Areas no label may cover (north arrow, scale bar).
    gap : float
        Distance between a polygon and an adjacent label.
    rings : int
        Number of ever larger distances tried (steps of one label height).

    Returns
    -------
    list of (x0, y0, x1, y1) or None
        The label rectangle of each polygon; None only when no free spot was found.

    Examples
    --------
    >>> place_labels([(10, 10, 20, 20), (10, 10, 20, 20)], [(8, 4), (8, 4)], (100, 100))
    [(21.0, 6.0, 29.0, 10.0), (21.0, 13.0, 29.0, 17.0)]
    """
    width, height = bounds
    all_boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    taken = np.empty((len(boxes) + len(obstacles), 4), dtype=np.float64)
    n_taken = len(obstacles)
    taken[:n_taken] = np.asarray(obstacles, dtype=np.float64).reshape(-1, 4)
    out: list[Rect | None] = []
    for box, size in zip(boxes, sizes, strict=True):
        # Every candidate of every ring at once, in the order the greedy search tries
        # them; the first free one of least cost wins (the first free one that hides no
        # outline, when there is one), as in a loop over rings and candidates.
        cands = np.array(
            [_candidates(box, size, gap + k * size[1]) for k in range(rings)], dtype=np.float64
        ).reshape(-1, 4)
        ok = (cands[:, 0] >= 0) & (cands[:, 1] >= 0) & (cands[:, 2] <= width)
        ok &= cands[:, 3] <= height
        cands = cands[ok]
        if n_taken and cands.size:
            cands = cands[~(_overlaps(cands, _near(taken[:n_taken], cands)) > 0).any(axis=1)]
        if not cands.size:
            out.append(None)
            continue
        # Summed left to right (cumsum), as Python's sum did: equal costs stay equal.
        near = _near(all_boxes, cands)
        cost = (
            np.cumsum(_overlaps(cands, near), axis=1)[:, -1] if near.size else np.zeros(len(cands))
        )
        best = tuple(float(v) for v in cands[int(np.argmin(cost))])
        taken[n_taken] = best
        n_taken += 1
        out.append(best)  # type: ignore[arg-type]
    return out


def _near(rects: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """The rectangles that overlap the candidates' bounding box (the others add 0)."""
    x0, y0 = cands[:, 0].min(), cands[:, 1].min()
    x1, y1 = cands[:, 2].max(), cands[:, 3].max()
    hit = (rects[:, 0] < x1) & (rects[:, 2] > x0) & (rects[:, 1] < y1) & (rects[:, 3] > y0)
    return rects[hit]


def _overlaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Overlap areas (len(a), len(b)) of two arrays of rectangles (0 where apart)."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.where((w > 0) & (h > 0), w * h, 0.0)


def _gap(box: Rect, rect: Rect) -> float:
    dx = max(box[0] - rect[2], rect[0] - box[2], 0.0)
    dy = max(box[1] - rect[3], rect[1] - box[3], 0.0)
    return math.hypot(dx, dy)


def _nearest(rect: Rect, x: float, y: float) -> tuple[float, float]:
    return min(max(x, rect[0]), rect[2]), min(max(y, rect[1]), rect[3])


def _overlay_figure(run: RunData, rgb: np.ndarray | None, *, dpi: int) -> Figure:
    """The overlay drawn (not saved): outlines and ids placed by :func:`place_labels`."""
    n = sum(1 for f in run.features if f.get("geometry"))
    what = "after" if rgb is not None else "score"
    title = f"{_aoi(run)} · {n} change polygon{'s' if n != 1 else ''} on {what}, {_span(run)}"
    fig = _page(run.shape, title, dpi=dpi)
    upsampled = fig.size[0] >= run.shape[1]
    if rgb is not None:
        fig.show(rgb, upsampled=upsampled)
    else:
        score = _Mapped(run.score, *_score_limits(run.score, _threshold(run)))
        fig.show(score[:, :], upsampled=upsampled)
    h, w = run.shape
    per_px = fig.per_px  # grid pixels per figure pixel
    per_pt = per_px * fig.pt
    drawn = []
    for i, feature in enumerate(run.features, start=1):
        rings = _pixel_rings(run, feature.get("geometry"))
        if not rings:
            continue
        _outline(fig, rings)
        pts = np.concatenate(rings)
        box = (
            float(pts[:, 0].min()),
            float(pts[:, 1].min()),
            float(pts[:, 0].max()),
            float(pts[:, 1].max()),
        )
        text = _feature_id(feature, i)
        tw, th = fig.text_size(text, size_pt=7, bold=True, halo_pt=2.0)
        drawn.append((box, text, (tw * per_px + per_pt, th * per_px + per_pt)))
    # the north arrow (top right) and the scale bar (bottom left) stay uncovered
    obstacles = [
        (w - 34 * per_pt, 0.0, float(w), 48 * per_pt),
        (0.0, h - 30 * per_pt, 150 * per_pt, float(h)),
    ]
    rects = place_labels(
        [d[0] for d in drawn],
        [d[2] for d in drawn],
        (w, h),
        obstacles=obstacles,
        gap=1.5 * per_pt,
    )
    leaders = []
    for (box, text, _), rect in zip(drawn, rects, strict=True):
        if rect is None:
            fig.label(None, text, color=OUTLINE_COLOR, size_pt=7, bold=True, halo_pt=2.0)
            continue
        if _gap(box, rect) > 4 * per_pt:  # not beside its polygon: a leader line
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            lx, ly = _nearest(rect, cx, cy)
            bx, by = _nearest(box, lx, ly)
            leaders.append(np.array([[bx, by], [lx, ly]]))
    fig.lines(leaders, color=OUTLINE_COLOR, width_pt=0.8, halo_pt=1.8)
    for (_, text, _), rect in zip(drawn, rects, strict=True):
        if rect is not None:
            x, y = fig.to_panel(rect[0] + per_pt / 2, rect[1] + per_pt / 2)
            fig.label(
                (float(x), float(y)), text, color=OUTLINE_COLOR, size_pt=7, bold=True, halo_pt=2.0
            )
    _decorate(fig, run)
    return fig


def _overlay_page(run: RunData, rgb: np.ndarray | None, path: Path, *, dpi: int) -> Path:
    return _save(_overlay_figure(run, rgb, dpi=dpi), path)


QUICKLOOK_MAX_PX = 1600
"""Grids larger than this (pixels a side) are decimated before drawing: the PNGs are
about 770 px wide (matplotlib, which drew them before Pillow, took seconds to resample a
2048 px grid)."""


def _decimated(run: RunData, max_px: int) -> RunData:
    """``run`` with its arrays strided so the longer side is at most ``max_px``.

    The copy shares ``run``'s true-colour stretch (:func:`_run_limits`).
    """
    import dataclasses

    f = -(-max(run.shape) // max_px)
    if f <= 1:
        return run

    def cut(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[..., ::f, ::f]

    small = dataclasses.replace(
        run,
        score=cut(run.score),
        mask=cut(run.mask),
        before_rgb=cut(run.before_rgb),
        after_rgb=cut(run.after_rgb),
        transform=run.transform @ Affine.scale(f),
        pixel_size_m=run.pixel_size_m * f,
    )
    # One stretch for every picture of the run: the quicklooks take the whole run's
    # (its percentiles were also computed a second time, on the strided copy).
    if (limits := _run_limits(run)) is not None:
        _RUN_LIMITS[small] = limits
    return small


def render_quicklooks(run: RunData, out_dir: Path, *, dpi: int = 110) -> dict[str, Path]:
    """Write ``before.png``, ``after.png``, ``score.png`` and ``overlay.png``.

    Before and after share one percentile stretch (:func:`stretch_rgb`). The overlay
    outlines every polygon in :data:`OUTLINE_COLOR` with its id, on the after image,
    or on the score when the run has no RGB. Each image is at most ~770 pixels wide
    at the default ``dpi`` and carries a title, a scale bar and a north arrow.

    Parameters
    ----------
    run : RunData
        A run folder read back by :func:`~sitewatch.report.run.load_run`.
    out_dir : Path
        Folder for the PNGs; created if missing, existing files are replaced.
    dpi : int, optional
        Resolution of the PNGs.

    Returns
    -------
    dict of str to Path
        ``{"before", "after", "score", "overlay"}`` to the files written; ``before``
        and ``after`` are absent when the run has no such RGB image.

    Raises
    ------
    ValueError
        If ``dpi`` is not positive.
    """
    if dpi <= 0:
        raise ValueError(f"dpi must be positive, got {dpi}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = _decimated(run, QUICKLOOK_MAX_PX)
    # stretch_rgb's images, with the stretch the chips and thumbnails share
    layers = dict(_stretched(run))
    before, after = (layers[n][:, :] if n in layers else None for n in ("before", "after"))
    written: dict[str, Path] = {}
    aoi = _aoi(run)
    if before is not None:
        written["before"] = _rgb_page(
            run, before, f"{aoi} · before {run.before_label}", out / "before.png", dpi=dpi
        )
    if after is not None:
        written["after"] = _rgb_page(
            run, after, f"{aoi} · after {run.after_label}", out / "after.png", dpi=dpi
        )
    written["score"] = _score_page(run, out / "score.png", dpi=dpi)
    written["overlay"] = _overlay_page(run, after, out / "overlay.png", dpi=dpi)
    return written


# ---------------------------------------------------------------------------- chips


def _chip_scale(h: int, w: int) -> float:
    scale = CHIP_MIN_PX / min(h, w) if min(h, w) < CHIP_MIN_PX else 1.0
    scale = math.ceil(scale) if scale > 1 else scale
    if max(h, w) * scale > CHIP_MAX_PX:
        scale = CHIP_MAX_PX / max(h, w)
    return scale


class _Mapped:
    """A single-band image shown through a colour map, one window at a time.

    ``image[rows, cols]`` is the ``(h, w, 3)`` uint8 colour of that window: the score
    through magma (the score), or radar backscatter in grey, between ``vmin`` and
    ``vmax``; unobserved pixels grey.
    """

    def __init__(self, raw: np.ndarray, vmin: float, vmax: float, *, grey: bool = False) -> None:
        self.raw, self.vmin, self.vmax, self.grey = raw, vmin, vmax, grey
        self.shape = (*raw.shape, 3)
        self.ndim = 3

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        window = np.asarray(self.raw[key], dtype=np.float32)
        if not self.grey:
            return colormap_rgb(window, self.vmin, self.vmax, bad=NODATA_GREY)
        span = self.vmax - self.vmin if self.vmax > self.vmin else 1.0
        with np.errstate(invalid="ignore"):
            level = np.clip((window - self.vmin) / span, 0.0, 1.0)
        level = np.where(np.isfinite(level), level, NODATA_GREY)
        return np.repeat((level * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=-1)


Layer = tuple[str, Any, str]
"""A chip layer: (name, an image indexable by window giving RGB, date label)."""


def _chips(
    run: RunData,
    layers: Sequence[Layer],
    window: tuple[int, int, int, int],
    rings: Sequence[np.ndarray],
    fid: str,
    folder: Path,
    *,
    dpi: int,
) -> dict[str, Path]:
    """One chip per layer around a feature."""
    r0, r1, c0, c1 = window
    h, w = r1 - r0, c1 - c0
    scale = _chip_scale(h, w)
    written: dict[str, Path] = {}
    for name, image, label in layers:
        fig = Figure((w * scale, h * scale), f"{fid} {name} {label}", dpi=dpi)
        fig.show(image[r0:r1, c0:c1], upsampled=scale >= 1)
        _outline(fig, rings, offset=(c0, r0))
        _decorate(fig, run, scale_fraction=0.3)
        path = folder / f"{_safe_name(fid)}_{_safe_name(name)}.png"
        written[name] = _save(fig, path)
    return written


def render_chips(
    run: RunData,
    out_dir: Path,
    *,
    pad_px: int = 12,
    max_chips: int = 20,
    dpi: int = 110,
) -> dict[str, dict[str, Path]]:
    """Write a before and an after cut-out around each of the largest polygons.

    Each chip covers the polygon's pixel bounding box plus ``pad_px`` (clipped to the
    grid), upsampled with nearest neighbour to at least ~160 pixels on a side, with
    the outline, a title ``"<id> before <date>"`` and a small scale bar. Colours use
    the same shared stretch as the quicklooks. Without RGB, one chip of the score is
    written per polygon instead.

    Parameters
    ----------
    run : RunData
        A run folder read back by :func:`~sitewatch.report.run.load_run`.
    out_dir : Path
        The chips go to ``out_dir / "chips"`` as ``<id>_before.png``,
        ``<id>_after.png`` (or ``<id>_score.png``).
    pad_px : int, optional
        Pixels added around the polygon's bounding box.
    max_chips : int, optional
        Chips are made for the first ``max_chips`` features (sorted by area).
    dpi : int, optional
        Resolution of the PNGs.

    Returns
    -------
    dict of str to dict of str to Path
        ``{id: {"before": path, "after": path}}``, or ``{id: {"score": path}}``
        without RGB. Polygons entirely outside the grid are skipped.

    Raises
    ------
    ValueError
        If ``pad_px`` or ``max_chips`` is negative or ``dpi`` is not positive.
    """
    if pad_px < 0:
        raise ValueError(f"pad_px must be >= 0, got {pad_px}")
    if max_chips < 0:
        raise ValueError(f"max_chips must be >= 0, got {max_chips}")
    if dpi <= 0:
        raise ValueError(f"dpi must be positive, got {dpi}")
    folder = Path(out_dir) / "chips"
    labels = {"before": run.before_label, "after": run.after_label}
    layers: list[Layer] = [(name, image, labels[name]) for name, image in _stretched(run)]
    if not layers:
        layers.append(
            ("score", _Mapped(run.score, *_score_limits(run.score, _threshold(run))), _span(run))
        )
    layers += _radar_layers(run)
    written: dict[str, dict[str, Path]] = {}
    for i, feature in enumerate(run.features[:max_chips], start=1):
        found = _chip_window(run, feature, pad_px)
        if found is None:
            continue
        rings, (r0, r1, c0, c1) = found
        fid = _feature_id(feature, i)
        folder.mkdir(parents=True, exist_ok=True)
        written[fid] = _chips(run, layers, (r0, r1, c0, c1), rings, fid, folder, dpi=dpi)
    return written


def _radar_layers(run: RunData) -> list[Layer]:
    """Chips of radar VV (dB, grey, one shared 2-98 % stretch) beside the optical ones."""
    pair = [a for a in (run.radar_before, run.radar_after) if a is not None]
    if not pair or any(a.shape != run.shape for a in pair):
        return []
    values = np.concatenate([a[np.isfinite(a)] for a in pair])
    if values.size == 0:
        return []
    lo, hi = (float(v) for v in np.percentile(values, (2, 98)))
    dates = ((run.manifest.get("diagnostics") or {}).get("fusion") or {}).get("radar_dates") or []
    out: list[Layer] = []
    for name, image, k in (
        ("radar VV before", run.radar_before, 0),
        ("radar VV after", run.radar_after, -1),
    ):
        if image is not None:
            label = f"{dates[k]} (dB)" if dates else "(dB)"
            out.append((name, _Mapped(image, lo, hi, grey=True), label))
    return out


THUMB_PX = 120
"""Longer side of a compact chip (:func:`render_thumbs`)."""


def render_thumbs(
    run: RunData,
    out_dir: Path,
    features: Sequence[dict[str, Any]],
    *,
    pad_px: int = 6,
    size_px: int = THUMB_PX,
) -> dict[str, dict[str, Path]]:
    """Write small before/after cut-outs (no title, no scale bar) for compact sections.

    A run with many changes shows the largest with full chips (:func:`render_chips`)
    and the rest with these: the polygon's box plus ``pad_px``, scaled with nearest
    neighbour so the longer side is about ``size_px``, the outline drawn in
    :data:`OUTLINE_COLOR`. A few kB each, so hundreds keep the report light.

    Parameters
    ----------
    run : RunData
    out_dir : Path
        The cut-outs go to ``out_dir / "chips"`` as ``<id>_before_small.png`` …
    features : sequence of dict
        The polygons to cut out (GeoJSON Features of ``run``).
    pad_px, size_px : int, optional
        Context around the polygon and output size, in pixels.

    Returns
    -------
    dict of str to dict of str to Path
        ``{id: {"before": path, "after": path}}`` (``{"score": path}`` without RGB).
    """
    from PIL import ImageDraw

    layers: list[tuple[str, Any]] = list(_stretched(run))
    if not layers:
        layers.append(("score", _Mapped(run.score, *_score_limits(run.score, _threshold(run)))))
    folder = Path(out_dir) / "chips"
    written: dict[str, dict[str, Path]] = {}
    for i, feature in enumerate(features, start=1):
        found = _chip_window(run, feature, pad_px)
        if found is None:
            continue
        rings, (r0, r1, c0, c1) = found
        scale = max(1, round(size_px / max(c1 - c0, r1 - r0)))
        fid = _feature_id(feature, i)
        folder.mkdir(parents=True, exist_ok=True)
        written[fid] = {}
        for name, image in layers:
            crop = image[r0:r1, c0:c1]
            if crop.dtype != np.uint8:
                crop = np.clip(crop * 255, 0, 255).astype(np.uint8)
            crop = crop.repeat(scale, axis=0).repeat(scale, axis=1)
            im = Image.fromarray(np.ascontiguousarray(crop))
            draw = ImageDraw.Draw(im)
            for ring in rings:
                xy = [((x - c0) * scale, (y - r0) * scale) for x, y in ring]
                draw.line(xy, fill=(0, 0, 0), width=4)
                draw.line(xy, fill=OUTLINE_COLOR, width=2)
            # Encoded like the figures: Pillow's optimize=True took 21 ms a cut-out (a run
            # of 800 polygons spent half a minute here), zlib level 1 takes 1 ms.
            path = _emit_png(np.asarray(im), folder / f"{_safe_name(fid)}_{name}_small.png")
            written[fid][name] = path
    return written
