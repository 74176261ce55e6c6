"""Relative radiometric normalisation on IR-MAD no-change pixels.

Pixels that IR-MAD finds unchanged with high probability are pseudo-invariant
features: per band, an orthogonal regression of the before values on the after
values over two thirds of them maps the after image onto the before image's
radiometry, and the remaining third checks that the mapping helps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sitewatch.detect.irmad import irmad

__all__ = [
    "NORMALIZE_SAMPLE",
    "BandFit",
    "NormalizeResult",
    "NormalizedReader",
    "apply_normalization",
    "normalize_irmad",
    "normalize_sampled",
    "orthogonal_regression",
    "sample_rows",
]

NORMALIZE_SAMPLE = 1 << 20
"""Most pixels :func:`normalize_sampled` fits on (about; every pixel of a smaller grid)."""

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_HASH_BITS = 24


@dataclass(frozen=True)
class BandFit:
    """Normalisation of one band: ``before ~ intercept + slope * after``.

    Attributes
    ----------
    band : str
        Band name.
    slope, intercept : float
        Mapping applied to the after band (1 and 0 when the band was kept as is).
    r : float
        Pearson correlation of after and before on the training no-change pixels.
    n_train, n_test : int
        No-change pixels used to fit and held out to test.
    rmse_test : float
        RMSE of the normalised after band against the before band on the held-out
        pixels.
    rmse_test_before : float
        The same without normalisation (``rmse_test`` must beat it to be applied).
    mean_diff_test : float
        Mean of normalised after minus before on the held-out pixels.
    t_p : float
        Two-sided p-value of the paired t-test of that mean difference being 0.
    f_p : float
        Two-sided p-value of the F-test of equal variances of the normalised after
        and the before band on the held-out pixels (which treats the two samples as
        independent, as Canty & Nielsen do).
    span : float
        1st-99th percentile range of the training pixels' after values, as a
        fraction of that of all valid pixels: how far the line is extrapolated.
    applied : bool
        False when the band was left unnormalised: no positive slope, too small a
        ``span`` or ``r``, or no lower held-out RMSE.
    """

    band: str
    slope: float
    intercept: float
    r: float
    n_train: int
    n_test: int
    rmse_test: float
    rmse_test_before: float
    mean_diff_test: float
    t_p: float
    f_p: float
    span: float = 1.0
    applied: bool = True

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict for the manifest."""
        return {
            "band": self.band,
            "slope": self.slope,
            "intercept": self.intercept,
            "r": self.r,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "rmse_test": self.rmse_test,
            "rmse_test_before": self.rmse_test_before,
            "mean_diff_test": self.mean_diff_test,
            "t_p": self.t_p,
            "f_p": self.f_p,
            "span": self.span,
            "applied": self.applied,
        }


@dataclass(frozen=True, eq=False)
class NormalizeResult:
    """Outcome of :func:`normalize_irmad`.

    Attributes
    ----------
    after : (B, H, W) float32 ndarray
        The after image mapped to the before image's radiometry (valid pixels only;
        invalid pixels keep their input values).
    fits : tuple of BandFit
        One per band; empty when nothing could be fitted.
    nochange : (H, W) bool ndarray
        The invariant pixels: valid, with ``P(no change) > p_threshold``.
    n_nochange : int
        Their number.
    p_threshold : float
        The no-change probability threshold used.
    irmad : dict
        :meth:`~sitewatch.detect.irmad.IRMADResult.as_dict` of the IR-MAD run.
    applied : bool
        True when at least one band was normalised.
    note : str
        One or two sentences for the manifest: what was done, or why not.
    """

    after: np.ndarray
    fits: tuple[BandFit, ...]
    nochange: np.ndarray
    n_nochange: int
    p_threshold: float
    irmad: dict[str, Any]
    applied: bool
    note: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no pixel arrays)."""
        return {
            "method": "irmad-orthogonal-regression",
            "applied": self.applied,
            "note": self.note,
            "n_nochange": self.n_nochange,
            "p_threshold": self.p_threshold,
            "bands": [f.as_dict() for f in self.fits],
            "irmad": self.irmad,
        }


def orthogonal_regression(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Major-axis (total least squares) line ``y ~ intercept + slope * x``.

    The line runs along the principal eigenvector of the 2x2 covariance of
    ``(x, y)``, so errors in both variables are treated alike.

    Parameters
    ----------
    x, y : (N,) ndarray

    Returns
    -------
    slope, intercept : float
        ``slope`` is ``nan`` when ``x`` and ``y`` are uncorrelated.

    Examples
    --------
    >>> x = np.array([0.0, 1.0, 2.0, 3.0])
    >>> [round(v, 6) for v in orthogonal_regression(x, 2 * x + 1)]
    [2.0, 1.0]
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mx, my = x.mean(), y.mean()
    sxx = np.mean((x - mx) ** 2)
    syy = np.mean((y - my) ** 2)
    sxy = np.mean((x - mx) * (y - my))
    if sxy == 0:
        return float("nan"), float("nan")
    slope = (syy - sxx + np.hypot(syy - sxx, 2.0 * sxy)) / (2.0 * sxy)
    return float(slope), float(my - slope * mx)


def _span(v: np.ndarray) -> float:
    lo, hi = np.percentile(v, [1.0, 99.0])
    return float(hi - lo)


def _test_stats(norm: np.ndarray, ref: np.ndarray) -> tuple[float, float, float, float]:
    """RMSE, mean difference, paired t-test p and variance F-test p."""
    from scipy import stats  # only here: keeps `import sitewatch` quick

    d = norm - ref
    rmse = float(np.sqrt(np.mean(d**2)))
    n = d.size
    sd = d.std(ddof=1)
    if sd > 0:
        t_p = float(2.0 * stats.t.sf(abs(d.mean()) / (sd / np.sqrt(n)), n - 1))
    else:
        t_p = 1.0 if d.mean() == 0 else 0.0
    v_norm, v_ref = norm.var(ddof=1), ref.var(ddof=1)
    if v_norm > 0 and v_ref > 0:
        f = v_norm / v_ref
        f_p = float(min(1.0, 2.0 * min(stats.f.cdf(f, n - 1, n - 1), stats.f.sf(f, n - 1, n - 1))))
    else:
        f_p = 1.0 if v_norm == v_ref else 0.0
    return rmse, float(d.mean()), t_p, f_p


def normalize_irmad(
    before: np.ndarray,
    after: np.ndarray,
    valid: np.ndarray,
    *,
    band_names: Sequence[str] | None = None,
    p_nochange: float = 0.95,
    holdout: float = 1 / 3,
    seed: int = 0,
    min_pixels: int = 100,
    min_span: float = 0.25,
    min_r: float = 0.8,
) -> NormalizeResult:
    """Map the after image onto the before image's radiometry (Canty & Nielsen 2008).

    IR-MAD marks valid pixels with ``P(no change) > p_nochange`` as invariant. They
    are split at random into a training and a held-out set; per band, an orthogonal
    regression ``before ~ intercept + slope * after`` on the training pixels is
    applied to every valid after pixel, and the held-out pixels report its RMSE, a
    paired t-test of the means and an F-test of the variances. A band is left as
    is when its held-out RMSE does not improve, so normalisation never makes the
    agreement with the before image worse on unchanged ground, or when the
    invariant pixels correlate too weakly in that band or cover too little of its
    range for the line to be trusted elsewhere (IR-MAD can settle on one
    homogeneous cover such as open water, whose pixels then validate each other).

    Parameters
    ----------
    before, after : (B, H, W) ndarray
        Co-registered images on one grid; ``before`` is the reference.
    valid : (H, W) bool ndarray
        Pixels observed in both.
    band_names : sequence of str, optional
        One name per band (``b1``, ``b2``... by default), used in the fits.
    p_nochange : float
        IR-MAD no-change probability a pixel must exceed to be invariant.
    holdout : float
        Fraction of the invariant pixels held out for validation, in (0, 1).
    seed : int
        Seed of the IR-MAD sample and of the train/test split.
    min_pixels : int
        Fewest invariant pixels to attempt a fit; with fewer, the after image is
        returned unchanged with ``applied=False`` and a note saying why.
    min_span : float
        Least fraction of the band's range (1st to 99th percentile of the valid
        after pixels) that the training invariant pixels must span for the band
        to be normalised.
    min_r : float
        Least Pearson correlation of after and before on the training invariant
        pixels for the band to be normalised. Below it the line is poorly
        determined: with seasonal change, for instance, a nearly flat fit can lower
        the held-out RMSE by removing the mean shift while erasing the band's
        contrast.

    Returns
    -------
    NormalizeResult
        Normalised after image, per-band fits and a manifest-ready summary. The
        input arrays are not modified.

    Raises
    ------
    ValueError
        If shapes disagree, a band is constant over the valid pixels (see
        :func:`~sitewatch.detect.irmad.irmad`) or an option is out of range.

    References
    ----------
    Canty, M. J., & Nielsen, A. A. (2008). Automatic radiometric normalization of
    multitemporal satellite imagery with the iteratively re-weighted MAD
    transformation. Remote Sensing of Environment 112(3), 1025-1036.
    doi:10.1016/j.rse.2007.07.013

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(0.0, 0.3, size=(2, 50, 50))
    >>> y = 1.2 * x + 0.01 + rng.normal(scale=0.002, size=x.shape)
    >>> res = normalize_irmad(x, y, np.ones((50, 50), bool))
    >>> round(res.fits[0].slope * 1.2, 2)
    1.0
    """
    if not 0.0 < p_nochange < 1.0:
        raise ValueError(f"p_nochange must lie in (0, 1); got {p_nochange}")
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must lie in (0, 1); got {holdout}")
    if min_pixels < 6:
        raise ValueError(f"min_pixels must be >= 6; got {min_pixels}")
    if not 0.0 <= min_span <= 1.0:
        raise ValueError(f"min_span must lie in [0, 1]; got {min_span}")
    if not -1.0 <= min_r <= 1.0:
        raise ValueError(f"min_r must lie in [-1, 1]; got {min_r}")
    if before.ndim != 3:
        raise ValueError(f"expected (bands, H, W) stacks; got before shape {before.shape}")
    nb = before.shape[0]
    names = [f"b{i + 1}" for i in range(nb)] if band_names is None else list(band_names)
    if len(names) != nb:
        raise ValueError(f"{len(names)} band names for {nb} bands")
    res = irmad(before, after, valid, seed=seed)
    out = after.astype(np.float32, copy=True)
    nochange = res.p_nochange > p_nochange
    flat = np.flatnonzero(nochange)
    n_nc = int(flat.size)
    n_test = round(holdout * n_nc)
    if n_nc < min_pixels or min(n_test, n_nc - n_test) < 3:
        return NormalizeResult(
            out,
            (),
            nochange,
            n_nc,
            p_nochange,
            res.as_dict(),
            False,
            f"not normalised: only {n_nc} valid pixels have P(no change) > {p_nochange} "
            f"(at least {min_pixels} needed)",
        )
    perm = np.random.default_rng(seed).permutation(flat)
    test, train = perm[:n_test], perm[n_test:]

    fits: list[BandFit] = []
    skipped: dict[str, list[str]] = {}
    nvalid = np.flatnonzero(valid)
    for i, name in enumerate(names):
        x = after[i].reshape(-1)
        y = before[i].reshape(-1)
        x_tr, y_tr = x[train].astype(np.float64), y[train].astype(np.float64)
        x_te, y_te = x[test].astype(np.float64), y[test].astype(np.float64)
        slope, intercept = orthogonal_regression(x_tr, y_tr)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = float(np.corrcoef(x_tr, y_tr)[0, 1]) if x_tr.std() and y_tr.std() else 0.0
        span = _span(x_tr) / max(_span(x[nvalid]), np.finfo(np.float64).tiny)
        rmse_0 = float(np.sqrt(np.mean((x_te - y_te) ** 2)))
        why = ""
        if not (np.isfinite(slope) and slope > 0):
            why = "no positive fit"
        elif span < min_span:
            why = f"no-change pixels span under {min_span:.0%} of the band's range"
        elif r < min_r:
            why = f"the no-change pixels correlate under r = {min_r:g}"
        else:
            rmse, mdiff, t_p, f_p = _test_stats(intercept + slope * x_te, y_te)
            if not rmse < rmse_0:
                why = "the fit did not lower the held-out RMSE"
        if why:
            skipped.setdefault(why, []).append(
                f"{name} (fit {slope:.4g}, {intercept:.4g}; r {r:.2f}, span {span:.0%})"
            )
            slope, intercept = 1.0, 0.0
            rmse, mdiff, t_p, f_p = _test_stats(x_te, y_te)
        else:
            band = out[i].reshape(-1)
            band[nvalid] = (intercept + slope * x[nvalid].astype(np.float64)).astype(np.float32)
        fits.append(
            BandFit(
                name,
                float(slope),
                float(intercept),
                r,
                int(train.size),
                int(test.size),
                rmse,
                rmse_0,
                mdiff,
                t_p,
                f_p,
                float(span),
                not why,
            )
        )
    applied = any(f.applied for f in fits)
    note = (
        f"orthogonal regression per band on {train.size} IR-MAD no-change pixels "
        f"(P(no change) > {p_nochange}), checked on {test.size} held-out ones"
    )
    if not applied:
        note = "not normalised: no band passed the checks; " + note
    for why, bands in skipped.items():
        note += f"; left unnormalised because {why}: {', '.join(bands)}"
    return NormalizeResult(
        out, tuple(fits), nochange, n_nc, p_nochange, res.as_dict(), applied, note
    )


# --------------------------------------------------------------------------- by rows


class _Rows(Protocol):
    shape: tuple[int, int]
    bands: int

    def read(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def sample_rows(r0: int, r1: int, width: int, total: int, sample: int) -> np.ndarray:
    """Pixels of rows ``r0:r1`` in a fixed pseudo-random sample of about ``sample`` of ``total``.

    A pixel is drawn by a hash of its place in the grid (Fibonacci hashing of the flat
    index), so the sample does not depend on how the rows are read; with ``total <=
    sample`` every pixel is drawn.

    Examples
    --------
    >>> m = sample_rows(0, 100, 100, 10_000, 1_000)
    >>> 900 < int(m.sum()) < 1100, bool(sample_rows(0, 2, 3, 6, 6).all())
    (True, True)
    >>> bool((sample_rows(40, 60, 100, 10_000, 1_000) == m[40:60]).all())
    True
    """
    shape = (r1 - r0, width)
    if total <= sample:
        return np.ones(shape, dtype=bool)
    flat = np.arange(r0 * width, r1 * width, dtype=np.uint64)
    key = (flat * _GOLDEN) >> np.uint64(64 - _HASH_BITS)  # wraps: the top bits are uniform
    return (key < np.uint64(round(sample / total * (1 << _HASH_BITS)))).reshape(shape)


def normalize_sampled(
    reader: _Rows,
    *,
    band_names: Sequence[str] | None = None,
    sample: int = NORMALIZE_SAMPLE,
    rows: int = 256,
) -> NormalizeResult:
    """Fit :func:`normalize_irmad` on a sample of the valid pixels, read by rows.

    The sample (:func:`sample_rows`) is the same however the image is read, so an image
    held in memory and one read block by block get the same fits; an image of at most
    ``sample`` pixels is fitted on every valid pixel, as :func:`normalize_irmad` alone
    would. Memory: two ``(B, n)`` stacks of the sampled pixels (in the input dtype).

    Parameters
    ----------
    reader : object
        ``shape`` (H, W) and ``read(r0, r1) -> (before, after, valid)``, e.g.
        :class:`~sitewatch.detect.engine.ArrayReader`.
    band_names : sequence of str, optional
    sample : int
        About how many pixels to fit on.
    rows : int
        Rows read at a time (does not change the result).

    Returns
    -------
    NormalizeResult
        Its ``after`` and ``nochange`` are of the sampled pixels, as ``(B, 1, n)`` and
        ``(1, n)``; apply the fits with :func:`apply_normalization`.

    Raises
    ------
    ValueError
        As :func:`normalize_irmad`, and when no valid pixel was drawn.
    """
    h, w = reader.shape
    total = h * w
    picked_b, picked_a = [], []
    for r0 in range(0, h, max(1, rows)):
        r1 = min(h, r0 + max(1, rows))
        b, a, v = reader.read(r0, r1)
        pick = v & sample_rows(r0, r1, w, total, sample)
        picked_b.append(b[:, pick])
        picked_a.append(a[:, pick])
    b_s = np.concatenate(picked_b, axis=1)[:, None, :]
    a_s = np.concatenate(picked_a, axis=1)[:, None, :]
    if b_s.shape[2] == 0:
        raise ValueError("no valid pixel to fit the normalisation on")
    res = normalize_irmad(b_s, a_s, np.ones(b_s.shape[1:], dtype=bool), band_names=band_names)
    if total > sample:
        note = f"{res.note} (fitted on a sample of {b_s.shape[2]:,} valid pixels)"
        res = NormalizeResult(
            res.after, res.fits, res.nochange, res.n_nochange, res.p_threshold, res.irmad,
            res.applied, note,
        )  # fmt: skip
    return res


def apply_normalization(
    after: np.ndarray, valid: np.ndarray, fits: Sequence[BandFit]
) -> np.ndarray:
    """``after`` with each applied fit mapped onto its valid pixels (a float32 copy).

    The same values :func:`normalize_irmad` writes into its ``after``.
    """
    out = after.astype(np.float32, copy=True)
    for i, fit in enumerate(fits):
        if fit.applied:
            band = out[i]
            x = after[i][valid].astype(np.float64)
            band[valid] = (fit.intercept + fit.slope * x).astype(np.float32)
    return out


class NormalizedReader:
    """A reader whose after rows come out normalised (the block-wise run's case)."""

    def __init__(self, inner: _Rows, fits: Sequence[BandFit]) -> None:
        self.inner, self.fits = inner, tuple(fits)
        self.shape = inner.shape
        self.bands = inner.bands

    def read(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(before, normalised after, valid) of rows ``r0:r1``."""
        b, a, v = self.inner.read(r0, r1)
        return b, apply_normalization(a, v, self.fits), v
