"""Spreadsheet and Google Earth copies of the change polygons: CSV and KML.

``changes.csv`` has one row per polygon (centroid, area, dates, scores, map links);
``changes.kml`` has the polygons with the same attributes, for Google Earth or any GIS.
Both are built from the GeoJSON Features alone, so a CSV row round-trips to the
GeoJSON attributes. Map links are plain URLs: nothing is fetched.
"""

from __future__ import annotations

import csv
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

__all__ = [
    "CSV_COLUMNS",
    "map_links",
    "osm_url",
    "wayback_url",
    "write_changes_csv",
    "write_changes_kml",
]

#: Zoom level of the map links (about a 1 km wide view).
LINK_ZOOM = 17

#: Columns of ``changes.csv``, in order (lon/lat runs; pixel runs use col/row).
CSV_COLUMNS = (
    "id",
    "centroid_lat",
    "centroid_lon",
    "area_m2",
    "area_px",
    "first_seen",
    "before_date",
    "after_date",
    "score_mean",
    "score_max",
    "p_no_change",
    "p_no_change_log10",
    "clear_fraction",
    "coreg_residual_px",
    "method",
    "threshold",
    "osm_url",
    "wayback_url",
)

KML_NS = "http://www.opengis.net/kml/2.2"


def osm_url(lon: float, lat: float, *, zoom: int = LINK_ZOOM) -> str:
    """OpenStreetMap centred on a point, with a marker.

    Examples
    --------
    >>> osm_url(72.93123, 19.046)
    'https://www.openstreetmap.org/?mlat=19.04600&mlon=72.93123#map=17/19.04600/72.93123'
    """
    return (
        f"https://www.openstreetmap.org/?mlat={lat:.5f}&mlon={lon:.5f}"
        f"#map={zoom}/{lat:.5f}/{lon:.5f}"
    )


def wayback_url(lon: float, lat: float, *, zoom: int = LINK_ZOOM) -> str:
    """Esri's World Imagery Wayback viewer centred on a point (very high resolution, dated).

    Examples
    --------
    >>> wayback_url(72.93123, 19.046)
    'https://livingatlas.arcgis.com/wayback/#mapCenter=72.93123%2C19.04600%2C17'
    """
    return f"https://livingatlas.arcgis.com/wayback/#mapCenter={lon:.5f}%2C{lat:.5f}%2C{zoom}"


def map_links(props: dict[str, Any], *, lonlat: bool) -> dict[str, str]:
    """``{"osm": url, "wayback": url}`` at a polygon's centroid ({} without lon/lat)."""
    c = props.get("centroid")
    if not lonlat or not isinstance(c, list | tuple) or len(c) != 2:
        return {}
    lon, lat = float(c[0]), float(c[1])
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return {}
    return {"osm": osm_url(lon, lat), "wayback": wayback_url(lon, lat)}


def _cell(value: Any) -> Any:
    return "" if value is None else value


def csv_columns(*, lonlat: bool) -> tuple[str, ...]:
    """Columns of ``changes.csv`` (pixel runs: ``centroid_col``/``centroid_row``, no links)."""
    if lonlat:
        return CSV_COLUMNS
    cols = [c for c in CSV_COLUMNS if not c.endswith("_url")]
    return tuple(
        {"centroid_lat": "centroid_row", "centroid_lon": "centroid_col"}.get(c, c) for c in cols
    )


def write_changes_csv(path: Path, features: Sequence[dict[str, Any]], *, lonlat: bool) -> Path:
    """Write ``changes.csv``: one row per polygon, largest first (UTF-8, comma-separated).

    Empty cells are attributes the run has not got (e.g. no ``clear_fraction`` in a
    block-wise run). Attributes not in :data:`CSV_COLUMNS` are left to the GeoJSON.
    """
    cols = csv_columns(lonlat=lonlat)
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        out.writeheader()
        for f in features:
            p = dict(f.get("properties") or {})
            c = p.get("centroid") or [None, None]
            if lonlat:
                p["centroid_lon"], p["centroid_lat"] = c[0], c[1]
                links = map_links(p, lonlat=True)
                p["osm_url"], p["wayback_url"] = links.get("osm"), links.get("wayback")
            else:
                p["centroid_col"], p["centroid_row"] = c[0], c[1]
            out.writerow({k: _cell(p.get(k)) for k in cols})
    return Path(path)


def _rings(geometry: dict[str, Any] | None) -> list[list[list[list[float]]]]:
    if not geometry:
        return []
    if geometry.get("type") == "Polygon":
        return [geometry["coordinates"]]
    if geometry.get("type") == "MultiPolygon":
        return list(geometry["coordinates"])
    return []


def _coords(ring: list[list[float]]) -> str:
    return " ".join(f"{x:.7f},{y:.7f},0" for x, y, *_ in ring)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{KML_NS}}}{tag}", attrib)
    if text is not None:
        el.text = text
    return el


def write_changes_kml(
    path: Path, features: Sequence[dict[str, Any]], *, meta: dict[str, Any] | None = None
) -> Path:
    """Write ``changes.kml``: each polygon a Placemark with its attributes (lon/lat only).

    Each Placemark is named by its id, carries every CSV attribute as ``ExtendedData``
    and a description with the same values and the map links; outlines are cyan, as
    in the report.
    """
    meta = meta or {}
    ET.register_namespace("", KML_NS)
    root = ET.Element(f"{{{KML_NS}}}kml")
    doc = _sub(root, "Document")
    where = meta.get("aoi_name") or meta.get("aoi") or "sitewatch run"
    _sub(doc, "name", f"sitewatch changes: {where}, {meta.get('before')} → {meta.get('after')}")
    _sub(
        doc,
        "description",
        "Places where the two images differ more than the rest of the area: check each "
        "one against the images before reporting it (see report.html).",
    )
    style = _sub(doc, "Style", id="change")
    line = _sub(style, "LineStyle")
    _sub(line, "color", "ffffe500")  # aabbggrr: #00e5ff
    _sub(line, "width", "2")
    poly_style = _sub(style, "PolyStyle")
    _sub(poly_style, "color", "33ffe500")
    cols = [c for c in CSV_COLUMNS if c not in ("id",)]
    for f in features:
        p = dict(f.get("properties") or {})
        c = p.get("centroid") or [None, None]
        p["centroid_lon"], p["centroid_lat"] = c[0], c[1]
        links = map_links(p, lonlat=True)
        p["osm_url"], p["wayback_url"] = links.get("osm"), links.get("wayback")
        mark = _sub(doc, "Placemark", id=str(p.get("id")))
        _sub(mark, "name", str(p.get("id")))
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(_cell(p.get(k))))}</td></tr>"
            for k in cols
            if not k.endswith("_url")
        )
        link_html = " · ".join(
            f'<a href="{html.escape(u)}">{name}</a>'
            for name, u in (("OpenStreetMap", links.get("osm")), ("Wayback", links.get("wayback")))
            if u
        )
        _sub(mark, "description", f"<table>{rows}</table><p>{link_html}</p>")
        _sub(mark, "styleUrl", "#change")
        data = _sub(mark, "ExtendedData")
        for k in cols:
            d = _sub(data, "Data", name=k)
            _sub(d, "value", str(_cell(p.get(k))))
        polygons = _rings(f.get("geometry"))
        holder = _sub(mark, "MultiGeometry") if len(polygons) > 1 else mark
        for polygon in polygons:
            geom = _sub(holder, "Polygon")
            for i, ring in enumerate(polygon):
                boundary = _sub(geom, "outerBoundaryIs" if i == 0 else "innerBoundaryIs")
                _sub(_sub(boundary, "LinearRing"), "coordinates", _coords(ring))
    tree = ET.ElementTree(root)
    ET.indent(tree, space=" ")
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return Path(path)
