"""Synthetic scene factory and shared fixtures (no network, no ../shared needed)."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

SHARED = Path(os.environ.get("SITEWATCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
UTM = "EPSG:32652"  # Hamhung's zone
ORIGIN = (375_000.0, 4_420_000.0)  # UTM 52N, near the February 11 Plant
RES = 10.0


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = UTM,
    transform: Affine | None = None,
    nodata: float | None = None,
    driver: str = "GTiff",
) -> Path:
    """Write a (B, H, W) array as a raster file."""
    if data.ndim == 2:
        data = data[None]
    transform = transform or Affine(RES, 0, ORIGIN[0], 0, -RES, ORIGIN[1])
    profile = {
        "driver": driver,
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "nodata": nodata,
    }
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
    return path


SceneFactory = Callable[..., tuple[Path, Path, np.ndarray]]


@pytest.fixture
def planted_pair(tmp_path: Path) -> SceneFactory:
    """Factory: before/after GeoTIFFs with a planted 40 x 30 px new roof; returns truth."""

    def make(
        *,
        bands: int = 4,
        size: tuple[int, int] = (200, 200),
        roof: tuple[slice, slice] = (slice(80, 110), slice(60, 100)),
        dtype: str = "uint16",
        seed: int = 7,
        crs: str | None = UTM,
        folder: bool = False,
    ) -> tuple[Path, Path, np.ndarray]:
        rng = np.random.default_rng(seed)
        h, w = size
        # Smooth "landscape" + per-pixel texture, reflectance-like values.
        base = rng.normal(0.12, 0.02, size=(bands, h, w))
        base += np.linspace(0, 0.05, w)[None, None, :]
        before = base
        after = base + rng.normal(0, 0.004, size=base.shape)
        truth = np.zeros((h, w), dtype=bool)
        truth[roof] = True
        after[:, truth] += np.linspace(0.12, 0.2, bands)[:, None]  # bright new roof
        scale = 10000 if dtype == "uint16" else 255 / 0.6
        b = np.clip(before * scale, 1, np.iinfo(dtype).max).astype(dtype)
        a = np.clip(after * scale, 1, np.iinfo(dtype).max).astype(dtype)
        if folder:
            paths = []
            for name, arr in (("before", b), ("after", a)):
                d = tmp_path / name
                d.mkdir()
                for i in range(bands):
                    write_raster(
                        d / f"T52SCK_20240601T020000_B{i + 2:02d}.tif", arr[i : i + 1], crs=crs
                    )
                paths.append(d)
            return paths[0], paths[1], truth
        return (
            write_raster(tmp_path / "before.tif", b, crs=crs),
            write_raster(tmp_path / "after.tif", a, crs=crs),
            truth,
        )

    return make


def lonlat_box(west: float, south: float, east: float, north: float) -> dict:
    """A GeoJSON Feature with a rectangle polygon."""
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {
        "type": "Feature",
        "properties": {"id": "test-aoi", "name": "Test AOI"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def write_geojson(path: Path, obj: dict) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def needs_shared(*parts: str) -> pytest.MarkDecorator:
    """Skip unless ../shared/<parts> exists (development data, absent on fresh machines)."""
    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not present")
