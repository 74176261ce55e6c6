"""Change mask + score → polygons with attributes (GeoJSON-ready, EPSG:4326)."""

from __future__ import annotations

from typing import Any

import numpy as np
import rasterio.features
from scipy import ndimage
from shapely.geometry import mapping, shape
from shapely.ops import unary_union

from sitewatch.aoi import geodesic_area_m2
from sitewatch.detect.cleanup import label_regions
from sitewatch.grid import Grid, to_lonlat

__all__ = ["vectorize_changes"]


def _round_coords(obj: Any, ndigits: int) -> Any:
    if isinstance(obj, float):
        return round(obj, ndigits)
    if isinstance(obj, list | tuple):
        return [_round_coords(o, ndigits) for o in obj]
    return obj


def vectorize_changes(mask: np.ndarray, score: np.ndarray, grid: Grid) -> list[dict[str, Any]]:
    """Turn each 8-connected change region into a GeoJSON Feature.

    Parameters
    ----------
    mask : (H, W) bool ndarray
        Change mask on ``grid``.
    score : (H, W) float ndarray
        Change score on ``grid``.
    grid : Grid
        Georeferencing. Without a CRS, coordinates stay in pixel units (col, row).

    Returns
    -------
    list of dict
        Features sorted by area (largest first) with ids ``c001``, ``c002``, ...
        Properties: ``area_m2``, ``area_px``, ``score_mean``, ``score_max``,
        ``centroid`` ([lon, lat] or [col, row]) and ``bbox``.
    """
    labels, n = label_regions(mask)
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    px = ndimage.sum_labels(np.ones_like(score, dtype=np.float64), labels, index)
    mean = ndimage.mean(score, labels, index)
    peak = ndimage.maximum(score, labels, index)

    parts: dict[int, list[Any]] = {}
    for geom, value in rasterio.features.shapes(
        labels, mask=labels > 0, connectivity=8, transform=grid.transform
    ):
        parts.setdefault(int(value), []).append(shape(geom))

    features = []
    for lab in index:
        geom = unary_union(parts[int(lab)])
        if grid.crs is None:
            out_geom = geom
            area = float(px[lab - 1]) * grid.pixel_area_m2
            ndigits = 2
        else:
            out_geom = to_lonlat(geom, grid.crs)
            area = geodesic_area_m2(out_geom)
            ndigits = 7
        c = out_geom.centroid
        features.append(
            {
                "type": "Feature",
                "geometry": _round_coords(mapping(out_geom), ndigits),
                "properties": {
                    "area_m2": round(area, 1),
                    "area_px": int(px[lab - 1]),
                    "score_mean": round(float(mean[lab - 1]), 4),
                    "score_max": round(float(peak[lab - 1]), 4),
                    "centroid": [round(c.x, ndigits), round(c.y, ndigits)],
                    "bbox": [round(v, ndigits) for v in out_geom.bounds],
                },
            }
        )
    features.sort(key=lambda f: -f["properties"]["area_m2"])
    for i, f in enumerate(features, start=1):
        f["id"] = f"c{i:03d}"
        f["properties"] = {"id": f["id"], **f["properties"]}
    return features
