"""The numeric chain on arrays: score → threshold → clean-up (no I/O).

:func:`detect_arrays` is what both ``sitewatch detect`` (via
:func:`sitewatch.pipeline.detect_change`) and the benchmark harness run, so the
benchmark measures exactly the shipped detector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sitewatch.detect.cleanup import remove_small_regions
from sitewatch.detect.methods import SCORERS, score_change
from sitewatch.detect.threshold import Threshold, threshold_scores

__all__ = ["DEFAULT_MIN_AREA_M2", "DetectOptions", "Detection", "detect_arrays"]

DEFAULT_MIN_AREA_M2 = 500.0
"""Default minimum mapping unit; at least 5 pixels whatever the resolution."""


@dataclass(frozen=True)
class DetectOptions:
    """Options of the numeric chain.

    Attributes
    ----------
    method : str
        Change score name (see :data:`sitewatch.detect.methods.SCORERS`).
    threshold_rule : str
        Rule that picks the threshold when ``threshold`` is None.
    threshold : float or None
        Fixed threshold.
    min_area_m2 : float or None
        Minimum mapping unit; None = ``max(500 m², 5 px)``.
    """

    method: str = "cva"
    threshold_rule: str = "otsu"
    threshold: float | None = None
    min_area_m2: float | None = None

    def __post_init__(self) -> None:
        if self.method not in SCORERS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {sorted(SCORERS)}")
        if self.min_area_m2 is not None and self.min_area_m2 < 0:
            raise ValueError(f"min_area_m2 {self.min_area_m2} is negative")

    def min_pixels(self, pixel_area_m2: float) -> int:
        """Minimum mapping unit in pixels for a given pixel area."""
        mmu = DEFAULT_MIN_AREA_M2 if self.min_area_m2 is None else float(self.min_area_m2)
        floor = 5 if self.min_area_m2 is None else 1
        return max(math.ceil(mmu / pixel_area_m2 - 1e-9), floor)


@dataclass(frozen=True, eq=False)
class Detection:
    """Result of :func:`detect_arrays`.

    Attributes
    ----------
    score : (H, W) float32 ndarray
    mask : (H, W) bool ndarray
        Change after threshold and clean-up.
    threshold : Threshold
    diagnostics : dict
        Pixel counts, minimum mapping unit, stage details.
    """

    score: np.ndarray
    mask: np.ndarray
    threshold: Threshold
    diagnostics: dict[str, Any] = field(default_factory=dict)


def detect_arrays(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    *,
    band_names: Sequence[str] | None = None,
    pixel_area_m2: float = 100.0,
    options: DetectOptions | None = None,
) -> Detection:
    """Score, threshold and clean change between two co-gridded stacks.

    Parameters
    ----------
    before, after : (B, H, W) ndarray
        Images on one grid (bands in the same order).
    valid : (H, W) bool ndarray
        Pixels observed in both.
    band_names : sequence of str, optional
        Band names (``B02`` ... for Sentinel-2), used by index-based methods.
    pixel_area_m2 : float
        Ground area of a pixel, for the minimum mapping unit.
    options : DetectOptions, optional

    Returns
    -------
    Detection
    """
    opts = options or DetectOptions()
    score = score_change(before, after, valid, method=opts.method)
    thr = threshold_scores(score[valid], rule=opts.threshold_rule, value=opts.threshold)
    raw = (score > thr.value) & valid
    min_px = opts.min_pixels(pixel_area_m2)
    mask, removed = remove_small_regions(raw, min_px)
    diagnostics = {
        "threshold": thr.as_dict(),
        "changed_pixels_raw": int(raw.sum()),
        "changed_pixels": int(mask.sum()),
        "regions_removed_below_mmu": removed,
        "min_area_m2": round(min_px * pixel_area_m2, 1),
        "min_area_px": min_px,
    }
    return Detection(score, mask, thr, diagnostics)
