"""Radar change detection: Sentinel-1 RTC scenes → the optical output contract.

The statistics live in :mod:`sitewatch.detect.sar` (pure arrays). This module turns
their per-pixel results into what every sitewatch run writes: change polygons with
``first_seen``, a p-value, the dB change, the orbit and the look count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from sitewatch.detect.cleanup import label_regions, remove_small_regions
from sitewatch.detect.sar import PairTest, SeriesTest
from sitewatch.detect.sar_options import DEFAULT_SCENES
from sitewatch.grid import Grid
from sitewatch.vectorize import vectorize_changes

__all__ = [
    "RADAR_MIN_AREA_M2",
    "detect_radar",
    "pair_changes",
    "radar_pair",
    "radar_series",
    "series_changes",
    "timeline_radar",
]

RADAR_MIN_AREA_M2 = 500.0
"""Minimum mapping unit of radar changes: 5 pixels at 10 m. A test at level α flags
isolated speckle pixels at rate α by design; five 8-connected ones together are
improbable (< α² per cluster) under no change."""


def _min_pixels(grid: Grid, min_area_m2: float) -> int:
    return max(1, int(np.ceil(min_area_m2 / grid.pixel_area_m2)))


P_FLOOR = float(np.finfo(np.float32).tiny)
"""Smallest p-value reported (float32 rasters): smaller ones are reported as this."""


def _medians(labels: np.ndarray, n: int, image: np.ndarray, fill: float) -> np.ndarray:
    """Median of ``image`` over each region 1..n (NaN → ``fill``), index 0 unused."""
    if n == 0:
        return np.zeros(1)
    vals = ndimage.median(np.nan_to_num(image, nan=fill), labels, np.arange(1, n + 1))
    return np.concatenate([[fill], np.atleast_1d(vals)])


def _p(value: float) -> float:
    return float(f"{max(float(value), P_FLOOR):.3g}")


def _per_region(labels: np.ndarray, n: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each region's most frequent value of ``values`` (≥ 0) and the share that has it."""
    mode = np.full(n + 1, -1, np.int64)
    share = np.zeros(n + 1)
    lab = labels.ravel()
    val = values.ravel().astype(np.int64)
    keep = (lab > 0) & (val >= 0)
    if keep.any():
        width = int(val[keep].max()) + 1
        counts = np.bincount(lab[keep] * width + val[keep], minlength=(n + 1) * width)
        counts = counts.reshape(n + 1, width)
        mode = counts.argmax(axis=1)
        totals = np.maximum(counts.sum(axis=1), 1)
        share = counts.max(axis=1) / totals
    return mode, share


def series_changes(
    res: SeriesTest,
    grid: Grid,
    dates: Sequence[str],
    *,
    orbit: str,
    min_area_m2: float = RADAR_MIN_AREA_M2,
    band_names: Sequence[str] = ("vv", "vh"),
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Polygons of the pixels a :func:`~sitewatch.detect.sar.sequential_omnibus` flagged.

    Each 8-connected region of changed pixels (at least ``min_area_m2``) becomes one
    Feature. Its ``first_seen`` is the date most of its pixels were first flagged on
    (``dated_share`` says how many agree), ``p_value`` the median omnibus p-value of
    its pixels, ``db_vv``/``db_vh`` the median dB change at that first change.

    Parameters
    ----------
    res : SeriesTest
    grid : Grid
    dates : sequence of str
        Acquisition dates of the scenes, in the order of the series.
    orbit : str
        The one orbit geometry the series came from (e.g. ``"ascending 127"``).
    min_area_m2 : float
        Minimum mapping unit.
    band_names : sequence of str
        Names of the bands of ``res.db_first``.

    Returns
    -------
    mask : (H, W) bool ndarray
        Changed pixels kept.
    features : list of dict
        GeoJSON Features (see :func:`~sitewatch.vectorize.vectorize_changes`).
    """
    if len(dates) != res.changed.shape[0]:
        raise ValueError(f"{len(dates)} dates for a series of {res.changed.shape[0]} scenes")
    flagged = res.first_change >= 0
    mask, _ = remove_small_regions(flagged, _min_pixels(grid, min_area_m2))
    labels, n = label_regions(mask)
    first = np.where(mask, res.first_change, -1)
    mode, share = _per_region(labels, n, first)
    layers = {"_label": labels.astype(np.float32)}  # constant per region: its mean is it
    score = np.where(mask, -np.log10(np.maximum(res.p_first, P_FLOOR)), 0.0).astype(np.float32)
    feats = vectorize_changes(mask, score, grid, layers=layers)
    med_p = _medians(labels, n, res.p_first, 1.0)
    dbs = [_medians(labels, n, res.db_first[b], 0.0) for b in range(res.db_first.shape[0])]
    for f in feats:
        props = f["properties"]
        lab = round(props.pop("_label"))
        props.update(
            {
                "first_seen": dates[int(mode[lab])],
                "dated_share": round(float(share[lab]), 3),
                "p_value": _p(med_p[lab]),
                **{
                    f"db_{name}": round(float(d[lab]), 2)
                    for name, d in zip(band_names, dbs, strict=False)
                },
                "orbit": orbit,
                "looks": res.enl,
                "alpha": res.alpha,
                "method": "omnibus",
                "sensor": "radar",
            }
        )
    return mask, feats


def pair_changes(
    res: PairTest,
    grid: Grid,
    valid: np.ndarray,
    *,
    alpha: float,
    before_date: str,
    after_date: str,
    orbit: str,
    min_area_m2: float = RADAR_MIN_AREA_M2,
    band_names: Sequence[str] = ("vv", "vh"),
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Polygons of the pixels whose pair test rejects no-change at ``alpha``.

    ``p_value``, ``db_vv`` and ``db_vh`` of a polygon are the medians over its pixels.
    """
    flagged = valid & (np.nan_to_num(res.p_value, nan=1.0) < alpha)
    mask, _ = remove_small_regions(flagged, _min_pixels(grid, min_area_m2))
    labels, n = label_regions(mask)
    score = np.where(mask, -np.log10(np.maximum(res.p_value, P_FLOOR)), 0.0).astype(np.float32)
    feats = vectorize_changes(
        mask, score, grid, layers={"_label": labels.astype(np.float32)}, observed=valid
    )
    med_p = _medians(labels, n, res.p_value, 1.0)
    dbs = {name: _medians(labels, n, res.db[b], 0.0) for b, name in enumerate(band_names)}
    for f in feats:
        lab = round(f["properties"].pop("_label"))
        f["properties"].update(
            {
                "p_value": _p(med_p[lab]),
                **{f"db_{name}": round(float(d[lab]), 2) for name, d in dbs.items()},
                "first_seen": after_date,
                "before_date": before_date,
                "after_date": after_date,
                "orbit": orbit,
                "looks": {"before": res.enl_before, "after": res.enl_after},
                "alpha": alpha,
                "method": "log-ratio",
                "sensor": "radar",
            }
        )
    return mask, feats


# ---------------------------------------------------------------------------
# Runs: STAC search → one orbit geometry → statistics → ChangeResult
# ---------------------------------------------------------------------------

RADAR_RESOLUTION_M = 10.0
"""Grid of radar runs: the RTC product's own 10 m."""


def _aoi_grid(aoi: Any) -> tuple[Grid, np.ndarray]:
    import rasterio.features

    from sitewatch.errors import AOIError
    from sitewatch.grid import from_lonlat

    if aoi is None or aoi.geometry is None:
        raise AOIError("radar runs search scenes over an AOI: name a located AOI (or --aoi-file)")
    grid = Grid.for_aoi(aoi.geometry, resolution=RADAR_RESOLUTION_M)
    shape = from_lonlat(aoi.geometry, grid.crs)  # type: ignore[arg-type]
    inside = rasterio.features.rasterize(
        [(shape, 1)], out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8"
    ).astype(bool)
    return grid, inside


def _search(
    aoi: Any, start: str, end: str, *, url: str | None, cache: Any, stats: Any
) -> list[Any]:
    from sitewatch.sources.stac import search_scenes

    return search_scenes(aoi, start, end, source="s1", url=url, cache=cache, stats=stats)


def _enl(scenes: Sequence[Any], enl: float | None) -> tuple[float, str]:
    from sitewatch.detect.sar import DEFAULT_ENL

    if enl is not None:
        return float(enl), "given (--enl)"
    declared = {s.enl for s in scenes if s.enl is not None}
    if len(declared) == 1:
        return declared.pop(), "declared by the items (sar:looks_equivalent_number)"
    return DEFAULT_ENL, "Sentinel-1 IW GRDH product definition"


def _vv_db(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """VV in dB as a grey (3, H, W) image for quicklooks and chips (NaN unobserved)."""
    from sitewatch.detect.sar import to_db

    vv = to_db(x)
    vv[~valid] = np.nan
    return np.repeat(vv[None], 3, axis=0)


def _result(
    *,
    score: np.ndarray,
    mask: np.ndarray,
    valid: np.ndarray,
    inside: np.ndarray,
    grid: Grid,
    features: list[dict[str, Any]],
    alpha: float,
    before: Any,
    after: Any,
    aoi: Any,
    parameters: dict[str, Any],
    diagnostics: dict[str, Any],
    rgb: tuple[np.ndarray, np.ndarray],
    timings: dict[str, float],
    series: list[dict[str, Any]] | None = None,
) -> Any:
    from sitewatch.detect.threshold import Threshold
    from sitewatch.pipeline import ChangeResult

    n_valid = int(valid.sum())
    area_px = int(inside.sum())
    thr = Threshold(
        value=float(-np.log10(alpha)),
        rule="alpha",
        why=f"p < {alpha:g} under the no-change speckle law (score = -log10 p)",
    )
    diag = {
        "bands": ["vv", "vh"],
        "valid_pixels": n_valid,
        "valid_fraction": round(n_valid / max(area_px, 1), 4),
        "unobserved_m2": round((area_px - n_valid) * grid.pixel_area_m2, 1),
        "threshold": thr.as_dict(),
        "min_area_m2": parameters["min_area_m2"],
        **diagnostics,
        "n_polygons": len(features),
        "changed_area_m2": round(float(sum(f["properties"]["area_m2"] for f in features)), 1),
    }
    prov: dict[str, Any] = {
        "before": {"source": before, "acquired": before.acquired},
        "after": {"source": after, "acquired": after.acquired},
        "aoi": aoi,
        "parameters": parameters,
    }
    if series is not None:
        prov["series"] = series
    return ChangeResult(
        score=score,
        mask=mask,
        valid=valid,
        grid=grid,
        features=features,
        threshold=thr,
        diagnostics=diag,
        provenance=prov,
        timings={k: round(v, 4) for k, v in timings.items()},
        before_rgb=rgb[0],
        after_rgb=rgb[1],
    )


def radar_pair(
    aoi: Any,
    before: tuple[str, str],
    after: tuple[str, str],
    *,
    alpha: float = 1e-3,
    enl: float | None = None,
    scenes: int = DEFAULT_SCENES,
    orbit: str | None = None,
    url: str | None = None,
    cache: Any = None,
    stats: Any = None,
    min_area_m2: float = RADAR_MIN_AREA_M2,
) -> tuple[Any, dict[str, np.ndarray]]:
    """Mean of up to ``scenes`` scenes before against as many after, one orbit geometry.

    The before side takes the latest scenes of its window, the after side the
    earliest of its; both from the geometry with most scenes in its poorer window.

    Parameters
    ----------
    aoi : AOI
        Located AOI; the grid is its 10 m UTM grid.
    before, after : (str, str)
        Inclusive ISO date windows.
    alpha : float
        Per-pixel false-alarm rate: the level of the test.
    enl : float, optional
        Looks of one scene (default: as the items declare, else 4.4).
    orbit : str, optional
        Pass direction and/or relative orbit to use (``"ascending-127"``, ``"127"``).
    url : str, optional
        Service or STAC API root (default: the Planetary Computer profile).
    cache, stats : optional
        Window cache and request counter (see :func:`~sitewatch.sources.stac.search_scenes`).
    min_area_m2 : float
        Minimum mapping unit.
    scenes : int
        Most scenes averaged on each side.

    Returns
    -------
    (ChangeResult, dict of str to ndarray)
        The result (polygons with ``first_seen``, ``p_value``, ``db_vv``/``db_vh``,
        ``orbit``, ``looks``) and extra rasters to write (``db``: (2, H, W) dB change,
        ``p_value``).
    """
    import time

    from sitewatch.detect.sar import log_ratio_test
    from sitewatch.sources.sentinel1 import S1Scene, S1Stack, group_by_geometry, pick_geometry

    if scenes < 1:
        from sitewatch.errors import InputError, arg

        raise InputError(f"{arg('scenes')} {scenes} must be at least 1")
    t0 = time.perf_counter()
    grid, inside = _aoi_grid(aoi)
    found = [_search(aoi, *w, url=url, cache=cache, stats=stats) for w in (before, after)]
    geom = pick_geometry(found, orbit=orbit)
    cands = [group_by_geometry(f)[geom] for f in found]
    picked = [cands[0][-scenes:], cands[1][:scenes]]
    sides = [
        S1Stack([S1Scene(list(c.items) or [c.item], aoi=aoi, cache=cache, stats=stats) for c in p])
        for p in picked
    ]
    t = time.perf_counter()
    (xb, vb), (xa, va) = (s.read(grid) for s in sides)
    valid = vb & va & inside
    t_read = time.perf_counter() - t
    looks, looks_from = _enl(sides[0].parts + sides[1].parts, enl)
    res = log_ratio_test(xb, xa, valid, enl=looks)
    mask, feats = pair_changes(
        res,
        grid,
        valid,
        alpha=alpha,
        before_date=sides[0].acquired or "",
        after_date=sides[1].parts[0].acquired or "",
        orbit=geom.label,
        min_area_m2=min_area_m2,
    )
    score = np.where(valid, -np.log10(np.maximum(res.p_value, P_FLOOR)), np.nan).astype(np.float32)
    flagged = valid & (np.nan_to_num(res.p_value, nan=1.0) < alpha)
    params = {
        "method": "log-ratio",
        "sensor": "radar",
        "alpha": alpha,
        "orbit": geom.label,
        "enl_per_scene": looks,
        "enl_from": looks_from,
        "scenes": [len(sides[0].parts), len(sides[1].parts)],
        "looks": {"before": res.enl_before, "after": res.enl_after},
        "windows": {"before": list(before), "after": list(after)},
        "min_area_m2": min_area_m2,
        "resolution": RADAR_RESOLUTION_M,
        "grid_rule": "aoi-utm",
    }
    diag = {
        "orbit_geometries": {
            g.label: [
                len(v)
                for v in (
                    group_by_geometry(found[0]).get(g, []),
                    group_by_geometry(found[1]).get(g, []),
                )
            ]
            for g in sorted(set(group_by_geometry(found[0])) | set(group_by_geometry(found[1])))
        },
        "regions_removed_below_mmu": _n_regions(flagged) - _n_regions(mask),
    }
    result = _result(
        score=score,
        mask=mask,
        valid=valid,
        inside=inside,
        grid=grid,
        features=feats,
        alpha=alpha,
        before=sides[0],
        after=sides[1],
        aoi=aoi,
        parameters=params,
        diagnostics=diag,
        rgb=(_vv_db(xb[:, 0].mean(axis=0), valid), _vv_db(xa[:, 0].mean(axis=0), valid)),
        timings={"read": t_read, "total": time.perf_counter() - t0},
    )
    return result, {"db": res.db, "p_value": res.p_value}


def _n_regions(mask: np.ndarray) -> int:
    return label_regions(mask)[1]


def radar_series(
    aoi: Any,
    start: str,
    end: str,
    *,
    alpha: float = 1e-3,
    enl: float | None = None,
    orbit: str | None = None,
    url: str | None = None,
    cache: Any = None,
    stats: Any = None,
    min_area_m2: float = RADAR_MIN_AREA_M2,
) -> tuple[Any, dict[str, Any]]:
    """Every scene of one orbit geometry in ``[start, end]``, tested with the omnibus test.

    Parameters
    ----------
    aoi : AOI
        Located AOI; the grid is its 10 m UTM grid.
    start, end : str
        Inclusive ISO dates.
    alpha : float
        Per-pixel false-alarm rate: the level of the test.
    enl : float, optional
        Looks of one scene (default: as the items declare, else 4.4).
    orbit : str, optional
        Pass direction and/or relative orbit to use (``"ascending-127"``, ``"127"``).
    url : str, optional
        Service or STAC API root (default: the Planetary Computer profile).
    cache, stats : optional
        Window cache and request counter (see :func:`~sitewatch.sources.stac.search_scenes`).
    min_area_m2 : float
        Minimum mapping unit.

    Raises
    ------
    InputError
        No account key for the Planetary Computer, or Earth Search asked for.
    DataError
        Fewer than 3 scenes of the chosen geometry, or none with the asked ``orbit``.

    Returns
    -------
    (ChangeResult, dict)
        The result and ``{"test": SeriesTest, "dates": [...], "stack": (k, 2, H, W)}``.
    """
    import time

    from sitewatch.detect.sar import sequential_omnibus
    from sitewatch.sources.sentinel1 import S1Scene, S1Stack, group_by_geometry, pick_geometry

    t0 = time.perf_counter()
    grid, inside = _aoi_grid(aoi)
    found = _search(aoi, start, end, url=url, cache=cache, stats=stats)
    geom = pick_geometry([found], orbit=orbit)
    groups = group_by_geometry(found)
    chosen = groups[geom]
    if len(chosen) < 3:
        from sitewatch.errors import DataError

        raise DataError(
            f"only {len(chosen)} Sentinel-1 scene(s) of orbit {geom.label} over {aoi.id} "
            f"between {start} and {end}; a radar timeline needs at least 3: widen the period"
        )
    stack_src = S1Stack(
        [S1Scene(list(c.items) or [c.item], aoi=aoi, cache=cache, stats=stats) for c in chosen]
    )
    t = time.perf_counter()
    x, valid = stack_src.read(grid)
    valid &= inside
    t_read = time.perf_counter() - t
    looks, looks_from = _enl(stack_src.parts, enl)
    t = time.perf_counter()
    test = sequential_omnibus(x, valid, alpha=alpha, enl=looks)
    t_test = time.perf_counter() - t
    dates = stack_src.dates
    mask, feats = series_changes(test, grid, dates, orbit=geom.label, min_area_m2=min_area_m2)
    score = np.where(
        valid, -np.log10(np.maximum(np.nan_to_num(test.p_series, nan=1.0), P_FLOOR)), np.nan
    ).astype(np.float32)
    first = S1Stack(stack_src.parts[:1])
    last = S1Stack(stack_src.parts[-1:])
    params = {
        "method": "omnibus",
        "sensor": "radar",
        "alpha": alpha,
        "orbit": geom.label,
        "enl_per_scene": looks,
        "enl_from": looks_from,
        "scenes": len(dates),
        "period": [start, end],
        "min_area_m2": min_area_m2,
        "resolution": RADAR_RESOLUTION_M,
        "grid_rule": "aoi-utm",
    }
    diag = {
        "orbit_geometries": {g.label: len(v) for g, v in groups.items()},
        "orbits_not_used": sorted(g.label for g in groups if g != geom),
        "dates": dates,
        "pixels_changed_per_date": [int(c.sum()) for c in test.changed],
        "regions_removed_below_mmu": _n_regions(test.first_change >= 0) - _n_regions(mask),
    }
    series = [s.describe() for s in stack_src.parts]
    result = _result(
        score=score,
        mask=mask,
        valid=valid,
        inside=inside,
        grid=grid,
        features=feats,
        alpha=alpha,
        before=first,
        after=last,
        aoi=aoi,
        parameters=params,
        diagnostics=diag,
        rgb=(_vv_db(x[0, 0], valid), _vv_db(x[-1, 0], valid)),
        timings={"read": t_read, "test": t_test, "total": time.perf_counter() - t0},
        series=series,
    )
    return result, {"test": test, "dates": dates, "stack": x, "valid": valid}


# ---------------------------------------------------------------------------
# Jobs: what ``sitewatch.run.detect``/``timeline`` do when ``scenes.source`` is radar
# ---------------------------------------------------------------------------


def _raster_files(grid: Grid, rasters: dict[str, np.ndarray]) -> Any:
    from pathlib import Path

    from sitewatch.report.write import _write_raster

    def write(tmp: Path) -> None:
        for name, data in rasters.items():
            nodata = -1 if data.dtype.kind == "i" else float("nan")
            _write_raster(tmp / f"{name}.tif", data, grid, nodata=nodata)

    return write


def _command(job: Any) -> list[str] | None:
    return list(job.command) if job.command is not None else None


def detect_radar(job: Any, *, progress: Any = None) -> Any:
    """Run a :class:`~sitewatch.run.DetectJob` whose scenes are Sentinel-1 (``source="s1"``).

    ``before`` and ``after`` are date windows; the mean of up to ``job.radar.scenes``
    scenes of one orbit geometry on each side is compared (:func:`radar_pair`). Writes
    the optical outputs plus ``db.tif`` (VV, VH dB change) and ``p_value.tif``.

    Returns
    -------
    Run

    Raises
    ------
    InputError
        ``source="s2,s1"`` (a pair compares one sensor), local images, no AOI, no key.
    DataError, SourceError
        As for :func:`sitewatch.run.detect`.
    """
    from sitewatch.errors import InputError, arg
    from sitewatch.report import check_output_dir, write_result
    from sitewatch.run import Run, image_window, resolve_aoi
    from sitewatch.sources._http import NetStats

    if job.scenes.source != "s1":
        raise InputError(f"detect compares one sensor: {arg('source')} s1, not {job.scenes.source}")
    windows = [image_window(job.before, "before"), image_window(job.after, "after")]
    aoi = resolve_aoi(job.aoi)
    check_output_dir(job.out, overwrite=job.overwrite)
    r = job.radar
    result, rasters = radar_pair(
        aoi,
        windows[0],
        windows[1],
        alpha=r.alpha,
        enl=r.enl,
        scenes=r.scenes,
        orbit=r.orbit,
        url=job.scenes.stac_url,
        cache=job.scenes.open_cache(),
        stats=NetStats(),
    )
    if progress is not None:
        progress(f"radar: orbit {result.provenance['parameters']['orbit']}")
    out = write_result(
        result,
        job.out,
        overwrite=job.overwrite,
        command=_command(job),
        report=job.report,
        extra=_raster_files(result.grid, rasters),
        redact_paths=job.redact_paths,
    )
    return Run(result=result, out=out)


def timeline_radar(job: Any, *, progress: Any = None) -> Any:
    """Run a :class:`~sitewatch.run.TimelineJob` whose scenes are Sentinel-1.

    ``source="s1"``: every scene of one orbit geometry between ``start`` and ``end``,
    tested with the omnibus test (:func:`radar_series`); ``source="s2,s1"``: that and
    the optical timeline, fused (:func:`sitewatch.fusion.timeline_fused`).

    Returns
    -------
    Run
        ``timeline`` is the radar dates (``s1``) or the optical Timeline (``s2,s1``).
    """
    from sitewatch.errors import InputError, arg
    from sitewatch.report import check_output_dir, write_result
    from sitewatch.run import Run, resolve_aoi
    from sitewatch.sources._http import NetStats
    from sitewatch.sources.stac import parse_period

    if job.images:
        raise InputError(
            f"{arg('source')} {job.scenes.source} searches Sentinel-1 scenes; "
            f"{arg('images')} are optical files"
        )
    if not (job.start and job.end):
        raise InputError(f"give the period ({arg('from')} and {arg('to')})")
    start, end = parse_period(job.start, job.end)
    aoi = resolve_aoi(job.aoi)
    check_output_dir(job.out, overwrite=job.overwrite)
    if job.scenes.source == "s2,s1":
        from sitewatch.fusion import timeline_fused

        return timeline_fused(job, aoi, start, end, progress=progress)
    r = job.radar
    result, extra = radar_series(
        aoi,
        start,
        end,
        alpha=r.alpha,
        enl=r.enl,
        orbit=r.orbit,
        url=job.scenes.stac_url,
        cache=job.scenes.open_cache(),
        stats=NetStats(),
    )
    out = write_result(
        result,
        job.out,
        overwrite=job.overwrite,
        command=_command(job),
        extra=series_files(result, extra),
        redact_paths=job.redact_paths,
    )
    return Run(result=result, out=out, timeline=extra["dates"])


def series_files(result: Any, extra: dict[str, Any]) -> Any:
    """Writer of a radar series' own files: first-change index, p-value, dB, timeline files.

    ``timeline.csv`` has one row per (polygon, date): the share of the polygon observed
    and the area flagged as changed on or before that date.
    """
    import csv
    import io
    import json
    from pathlib import Path

    test = extra["test"]
    rasters = _raster_files(
        result.grid,
        {"first_change": test.first_change, "p_value": test.p_first, "db": test.db_first},
    )

    def write(tmp: Path) -> None:
        rasters(tmp)
        dates = extra["dates"]
        doc = {
            "sensor": "radar",
            "dates": dates,
            "from": dates[0],
            "to": dates[-1],
            "n_persistent": len(result.features),
            "n_transient": 0,
            "first_change_index": "first_change.tif holds the index into dates (-1: none)",
            "pixels_changed_per_date": [int(c.sum()) for c in test.changed],
            "regions": [
                {
                    k: f["properties"][k]
                    for k in (
                        "id",
                        "first_seen",
                        "p_value",
                        "db_vv",
                        "db_vh",
                        "orbit",
                        "looks",
                        "area_m2",
                    )
                }
                for f in result.features
            ],
        }
        (tmp / "timeline.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        labels, _ = label_regions(result.mask)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["region", "sensor", "date", "observed", "changed_m2"])
        for f in result.features:
            c, r = ~result.grid.transform @ _centre_xy(f, result.grid)
            lab = labels[
                min(max(int(r), 0), labels.shape[0] - 1), min(max(int(c), 0), labels.shape[1] - 1)
            ]
            region = labels == lab if lab else np.zeros(labels.shape, bool)
            first = test.first_change[region]
            seen = np.isfinite(test.p_series[region])
            for j, d in enumerate(dates):
                changed = int(((first >= 0) & (first <= j)).sum()) * result.grid.pixel_area_m2
                share = round(float(seen.mean()), 3) if seen.size else 0.0
                w.writerow([f["id"], "radar", d, share, round(changed, 1)])
        (tmp / "timeline.csv").write_text(buf.getvalue(), encoding="utf-8")

    return write


def _centre_xy(feature: dict[str, Any], grid: Grid) -> tuple[float, float]:
    """A point inside the feature's polygon, in the grid's CRS."""
    from shapely.geometry import shape

    from sitewatch.grid import from_lonlat

    geom = from_lonlat(shape(feature["geometry"]), grid.crs)
    p = geom.representative_point()
    return p.x, p.y
