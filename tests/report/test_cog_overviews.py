"""The run's rasters are COGs; overviews only where the report reads them decimated."""

from __future__ import annotations

import numpy as np
import rasterio
from affine import Affine

from sitewatch.grid import Grid
from sitewatch.report.run import OVERVIEW_MIN_SIDE
from sitewatch.report.write import _write_raster


def _grid(width: int, height: int) -> Grid:
    return Grid("EPSG:32633", Affine(10, 0, 500_000, 0, -10, 4_000_000), width, height, 100.0)


def test_overviews_only_above_the_side_the_report_reads_whole(tmp_path):
    for width, expect in ((OVERVIEW_MIN_SIDE, False), (OVERVIEW_MIN_SIDE + 1, True)):
        grid = _grid(width, 16)
        data = np.linspace(0, 1, 16 * width, dtype=np.float32).reshape(16, width)
        path = tmp_path / f"score_{width}.tif"
        _write_raster(path, data, grid, nodata=None)
        with rasterio.open(path) as ds:
            assert ds.driver == "GTiff" and ds.profile["tiled"]
            assert bool(ds.overviews(1)) is expect, width
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            np.testing.assert_array_equal(ds.read(1), data)
