"""Pixel masks: nodata, saturation, and cloud/shadow/snow from Sentinel-2 SCL or Landsat QA.

All functions return a boolean *clear* mask (True = usable observation), so masks
combine with ``&``. Class tables follow ESA's Sentinel-2 L2A SCL and USGS Landsat
Collection 2 QA_PIXEL definitions.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = [
    "SCL_CLASSES",
    "SCL_UNCLEAR",
    "clear_from_qa_pixel",
    "clear_from_scl",
    "not_saturated",
]

SCL_CLASSES = {
    0: "no data",
    1: "saturated or defective",
    2: "topographic shadow / dark features",
    3: "cloud shadow",
    4: "vegetation",
    5: "not vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud, medium probability",
    9: "cloud, high probability",
    10: "thin cirrus",
    11: "snow or ice",
}
SCL_UNCLEAR = frozenset({0, 1, 3, 8, 9, 10, 11})
"""SCL classes masked by default: no data, defective, cloud shadow, clouds, cirrus, snow.

Topographic shadow (2), water (6) and unclassified (7) stay: new roofs are sometimes
labelled 7, and dark features include dark roofs.
"""

# QA_PIXEL bits (Landsat Collection 2): 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud,
# 4 cloud shadow, 5 snow.
_QA_FILL, _QA_DILATED, _QA_CIRRUS, _QA_CLOUD, _QA_SHADOW, _QA_SNOW = range(6)


def clear_from_scl(scl: np.ndarray, *, unclear: Iterable[int] = SCL_UNCLEAR) -> np.ndarray:
    """Clear-sky mask from a Sentinel-2 Scene Classification Layer.

    Parameters
    ----------
    scl : (H, W) integer ndarray
        SCL classes (resampled with nearest neighbour only).
    unclear : iterable of int
        Classes to mask; default :data:`SCL_UNCLEAR`.

    Examples
    --------
    >>> clear_from_scl(np.array([[4, 9], [3, 5]])).tolist()
    [[True, False], [False, True]]
    """
    return ~np.isin(np.asarray(scl), np.fromiter(unclear, dtype=np.int64))


def clear_from_qa_pixel(qa: np.ndarray, *, snow: bool = True) -> np.ndarray:
    """Clear mask from a Landsat Collection 2 ``QA_PIXEL`` band.

    A pixel is clear when none of fill, dilated cloud, cirrus, cloud, cloud shadow
    (and, by default, snow) bits is set.

    Examples
    --------
    >>> clear_from_qa_pixel(np.array([0b1000000, 0b1000, 0b100000, 1])).tolist()
    [True, False, False, False]
    """
    bits = [_QA_FILL, _QA_DILATED, _QA_CIRRUS, _QA_CLOUD, _QA_SHADOW] + ([_QA_SNOW] if snow else [])
    flag = sum(1 << b for b in bits)
    return (np.asarray(qa).astype(np.int64) & flag) == 0


def not_saturated(dn: np.ndarray, *, limit: float) -> np.ndarray:
    """False where any band reaches the sensor's saturation value ``limit``.

    Parameters
    ----------
    dn : (B, H, W) ndarray
        Raw digital numbers.
    limit : float
        Saturation value (e.g. 65535 for 16-bit products).
    """
    return ~(np.asarray(dn) >= limit).any(axis=0)
