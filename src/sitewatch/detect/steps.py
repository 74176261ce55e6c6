"""Step changes in a dated series: when a pixel moved to a new, lasting level.

Construction is abrupt and persistent: a pixel holds one level (bare ground, field) and,
from some date on, another (roof, concrete). :func:`step_scores` tests that model at
every split of the series and keeps the best one, so every clear date before and after
the split counts as evidence, not just one pair. :func:`threshold_steps` decides how large
a step must be from the series itself: the same statistic computed on time-shuffled
copies of the series (the dates after the first in a random order, so no lasting step
survives but the noise, clouds and odd months do) is the no-change reference, and the
threshold is the lowest one at which the shuffled series would make at most a share
``fdr`` of the flags (a false-discovery rate, Benjamini & Hochberg 1995, with a
permutation null).

Before testing, each date and band is made comparable: a Gaussian background of
``background`` pixels is subtracted (haze, illumination and seasonal colour vary
smoothly in space, a building does not), then the rest is scaled by its median and
1.4826 × MAD over the date's clear pixels (a global gain and offset per date).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sitewatch.detect.methods import normalised_gaussian, robust_scale
from sitewatch.detect.options import STEP_FDR
from sitewatch.detect.threshold import Threshold

__all__ = [
    "BACKGROUND_PX",
    "DISPLACED",
    "MIN_AFTER",
    "MIN_DATES",
    "StepScores",
    "displacement_ratio",
    "prepare_series",
    "step_scores",
    "threshold_steps",
]

MIN_DATES = 12
"""Fewest dates a series needs for the step model (a year of monthly images); shorter
ones are compared in pairs. In a short series a shuffle keeps much of a real step (five
later dates of which four show a new roof still look like a step in most orders), so
the shuffled copies cannot tell a rare change from noise."""
MIN_AFTER = 2
"""A step needs at least this many clear dates after it (multi-date confirmation)."""
BACKGROUND_PX = 4.0
"""σ in pixels of the Gaussian background subtracted from every date and band."""
PERMUTATIONS = 8
NULL_SAMPLE = 250_000
"""Pixels the shuffled series are scored on (all when fewer)."""
CHUNK = 1 << 16
"""Pixels scored at once (bounds the working memory to a few arrays of this size)."""
DISPLACED = 0.5
"""A pixel's step is a displacement when a neighbour's level before the step is at most
this fraction as far from the pixel's new level as its own old level was: the new level
was already there, one pixel away (an edge or shadow that moved), not new material."""


@dataclass(frozen=True, eq=False)
class StepScores:
    """Best step of every pixel.

    Attributes
    ----------
    stat : (N,) float32 ndarray
        Size of the best step in noise units: ``sqrt(between / (B σ²))``, where
        ``between`` is the between-segment sum of squares of the best split and σ² the
        pixel's residual variance (at least the scene's median); 0 where no split has
        one clear date before and :data:`MIN_AFTER` after.
    split : (N,) int16 ndarray
        Index of the first date after the step (0 = none).
    before, after : (B, N) float32 ndarray
        Mean of the prepared bands before and after the split.
    """

    stat: np.ndarray
    split: np.ndarray
    before: np.ndarray
    after: np.ndarray


def _background(a: np.ndarray, m: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian background of ``a`` over ``m`` that outliers (buildings) do not pull.

    A first Gaussian gives the residuals; pixels more than 3 robust σ from it are left
    out of the second, so a new roof does not raise its surroundings' background (which
    would make a halo of negative change around it).
    """
    first = normalised_gaussian(a, m, sigma)
    med, mad = robust_scale((a - first)[m])
    inlier = m & (np.abs(a - first - med) <= 3.0 * mad)
    return normalised_gaussian(a, inlier, sigma) if inlier.any() else first


def prepare_series(
    stacks: Sequence[np.ndarray], valids: Sequence[np.ndarray], *, background: float = BACKGROUND_PX
) -> np.ndarray:
    """Background-subtracted, robustly scaled bands of every date, ``(T, B, H, W)`` float32.

    Pixels that are not clear on a date are 0 there.
    """
    t_n, b_n = len(stacks), stacks[0].shape[0]
    shape = valids[0].shape
    out = np.zeros((t_n, b_n, *shape), dtype=np.float32)
    for t in range(t_n):
        m = np.asarray(valids[t], dtype=bool)
        if not m.any():
            continue
        for b in range(b_n):
            a = np.where(m, np.asarray(stacks[t][b], dtype=np.float64), 0.0)
            if background > 0:
                a = np.where(m, a - _background(a, m, background), 0.0)
            med, sd = robust_scale(a[m])
            out[t, b] = np.where(m, (a - med) / sd, 0.0)
    return out


def _best_split(
    x: np.ndarray, v: np.ndarray, min_after: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best split of ``x`` (T, B, N) with clear dates ``v`` (T, N): between, rss, dof, k, μ1, μ2."""
    t_n, b_n, n_px = x.shape
    vx = x * v[:, None, :]
    n = v.sum(axis=0).astype(np.float64)
    total = vx.sum(axis=0, dtype=np.float64)
    ss0 = (vx.astype(np.float64) * x).sum(axis=(0, 1)) - (total**2).sum(axis=0) / np.maximum(n, 1)
    best = np.zeros(n_px)
    split = np.zeros(n_px, dtype=np.int16)
    mu1 = np.zeros((b_n, n_px))
    mu2 = np.zeros((b_n, n_px))
    c1 = np.zeros((b_n, n_px))
    n1 = np.zeros(n_px)
    for k in range(1, t_n):
        c1 += vx[k - 1]
        n1 += v[k - 1]
        n2 = n - n1
        ok = (n1 >= 1) & (n2 >= min_after)
        m1 = c1 / np.maximum(n1, 1)
        m2 = (total - c1) / np.maximum(n2, 1)
        between = np.where(ok, n1 * n2 / np.maximum(n, 1) * ((m1 - m2) ** 2).sum(axis=0), 0.0)
        up = between > best
        best = np.where(up, between, best)
        split = np.where(up, k, split).astype(np.int16)
        mu1 = np.where(up, m1, mu1)
        mu2 = np.where(up, m2, mu2)
    rss = np.maximum(ss0 - best, 0.0)
    dof = np.maximum(b_n * (n - 2), 1.0)
    return best, rss, dof, split, mu1, mu2


def _stat(
    best: np.ndarray, rss: np.ndarray, dof: np.ndarray, b_n: int, s2_floor: float
) -> np.ndarray:
    s2 = np.maximum(rss / dof, s2_floor)
    return np.sqrt(best / (b_n * s2)).astype(np.float32)


def _noise_floor(rss: np.ndarray, dof: np.ndarray, best: np.ndarray) -> float:
    s2 = (rss / dof)[best > 0]
    return float(np.median(s2)) if s2.size and np.median(s2) > 0 else 1.0


def step_scores(x: np.ndarray, v: np.ndarray, *, min_after: int = MIN_AFTER) -> StepScores:
    """Best step of every pixel of a prepared series (:func:`prepare_series`).

    Parameters
    ----------
    x : (T, B, N) ndarray
    v : (T, N) bool ndarray
        Clear dates of each pixel.
    min_after : int

    Returns
    -------
    StepScores
        The pixel's residual variance is floored at the scene's median, so a pixel that
        happens to be very stable does not turn a small step into a large one.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(0, 1, (8, 1, 2)); x[5:, 0, 1] += 6  # pixel 1 steps at date 5
    >>> s = step_scores(x, np.ones((8, 2), bool))
    >>> int(s.split[1]), bool(s.stat[1] > 3 * s.stat[0])
    (5, True)
    """
    b_n, n_px = x.shape[1], x.shape[2]
    parts = [
        _best_split(x[:, :, i : i + CHUNK], v[:, i : i + CHUNK], min_after)
        for i in range(0, n_px, CHUNK)
    ]
    best, rss, dof = (np.concatenate([p[j] for p in parts]) for j in range(3))
    split = np.concatenate([p[3] for p in parts])
    mu1 = np.concatenate([p[4] for p in parts], axis=1).astype(np.float32)
    mu2 = np.concatenate([p[5] for p in parts], axis=1).astype(np.float32)
    stat = _stat(best, rss, dof, b_n, _noise_floor(rss, dof, best))
    return StepScores(stat, split, mu1, mu2)


def threshold_steps(
    x: np.ndarray,
    v: np.ndarray,
    stat: np.ndarray,
    where: np.ndarray,
    *,
    fdr: float = STEP_FDR,
    min_after: int = MIN_AFTER,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> Threshold:
    """Lowest step size at which time-shuffled copies of the series make ≤ ``fdr`` of the flags.

    Parameters
    ----------
    x, v : ndarray
        The prepared series, as for :func:`step_scores`.
    stat : (N,) ndarray
        :attr:`StepScores.stat` of the series in date order.
    where : (N,) bool ndarray
        Pixels that can be flagged (clear on the first date and on enough later ones).
    fdr : float
        Target false-discovery share, in (0, 1).
    permutations : int
        Shuffles of the dates after the first (fixed seed: the same series gives the
        same threshold).

    Returns
    -------
    Threshold
        ``rule`` ``"step-fdr"``; ``value`` is ``inf`` (nothing flagged) when no step
        size meets the target.
    """
    if not 0 < fdr < 1:
        raise ValueError(f"fdr must be in (0, 1); got {fdr}")
    t_n, b_n, _ = x.shape
    idx = np.flatnonzero(where)
    real = np.sort(stat[idx].astype(np.float64))
    if real.size == 0:
        return Threshold(float("inf"), "step-fdr", "no pixel is clear on enough dates to test")
    rng = np.random.default_rng(seed)
    if idx.size > NULL_SAMPLE:
        idx = np.sort(rng.choice(idx, NULL_SAMPLE, replace=False))
    xs, vs = x[:, :, idx], v[:, idx]
    nulls = []
    for _ in range(permutations):
        order = np.r_[0, 1 + rng.permutation(t_n - 1)]
        best, rss, dof, *_ = _best_split(xs[order], vs[order], min_after)
        nulls.append(_stat(best, rss, dof, b_n, _noise_floor(rss, dof, best)))
    null = np.sort(np.concatenate(nulls).astype(np.float64))
    candidates = np.unique(np.quantile(real, np.linspace(0.5, 1.0, 2001)))
    exceed_real = 1.0 - np.searchsorted(real, candidates, side="right") / real.size
    exceed_null = 1.0 - np.searchsorted(null, candidates, side="right") / null.size
    ok = (exceed_real > 0) & (exceed_null <= fdr * exceed_real)
    if not ok.any():
        return Threshold(
            float("inf"),
            "step-fdr",
            f"no step size is rare enough in {permutations} time-shuffled copies of the series "
            f"(at most {fdr:.0%} of the flags): nothing is flagged",
        )
    i = int(np.argmax(ok))
    value = float(candidates[i])
    return Threshold(
        value,
        "step-fdr",
        f"lowest step size (in noise σ) at which {permutations} time-shuffled copies of the "
        f"series would make at most {fdr:.0%} of the flags (they make "
        f"{exceed_null[i] / exceed_real[i]:.1%}); {exceed_real[i]:.2%} of "
        f"{real.size} testable pixels lie above it",
    )


def displacement_ratio(steps: StepScores, shape: tuple[int, int]) -> np.ndarray:
    """How much of each pixel's step a neighbour's old level already explains, ``(H, W)``.

    ``min_q ‖after(p) − before(q)‖ / ‖after(p) − before(p)‖`` over the 8 neighbours q
    of p (edge pixels use the nearest inside). Near 1 where the new level is new to the
    neighbourhood (a roof on open ground); near 0 where an edge, a shadow or a roof
    outline moved by a pixel between the dates, as misregistration and the sun's
    elevation make them do in monthly mosaics.

    Examples
    --------
    >>> before = np.zeros((1, 9), np.float32); after = before.copy()
    >>> before[0, [0, 3, 6]] = 5; after[0, [1, 4, 7]] = 5  # a column moved right by one
    >>> after[0, 8] = 5  # and the corner pixel took a level new to it
    >>> s = StepScores(np.ones(9, np.float32), np.ones(9, np.int16), before, after)
    >>> np.round(displacement_ratio(s, (3, 3)), 1)[:, 1:]
    array([[0., 0.],
           [0., 0.],
           [0., 1.]], dtype=float32)
    """
    b_n = steps.before.shape[0]
    before = steps.before.reshape(b_n, *shape)
    after = steps.after.reshape(b_n, *shape)
    own = np.sqrt(((after - before) ** 2).sum(axis=0))
    padded = np.pad(before, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = shape
    nearest = np.full(shape, np.inf, dtype=np.float32)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy == 1 and dx == 1:
                continue
            q = padded[:, dy : dy + h, dx : dx + w]
            nearest = np.minimum(nearest, np.sqrt(((after - q) ** 2).sum(axis=0)))
    return (nearest / np.maximum(own, 1e-6)).astype(np.float32)
