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

from sitewatch.detect.methods import _check, band_roles, smooth_masked
from sitewatch.detect.options import (
    COREG_MAX_SHIFT_M,
    COREG_MAX_SHIFT_MIN_PX,
    COREG_ORDER,
    COREG_UPSAMPLE,
    COREG_WINDOW,
    DEFAULT_MIN_AREA_M2,
    DetectOptions,
)
from sitewatch.detect.threshold import Threshold
from sitewatch.prepare.coregister import apply_shift, coregister
from sitewatch.prepare.normalize import apply_normalization, normalize_sampled

__all__ = [
    "DEFAULT_MIN_AREA_M2",
    "DetectOptions",
    "Detection",
    "detect_arrays",
    "smooth_masked",
]


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
    features : list of dict or None
        Change polygons (when a grid was given).
    p_no_change : (H, W) float32 ndarray or None
        IR-MAD P(no change) on the change mask (NaN elsewhere), when evidence was
        asked for.
    """

    score: np.ndarray
    mask: np.ndarray
    valid: np.ndarray
    threshold: Threshold
    diagnostics: dict[str, Any] = field(default_factory=dict)
    aligned_after: np.ndarray | None = None
    pixel_score: np.ndarray | None = None
    features: list[dict[str, Any]] | None = None
    p_no_change: np.ndarray | None = None


def _reference_band(before: np.ndarray, band_names: Sequence[str] | None) -> int | None:
    roles = band_roles(band_names, before.shape[0])
    return roles.get("nir", roles.get("red"))


def central_window(h: int, w: int) -> tuple[int, int, int, int]:
    """(row, col, height, width) of the central co-registration window (:data:`COREG_WINDOW`)."""
    wh, ww = min(h, COREG_WINDOW), min(w, COREG_WINDOW)
    return (h - wh) // 2, (w - ww) // 2, wh, ww


def max_shift_px(pixel_area_m2: float | None) -> float | None:
    """Longest co-registration shift applied, in pixels of this size (None: unknown size).

    :data:`~sitewatch.detect.options.COREG_MAX_SHIFT_M`, and at least
    :data:`~sitewatch.detect.options.COREG_MAX_SHIFT_MIN_PX` pixels.

    Examples
    --------
    >>> max_shift_px(100.0), max_shift_px(900.0), max_shift_px(0.25)
    (6.0, 3.0, 120.0)
    """
    if not pixel_area_m2 or not pixel_area_m2 > 0:
        return None
    return max(COREG_MAX_SHIFT_MIN_PX, COREG_MAX_SHIFT_M / math.sqrt(pixel_area_m2))


def estimate_shift(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    band_names: Sequence[str] | None,
    *,
    pixel_area_m2: float | None = None,
) -> tuple[tuple[float, float] | None, dict]:
    """The co-registration shift of two stacks (None if not applied) and its evidence.

    Estimated on the NIR band, else red, else the band mean (see
    :func:`~sitewatch.prepare.coregister.coregister`); with ``pixel_area_m2``, a shift
    longer than :func:`max_shift_px` is not applied.
    """
    i = _reference_band(before, band_names)
    ref = before[i] if i is not None else before.mean(axis=0)
    mov = after[i] if i is not None else after.mean(axis=0)
    cap = max_shift_px(pixel_area_m2)
    try:
        res = coregister(ref, mov, valid, upsample=COREG_UPSAMPLE, max_shift=cap)
    except ValueError as err:
        return None, {"applied": False, "flagged": False, "note": f"skipped: {err}"}
    shift = (float(res.shift[0]), float(res.shift[1])) if res.applied else None
    info = res.as_dict()
    if cap is not None:
        info["max_shift_px"] = round(cap, 3)
    return shift, info


def align_after(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    band_names: Sequence[str] | None,
    *,
    pixel_area_m2: float | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The after stack shifted onto the before one (estimated on the central window).

    Returns the (possibly) shifted stack, ``valid`` less what the shift moved out, and the
    co-registration record; the stack is returned as is when no shift is applied (also
    when it is longer than :func:`max_shift_px` of ``pixel_area_m2``).
    """
    h, w = valid.shape
    r0, c0, wh, ww = central_window(h, w)
    win = (slice(r0, r0 + wh), slice(c0, c0 + ww))
    shift, info = estimate_shift(
        before[:, win[0], win[1]],
        after[:, win[0], win[1]],
        valid[win],
        band_names,
        pixel_area_m2=pixel_area_m2,
    )
    if (wh, ww) != (h, w):
        info["window"] = [int(c0), int(r0), int(ww), int(wh)]
    if shift is None:
        return after, valid, info
    shifted, ok = apply_shift(after, valid, shift, order=COREG_ORDER)
    return np.nan_to_num(shifted, nan=0.0).astype(np.float32), valid & ok, info


def detect_arrays(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    *,
    band_names: Sequence[str] | None = None,
    pixel_area_m2: float = 100.0,
    options: DetectOptions | None = None,
    grid: Any = None,
    evidence: bool = False,
    threads: int | None = None,
    block_rows: int | None = None,
) -> Detection:
    """Co-register, normalise, score, threshold and clean change between two stacks.

    The scoring, threshold and clean-up run in the block engine
    (:func:`~sitewatch.detect.engine.run_engine`) with in-memory sinks; the
    result does not depend on ``threads`` or ``block_rows``.

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
    grid : Grid, optional
        With a grid the change polygons are traced (``features``).
    evidence : bool
        Also compute IR-MAD P(no change) (``p_no_change``, and its polygon means).
    threads, block_rows : int, optional
        Threads of the block pool and rows per block (defaults: every core; about
        four blocks per thread).

    Returns
    -------
    Detection

    Raises
    ------
    ValueError
        Shapes disagree, no valid pixels, constant or non-finite bands.
    """
    from sitewatch.detect.engine import ArrayReader, ArraySink, run_engine

    opts = options or DetectOptions()
    _check(before, after, valid)
    diagnostics: dict[str, Any] = {"options": opts.as_dict()}
    if opts.coregister:
        after, valid, diagnostics["coregistration"] = align_after(
            before, after, valid, band_names, pixel_area_m2=pixel_area_m2
        )
    aligned = after
    if opts.normalize:
        # Fitted on a sample that does not depend on the blocking (a block-wise run
        # draws the same pixels), then applied to every valid pixel.
        norm = normalize_sampled(ArrayReader(before, after, valid), band_names=band_names)
        after = apply_normalization(after, valid, norm.fits)
        diagnostics["normalization"] = norm.as_dict()
    shape = (int(valid.shape[0]), int(valid.shape[1]))
    res = run_engine(
        ArrayReader(before, after, valid),
        band_names=band_names,
        pixel_area_m2=pixel_area_m2,
        options=opts,
        sinks=lambda name, dtype, fill: ArraySink(shape, dtype, fill),
        threads=threads,
        block_rows=block_rows,
        grid=grid,
        evidence=evidence,
    )
    diagnostics.update(res.diagnostics)
    mask_code = res.mask.array
    valid = mask_code != 255
    p_nc = None
    if res.evidence is not None:
        from scipy import special

        # Where the polygons read it (the change mask): every pixel would cost about
        # 0.2 µs each (0.8 s on a 2048² image) for a map nothing shows.
        p_nc = np.full(shape, np.nan, dtype=np.float32)
        at = mask_code == 1
        p_nc[at] = special.chdtrc(res.evidence_dof, res.evidence.array[at])
    return Detection(
        res.score.array,
        mask_code == 1,
        valid,
        res.threshold,
        diagnostics,
        aligned,
        res.pixel.array if res.pixel is not None else res.score.array,
        features=res.features,
        p_no_change=p_nc,
    )
