"""Synthetic Sentinel-1 RTC scenes shaped like Planetary Computer ``sentinel-1-rtc`` items.

``build_s1_fixture(root, base_url)`` writes, for each acquisition, ``root/<blob>/<scene>/
measurement/iw-vv.rtc.tiff`` and ``iw-vh.rtc.tiff`` (float32 linear γ⁰ COGs, nodata
−32768, 10 m on the optical fixture's UTM 52N tile) and ``root/s1-collection.json`` /
``root/s1-items.json``. Item documents are the real item in
``tests/data/stac/S1A_..._rtc.pctasks.json`` turned into the published shape the way
Planetary Computer's ingest does it (``datasets/sentinel-1-rtc/s1rtc.py`` of
microsoft/planetary-computer-tasks: ``-rtc`` dropped from the asset keys, providers and
``eo:bands`` removed, titles set, lon/lat footprint, a ``derived_from`` link), then given
the synthetic scene's id, time, orbit, grid and hrefs.

Planted cases
-------------
* **ascending 127**: 12 acquisitions from 2020-07 to 2024-12. Speckle is gamma with
  4.4 looks around a field of backscatter that does not change, except a
  10 x 14 px hall at the optical fixture's Building B that is +6 dB in VV and VH from
  acquisition index 7 (:data:`CHANGE_INDEX`) on.
* **descending 32**: 4 acquisitions, the whole tile 3 dB brighter (another viewing
  geometry) and no change. Mixing it with the ascending scenes would flag everything.
* Every scene has a 0-valued strip on its western edge (outside the swath) and a
  −32768 strip on its eastern edge, both outside the AOI.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer

from stac_fixtures import (
    BUILDING_LONLAT,
    COG_TYPE,
    EPSG,
    TILE_ORIGIN,
    TILE_SIZE_M,
    _tile_geometry,
    _utm_transform,
    _write_stac,
)

TEMPLATE = (
    Path(__file__).parent
    / "data"
    / "stac"
    / "S1A_IW_GRDH_1SDV_20191215T003835_20191215T003904_030352_0378DC_rtc.pctasks.json"
)
COLLECTION = "sentinel-1-rtc"
BLOB = "sentinel1-grd-rtc"  # container path on the loopback "blob" server
ENL = 4.4
RES = 10
N = int(TILE_SIZE_M // RES)
HALL = (10, 14)  # rows x cols at 10 m
CHANGE_INDEX = 7
SEED = 20160501

ASCENDING = (
    "ascending",
    127,
    [
        dt.datetime(2020, 7, 3, 9, 30, 12) + dt.timedelta(days=int(d))
        for d in np.linspace(0, 1620, 12)
    ],
)
DESCENDING = (
    "descending",
    32,
    [dt.datetime(2021, 3, 6, 21, 10, 40) + dt.timedelta(days=36 * i) for i in range(4)],
)

ASSET_INFO = {  # titles/descriptions the published items carry (s1rtc.py ASSET_INFO)
    "vv": (
        "VV: vertical transmit, vertical receive",
        "Terrain-corrected gamma naught values of signal transmitted with vertical "
        "polarization and received with vertical polarization with radiometric terrain "
        "correction applied.",
    ),
    "vh": (
        "VH: vertical transmit, horizontal receive",
        "Terrain-corrected gamma naught values of signal transmitted with vertical "
        "polarization and received with horizontal polarization with radiometric terrain "
        "correction applied.",
    ),
}


def published_shape(raw: dict) -> dict:
    """The ingest of microsoft/planetary-computer-tasks ``s1rtc.py`` applied to a raw item."""
    doc = copy.deepcopy(raw)
    doc["assets"] = {k.replace("-rtc", ""): a for k, a in doc["assets"].items()}
    doc["properties"].pop("providers", None)
    doc["links"].append(
        {
            "rel": "derived_from",
            "title": "Sentinel 1 GRD Item",
            "type": "application/json",
            "href": f"collections/sentinel-1-grd/items/{doc['id'].replace('_rtc', '')}",
        }
    )
    doc["stac_extensions"] = [e for e in doc["stac_extensions"] if "/eo/" not in e] + [
        "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
        "https://stac-extensions.github.io/file/v2.1.0/schema.json",
        "https://stac-extensions.github.io/raster/v1.0.0/schema.json",
    ]
    for key, asset in doc["assets"].items():
        asset.pop("eo:bands", None)
        asset["title"], asset["description"] = ASSET_INFO[key]
    return doc


def _scene_id(platform: str, when: dt.datetime, absolute: int) -> tuple[str, str]:
    a = when.strftime("%Y%m%dT%H%M%S")
    b = (when + dt.timedelta(seconds=25)).strftime("%Y%m%dT%H%M%S")
    stem = f"{platform}_IW_GRDH_1SDV_{a}_{b}_{absolute:06d}_{absolute % 65536:06X}"
    return f"{stem}_rtc", f"{stem}_ABCD"


def _write(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=N,
        height=N,
        count=1,
        dtype="float32",
        crs=f"EPSG:{EPSG}",
        transform=_utm_transform(RES),
        nodata=-32768,
        compress="DEFLATE",
        predictor=3,
        blocksize=512,
    ) as dst:
        dst.write(data.astype(np.float32), 1)


def hall_window() -> tuple[int, int, int, int]:
    """(row, col, rows, cols) of the planted hall on the 10 m tile."""
    to_utm = Transformer.from_crs(4326, EPSG, always_xy=True)
    bx, by = to_utm.transform(*BUILDING_LONLAT)
    r = int((TILE_ORIGIN[1] - by) // RES) - HALL[0] // 2
    c = int((bx - TILE_ORIGIN[0]) // RES) - HALL[1] // 2
    return r, c, *HALL


def build_s1_fixture(root: Path, base_url: str) -> dict:
    """Write the scenes and the item documents; return paths, ids and the truth."""
    root = Path(root)
    base_url = base_url.rstrip("/")
    raw = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    template = published_shape(raw)
    rng = np.random.default_rng(SEED)
    field = np.kron(rng.uniform(0.02, 0.12, size=(60, 60)), np.ones((N // 60, N // 60)))
    r, c, h, w = hall_window()
    hall = np.zeros((N, N), bool)
    hall[r : r + h, c : c + w] = True
    bbox, geometry = _tile_geometry()
    features, truth = [], {}
    absolute = 33000
    for state, rel, times in (ASCENDING, DESCENDING):
        for i, when in enumerate(times):
            absolute += 175
            platform = "S1A" if i % 2 == 0 else "S1B"
            item_id, product = _scene_id(platform, when, absolute)
            folder = f"{BLOB}/GRD/{when.year}/{when.month}/{when.day}/IW/DV/{product}/measurement"
            hrefs = {}
            for key, scale in (("vv", 1.0), ("vh", 0.2)):
                mean = field * scale * (2.0 if state == "descending" else 1.0)
                if state == "ascending" and i >= CHANGE_INDEX:
                    mean = np.where(hall, mean * 10**0.6, mean)
                x = rng.gamma(ENL, mean / ENL).astype(np.float32)
                x[:, :3] = 0.0  # outside the swath
                x[:, -3:] = -32768.0
                path = root / folder / f"iw-{key}.rtc.tiff"
                _write(path, x)
                hrefs[key] = f"{base_url}/{folder}/iw-{key}.rtc.tiff"
            truth[item_id] = {"state": state, "relative_orbit": rel, "index": i}
            doc = copy.deepcopy(template)
            stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
            doc.update(id=item_id, collection=COLLECTION, bbox=bbox, geometry=geometry)
            props = doc["properties"]
            props.update(
                {
                    "datetime": stamp,
                    "start_datetime": str(when - dt.timedelta(seconds=12)) + "+00:00",
                    "end_datetime": str(when + dt.timedelta(seconds=13)) + "+00:00",
                    "platform": "SENTINEL-1A" if platform == "S1A" else "SENTINEL-1B",
                    "sat:platform_international_designator": "2014-016A"
                    if platform == "S1A"
                    else "2016-025A",
                    "sat:orbit_state": state,
                    "sat:relative_orbit": rel,
                    "sat:absolute_orbit": absolute,
                    "s1:datatake_id": str(absolute * 7),
                    "s1:shape": [N, N],
                    "proj:epsg": EPSG,
                    "proj:shape": [N, N],
                    "proj:bbox": [
                        TILE_ORIGIN[0],
                        TILE_ORIGIN[1] - TILE_SIZE_M,
                        TILE_ORIGIN[0] + TILE_SIZE_M,
                        TILE_ORIGIN[1],
                    ],
                    "proj:transform": [
                        RES,
                        0.0,
                        TILE_ORIGIN[0],
                        0.0,
                        -RES,
                        TILE_ORIGIN[1],
                        0.0,
                        0.0,
                        1.0,
                    ],
                }
            )
            for link in doc["links"]:
                if link["rel"] == "derived_from":
                    link["href"] = f"collections/sentinel-1-grd/items/{item_id[:-4]}"
            for key, asset in doc["assets"].items():
                asset["href"] = hrefs[key]
                asset["type"] = COG_TYPE
                path = root / hrefs[key][len(base_url) + 1 :]
                asset["file:size"] = path.stat().st_size
                asset.pop("file:checksum", None)
            features.append(doc)
    collection_path, items_path = _write_stac(
        root / "s1-collection.json",
        root / "s1-items.json",
        collection=COLLECTION,
        title="Sentinel 1 Radiometrically Terrain Corrected (RTC)",
        description="Sentinel-1 RTC",
        bbox=bbox,
        interval=[features[0]["properties"]["datetime"], features[-1]["properties"]["datetime"]],
        features=features,
    )
    return {
        "collection": collection_path,
        "items": items_path,
        "truth": truth,
        "ascending_dates": [t.date().isoformat() for t in ASCENDING[2]],
        "descending_dates": [t.date().isoformat() for t in DESCENDING[2]],
        "hall": (r, c, h, w),
    }
