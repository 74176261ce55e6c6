"""Reading a multi-band file onto a grid: its bands in one pass, the same values."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from conftest import ORIGIN, RES, UTM, write_raster
from sitewatch.grid import Grid
from sitewatch.sources import local
from sitewatch.sources.local import open_local, read_scene


def _expected(data: np.ndarray, nodata: float | None) -> np.ndarray:
    out = data.astype(np.float32)
    if nodata is not None:
        out[data == nodata] = np.nan
    return out


@pytest.mark.parametrize("crs", [UTM, None])
def test_bands_of_one_file_are_read_together_with_the_same_values(tmp_path, monkeypatch, crs):
    rng = np.random.default_rng(4)
    data = rng.integers(1, 250, (4, 40, 30)).astype(np.uint8)
    data[:, 3, 4] = 0  # one nodata pixel
    path = write_raster(tmp_path / "img.tif", data, crs=crs, nodata=0)
    src = open_local(path, pixel_size=None if crs else 1.0, bands="blue,green,red,nir")
    calls: list[object] = []
    real = local._read_window
    monkeypatch.setattr(local, "_read_window", lambda ds, i, w: calls.append(i) or real(ds, i, w))
    # The whole image, then rows 10:25 and columns 5:20 of its pixels (a block).
    whole = read_scene(src, src.grid)
    assert calls == [[1, 2, 3, 4]]  # one read for the four bands
    expect = _expected(data, 0)
    assert whole.valid.sum() == 40 * 30 - 1 and not whole.valid[3, 4]
    assert np.array_equal(whole.data[:, whole.valid], expect[:, whole.valid])
    sub = Grid(
        src.grid.crs,
        src.grid.transform @ Affine.translation(5, 10),
        15,
        15,
        pixel_size_m=src.grid.pixel_size_m,
    )
    calls.clear()
    part = read_scene(src, sub, bands=["nir", "blue"])  # another order, a subset
    assert calls == [[1, 4]]
    assert np.array_equal(part.data, expect[[3, 0], 10:25, 5:20])
    # and the same values as band by band (the reader before)
    for i, band in enumerate(("blue", "green", "red", "nir")):
        one = read_scene(src, src.grid, bands=[band])
        assert np.array_equal(one.data[0], whole.data[i])


def test_a_grid_partly_outside_the_file_reads_what_it_covers(tmp_path):
    data = np.arange(1, 3 * 20 * 20 + 1, dtype=np.uint16).reshape(3, 20, 20)
    path = write_raster(tmp_path / "img.tif", data, nodata=0)
    src = open_local(path, bands="blue,green,red")
    t = Affine(RES, 0, ORIGIN[0] + 10 * RES, 0, -RES, ORIGIN[1] - 5 * RES)
    scene = read_scene(src, Grid(UTM, t, 20, 20))  # rows 5:25, columns 10:30 of the file
    assert np.array_equal(scene.data[:, :15, :10], data[:, 5:20, 10:20].astype(np.float32))
    assert not scene.valid[15:, :].any() and not scene.valid[:, 10:].any()
