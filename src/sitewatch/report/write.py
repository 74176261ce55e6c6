"""Write a ChangeResult to an output folder: GeoJSON, GeoTIFFs, manifest (atomic)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from sitewatch.report.manifest import build_manifest
from sitewatch.report.output import atomic_output_dir
from sitewatch.sources.local import file_sha256

__all__ = ["write_result"]

MASK_UNOBSERVED = 255


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _feature_collection(result: Any) -> dict[str, Any]:
    prov = result.provenance
    aoi = prov.get("aoi")
    fc: dict[str, Any] = {
        "type": "FeatureCollection",
        "name": "sitewatch changes",
        "sitewatch": {
            "aoi": aoi.id if aoi is not None else None,
            "before": prov["before"]["acquired"],
            "after": prov["after"]["acquired"],
            "method": prov["parameters"]["method"],
            "threshold": result.threshold.as_dict(),
            "coregistration": result.diagnostics.get("coregistration"),
            "coordinates": "EPSG:4326 lon/lat"
            if result.grid.crs
            else "image pixels (col, row); the inputs are not georeferenced",
        },
        "features": result.features,
    }
    return fc


def _write_raster(path: Path, data: np.ndarray, grid: Any, *, nodata: float | None) -> None:
    profile = {
        "driver": "COG" if grid.crs is not None else "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": data.dtype.name,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": nodata,
        "compress": "DEFLATE",
        "predictor": 3 if data.dtype.kind == "f" else 2,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data, 1)


def write_result(
    result: Any,
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    command: list[str] | None = None,
) -> Path:
    """Write ``changes.geojson``, ``score.tif``, ``mask.tif`` and ``manifest.json``.

    The folder appears only when every file is written (see
    :func:`~sitewatch.report.output.atomic_output_dir`).

    Parameters
    ----------
    result : ChangeResult
    out : path
        Output folder; must be absent or empty unless ``overwrite``.

    Returns
    -------
    Path
        The output folder.
    """
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        _write_json(tmp / "changes.geojson", _feature_collection(result))
        score = np.where(result.valid, result.score, np.nan).astype(np.float32)
        _write_raster(tmp / "score.tif", score, result.grid, nodata=float("nan"))
        mask = result.mask.astype(np.uint8)
        mask[~result.valid] = MASK_UNOBSERVED
        _write_raster(tmp / "mask.tif", mask, result.grid, nodata=MASK_UNOBSERVED)
        outputs = {p.name: file_sha256(p) for p in sorted(tmp.iterdir())}
        _write_json(tmp / "manifest.json", build_manifest(result, outputs=outputs, command=command))
    return Path(out).expanduser().absolute()
