#!/usr/bin/env python3
"""Build the small demo sample bundled with sitewatch (``src/sitewatch/data/demo``).

The sample is one crop of one OSCD train city (Onera Satellite Change Detection dataset,
Sentinel-2 L1C, Caye Daudt et al., IGARSS 2018), both dates, all 13 bands:

    <out>/before/<BAND>.tif   date 1 (OSCD ``imgs_1``)
    <out>/after/<BAND>.tif    date 2 (OSCD ``imgs_2``)
    <out>/aoi.geojson         a working-box AOI (lon/lat) slightly inside the crop

Recipe
------
1. The crop is fixed by the constants below (CITY, ROW_OFF, COL_OFF, SIZE), given in pixels of
   the city's date-1 10 m grid (``imgs_1/*_B02.tif``; the OSCD label grid is the same grid).
2. That pixel window is turned into geographic bounds (EPSG:4326, the CRS of the OSCD files).
3. For every band and both dates, those same bounds are cut from the band's own file at its
   NATIVE resolution (10/20/60 m): ``rasterio.windows.from_bounds`` on the band's own
   transform, rounded outward to whole pixels (so coarse bands cover at least the crop),
   clipped to the file. Nothing is resampled: pixel values, dtype (uint16) and CRS are kept,
   the geotransform is the windowed one.
4. Files are written as GeoTIFF, DEFLATE + horizontal predictor (lossless), tiled when the
   crop is at least one tile in both directions, otherwise a single strip, with the dataset
   tags ``ACQUISITION_DATE=YYYY-MM-DD`` (from the city's ``dates.txt``) and ``BAND=<BAND>``.
5. The total size written is printed; the script fails if it exceeds 2,000,000 bytes.

The OSCD change labels (CC BY-NC-SA) were used only to CHOOSE the crop and are not written.
If they are present, the number of labelled changed pixels inside the crop is printed for
information.

Usage (from the repository root)::

    python scripts/make_demo_sample.py --oscd-root ../shared/data/oscd

Needs numpy and rasterio (scipy only for the optional label summary).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine
from rasterio.windows import Window, from_bounds

# --- the chosen crop (pixels of <CITY>/imgs_1/*_B02.tif, the 10 m grid of date 1) ----------
CITY = "mumbai"
ROW_OFF = 512
COL_OFF = 112
SIZE = 256

# --- metadata of the chosen city, for aoi.geojson -------------------------------------------
CITY_NAME = "Mumbai"
COUNTRIES = ["IN"]
REGION = "Mumbai, India"

# --- fixed settings ----------------------------------------------------------------------------
BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
DATES = (("before", "imgs_1", "date_1"), ("after", "imgs_2", "date_2"))
REFERENCE_BAND = "B02"  # 10 m band whose date-1 grid defines ROW_OFF/COL_OFF/SIZE
MAX_BYTES = 2_000_000
AOI_INSET_PX = 2  # the AOI box is the crop inset by this many 10 m pixels (~20 m) per side
TILE = 256  # GeoTIFF tile size; crops smaller than this in either direction are strip-organised
EPS = 1e-6  # tolerance (in pixels) for float noise when rounding windows outward

IMAGES_DIR = "Onera Satellite Change Detection dataset - Images"
LABELS_DIR = "Onera Satellite Change Detection dataset - Train Labels"
OSCD_OUTLET = "OSCD (Caye Daudt et al., IGARSS 2018)"
OSCD_TITLE = (
    "Urban Change Detection for Multispectral Earth Observation Using Convolutional Neural Networks"
)
OSCD_URL = "https://arxiv.org/abs/1810.08468"

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OSCD_ROOT = REPO_ROOT / ".." / "shared" / "data" / "oscd"
DEFAULT_OUT = REPO_ROOT / "src" / "sitewatch" / "data" / "demo"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Cut the bundled sitewatch demo sample out of the OSCD dataset.",
        epilog="Relative defaults are resolved against the repository root; "
        "paths you pass are taken as given (relative to the current directory).",
    )
    p.add_argument(
        "--oscd-root",
        type=Path,
        default=DEFAULT_OSCD_ROOT,
        help="OSCD root holding 'Onera Satellite Change Detection dataset - Images' "
        "(default: ../shared/data/oscd)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output directory (default: src/sitewatch/data/demo)",
    )
    return p.parse_args(argv)


def read_dates(city_dir: Path) -> dict[str, str]:
    """Parse ``dates.txt`` (``date_1: YYYYMMDD``) into ``{"date_1": "YYYY-MM-DD", ...}``."""
    dates: dict[str, str] = {}
    for line in (city_dir / "dates.txt").read_text().splitlines():
        if ":" not in line:
            continue
        key, value = (s.strip() for s in line.split(":", 1))
        if len(value) != 8 or not value.isdigit():
            raise ValueError(f"unexpected date {value!r} in {city_dir / 'dates.txt'}")
        dates[key] = f"{value[:4]}-{value[4:6]}-{value[6:]}"
    missing = {"date_1", "date_2"} - dates.keys()
    if missing:
        raise ValueError(f"{city_dir / 'dates.txt'} lacks {sorted(missing)}")
    return dates


def band_file(city_dir: Path, imgs: str, band: str) -> Path:
    """The single ``<granule>_<BAND>.tif`` of one band and date."""
    hits = sorted((city_dir / imgs).glob(f"*_{band}.tif"))
    if len(hits) != 1:
        raise FileNotFoundError(f"expected one *_{band}.tif in {city_dir / imgs}, found {hits}")
    return hits[0]


def outward_window(win: Window, width: int, height: int) -> Window:
    """Round a fractional window outward to whole pixels and clip it to the raster."""
    c0 = max(0, math.floor(win.col_off + EPS))
    r0 = max(0, math.floor(win.row_off + EPS))
    c1 = min(width, math.ceil(win.col_off + win.width - EPS))
    r1 = min(height, math.ceil(win.row_off + win.height - EPS))
    if c1 <= c0 or r1 <= r0:
        raise ValueError(f"window {win} does not intersect a {width}x{height} raster")
    return Window(c0, r0, c1 - c0, r1 - r0)


def window_transform(win: Window, t: Affine) -> Affine:
    """Geotransform of a whole-pixel window (same as rasterio's, without ``Affine * tuple``)."""
    col, row = win.col_off, win.row_off
    return Affine(t.a, t.b, t.c + t.a * col + t.b * row, t.d, t.e, t.f + t.d * col + t.e * row)


def window_bounds(win: Window, t: Affine) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a window on a north-up grid."""
    if t.b != 0 or t.d != 0:
        raise ValueError("rotated geotransforms are not supported")
    wt = window_transform(win, t)
    xs = (wt.c, wt.c + t.a * win.width)
    ys = (wt.f, wt.f + t.e * win.height)
    return min(xs), min(ys), max(xs), max(ys)


def layout(width: int, height: int) -> dict[str, object]:
    """Tiled if a full tile fits in both directions, else a single strip."""
    if width >= TILE and height >= TILE:
        return {"tiled": True, "blockxsize": TILE, "blockysize": TILE}
    return {"tiled": False, "blockysize": height}


def crop_band(
    src_path: Path, bounds: tuple[float, float, float, float], dst_path: Path, band: str, date: str
) -> dict[str, object]:
    """Write ``bounds`` of one band file at its native resolution; return a summary."""
    with rasterio.open(src_path) as src:
        if src.count != 1 or src.dtypes[0] != "uint16":
            raise ValueError(f"{src_path}: expected 1 uint16 band, got {src.count} {src.dtypes}")
        win = outward_window(from_bounds(*bounds, transform=src.transform), src.width, src.height)
        data = src.read(1, window=win)
        profile = {
            "driver": "GTiff",
            "width": int(win.width),
            "height": int(win.height),
            "count": 1,
            "dtype": "uint16",
            "crs": src.crs,
            "transform": window_transform(win, src.transform),
            "compress": "deflate",
            "predictor": 2,
            **layout(int(win.width), int(win.height)),
        }
        tags = dict(src.tags())
    tags.update(ACQUISITION_DATE=date, BAND=band, OSCD_CITY=CITY, SOURCE_FILE=src_path.name)
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(data, 1)
        dst.update_tags(**tags)
        dst.set_band_description(1, band)
    # read back: the written pixels must be the source pixels, unchanged
    with rasterio.open(dst_path) as chk:
        if not np.array_equal(chk.read(1), data):
            raise RuntimeError(f"{dst_path}: read-back differs from the source pixels")
    return {
        "path": dst_path,
        "window": win,
        "bytes": dst_path.stat().st_size,
        "min": int(data.min()),
        "max": int(data.max()),
    }


def aoi_feature(
    bounds: tuple[float, float, float, float], px: tuple[float, float], dates: dict[str, str]
) -> dict[str, object]:
    """GeoJSON Feature: the crop bounds inset by AOI_INSET_PX 10 m pixels."""
    west, south, east, north = bounds
    dx, dy = AOI_INSET_PX * px[0], AOI_INSET_PX * px[1]
    w, s, e, n = (round(v, 7) for v in (west + dx, south + dy, east - dx, north - dy))
    d1, d2 = dates["date_1"], dates["date_2"]
    return {
        "type": "Feature",
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
        },
        "properties": {
            "id": f"demo-{CITY}",
            "name": f"{CITY_NAME} demo crop (OSCD, Sentinel-2)",
            "kind": "demo",
            "countries": COUNTRIES,
            "located": True,
            "geometry_kind": "working_box",
            "geometry_note": (
                f"Working box, not a facility footprint: the bounds of the bundled demo crop "
                f"(OSCD {CITY} imgs_1 10 m grid, rows {ROW_OFF}-{ROW_OFF + SIZE}, cols "
                f"{COL_OFF}-{COL_OFF + SIZE}, EPSG:4326) inset by {AOI_INSET_PX} pixels "
                f"(~{AOI_INSET_PX * 10} m) per side so it lies inside every band of both dates."
            ),
            "confidence": "high",
            "sources": [
                {
                    "outlet": OSCD_OUTLET,
                    "title": OSCD_TITLE,
                    "url": OSCD_URL,
                    "date": "2018",
                    "note": (
                        f"Onera Satellite Change Detection dataset, train city '{CITY}'. Imagery: "
                        "modified Copernicus Sentinel-2 L1C data (2015-2018). The change labels "
                        "(CC BY-NC-SA) were used only to choose this crop and are not shipped."
                    ),
                }
            ],
            "events": [
                {
                    "date": f"{d1}/{d2}",
                    "event": (
                        "urban construction between the two acquisitions (OSCD change labels)"
                    ),
                    "outlet": OSCD_OUTLET,
                    "note": (
                        f"before = Sentinel-2 acquisition of {d1}, after = {d2} (OSCD dates.txt)."
                    ),
                }
            ],
            "aliases": {"en": [], "ko": [], "id": [], "ru": []},
            "weak_aliases": {"en": [], "ko": [], "id": [], "ru": []},
            "points": [],
            "candidates": [],
            "conflicts": [],
            "parent": None,
            "footprint": None,
            "region": REGION,
        },
    }


def label_summary(oscd_root: Path) -> str | None:
    """Changed-pixel count in the crop from the OSCD labels, if present (information only)."""
    path = oscd_root / LABELS_DIR / CITY / "cm" / f"{CITY}-cm.tif"
    if not path.exists():
        return None
    from scipy import ndimage  # only needed for this optional summary

    # the label file carries no georeferencing (its grid is the imgs_1 10 m grid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            cm = src.read(1)[ROW_OFF : ROW_OFF + SIZE, COL_OFF : COL_OFF + SIZE] == 2
    labels, _ = ndimage.label(cm, structure=np.ones((3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel())[1:]
    return (
        f"labels (not shipped): {int(cm.sum())} changed px of {cm.size} "
        f"({100 * cm.mean():.2f} %), {int((sizes >= 5).sum())} blobs >= 5 px (8-connected)"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    city_dir = args.oscd_root / IMAGES_DIR / CITY
    if not city_dir.is_dir():
        sys.exit(f"error: {city_dir} not found (is --oscd-root right?)")
    out: Path = args.out
    dates = read_dates(city_dir)

    # 1-2. the crop in date-1 10 m pixels -> geographic bounds
    with rasterio.open(band_file(city_dir, "imgs_1", REFERENCE_BAND)) as ref:
        crop = Window(COL_OFF, ROW_OFF, SIZE, SIZE)
        spare = (ROW_OFF, COL_OFF, ref.height - ROW_OFF - SIZE, ref.width - COL_OFF - SIZE)
        if min(spare) < 0:
            sys.exit(f"error: crop {crop} exceeds the {ref.width}x{ref.height} reference grid")
        bounds = window_bounds(crop, ref.transform)
        px = (abs(ref.transform.a), abs(ref.transform.e))
        crs = ref.crs
    print(
        f"{CITY}: rows {ROW_OFF}:{ROW_OFF + SIZE}, cols {COL_OFF}:{COL_OFF + SIZE} of "
        f"imgs_1/{REFERENCE_BAND} -> bounds (W,S,E,N) = "
        f"({bounds[0]:.7f}, {bounds[1]:.7f}, {bounds[2]:.7f}, {bounds[3]:.7f}) {crs}"
    )

    # 3-4. every band, both dates, native resolution
    written: list[Path] = []
    for sub, imgs, key in DATES:
        print(f"{sub}: {imgs}, acquired {dates[key]}")
        for band in BANDS:
            info = crop_band(
                band_file(city_dir, imgs, band), bounds, out / sub / f"{band}.tif", band, dates[key]
            )
            win = info["window"]
            if (
                band == REFERENCE_BAND
                and imgs == "imgs_1"
                and (
                    (win.row_off, win.col_off, win.height, win.width)
                    != (ROW_OFF, COL_OFF, SIZE, SIZE)
                )
            ):
                raise RuntimeError(f"reference window came out as {win}, not the chosen crop")
            print(
                f"  {sub}/{band}.tif  {int(win.width):4d}x{int(win.height):<4d} "
                f"(rows {int(win.row_off)}, cols {int(win.col_off)} of the source)  "
                f"{info['bytes']:7d} B  values {info['min']}..{info['max']}"
            )
            written.append(info["path"])

    aoi_path = out / "aoi.geojson"
    aoi_path.write_text(
        json.dumps(aoi_feature(bounds, px, dates), indent=2, ensure_ascii=False) + "\n"
    )
    written.append(aoi_path)

    summary = label_summary(args.oscd_root)
    if summary:
        print(summary)

    # 5. size budget
    total = sum(p.stat().st_size for p in written)
    whole = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"total bytes written: {total} ({len(written)} files); whole {out} directory: {whole}")
    if total > MAX_BYTES:
        sys.exit(f"error: {total} bytes written exceeds the {MAX_BYTES} byte budget (reduce SIZE)")
    if whole > MAX_BYTES:
        sys.exit(f"error: {out} holds {whole} bytes, over the {MAX_BYTES} byte budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
