"""nodata comes from the item's ``raster:bands`` when declared, else from the COG's tag."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine
from shapely.geometry import box

from sitewatch.sources.stac import read_asset_window

RES = 0.0003
ORIGIN = (12.0, 45.0)


def write_untagged(path, data: np.ndarray) -> None:
    """A GeoTIFF whose header carries no nodata tag (like Landsat's qa_pixel)."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype.name,
        crs="EPSG:4326",
        transform=Affine(RES, 0, ORIGIN[0], 0, -RES, ORIGIN[1]),
    ) as dst:
        dst.write(data, 1)


def landsat_item(href: str, shape: tuple[int, int], raster_bands: list | None) -> pystac.Item:
    it = pystac.Item(
        "LC09_TEST", None, None, dt.datetime(2023, 10, 8), {}, collection="landsat-c2-l2"
    )
    extra: dict = {
        "proj:code": "EPSG:4326",
        "proj:shape": list(shape),
        "proj:transform": [RES, 0, ORIGIN[0], 0, -RES, ORIGIN[1]],
    }
    if raster_bands is not None:
        extra["raster:bands"] = raster_bands
    it.add_asset("qa_pixel", pystac.Asset(href, extra_fields=extra))
    return it


# Real Earth Search / Planetary Computer landsat-c2-l2 qa_pixel: nodata 1 (the fill bit).
QA_BANDS = [{"nodata": 1, "data_type": "uint16", "spatial_resolution": 30, "unit": "bit index"}]
CLEAR = 21824  # Landsat 8/9 QA_PIXEL: clear, low confidence cloud


@pytest.mark.parametrize(("bands", "expected"), [(QA_BANDS, 1.0), (None, None)])
def test_nodata_is_taken_from_raster_bands_else_the_tag(tmp_path, bands, expected):
    data = np.full((40, 40), CLEAR, dtype=np.uint16)
    data[:, :20] = 1  # half of the window is fill
    path = tmp_path / "qa.tif"
    write_untagged(path, data)
    item = landsat_item(str(path), data.shape, bands)
    area = box(ORIGIN[0] + 5 * RES, ORIGIN[1] - 35 * RES, ORIGIN[0] + 35 * RES, ORIGIN[1] - 5 * RES)
    entry, _ = read_asset_window(item, "qa_pixel", area)
    assert entry.nodata == expected
