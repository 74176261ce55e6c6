"""detect_series: a dated series of images → tracked, persistent change.

The I/O around :func:`sitewatch.timeline.track_changes`: date the images (their
files, or ``dates=``), put them in date order, read every one onto one grid (the
AOI's, or without an AOI the part every image covers), track the regions, and
package the kept ones as a :class:`~sitewatch.pipeline.ChangeResult` (so the run
folder, report and manifest are those of ``detect``) plus the
:class:`~sitewatch.timeline.Timeline` itself.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sitewatch.aoi import AOI
from sitewatch.detect.options import STEP_FDR
from sitewatch.detect.run import DetectOptions
from sitewatch.detect.threshold import Threshold
from sitewatch.errors import AOIError, DataError, InputError, arg
from sitewatch.grid import Grid
from sitewatch.pipeline import (
    ChangeResult,
    _aoi_grid,
    _common_bands,
    _distorted,
    _overlap_grid,
    _rgb,
    _rgb_indices,
    _same_size,
    annotate_features,
    grid_note,
)
from sitewatch.sources.local import LocalSource, date_key, open_local, parse_date
from sitewatch.sources.products import check_products
from sitewatch.timeline import DROPPED, Timeline, track_changes
from sitewatch.vectorize import vectorize_changes

__all__ = ["detect_series", "series_dates", "timeline_files"]

_GIVEN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{4}-\d{2}|\d{8}")


def series_dates(dates: str | Sequence[str], count: int) -> list[str]:
    """The ``dates=`` of a series, checked: one real date per image.

    Parameters
    ----------
    dates : str or sequence of str
        ``YYYY-MM-DD``, ``YYYYMMDD`` or a month ``YYYY-MM``, as a sequence or one
        comma-separated string, in the order of the images.
    count : int
        Number of images.

    Returns
    -------
    list of str
        ``YYYY-MM-DD`` (``YYYY-MM`` for a month).

    Raises
    ------
    InputError
        If the number of dates is not ``count`` or one is not a date.

    Examples
    --------
    >>> series_dates("2018-01, 2018-02-15,20180401", 3)
    ['2018-01', '2018-02-15', '2018-04-01']
    """
    items = dates.split(",") if isinstance(dates, str) else list(dates)
    items = [str(d).strip() for d in items]
    for d in items:
        found = parse_date(d) if _GIVEN_DATE.fullmatch(d) else None
        if found is None:
            raise InputError(
                f"{arg('dates')} {d!r} is not a date; give YYYY-MM-DD (or YYYY-MM for a "
                "month), one per image, comma-separated"
            )
    if len(items) != count:
        raise InputError(
            f"{arg('dates')} gives {len(items)} date{'s' if len(items) != 1 else ''} for "
            f"{count} images; give one per image, in the order of the images"
        )
    return [str(parse_date(d)) for d in items]


@dataclass(frozen=True)
class _Extent:
    """The part of the series covered so far (what ``_overlap_grid`` crops)."""

    path: Any
    grid: Grid


def _series_grid(srcs: Sequence[Any], resolution: float | None) -> tuple[Grid, str]:
    """The grid of a series without an AOI, and its rule for the manifest.

    The first image's grid cropped to the part every image covers; when that grid's
    pixels are not true metres (Web Mercator), a UTM grid over that part at the first
    image's true pixel size (``resolution`` if given), as ``detect`` does without an
    AOI (:func:`~sitewatch.pipeline.plan_detection`).
    """
    first = srcs[0]
    if not first.georeferenced:
        _same_size(first, srcs[1:])
        return first.grid, "pixels"
    grid = _overlap_grid(first, srcs[1], resolution)
    for src in srcs[2:]:
        grid = _overlap_grid(_Extent(first.path, grid), src)  # type: ignore[arg-type]
    return grid, ("first-overlap-utm" if _distorted(first.grid) else "first-grid-overlap")


def _name_label(src: Any, taken: set[str]) -> str:
    """What an undated image is called in a series: its file or folder name."""
    path = Path(str(getattr(src, "path", "")))
    label = path.name or str(path)
    if label in taken:
        label = f"{path.parent.name}/{path.name}"
    taken.add(label)
    return label


def detect_series(
    sources: Sequence[Any],
    *,
    aoi: AOI | None = None,
    options: DetectOptions | None = None,
    resolution: float | None = None,
    min_persistence: float = 0.5,
    labels: Sequence[str] | None = None,
    dates: str | Sequence[str] | None = None,
    model: str = "auto",
    fdr: float = STEP_FDR,
) -> tuple[ChangeResult, Timeline]:
    """Track change through a dated series of images, over an AOI or their overlap.

    Parameters
    ----------
    sources : sequence
        Paths, or source objects with ``read`` (e.g. STAC scenes). Put in date order
        when every one is dated (by its files, see
        :func:`~sitewatch.sources.local.date_in_name`, or by ``dates``); otherwise
        kept in the order given, oldest first, the undated ones labelled by file name.
    aoi : AOI, optional
        Located AOI; every image is resampled onto its UTM grid. Without one, onto the
        first image's grid cropped to the part every image covers (a UTM grid when the
        images' CRS distorts areas, e.g. Web Mercator).
    options : DetectOptions, optional
    resolution : float, optional
        Grid pixel size in metres (default: the first image's); without an AOI it
        applies only when the grid is resampled to UTM.
    min_persistence : float
        See :func:`~sitewatch.timeline.track_changes`.
    labels : sequence of str, optional
        Free-form labels for the images in the order given (default: their dates);
        the order is then kept as given.
    dates : str or sequence of str, optional
        Acquisition dates of local images in the order given (``YYYY-MM-DD`` or a
        month ``YYYY-MM``; a sequence or one comma-separated string). They replace
        the dates the files give; the manifest records that they were given.
    model : {"auto", "step", "pairs"}
        How the series decides; see :func:`~sitewatch.timeline.track_changes`.
    fdr : float
        False-discovery share of the step model's threshold.

    Returns
    -------
    (ChangeResult, Timeline)
        The result holds the kept (persistent or unconfirmed) regions with their
        timeline attributes, scored baseline → last compared date.

    Raises
    ------
    InputError
        ``dates`` without one valid date per image, or for a source that is not a
        local image; ``dates`` and ``labels`` both given.
    DataError
        Fewer than two images, no shared band, images that do not overlap.
    AOIError
        An unlocated AOI, one outside the imagery, or an AOI for images without CRS.
    """
    t0 = time.perf_counter()
    opts = options or DetectOptions()
    srcs = [s if hasattr(s, "read") else open_local(s) for s in sources]
    if len(srcs) < 2:
        raise DataError("a timeline needs at least two dated images")
    check_products(srcs, method=opts.method)
    if dates is not None:
        if labels is not None:
            raise InputError("give dates= or labels=, not both")
        given = series_dates(dates, len(srcs))
        for s in srcs:
            if not isinstance(s, LocalSource):
                raise InputError(
                    f"{arg('dates')} dates local images; {getattr(s, 'path', s)} is a "
                    f"{getattr(s, 'kind', 'scene')} dated {s.acquired} by its catalog"
                )
        srcs = [
            replace(s, acquired=d, acquired_from=f"given ({arg('dates')})")
            for s, d in zip(srcs, given, strict=True)
        ]
    keys = [date_key(s.acquired) if s.acquired else None for s in srcs]
    reordered = False
    if labels is None and None not in keys:
        order = sorted(range(len(srcs)), key=lambda i: str(keys[i]))  # ISO dates sort as text
        reordered = order != list(range(len(srcs)))
        srcs = [srcs[i] for i in order]
    if labels is not None and len(labels) != len(srcs):
        raise InputError(f"labels= gives {len(labels)} labels for {len(srcs)} images")
    names = list(srcs[0].band_names)
    for s in srcs[1:]:
        names = [n for n in _common_bands(srcs[0], s)[0] if n in names]
    if not names:
        raise DataError("the images of the series share no band")
    georef = {bool(getattr(s, "georeferenced", True)) for s in srcs}
    if len(georef) > 1:
        raise DataError("some images of the series have a CRS and some do not; georeference them")
    coverage = 1.0
    if aoi is not None:
        if georef == {False}:
            raise AOIError("an AOI needs georeferenced images; these have no CRS")
        grid, inside, coverage = _aoi_grid(aoi, srcs[0], srcs[-1], resolution)
        grid_rule = "aoi-utm"
    else:
        grid, grid_rule = _series_grid(srcs, resolution)
        inside = np.ones(grid.shape, dtype=bool)
    scenes = [s.read(grid, bands=names) for s in srcs]
    taken: set[str] = set()
    if labels is not None:
        dates_ = [str(x) for x in labels]
        undated: list[str] = []
    else:  # an undated image is called by its file name, never "image 6"
        dates_ = [s.acquired or _name_label(s, taken) for s in srcs]
        undated = [d for s, d in zip(srcs, dates_, strict=True) if not s.acquired]
    tl = track_changes(
        [sc.data for sc in scenes],
        [sc.valid & inside for sc in scenes],
        dates_,
        band_names=names,
        pixel_area_m2=grid.pixel_area_m2,
        options=opts,
        min_persistence=min_persistence,
        model=model,
        fdr=fdr,
    )
    compared = [t for t, d in enumerate(tl.diagnostics) if d and "threshold" in d]
    if not compared:
        raise DataError(
            "no date of the series could be compared with the first (no clear pixels in "
            "common); widen the period or the steps"
        )
    last = compared[-1]
    diag = dict(tl.diagnostics[last] or {})
    keep = tl.kept_mask()
    observed = tl.valid[1:].any(axis=0)
    score = np.where(observed, tl.scores[1:].max(axis=0), 0.0).astype(np.float32)
    features = vectorize_changes(
        keep, score, grid, layers={"region": tl.labels.astype(np.float64)}, observed=observed
    )
    tracks = {r.label: r for r in tl.regions}
    thr = diag["threshold"]
    threshold = Threshold(float(thr["value"]), str(thr["rule"]), str(thr["why"]))
    annotate_features(features, dates_[0], dates_[last], opts, threshold, diag)
    polygon_of_region: dict[str, str] = {}
    for f in features:
        p = f["properties"]
        r = tracks[round(p.pop("region"))]
        polygon_of_region[str(r.label)] = f["id"]
        p.update(
            {
                "first_seen": r.first_seen,  # the series' own date, not the last one
                "last_clear_before": r.last_clear_before,
                "persistence": r.persistence,
                "n_later_observed": r.n_later_observed,
                "growth_m2": r.growth_m2,
                "status": r.status,
            }
        )
    pixel_area = grid.pixel_area_m2
    area_px = int(inside.sum())
    n_valid = int(observed.sum())
    diagnostics = {
        **diag,
        "bands": names,
        "valid_pixels": n_valid,
        "valid_fraction": round(n_valid / max(area_px, 1), 4),
        "aoi_coverage": round(coverage, 4),
        "unobserved_m2": round((area_px - n_valid) * pixel_area, 1),
        "cloud_masked_m2": {
            "before": round(scenes[0].provenance["cloud_masked_px"] * pixel_area, 1),
            "after": round(scenes[last].provenance["cloud_masked_px"] * pixel_area, 1),
        },
        "saturated_px": {
            "before": scenes[0].provenance["saturated_px"],
            "after": scenes[last].provenance["saturated_px"],
        },
        "n_polygons": len(features),
        "changed_area_m2": round(float(sum(f["properties"]["area_m2"] for f in features)), 1),
        "timeline": {
            "dates": dates_,
            "dated_from": [
                s.acquired_from if isinstance(s, LocalSource) else "catalog" if s.acquired else None
                for s in srcs
            ],
            "undated": undated,
            "sorted_by_date": reordered,
            "compared": [dates_[t] for t in compared],
            "n_regions": len(tl.regions),
            "n_persistent": sum(r.status == "persistent" for r in tl.regions),
            "n_unconfirmed": sum(r.status == "unconfirmed" for r in tl.regions),
            "n_transient": tl.n_transient,
            "n_flat": tl.n_flat,
            "min_persistence": min_persistence,
            "model": diag.get("timeline_model", "pairs"),
            "polygon_of_region": polygon_of_region,
        },
    }
    if note := grid_note(srcs[0], grid, aoi=aoi):
        diagnostics["grid_note"] = note
    before_date, after_date = (
        (dates_[0], dates_[last]) if labels is not None else (srcs[0].acquired, srcs[last].acquired)
    )
    provenance = {
        "before": {"source": srcs[0], "acquired": before_date},
        "after": {"source": srcs[last], "acquired": after_date},
        "series": [s.describe() for s in srcs],
        "aoi": aoi,
        "parameters": {
            **opts.as_dict(),
            "resolution": resolution,
            "pixel_size": None,
            "grid_rule": grid_rule,
            "min_persistence": min_persistence,
            "timeline_model": model,
            "fdr": fdr,
        },
    }
    rgb = _rgb_indices(names, scenes[0].data.shape[0])
    result = ChangeResult(
        score,
        keep,
        observed,
        grid,
        features,
        threshold,
        diagnostics,
        provenance,
        {"total": round(time.perf_counter() - t0, 4)},
        before_rgb=_rgb(scenes[0].data, scenes[0].valid & inside, rgb),
        after_rgb=_rgb(scenes[last].data, scenes[last].valid & inside, rgb),
    )
    return result, tl


def timeline_files(result: ChangeResult, tl: Timeline, out: Path) -> None:
    """Write ``timeline.csv``, ``timeline.json`` and ``timeline.png`` into ``out``.

    ``timeline.csv`` has one row per (region, date): region id (the polygon id for a
    kept region, ``t<label>`` for a dropped one), status, date, observed share,
    flagged area and mean score.
    """
    polygons = (result.diagnostics.get("timeline") or {}).get("polygon_of_region") or {}
    by_label = {int(k): v for k, v in polygons.items()}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["region", "status", "date", "observed", "changed_m2", "score_mean"])
    for r in tl.regions:
        rid = by_label.get(r.label, f"t{r.label:03d}")
        for row in r.per_date:
            w.writerow(
                [rid, r.status, row["date"], row["observed"], row["changed_m2"], row["score_mean"]]
            )
    (out / "timeline.csv").write_text(buf.getvalue(), encoding="utf-8")
    info = dict(result.diagnostics.get("timeline") or {})
    info.update(
        {
            "from": tl.dates[0],
            "to": tl.dates[-1],
            "regions": [
                {"region": by_label.get(r.label, f"t{r.label:03d}"), **r.as_dict()}
                for r in tl.regions
            ],
        }
    )
    (out / "timeline.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    _plot(tl, by_label, out / "timeline.png")


def _plot(tl: Timeline, ids: dict[int, str], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(len(tl.dates))
    shown = 0
    for r in sorted(tl.regions, key=lambda r: (r.status in DROPPED, -r.area_last_m2)):
        if shown >= 12:
            break
        ys = [d["score_mean"] if d["observed"] >= 0.5 else np.nan for d in r.per_date]
        ys = [np.nan if v is None else v for v in ys]
        style = "--" if r.status in DROPPED else "-"
        name = ids.get(r.label, f"t{r.label:03d}")
        ax.plot(x, ys, style, marker="o", label=f"{name} ({r.status})")
        shown += 1
    ax.set_xticks(x, [d[:10] if len(d) <= 10 else d for d in tl.dates], rotation=30, ha="right")
    ax.set_ylabel("mean change score vs first date")
    ax.set_title("Change regions through time (dashed: transient or flat, dropped)")
    ax.grid(alpha=0.3)
    if shown:
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
