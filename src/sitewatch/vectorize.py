"""Change mask + score → polygons with attributes (GeoJSON-ready, EPSG:4326)."""

from __future__ import annotations

from collections.abc import Mapping
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
    if isinstance(obj, dict):  # a GeoJSON geometry mapping
        return {k: _round_coords(v, ndigits) for k, v in obj.items()}
    return obj


def vectorize_changes(
    mask: np.ndarray,
    score: np.ndarray,
    grid: Grid,
    *,
    layers: Mapping[str, np.ndarray] | None = None,
    observed: np.ndarray | None = None,
    context_px: int = 3,
) -> list[dict[str, Any]]:
    """Turn each 8-connected change region into a GeoJSON Feature.

    Parameters
    ----------
    mask : (H, W) bool ndarray
        Change mask on ``grid``.
    score : (H, W) float ndarray
        Change score on ``grid``.
    grid : Grid
        Georeferencing. Without a CRS, coordinates stay in pixel units (col, row).
    layers : mapping of str to (H, W) ndarray, optional
        Per-pixel values whose mean over each region becomes a property (NaNs
        ignored; None if a region has none).
    observed : (H, W) bool ndarray, optional
        Pixels observed clear in both images: adds ``clear_fraction``, the observed
        share of the region grown by ``context_px`` pixels (how much of the
        surroundings the evidence rests on).

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
    extra: dict[str, list[float | None]] = {}
    for name, layer in (layers or {}).items():
        finite = np.isfinite(layer)
        n_fin = ndimage.sum_labels(finite.astype(np.float64), labels, index)
        tot = ndimage.sum_labels(np.where(finite, layer, 0.0).astype(np.float64), labels, index)
        extra[name] = [
            round(float(t / k), 4) if k > 0 else None for t, k in zip(tot, n_fin, strict=True)
        ]
    if observed is not None:
        grown = ndimage.grey_dilation(labels, size=(2 * context_px + 1,) * 2)
        grown = np.where(labels > 0, labels, grown)
        n_ctx = ndimage.sum_labels(np.ones(labels.shape), grown, index)
        n_obs = ndimage.sum_labels(observed.astype(np.float64), grown, index)
        extra["clear_fraction"] = [
            round(float(o / k), 4) if k > 0 else None for o, k in zip(n_obs, n_ctx, strict=True)
        ]

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
                    **{k: v[lab - 1] for k, v in extra.items()},
                },
            }
        )
    features.sort(key=lambda f: -f["properties"]["area_m2"])
    for i, f in enumerate(features, start=1):
        f["id"] = f"c{i:03d}"
        f["properties"] = {"id": f["id"], **f["properties"]}
    return features
