"""Clean-up of change masks: minimum mapping unit."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["STRUCTURE_8", "label_regions", "remove_small_regions"]

STRUCTURE_8 = np.ones((3, 3), dtype=bool)


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected labels of a boolean mask (0 = background)."""
    labels, n = ndimage.label(mask, structure=STRUCTURE_8)
    return labels.astype(np.int32), int(n)


def remove_small_regions(mask: np.ndarray, min_pixels: int) -> tuple[np.ndarray, int]:
    """Drop 8-connected regions smaller than ``min_pixels``.

    Returns
    -------
    mask : (H, W) bool ndarray
        The cleaned mask.
    removed : int
        How many regions were dropped.

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[0, 0] = True; m[2:5, 2:5] = True
    >>> out, n = remove_small_regions(m, 4)
    >>> int(out.sum()), n
    (9, 1)
    """
    if min_pixels <= 1:
        return mask.copy(), 0
    labels, n = label_regions(mask)
    if n == 0:
        return mask.copy(), 0
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_pixels
    keep[0] = False
    return keep[labels], int((~keep[1:]).sum())
