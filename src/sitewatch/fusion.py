"""Optical and radar timelines of one AOI, followed region by region (``--source s2,s1``).

The optical timeline (clearest Sentinel-2 scene per step, each compared with the first)
and the radar one (every Sentinel-1 RTC scene of one orbit geometry, omnibus test) run on
the AOI's 10 m UTM grid. Their regions are matched by footprint: a region both flag is
"seen by optical and radar", and its ``first_seen`` is the earlier of the two. Each
region's history interleaves both sensors' dates, so a step the optical series skipped
for cloud is no longer a hole when radar observed it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import shape

__all__ = ["fuse_regions", "fused_summary", "step_coverage", "timeline_fused"]


def _date(text: str | None) -> str:
    return (text or "")[:10]


def fuse_regions(
    optical: Sequence[dict[str, Any]], radar: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Optical and radar change polygons, matched by overlap, as one list of Features.

    A radar polygon that overlaps an optical one is merged into it: the Feature keeps the
    optical geometry and gains ``seen_by`` = ``"optical and radar"``, ``first_seen``
    (the earlier date), ``first_seen_optical``, ``first_seen_radar`` and the radar
    evidence (``p_value``, ``db_vv``, ``db_vh``, ``orbit``, ``looks``, ``radar_ids``).
    Unmatched polygons keep their own properties with ``seen_by`` ``"optical"`` or
    ``"radar"``. Ids are renumbered ``c001``… by area.

    Examples
    --------
    >>> from shapely.geometry import box, mapping
    >>> def feat(x, **p):
    ...     return {"type": "Feature", "geometry": mapping(box(x, 0, x + 1, 1)), "properties": p}
    >>> o = [feat(0, area_m2=9, first_seen="2024-10-05")]
    >>> r = [feat(0.5, area_m2=8, first_seen="2023-04-29", p_value=1e-9, orbit="ascending 127"),
    ...      feat(5, area_m2=3, first_seen="2022-01-01")]
    >>> [(f["properties"]["seen_by"], f["properties"]["first_seen"]) for f in fuse_regions(o, r)]
    [('optical and radar', '2023-04-29'), ('radar', '2022-01-01')]
    """
    radar_geoms = [shape(f["geometry"]) for f in radar]
    used: set[int] = set()
    out: list[dict[str, Any]] = []
    for f in optical:
        g = shape(f["geometry"])
        hits = [i for i, rg in enumerate(radar_geoms) if rg.intersects(g)]
        feat = copy.deepcopy(f)
        p = feat["properties"]
        p["sensor"] = "optical"
        p["optical_id"] = f.get("id")
        if not hits:
            p["seen_by"] = "optical"
            out.append(feat)
            continue
        used.update(hits)
        best = min(hits, key=lambda i: radar[i]["properties"].get("p_value") or 1.0)
        rp = radar[best]["properties"]
        dates = [d for d in (_date(p.get("first_seen")), _date(rp.get("first_seen"))) if d]
        p.update(
            {
                "seen_by": "optical and radar",
                "first_seen_optical": p.get("first_seen"),
                "first_seen_radar": rp.get("first_seen"),
                "first_seen": min(dates) if dates else None,
                "p_value": rp.get("p_value"),
                "db_vv": rp.get("db_vv"),
                "db_vh": rp.get("db_vh"),
                "orbit": rp.get("orbit"),
                "looks": rp.get("looks"),
                "radar_ids": [radar[i].get("id") for i in hits],
            }
        )
        out.append(feat)
    for i, f in enumerate(radar):
        if i in used:
            continue
        feat = copy.deepcopy(f)
        feat["properties"]["seen_by"] = "radar"
        out.append(feat)
    out.sort(key=lambda f: -float(f["properties"].get("area_m2") or 0.0))
    for n, f in enumerate(out, start=1):
        f["id"] = f"c{n:03d}"
        f["properties"]["id"] = f["id"]
    return out


def step_coverage(
    steps: Sequence[tuple[str, str]], optical_dates: Sequence[str], radar_dates: Sequence[str]
) -> list[dict[str, Any]]:
    """What each time step observed: the optical date (or none) and the radar dates.

    Examples
    --------
    >>> step_coverage([("2021-01-01", "2021-06-30")], [], ["2021-03-02"])[0]["observed_by"]
    'radar'
    """
    rows = []
    for a, b in steps:
        opt = [d for d in optical_dates if a <= _date(d) <= b]
        rad = [d for d in radar_dates if a <= _date(d) <= b]
        by = " and ".join(s for s, d in (("optical", opt), ("radar", rad)) if d) or "nothing"
        rows.append({"step": f"{a}/{b}", "optical": opt, "radar": rad, "observed_by": by})
    return rows


def _region_history(
    feature: dict[str, Any],
    optical_track: dict[str, Any] | None,
    radar_test: Any,
    radar_dates: Sequence[str],
    grid: Any,
) -> list[dict[str, Any]]:
    """A region's dates from both sensors: observed share and flagged area per date."""
    import rasterio.features

    from sitewatch.grid import from_lonlat

    rows: list[dict[str, Any]] = []
    if optical_track is not None:
        for d in optical_track.get("per_date", []):
            rows.append({"sensor": "optical", **d})
    geom = from_lonlat(shape(feature["geometry"]), grid.crs)
    inside = rasterio.features.rasterize(
        [(geom, 1)], out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8"
    ).astype(bool)
    if inside.any():
        first = radar_test.first_change[inside]
        observed = np.isfinite(radar_test.p_series[inside])
        for j, d in enumerate(radar_dates):
            flagged = int(((first >= 0) & (first <= j)).sum())
            rows.append(
                {
                    "sensor": "radar",
                    "date": d,
                    "observed": round(float(observed.mean()), 3),
                    "changed_m2": round(flagged * grid.pixel_area_m2, 1),
                }
            )
    rows.sort(key=lambda r: (_date(r["date"]), r["sensor"]))
    return rows


def timeline_fused(job: Any, aoi: Any, start: str, end: str, *, progress: Any = None) -> Any:
    """A :class:`~sitewatch.run.TimelineJob` with ``source="s2,s1"``: both, fused.

    The optical timeline (Sentinel-2, ``job.scenes`` with ``source="s2"``: its
    ``stac_url`` is the optical service) and the radar one (always the Planetary
    Computer profile, moved by ``$SITEWATCH_PC_STAC_URL``; its account key is checked
    first, before any request), their regions matched (:func:`fuse_regions`), written
    as one run folder: the optical outputs with the fused Features, ``fusion.json``,
    ``radar/`` (the radar series' rasters) and ``radar_before.tif``/``radar_after.tif``
    (VV dB, for the report's radar chips).

    Returns
    -------
    Run
        ``result`` holds the fused Features; ``timeline`` is the optical Timeline.
    """
    from dataclasses import replace

    from sitewatch.radar import radar_series, series_files
    from sitewatch.report import write_result
    from sitewatch.report.write import _write_raster
    from sitewatch.run import Run, stac_series
    from sitewatch.series import detect_series, timeline_files
    from sitewatch.sources._http import NetStats
    from sitewatch.sources.profiles import check_s1_access, resolve_profile
    from sitewatch.timeline import time_steps

    check_s1_access(resolve_profile("planetary-computer", source="s1"))
    cache, stats = job.scenes.open_cache(), NetStats()
    r = job.radar
    radar, rx = radar_series(
        aoi,
        start,
        end,
        alpha=r.alpha,
        enl=r.enl,
        orbit=r.orbit,
        url="planetary-computer",
        cache=cache,
        stats=stats,
    )
    sources = stac_series(
        aoi,
        start,
        end,
        job.every,
        scenes=replace(job.scenes, source="s2"),
        cache=cache,
        stats=stats,
        progress=progress,
    )
    result, tl = detect_series(
        sources,
        aoi=aoi,
        options=job.options,
        resolution=job.resolution,
        min_persistence=job.min_persistence,
        model=job.model,
        fdr=job.fdr,
    )
    info = result.diagnostics["timeline"]
    tracks = {
        pid: next((r.as_dict() for r in tl.regions if str(r.label) == label), None)
        for label, pid in (info.get("polygon_of_region") or {}).items()
    }
    fused = fuse_regions(result.features, radar.features)
    renamed = {}
    for f in fused:
        p = f["properties"]
        old = p.pop("optical_id", None)
        if old is not None:
            renamed[old] = f["id"]
        p["history"] = _region_history(f, tracks.get(old), rx["test"], rx["dates"], radar.grid)
    info["polygon_of_region"] = {
        label: renamed.get(pid, pid) for label, pid in (info.get("polygon_of_region") or {}).items()
    }
    steps = time_steps(start, end, job.every)
    coverage = step_coverage(steps, info["dates"], rx["dates"])
    holes_filled = [c["step"] for c in coverage if c["observed_by"] == "radar"]
    result.features[:] = fused
    result.diagnostics["fusion"] = {
        "sources": ["s2", "s1"],
        "radar_orbit": radar.provenance["parameters"]["orbit"],
        "radar_dates": rx["dates"],
        "radar_alpha": r.alpha,
        "radar_enl": radar.provenance["parameters"]["enl_per_scene"],
        "steps": coverage,
        "steps_seen_only_by_radar": holes_filled,
        "n_optical_and_radar": sum(
            f["properties"]["seen_by"] == "optical and radar" for f in fused
        ),
        "n_optical_only": sum(f["properties"]["seen_by"] == "optical" for f in fused),
        "n_radar_only": sum(f["properties"]["seen_by"] == "radar" for f in fused),
    }
    result.diagnostics["n_polygons"] = len(fused)
    result.provenance["radar"] = radar.provenance["series"]
    radar_files = series_files(radar, rx)
    x, valid = rx["stack"], rx["valid"]

    def extra(tmp: Path) -> None:
        timeline_files(result, tl, tmp)
        radar_dir = tmp / "radar"
        radar_dir.mkdir()
        radar_files(radar_dir)
        from sitewatch.detect.sar import to_db

        for name, k in (("radar_before", 0), ("radar_after", -1)):
            vv = to_db(x[k, 0])
            vv[~valid] = np.nan
            _write_raster(tmp / f"{name}.tif", vv, radar.grid, nodata=float("nan"))
        (tmp / "fusion.json").write_text(
            json.dumps(result.diagnostics["fusion"], indent=1) + "\n", encoding="utf-8"
        )

    out = write_result(
        result,
        job.out,
        overwrite=job.overwrite,
        command=list(job.command) if job.command is not None else None,
        extra=extra,
        redact_paths=job.redact_paths,
    )
    return Run(result=result, out=out, timeline=tl)


def fused_summary(result: Any, out: Path) -> str:
    """What ``timeline --source s2,s1`` prints: steps by sensor, regions and who saw them."""
    fusion = result.diagnostics["fusion"]
    info = result.diagnostics["timeline"]
    aoi = result.provenance["aoi"]
    lines = [
        f"sitewatch timeline: {aoi.id}, optical {len(info['dates'])} dates + radar "
        f"{len(fusion['radar_dates'])} dates (orbit {fusion['radar_orbit']})"
    ]
    for c in fusion["steps"]:
        opt = ", ".join(_date(d) for d in c["optical"]) or "-"
        rad = ", ".join(c["radar"]) or "-"
        lines.append(f"  {c['step']}: optical {opt}; radar {rad}")
    for f in result.features:
        p = f["properties"]
        lines.append(
            f"    {p['id']}  {p['area_m2']:>9,.0f} m²  first seen {p['first_seen']}  "
            f"seen by {p['seen_by']}"
        )
    lines.append(f"  wrote {out}/")
    return "\n".join(lines)
