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
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sitewatch.report.exports import map_links
from sitewatch.report.run import RunData, load_run

if TYPE_CHECKING:
    import numpy as np

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
.summary{font-size:1.08em;background:#f4f8fb;border-left:4px solid #2b7bb9;padding:.6em 1em}
.legend{font-size:.88em;display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}
.legend dt{font-weight:600}.legend dd{margin:0}
.bar{display:inline-block;height:.6em;background:#2b7bb9;vertical-align:middle;margin-left:.3em}
.change{border-top:1px solid #ddd;margin-top:1em}.change h3{margin:.6em 0 .3em}
.compact{display:inline-block;vertical-align:top;width:520px;margin:.3em .8em .6em 0;
font-size:.85em}.compact .grid{gap:.4em}.compact figure img,.compact .cmp-stage img{width:120px}
.compact h3{font-size:1em;margin:.2em 0}.compact p{margin:.2em 0}
.compact .cmp input[type=range]{width:110px}
.cmp{display:none;margin:.4em 0}html.js .cmp{display:block}
.cmp-stage{position:relative;display:inline-block;line-height:0}
.cmp-stage img{display:block;max-width:520px;border:1px solid #ccc}
.cmp-stage img.cmp-top{position:absolute;top:0;left:0;clip-path:inset(0 50% 0 0)}
.cmp-line{position:absolute;top:0;bottom:0;left:50%;width:2px;background:#f0a030}
.cmp input[type=range]{width:260px;vertical-align:middle}
.cmp button{margin-left:.6em}.cmp label{font-size:.85em}
a:focus,button:focus,input:focus{outline:3px solid #f0a030;outline-offset:2px}
"""

#: Changes drawn with full chips and a full section; the rest get compact sections.
FULL_SECTIONS = 20

#: Inline script of the before/after comparison: no network, keyboard accessible (a
#: range input and a button). Without JavaScript the control stays hidden and the
#: before/after images are shown side by side.
SCRIPT = """
document.documentElement.classList.add('js');
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('.cmp').forEach(function (box) {
    var imgs = box.querySelectorAll('img[data-src-from]');
    imgs.forEach(function (img) {
      var from = document.getElementById(img.getAttribute('data-src-from'));
      if (from) { img.src = from.src; }
    });
    var top = box.querySelector('img.cmp-top');
    var line = box.querySelector('.cmp-line');
    var range = box.querySelector('input[type=range]');
    var blink = box.querySelector('button');
    var timer = null;
    function show(v) {
      range.value = v;
      top.style.clipPath = 'inset(0 ' + (100 - v) + '% 0 0)';
      line.style.left = v + '%';
      range.setAttribute('aria-valuetext', 'before on the left ' + v + '%, after on the right');
    }
    range.addEventListener('input', function () { show(range.value); });
    blink.addEventListener('click', function () {
      if (timer) {
        clearInterval(timer); timer = null;
        blink.setAttribute('aria-pressed', 'false'); show(50); return;
      }
      blink.setAttribute('aria-pressed', 'true');
      var on = false;
      timer = setInterval(function () { on = !on; show(on ? 100 : 0); }, 700);
    });
    show(range.value);
    box.setAttribute('data-ready', '1');
  });
});
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _img(path: Path, alt: str, *, id: str | None = None) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    ident = f' id="{_e(id)}"' if id else ""
    return f'<img{ident} src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _fmt(value: Any, spec: str = ".2f") -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, float)):
        return format(value, spec)
    return _e(value)


def _evidence(props: dict[str, Any]) -> tuple[float | None, str]:
    """−log10 P(no change) of a polygon and the text shown on hover."""
    log10 = props.get("p_no_change_log10")
    p = props.get("p_no_change", props.get("p_value"))  # radar polygons carry p_value
    if isinstance(log10, (int, float)) and math.isfinite(log10):
        value = -float(log10)
        hover = (
            f"P(no change) ≈ 1 in 10^{value:.0f} (geometric mean over the polygon)"
            if value >= 2
            else f"P(no change) ≈ {10**log10:.2g} (geometric mean over the polygon)"
        )
    elif isinstance(p, (int, float)) and p > 0:
        value = -math.log10(p)
        hover = f"P(no change) = {p:.4g} (mean over the polygon)"
    elif isinstance(p, (int, float)):
        return None, "P(no change) below 0.0001 (mean over the polygon; not resolved further)"
    else:
        return None, "no P(no change) for this run (IR-MAD could not be fitted)"
    if isinstance(p, (int, float)):
        hover += f"; arithmetic mean {p:.4g}" if p > 0 else "; arithmetic mean < 0.0001"
    return value, hover


def _evidence_cell(props: dict[str, Any]) -> str:
    value, hover = _evidence(props)
    if value is None:
        text = "> 4" if "below" in hover else "–"
        return f"<td class=n title='{_e(hover)}'>{text}</td>"
    width = max(1, round(min(value, EVIDENCE_CAP) / EVIDENCE_CAP * 60))
    return (
        f"<td class=n title='{_e(hover)}'>{value:,.0f}<span class=bar style='width:{width}px' "
        "aria-hidden=true></span></td>"
    )


EVIDENCE_CAP = 100.0
"""−log10 P at which the evidence bar is full (values beyond are printed, bar capped)."""


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
            f"<li>{_e(e.get('date'))}: {_e(e.get('event'))}"
            + (f" <span class='muted'>({_e(e['source'])})</span>" if e.get("source") else "")
            + "</li>"
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


COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "The change's name, c001 the largest; links to its section below."),
    (
        "area m²",
        "Ground area of the polygon in square metres (10,000 m² = 1 ha, about 1.4 "
        "football pitches).",
    ),
    (
        "centre",
        "Latitude and longitude of the polygon's centre (WGS 84), as a map or GPS shows them.",
    ),
    (
        "first seen",
        "Date of the first image in which the difference is there (with two images: the "
        "after date). It was not there on the before date; it may have appeared any time "
        "in between.",
    ),
    (
        "score mean",
        "How different the two images are inside the polygon, on the method's own scale, "
        "averaged over its pixels. A pixel counts as changed above the threshold (given "
        "under Method); a mean twice the threshold is a strong difference. It ranks changes "
        "within this run; it is not a probability.",
    ),
    ("score max", "The highest score of any pixel in the polygon (same scale)."),
    (
        "evidence",
        "How unlikely a difference this large would be if nothing had changed, as −log10 of "
        "P(no change) from a statistical model of the whole area (IR-MAD for optical "
        "images, the speckle test for radar): 3 means 1 in "
        "1,000, 10 means 1 in 10 billion. Higher means more clearly different, not more "
        "likely to be construction; clouds or a new crop also score high. Hover for P.",
    ),
    (
        "clear around",
        "Share of the polygon and of a 3-pixel ring around it seen cloud-free in both "
        "images. Below 100 % part of the place was hidden, so the outline may be incomplete.",
    ),
    (
        "maps",
        "Links to OpenStreetMap (what is mapped there) and to Esri's World Imagery Wayback "
        "(sharper pictures, each with its capture date) at the centre. They open external "
        "sites; nothing is fetched when this page is built or opened.",
    ),
)


def _area(m2: Any) -> str:
    if not isinstance(m2, (int, float)):
        return "–"
    return f"{m2 / 10_000:,.1f} ha" if m2 >= 10_000 else f"{m2:,.0f} m²"


def _centre(run: RunData, props: dict[str, Any]) -> str:
    return _latlon(props.get("centroid")) if run.crs else _e(props.get("centroid"))


def _links(run: RunData, props: dict[str, Any]) -> str:
    links = map_links(props, lonlat=run.crs is not None)
    if not links:
        return "–"
    fid = props.get("id")
    return (
        f"<a href='{_e(links['osm'])}' rel='noopener' title='{_e(fid)} on OpenStreetMap'>OSM</a>"
        f" · <a href='{_e(links['wayback'])}' rel='noopener' "
        f"title='{_e(fid)} in the Esri Wayback viewer'>Wayback</a>"
    )


def _legend() -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in COLUMNS)
    return f"<dl class='legend' id='legend' aria-label='what each column means'>{items}</dl>"


def _changes_table(run: RunData) -> str:
    if not run.features:
        return "<p><b>No change polygon</b> passed the threshold and the minimum mapping unit.</p>"
    head = (
        "<tr>"
        + "".join(f"<th scope='col' title='{_e(v)}'>{_e(k)}</th>" for k, v in COLUMNS)
        + "</tr>"
    )
    rows = []
    for f in run.features:
        p = f.get("properties", {})
        fid = _e(p.get("id"))
        seen = f" (seen by {_e(p['seen_by'])})" if p.get("seen_by") else ""
        rows.append(
            f"<tr><td><a href='#{fid}'>{fid}</a></td>"
            f"<td class=n>{_fmt(p.get('area_m2'), ',.0f')}</td><td>{_centre(run, p)}</td>"
            f"<td>{_e(p.get('first_seen'))}{seen}</td><td class=n>{_fmt(p.get('score_mean'))}</td>"
            f"<td class=n>{_fmt(p.get('score_max'))}</td>"
            f"{_evidence_cell(p)}"
            f"<td class=n>{_fmt(p.get('clear_fraction'), '.0%')}</td>"
            f"<td>{_links(run, p)}</td></tr>"
        )
    return (
        f"<table id='changes-table'>{head}{''.join(rows)}</table>"
        "<details open><summary>What the columns mean</summary>"
        f"{_legend()}</details>"
    )


def _day(label: str) -> str:
    """``2015-11-30`` as ``30 Nov 2015`` (other labels, e.g. windows, as they are)."""
    try:
        return (
            dt.date.fromisoformat(label[:10]).strftime("%-d %b %Y") if len(label) == 10 else label
        )
    except ValueError:
        return label


def _pixels(run: RunData, feature: dict[str, Any]) -> tuple[slice, slice] | None:
    """Row and column slices of a polygon's bounding box on the run's grid."""
    from sitewatch.report.quicklooks import _pixel_rings

    rings = _pixel_rings(run, feature.get("geometry"))
    if not rings:
        return None
    import numpy as np

    pts = np.concatenate(rings)
    h, w = run.shape
    c0, c1 = max(0, int(pts[:, 0].min())), min(w, math.ceil(pts[:, 0].max()))
    r0, r1 = max(0, int(pts[:, 1].min())), min(h, math.ceil(pts[:, 1].max()))
    if c1 <= c0 or r1 <= r0:
        return None
    return slice(r0, r1), slice(c0, c1)


def _looks(run: RunData, feature: dict[str, Any]) -> str | None:
    """What the true colour says of a change: brighter/darker, greener before or after."""
    import numpy as np

    if run.before_rgb is None or run.after_rgb is None:
        return None
    box = _pixels(run, feature)
    if box is None:
        return None
    inside = run.mask[box] == 1
    if not inside.any():
        return None
    b = run.before_rgb[(slice(None), *box)][:, inside]
    a = run.after_rgb[(slice(None), *box)][:, inside]
    ok = np.isfinite(b).all(axis=0) & np.isfinite(a).all(axis=0)
    if ok.sum() < 1:
        return None
    b, a = b[:, ok].mean(axis=1), a[:, ok].mean(axis=1)
    bright_b, bright_a = float(b.mean()), float(a.mean())
    green_b = float((b[1] - b[0]) / max(b[1] + b[0], 1e-9))
    green_a = float((a[1] - a[0]) / max(a[1] + a[0], 1e-9))
    words = []
    if bright_a > 1.15 * bright_b:
        words.append("brighter after")
    elif bright_a < bright_b / 1.15:
        words.append("darker after")
    if green_b > 0.0 and green_b - green_a > 0.03:
        words.append("greener before, possibly vegetation")
    elif green_a > 0.0 and green_a - green_b > 0.03:
        words.append("greener after")
    if not words:
        return "a change in colour rather than brightness"
    guess = ""
    if words[0] == "brighter after" and "vegetation" in " ".join(words):
        guess = "looks like new roofs or cleared ground "
    elif words[0] == "brighter after":
        guess = "looks like new roofs, paving or bare ground "
    elif words[0] == "darker after":
        guess = "could be new dark roofs, water, shadow or burnt ground "
    if not guess:
        return "; ".join(words)
    return f"{guess}({'; '.join(words)})"


def _summary(run: RunData) -> str:
    aoi = run.manifest.get("aoi") or {}
    where = aoi.get("name") or "the area both images cover"
    span = f"Between {_day(run.before_label)} and {_day(run.after_label)}"
    n = len(run.features)
    if n == 0:
        return (
            f"<p class='summary' id='summary'>{span}, the satellite images of {_e(where)} show "
            "no place that differs more than the rest of the area does (above the threshold "
            "and the minimum size). That is not proof that nothing was built: small or "
            "cloud-hidden changes can be missed (see Method and caveats).</p>"
        )
    total = sum(float(f["properties"].get("area_m2") or 0) for f in run.features)
    first = run.features[0]
    p = first.get("properties", {})
    at = ""
    c = p.get("centroid")
    if run.crs and isinstance(c, list) and len(c) == 2:
        ns, ew = ("N" if c[1] >= 0 else "S"), ("E" if c[0] >= 0 else "W")
        at = f" at {abs(c[1]):.3f} {ns} {abs(c[0]):.3f} {ew}"
    looks = _looks(run, first)
    looks_txt = f", {looks}" if looks else ""
    partial = sum(
        1
        for f in run.features
        if isinstance(f["properties"].get("clear_fraction"), (int, float))
        and f["properties"]["clear_fraction"] < 0.9
    )
    parts = [
        f"{span}, the satellite images of {_e(where)} differ markedly at "
        f"<b>{n} place{'s' if n != 1 else ''}</b>, {_area(total)} in total; the largest, "
        f"<a href='#{_e(p.get('id'))}'>{_e(p.get('id'))}</a>, {_area(p.get('area_m2'))}{at}"
        f"{_e(looks_txt)}.",
        "Each is a place where the two images differ more than the rest of the area, "
        "in colour and texture together. The method cannot tell construction from "
        "demolition, earthworks, a new crop or a missed cloud: check each one in its "
        "before/after pictures below and in a sharper image (the Wayback link) before "
        "reporting it.",
    ]
    if partial:
        parts.append(
            f"{partial} of them {'was' if partial == 1 else 'were'} partly hidden by cloud "
            "or outside the images (clear around below 90 %)."
        )
    return f"<p class='summary' id='summary'>{' '.join(parts)}</p>"


def _compare(key: str, label: str, before_id: str, after_id: str, *, small: bool = False) -> str:
    """A swipe/blink control over two images already in the page (no second copy).

    The after image lies under the before image, which is cut at the slider: before
    on the left of the line, after on its right.
    """
    return (
        f"<div class='cmp{' small' if small else ''}' role='group' "
        f"aria-label='{_e(label)}: compare before and after' id='cmp-{_e(key)}'>"
        f"<div class='cmp-stage'><img alt='{_e(label)} after' data-src-from='{_e(after_id)}'>"
        f"<img class='cmp-top' alt='{_e(label)} before' data-src-from='{_e(before_id)}'>"
        "<span class='cmp-line' aria-hidden='true'></span></div>"
        f"<br><label>◂ before <input type='range' min='0' max='100' step='1' value='50' "
        f"aria-label='{_e(label)}: where before gives way to after; arrow keys move the line'>"
        " after ▸</label>"
        "<button type='button' aria-pressed='false'>Blink</button></div>"
    )


def _img_id(fid: str, key: str) -> str:
    """Element id of a chip: ``img-c001-before``, ``img-c001-radar-VV-before``."""
    return "img-" + "-".join(f"{fid} {key}".split())


def _section(run: RunData, feature: dict[str, Any], images: dict[str, Path], *, full: bool) -> str:
    p = feature["properties"]
    fid = str(p.get("id"))
    value, hover = _evidence(p)
    evidence = f"evidence {value:,.0f} ({_e(hover)})" if value is not None else _e(hover)
    facts = (
        f"{_area(p.get('area_m2'))} at {_centre(run, p)}; first seen {_e(p.get('first_seen'))};"
        f" score mean {_fmt(p.get('score_mean'))}, max {_fmt(p.get('score_max'))}; "
        f"{evidence}; clear around {_fmt(p.get('clear_fraction'), '.0%')}. {_links(run, p)}"
    )
    looks = _looks(run, feature) if full else None
    figs = []
    for key, path in images.items():
        figs.append(
            f"<figure>{_img(path, f'{fid} {key}', id=_img_id(fid, key))}"
            f"<figcaption>{_e(key)}</figcaption></figure>"
        )
    cmp = ""
    # true colour when the run has it, else the radar VV pair of a radar run
    for b, a in (("before", "after"), ("radar VV before", "radar VV after")):
        if b in images and a in images:
            cmp = _compare(fid, fid, _img_id(fid, b), _img_id(fid, a), small=not full)
            break
    if full:
        return (
            f"<section class='change' id='{_e(fid)}'><h3>{_e(fid)}: {_area(p.get('area_m2'))}"
            f"</h3><p>{facts}{'<br>In true colour: ' + _e(looks) + '.' if looks else ''}</p>"
            f"<div class='grid chips'>{''.join(figs)}{cmp}</div></section>"
        )
    return (
        f"<section class='compact' id='{_e(fid)}'><h3>{_e(fid)}: {_area(p.get('area_m2'))}</h3>"
        f"<div class='grid'>{''.join(figs)}{cmp}</div><p class='muted'>{facts}</p></section>"
    )


def _sources_used(run: RunData) -> set[str]:
    """Which imagery the run read: {"sentinel-2", "sentinel-1", "landsat", "other"}."""
    found = set()
    params = run.manifest.get("parameters") or {}
    if params.get("sensor") == "radar" or (run.manifest.get("diagnostics") or {}).get("fusion"):
        found.add("sentinel-1")
    for src in (run.manifest.get("inputs") or {}).values():
        text = json.dumps(src).lower()
        bands = [str(b).upper() for b in (src or {}).get("bands") or []]
        if "sentinel-1" in text or "sentinel1" in text:
            found.add("sentinel-1")
        elif (
            "sentinel" in text
            or "s2a" in text
            or "s2b" in text
            or "msil2a" in text
            or any(b in {"B01", "B02", "B03", "B04", "B8A", "B11", "B12"} for b in bands)
        ):
            found.add("sentinel-2")
        elif "landsat" in text or any(b.startswith("SR_B") for b in bands):
            found.add("landsat")
        else:
            found.add("other")
    return found


def _credits(run: RunData) -> str:
    used = _sources_used(run)
    lines = []
    years = sorted({lab[:4] for lab in (run.before_label, run.after_label) if lab[:4].isdigit()})
    span = f" ({'–'.join(dict.fromkeys([years[0], years[-1]]))})" if years else ""
    if "sentinel-2" in used:
        lines.append(f"Contains modified Copernicus Sentinel data{span}, processed by ESA.")
    if "sentinel-1" in used:
        lines.append(
            "Sentinel-1 RTC: contains modified Copernicus Sentinel data, terrain-corrected by "
            "Catalyst for the Microsoft Planetary Computer."
        )
    if "landsat" in used:
        lines.append("Landsat imagery courtesy of the U.S. Geological Survey.")
    if "other" in used or not lines:
        lines.append("Imagery: as listed under “Imagery used”; credit its provider.")
    return " ".join(lines)


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
            f"{info.get('n_transient', 0)} transient region(s) dropped (seen, then gone), "
            f"{info.get('n_flat', 0)} flat (lasting, but no new outline: clearing, grading, "
            "demolition).</p>"
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


def _method_text(method: Any, chain: dict[str, Any] | None) -> str:
    """The method run; when chosen from the input (``auto``), which one and why.

    Examples
    --------
    >>> _method_text("auto", {"method": "irmad", "threshold_rule": "kittler", "why": "RGB"})
    'irmad (chosen from the input: RGB)'
    >>> _method_text("edges", {"method": "edges", "threshold_rule": "kittler", "why": "…"})
    'edges (as given; its threshold rule, kittler, chosen for it)'
    """
    if not chain:
        return _e(method)
    if method != chain.get("method"):
        return f"{_e(chain.get('method'))} (chosen from the input: {_e(chain.get('why'))})"
    rule = _e(chain.get("threshold_rule"))
    return f"{_e(chain.get('method'))} (as given; its threshold rule, {rule}, chosen for it)"


def _method(run: RunData) -> str:
    man = run.manifest
    diag = man.get("diagnostics") or {}
    thr = diag.get("threshold") or run.meta.get("threshold") or {}
    coreg = diag.get("coregistration") or {}
    params = man.get("parameters") or {}
    cloud = diag.get("cloud_masked_m2") or {}
    rows = [
        (
            "method",
            "step model: one lasting step per pixel over the whole series"
            if diag.get("timeline_model") == "step"
            else _method_text(params.get("method"), diag.get("chain")),
        ),
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
    from sitewatch.prepare.coregister import coreg_residual  # scipy: not at start-up

    residual = coreg_residual(coreg)
    if isinstance(residual, (int, float)) and residual > 0.5:
        caveats.append(
            f"Co-registration residual {residual:.2f} px: edges of unchanged buildings may "
            "show as thin false change."
        )
    items = "".join(f"<li>{c}</li>" for c in caveats)
    return f"{table}<h3>Caveats</h3><ul>{items}</ul>"


def build_report(run_dir: str | Path, *, rasters: Mapping[str, np.ndarray] | None = None) -> Path:
    """Render quicklooks, chips and ``report.html`` into a run folder.

    Parameters
    ----------
    run_dir : path
        A folder written by ``sitewatch detect`` / ``demo`` (or the temporary
        folder being written).
    rasters : mapping of str to ndarray, optional
        The arrays just written to the folder's rasters, by file name (``"score.tif"``
        …): the writer's own report takes them instead of decoding the files again
        (see :func:`~sitewatch.report.run.load_run`).

    Returns
    -------
    Path
        The ``report.html`` written.
    """
    run = load_run(run_dir, rasters=rasters)
    root = run.path
    # Render into a staging folder and swap it in at the end: a failure leaves the
    # previous report, quicklooks and chips as they were.
    stage = Path(tempfile.mkdtemp(prefix=".report-", dir=root))
    try:
        return _build(run, root, stage)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _build(run: RunData, root: Path, stage: Path) -> Path:
    from sitewatch.report.quicklooks import (
        background_png,
        render_chips,
        render_quicklooks,
        render_thumbs,
    )

    with background_png():  # every PNG is on disk after the block
        looks = render_quicklooks(run, stage / "quicklooks")
        chips = render_chips(run, stage, max_chips=FULL_SECTIONS)
        thumbs = render_thumbs(run, stage, run.features[FULL_SECTIONS:])
    aoi = run.manifest.get("aoi") or {}
    title = f"{aoi.get('name') or 'Change'}: {run.before_label} → {run.after_label}"
    n = len(run.features)
    total = sum(float(f["properties"].get("area_m2") or 0) for f in run.features)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(title)} · sitewatch</title><style>{CSS}</style>",
        f"<script>{SCRIPT}</script></head><body>",
        f"<h1>{_e(title)}</h1>",
        _summary(run),
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
        "<h3 id='whole-area'>The whole area</h3><div class='grid'>",
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
                f"<figure>{_img(looks[key], captions[key], id=f'img-aoi-{key}')}"
                f"<figcaption>{_e(captions[key])}</figcaption></figure>"
            )
    parts.append("</div>")
    if "before" in looks and "after" in looks:
        parts.append(_compare("aoi", "whole area", "img-aoi-before", "img-aoi-after"))
    if n > FULL_SECTIONS:
        parts.append(
            f"<p class='muted'>The {FULL_SECTIONS} largest changes are shown in full; the "
            f"other {n - FULL_SECTIONS} have small before/after pictures after them.</p>"
        )
    for i, f in enumerate(run.features):
        fid = str(f["properties"].get("id"))
        full = i < FULL_SECTIONS
        images = (chips if full else thumbs).get(fid, {})
        parts.append(_section(run, f, images, full=full))
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
        "<code>manifest.json</code>; the polygons are in <code>changes.geojson</code> and "
        "<code>changes.gpkg</code>, for spreadsheets in <code>changes.csv</code> and for "
        "Google Earth in <code>changes.kml</code> (each row and placemark with its links)."
        f"</p><p class='muted' id='credits'>{_e(_credits(run))}</p></body></html>"
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
