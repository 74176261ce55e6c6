"""Thresholds that turn a score image into a change mask, with the reason recorded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.filters import threshold_otsu as _otsu

__all__ = ["Threshold", "threshold_otsu", "threshold_scores"]


@dataclass(frozen=True)
class Threshold:
    """A chosen threshold: pixels with score > ``value`` are change.

    Attributes
    ----------
    value : float
    rule : str
        Name of the rule (``"otsu"``, ``"fixed"``).
    why : str
        One sentence a reader of the manifest can check.
    """

    value: float
    rule: str
    why: str

    def as_dict(self) -> dict[str, float | str]:
        """JSON-ready dict."""
        return {"value": self.value, "rule": self.rule, "why": self.why}


def threshold_otsu(scores: np.ndarray, *, nbins: int = 512) -> Threshold:
    """Otsu's threshold over a 1-D sample of scores.

    References
    ----------
    Otsu, N. (1979). A threshold selection method from gray-level histograms.
    IEEE Trans. SMC 9(1), 62-66.

    Examples
    --------
    >>> x = np.r_[np.zeros(100), np.ones(10) * 5]
    >>> 0 < threshold_otsu(x).value < 5
    True
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ValueError("no finite scores to threshold")
    if s.min() == s.max():
        return Threshold(float(s.max()), "otsu", "all scores are equal: nothing is flagged")
    value = float(_otsu(s, nbins=nbins))
    frac = float((s > value).mean())
    return Threshold(
        value, "otsu", f"Otsu split of {s.size} valid-pixel scores; {frac:.2%} lie above it"
    )


def threshold_scores(
    scores: np.ndarray, *, rule: str = "otsu", value: float | None = None
) -> Threshold:
    """Pick a threshold by rule name, or use a fixed ``value`` when given."""
    if value is not None:
        return Threshold(float(value), "fixed", "set by the user")
    if rule == "otsu":
        return threshold_otsu(scores)
    raise ValueError(f"unknown threshold rule {rule!r}; choose 'otsu'")
