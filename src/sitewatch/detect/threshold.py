"""Thresholds that turn a score image into a change mask, with the reason recorded.

Every rule returns a :class:`Threshold` whose ``why`` is one sentence a reader of the
manifest can check. Rules work on a 1-D sample of valid-pixel scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from sitewatch.detect.options import THRESHOLD_RULES

__all__ = [
    "THRESHOLD_RULES",
    "Threshold",
    "quiet_pixels",
    "threshold_chi2",
    "threshold_kittler",
    "threshold_otsu",
    "threshold_precision_first",
    "threshold_scores",
    "threshold_share",
]


@dataclass(frozen=True)
class Threshold:
    """A chosen threshold: pixels with score > ``value`` are change.

    Attributes
    ----------
    value : float
    rule : str
        Name of the rule (``"otsu"``, ``"kittler"``, ``"chi2"``, ``"precision"``,
        ``"fixed"``).
    why : str
        One sentence a reader of the manifest can check.
    """

    value: float
    rule: str
    why: str

    def as_dict(self) -> dict[str, float | str]:
        """JSON-ready dict."""
        return {"value": self.value, "rule": self.rule, "why": self.why}


def _clean(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ValueError("no finite scores to threshold")
    return s


def _otsu(s: np.ndarray, *, nbins: int) -> float:
    """scikit-image's Otsu, imported when first used (``skimage.filters`` is slow to import)."""
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(s, nbins=nbins))


def _share(s: np.ndarray, value: float) -> str:
    return f"{float((s > value).mean()):.2%} of {s.size} valid pixels lie above it"


def threshold_otsu(scores: np.ndarray, *, nbins: int = 512) -> Threshold:
    """Otsu's threshold: maximise the between-class variance of the histogram.

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
    s = _clean(scores)
    if s.min() == s.max():
        return Threshold(float(s.max()), "otsu", "all scores are equal: nothing is flagged")
    value = float(_otsu(s, nbins=nbins))
    return Threshold(value, "otsu", f"Otsu split of the score histogram; {_share(s, value)}")


def threshold_kittler(
    scores: np.ndarray, *, nbins: int = 512, floor: float | None = None
) -> Threshold:
    """Kittler-Illingworth minimum-error threshold (two Gaussian classes).

    Minimises ``J(t) = 1 + 2 (P1 ln σ1 + P2 ln σ2) - 2 (P1 ln P1 + P2 ln P2)`` over
    the histogram; unlike Otsu it lets the two classes have different spreads and
    sizes, which suits a small change class beside a large no-change class.

    A histogram split always finds two classes, even in a pair with no change at all;
    ``floor`` is the lowest threshold allowed, for scores with a known no-change law
    (IR-MAD's χ² quantile), so such a pair gets nothing flagged.

    References
    ----------
    Kittler, J., Illingworth, J. (1986). Minimum error thresholding. Pattern
    Recognition 19(1), 41-47.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.r_[rng.normal(0, 1, 9000), rng.normal(8, 2, 1000)]
    >>> 2 < threshold_kittler(x).value < 6
    True
    """
    s = _clean(scores)
    lo, hi = float(s.min()), float(s.max())
    if lo == hi:
        value = hi if floor is None else max(hi, float(floor))
        return Threshold(value, "kittler", "all scores are equal: nothing is flagged")
    # Clip the far tail so a few extreme values do not squash the histogram.
    top = float(np.quantile(s, 0.9999))
    counts, edges = np.histogram(np.clip(s, lo, top), bins=nbins, range=(lo, top))
    centres = (edges[:-1] + edges[1:]) / 2
    p = counts / counts.sum()
    p1 = np.cumsum(p)
    m1 = np.cumsum(p * centres)
    q1 = np.cumsum(p * centres**2)
    p2 = 1.0 - p1
    mu1 = np.divide(m1, p1, out=np.zeros_like(m1), where=p1 > 0)
    mu2 = np.divide(m1[-1] - m1, p2, out=np.zeros_like(m1), where=p2 > 0)
    v1 = np.divide(q1, p1, out=np.zeros_like(q1), where=p1 > 0) - mu1**2
    v2 = np.divide(q1[-1] - q1, p2, out=np.zeros_like(q1), where=p2 > 0) - mu2**2
    ok = (p1 > 1e-6) & (p2 > 1e-6) & (v1 > 1e-12) & (v2 > 1e-12)
    if not ok.any():  # no two classes with a spread: Otsu's split
        value = float(_otsu(s, nbins=nbins))
        why = "Otsu split of the score histogram (no two classes with a spread for Kittler)"
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            j = 1 + (p1 * np.log(v1) + p2 * np.log(v2)) - 2 * (p1 * np.log(p1) + p2 * np.log(p2))
        j[~ok] = np.inf
        i = int(np.argmin(j))
        value = float(edges[i + 1])
        why = "Kittler-Illingworth minimum-error split of the score histogram"
    if floor is not None and value < floor:
        why = f"the no-change floor {floor:.4g} (above the {why} at {value:.4g})"
        value = float(floor)
    return Threshold(value, "kittler", f"{why}; {_share(s, value)}")


def threshold_chi2(scores: np.ndarray, *, dof: int, p: float = 0.999) -> Threshold:
    """χ² quantile for IR-MAD's statistic: change if P(no change) < 1 - ``p``.

    Under no change the IR-MAD statistic is χ²-distributed with ``dof`` = number of
    bands, so the threshold has a stated false-alarm rate per pixel.

    References
    ----------
    Nielsen, A. A. (2007). The regularized iteratively reweighted MAD method for
    change detection in multi- and hyperspectral data. IEEE TIP 16(2), 463-478.

    Examples
    --------
    >>> round(threshold_chi2(np.zeros(3), dof=2, p=0.95).value, 3)
    5.991
    """
    if dof < 1 or not 0 < p < 1:
        raise ValueError(f"chi2 threshold needs dof >= 1 and 0 < p < 1; got {dof}, {p}")
    s = _clean(scores)
    value = float(special.chdtri(dof, 1.0 - p))  # = chi2.ppf(p, dof)
    return Threshold(
        value,
        "chi2",
        f"χ²({dof}) quantile {p}: a no-change pixel exceeds it with probability {1 - p:.2g}; "
        f"{_share(s, value)}",
    )


def threshold_precision_first(
    scores: np.ndarray,
    *,
    k: float = 6.0,
    floor: float | None = None,
    quiet: np.ndarray | None = None,
    cap_ratio: float | None = None,
) -> Threshold:
    """Conservative rule: median + ``k`` robust standard deviations of the scores.

    The no-change pixels dominate any scene, so their spread is estimated from the
    median absolute deviation; only pixels far out in the upper tail are flagged.
    Use it when a false alarm costs more than a miss. ``floor`` is the lowest
    threshold allowed, for scores in known units (the construction score is in
    robust σ), so a scene with no change at all does not get its noise flagged.

    A scene where much has changed inflates the spread of its scores, and with it the
    threshold: on the OSCD cities with their unchanged pixels thinned to make 10-20 %
    of the scene changed, the threshold rose up to threefold and most change was
    missed. ``quiet`` marks the pixels outside dense clusters of scores above the floor
    (see :func:`quiet_pixels`); their spread does not grow with the changed share, and
    the threshold is capped at median + ``cap_ratio`` (default :data:`CAP_RATIO`) × ``k``
    of their robust σ. On scenes with a few per cent changed the cap rarely binds.

    Examples
    --------
    >>> x = np.r_[np.random.default_rng(0).normal(0, 1, 10000), np.full(50, 20.0)]
    >>> 5 < threshold_precision_first(x).value < 7
    True
    """
    raw = np.asarray(scores, dtype=np.float64).ravel()
    s = _clean(raw)
    med = float(np.median(s))
    sigma = _spread(s, med)
    value = med + k * sigma
    why = f"median + {k:g} robust σ of the scores, a precision-first rule"
    short = f"median + {k:g} robust σ"
    if quiet is not None and floor is not None:
        q = np.asarray(quiet, dtype=bool).ravel()
        if q.shape != raw.shape:
            raise ValueError(f"quiet has {q.size} values for {raw.size} scores")
        sq = raw[np.isfinite(raw) & q]
        if sq.size >= max(CAP_MIN_PIXELS, s.size // 4):
            kc = (CAP_RATIO if cap_ratio is None else cap_ratio) * k
            cap = med + kc * _spread(sq, float(np.median(sq)))
            if cap < value:
                value = cap
                why = (
                    f"median + {kc:g} robust σ of the {sq.size / s.size:.0%} of scores "
                    f"outside dense clusters above {floor:g}, a precision-first rule capped "
                    f"because the whole scene's spread is inflated by its changes (it gave "
                    f"median + {k:g} σ = {med + k * sigma:.3g})"
                )
                short = f"median + {kc:g} robust σ of the scores outside dense clusters"
    if floor is not None and value < floor:
        value, why = float(floor), f"the floor {floor:g} (above {short})"
    return Threshold(value, "precision", f"{why}; {_share(s, value)}")


def _spread(s: np.ndarray, med: float) -> float:
    """1.4826 MAD; the standard deviation below the :data:`TRIM` quantile when it is 0."""
    # The MAD is 0 exactly when more than half the scores equal the median (both middle
    # deviations are then 0): a count instead of a second median over every score.
    tied = 2 * np.count_nonzero(s == med) > s.size
    sigma = 0.0 if tied else 1.4826 * float(np.median(np.abs(s - med)))
    if sigma == 0:
        # Over half the scores are tied (e.g. a score that is 0 wherever one of its
        # views is not anomalous): use the standard deviation of the scores below
        # the TRIM quantile, so the changes themselves do not inflate it.
        top = float(np.quantile(s, TRIM))
        sigma = float(s[s <= top].std()) or 1.0
    return sigma


def quiet_pixels(score: np.ndarray, valid: np.ndarray, floor: float) -> np.ndarray:
    """Pixels outside dense clusters of scores above ``floor`` (for the precision cap).

    A pixel is in a dense cluster when it is above the floor with at least
    :data:`CLUSTER_MIN` of the 9 pixels of its 3 × 3 neighbourhood above it; the
    clusters are grown by one pixel. Changes are such clusters, the noise of an
    unchanged scene mostly is not. The answer for a row depends on the rows up to two
    away only (:data:`QUIET_HALO`), so blocks with that halo give the whole image's.

    Parameters
    ----------
    score : (H, W) ndarray
    valid : (H, W) bool ndarray
    floor : float

    Returns
    -------
    (H, W) bool ndarray
    """
    from scipy import ndimage

    hi = valid & (score > floor)
    count = ndimage.correlate(hi.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant")
    dense = hi & (count >= CLUSTER_MIN)
    return ~ndimage.binary_dilation(dense, structure=np.ones((3, 3), bool))


def change_share(p_nochange: np.ndarray, *, lam: float = 0.5) -> float:
    """Share of changed pixels estimated from IR-MAD's P(no change) (Storey's π₁).

    Under no change a pixel's P(no change) is uniform on [0, 1], so pixels above
    ``lam`` are almost all unchanged and ``1 - #(p > lam) / ((1 - lam) N)`` estimates
    the changed share.

    References
    ----------
    Storey, J. D. (2002). A direct approach to false discovery rates. JRSS B 64(3),
    479-498.

    Examples
    --------
    >>> p = np.r_[np.linspace(0, 1, 9000), np.zeros(1000)]  # 10 % changed
    >>> round(change_share(p), 2)
    0.1
    """
    p = np.asarray(p_nochange, dtype=np.float64).ravel()
    p = p[np.isfinite(p)]
    if p.size == 0 or not 0 < lam < 1:
        raise ValueError("change_share needs P(no change) values and 0 < lam < 1")
    return float(min(1.0, max(0.0, 1.0 - (p > lam).mean() / (1.0 - lam))))


def threshold_share(
    scores: np.ndarray,
    p_nochange: np.ndarray,
    *,
    max_share: float = 0.4,
    k: float = 6.0,
    floor: float | None = None,
) -> Threshold:
    """Flag the share of pixels IR-MAD's no-change law says changed; else precision-first.

    The changed share π₁ is estimated from IR-MAD's P(no change) (:func:`change_share`),
    and the threshold is the score's ``1 - π₁`` quantile, so the top π₁ of the score
    are flagged: on a pair with no change (noise, gain, offset) π₁ is about 0 and nothing
    is flagged, and on a mixture the flagged share follows the true one. When π₁ is
    above ``max_share``, the χ² law of no change does not describe the scene (seasons,
    phenology, widespread non-linear differences); the rule then falls back to
    :func:`threshold_precision_first`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = np.r_[rng.normal(0, 1, 9000), rng.normal(6, 1, 1000)]
    >>> p = np.r_[rng.uniform(0, 1, 9000), np.zeros(1000)]
    >>> t = threshold_share(s, p)
    >>> t.rule, round(float((s > t.value).mean()), 2)
    ('share', 0.09)
    """
    s = _clean(scores)
    share = change_share(p_nochange)
    if share > max_share:
        prec = threshold_precision_first(s, k=k, floor=floor)
        return Threshold(
            prec.value,
            "share",
            f"IR-MAD estimates {share:.0%} of the pixels changed, more than {max_share:.0%}: "
            f"its no-change law does not fit this scene, so the precision rule applies: "
            f"{prec.why}",
        )
    if share <= 0:
        return Threshold(
            float(s.max()),
            "share",
            "IR-MAD finds no changed share (every P(no change) fits its no-change law): "
            "nothing is flagged",
        )
    value = float(np.quantile(s, 1.0 - share))
    return Threshold(
        value,
        "share",
        f"IR-MAD estimates {share:.1%} of the pixels changed (Storey's π₁ from P(no change)); "
        f"the top {share:.1%} of the scores are flagged; {_share(s, value)}",
    )


TRIM = 0.95
#: The precision rule's cap is CAP_RATIO × k robust σ of the quiet pixels' scores. Chosen on
#: the OSCD train cities, leave-one-city-out, as the ratio whose worst pooled F1 over the
#: cities' own change share and that share doubled, quadrupled and multiplied by eight
#: (unchanged pixels thinned) is highest: 18 σ for k = 6.5 on 12 of the 14 folds.
CAP_RATIO = 2.75
#: Neighbours (of 9, itself included) above the floor that make a pixel part of a dense cluster.
CLUSTER_MIN = 3
#: Rows either side a block needs for :func:`quiet_pixels` to equal the whole image's.
QUIET_HALO = 2
#: Fewest quiet pixels (and at least a quarter of the scores) for the cap to apply.
CAP_MIN_PIXELS = 1000


def threshold_scores(
    scores: np.ndarray,
    *,
    rule: str = "otsu",
    value: float | None = None,
    dof: int | None = None,
    p: float = 0.999,
    k: float = 6.0,
    floor: float | None = None,
    p_nochange: np.ndarray | None = None,
    quiet: np.ndarray | None = None,
    cutoff: float | None = None,
) -> Threshold:
    """Pick a threshold by rule name, or use a fixed ``value`` when given.

    Parameters
    ----------
    scores : ndarray
        Valid-pixel scores.
    rule : {"otsu", "kittler", "chi2", "precision", "share", "model"}
    value : float, optional
        Fixed threshold; overrides ``rule``.
    dof : int, optional
        Degrees of freedom for ``"chi2"`` (number of bands).
    p, k : float
        Quantile for ``"chi2"``; robust-σ multiplier for ``"precision"``.
    floor : float, optional
        Lowest threshold of the ``"precision"`` and ``"kittler"`` rules.
    p_nochange : ndarray, optional
        IR-MAD P(no change) of the same pixels, for the ``"share"`` rule.
    quiet : bool ndarray, optional
        The same pixels outside dense clusters above ``floor`` (:func:`quiet_pixels`),
        for the cap of the ``"precision"`` rule.
    cutoff : float, optional
        The ``learned`` model's cutoff, for the ``"model"`` rule.
    """
    if value is not None:
        s = _clean(scores)
        return Threshold(float(value), "fixed", f"set by the user; {_share(s, float(value))}")
    if rule == "otsu":
        return threshold_otsu(scores)
    if rule == "kittler":
        return threshold_kittler(scores, floor=floor)
    if rule == "chi2":
        if dof is None:
            raise ValueError("the chi2 rule needs dof (the number of bands)")
        return threshold_chi2(scores, dof=dof, p=p)
    if rule == "precision":
        return threshold_precision_first(scores, k=k, floor=floor, quiet=quiet)
    if rule == "model":
        if cutoff is None:
            raise ValueError(
                "the 'model' threshold rule is the learned model's cutoff; "
                "use it with --method learned"
            )
        s = np.asarray(scores)
        kept = float(np.mean(s > cutoff)) if s.size else 0.0
        return Threshold(
            cutoff,
            "model",
            f"the learned model's cutoff, P(change) above {cutoff:g}, chosen with its weights "
            f"on its training data; {100 * kept:.2f} % of the pixels above it",
        )
    if rule == "share":
        if p_nochange is None:
            raise ValueError("the share rule needs IR-MAD's P(no change) of the pixels")
        return threshold_share(scores, p_nochange, k=k, floor=floor)
    raise ValueError(f"unknown threshold rule {rule!r}; choose one of {THRESHOLD_RULES}")
