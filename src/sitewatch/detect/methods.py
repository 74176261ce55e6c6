"""Change scores: pure array functions over co-registered (B, H, W) stacks."""

from __future__ import annotations

import numpy as np

__all__ = ["SCORERS", "score_change", "score_cva", "score_diff", "standardise"]


def _check(before: np.ndarray, after: np.ndarray, valid: np.ndarray) -> None:
    if before.shape != after.shape:
        raise ValueError(f"after shape {after.shape} != before {before.shape}")
    if before.ndim != 3:
        raise ValueError(f"expected (bands, H, W) stacks; got {before.shape}")
    if valid.shape != before.shape[1:]:
        raise ValueError(f"valid mask {valid.shape} != image {before.shape[1:]}")
    if not valid.any():
        raise ValueError("no valid pixels to score")


def standardise(stack: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Scale each band to zero mean and unit variance over the valid pixels.

    Parameters
    ----------
    stack : (B, H, W) ndarray
    valid : (H, W) bool ndarray

    Returns
    -------
    (B, H, W) float32 ndarray
        Standardised bands; invalid pixels are 0. A constant band stays 0.

    Examples
    --------
    >>> x = np.arange(4.0).reshape(1, 2, 2)
    >>> standardise(x, np.ones((2, 2), bool)).round(3).tolist()
    [[[-1.342, -0.447], [0.447, 1.342]]]
    """
    pix = stack[:, valid].astype(np.float64)
    mean = pix.mean(axis=1)
    std = pix.std(axis=1)
    std[std == 0] = 1.0
    out = (stack - mean[:, None, None]) / std[:, None, None]
    out[:, ~valid] = 0.0
    return out.astype(np.float32)


def score_cva(before: np.ndarray, after: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Change-vector magnitude between the standardised images.

    Each date is standardised on its own, which also absorbs a global gain/offset
    between the dates, then the Euclidean length of the per-pixel difference vector
    is divided by sqrt(B) so scores are comparable across band counts.

    Parameters
    ----------
    before, after : (B, H, W) ndarray
        Co-registered images on one grid.
    valid : (H, W) bool ndarray
        Pixels observed in both.

    Returns
    -------
    (H, W) float32 ndarray
        Score (0 where invalid).

    References
    ----------
    Malila, W. A. (1980). Change vector analysis: an approach for detecting forest
    changes with Landsat. LARS Symposia, 385.

    Examples
    --------
    >>> b = np.zeros((2, 2, 2)); b[:, 0, 0] = 1
    >>> a = b.copy(); a[:, 1, 1] = 1
    >>> score_cva(b, a, np.ones((2, 2), bool))[1, 1] > score_cva(b, a, np.ones((2, 2), bool))[0, 1]
    True
    """
    _check(before, after, valid)
    d = standardise(after, valid) - standardise(before, valid)
    score = np.sqrt((d.astype(np.float64) ** 2).sum(axis=0) / d.shape[0]).astype(np.float32)
    score[~valid] = 0.0
    return score


def score_diff(before: np.ndarray, after: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean absolute difference of the standardised bands (an L1 CVA).

    Parameters
    ----------
    before, after : (B, H, W) ndarray
    valid : (H, W) bool ndarray

    Returns
    -------
    (H, W) float32 ndarray
    """
    _check(before, after, valid)
    d = np.abs(standardise(after, valid) - standardise(before, valid)).mean(axis=0)
    d[~valid] = 0.0
    return d.astype(np.float32)


SCORERS = {"cva": score_cva, "diff": score_diff}


def score_change(
    before: np.ndarray, after: np.ndarray, valid: np.ndarray, *, method: str = "cva"
) -> np.ndarray:
    """Score change with a named method (see :data:`SCORERS`).

    Raises
    ------
    ValueError
        If the method is unknown.
    """
    try:
        fn = SCORERS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose from {sorted(SCORERS)}") from None
    return fn(before, after, valid)
