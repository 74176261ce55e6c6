"""A synthetic, clearly labelled Sentinel-2-like time series over any located AOI.

For notebooks, tutorials and tests that must run offline: band folders (COGs named
like Sentinel-2 L2A tiles, reflectance stored as DN × 0.0001 − 0.1 with the 04.00
baseline offset, plus a 20 m ``SCL`` band) on the AOI's 10 m UTM grid, one folder per
date, with

* fields whose greenness drifts a little from date to date (season),
* a **new building** (a bright roof, 12 × 8 px) that appears on ``building_from`` and
  stays, at a chosen point (default: the AOI's first sourced point),
* a **transient** on ``transient_on`` only: a bright patch the cloud mask misses
  (as a thin cloud, a harvested field or a parked ship would be),
* a **masked cloud** on ``cloud_on``: bright, and classed cloud in ``SCL``.

Nothing here is real imagery; every file says so in its tags.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer

from sitewatch.aoi import AOI, load_aoi
from sitewatch.grid import Grid

__all__ = ["SyntheticSeries", "synthetic_series"]

BANDS = {  # name: (reflectance of bare soil, of full vegetation)
    "B02": (0.07, 0.03),
    "B03": (0.09, 0.06),
    "B04": (0.11, 0.03),
    "B08": (0.18, 0.40),
    "B11": (0.26, 0.16),
    "B12": (0.20, 0.08),
}
ROOF = 0.35
BUILDING_PX = (8, 12)  # rows x cols
TRANSIENT_PX = (10, 10)
NOTE = "SYNTHETIC test data made by sitewatch.data.synthetic_series; not real imagery"


@dataclass(frozen=True)
class SyntheticSeries:
    """What :func:`synthetic_series` wrote and planted.

    Attributes
    ----------
    folders : list of Path
        One band folder per date, oldest first.
    dates : list of str
    building_lonlat, transient_lonlat : (float, float)
        Centres of the planted building and transient.
    building_from, transient_on, cloud_on : str
    grid : Grid
    """

    folders: list[Path]
    dates: list[str]
    building_lonlat: tuple[float, float]
    transient_lonlat: tuple[float, float]
    building_from: str
    transient_on: str
    cloud_on: str | None
    grid: Grid


def _dn(refl: np.ndarray) -> np.ndarray:
    return np.clip(np.rint((refl + 0.1) / 0.0001), 1, 65535).astype("uint16")


def _write(path: Path, data: np.ndarray, transform: Affine, crs: str, date: str) -> None:
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype.name,
        crs=crs,
        transform=transform,
        nodata=0,
        compress="DEFLATE",
        blocksize=256,
    ) as dst:
        dst.write(data, 1)
        dst.update_tags(ACQUISITION_DATE=date, NOTE=NOTE)


def synthetic_series(
    out_dir: str | Path,
    *,
    aoi: AOI | str = "feb11-plant",
    dates: Sequence[str] = (
        "2021-01-16",
        "2021-02-15",
        "2021-03-17",
        "2021-04-16",
        "2021-05-16",
        "2021-06-15",
    ),
    building_from: str = "2021-03-17",
    transient_on: str = "2021-05-16",
    cloud_on: str | None = "2021-04-16",
    building_at: tuple[float, float] | None = None,
    seed: int = 0,
) -> SyntheticSeries:
    """Write a synthetic dated series of band folders over an AOI (see module docs).

    Parameters
    ----------
    out_dir : path
        Created; one sub-folder per date.
    aoi : AOI or str
        Located AOI (or catalog id).
    dates : sequence of str
        ISO dates, oldest first.
    building_from, transient_on, cloud_on : str
        Dates of the planted events (``cloud_on=None``: no cloud).
    building_at : (lon, lat), optional
        Building centre (default: the AOI's first sourced point, else its centroid).
    seed : int

    Returns
    -------
    SyntheticSeries

    Examples
    --------
    >>> import tempfile
    >>> s = synthetic_series(tempfile.mkdtemp(), dates=["2021-01-16", "2021-02-15"],
    ...                      building_from="2021-02-15", transient_on="2021-02-15",
    ...                      cloud_on=None)
    >>> [f.name for f in s.folders]
    ['2021-01-16', '2021-02-15']
    """
    if isinstance(aoi, str):
        aoi = load_aoi(aoi)
    aoi.require_located()
    for d in (building_from, transient_on, *(() if cloud_on is None else (cloud_on,))):
        if d not in dates:
            raise ValueError(f"event date {d} is not one of the series dates")
    out = Path(out_dir)
    grid = Grid.for_aoi(aoi.geometry, resolution=10.0)
    h, w = grid.shape
    rng = np.random.default_rng(seed)
    fields = rng.uniform(0, 1, size=(h // 6 + 1, w // 6 + 1))
    veg = np.kron(fields, np.ones((6, 6)))[:h, :w]
    if building_at is None:
        points = (aoi.properties or {}).get("points") or []
        c = aoi.geometry.centroid
        building_at = (points[0]["lon"], points[0]["lat"]) if points else (c.x, c.y)
    to_grid = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)

    def window(lonlat: tuple[float, float], size: tuple[int, int]) -> tuple[slice, slice]:
        x, y = to_grid.transform(*lonlat)
        col, row = ~grid.transform @ (x, y)
        r0, c0 = int(row) - size[0] // 2, int(col) - size[1] // 2
        return slice(r0, r0 + size[0]), slice(c0, c0 + size[1])

    b_win = window(building_at, BUILDING_PX)
    # The transient sits 600 m east of the building (inside a 3 km AOI).
    t_lonlat = (
        building_at[0] + 600 / (111_320 * np.cos(np.radians(building_at[1]))),
        building_at[1],
    )
    t_win = window(t_lonlat, TRANSIENT_PX)
    cloud = np.zeros((h, w), dtype=bool)
    cloud[h // 8 : h // 3, w // 2 : w - w // 8] = True  # north-east, away from both
    t20 = grid.transform @ Affine.scale(2)
    folders = []
    for i, date in enumerate(dates):
        d = out / date
        d.mkdir(parents=True, exist_ok=True)
        stamp = dt.date.fromisoformat(date).strftime("%Y%m%d")
        v = veg * (1 + 0.03 * np.sin(2 * np.pi * i / 12))  # a gentle seasonal drift
        for band, (soil, green) in BANDS.items():
            refl = soil + (green - soil) * v + rng.normal(0, 0.003, size=(h, w))
            if date >= building_from:
                refl[b_win] = ROOF
            if date == transient_on:
                refl[t_win] = 0.45
            if date == cloud_on:
                refl[cloud] = 0.6
            _write(
                d / f"T52SCK_{stamp}T020000_{band}.tif", _dn(refl), grid.transform, grid.crs, date
            )
        scl = np.where(v[::2, ::2] > 0.5, 4, 5).astype("uint8")
        if date == cloud_on:
            scl[cloud[::2, ::2]] = 9
        _write(d / f"T52SCK_{stamp}T020000_SCL.tif", scl, t20, grid.crs, date)
        folders.append(d)
    return SyntheticSeries(
        folders=folders,
        dates=list(dates),
        building_lonlat=(float(building_at[0]), float(building_at[1])),
        transient_lonlat=(float(t_lonlat[0]), float(t_lonlat[1])),
        building_from=building_from,
        transient_on=transient_on,
        cloud_on=cloud_on,
        grid=grid,
    )
