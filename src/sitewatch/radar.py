"""Radar change detection: Sentinel-1 RTC scenes → the optical output contract.

The statistics live in :mod:`sitewatch.detect.sar` (pure arrays). This module turns
their per-pixel results into what every sitewatch run writes: change polygons with
``first_seen``, a p-value, the dB change, the orbit and the look count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from sitewatch.detect.cleanup import label_regions, remove_small_regions
from sitewatch.detect.sar import PairTest, SeriesTest
from sitewatch.grid import Grid
from sitewatch.vectorize import vectorize_changes

__all__ = ["RADAR_MIN_AREA_M2", "pair_changes", "series_changes"]

RADAR_MIN_AREA_M2 = 500.0
"""Minimum mapping unit of radar changes: 5 pixels at 10 m. A test at level α flags
isolated speckle pixels at rate α by design; five 8-connected ones together are
improbable (< α² per cluster) under no change."""


def _min_pixels(grid: Grid, min_area_m2: float) -> int:
    return max(1, int(np.ceil(min_area_m2 / grid.pixel_area_m2)))


def _per_region(labels: np.ndarray, n: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each region's most frequent value of ``values`` (≥ 0) and the share that has it."""
    mode = np.full(n + 1, -1, np.int64)
    share = np.zeros(n + 1)
    lab = labels.ravel()
    val = values.ravel().astype(np.int64)
    keep = (lab > 0) & (val >= 0)
    if keep.any():
        width = int(val[keep].max()) + 1
        counts = np.bincount(lab[keep] * width + val[keep], minlength=(n + 1) * width)
        counts = counts.reshape(n + 1, width)
        mode = counts.argmax(axis=1)
        totals = np.maximum(counts.sum(axis=1), 1)
        share = counts.max(axis=1) / totals
    return mode, share


def series_changes(
    res: SeriesTest,
    grid: Grid,
    dates: Sequence[str],
    *,
    orbit: str,
    min_area_m2: float = RADAR_MIN_AREA_M2,
    band_names: Sequence[str] = ("vv", "vh"),
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Polygons of the pixels a :func:`~sitewatch.detect.sar.sequential_omnibus` flagged.

    Each 8-connected region of changed pixels (at least ``min_area_m2``) becomes one
    Feature. Its ``first_seen`` is the date most of its pixels were first flagged on
    (``dated_share`` says how many agree), ``p_value`` the median omnibus p-value of
    its pixels, ``db_vv``/``db_vh`` the median dB change at that first change.

    Parameters
    ----------
    res : SeriesTest
    grid : Grid
    dates : sequence of str
        Acquisition dates of the scenes, in the order of the series.
    orbit : str
        The one orbit geometry the series came from (e.g. ``"ascending 127"``).
    min_area_m2 : float
        Minimum mapping unit.
    band_names : sequence of str
        Names of the bands of ``res.db_first``.

    Returns
    -------
    mask : (H, W) bool ndarray
        Changed pixels kept.
    features : list of dict
        GeoJSON Features (see :func:`~sitewatch.vectorize.vectorize_changes`).
    """
    if len(dates) != res.changed.shape[0]:
        raise ValueError(f"{len(dates)} dates for a series of {res.changed.shape[0]} scenes")
    flagged = res.first_change >= 0
    mask, _ = remove_small_regions(flagged, _min_pixels(grid, min_area_m2))
    labels, n = label_regions(mask)
    first = np.where(mask, res.first_change, -1)
    mode, share = _per_region(labels, n, first)
    layers = {"_label": labels.astype(np.float32)}  # constant per region: its mean is it
    score = np.where(mask, -np.log10(np.maximum(res.p_first, 1e-300)), 0.0).astype(np.float32)
    feats = vectorize_changes(mask, score, grid, layers=layers)
    index = np.arange(1, n + 1)
    med_p = ndimage.median(np.nan_to_num(res.p_first, nan=1.0), labels, index) if n else []
    dbs = [
        ndimage.median(np.nan_to_num(res.db_first[b]), labels, index) if n else []
        for b in range(res.db_first.shape[0])
    ]
    for f in feats:
        props = f["properties"]
        lab = round(props.pop("_label"))
        props.update(
            {
                "first_seen": dates[int(mode[lab])],
                "dated_share": round(float(share[lab]), 3),
                "p_value": float(f"{med_p[lab - 1]:.3g}"),
                **{
                    f"db_{name}": round(float(d[lab - 1]), 2)
                    for name, d in zip(band_names, dbs, strict=False)
                },
                "orbit": orbit,
                "looks": res.enl,
                "alpha": res.alpha,
                "method": "omnibus",
                "sensor": "radar",
            }
        )
    return mask, feats


def pair_changes(
    res: PairTest,
    grid: Grid,
    valid: np.ndarray,
    *,
    alpha: float,
    before_date: str,
    after_date: str,
    orbit: str,
    min_area_m2: float = RADAR_MIN_AREA_M2,
    band_names: Sequence[str] = ("vv", "vh"),
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Polygons of the pixels whose pair test rejects no-change at ``alpha``."""
    flagged = valid & (np.nan_to_num(res.p_value, nan=1.0) < alpha)
    mask, _ = remove_small_regions(flagged, _min_pixels(grid, min_area_m2))
    score = np.where(mask, -np.log10(np.maximum(res.p_value, 1e-300)), 0.0).astype(np.float32)
    layers = {f"db_{name}": res.db[b] for b, name in enumerate(band_names[: res.db.shape[0]])}
    layers["p_value"] = res.p_value
    feats = vectorize_changes(mask, score, grid, layers=layers, observed=valid)
    for f in feats:
        f["properties"].update(
            {
                "first_seen": after_date,
                "before_date": before_date,
                "after_date": after_date,
                "orbit": orbit,
                "looks": {"before": res.enl_before, "after": res.enl_after},
                "alpha": alpha,
                "method": "log-ratio",
                "sensor": "radar",
            }
        )
    return mask, feats
