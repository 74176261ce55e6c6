"""A fake Esri World Imagery Wayback service as static files, and a server for it.

The layout mirrors the real URL shapes (see Esri/wayback-core) under one root, so the
Range-capable static server ``tests/servers/range_server.py`` can serve it::

    config/waybackconfig.json
    arcgis/rest/services/World_Imagery/WMTS/1.0.0/default028mm/MapServer/tile/{n}/{z}/{y}/{x}
    arcgis/rest/services/World_Imagery/MapServer/tilemap/{n}/{z}/{y}/{x}
    metadata/arcgis/rest/services/World_Imagery_Metadata_{yyyy}_r{nn}/MapServer/{layer}/query

The server ignores query strings, so one ``query`` file answers every metadata query of a
layer. Tile maths here is written independently of ``sitewatch.sources.wayback``.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

# The February 11 Plant catalog AOI's representative point and its tile at zoom 17.
PLANT_POINT = (127.6575, 39.92)
Z = 17

SERVICE = "arcgis/rest/services/World_Imagery"
TILE_DIR = f"{SERVICE}/WMTS/1.0.0/default028mm/MapServer/tile"
TILEMAP_DIR = f"{SERVICE}/MapServer/tilemap"

# number -> (release date, layer identifier, metadata service name); dict order is
# deliberately neither numeric nor chronological.
RELEASES = {
    577: ("2017-01-11", "WB_2017_R01", "World_Imagery_Metadata_2017_r01"),
    10: ("2014-02-20", "WB_2014_R01", "World_Imagery_Metadata_2014_r01"),
    56102: ("2023-12-07", "WB_2023_R11", "World_Imagery_Metadata_2023_r11"),
    3515: ("2016-01-13", "WB_2016_R01", "World_Imagery_Metadata_2016_r01"),
    42663: ("2022-01-12", "WB_2022_R01", "World_Imagery_Metadata_2022_r01"),
}
CHRONOLOGICAL = [10, 3515, 577, 42663, 56102]

# Capture metadata of the picture each release carries at the plant (release ≠ capture).
CAPTURES = {
    42663: ("2021-10-03", "Maxar", "WV03", 0.31, 5.0),
    3515: ("2015-06-18", "Maxar", "WV02", 0.5, 10.2),
    10: ("2012-09-30", "GeoEye", "GE01", 0.46, 8.4),
}
CARRIED_BY = {56102: 42663, 42663: 42663, 577: 3515, 3515: 3515, 10: 10}
EXPECTED_VINTAGES = [42663, 3515, 10]  # newest first

# A small polygon around the plant: its representative point lies in the plant tile
# at zoom 17, and it straddles one column and one row edge → 2 × 2 tiles.
SMALL_BOX = (127.6570, 39.9193, 127.6590, 39.9210)
SNAPSHOT_RELEASE = 42663  # JPEG tiles, all four present
PNG_RELEASE = 3515  # PNG tiles, the top-right one missing (404)


def lonlat_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """(col, row) by the OSM slippy-map formula."""
    n = 2**z
    col = int((lon + 180.0) / 360.0 * n)
    row = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return col, row


def epoch_ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def small_feature() -> dict:
    w, s, e, n = SMALL_BOX
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return {
        "type": "Feature",
        "properties": {"id": "feb11-small", "name": "February 11 Plant (small box)"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def tile_colour(dc: int, dr: int) -> tuple[int, int, int]:
    """Solid colour of the fixture tile at offset (dc, dr) from the top-left tile."""
    return (60 + 100 * dc, 90 + 100 * dr, 40)


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def _write_tile(path: Path, rgb: tuple[int, int, int], driver: str) -> None:
    data = np.empty((3, 256, 256), np.uint8)
    for b, v in enumerate(rgb):
        data[b] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with (
            rasterio.Env(GDAL_PAM_ENABLED="NO"),
            rasterio.open(
                tmp, "w", driver=driver, width=256, height=256, count=3, dtype="uint8"
            ) as dst,
        ):
            dst.write(data)
    os.replace(tmp, path)


def build_wayback_fixture(root: Path, base_url: str) -> dict:
    """Write the fake service under ``root`` (served at ``base_url``); return its facts."""
    meta_base = f"{base_url}/metadata/arcgis/rest/services"
    config = {
        str(n): {
            "itemID": f"item{n}",
            "itemTitle": f"World Imagery (Wayback {day})",
            "itemURL": f"{base_url}/{TILE_DIR}/{n}/{{level}}/{{row}}/{{col}}",
            "metadataLayerUrl": f"{meta_base}/{svc}/MapServer",
            "metadataLayerItemID": f"meta{n}",
            "layerIdentifier": ident,
        }
        for n, (day, ident, svc) in RELEASES.items()
    }
    config["99"] = {"itemTitle": "World Imagery (Wayback)", "itemURL": "x"}  # undated: skipped
    _write_json(root / "config" / "waybackconfig.json", config)

    col, row = lonlat_tile(*PLANT_POINT, Z)
    loc = {"left": 0, "top": 0, "width": 1, "height": 1}
    # Zoom 17: 56102 → 42663; 577 → 3515; 10 has data but no 'select' → itself.
    for n in RELEASES:
        carried = CARRIED_BY[n]
        answer = {"data": [1], "valid": True, "location": loc}
        if carried != 10:
            answer["select"] = [carried]
        _write_json(root / TILEMAP_DIR / str(n) / str(Z) / str(row) / str(col), answer)
    # Zoom 16: 56102 → 42663, then 577 has no data → the walk stops after one vintage.
    c16, r16 = lonlat_tile(*PLANT_POINT, 16)
    tm16 = root / TILEMAP_DIR
    _write_json(
        tm16 / "56102" / "16" / str(r16) / str(c16),
        {"data": [1], "select": [42663], "valid": True, "location": loc},
    )
    _write_json(
        tm16 / "577" / "16" / str(r16) / str(c16),
        {"data": [0], "valid": True, "location": loc},
    )

    for n, (_, _, svc) in RELEASES.items():
        day, provider, sensor, res, acc = CAPTURES[CARRIED_BY[n]]
        answer = {
            "displayFieldName": "",
            "fields": [],
            "features": [
                {
                    "attributes": {
                        "SRC_DATE2": epoch_ms(day),
                        "NICE_DESC": provider,
                        "SRC_DESC": sensor,
                        "SAMP_RES": res,
                        "SRC_ACC": acc,
                    }
                }
            ],
        }
        for layer in (6, 7):  # zoom 17 and 16
            path = root / "metadata" / "arcgis/rest/services" / svc / "MapServer" / str(layer)
            _write_json(path / "query", answer)

    # Tiles over the small box at zoom 17.
    w, s, e, n_ = SMALL_BOX
    c0, r0 = lonlat_tile(w, n_, Z)
    c1, r1 = lonlat_tile(e, s, Z)
    tiles = {}
    for release, driver in ((SNAPSHOT_RELEASE, "JPEG"), (PNG_RELEASE, "PNG")):
        paths = []
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                rel = f"/{TILE_DIR}/{release}/{Z}/{r}/{c}"
                paths.append(rel)
                if release == PNG_RELEASE and (c, r) == (c1, r0):
                    continue  # missing tile → 404
                _write_tile(root / rel.lstrip("/"), tile_colour(c - c0, r - r0), driver)
        tiles[release] = paths

    _write_json(
        root / "errors" / "arcgis_400.json",
        {"error": {"code": 400, "message": "Invalid or missing input parameters.", "details": []}},
    )
    _write_json(
        root / "errors" / "arcgis_500.json",
        {"error": {"code": 500, "message": "Unable to complete operation.", "details": []}},
    )
    return {
        "config_url": f"{base_url}/config/waybackconfig.json",
        "plant_tile": (col, row),
        "tile_range": (c0, r0, c1, r1),
        "tiles": tiles,
        "missing_tile": f"/{TILE_DIR}/{PNG_RELEASE}/{Z}/{r0}/{c1}",
        "tilemap_dir": f"/{TILEMAP_DIR}",
        "tile_dir": f"/{TILE_DIR}",
    }
