"""detect_series: a dated series of images over an AOI → tracked, persistent change.

The I/O around :func:`sitewatch.timeline.track_changes`: read every image onto the
AOI grid, track the regions, and package the kept ones as a
:class:`~sitewatch.pipeline.ChangeResult` (so the run folder, report and manifest
are those of ``detect``) plus the :class:`~sitewatch.timeline.Timeline` itself.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sitewatch.aoi import AOI
from sitewatch.detect.run import DetectOptions
from sitewatch.detect.threshold import Threshold
from sitewatch.errors import DataError
from sitewatch.pipeline import (
    ChangeResult,
    _aoi_grid,
    _common_bands,
    _rgb,
    _rgb_indices,
    annotate_features,
)
from sitewatch.sources.local import open_local
from sitewatch.timeline import Timeline, track_changes
from sitewatch.vectorize import vectorize_changes

__all__ = ["detect_series", "timeline_files"]


def detect_series(
    sources: Sequence[Any],
    *,
    aoi: AOI,
    options: DetectOptions | None = None,
    resolution: float | None = None,
    min_persistence: float = 0.5,
    labels: Sequence[str] | None = None,
) -> tuple[ChangeResult, Timeline]:
    """Track change through a dated series of images over an AOI.

    Parameters
    ----------
    sources : sequence
        Paths, or source objects with ``read`` (e.g. STAC scenes), oldest first.
    aoi : AOI
        Located AOI; every image is resampled onto its UTM grid.
    options : DetectOptions, optional
    resolution : float, optional
        AOI grid pixel size in metres (default: the first image's).
    min_persistence : float
        See :func:`~sitewatch.timeline.track_changes`.
    labels : sequence of str, optional
        Date labels (default: each image's acquisition date).

    Returns
    -------
    (ChangeResult, Timeline)
        The result holds the kept (persistent or unconfirmed) regions with their
        timeline attributes, scored baseline → last compared date.
    """
    t0 = time.perf_counter()
    opts = options or DetectOptions()
    srcs = [s if hasattr(s, "read") else open_local(s) for s in sources]
    if len(srcs) < 2:
        raise DataError("a timeline needs at least two dated images")
    names = list(srcs[0].band_names)
    for s in srcs[1:]:
        names = [n for n in _common_bands(srcs[0], s)[0] if n in names]
    if not names:
        raise DataError("the images of the series share no band")
    grid, inside, _ = _aoi_grid(aoi, srcs[0], srcs[-1], resolution)
    scenes = [s.read(grid, bands=names) for s in srcs]
    dates = (
        list(labels)
        if labels is not None
        else [s.acquired or f"image {i + 1}" for i, s in enumerate(srcs)]
    )
    tl = track_changes(
        [sc.data for sc in scenes],
        [sc.valid & inside for sc in scenes],
        dates,
        band_names=names,
        pixel_area_m2=grid.pixel_area_m2,
        options=opts,
        min_persistence=min_persistence,
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
    annotate_features(features, dates[0], dates[last], opts, threshold, diag)
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
        "aoi_coverage": 1.0,
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
            "dates": dates,
            "compared": [dates[t] for t in compared],
            "n_regions": len(tl.regions),
            "n_persistent": sum(r.status == "persistent" for r in tl.regions),
            "n_unconfirmed": sum(r.status == "unconfirmed" for r in tl.regions),
            "n_transient": tl.n_transient,
            "min_persistence": min_persistence,
            "polygon_of_region": polygon_of_region,
        },
    }
    provenance = {
        "before": {"source": srcs[0], "acquired": dates[0]},
        "after": {"source": srcs[last], "acquired": dates[last]},
        "series": [s.describe() for s in srcs],
        "aoi": aoi,
        "parameters": {
            **opts.as_dict(),
            "resolution": resolution,
            "pixel_size": None,
            "grid_rule": "aoi-utm",
            "min_persistence": min_persistence,
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
    for r in sorted(tl.regions, key=lambda r: (r.status == "transient", -r.area_last_m2)):
        if shown >= 12:
            break
        ys = [d["score_mean"] if d["observed"] >= 0.5 else np.nan for d in r.per_date]
        ys = [np.nan if v is None else v for v in ys]
        style = "--" if r.status == "transient" else "-"
        name = ids.get(r.label, f"t{r.label:03d}")
        ax.plot(x, ys, style, marker="o", label=f"{name} ({r.status})")
        shown += 1
    ax.set_xticks(x, [d[:10] if len(d) <= 10 else d for d in tl.dates], rotation=30, ha="right")
    ax.set_ylabel("mean change score vs first date")
    ax.set_title("Change regions through time (dashed: transient, dropped)")
    ax.grid(alpha=0.3)
    if shown:
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
