"""The detection engine: every method, block by block, in bounded memory, on all cores.

One engine runs every detection, whether the two images are arrays in memory or
rasters larger than memory. The grid is cut into **blocks** of whole rows (a
multiple of :data:`STAT_ROWS`); each stage is a pass over the blocks, run on a pool
of threads (numpy, scipy.ndimage and GDAL release the GIL), with every result
merged in block order, so the outcome does not depend on the block height or the
number of threads:

1. **statistics** (pass): per-band count, mean, M2, min and max of the valid
   pixels of both dates, in fixed chunks of :data:`STAT_ROWS` rows merged in order
   (Chan et al.), and the valid count of every chunk, which numbers the valid
   pixels in row-major order;
2. **fit** (pass, when the method needs one): the IR-MAD transform on the
   pixels at :func:`~sitewatch.detect.irmad.sample_ordinals` (those an in-memory
   IR-MAD draws), and the sample of raw values some methods need;
3. **robust scales** (pass, for methods that standardise by median and MAD): each
   view of the method (and of its smoothed views) at a fixed sample of valid-pixel
   ordinals (:data:`SAMPLE` of them, all when fewer are valid), read with a halo
   wide enough for the Gaussian;
4. **score** (pass): the pixel score and the smoothed score of every block, with
   its halo, written to a sink (an array in memory, a tiled GeoTIFF beside the
   output otherwise), and the threshold rule's sample of scores;
5. **threshold** on that sample;
6. **regions** (passes): threshold, edge rule and opening per block (halo: the
   opening), 8-connected labels per block joined across block edges as a graph,
   regions under the minimum mapping unit dropped;
7. **polygons** (pass): per-region statistics and outlines traced per block and
   dissolved across block edges.

Holding the images in memory is the one-block case of the same passes.
"""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from scipy import ndimage

from sitewatch.detect.chain import resolve_options
from sitewatch.detect.cleanup import STRUCTURE_8
from sitewatch.detect.irmad import IRMADFit, chi2_quantile, irmad_fit, sample_ordinals
from sitewatch.detect.learned import CONTEXT_SIGMA, TEXTURE_SIGMA, LearnedModel, load_model
from sitewatch.detect.methods import (
    EDGE_HALO,
    S2_10M,
    SCORERS,
    SMOOTHS_INSIDE,
    WATER_NDWI,
    _indices,
    _nd,
    _sigmoid,
    band_roles,
    new_edges,
    robust_scale,
    smooth_masked,
    standardise_with,
)
from sitewatch.detect.options import METHODS, SCORE_FLOOR, DetectOptions
from sitewatch.detect.threshold import QUIET_HALO, Threshold, quiet_pixels, threshold_scores

__all__ = [
    "SAMPLE",
    "STAT_ROWS",
    "ArrayReader",
    "ArraySink",
    "BandStats",
    "EngineResult",
    "RasterSink",
    "block_plan",
    "default_threads",
    "run_engine",
    "score_arrays",
    "view_z",
]

STAT_ROWS = 64
"""Rows of a statistics chunk; block heights are multiples of it."""
SAMPLE = 1 << 21
"""Valid pixels the robust scales and the threshold rule see (all when fewer: 1448²)."""
IRMAD_SAMPLE = 200_000
"""Pixels an IR-MAD transform is fitted on (as :func:`~sitewatch.detect.irmad.irmad`)."""
CONTEXT_PX = 3
"""Pixels a region is grown by for its ``clear_fraction``."""

T = TypeVar("T")
R = TypeVar("R")


class Reader(Protocol):
    """The two prepared (co-registered) images, readable by rows."""

    shape: tuple[int, int]
    bands: int

    def read(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(before, after, valid) of rows ``r0:r1``: (B, h, W), (B, h, W), (h, W)."""
        ...


class ArrayReader:
    """Two prepared stacks held in memory, read by rows (the engine's in-memory case)."""

    def __init__(self, before: np.ndarray, after: np.ndarray, valid: np.ndarray) -> None:
        self.before, self.after, self.valid = before, after, valid
        self.shape = (int(valid.shape[0]), int(valid.shape[1]))
        self.bands = int(before.shape[0])

    def read(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(before, after, valid) of rows ``r0:r1`` (views)."""
        return self.before[:, r0:r1], self.after[:, r0:r1], self.valid[r0:r1]


class Sink(Protocol):
    """An (H, W) raster written and read by rows."""

    fill: float

    def write(self, r0: int, rows: np.ndarray) -> None: ...

    def read(self, r0: int, r1: int) -> np.ndarray: ...


class ArraySink:
    """A sink held in memory (the in-memory case)."""

    def __init__(self, shape: tuple[int, int], dtype: Any, fill: float) -> None:
        self.fill = fill
        self.array = np.full(shape, fill, dtype=dtype)

    def write(self, r0: int, rows: np.ndarray) -> None:
        """Store ``rows`` from grid row ``r0``."""
        self.array[r0 : r0 + rows.shape[0]] = rows

    def read(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` (a view)."""
        return self.array[r0:r1]


class RasterSink:
    """A sink in a tiled, uncompressed temporary GeoTIFF (rasters larger than memory)."""

    def __init__(self, path: Path, grid: Any, dtype: str, fill: float) -> None:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        self.fill = fill
        self.path = path
        self._lock = threading.Lock()
        self._w = grid.width
        with warnings.catch_warnings():  # images without a CRS: pixel coordinates
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self._ds = rasterio.open(
                path,
                "w+",
                driver="GTiff",
                width=grid.width,
                height=grid.height,
                count=1,
                dtype=dtype,
                crs=grid.crs,
                transform=grid.transform,
                nodata=fill,
                tiled=True,
                blockxsize=512,
                blockysize=STAT_ROWS if grid.height > STAT_ROWS else 16,
                BIGTIFF="IF_SAFER",
            )

    def write(self, r0: int, rows: np.ndarray) -> None:
        """Store ``rows`` from grid row ``r0``."""
        from rasterio.windows import Window

        with self._lock:
            self._ds.write(rows, 1, window=Window(0, r0, self._w, rows.shape[0]))

    def read(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1``."""
        from rasterio.windows import Window

        with self._lock:
            return self._ds.read(1, window=Window(0, r0, self._w, r1 - r0))

    def close(self) -> None:
        """Flush and close the file (it stays on disk)."""
        self._ds.close()


SinkFactory = Callable[[str, str, float], Sink]


def default_threads() -> int:
    """Threads the engine uses by default: ``SITEWATCH_THREADS``, else every core."""
    env = os.environ.get("SITEWATCH_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return os.cpu_count() or 1


def block_plan(height: int, *, threads: int, rows: int | None = None) -> list[tuple[int, int]]:
    """Row ranges of the blocks: ``rows`` rows (rounded up to :data:`STAT_ROWS`).

    Without ``rows``: one block on one thread, else about four blocks per thread of
    64-1024 rows (enough to keep every thread busy, few enough halos).

    Examples
    --------
    >>> block_plan(200, threads=1)
    [(0, 200)]
    >>> block_plan(200, threads=1, rows=100)
    [(0, 128), (128, 200)]
    """
    if rows is None:
        rows = height if threads <= 1 else min(1024, math.ceil(height / (4 * threads)))
    rows = max(STAT_ROWS, math.ceil(rows / STAT_ROWS) * STAT_ROWS)
    return [(r0, min(height, r0 + rows)) for r0 in range(0, height, rows)]


def _imap(fn: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """``map(fn, items)`` on ``threads`` threads, in order, at most 2 per thread in flight."""
    if threads <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sitewatch") as pool:
        pending: deque[Any] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class BandStats:
    """Per-band statistics of the valid pixels of ``[before; after]`` (2B bands)."""

    n: int
    mean: np.ndarray
    std: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    chunk_counts: np.ndarray

    def varying(self, nb: int) -> list[int]:
        """Bands that vary over the valid pixels on both dates."""
        return [
            i for i in range(nb) if self.hi[i] > self.lo[i] and self.hi[nb + i] > self.lo[nb + i]
        ]


def _chunk_stats(b: np.ndarray, a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(2B, 5) count, mean, M2, min, max of one chunk's valid pixels (float64)."""
    nb = b.shape[0]
    out = np.zeros((2 * nb, 5))
    n = int(v.sum())
    if n == 0:
        return out
    whole = n == v.size
    for i in range(2 * nb):
        band = (b if i < nb else a)[i % nb]
        x = (band.reshape(-1) if whole else band[v]).astype(np.float64)
        if not np.isfinite(x).all():
            name = "before" if i < nb else "after"
            raise ValueError(f"{name} band {i % nb} has non-finite values at valid pixels")
        m = x.mean()
        d = x - m
        out[i] = (n, m, float(np.dot(d, d)), x.min(), x.max())
    return out


def _merge_stats(chunks: list[np.ndarray], counts: np.ndarray) -> BandStats:
    nb2 = chunks[0].shape[0]
    n = np.zeros(nb2)
    mean = np.zeros(nb2)
    m2 = np.zeros(nb2)
    lo = np.full(nb2, np.inf)
    hi = np.full(nb2, -np.inf)
    for c in chunks:
        k = c[:, 0]
        if not k[0]:
            continue
        tot = n + k
        delta = c[:, 1] - mean
        mean = mean + delta * k / tot
        m2 = m2 + c[:, 2] + delta**2 * n * k / tot
        n = tot
        lo = np.minimum(lo, c[:, 3])
        hi = np.maximum(hi, c[:, 4])
    std = np.sqrt(m2 / np.maximum(n, 1))
    return BandStats(int(n[0]), mean, std, lo, hi, counts)


def _finish(score: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.asarray(score, dtype=np.float32).copy()
    if not v.all():
        out[~v] = 0.0
    return out


# --------------------------------------------------------------------------- methods


@dataclass
class _Context:
    """What the passes learn, read by the methods' per-block functions."""

    names: list[str] | None
    nb: int
    stats: BandStats
    fit: IRMADFit | None = None
    keep: list[int] = field(default_factory=list)
    evidence: IRMADFit | None = None
    evidence_keep: list[int] = field(default_factory=list)
    eps: np.ndarray | None = None
    scales: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    lum: tuple[list[int], float, float] | None = None
    """Bands of the ``edges`` luminance and its standard deviation before and after."""
    model: LearnedModel | None = None
    """The ``learned`` method's model."""


def _cva(b: np.ndarray, a: np.ndarray, v: np.ndarray, st: BandStats, idx: list[int]) -> np.ndarray:
    nb = st.mean.size // 2
    ai = [nb + i for i in idx]
    za = standardise_with(a[idx], st.mean[ai], st.std[ai], v)
    zb = standardise_with(b[idx], st.mean[idx], st.std[idx], v)
    # Σ (za - zb)² band by band, in float64 and in band order (numpy's sum over axis 0
    # of the stacked squares adds them in the same order: identical values).
    total = np.zeros(v.shape, dtype=np.float64)
    for i in range(len(idx)):
        d = np.subtract(za[i], zb[i], dtype=np.float64)
        d *= d
        total += d
    return _finish(np.sqrt(total / len(idx)), v)


def _structural(b: np.ndarray, a: np.ndarray, v: np.ndarray, ctx: _Context) -> np.ndarray:
    names = [n.upper() for n in ctx.names] if ctx.names is not None else []
    struct = [names.index(s) for s in S2_10M if s in names]
    if len(struct) < 2:
        struct = list(range(ctx.nb))
    magnitude = _cva(b, a, v, ctx.stats, struct).astype(np.float64)
    roles = band_roles(ctx.names, ctx.nb)
    if {"green", "nir"} <= roles.keys():
        both_water = np.minimum(
            _nd(b, roles["green"], roles["nir"]), _nd(a, roles["green"], roles["nir"])
        )
        magnitude *= 1.0 - _sigmoid(both_water, WATER_NDWI, 0.05)
    return _finish(magnitude, v)


def _luminance_bands(ctx: _Context) -> list[int]:
    """The visible bands (red, green, blue) when named or RGB, else every varying band."""
    roles = band_roles(ctx.names, ctx.nb)
    vis = [roles[r] for r in ("red", "green", "blue") if r in roles]
    return vis if vis else ctx.stats.varying(ctx.nb) or list(range(ctx.nb))


def _luminance(x: np.ndarray, v: np.ndarray, st: BandStats, idx: list[int], off: int) -> np.ndarray:
    """Mean of the standardised bands ``idx`` (statistics at ``off + idx``), 0 if invalid."""
    si = [off + i for i in idx]
    return standardise_with(x[idx], st.mean[si], st.std[si], v).astype(np.float64).mean(axis=0)


def _luminance_std(z: np.ndarray, st: BandStats, idx: list[int], off: int) -> float:
    """Standard deviation of :func:`_luminance` over the fit sample ``z`` (2B, n); 1 if 0."""
    si = [off + i for i in idx]
    std = np.where(st.std[si] > 0, st.std[si], 1.0)
    lum = ((z[si] - st.mean[si, None]) / std[:, None]).mean(axis=0)
    return float(lum.std()) or 1.0


def _luminances(
    b: np.ndarray, a: np.ndarray, v: np.ndarray, ctx: _Context
) -> tuple[np.ndarray, np.ndarray]:
    """The luminance of each date (:attr:`_Context.lum`), in units of its own std."""
    assert ctx.lum is not None
    idx, sd_b, sd_a = ctx.lum
    lb = _luminance(b, v, ctx.stats, idx, 0) / sd_b
    la = _luminance(a, v, ctx.stats, idx, ctx.nb) / sd_a
    return lb, la


def _edges(b: np.ndarray, a: np.ndarray, v: np.ndarray, ctx: _Context) -> np.ndarray:
    return _finish(new_edges(*_luminances(b, a, v, ctx)), v)


def _chroma(x: np.ndarray, v: np.ndarray, idx: list[int], scale: float) -> np.ndarray:
    """Each visible band over their sum (values below 0 taken as 0), (len(idx), H, W)."""
    c = np.clip(x[idx].astype(np.float64), 0.0, None)
    return c / (c.sum(axis=0) + scale) * v


def _local_std(x: np.ndarray, sigma: float) -> np.ndarray:
    m = ndimage.gaussian_filter(x, sigma)
    return np.sqrt(np.maximum(ndimage.gaussian_filter(x * x, sigma) - m * m, 0.0))


def _learned(b: np.ndarray, a: np.ndarray, v: np.ndarray, ctx: _Context) -> list[np.ndarray]:
    """The views of :data:`sitewatch.detect.learned.FEATURES`, in that order."""
    assert ctx.fit is not None and ctx.lum is not None
    st, nb = ctx.stats, ctx.nb
    idx = ctx.lum[0]
    chi2 = _finish(_chi2(b, a, v, ctx.fit, ctx.keep), v)
    cva = _cva(b, a, v, st, ctx.keep)
    lb, la = _luminances(b, a, v, ctx)
    dlum = _finish(la - lb, v)
    if len(idx) >= 3:
        # the sum's own scale keeps dark pixels from dividing by ~0
        eps_b = 0.01 * abs(float(st.mean[idx].sum())) + 1e-12
        eps_a = 0.01 * abs(float(st.mean[[nb + i for i in idx]].sum())) + 1e-12
        cb, ca = _chroma(b, v, idx, eps_b), _chroma(a, v, idx, eps_a)
        chroma = _finish(np.sqrt(((ca - cb) ** 2).sum(axis=0)), v)
    else:  # one or two visible bands: no colour to compare
        chroma = np.zeros(v.shape, dtype=np.float32)
    edges = _finish(new_edges(lb, la), v)
    texture = _finish(
        np.log(_local_std(la, TEXTURE_SIGMA) + 0.05) - np.log(_local_std(lb, TEXTURE_SIGMA) + 0.05),
        v,
    )
    ctx_views = [smooth_masked(x, v, CONTEXT_SIGMA) for x in (chi2, cva, dlum, edges)]
    return [chi2, cva, dlum, _finish(la, v), _finish(lb, v), chroma, edges, texture, *ctx_views]


def _chi2(
    b: np.ndarray, a: np.ndarray, v: np.ndarray, fit: IRMADFit, keep: list[int]
) -> np.ndarray:
    """The χ² of a fitted IR-MAD transform at the valid pixels (0 elsewhere)."""
    out = np.zeros(v.shape, dtype=np.float32)
    flat = np.flatnonzero(v)
    if not flat.size:
        return out
    nk = len(keep)
    bb = b[keep].reshape(nk, -1)
    aa = a[keep].reshape(nk, -1)
    step = 1 << 16
    o = out.reshape(-1)
    dense = flat.size == o.size  # every pixel valid: contiguous slices, no gather
    for s0 in range(0, flat.size, step):
        idx = slice(s0, s0 + step) if dense else flat[s0 : s0 + step]
        z = np.concatenate([bb[:, idx], aa[:, idx]]).astype(np.float64)
        o[idx] = fit.chi2(z)
    return out


def _views(
    method: str, b: np.ndarray, a: np.ndarray, v: np.ndarray, ctx: _Context
) -> list[np.ndarray]:
    """The per-pixel views a method combines (before any robust scaling)."""
    st = ctx.stats
    if method == "cva":
        return [_cva(b, a, v, st, list(range(ctx.nb)))]
    if method == "diff":
        nb = ctx.nb
        d = np.abs(
            standardise_with(a, st.mean[nb:], st.std[nb:], v)
            - standardise_with(b, st.mean[:nb], st.std[:nb], v)
        )
        return [_finish(d.mean(axis=0), v)]
    if method == "structural":
        return [_structural(b, a, v, ctx)]
    if method in ("irmad", "mad"):
        assert ctx.fit is not None
        return [_finish(_chi2(b, a, v, ctx.fit, ctx.keep), v)]
    if method == "construction":
        assert ctx.fit is not None
        return [_structural(b, a, v, ctx), np.sqrt(_finish(_chi2(b, a, v, ctx.fit, ctx.keep), v))]
    if method == "edges":
        assert ctx.fit is not None
        return [_finish(_chi2(b, a, v, ctx.fit, ctx.keep), v), _edges(b, a, v, ctx)]
    if method == "learned":
        return _learned(b, a, v, ctx)
    if method == "ratio":
        assert ctx.eps is not None
        eps = ctx.eps[:, None, None]
        bf, af = b.astype(np.float64), a.astype(np.float64)
        return list(np.log((np.abs(af) + eps) / (np.abs(bf) + eps)))
    if method in SCORERS and method not in BUILT_IN:  # a registered scorer: one block
        return [SCORERS[method](b, a, v, band_names=ctx.names)]
    if method == "index":
        roles = band_roles(ctx.names, ctx.nb)
        ib, ia = _indices(b, roles), _indices(a, roles)
        if not ib:
            ib = {"brightness": b.astype(np.float64).mean(axis=0)}
            ia = {"brightness": a.astype(np.float64).mean(axis=0)}
        return [ia[k] - ib[k] for k in ib]
    raise ValueError(f"unknown method {method!r}")


BUILT_IN = frozenset(METHODS)
"""Methods the engine scores block by block. A scorer registered in
:data:`~sitewatch.detect.methods.SCORERS` under another name may use whole-image
statistics, so it runs as one block."""

ROBUST = {"construction": 0.0, "ratio": 0.01, "index": 0.0, "edges": 0.0, "learned": 0.0}
"""Methods whose views are standardised by median and MAD (value: the least scale)."""
OWN_CHI2 = frozenset({"irmad", "edges", "learned"})
"""Methods whose (first) view is the IR-MAD χ²: it doubles as the ``p_no_change``
evidence, with no second transform."""
VIEW_HALO = {"edges": EDGE_HALO, "learned": EDGE_HALO + int(4.0 * CONTEXT_SIGMA + 0.5)}
"""Rows of context a method's views need (methods smoothing inside: the smoothing's)."""


def _rz(x: np.ndarray, med: float, scale: float, v: np.ndarray) -> np.ndarray:
    out = ((x - med) / scale).astype(np.float32)
    if not v.all():
        out[~v] = 0.0
    return out


def _combine(
    method: str, z: list[np.ndarray], v: np.ndarray, model: LearnedModel | None = None
) -> np.ndarray:
    if method == "learned":
        assert model is not None
        return _finish(model.probability(z), v)
    if method == "construction":
        za, zb = (np.clip(x, 0, None) for x in z)
        return _finish(np.sqrt(za * zb), v)
    if method == "edges":
        return _finish(z[0].astype(np.float64) + z[1], v)
    zz = np.stack(z).astype(np.float64)
    return _finish(np.sqrt((zz**2).mean(axis=0)), v)


def _pixel_and_score(
    method: str, b: np.ndarray, a: np.ndarray, v: np.ndarray, ctx: _Context, smooth: float
) -> tuple[np.ndarray, np.ndarray]:
    """(pixel score, smoothed score) of a block read with its halo (a method of one view).

    Methods in :data:`ROBUST` keep their views in sinks and go through
    :func:`_scores_from_views` instead.
    """
    pixel = _views(method, b, a, v, ctx)[0]
    return pixel, smooth_masked(pixel, v, smooth) if smooth > 0 else pixel


def _scores_from_views(
    method: str, views: list[np.ndarray], v: np.ndarray, ctx: _Context, smooth: float
) -> tuple[np.ndarray, np.ndarray]:
    """(pixel score, smoothed score) from the kept views (and smoothed views)."""
    k = len(views) // 2 if method in SMOOTHS_INSIDE and smooth > 0 else len(views)
    pixel = _combine(method, [_rz(views[i], *ctx.scales[i], v) for i in range(k)], v, ctx.model)
    if method in SMOOTHS_INSIDE and smooth > 0:
        score = _combine(method, [_rz(views[k + i], *ctx.scales[k + i], v) for i in range(k)], v)
        return pixel, score
    return pixel, smooth_masked(pixel, v, smooth) if smooth > 0 else pixel


def _robust_views(
    method: str, b: np.ndarray, a: np.ndarray, v: np.ndarray, ctx: _Context, smooth: float
) -> list[np.ndarray]:
    views = _views(method, b, a, v, ctx)
    if method in SMOOTHS_INSIDE and smooth > 0:
        views += [smooth_masked(x, v, smooth) for x in views]
    return views


# --------------------------------------------------------------------------- the engine


@dataclass(frozen=True, eq=False)
class EngineResult:
    """What :func:`run_engine` produced: sinks, threshold, diagnostics, polygons.

    Attributes
    ----------
    score, pixel, mask, labels : Sink
        Smoothed score (``fill`` where unobserved), the score before smoothing (None
        without the edge rule), the change mask (1 change, 0 no change, 255
        unobserved) and the final region labels (0 none).
    evidence : Sink or None
        IR-MAD χ² behind ``p_no_change`` (None if IR-MAD cannot run here).
    evidence_dof : int
    threshold : Threshold
    diagnostics : dict
    features : list of dict or None
        Polygons (with ``p_no_change`` and ``clear_fraction``) when a grid was given.
    """

    score: Any
    pixel: Any
    mask: Any
    labels: Any
    evidence: Any
    evidence_dof: int
    threshold: Threshold
    diagnostics: dict[str, Any]
    features: list[dict[str, Any]] | None = None


def _sparse_ordinals(n: int, k: int, seed: int) -> np.ndarray:
    """``k`` sorted ordinals of ``range(n)`` drawn with replacement (all of them if n <= k).

    ``Generator.choice(n, k, replace=False)`` permutes all ``n`` when ``k`` is a few
    per cent of it: 1.2 GB for a 12,000 px square. A threshold or a median needs a
    sample of the distribution, and a few repeated pixels (about k² / 2n) do not
    change it.
    """
    if n <= k:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.integers(0, n, size=k))


class _Ordinals:
    """Which valid pixels of a block (row-major ordinals) a sample takes."""

    def __init__(self, ords: np.ndarray, chunk_counts: np.ndarray) -> None:
        self.ords = ords
        self.start = np.concatenate([[0], np.cumsum(chunk_counts)])

    def in_block(self, r0: int, r1: int, n: int) -> np.ndarray:
        """Ordinals within the block's ``n`` valid pixels (row-major) the sample takes.

        ``n`` is the block's valid count as read now; it equals the statistics pass's
        count, and an ordinal past it (a source that read a row differently) is dropped.
        """
        lo = int(self.start[r0 // STAT_ROWS])
        hi = int(self.start[math.ceil(r1 / STAT_ROWS)])
        i0, i1 = np.searchsorted(self.ords, [lo, hi])
        idx = self.ords[i0:i1] - lo
        return idx[idx < n]


def _floor(method: str, opts: DetectOptions, bands: int) -> float | None:
    """Lowest threshold allowed to the rule, or None.

    3 robust σ for the construction and ``edges`` scores; for IR-MAD and MAD under the
    Kittler rule, the χ² quantile ``chi2_p`` of no change (a pair with no change then gets
    nothing flagged, where a histogram split would cut its noise in two).
    """
    if method in SMOOTHS_INSIDE or method == "edges":
        return SCORE_FLOOR
    if method in ("irmad", "mad") and opts.threshold_rule == "kittler":
        return chi2_quantile(bands, opts.chi2_p)
    return None


def run_engine(
    reader: Reader,
    *,
    band_names: Sequence[str] | None,
    pixel_area_m2: float,
    options: DetectOptions,
    sinks: SinkFactory,
    threads: int | None = None,
    block_rows: int | None = None,
    grid: Any = None,
    evidence: bool = False,
    progress: Callable[[str], None] | None = None,
) -> EngineResult:
    """Score, threshold and clean change, block by block (see the module docstring).

    Parameters
    ----------
    reader : Reader
        The prepared (co-registered, normalised) images.
    band_names : sequence of str, optional
    pixel_area_m2 : float
    options : DetectOptions
    sinks : callable
        ``sinks(name, dtype, fill)`` makes a sink of the grid's shape.
    threads : int, optional
        Threads of the block pool (default :func:`default_threads`); the result does
        not depend on it.
    block_rows : int, optional
        Rows per block (default from :func:`block_plan`); the result does not depend
        on it.
    grid : Grid, optional
        With a grid, polygons are traced (``features``).
    evidence : bool
        Compute the IR-MAD χ² behind each polygon's ``p_no_change``.
    progress : callable, optional
        Receives one line as each pass starts (a long block-wise run says where it is).

    Returns
    -------
    EngineResult

    Raises
    ------
    ValueError
        Too few valid pixels, constant or non-finite bands, an unknown method.
    """
    h, w = reader.shape
    nb = reader.bands
    opts, chain = resolve_options(options, band_names, nb, pixel_area_m2)
    method = opts.method
    threads = threads or default_threads()
    if method not in BUILT_IN:
        if method not in SCORERS:
            raise ValueError(f"unknown method {method!r}; choose from {sorted(SCORERS)}")
        block_rows = h  # a registered scorer may use whole-image statistics
    blocks = block_plan(h, threads=threads, rows=block_rows)
    names = list(band_names) if band_names is not None else None
    diag: dict[str, Any] = {
        "engine": {
            "blocks": len(blocks),
            "block_rows": blocks[0][1] - blocks[0][0],
            "threads": threads,
        }
    }
    if chain is not None:
        diag["chain"] = chain

    t_start = time.perf_counter()

    def step(k: int, what: str) -> None:
        if progress is not None:
            progress(
                f"engine {k}/6: {what} ({len(blocks)} blocks of {diag['engine']['block_rows']} "
                f"rows; {time.perf_counter() - t_start:.0f} s in)"
            )

    def halo_read(r0: int, r1: int, halo: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        a0, a1 = max(0, r0 - halo), min(h, r1 + halo)
        b, a, v = reader.read(a0, a1)
        return b, a, v, r0 - a0

    # 1. Statistics per STAT_ROWS chunk.
    step(1, "band statistics")

    def stats_block(blk: tuple[int, int]) -> list[np.ndarray]:
        r0, r1 = blk
        b, a, v = reader.read(r0, r1)
        return [
            _chunk_stats(b[:, c : c + STAT_ROWS], a[:, c : c + STAT_ROWS], v[c : c + STAT_ROWS])
            for c in range(0, r1 - r0, STAT_ROWS)
        ]

    chunks = [c for part in _imap(stats_block, blocks, threads) for c in part]
    counts = np.array([int(c[0, 0]) for c in chunks], dtype=np.int64)
    st = _merge_stats(chunks, counts)
    if st.n == 0:
        raise ValueError("no valid pixels to score")
    ctx = _Context(names, nb, st)
    if method == "learned":
        ctx.model = load_model(opts.weights)
        diag["learned"] = {
            "model": ctx.model.source,
            "trained_on": list(ctx.model.trained_on),
            "pixels": ctx.model.pixels,
            "cutoff": ctx.model.cutoff,
        }

    # 2. IR-MAD fits (method and evidence) on the in-memory sample; raw samples.
    step(2, "IR-MAD fit on a sample")
    need_fit = method in ("irmad", "mad", "construction", "edges", "learned")
    need_evidence = evidence and method not in OWN_CHI2
    if need_fit or need_evidence or method == "ratio" or opts.threshold_rule == "share":
        ctx.keep = st.varying(nb)
        if need_fit and not ctx.keep:
            raise ValueError("every band is constant over the valid pixels; nothing to compare")
        fit_ords = _Ordinals(sample_ordinals(st.n, IRMAD_SAMPLE, 0), counts)
        rob_ords = (
            _Ordinals(_sparse_ordinals(st.n, SAMPLE, 1), counts) if method == "ratio" else None
        )

        def gather_block(blk: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
            r0, r1 = blk
            b, a, v = reader.read(r0, r1)
            flat = np.flatnonzero(v)
            px = flat[fit_ords.in_block(r0, r1, flat.size)]
            z = np.concatenate([b.reshape(nb, -1)[:, px], a.reshape(nb, -1)[:, px]]).astype(
                np.float64
            )
            raw = None
            if rob_ords is not None:
                ridx = rob_ords.in_block(r0, r1, flat.size)
                raw = np.abs(b.reshape(nb, -1)[:, flat[ridx]].astype(np.float64))
            return z, raw

        parts = list(_imap(gather_block, blocks, threads))
        z = np.concatenate([p[0] for p in parts], axis=1)
        if need_fit:
            if st.n < 2 * len(ctx.keep) + 1:
                raise ValueError(
                    f"{st.n} valid pixels are too few for IR-MAD on {len(ctx.keep)} bands"
                )
            k2 = ctx.keep + [nb + i for i in ctx.keep]
            ctx.fit = irmad_fit(
                z[k2],
                st.mean[k2],
                st.std[k2],
                max_iter=1 if method in ("mad", "construction") else 50,
            )
            if method in ("edges", "learned"):
                idx = _luminance_bands(ctx)
                ctx.lum = (idx, _luminance_std(z, st, idx, 0), _luminance_std(z, st, idx, nb))
            diag["irmad"] = {
                "rho": [round(float(r), 8) for r in ctx.fit.rho],
                "iterations": ctx.fit.iterations,
                "converged": ctx.fit.converged,
                "n_valid": st.n,
                "n_fit": int(z.shape[1]),
            }
        if method in OWN_CHI2:
            ctx.evidence, ctx.evidence_keep = ctx.fit, ctx.keep
        elif (
            (need_evidence or opts.threshold_rule == "share")
            and len(ctx.keep) == nb
            and st.n >= 2 * nb + 1
        ):
            ctx.evidence, ctx.evidence_keep = irmad_fit(z, st.mean, st.std), list(range(nb))
        if method == "ratio":
            raw = np.concatenate([p[1] for p in parts], axis=1)  # type: ignore[misc]
            ctx.eps = np.maximum(np.median(raw, axis=1), 1e-6) * 1e-3
        del parts, z

    smooth = opts.smooth
    shalo = int(4.0 * smooth + 0.5) if smooth > 0 else 0  # scipy's Gaussian radius
    robust_ords = _Ordinals(_sparse_ordinals(st.n, SAMPLE, 1), counts)

    edge = smooth > 0 and opts.edge > 0
    score_sink = sinks("score", "float32", 0.0)
    pixel_sink = sinks("pixel", "float32", 0.0) if edge else None
    mask_sink = sinks("mask", "uint8", 255)
    ev_sink = sinks("evidence", "float32", 0.0) if evidence and ctx.evidence is not None else None
    share = opts.threshold_rule == "share" and opts.threshold is None

    def evidence_of(
        b: np.ndarray,
        a: np.ndarray,
        vc: np.ndarray,
        r0: int,
        idx: np.ndarray,
        own: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Write a block's evidence χ²; P(no change) at the sample (share rule)."""
        if ev_sink is None and not share:
            return None
        assert ctx.evidence is not None
        # IR-MAD's own χ² is the evidence: no second transform
        chi2 = own if own is not None else _chi2(b, a, vc, ctx.evidence, ctx.evidence_keep)
        if ev_sink is not None:
            ev_sink.write(r0, chi2)
        if not share:
            return None
        from scipy import special

        return special.chdtrc(len(ctx.evidence_keep), chi2[vc][idx]).astype(np.float32)

    # 3. Robust scales of the views; the views kept in sinks for the score pass.
    view_sinks: list[Any] = []
    if method in ROBUST:
        step(3, "the method's views and their robust scales")
        halo = shalo if method in SMOOTHS_INSIDE else VIEW_HALO.get(method, 0)
        b1, a1, v1 = reader.read(0, 1)
        n_views = len(_robust_views(method, b1, a1, v1, ctx, smooth))
        view_sinks = [sinks(f"view{i}", "float32", 0.0) for i in range(n_views)]

        def robust_block(blk: tuple[int, int]) -> tuple[list[np.ndarray], np.ndarray | None]:
            r0, r1 = blk
            b, a, v, k0 = halo_read(r0, r1, halo)
            views = _robust_views(method, b, a, v, ctx, smooth)
            core = slice(k0, k0 + r1 - r0)
            vc = v[core]
            idx = robust_ords.in_block(r0, r1, int(vc.sum()))
            for sink, x in zip(view_sinks, views, strict=True):
                sink.write(r0, x[core].astype(np.float32))
            mask_sink.write(r0, np.where(vc, 0, 255).astype(np.uint8))
            own = views[0][core] if method in OWN_CHI2 else None
            pv = evidence_of(b[:, core], a[:, core], vc, r0, idx, own)
            return [x[core][vc][idx] for x in views], pv

        parts = list(_imap(robust_block, blocks, threads))
        floor = ROBUST[method]
        # Medians (np.partition) release the GIL: one view per thread.
        ctx.scales = list(
            _imap(
                lambda i: robust_scale(np.concatenate([s[0][i] for s in parts]), floor),
                range(n_views),
                threads,
            )
        )
        p_parts = [s[1] for s in parts]
        del parts
        diag["views"] = {"robust_scales": [[float(m), float(c)] for m, c in ctx.scales]}

    # 4. Scores to the sinks; the threshold sample.
    step(4, "scores and the threshold")

    def score_block(blk: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
        r0, r1 = blk
        pv = None
        if view_sinks:  # the views are kept: no second read of the images
            halo = 0 if method in SMOOTHS_INSIDE else shalo
            a0, a1 = max(0, r0 - halo), min(h, r1 + halo)
            v = mask_sink.read(a0, a1) != 255
            k0 = r0 - a0
            pixel, score = _scores_from_views(
                method, [s.read(a0, a1) for s in view_sinks], v, ctx, smooth
            )
        else:
            b, a, v, k0 = halo_read(r0, r1, shalo)
            pixel, score = _pixel_and_score(method, b, a, v, ctx, smooth)
        core = slice(k0, k0 + r1 - r0)
        vc = v[core]
        idx = robust_ords.in_block(r0, r1, int(vc.sum()))
        score_sink.write(r0, np.where(vc, score[core], score_sink.fill).astype(np.float32))
        if pixel_sink is not None:
            pixel_sink.write(r0, pixel[core])
        if not view_sinks:
            mask_sink.write(r0, np.where(vc, 0, 255).astype(np.uint8))
            own = pixel[core] if method in OWN_CHI2 else None
            pv = evidence_of(b[:, core], a[:, core], vc, r0, idx, own)
        return score[core][vc][idx], pv

    parts2 = list(_imap(score_block, blocks, threads))
    thr_vals = np.concatenate([p[0] for p in parts2])
    if not view_sinks:
        p_parts = [p[1] for p in parts2]
    p_nc = np.concatenate(p_parts) if share and ctx.evidence is not None else None  # type: ignore[arg-type]
    del parts2, p_parts
    if share and p_nc is None:
        raise ValueError("the share rule needs IR-MAD, which cannot run on these bands")
    floor = _floor(method, opts, nb)
    quiet = None
    if opts.threshold_rule == "precision" and opts.threshold is None and floor is not None:
        # The precision rule's cap: which sampled pixels lie outside dense clusters
        # above the floor (from the finished scores, rows QUIET_HALO either side).
        def quiet_block(blk: tuple[int, int]) -> np.ndarray:
            r0, r1 = blk
            a0, a1 = max(0, r0 - QUIET_HALO), min(h, r1 + QUIET_HALO)
            v = mask_sink.read(a0, a1) != 255
            q = quiet_pixels(score_sink.read(a0, a1), v, floor)
            core = slice(r0 - a0, r0 - a0 + r1 - r0)
            vc = v[core]
            return q[core][vc][robust_ords.in_block(r0, r1, int(vc.sum()))]

        quiet = np.concatenate(list(_imap(quiet_block, blocks, threads)))
    thr = threshold_scores(
        thr_vals,
        rule=opts.threshold_rule,
        value=opts.threshold,
        dof=nb,
        p=opts.chi2_p,
        k=opts.k,
        floor=floor,
        p_nochange=p_nc,
        quiet=quiet,
        cutoff=ctx.model.cutoff if ctx.model is not None else None,
    )
    del thr_vals, p_nc, quiet
    if st.n > SAMPLE:  # the rule saw a sample: say so
        why = thr.why.replace(
            f"of {SAMPLE} valid pixels", f"of a sample of {SAMPLE:,} of the {st.n:,} valid pixels"
        )
        thr = Threshold(thr.value, thr.rule, why)

    # 5. Regions: threshold, edge rule, opening; labels per block joined across edges.
    step(5, "regions joined across blocks")
    ohalo = 2 * int(opts.opening)
    disk = _disk(int(opts.opening)) if opts.opening else None
    label_sink = sinks("labels", "int32", 0)

    def raw_block(r0: int, r1: int, halo: int) -> tuple[np.ndarray, int]:
        a0, a1 = max(0, r0 - halo), min(h, r1 + halo)
        valid = mask_sink.read(a0, a1) != 255
        raw = valid & (score_sink.read(a0, a1) > thr.value)
        if pixel_sink is not None:
            raw &= pixel_sink.read(a0, a1) > opts.edge * thr.value
        if disk is not None:
            raw = ndimage.binary_opening(raw, structure=disk)
        return raw, r0 - a0

    def label_block(blk: tuple[int, int]) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        r0, r1 = blk
        raw, k0 = raw_block(r0, r1, ohalo)
        lab, n = ndimage.label(raw[k0 : k0 + r1 - r0], structure=STRUCTURE_8)
        label_sink.write(r0, lab.astype(np.int32))
        sizes = np.bincount(lab.reshape(-1), minlength=n + 1)[1:]
        return n, sizes, lab[0].copy(), lab[-1].copy()

    offsets: list[int] = []
    sizes_all: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
    edges: list[np.ndarray] = []
    total = 0
    prev_last: np.ndarray | None = None
    for n, sizes, first, last in _imap(label_block, blocks, threads):
        offsets.append(total)
        if prev_last is not None and n:
            f = np.where(first > 0, first + total, 0)
            for dc in (-1, 0, 1):
                p_ = prev_last[max(0, -dc) : w - max(0, dc)]
                q_ = f[max(0, dc) : w - max(0, -dc)]
                both = (p_ > 0) & (q_ > 0)
                if both.any():
                    edges.append(np.stack([p_[both], q_[both]]))
        prev_last = np.where(last > 0, last + total, 0)
        sizes_all.append(sizes.astype(np.int64))
        total += n
    sizes_id = np.concatenate(sizes_all)
    comp = _components(total + 1, edges)
    comp_size = np.bincount(comp, weights=sizes_id)
    min_px = opts.min_pixels(pixel_area_m2)
    real = comp_size > 0
    real[comp[0]] = False
    keep = real & (comp_size >= max(min_px, 1))
    final = np.zeros(comp_size.size, dtype=np.int32)
    final[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    final_of_id = final[comp]
    final_of_id[0] = 0
    n_raw = int(sizes_id.sum())
    removed = int(real.sum() - keep.sum())

    # 6. Final labels and mask.
    step(6, "final labels, mask and polygons")

    def final_block(item: tuple[tuple[int, int], int, int]) -> int:
        (r0, r1), off, n = item
        lab = label_sink.read(r0, r1)
        # The block's labels 1..n are ids off+1..off+n: one table lookup per pixel.
        lut = final_of_id[off : off + n + 1].astype(np.int32)
        lut[0] = 0
        out = lut[lab]
        label_sink.write(r0, out)
        m = mask_sink.read(r0, r1).copy()
        m[out > 0] = 1
        mask_sink.write(r0, m)
        return int((out > 0).sum())

    n_changed = sum(
        _imap(
            final_block,
            list(zip(blocks, offsets, (s.size for s in sizes_all[1:]), strict=True)),
            threads,
        )
    )
    diag.update(
        {
            "threshold": thr.as_dict(),
            "changed_pixels_raw": n_raw,
            "changed_pixels": n_changed,
            "regions_removed_below_mmu": removed,
            "min_area_m2": round(min_px * pixel_area_m2, 1),
            "min_area_px": min_px,
            "valid_pixels": st.n,
        }
    )
    if len(blocks) > 1 or st.n > SAMPLE:
        diag["engine"]["sample"] = int(min(st.n, SAMPLE))

    features = None
    if grid is not None:
        features = _polygons(
            blocks,
            threads,
            h,
            grid,
            n_regions=int(keep.sum()),
            labels=label_sink,
            score=score_sink,
            mask=mask_sink,
            evidence=ev_sink,
            dof=len(ctx.evidence_keep),
        )
    return EngineResult(
        score_sink,
        pixel_sink,
        mask_sink,
        label_sink,
        ev_sink,
        len(ctx.evidence_keep),
        thr,
        diag,
        features,
    )


def score_arrays(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    *,
    method: str,
    band_names: Sequence[str] | None = None,
    smooth: float = 0.0,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(pixel score, smoothed score) of a pair held in memory, by the engine's passes.

    What the public scorers of :mod:`sitewatch.detect.methods` return (float32, 0
    where ``valid`` is False): the engine run with a threshold nothing passes.
    """
    shape = (int(valid.shape[0]), int(valid.shape[1]))
    never = float(np.finfo(np.float32).max)
    opts = DetectOptions(method=method, smooth=smooth, coregister=False, threshold=never)
    res = run_engine(
        ArrayReader(before, after, valid),
        band_names=band_names,
        pixel_area_m2=1.0,
        options=opts,
        sinks=lambda name, dtype, fill: ArraySink(shape, dtype, fill),
        threads=threads,
    )
    score = res.score.array
    return (res.pixel.array if res.pixel is not None else score), score


def view_z(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    *,
    method: str,
    band_names: Sequence[str] | None = None,
    threads: int | None = None,
) -> list[np.ndarray]:
    """The robust z of a method's views of a pair in memory: what its combine weighs.

    For a method of :data:`ROBUST` (``learned``: the columns its model was trained on,
    :func:`sitewatch.bench.learn.sample_features`). float32, 0 where ``valid`` is False.
    """
    if method not in ROBUST:
        raise ValueError(f"method {method!r} has no robust views; choose one of {sorted(ROBUST)}")
    shape = (int(valid.shape[0]), int(valid.shape[1]))
    kept: dict[str, ArraySink] = {}

    def sinks(name: str, dtype: str, fill: float) -> ArraySink:
        kept[name] = ArraySink(shape, dtype, fill)
        return kept[name]

    never = float(np.finfo(np.float32).max)
    opts = DetectOptions(method=method, smooth=0.0, coregister=False, threshold=never)
    res = run_engine(
        ArrayReader(before, after, valid),
        band_names=band_names,
        pixel_area_m2=1.0,
        options=opts,
        sinks=sinks,
        threads=threads,
    )
    scales = res.diagnostics["views"]["robust_scales"]
    return [_rz(kept[f"view{i}"].array, m, c, valid) for i, (m, c) in enumerate(scales)]


def _components(n: int, edges: list[np.ndarray]) -> np.ndarray:
    """Connected component of each of ``n`` ids under the seam ``edges``.

    Components are numbered in the order of their smallest id, as
    ``scipy.sparse.csgraph.connected_components`` numbers them (tested), by union-find
    in numpy: each root is hooked under the smaller of its edges' roots, then paths are
    halved, until both ends of every edge share a root, which is then the component's
    smallest id. (Importing scipy.sparse for this took 42 ms of every run.)
    """
    if not edges:
        return np.arange(n)
    e = np.concatenate(edges, axis=1).astype(np.intp, copy=False)
    a, b = e[0], e[1]
    parent = np.arange(n)
    while True:
        ra, rb = parent[a], parent[b]
        if np.array_equal(ra, rb):
            break
        low = np.minimum(ra, rb)
        np.minimum.at(parent, ra, low)
        np.minimum.at(parent, rb, low)
        while True:  # every id straight to its root
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
    return np.unique(parent, return_inverse=True)[1].reshape(n)


def _disk(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return (x * x + y * y) <= radius * radius


def _polygons(
    blocks: list[tuple[int, int]],
    threads: int,
    h: int,
    grid: Any,
    *,
    n_regions: int,
    labels: Any,
    score: Any,
    mask: Any,
    evidence: Any,
    dof: int,
) -> list[dict[str, Any]]:
    """Per-region statistics and outlines, block by block (see ``vectorize``)."""
    from sitewatch.vectorize import Regions

    regions = Regions(
        n_regions, layers=("p_no_change", "p_no_change_log10") if evidence is not None else ()
    )

    def block(blk: tuple[int, int]) -> Any:
        r0, r1 = blk
        a0, a1 = max(0, r0 - CONTEXT_PX), min(h, r1 + CONTEXT_PX)
        lab_x = labels.read(a0, a1)
        obs_x = mask.read(a0, a1) != 255
        k0 = r0 - a0
        core = slice(k0, k0 + r1 - r0)
        lab = lab_x[core]
        layers: dict[str, np.ndarray] = {}
        if evidence is not None and (lab > 0).any():
            from scipy import special

            from sitewatch.pipeline import chi2_log10_sf

            chi2 = evidence.read(r0, r1)
            at = lab > 0
            p = np.full(lab.shape, np.nan, dtype=np.float32)
            p[at] = special.chdtrc(dof, chi2[at])
            lg = np.full(lab.shape, np.nan, dtype=np.float32)
            lg[at] = chi2_log10_sf(chi2[at].astype(np.float64), dof)
            layers = {"p_no_change": p, "p_no_change_log10": lg}
        return regions.block(
            lab_x, core, score.read(r0, r1), r0, grid, layers=layers, observed=obs_x
        )

    for part in _imap(block, blocks, threads):
        regions.add(part)
    return regions.features(grid)
