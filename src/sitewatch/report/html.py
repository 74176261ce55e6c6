"""``report.html``: one self-contained page of evidence a journalist can open offline.

Built only from the run folder (:func:`~sitewatch.report.run.load_run`), so
``sitewatch report RUN_DIR`` rebuilds it anywhere. Images are embedded as data URIs:
the page is a single file that survives being e-mailed on its own.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sitewatch.prepare.coregister import coreg_residual
from sitewatch.report.run import RunData, load_run

__all__ = ["build_report"]

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1100px;
padding:1.2em;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6em;margin:.2em 0}
h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.92em;margin:.6em 0}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:.8em}.grid figure{margin:0}
figure img{max-width:520px;border:1px solid #ccc}.chips img{max-width:240px}
figcaption{font-size:.85em;color:#555}.warn{background:#fff4e5;border-left:4px solid #f0a030;
padding:.4em .8em;margin:.5em 0}.muted{color:#666;font-size:.9em}code{font-size:.9em}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _fmt(value: Any, spec: str = ".2f") -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, float)):
        return format(value, spec)
    return _e(value)


def _p(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _latlon(c: Any) -> str:
    if not isinstance(c, list) or len(c) != 2:
        return "–"
    return f"{c[1]:.5f}°N {c[0]:.5f}°E"


def _provenance(run: RunData) -> str:
    aoi = run.manifest.get("aoi") or {}
    if not aoi:
        return "<p>No AOI: the analysis covers the overlap of the two images.</p>"
    prov = aoi.get("provenance") or {}
    rows = [
        ("AOI", f"{_e(aoi.get('name'))} (<code>{_e(aoi.get('id'))}</code>)"),
        ("region", _e(prov.get("region"))),
        ("polygon", f"{_e(aoi.get('geometry_kind'))}, {_fmt(aoi.get('area_m2'), ',.0f')} m²"),
        ("location confidence", _e(aoi.get("confidence"))),
    ]
    parts = ["<table>"] + [f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows] + ["</table>"]
    if aoi.get("geometry_kind") == "working_box":
        parts.append(
            '<p class="warn"><b>Working box.</b> The polygon is a box drawn around sourced '
            "points, not a sourced footprint: change outside the facility itself may fall "
            f"inside it. {_e(prov.get('geometry_note'))}</p>"
        )
    points = prov.get("points") or []
    if points:
        parts.append("<h3>Sourced points</h3><ul>")
        for p in points:
            parts.append(
                f"<li>{_e(p.get('name'))}: {_fmt(p.get('lat'), '.6f')}, "
                f"{_fmt(p.get('lon'), '.6f')} ({_e(p.get('confidence'))}; {_e(p.get('source'))})"
                "</li>"
            )
        parts.append("</ul>")
    sources = prov.get("sources") or []
    if sources:
        parts.append("<h3>Sources</h3><ul>")
        for s in sources:
            url = s.get("url")
            link = f' <a href="{_e(url)}">{_e(url)}</a>' if url else ""
            parts.append(
                f"<li>{_e(s.get('outlet'))}, {_e(s.get('date'))}: “{_e(s.get('title'))}”"
                f"{link}. <span class='muted'>{_e(s.get('supports'))}</span></li>"
            )
        parts.append("</ul>")
    conflicts = prov.get("conflicts") or []
    if conflicts:
        parts.append("<h3>Where sources disagree</h3><ul>")
        parts += [f"<li>{_e(c)}</li>" for c in conflicts]
        parts.append("</ul>")
    events = [e for e in prov.get("events") or [] if e.get("observable", True)]
    if events:
        parts.append("<h3>Reported events visible from space</h3><ul>")
        parts += [
            f"<li>{_e(e.get('date'))}: {_e(e.get('event'))} <span class='muted'>"
            f"({_e(e.get('source'))})</span></li>"
            for e in events
        ]
        parts.append("</ul>")
    return "\n".join(parts)


def _inputs(run: RunData) -> str:
    inputs = run.manifest.get("inputs") or {}
    rows = []
    for key in ("before", "after"):
        src = inputs.get(key) or {}
        if src.get("kind") == "stac-composite":
            what = f"median composite of {len(src.get('item_ids', []))} scenes: " + ", ".join(
                f"<code>{_e(i)}</code>" for i in src.get("item_ids", [])
            )
        elif src.get("item_id"):
            cc = src.get("cloud_cover")
            what = f"STAC item <code>{_e(src['item_id'])}</code>" + (
                f", scene cloud {cc:.1f} %" if isinstance(cc, (int, float)) else ""
            )
        else:
            what = f"<code>{_e(src.get('path'))}</code>"
        label = run.before_label if key == "before" else run.after_label
        rows.append(f"<tr><th>{key}</th><td>{_e(label)}</td><td>{what}</td></tr>")
    return "<table><tr><th></th><th>date(s)</th><th>imagery</th></tr>" + "".join(rows) + "</table>"


def _changes_table(run: RunData) -> str:
    if not run.features:
        return "<p><b>No change polygon</b> passed the threshold and the minimum mapping unit.</p>"
    head = (
        "<tr><th>id</th><th>area m²</th><th>centre</th><th>first seen</th><th>score mean</th>"
        "<th>score max</th><th>P(no change)</th><th>clear around</th></tr>"
    )
    rows = []
    for f in run.features:
        p = f.get("properties", {})
        centre = _latlon(p.get("centroid")) if run.crs else _e(p.get("centroid"))
        seen = f" (seen by {_e(p['seen_by'])})" if p.get("seen_by") else ""
        rows.append(
            f"<tr><td><a href='#{_e(p.get('id'))}'>{_e(p.get('id'))}</a></td>"
            f"<td class=n>{_fmt(p.get('area_m2'), ',.0f')}</td><td>{centre}</td>"
            f"<td>{_e(p.get('first_seen'))}{seen}</td>"
            f"<td class=n>{_fmt(p.get('score_mean'))}</td>"
            f"<td class=n>{_fmt(p.get('score_max'))}</td>"
            f"<td class=n>{_p(p.get('p_no_change', p.get('p_value')))}</td>"
            f"<td class=n>{_fmt(p.get('clear_fraction'), '.0%')}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _timeline(run: RunData) -> str:
    csv_path, png = run.path / "timeline.csv", run.path / "timeline.png"
    if not csv_path.is_file():
        return ""
    with csv_path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    parts = ["<h2>Timeline</h2>"]
    summary = run.path / "timeline.json"
    if summary.is_file():
        info = json.loads(summary.read_text(encoding="utf-8"))
        parts.append(
            f"<p>{len(info.get('dates', []))} dates from {_e(info.get('from'))} to "
            f"{_e(info.get('to'))}; {info.get('n_persistent', 0)} persistent change region(s), "
            f"{info.get('n_transient', 0)} transient region(s) dropped (seen, then gone).</p>"
        )
    if png.is_file():
        parts.append(f"<figure>{_img(png, 'score over time')}</figure>")
    regions = [r for r in rows if r.get("kind", "region") == "region"] or rows
    if regions:
        keys = list(regions[0].keys())
        parts.append("<table><tr>" + "".join(f"<th>{_e(k)}</th>" for k in keys) + "</tr>")
        for r in regions[:50]:
            parts.append("<tr>" + "".join(f"<td>{_e(r[k])}</td>" for k in keys) + "</tr>")
        parts.append("</table>")
    return "\n".join(parts)


RADAR_CAVEATS = [
    "Radar (Sentinel-1 RTC, 10 m): a polygon is a place where backscatter changed beyond "
    "what speckle explains at the chosen false-alarm rate (alpha, per pixel). It changes for "
    "new walls and roofs (double bounce), but also for soil moisture, flooding, crops and "
    "parked vehicles or stacked material.",
    "Only scenes of one pass direction and relative orbit are compared. On steep slopes "
    "facing the radar, layover folds several slopes into one pixel; on slopes facing away, "
    "radar shadow leaves no signal (no data): neither place can be judged.",
    "A building smaller than a few 10 m pixels is rarely found: one look gives about 4.4 "
    "looks of speckle, so single pixels need a very strong change. Averaging more scenes "
    "(more looks) finds weaker changes but blurs when they happened.",
]


def _method(run: RunData) -> str:
    man = run.manifest
    diag = man.get("diagnostics") or {}
    thr = diag.get("threshold") or run.meta.get("threshold") or {}
    coreg = diag.get("coregistration") or {}
    params = man.get("parameters") or {}
    cloud = diag.get("cloud_masked_m2") or {}
    rows = [
        ("method", _e(params.get("method"))),
        ("threshold", f"{_fmt(thr.get('value'), '.3f')}: {_e(thr.get('why'))}"),
        ("minimum mapping unit", f"{_fmt(diag.get('min_area_m2'), ',.0f')} m²"),
        ("grid", f"{_e((man.get('grid') or {}).get('crs'))}, {_fmt(run.pixel_size_m, '.1f')} m"),
        ("co-registration", _e(coreg.get("note") or coreg.get("flag_reason") or coreg)),
        ("observed in both images", _fmt(diag.get("valid_fraction"), ".1%")),
        (
            "cloud-masked",
            f"before {_fmt(cloud.get('before'), ',.0f')} m², "
            f"after {_fmt(cloud.get('after'), ',.0f')} m²",
        ),
        ("unobserved", f"{_fmt(diag.get('unobserved_m2'), ',.0f')} m²"),
    ]
    table = "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"
    caveats = [
        "A polygon is a place where the two images differ more than the rest of the area "
        "does, in a way that looks like building (structure and spectrum both changed). "
        "It is not proof of construction: check the before/after chips, and a "
        "very-high-resolution image (<code>sitewatch wayback ID --change RUN:ID</code>).",
        "Clouds, haze, snow, shadows of a low sun, crops and parked ships or vehicles can "
        "still cause polygons where the cloud mask misses them.",
        f"Pixels are {run.pixel_size_m:.0f} m: a building smaller than a few pixels may be "
        "missed, and outlines are about a pixel wider than the object.",
    ]
    if params.get("sensor") == "radar" or diag.get("fusion"):
        caveats += RADAR_CAVEATS
    residual = coreg_residual(coreg)
    if isinstance(residual, (int, float)) and residual > 0.5:
        caveats.append(
            f"Co-registration residual {residual:.2f} px: edges of unchanged buildings may "
            "show as thin false change."
        )
    items = "".join(f"<li>{c}</li>" for c in caveats)
    return f"{table}<h3>Caveats</h3><ul>{items}</ul>"


def build_report(run_dir: str | Path) -> Path:
    """Render quicklooks, chips and ``report.html`` into a run folder.

    Parameters
    ----------
    run_dir : path
        A folder written by ``sitewatch detect`` / ``demo`` (or the temporary
        folder being written).

    Returns
    -------
    Path
        The ``report.html`` written.
    """
    run = load_run(run_dir)
    root = run.path
    # Render into a staging folder and swap it in at the end: a failure leaves the
    # previous report, quicklooks and chips as they were.
    stage = Path(tempfile.mkdtemp(prefix=".report-", dir=root))
    try:
        return _build(run, root, stage)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _build(run: RunData, root: Path, stage: Path) -> Path:
    from sitewatch.report.quicklooks import render_chips, render_quicklooks

    looks = render_quicklooks(run, stage / "quicklooks")
    chips = render_chips(run, stage)
    aoi = run.manifest.get("aoi") or {}
    title = f"{aoi.get('name') or 'Change'}: {run.before_label} → {run.after_label}"
    n = len(run.features)
    total = sum(float(f["properties"].get("area_m2") or 0) for f in run.features)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(title)} · sitewatch</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p><b>{n} change polygon{'s' if n != 1 else ''}</b>, {total:,.0f} m² in total. "
        f"<span class='muted'>sitewatch {_e((run.manifest.get('versions') or {}).get('sitewatch'))}"
        f", run {_e(run.manifest.get('created_utc'))}; report built "
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}.</span></p>",
        "<h2>Where, and on whose word</h2>",
        _provenance(run),
        "<h2>Imagery used</h2>",
        _inputs(run),
        "<h2>Changes</h2>",
        _changes_table(run),
        "<div class='grid'>",
    ]
    captions = {
        "before": f"before, {run.before_label}",
        "after": f"after, {run.after_label}",
        "score": "change score",
        "overlay": "change polygons on the after image",
    }
    for key in ("before", "after", "score", "overlay"):
        if key in looks:
            parts.append(
                f"<figure>{_img(looks[key], captions[key])}"
                f"<figcaption>{_e(captions[key])}</figcaption></figure>"
            )
    parts.append("</div>")
    for f in run.features:
        fid = f["properties"].get("id")
        if fid not in chips:
            continue
        p = f["properties"]
        parts.append(
            f"<h3 id='{_e(fid)}'>{_e(fid)}: {_fmt(p.get('area_m2'), ',.0f')} m² at "
            f"{_latlon(p.get('centroid')) if run.crs else _e(p.get('centroid'))}</h3>"
            "<div class='grid chips'>"
        )
        for key, path in chips[fid].items():
            parts.append(
                f"<figure>{_img(path, f'{fid} {key}')}<figcaption>{_e(key)}</figcaption></figure>"
            )
        parts.append("</div>")
    parts.append(_timeline(run))
    parts += ["<h2>Method and caveats</h2>", _method(run)]
    command = run.manifest.get("command") or []
    how = (
        f"Command: <code>{_e(' '.join(command))}</code>"
        if command
        else "Made from Python (sitewatch's API), not from the command line"
    )
    parts.append(
        f"<h2>Re-run</h2><p>{how}. Every input, parameter and package version is in "
        "<code>manifest.json"
        "</code>; the polygons are in <code>changes.geojson</code> and <code>changes.gpkg</code>."
        "</p><p class='muted'>Sentinel-2 imagery: contains modified Copernicus Sentinel data. "
        "Sentinel-1 RTC: contains modified Copernicus Sentinel data, terrain-corrected by "
        "Catalyst for the Microsoft Planetary Computer. "
        "Landsat imagery: courtesy of the U.S. Geological Survey.</p></body></html>"
    )
    (stage / "report.html").write_text("\n".join(parts), encoding="utf-8")
    for name in ("quicklooks", "chips"):
        old = root / name
        if old.exists():
            shutil.rmtree(old)
        if (stage / name).exists():
            os.replace(stage / name, old)
    out = root / "report.html"
    os.replace(stage / "report.html", out)
    return out
