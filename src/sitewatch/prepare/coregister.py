"""Sub-pixel co-registration of an image pair: estimate a shift, check it, apply it.

One translation is estimated for the whole pair: a global sub-pixel
cross-correlation (upsampled DFT, scikit-image), refined by the median of a grid of
local tie points when the scene is large enough. The residual misregistration is
measured before and after, and the shift is kept only if the residual falls, so
co-registration never makes an alignment worse.

Both images are high-pass filtered (minus a Gaussian blur of 10 px, which removes
illumination gradients and seasonal brightness) and tapered with a Tukey window
before correlation. The correlation is unnormalised (``normalization=None``): on
synthetic pairs and on OSCD Sentinel-2 pairs with planted shifts it was two to four
times more accurate than phase normalisation, which was biased by up to 0.1 px.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import scipy.fft
from scipy import ndimage as ndi

__all__ = ["CoregResult", "apply_shift", "coregister"]

_HIGHPASS_SIGMA = 10.0  # px: Gaussian subtracted before correlating
_TAPER_ALPHA = 0.5  # Tukey window: the outer quarter of each side is tapered
_MIN_PEAK = 0.2  # correlation at the peak below which a match is unreliable
_MIN_VALID = 0.5  # fraction of valid pixels an image pair needs
_TILE_MIN_VALID = 0.9  # fraction of valid pixels a tie-point window needs
_TILE_MIN_TEXTURE = 0.25  # window std over global std (of the high-passed image)
_MAD_K = 3.0  # tie points further than K robust sigmas from the median are outliers
_MAD_FLOOR = 0.1  # px: never call a tie point an outlier closer than this
_MIN_TIEPOINTS = 4  # reliable tie points needed for the local refinement
_MIN_SHIFT = 0.01  # px: smaller shifts are not worth resampling for
_MAX_WINDOWS_PER_AXIS = 8  # tie-point windows per axis on large images

Method = Literal["global", "global+local"]


@dataclass(frozen=True)
class CoregResult:
    """Outcome of :func:`coregister`: the shift to apply and the evidence for it.

    Attributes
    ----------
    shift : tuple of float
        ``(dy, dx)`` in pixels to apply to the moving image, as
        :func:`apply_shift` and ``scipy.ndimage.shift`` do, so that it lands on
        the reference: ``aligned[y, x] = moving[y - dy, x - dx]``. A feature at
        ``(y, x)`` in the reference that appears at ``(y + 2, x - 1)`` in the
        moving image gives ``shift == (-2.0, 1.0)``. ``(0.0, 0.0)`` when the
        shift was not applied.
    residual_before, residual_after : float
        Misregistration in pixels: the length of the sub-pixel cross-correlation
        shift between the reference and the moving image, before and after the
        shift. NaN when the pair has no reliable correlation peak, so the residual
        cannot be measured.
    applied : bool
        True if the shift lowered the residual and should be applied.
    flagged : bool
        True unless both the residual after and the local residual are known to
        be within the tolerance.
    method : {"global", "global+local"}
        Whether the median of the tie points refined the global shift.
    n_tiepoints : int
        Tie-point windows tried (0 when the scene is too small for them).
    n_tiepoints_used : int
        Reliable tie points that entered the local refinement (0 if not used).
    note : str
        One sentence for the manifest.
    correlation : float
        Correlation coefficient at the global peak (1 = identical up to the
        shift), after the shift if applied, else before.
    local_residual : float
        Median distance in pixels of the reliable tie points from the final
        shift: misregistration a single translation cannot remove (rotation,
        warp). NaN without a local refinement.
    """

    shift: tuple[float, float]
    residual_before: float
    residual_after: float
    applied: bool
    flagged: bool
    method: Method
    n_tiepoints: int
    n_tiepoints_used: int
    note: str
    correlation: float = math.nan
    local_residual: float = math.nan

    def __post_init__(self) -> None:
        if len(self.shift) != 2:
            raise ValueError(f"shift must be (dy, dx); got {self.shift!r}")
        if self.method not in ("global", "global+local"):
            raise ValueError(f"method must be 'global' or 'global+local'; got {self.method!r}")
        if not 0 <= self.n_tiepoints_used <= self.n_tiepoints:
            raise ValueError(
                f"n_tiepoints_used {self.n_tiepoints_used} is not in 0..{self.n_tiepoints}"
            )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict; floats rounded to 1e-4 px, NaN written as None."""

        def num(x: float) -> float | None:
            return round(float(x), 4) if math.isfinite(x) else None

        return {
            "shift": [num(self.shift[0]), num(self.shift[1])],
            "residual_before": num(self.residual_before),
            "residual_after": num(self.residual_after),
            "applied": self.applied,
            "flagged": self.flagged,
            "method": self.method,
            "n_tiepoints": self.n_tiepoints,
            "n_tiepoints_used": self.n_tiepoints_used,
            "correlation": num(self.correlation),
            "local_residual": num(self.local_residual),
            "note": self.note,
        }


def coreg_residual(info: dict[str, Any] | None) -> float | None:
    """Residual misregistration (px) a run was left with, from :meth:`CoregResult.as_dict`.

    After the shift when it was applied, before it otherwise; None when unknown.

    Examples
    --------
    >>> coreg_residual({"applied": True, "residual_before": 1.2, "residual_after": 0.05})
    0.05
    >>> coreg_residual(None) is None
    True
    """
    info = info or {}
    value = info.get("residual_after") if info.get("applied") else info.get("residual_before")
    return None if value is None else float(value)


def tukey(n: int, alpha: float = 0.5) -> np.ndarray:
    """Tukey (tapered cosine) window, as ``scipy.signal.windows.tukey(n, alpha)``.

    Written out so that importing sitewatch does not import ``scipy.signal`` (and
    with it ``scipy.stats``: a third of a second at every start).

    Examples
    --------
    >>> np.round(tukey(5, 0.5), 3).tolist()
    [0.0, 1.0, 1.0, 1.0, 0.0]
    """
    if n <= 1:
        return np.ones(n)
    if alpha <= 0:
        return np.ones(n)
    if alpha >= 1:
        return np.hanning(n)
    x = np.arange(n)
    width = int(np.floor(alpha * (n - 1) / 2.0))
    w = np.ones(n)
    n1 = x[: width + 1]
    w[: width + 1] = 0.5 * (1 + np.cos(np.pi * (-1 + 2.0 * n1 / alpha / (n - 1))))
    n3 = x[n - width - 1 :]
    w[n - width - 1 :] = 0.5 * (1 + np.cos(np.pi * (-2.0 / alpha + 1 + 2.0 * n3 / alpha / (n - 1))))
    return w


def apply_shift(
    stack: np.ndarray, valid: np.ndarray, shift: tuple[float, float], *, order: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Translate an image or stack by a sub-pixel shift, with its valid mask.

    ``out[..., y, x] = stack[..., y - dy, x - dx]``, interpolated by a spline of
    ``order``. Invalid (or non-finite) pixels are first filled with their nearest
    valid neighbour so they do not ring into valid ones.

    Parameters
    ----------
    stack : (B, H, W) or (H, W) ndarray
        Bands to shift.
    valid : (H, W) bool ndarray
        Observed pixels of ``stack``.
    shift : (float, float)
        ``(dy, dx)`` in pixels, e.g. :attr:`CoregResult.shift`; positive moves the
        content down and right.
    order : int, optional
        Spline order: 3 (cubic, default) or 1 (bilinear). Cubic keeps the shift
        exact at every spatial frequency; bilinear blurs and, on Sentinel-2
        texture, moved fine detail by up to 0.1 px less or more than asked.

    Returns
    -------
    shifted : ndarray, float32, same shape as ``stack``
        NaN where the output is invalid.
    valid : (H, W) bool ndarray
        False where the interpolation reached outside the image or touched an
        invalid pixel: a strip of ``ceil(|dy|)`` rows and ``ceil(|dx|)`` columns
        on the side the image moved away from (``order // 2`` more along an axis
        with a fractional shift when ``order > 1``), and the same margin around
        invalid pixels.

    Raises
    ------
    ValueError
        If shapes disagree, the shift is not finite, or ``order`` is not 0-5.

    Examples
    --------
    >>> img = np.arange(16.0).reshape(4, 4)
    >>> out, ok = apply_shift(img, np.ones((4, 4), bool), (0.0, 1.0))
    >>> out[0].round(3).tolist(), ok[0].tolist()
    ([nan, 0.0, 1.0, 2.0], [False, True, True, True])
    """
    arr = np.asarray(stack)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) image or (B, H, W) stack; got shape {arr.shape}")
    valid = np.asarray(valid)
    if valid.shape != arr.shape[-2:]:
        raise ValueError(f"valid mask {valid.shape} != image {arr.shape[-2:]}")
    dy, dx = (float(s) for s in shift)
    if not (math.isfinite(dy) and math.isfinite(dx)):
        raise ValueError(f"shift must be finite; got {shift!r}")
    if order not in range(6):
        raise ValueError(f"order must be 0-5; got {order!r}")

    bands = arr.reshape((-1, *arr.shape[-2:])).astype(np.float64)  # a copy
    ok = valid.astype(bool) & np.isfinite(bands).all(axis=0)
    if ok.any() and not ok.all():
        idx = ndi.distance_transform_edt(~ok, return_distances=False, return_indices=True)
        bands = bands[:, idx[0], idx[1]]
    elif not ok.any():
        bands[:] = 0.0

    out = np.empty(bands.shape, dtype=np.float32)
    for i, band in enumerate(bands):
        out[i] = ndi.shift(band, (dy, dx), order=order, mode="nearest")

    new_ok = ndi.shift(ok.astype(np.float64), (dy, dx), order=1, mode="constant", cval=0.0)
    new_ok = new_ok >= 0.999
    if order > 1:  # higher splines reach order // 2 px further along fractional axes
        cross = np.zeros((3, 3), dtype=bool)
        cross[1, 1] = True
        if dy != round(dy):
            cross[:, 1] = True
        if dx != round(dx):
            cross[1, :] = True
        new_ok = ndi.binary_erosion(new_ok, structure=cross, iterations=order // 2, border_value=1)
    out[:, ~new_ok] = np.nan
    return out.reshape(arr.shape), new_ok


def coregister(
    reference: np.ndarray,
    moving: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    upsample: int = 100,
    window: int = 256,
    tolerance: float = 0.5,
    min_size: int = 64,
    max_shift: float | None = None,
) -> CoregResult:
    """Estimate the sub-pixel shift that puts ``moving`` on ``reference``.

    1. Global shift: cross-correlation of the high-passed, tapered images,
       refined to ``1 / upsample`` px by an upsampled DFT [1]_.
    2. When both sides are at least ``2 * window``: tie points on a grid of
       ``window``-px windows (step ``window // 2``, at most 8 per axis, spread
       evenly over larger images) of the globally shifted image.
       A tie point is dropped when its window has under 90 % valid pixels, less
       than a quarter of the image's texture, a correlation peak under 0.2, a
       shift over ``window / 4``, or lies over 3 robust sigmas (MAD) from the
       median. With at least four left, their median refines the global shift.
    3. Residual: the length of the cross-correlation shift between the reference
       and the moving image, before and after applying the shift.
    4. Never worse: if the residual does not fall, or the shift is under
       0.01 px, the original is kept (``applied=False``, shift ``(0, 0)``).
    5. ``flagged`` when the residual after, or the local residual (spread of the
       tie points around the shift), exceeds ``tolerance`` or is unknown.
    6. A shift longer than ``max_shift`` px is not applied and the pair is flagged:
       more than misregistration can be, it is a false match (a scene that changed,
       or has little texture) or images georeferenced apart.

    Parameters
    ----------
    reference, moving : (H, W) ndarray
        One band of each date on one grid (e.g. NIR, or a mean of visible bands).
    valid : (H, W) bool ndarray, optional
        Pixels observed in both images; non-finite pixels are always invalid.
    upsample : int, optional
        Sub-pixel precision is ``1 / upsample`` px.
    window : int, optional
        Tie-point window size in pixels.
    tolerance : float, optional
        Residual in pixels above which the pair is flagged.
    min_size : int, optional
        Smallest height or width accepted.
    max_shift : float, optional
        Longest shift in pixels that is applied (default: no limit).

    Returns
    -------
    CoregResult
        ``shift`` is the ``(dy, dx)`` to pass to :func:`apply_shift`.

    Raises
    ------
    ValueError
        If the images are not 2-D, differ in shape, are smaller than
        ``min_size``, have fewer than 50 % valid pixels, or an option is out of
        range.

    References
    ----------
    .. [1] Guizar-Sicairos, M., Thurman, S. T., Fienup, J. R. (2008). Efficient
       subpixel image registration algorithms. Optics Letters 33(2), 156-158.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> scene = ndi.gaussian_filter(rng.normal(size=(128, 128)), 1.5)
    >>> moving = ndi.shift(scene, (1.0, -2.0), order=3)  # content moved down-left
    >>> res = coregister(scene, moving)
    >>> [round(s, 1) for s in res.shift], res.applied
    ([-1.0, 2.0], True)
    """
    ref = np.asarray(reference, dtype=np.float64)
    mov = np.asarray(moving, dtype=np.float64)
    if ref.ndim != 2 or mov.ndim != 2:
        raise ValueError(
            f"reference and moving must be 2-D (H, W) bands; got {ref.shape} and {mov.shape}"
        )
    if ref.shape != mov.shape:
        raise ValueError(f"moving shape {mov.shape} != reference {ref.shape}")
    if min(ref.shape) < min_size:
        raise ValueError(f"image {ref.shape} is smaller than min_size={min_size} px")
    if upsample < 1:
        raise ValueError(f"upsample must be >= 1; got {upsample}")
    if window < 16:
        raise ValueError(f"window must be >= 16 px; got {window}")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0 px; got {tolerance}")
    if max_shift is not None and not max_shift > 0:
        raise ValueError(f"max_shift must be > 0 px; got {max_shift}")
    ok = np.isfinite(ref) & np.isfinite(mov)
    if valid is not None:
        valid = np.asarray(valid)
        if valid.shape != ref.shape:
            raise ValueError(f"valid mask {valid.shape} != image {ref.shape}")
        ok &= valid.astype(bool)
    frac = float(ok.mean())
    if frac < _MIN_VALID:
        raise ValueError(
            f"only {frac:.0%} of pixels are valid in both images; need at least {_MIN_VALID:.0%}"
        )

    with scipy.fft.set_workers(_workers()):  # whole-image FFTs on every core
        return _coregister(ref, mov, ok, upsample, window, tolerance, max_shift)


def _workers() -> int:
    from sitewatch.detect.engine import default_threads

    return default_threads()


def _coregister(
    ref: np.ndarray,
    mov: np.ndarray,
    ok: np.ndarray,
    upsample: int,
    window: int,
    tolerance: float,
    max_shift: float | None = None,
) -> CoregResult:
    from sitewatch.detect.engine import _imap, default_threads

    # The two high-passes are independent (and Gaussian filters release the GIL).
    ref_hp, mov_hp = _imap(lambda im: _highpass(im, ok), (ref, mov), min(2, default_threads()))
    g_shift, corr_before = _correlate(ref_hp, mov_hp, ok, upsample)
    if corr_before < _MIN_PEAK:
        return CoregResult(
            shift=(0.0, 0.0),
            residual_before=math.nan,
            residual_after=math.nan,
            applied=False,
            flagged=True,
            method="global",
            n_tiepoints=0,
            n_tiepoints_used=0,
            note=(
                f"kept the original: no reliable correlation peak (r = {corr_before:.2f} "
                f"< {_MIN_PEAK}), so the misregistration cannot be measured"
            ),
            correlation=corr_before,
        )
    residual_before = float(np.hypot(*g_shift))

    shift = g_shift
    method: Method = "global"
    n_tie = n_used = 0
    local_residual = math.nan
    how = "global"
    if min(ref.shape) >= 2 * window:
        # The high-pass commutes with the shift: shift the filtered image.
        if np.any(g_shift):
            mov_g, ok_g = apply_shift(mov_hp, ok, (float(g_shift[0]), float(g_shift[1])))
            ok_g &= ok
        else:  # already registered to the pixel: nothing to interpolate
            mov_g, ok_g = mov_hp, ok
        ties = _tiepoints(ref_hp, np.where(ok_g, mov_g, 0.0), ok_g, window, upsample)
        n_tie = _n_windows(ref.shape, window)
        if len(ties) >= _MIN_TIEPOINTS:
            med = np.median(ties, axis=0)
            local_residual = float(np.median(np.hypot(*(ties - med).T)))
            shift = g_shift + med
            method = "global+local"
            n_used = len(ties)
            how = f"global+local, {n_used}/{n_tie} tie points"
        else:
            how = f"global; only {len(ties)}/{n_tie} tie points reliable"

    dy, dx = float(shift[0]), float(shift[1])
    residual_after, corr_after = residual_before, corr_before
    if max_shift is not None and math.hypot(dy, dx) > max_shift:
        return CoregResult(
            shift=(0.0, 0.0),
            residual_before=residual_before,
            residual_after=residual_before,
            applied=False,
            flagged=True,
            method=method,
            n_tiepoints=n_tie,
            n_tiepoints_used=n_used,
            note=(
                f"kept the original: the estimated shift ({dy:.2f}, {dx:.2f}) px ({how}) is "
                f"longer than the {max_shift:.3g} px misregistration can be: a false match "
                "on a scene that changed or has little texture, or images georeferenced "
                "apart; flagged (check the images, or turn co-registration off)"
            ),
            correlation=corr_before,
            local_residual=local_residual,
        )
    if math.hypot(dy, dx) < _MIN_SHIFT:
        applied = False
        note = (
            f"kept the original: the estimated shift ({dy:.3f}, {dx:.3f}) px is below "
            f"{_MIN_SHIFT} px; residual {residual_before:.2f} px"
        )
    else:
        mov_s, ok_s = apply_shift(mov, ok, (dy, dx))
        ok_s &= ok
        r_shift, corr = _correlate(ref_hp, _highpass(mov_s, ok_s), ok_s, upsample)
        measured = float(np.hypot(*r_shift)) if corr >= _MIN_PEAK else math.nan
        applied = measured < residual_before
        if applied:
            residual_after, corr_after = measured, corr
            note = (
                f"shift ({dy:.2f}, {dx:.2f}) px applied ({how}); "
                f"residual {residual_before:.2f} → {residual_after:.2f} px"
            )
        else:
            note = (
                f"kept the original: residual did not fall ({residual_before:.2f} → "
                f"{measured:.2f} px with shift ({dy:.2f}, {dx:.2f}) px, {how})"
            )
    flagged = not residual_after <= tolerance
    if flagged:
        note += f"; flagged: residual above {tolerance} px"
    elif local_residual > tolerance:
        flagged = True
        note += (
            f"; flagged: tie points scatter {local_residual:.2f} px around the shift "
            f"(> {tolerance} px), which one translation cannot remove"
        )
    return CoregResult(
        shift=(dy, dx) if applied else (0.0, 0.0),
        residual_before=residual_before,
        residual_after=residual_after,
        applied=applied,
        flagged=flagged,
        method=method,
        n_tiepoints=n_tie,
        n_tiepoints_used=n_used,
        note=note,
        correlation=corr_after,
        local_residual=local_residual,
    )


def _highpass(image: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Image minus its Gaussian blur over valid pixels (normalised convolution); 0 where invalid."""
    filled = np.where(ok, image, 0.0)
    low = ndi.gaussian_filter(filled, _HIGHPASS_SIGMA, mode="reflect", truncate=3.0)
    if not ok.all():
        den = ndi.gaussian_filter(ok.astype(np.float64), _HIGHPASS_SIGMA, truncate=3.0)
        low /= np.maximum(den, 1e-6)
    return np.where(ok, filled - low, 0.0)


@lru_cache(maxsize=8)
def _taper(shape: tuple[int, int]) -> np.ndarray:
    win = np.outer(tukey(shape[0], _TAPER_ALPHA), tukey(shape[1], _TAPER_ALPHA))
    win.flags.writeable = False
    return win


def _correlate(
    ref_hp: np.ndarray, mov_hp: np.ndarray, ok: np.ndarray, upsample: int
) -> tuple[np.ndarray, float]:
    """Sub-pixel shift registering ``mov_hp`` on ``ref_hp``, and the peak correlation."""
    taper = _taper(ref_hp.shape) * ok
    a = (ref_hp - ref_hp[ok].mean()) * taper
    b = (mov_hp - mov_hp[ok].mean()) * taper
    if not (np.any(a) and np.any(b)):  # a flat image: nothing to correlate
        return np.zeros(2), 0.0
    return phase_correlation(a, b, upsample)


_COARSE = 10
"""Upsampling of the first stage of :func:`phase_correlation`'s refinement."""


def phase_correlation(a: np.ndarray, b: np.ndarray, upsample: int) -> tuple[np.ndarray, float]:
    """Shift registering ``b`` on ``a`` to ``1 / upsample`` px, and the correlation at it.

    scikit-image's ``phase_cross_correlation(a, b, upsample_factor=upsample,
    normalization=None)`` [1]_, with its matrix-multiply DFT around the whole-pixel
    peak done in two stages when ``upsample`` is a multiple of 10: first at 1/10 px
    over the same ±0.75 px, then at ``1 / upsample`` px over ±0.1 px around the best
    coarse point. The same lattice as the one-stage search, about a tenth of its
    products (the one-stage search at 1/100 px took half of each tie point's time).
    The images are real, so their spectra are computed as halves (``rfft2``, half the
    work of scikit-image's complex FFTs) and the whole-pixel correlation by ``irfft2``;
    the full spectrum is rebuilt by symmetry only for the sub-pixel stages.

    Returns
    -------
    shift : (2,) ndarray
    correlation : float
        ``|CC| / sqrt(E_a E_b)`` at the peak (``sqrt(1 - error**2)`` of scikit-image).

    References
    ----------
    .. [1] Guizar-Sicairos, M., Thurman, S. T., Fienup, J. R. (2008). Efficient
       subpixel image registration algorithms. Optics Letters 33(2), 156-158.
    """
    # Real images: half spectra (rfft2), whose other half is their complex conjugate.
    src = scipy.fft.rfft2(a)
    prod = scipy.fft.rfft2(b)
    src_amp, tgt_amp = _energy(src, a.shape[-1]), _energy(prod, a.shape[-1])
    np.conjugate(prod, out=prod)
    prod *= src  # src * conj(tgt), in place
    cc = scipy.fft.irfft2(prod, s=a.shape)
    peak = np.unravel_index(np.argmax(np.abs(cc)), cc.shape)
    shape = np.array(cc.shape, dtype=np.float64)
    shift = np.array(peak, dtype=np.float64)
    mid = np.trunc(shape / 2)
    shift[shift > mid] -= shape[shift > mid]
    if upsample == 1:
        cc_max = cc[peak]
        src_amp /= a.size
        tgt_amp /= a.size
    else:
        if upsample % _COARSE == 0 and upsample > _COARSE:
            stages = [
                (_COARSE, math.ceil(1.5 * _COARSE)),
                (upsample, 2 * (upsample // _COARSE) + 1),
            ]
        else:
            stages = [(upsample, math.ceil(1.5 * upsample))]
        shift = np.round(shift * stages[0][0]) / stages[0][0]
        prod = _full_spectrum(prod, a.shape[-1])
        for factor, size in stages:
            centre = float(np.trunc(size / 2.0))
            up = _upsampled_dft(prod, size, factor, centre - shift * factor)
            at = np.unravel_index(np.argmax(np.abs(up)), up.shape)
            cc_max = up[at]
            shift = shift + (np.array(at, dtype=np.float64) - centre) / factor
    error = math.sqrt(abs(1.0 - abs(complex(cc_max)) ** 2 / (src_amp * tgt_amp)))
    return shift, math.sqrt(max(0.0, 1.0 - error**2))


def _energy(half: np.ndarray, width: int) -> float:
    """Sum of ``|F|²`` over the full spectrum of a real image, from its ``rfft2`` half.

    Every column but the first (and the last, for an even ``width``) stands for two.
    """
    flat = half.reshape(-1, half.shape[-1])
    total = 2.0 * float(np.vdot(flat, flat).real)
    total -= float(np.vdot(flat[:, 0], flat[:, 0]).real)
    if width % 2 == 0:
        total -= float(np.vdot(flat[:, -1], flat[:, -1]).real)
    return total


def _full_spectrum(half: np.ndarray, width: int) -> np.ndarray:
    """The full 2-D spectrum of a real image from its ``rfft2`` half: ``F[-k] = conj(F[k])``."""
    rows = half.shape[0]
    full = np.empty((rows, width), dtype=half.dtype)
    n = half.shape[1]
    full[:, :n] = half
    flip = (-np.arange(rows)) % rows
    np.conjugate(half[flip, 1 : width - n + 1][:, ::-1], out=full[:, n:])
    return full


def _upsampled_dft(data: np.ndarray, size: int, factor: float, offsets: np.ndarray) -> np.ndarray:
    """The cross-correlation of spectrum ``data``, ``factor`` times finer, ``size``² samples.

    From ``offsets`` (in fine samples); scikit-image's
    ``_upsampled_dft(data.conj(), ...).conj()``: matrix products instead of a
    zero-padded FFT, with the conjugate kernel instead of two conjugations of the
    spectrum.
    """
    for n, off in list(zip(data.shape, offsets, strict=True))[::-1]:
        kernel = (np.arange(size) - off)[:, None] * np.fft.fftfreq(n, factor)
        data = np.tensordot(np.exp(2j * np.pi * kernel), data, axes=(1, -1))
    return data


def _window_starts(size: int, window: int) -> list[int]:
    """Starts of ``window``-px windows, half-overlapping, centred on ``size`` px.

    At most :data:`_MAX_WINDOWS_PER_AXIS` per axis, spread evenly over a large image
    (a translation needs no more tie points; 15 x 15 windows made co-registration
    of a 2048 px image take 9 s).
    """
    step = window // 2
    n = (size - window) // step + 1
    if n > _MAX_WINDOWS_PER_AXIS:
        return [round(v) for v in np.linspace(0, size - window, _MAX_WINDOWS_PER_AXIS)]
    first = (size - window - (n - 1) * step) // 2
    return list(range(first, first + n * step, step))


def _n_windows(shape: tuple[int, ...], window: int) -> int:
    return len(_window_starts(shape[0], window)) * len(_window_starts(shape[1], window))


def _tiepoints(
    ref_hp: np.ndarray, mov_hp: np.ndarray, ok: np.ndarray, window: int, upsample: int
) -> np.ndarray:
    """Shifts ``(n, 2)`` of the reliable tie-point windows (see :func:`coregister`)."""
    g_std = max(float(ref_hp[ok].std()), float(np.finfo(np.float64).tiny))
    m_std = max(float(mov_hp[ok].std()), float(np.finfo(np.float64).tiny))

    def tie(start: tuple[int, int]) -> np.ndarray | None:
        y, x = start
        sl = (slice(y, y + window), slice(x, x + window))
        w_ok = ok[sl]
        if w_ok.mean() < _TILE_MIN_VALID:
            return None
        a, b = ref_hp[sl], mov_hp[sl]
        if min(a[w_ok].std() / g_std, b[w_ok].std() / m_std) < _TILE_MIN_TEXTURE:
            return None
        shift, corr = _correlate(a, b, w_ok, upsample)
        return shift if corr >= _MIN_PEAK and np.abs(shift).max() <= window / 4 else None

    starts = [
        (y, x)
        for y in _window_starts(ref_hp.shape[0], window)
        for x in _window_starts(ref_hp.shape[1], window)
    ]
    # The windows are independent and the FFTs release the GIL: every core, same order.
    from sitewatch.detect.engine import _imap, default_threads

    found = [s for s in _imap(tie, starts, default_threads()) if s is not None]
    if not found:
        return np.empty((0, 2))
    ties = np.array(found)
    dev = np.abs(ties - np.median(ties, axis=0))
    limit = np.maximum(_MAD_K * 1.4826 * np.median(dev, axis=0), _MAD_FLOOR)
    return ties[(dev <= limit).all(axis=1)]
