"""Synthetic Sentinel-2 C1 L2A STAC fixture (3 items, COGs) near the February 11 Plant.

``build_s2_fixture(root, base_url)`` writes ``root/<item_id>/<band>.tif`` COGs plus
``root/collection.json`` and ``root/items.json`` (a FeatureCollection) modelled on
Earth Search ``sentinel-2-c1-l2a`` (DN convention of baseline >= 04.00:
reflectance = DN * 0.0001 - 0.1, DN 0 = nodata).

Planted cases
-------------
* item A (2020-06-10, eo:cloud_cover 5): SCL class 9 over >= 60 % of the AOI.
* item B (2020-06-20, eo:cloud_cover 40): AOI clear (SCL 4/5), clouds elsewhere.
* item C (2024-10-05, clear): a 12 x 8 px bright "new building" (reflectance 0.35)
  near Building B (lon 127.657, lat 39.920).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.features import geometry_mask

COLLECTION = "sentinel-2-c1-l2a"
EPSG = 32652
TILE_ORIGIN = (383_000.0, 4_422_000.0)  # UL corner, UTM 52N; 6 km x 6 km tile
TILE_SIZE_M = 6_000.0
AOI_LONLAT = (127.640, 39.905, 127.675, 39.935)  # aoi/feb11-plant.geojson working box
BUILDING_LONLAT = (127.657, 39.920)
BUILDING_SHAPE = (8, 12)  # rows x cols at 10 m
SEED = 20240611

COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
]

# asset key -> (band file, resolution m, common name, center wavelength um, fwhm um)
BANDS = {
    "blue": ("B02", 10, "blue", 0.49, 0.098),
    "green": ("B03", 10, "green", 0.56, 0.045),
    "red": ("B04", 10, "red", 0.665, 0.038),
    "nir": ("B08", 10, "nir", 0.842, 0.145),
    "swir16": ("B11", 20, "swir16", 1.61, 0.143),
    "swir22": ("B12", 20, "swir22", 2.19, 0.242),
}

# id, datetime, platform, eo:cloud_cover, cloud layout
ITEMS = [
    ("S2B_T52SCK_20200610T021609_L2A", "2020-06-10T02:26:12.024000Z", "sentinel-2b", 5.0, "aoi"),
    ("S2B_T52SCK_20200620T021609_L2A", "2020-06-20T02:26:14.113000Z", "sentinel-2b", 40.0, "edge"),
    ("S2A_T52SCK_20241005T021651_L2A", "2024-10-05T02:26:31.562000Z", "sentinel-2a", 0.4, "none"),
]


def _utm_transform(res: float) -> Affine:
    return Affine(res, 0.0, TILE_ORIGIN[0], 0.0, -res, TILE_ORIGIN[1])


def _aoi_utm_ring() -> list[tuple[float, float]]:
    w, s, e, n = AOI_LONLAT
    to_utm = Transformer.from_crs(4326, EPSG, always_xy=True)
    return [to_utm.transform(x, y) for x, y in [(w, s), (e, s), (e, n), (w, n), (w, s)]]


def _aoi_mask(res: float, n: int) -> np.ndarray:
    geom = {"type": "Polygon", "coordinates": [_aoi_utm_ring()]}
    return ~geometry_mask([geom], out_shape=(n, n), transform=_utm_transform(res))


def _landscape(rng: np.random.Generator, n: int) -> np.ndarray:
    """Vegetation fraction 0..1: blocky 'fields' (60 m) + a little texture."""
    fields = rng.uniform(0.0, 1.0, size=(100, 100))
    v = np.kron(fields, np.ones((n // 100, n // 100)))
    return np.clip(v + rng.normal(0, 0.005, size=v.shape), 0, 1)


def _reflectance(key: str, veg: np.ndarray) -> np.ndarray:
    lo, hi = {
        "blue": (0.07, 0.03),
        "green": (0.09, 0.06),
        "red": (0.11, 0.03),
        "nir": (0.18, 0.40),
        "swir16": (0.26, 0.16),
        "swir22": (0.20, 0.08),
    }[key]
    return lo + (hi - lo) * veg


def _to_dn(refl: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(refl / 0.0001 + 1000), 1, 65535).astype("uint16")


def _write_cog(path: Path, data: np.ndarray, res: int) -> None:
    n = data.shape[-1]
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=n,
        height=n,
        count=1,
        dtype=data.dtype.name,
        crs=f"EPSG:{EPSG}",
        transform=_utm_transform(res),
        nodata=0,
        compress="DEFLATE",
        predictor=2,
        blocksize=512,  # 1024 on Earth Search; the AOI touches 1-4 tiles either way
    ) as dst:
        dst.write(data, 1)


def _cloud_mask_20m(layout: str, n: int = 300) -> np.ndarray:
    cloud = np.zeros((n, n), dtype=bool)
    if layout == "aoi":  # AOI (20 m rows ~28-198, cols ~37-190): cover its northern 2/3
        cloud[20:145, 25:210] = True
    elif layout == "edge":  # east strip + south-west strip, outside the AOI; ~40 % of tile
        cloud[:, 200:] = True
        cloud[250:, :130] = True
    return cloud


def _tile_geometry() -> tuple[list[float], dict]:
    to_ll = Transformer.from_crs(EPSG, 4326, always_xy=True)
    x0, y0 = TILE_ORIGIN
    x1, y1 = x0 + TILE_SIZE_M, y0 - TILE_SIZE_M
    corners = [(x0, y1), (x1, y1), (x1, y0), (x0, y0)]
    ring = [[round(v, 7) for v in to_ll.transform(x, y)] for x, y in corners]
    ring.append(ring[0])
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    bbox = [min(lons), min(lats), max(lons), max(lats)]
    return bbox, {"type": "Polygon", "coordinates": [ring]}


def _asset(href: str, key: str, res: int, title: str) -> dict:
    n = int(TILE_SIZE_M // res)
    asset = {
        "href": href,
        "type": COG_TYPE,
        "title": title,
        "roles": ["data"],
        "proj:shape": [n, n],
        "proj:transform": [res, 0, TILE_ORIGIN[0], 0, -res, TILE_ORIGIN[1]],
    }
    if key == "scl":
        asset["raster:bands"] = [
            {"nodata": 0, "data_type": "uint8", "spatial_resolution": res, "unit": "none"}
        ]
        return asset
    _, _, common, cw, fwhm = BANDS[key]
    asset["eo:bands"] = [
        {"name": key, "common_name": common, "center_wavelength": cw, "full_width_half_max": fwhm}
    ]
    asset["raster:bands"] = [
        {
            "nodata": 0,
            "data_type": "uint16",
            "bits_per_sample": 15,
            "spatial_resolution": res,
            "scale": 0.0001,
            "offset": -0.1,
        }
    ]
    return asset


def _write_stac(
    collection_path: Path,
    items_path: Path,
    *,
    collection: str,
    title: str,
    description: str,
    bbox: list[float],
    interval: list[str],
    features: list[dict],
) -> tuple[Path, Path]:
    """Write a fixture's collection JSON and its items as a FeatureCollection."""
    doc = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": collection,
        "title": f"{title} (synthetic test fixture)",
        "description": f"Synthetic {description} COGs near the February 11 Plant (tests).",
        "license": "proprietary",
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [interval]}},
        "links": [],
    }
    collection_path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    items_path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, indent=1),
        encoding="utf-8",
    )
    return collection_path, items_path


def build_s2_fixture(root: Path, base_url: str) -> dict:
    """Write 3 synthetic S2 C1 L2A items (COGs + STAC JSON) under ``root``; return a summary."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base_url = base_url.rstrip("/")
    rng = np.random.default_rng(SEED)
    veg10 = _landscape(rng, 600)
    veg20 = veg10.reshape(300, 2, 300, 2).mean(axis=(1, 3))
    aoi10, aoi20 = _aoi_mask(10, 600), _aoi_mask(20, 300)

    to_utm = Transformer.from_crs(4326, EPSG, always_xy=True)
    bx, by = to_utm.transform(*BUILDING_LONLAT)
    b_row = int((TILE_ORIGIN[1] - by) // 10) - BUILDING_SHAPE[0] // 2
    b_col = int((bx - TILE_ORIGIN[0]) // 10) - BUILDING_SHAPE[1] // 2
    building10 = np.zeros((600, 600), dtype=bool)
    building10[b_row : b_row + BUILDING_SHAPE[0], b_col : b_col + BUILDING_SHAPE[1]] = True
    building20 = building10.reshape(300, 2, 300, 2).any(axis=(1, 3))
    assert (building10 & aoi10).sum() == building10.sum(), "building must lie inside the AOI"

    bbox, geometry = _tile_geometry()
    features, aoi_cloud, tile_cloud = [], {}, {}
    for item_id, dt, platform, cloud_cover, layout in ITEMS:
        irng = np.random.default_rng([SEED, int(dt[:10].replace("-", ""))])
        cloud20 = _cloud_mask_20m(layout)
        cloud10 = np.kron(cloud20, np.ones((2, 2), dtype=bool))
        planted = layout == "none" and item_id.startswith("S2A_T52SCK_2024")
        folder = root / item_id
        folder.mkdir(exist_ok=True)
        for key, (band, res, *_rest) in BANDS.items():
            veg, cloud = (veg10, cloud10) if res == 10 else (veg20, cloud20)
            refl = _reflectance(key, veg) + irng.normal(0, 0.0005, size=veg.shape)
            refl[cloud] = 0.5 + irng.normal(0, 0.003, size=int(cloud.sum()))
            if planted:
                refl[building10 if res == 10 else building20] = 0.35
            _write_cog(folder / f"{band}.tif", _to_dn(refl), res)
        # Per-pixel classification noise, as real SCL has (and real tile sizes).
        scl = np.where(veg20 + irng.normal(0, 0.15, veg20.shape) > 0.5, 4, 5).astype("uint8")
        scl[cloud20] = 9
        if planted:
            scl[building20] = 5
        _write_cog(folder / "SCL.tif", scl, 20)
        aoi_cloud[item_id] = float((cloud20 & aoi20).sum() / aoi20.sum())
        tile_cloud[item_id] = float(cloud20.mean())

        assets = {
            key: _asset(f"{base_url}/{item_id}/{band}.tif", key, res, f"{band} ({res} m)")
            for key, (band, res, *_rest) in BANDS.items()
        }
        assets["scl"] = _asset(f"{base_url}/{item_id}/SCL.tif", "scl", 20, "Scene classification")
        synthetic = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "stac_extensions": STAC_EXTENSIONS,
            "id": item_id,
            "collection": COLLECTION,
            "bbox": bbox,
            "geometry": geometry,
            "properties": {
                "datetime": dt,
                "platform": platform,
                "constellation": "sentinel-2",
                "instruments": ["msi"],
                "eo:cloud_cover": cloud_cover,
                "proj:epsg": EPSG,
                "mgrs:utm_zone": 52,
                "mgrs:latitude_band": "S",
                "mgrs:grid_square": "CK",
                "grid:code": "MGRS-52SCK",
                "s2:processing_baseline": "05.10",
                "s2:product_type": "S2MSI2A",
                "s2:nodata_pixel_percentage": 0.0,
            },
            "links": [],
            "assets": assets,
        }
        files = {k: folder / f"{b}.tif" for k, (b, *_r) in BANDS.items()}
        files["scl"] = folder / "SCL.tif"
        features.append(real_shaped(C1_TEMPLATE, synthetic, files=files))

    collection_path, items_path = _write_stac(
        root / "collection.json",
        root / "items.json",
        collection=COLLECTION,
        title="Sentinel-2 Collection 1 Level-2A",
        description="Sentinel-2 C1 L2A",
        bbox=bbox,
        interval=[ITEMS[0][1], ITEMS[-1][1]],
        features=features,
    )
    ring = _aoi_utm_ring()
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return {
        "collection": collection_path,
        "items": items_path,
        "item_ids": [it[0] for it in ITEMS],
        "aoi_bounds_utm": (min(xs), min(ys), max(xs), max(ys)),
        "building_lonlat": BUILDING_LONLAT,
        # extras for tests
        "tile_bounds_utm": (
            TILE_ORIGIN[0],
            TILE_ORIGIN[1] - TILE_SIZE_M,
            TILE_ORIGIN[0] + TILE_SIZE_M,
            TILE_ORIGIN[1],
        ),
        "building_window_10m": (b_row, b_col, *BUILDING_SHAPE),  # row, col, height, width
        "aoi_cloud_fraction": aoi_cloud,
        "tile_cloud_fraction": tile_cloud,
    }


# --- Real-shaped items ------------------------------------------------------------------

DATA = Path(__file__).parent / "data" / "stac"
C1_TEMPLATE = DATA / "S2B_T20EPT_20250731T131905_L2A.c1.trimmed.json"

_SCENE_PROPS = {
    # property -> how the synthetic scene sets it (ids and times follow the synthetic id)
    "s2:tile_id",
    "s2:datatake_id",
    "s2:datastrip_id",
    "s2:product_uri",
    "s2:generation_time",
    "created",
    "updated",
    "earthsearch:payload_id",
    "proj:centroid",
}


def _multihash(path: Path) -> str:
    import hashlib

    return "1220" + hashlib.sha256(path.read_bytes()).hexdigest()


def real_shaped(
    template: Path | dict, synthetic: dict, *, files: dict[str, Path] | None = None
) -> dict:
    """A real STAC item document with a synthetic scene's id, time, footprint and hrefs.

    Everything else of the real document stays: extensions, storage fields, links (their
    hrefs moved to the synthetic item's), asset keys, titles, roles, ``eo:bands``,
    ``raster:bands`` and the properties the synthetic item does not set. Assets the
    synthetic item lacks are dropped; ``file:size``/``file:checksum`` are those of the
    synthetic files (``files``: asset key → path), or dropped.
    """
    import copy

    doc = copy.deepcopy(
        json.loads(template.read_text(encoding="utf-8")) if isinstance(template, Path) else template
    )
    item_id = synthetic["id"]
    when = synthetic["properties"]["datetime"]
    stamp = when[:19].replace("-", "").replace(":", "")
    doc.update(
        id=item_id,
        collection=synthetic["collection"],
        bbox=synthetic["bbox"],
        geometry=synthetic["geometry"],
    )
    props = doc["properties"]
    item_grid = "proj:transform" in props  # grid on the item (Planetary Computer Landsat)
    for key in _SCENE_PROPS & props.keys():
        if key in ("created", "updated", "s2:generation_time"):
            props[key] = when
        elif key == "proj:centroid":
            w, s_, e, n = synthetic["bbox"]
            props[key] = {"lat": round((s_ + n) / 2, 5), "lon": round((w + e) / 2, 5)}
        else:
            props[key] = f"{key.split(':')[-1]}-{item_id}-{stamp}"
    for key in [k for k in props if k.startswith(("proj:", "mgrs:", "grid:", "landsat:wrs"))]:
        if key not in synthetic["properties"] and key != "proj:centroid":
            del props[key]  # grid fields of the real scene: the synthetic's replace them
    props.update(synthetic["properties"])
    base = synthetic["assets"][next(iter(synthetic["assets"]))]["href"].rsplit("/", 1)[0]
    for link in doc.get("links", []):
        link["href"] = f"{base}/{link['rel']}.json"
    assets = {}
    for key, mine in synthetic["assets"].items():
        real = doc["assets"].get(key)
        if real is None:
            continue
        real = {**real, "href": mine["href"]}
        for field in ("proj:shape", "proj:transform", "proj:epsg", "proj:code", "proj:bbox"):
            if field in real:
                del real[field]
                if field in mine:
                    real[field] = mine[field]
            elif item_grid and field in mine:
                props[field] = mine[field]  # the real item keeps its grid on the item
            elif field in mine and not item_grid:
                real[field] = mine[field]
        path = (files or {}).get(key)
        for field in ("file:size", "file:checksum"):
            real.pop(field, None)
        if path is not None:
            real["file:size"] = path.stat().st_size
            real["file:checksum"] = _multihash(path)
        assets[key] = real
    doc["assets"] = assets
    return doc


# --- Landsat Collection 2 Level-2 ----------------------------------------------------

LANDSAT_COLLECTION = "landsat-c2-l2"
LANDSAT_SCALE, LANDSAT_OFFSET = 2.75e-05, -0.2
# asset key -> (band file, common name)
LANDSAT_BANDS = {
    "blue": ("SR_B2", "blue"),
    "green": ("SR_B3", "green"),
    "red": ("SR_B4", "red"),
    "nir08": ("SR_B5", "nir08"),
    "swir16": ("SR_B6", "swir16"),
    "swir22": ("SR_B7", "swir22"),
}
QA_CLEAR, QA_CLOUD, QA_FILL = 21824, 22280, 1  # C2 QA_PIXEL: clear land, cloud, fill
LANDSAT_ITEMS = [
    # id, datetime, platform, eo:cloud_cover, planted
    ("LC08_L2SP_116032_20200615_02_T1", "2020-06-15T02:11:05.123000Z", "landsat-8", 12.0, "cloud"),
    (
        "LC09_L2SP_116032_20241010_02_T1",
        "2024-10-10T02:10:41.456000Z",
        "landsat-9",
        1.0,
        "roof",
    ),
]
LANDSAT_BUILDING = (6, 8)  # rows x cols at 30 m: a 180 x 240 m hall


def landsat_dn(refl: np.ndarray) -> np.ndarray:
    """Landsat C2 L2 surface reflectance → DN (reflectance = DN * 2.75e-5 - 0.2)."""
    return np.clip(np.rint((refl - LANDSAT_OFFSET) / LANDSAT_SCALE), 1, 65535).astype("uint16")


def build_landsat_fixture(root: Path, base_url: str) -> dict:
    """Two synthetic Landsat C2 L2 items (30 m COGs) over the same 6 km tile.

    Item 1 (2020-06-15) has a QA_PIXEL cloud over part of the AOI, item 2
    (2024-10-10) a planted 6 x 8 px (180 x 240 m) bright roof near Building B.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base_url = base_url.rstrip("/")
    n, res = int(TILE_SIZE_M // 30), 30
    rng = np.random.default_rng(SEED + 1)
    veg = np.kron(rng.uniform(0, 1, size=(50, 50)), np.ones((4, 4)))
    to_utm = Transformer.from_crs(4326, EPSG, always_xy=True)
    bx, by = to_utm.transform(*BUILDING_LONLAT)
    b_row = int((TILE_ORIGIN[1] - by) // res) - LANDSAT_BUILDING[0] // 2
    b_col = int((bx - TILE_ORIGIN[0]) // res) - LANDSAT_BUILDING[1] // 2
    building = np.zeros((n, n), dtype=bool)
    building[b_row : b_row + LANDSAT_BUILDING[0], b_col : b_col + LANDSAT_BUILDING[1]] = True
    cloud = np.zeros((n, n), dtype=bool)
    cloud[30:70, 20:120] = True  # northern part of the AOI (rows ~19-133, cols ~25-127)
    bbox, geometry = _tile_geometry()
    features, truth = [], {}
    for item_id, dt, platform, cloud_cover, planted in LANDSAT_ITEMS:
        irng = np.random.default_rng([SEED, int(dt[:10].replace("-", ""))])
        folder = root / item_id
        folder.mkdir(exist_ok=True)
        refl_by_key = {}
        for key, (band, _common) in LANDSAT_BANDS.items():
            refl = _reflectance(key.replace("nir08", "nir"), veg)
            refl = refl + irng.normal(0, 0.0005, size=veg.shape)
            if planted == "roof":
                refl[building] = 0.35
            if planted == "cloud":
                refl[cloud] = 0.6
            refl_by_key[key] = refl
            _write_cog(folder / f"{item_id}_{band}.TIF", landsat_dn(refl), res)
        qa = np.full((n, n), QA_CLEAR, dtype="uint16")
        if planted == "cloud":
            qa[cloud] = QA_CLOUD
        qa[:, :2] = QA_FILL  # a fill strip on the western edge (outside the AOI)
        _write_cog(folder / f"{item_id}_QA_PIXEL.TIF", qa, res)
        truth[item_id] = {"reflectance": refl_by_key, "qa": qa}
        assets = {}
        for key, (band, common) in LANDSAT_BANDS.items():
            a = _asset(f"{base_url}/{item_id}/{item_id}_{band}.TIF", "blue", res, band)
            a["eo:bands"] = [{"name": band, "common_name": common}]
            a["raster:bands"] = [
                {
                    "nodata": 0,
                    "data_type": "uint16",
                    "spatial_resolution": res,
                    "scale": LANDSAT_SCALE,
                    "offset": LANDSAT_OFFSET,
                    "unit": "none",
                }
            ]
            assets[key] = a
        qa_asset = _asset(f"{base_url}/{item_id}/{item_id}_QA_PIXEL.TIF", "scl", res, "QA_PIXEL")
        qa_asset["raster:bands"] = [
            {"nodata": 1, "data_type": "uint16", "spatial_resolution": res, "unit": "bit index"}
        ]
        assets["qa_pixel"] = qa_asset
        features.append(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "stac_extensions": STAC_EXTENSIONS,
                "id": item_id,
                "collection": LANDSAT_COLLECTION,
                "bbox": bbox,
                "geometry": geometry,
                "properties": {
                    "datetime": dt,
                    "platform": platform,
                    "instruments": ["oli", "tirs"],
                    "eo:cloud_cover": cloud_cover,
                    "proj:epsg": EPSG,
                    "landsat:wrs_path": "116",
                    "landsat:wrs_row": "032",
                    "landsat:collection_number": "02",
                    "landsat:correction": "L2SP",
                },
                "links": [],
                "assets": assets,
            }
        )
    collection_path, items_path = _write_stac(
        root / "landsat-collection.json",
        root / "landsat-items.json",
        collection=LANDSAT_COLLECTION,
        title="Landsat Collection 2 Level-2",
        description="Landsat C2 L2",
        bbox=bbox,
        interval=[LANDSAT_ITEMS[0][1], LANDSAT_ITEMS[-1][1]],
        features=features,
    )
    return {
        "collection": collection_path,
        "items": items_path,
        "item_ids": [it[0] for it in LANDSAT_ITEMS],
        "truth": truth,
        "building_window_30m": (b_row, b_col, *LANDSAT_BUILDING),
        "cloud_window_30m": (30, 20, 40, 100),
    }
