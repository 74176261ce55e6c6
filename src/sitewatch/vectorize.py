"""Change mask + score → polygons with attributes (GeoJSON-ready, EPSG:4326)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import rasterio.features
from affine import Affine
from scipy import ndimage
from shapely.geometry import mapping, shape
from shapely.ops import unary_union

from sitewatch.aoi import geodesic_area_m2
from sitewatch.detect.cleanup import label_regions
from sitewatch.grid import Grid, to_lonlat

__all__ = ["Regions", "vectorize_changes"]

_SHAPES_LOCK = threading.Lock()


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
    regions = Regions(n, layers=tuple(layers or ()), context_px=context_px)
    part = regions.block(
        labels,
        slice(0, labels.shape[0]),
        score,
        0,
        grid,
        layers=dict(layers or {}),
        observed=observed,
    )
    regions.add(part)
    return regions.features(grid)


class Regions:
    """Per-region statistics and outlines gathered block by block, then dissolved.

    The detection engine feeds it one block of rows at a time (labels already
    global); :func:`vectorize_changes` feeds it one block, the whole image.

    Parameters
    ----------
    n : int
        Regions, labelled 1 .. n.
    layers : tuple of str
        Names of the per-pixel layers whose region means become properties.
    context_px : int
        Pixels a region is grown by for ``clear_fraction``.
    """

    def __init__(self, n: int, *, layers: tuple[str, ...] = (), context_px: int = 3) -> None:
        self.n = n
        self.layers = layers
        self.context_px = context_px
        self.px = np.zeros(n + 1)
        self.ssum = np.zeros(n + 1)
        self.smax = np.full(n + 1, -np.inf)
        self.lsum = {k: np.zeros(n + 1) for k in layers}
        self.lcnt = {k: np.zeros(n + 1) for k in layers}
        self.ctx = np.zeros(n + 1)
        self.obs = np.zeros(n + 1)
        self.has_obs = False
        self.parts: dict[int, list[Any]] = {}

    def block(
        self,
        labels: np.ndarray,
        core: slice,
        score: np.ndarray,
        row0: int,
        grid: Grid,
        *,
        layers: Mapping[str, np.ndarray],
        observed: np.ndarray | None,
    ) -> dict[str, Any]:
        """Statistics of one block (safe to run on several threads at once).

        ``labels`` and ``observed`` hold the block's rows and up to ``context_px``
        rows either side (``core`` selects the block's own); ``score`` and
        ``layers`` hold the block's rows; ``row0`` is the grid row of its first row.
        """
        lab = labels[core]
        out: dict[str, Any] = {}
        at = lab > 0
        lab_at = lab[at]  # statistics over the labelled pixels only (few, in a 1-D array)
        ids = np.unique(lab_at)
        if ids.size:
            pos = np.searchsorted(ids, lab_at)
            out["ids"] = ids
            out["px"] = np.bincount(pos, minlength=ids.size).astype(np.float64)
            sc = np.asarray(score)[at]
            out["ssum"] = np.bincount(pos, weights=sc.astype(np.float64), minlength=ids.size)
            smax = np.full(ids.size, -np.inf)
            np.maximum.at(smax, pos, sc.astype(np.float64))
            out["smax"] = smax
            for name, layer in layers.items():
                vals = np.asarray(layer)[at].astype(np.float64)
                finite = np.isfinite(vals)
                out["n_" + name] = np.bincount(pos[finite], minlength=ids.size).astype(np.float64)
                out["s_" + name] = np.bincount(
                    pos[finite], weights=vals[finite], minlength=ids.size
                )
            t = grid.transform @ Affine.translation(0, row0)
            out["parts"] = _trace(lab, t)
        if observed is not None and (labels > 0).any():
            out.update(_context(labels, core, observed, self.context_px))
        out["observed"] = observed is not None
        return out

    def add(self, part: dict[str, Any]) -> None:
        """Merge one block's statistics (in block order)."""
        self.has_obs |= bool(part.get("observed"))
        if "ids" in part:
            ids = part["ids"]
            self.px[ids] += part["px"]
            self.ssum[ids] += part["ssum"]
            self.smax[ids] = np.maximum(self.smax[ids], part["smax"])
            for name in self.layers:
                self.lcnt[name][ids] += part["n_" + name]
                self.lsum[name][ids] += part["s_" + name]
            for k, geoms in part["parts"].items():
                self.parts.setdefault(k, []).extend(geoms)
        if "cids" in part:
            self.ctx[part["cids"]] += part["ctx"]
            self.obs[part["cids"]] += part["obs"]

    def features(self, grid: Grid) -> list[dict[str, Any]]:
        """GeoJSON Features, largest first, ids ``c001`` ... (see :func:`vectorize_changes`)."""
        features = []
        for lab in range(1, self.n + 1):
            if lab not in self.parts:
                continue
            # simplify(0) drops the collinear vertices a block edge leaves in an outline,
            # so a region reads the same however the image was cut into blocks.
            geom = unary_union(self.parts[lab]).simplify(0)
            if grid.crs is None:
                out_geom = geom
                area = float(self.px[lab]) * grid.pixel_area_m2
                ndigits = 2
            else:
                out_geom = to_lonlat(geom, grid.crs)
                area = geodesic_area_m2(out_geom)
                ndigits = 7
            c = out_geom.centroid
            props: dict[str, Any] = {
                "area_m2": round(area, 1),
                "area_px": int(self.px[lab]),
                "score_mean": round(float(self.ssum[lab] / self.px[lab]), 4),
                "score_max": round(float(self.smax[lab]), 4),
                "centroid": [round(c.x, ndigits), round(c.y, ndigits)],
                "bbox": [round(v, ndigits) for v in out_geom.bounds],
            }
            for name in self.layers:
                k = self.lcnt[name][lab]
                props[name] = round(float(self.lsum[name][lab] / k), 4) if k > 0 else None
            if self.has_obs:
                k = self.ctx[lab]
                props["clear_fraction"] = round(float(self.obs[lab] / k), 4) if k > 0 else None
            features.append(
                {
                    "type": "Feature",
                    "geometry": _round_coords(mapping(out_geom), ndigits),
                    "properties": props,
                }
            )
        features.sort(key=lambda f: -f["properties"]["area_m2"])
        for i, f in enumerate(features, start=1):
            f["id"] = f"c{i:03d}"
            f["properties"] = {"id": f["id"], **f["properties"]}
        return features


_SPARSE_SHARE = 0.25
"""Regions are handled one window each when their windows cover under this share of the
block (few, small regions: the usual case); otherwise the block is handled whole."""


def _windows(labels: np.ndarray, pad: int) -> list[tuple[int, tuple[slice, slice]]] | None:
    """``(id, window)`` of each region in ``labels``: its box grown by ``pad`` px.

    None when the windows would cover more than :data:`_SPARSE_SHARE` of the array.
    """
    h, w = labels.shape
    found = [(k + 1, sl) for k, sl in enumerate(ndimage.find_objects(labels)) if sl is not None]
    wins = [
        (
            k,
            (
                slice(max(0, ys.start - pad), min(h, ys.stop + pad)),
                slice(max(0, xs.start - pad), min(w, xs.stop + pad)),
            ),
        )
        for k, (ys, xs) in found
    ]
    area = sum((y.stop - y.start) * (x.stop - x.start) for _, (y, x) in wins)
    return wins if area <= _SPARSE_SHARE * labels.size else None


def _trace(lab: np.ndarray, transform: Affine) -> dict[int, list[Any]]:
    """Outline parts of every region of ``lab`` (8-connected), by region id.

    Few small regions: traced one window each, so the tracer does not scan the whole
    block; the outlines are the same (a region's outline depends on its pixels only).
    """
    parts: dict[int, list[Any]] = {}
    wins = _windows(lab, 1)
    jobs = (
        [(lab, lab > 0, transform)]
        if wins is None
        else [
            (
                sub := lab[ys, xs],
                sub == k,
                transform @ Affine.translation(xs.start, ys.start),
            )
            for k, (ys, xs) in wins
        ]
    )
    with _SHAPES_LOCK:  # rasterio's in-memory datasets are not safe across threads
        for image, mask, t in jobs:
            for geom, value in rasterio.features.shapes(
                image, mask=mask, connectivity=8, transform=t
            ):
                parts.setdefault(int(value), []).append(shape(geom))
    return parts


def _context(
    labels: np.ndarray, core: slice, observed: np.ndarray, c: int
) -> dict[str, np.ndarray]:
    """Pixels of each region and its ``c``-px ring, and how many of them are observed.

    Over the ``core`` rows; a ring pixel goes to the highest id within reach. Every
    such pixel lies within ``c`` px of its region's box and its value depends only on
    labels within ``c`` px of it, so for few small regions one window per region (its
    box grown by ``2 c``, evaluated on the box grown by ``c``) gives exactly the whole
    block's counts. (Grey dilation of labels >= 0 with a square window is the same
    under scipy's ``reflect`` edge as under zeros outside the array.)
    """
    size = (2 * c + 1,) * 2
    wins = _windows(labels, 2 * c)
    if wins is None:
        grown = ndimage.grey_dilation(labels, size=size)
        grown = np.where(labels > 0, labels, grown)[core]
        g_at = grown > 0
        g = grown[g_at]
        cids = np.unique(g)
        if not cids.size:
            return {}
        cpos = np.searchsorted(cids, g)
        obs = observed[core][g_at].astype(np.float64)
        return {
            "cids": cids,
            "ctx": np.bincount(cpos, minlength=cids.size).astype(np.float64),
            "obs": np.bincount(cpos, weights=obs, minlength=cids.size),
        }
    h, w = labels.shape
    ids, ctx, obs = [], [], []
    for k, (ys, xs) in wins:
        sub = labels[ys, xs]
        grown = np.where(sub > 0, sub, ndimage.grey_dilation(sub, size=size))
        # The evaluated part: the box grown by c, within the core rows.
        y0 = max(ys.start + c if ys.start > 0 else 0, core.start)
        y1 = min(ys.stop - c if ys.stop < h else h, core.stop)
        x0 = xs.start + c if xs.start > 0 else 0
        x1 = xs.stop - c if xs.stop < w else w
        if y1 <= y0 or x1 <= x0:
            continue
        at = grown[y0 - ys.start : y1 - ys.start, x0 - xs.start : x1 - xs.start] == k
        n = int(at.sum())
        if n:
            ids.append(k)
            ctx.append(n)
            obs.append(int(observed[y0:y1, x0:x1][at].sum()))
    if not ids:
        return {}
    return {
        "cids": np.array(ids, dtype=labels.dtype),
        "ctx": np.array(ctx, dtype=np.float64),
        "obs": np.array(obs, dtype=np.float64),
    }
