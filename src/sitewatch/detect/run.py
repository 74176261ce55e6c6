"""The numeric chain on arrays: score → threshold → clean-up (no I/O).

:func:`detect_arrays` is what both ``sitewatch detect`` (via
:func:`sitewatch.pipeline.detect_change`) and the benchmark harness run, so the
benchmark measures exactly the shipped detector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from sitewatch.detect.cleanup import remove_small_regions
from sitewatch.detect.methods import (
    SMOOTHS_INSIDE,
    band_roles,
    construction_scores,
    score_change,
    smooth_masked,
)
from sitewatch.detect.options import (
    COREG_ORDER,
    COREG_UPSAMPLE,
    DEFAULT_MIN_AREA_M2,
    SCORE_FLOOR,
    DetectOptions,
)
from sitewatch.detect.threshold import Threshold, threshold_scores
from sitewatch.prepare.coregister import apply_shift, coregister
from sitewatch.prepare.normalize import normalize_irmad

__all__ = ["DEFAULT_MIN_AREA_M2", "DetectOptions", "Detection", "detect_arrays"]


@dataclass(frozen=True, eq=False)
class Detection:
    """Result of :func:`detect_arrays`.

    Attributes
    ----------
    score : (H, W) float32 ndarray
    mask : (H, W) bool ndarray
        Change after threshold and clean-up.
    valid : (H, W) bool ndarray
        Pixels scored (the input mask, less what co-registration shifted out).
    threshold : Threshold
    diagnostics : dict
        Co-registration and normalisation evidence, pixel counts, clean-up.
    aligned_after : (B, H, W) ndarray or None
        The after stack as scored, after co-registration (before normalisation).
    pixel_score : (H, W) ndarray or None
        The score before smoothing (IR-MAD: the χ² statistic).
    """

    score: np.ndarray
    mask: np.ndarray
    valid: np.ndarray
    threshold: Threshold
    diagnostics: dict[str, Any] = field(default_factory=dict)
    aligned_after: np.ndarray | None = None
    pixel_score: np.ndarray | None = None


def _reference_band(before: np.ndarray, band_names: Sequence[str] | None) -> int | None:
    roles = band_roles(band_names, before.shape[0])
    return roles.get("nir", roles.get("red"))


def _coregister(
    before: np.ndarray, after: np.ndarray, valid: np.ndarray, band_names: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, dict]:
    i = _reference_band(before, band_names)
    ref = before[i] if i is not None else before.mean(axis=0)
    mov = after[i] if i is not None else after.mean(axis=0)
    try:
        res = coregister(ref, mov, valid, upsample=COREG_UPSAMPLE)
    except ValueError as err:
        return after, valid, {"applied": False, "flagged": False, "note": f"skipped: {err}"}
    info = res.as_dict()
    if not res.applied:
        return after, valid, info
    shifted, ok = apply_shift(after, valid, res.shift, order=COREG_ORDER)
    return np.nan_to_num(shifted, nan=0.0).astype(np.float32), valid & ok, info


def detect_arrays(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    *,
    band_names: Sequence[str] | None = None,
    pixel_area_m2: float = 100.0,
    options: DetectOptions | None = None,
) -> Detection:
    """Co-register, normalise, score, threshold and clean change between two stacks.

    Parameters
    ----------
    before, after : (B, H, W) ndarray
        Images on one grid (bands in the same order).
    valid : (H, W) bool ndarray
        Pixels observed in both.
    band_names : sequence of str, optional
        Band names (``B02`` ... for Sentinel-2), used by index-based methods and to
        pick the co-registration band (NIR, else red, else the band mean).
    pixel_area_m2 : float
        Ground area of a pixel, for the minimum mapping unit.
    options : DetectOptions, optional

    Returns
    -------
    Detection
    """
    opts = options or DetectOptions()
    diagnostics: dict[str, Any] = {"options": opts.as_dict()}
    if opts.coregister:
        after, valid, diagnostics["coregistration"] = _coregister(before, after, valid, band_names)
    aligned = after
    if opts.normalize:
        norm = normalize_irmad(before, after, valid, band_names=band_names)
        after = norm.after
        diagnostics["normalization"] = norm.as_dict()
    if opts.method in SMOOTHS_INSIDE:
        score, pixel_score = construction_scores(
            before, after, valid, band_names=band_names, smooth=opts.smooth
        )
    else:
        pixel_score = score_change(before, after, valid, method=opts.method, band_names=band_names)
        score = smooth_masked(pixel_score, valid, opts.smooth)
    p_nochange = None
    if opts.threshold_rule == "share" and opts.threshold is None:
        from sitewatch.detect.irmad import irmad

        p_nochange = irmad(before, after, valid).p_nochange[valid]
    thr = threshold_scores(
        score[valid],
        rule=opts.threshold_rule,
        value=opts.threshold,
        dof=before.shape[0],
        p=opts.chi2_p,
        k=opts.k,
        floor=SCORE_FLOOR if opts.method in SMOOTHS_INSIDE else None,
        p_nochange=p_nochange,
    )
    raw = (score > thr.value) & valid
    if opts.smooth > 0 and opts.edge > 0:
        raw &= pixel_score > opts.edge * thr.value
    if opts.opening:
        raw = ndimage.binary_opening(raw, structure=_disk(opts.opening))
    min_px = opts.min_pixels(pixel_area_m2)
    mask, removed = remove_small_regions(raw, min_px)
    diagnostics.update(
        {
            "threshold": thr.as_dict(),
            "changed_pixels_raw": int(raw.sum()),
            "changed_pixels": int(mask.sum()),
            "regions_removed_below_mmu": removed,
            "min_area_m2": round(min_px * pixel_area_m2, 1),
            "min_area_px": min_px,
        }
    )
    return Detection(score, mask, valid, thr, diagnostics, aligned, pixel_score)


def _disk(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return (x * x + y * y) <= radius * radius
