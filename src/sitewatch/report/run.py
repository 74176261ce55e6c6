"""A run folder read back: what the report, quicklooks and chips are built from.

Everything a report shows comes from the files a detect run wrote, so
``sitewatch report RUN_DIR`` can rebuild it without the inputs or the network:

=================  ==========================================================
``changes.geojson`` polygons with attributes; run metadata under ``sitewatch``
``score.tif``       change score on the analysis grid (NaN = unobserved)
``mask.tif``        1 change, 0 no change, 255 unobserved
``before.tif``      true colour (red, green, blue reflectance or DN; NaN = none)
``after.tif``       the same after co-registration
``manifest.json``   inputs, parameters, diagnostics, versions
=================  ==========================================================
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

from sitewatch.errors import InputError

OVERVIEW_MIN_SIDE = 4096
"""Rasters longer than this on a side are read decimated, from their COG overviews
(:func:`load_run`); the run's rasters get overviews only then
(:func:`sitewatch.report.write._write_raster`): a smaller one is read whole at once."""

__all__ = ["OVERVIEW_MIN_SIDE", "RunData", "load_run"]

REQUIRED = ("changes.geojson", "score.tif", "mask.tif", "manifest.json")


@dataclass(frozen=True, eq=False)
class RunData:
    """The contents of a run folder.

    Attributes
    ----------
    path : Path
    score : (H, W) float32 ndarray
        NaN where unobserved.
    mask : (H, W) uint8 ndarray
        1 change, 0 no change, 255 unobserved.
    before_rgb, after_rgb : (3, H, W) float32 ndarray or None
        Red, green, blue on the analysis grid (NaN where unobserved); None when the
        images have no recognisable RGB bands.
    transform : Affine
        Of the analysis grid.
    crs : str or None
        None for images without a CRS (then polygons are in pixel coordinates).
    pixel_size_m : float
        Ground size of a pixel (``--pixel-size`` for images without a CRS).
    features : list of dict
        GeoJSON Features (lon/lat, or pixel col/row without a CRS).
    meta : dict
        The ``sitewatch`` block of ``changes.geojson`` (AOI, dates, method, threshold).
    manifest : dict
    radar_before, radar_after : (H, W) float32 ndarray or None
        Sentinel-1 VV in dB of the first and last radar scene of a fused optical+radar
        run (``radar_before.tif``/``radar_after.tif``), shown as chips beside the optical.
    """

    path: Path
    score: np.ndarray
    mask: np.ndarray
    before_rgb: np.ndarray | None
    after_rgb: np.ndarray | None
    transform: Affine
    crs: str | None
    pixel_size_m: float
    features: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    radar_before: np.ndarray | None = None
    radar_after: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the analysis grid."""
        return self.score.shape  # type: ignore[return-value]

    @property
    def before_label(self) -> str:
        """The before date(s) as the outputs state them."""
        return str(self.meta.get("before") or "before")

    @property
    def after_label(self) -> str:
        """The after date(s) as the outputs state them."""
        return str(self.meta.get("after") or "after")

    def to_geodataframe(self) -> Any:
        """The change polygons as a ``geopandas.GeoDataFrame`` (the ``geo`` extra).

        One row per polygon (index ``c001`` …), its attributes as columns; EPSG:4326,
        or no CRS for a run on images without one (pixel coordinates).

        Raises
        ------
        InputError
            If geopandas is not installed.
        """
        from sitewatch._geo import features_to_geodataframe

        return features_to_geodataframe(self.features, lonlat=self.crs is not None)

    def lonlat_to_pixel(self, lon: float, lat: float) -> tuple[float, float]:
        """(col, row) of a lon/lat point (or of a pixel coordinate without a CRS)."""
        if self.crs is None:
            return lon, lat
        from sitewatch.grid import _transformer

        x, y = _transformer("EPSG:4326", self.crs).transform(lon, lat)
        col, row = ~self.transform @ (x, y)
        return col, row


def _read(
    path: Path,
    *,
    bands: int | None = None,
    max_side: int | None = None,
    nearest: bool = False,
    data: np.ndarray | None = None,
) -> tuple[np.ndarray, Affine, str | None]:
    """Read a raster whole, or decimated so its longer side is at most ``max_side``.

    ``data``, the array just written to ``path``, stands in for a whole read (the
    header is still read, for the georeferencing).
    """
    from rasterio.enums import Resampling

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            idx = list(range(1, (bands or ds.count) + 1))
            f = 1 if max_side is None else math.ceil(max(ds.height, ds.width) / max_side)
            if f <= 1 and data is not None and data.shape[-2:] == (ds.height, ds.width):
                stack = data[None] if data.ndim == 2 else data
                data, transform = stack[: len(idx)], ds.transform
            elif f <= 1:
                data, transform = ds.read(idx), ds.transform
            else:
                shape = (len(idx), max(1, ds.height // f), max(1, ds.width // f))
                how = Resampling.nearest if nearest else Resampling.average
                data = ds.read(idx, out_shape=shape, resampling=how)
                transform = ds.transform @ Affine.scale(ds.width / shape[2], ds.height / shape[1])
            crs = ds.crs.to_string() if ds.crs else None
            return data, transform, crs


def load_run(
    path: str | Path,
    *,
    max_side: int = OVERVIEW_MIN_SIDE,
    rasters: Mapping[str, np.ndarray] | None = None,
) -> RunData:
    """Read a run folder written by ``sitewatch detect`` / ``demo``.

    Rasters larger than ``max_side`` pixels a side (block-wise runs) are read
    decimated, from their COG overviews, so a report of any size fits in memory.
    ``rasters`` maps file names (``"score.tif"`` …) to the arrays just written to them,
    which are taken instead of decoding the files again (the writer's own report), as
    they are: the run's arrays are those arrays, not copies.

    Raises
    ------
    InputError
        If the folder or one of its required files is missing or unreadable.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InputError(f"{root} is not a folder; give the --out folder of a detect run")
    missing = [n for n in REQUIRED if not (root / n).is_file()]
    if missing:
        raise InputError(
            f"{root} is not a sitewatch run folder (missing {', '.join(missing)}); "
            "give the --out folder of a detect run"
        )
    try:
        fc = json.loads((root / "changes.geojson").read_text(encoding="utf-8"))
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        held = dict(rasters or {})
        score, transform, crs = _read(
            root / "score.tif", max_side=max_side, data=held.get("score.tif")
        )
        mask, _, _ = _read(
            root / "mask.tif", max_side=max_side, nearest=True, data=held.get("mask.tif")
        )
        radar = {}
        for name in ("radar_before", "radar_after"):
            p = root / f"{name}.tif"
            radar[name] = (
                _read(p, max_side=max_side, data=held.get(p.name))[0][0].astype(
                    np.float32, copy=False
                )
                if p.is_file()
                else None
            )
        rgb = {}
        for name in ("before", "after"):
            p = root / f"{name}.tif"
            rgb[name] = (
                _read(p, bands=3, max_side=max_side, data=held.get(p.name))[0].astype(
                    np.float32, copy=False
                )
                if p.is_file()
                else None
            )
    except (OSError, ValueError, rasterio.errors.RasterioError) as err:
        raise InputError(f"cannot read the run folder {root}: {err}") from None
    grid = manifest.get("grid", {})
    native = (grid.get("transform") or [transform.a])[0] or transform.a
    # Ground pixel size from the manifest, times the decimation of a large run.
    px = math.sqrt(grid.get("pixel_area_m2") or abs(transform.a * transform.e))
    px *= abs(transform.a / native)
    return RunData(
        path=root,
        score=score[0].astype(np.float32, copy=False),
        mask=mask[0].astype(np.uint8, copy=False),
        before_rgb=rgb["before"],
        after_rgb=rgb["after"],
        transform=transform,
        crs=crs,
        pixel_size_m=float(px),
        features=list(fc.get("features", [])),
        meta=dict(fc.get("sitewatch", {})),
        manifest=manifest,
        **radar,
    )
