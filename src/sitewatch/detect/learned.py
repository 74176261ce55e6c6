"""``--method learned``: a logistic model over the engine's own change views.

The model is deliberately small: twelve per-pixel views the engine computes block by
block (:data:`FEATURES`), each in robust z units of the image in front of it (median
and 1.4826 × MAD, so a gain, an offset or a brighter season moves none of them) and
squashed by ``asinh`` (:func:`squash`), and one weight per view. The score is the
model's probability of change; the ``model`` rule flags pixels above the model's
cutoff, chosen with the weights on the training data (:func:`train`). Inference is a
dot product: numpy only, no deep-learning framework, weights of a few hundred bytes
(``sitewatch/data/learned.json``).

It is trained only on the labelled pairs under ``../shared/data`` by
``scripts/train_learned.py`` (:func:`sitewatch.bench.learn.train_model`), every
dataset weighted equally and the two classes weighted equally within each, with an
L2 penalty. ``sitewatch bench suite ROOT --method learned`` scores every dataset with a
model trained on the *other* datasets (leave-one-dataset-out), the only form in which
its figures are quoted. It is not the default: it does not beat the unsupervised
default on every dataset in that form (see the README).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sitewatch.errors import InputError

__all__ = [
    "CONTEXT_SIGMA",
    "CUTOFFS",
    "FEATURES",
    "L2",
    "TEXTURE_SIGMA",
    "LearnedModel",
    "fit_logistic",
    "load_model",
    "squash",
    "train",
]

FEATURES = (
    "chi2",
    "cva",
    "dlum",
    "lum_after",
    "lum_before",
    "chroma",
    "new_edges",
    "texture",
    "chi2_ctx",
    "cva_ctx",
    "dlum_ctx",
    "new_edges_ctx",
)
"""The views the model weighs, in order: IR-MAD χ²; change-vector magnitude of the
standardised bands; luminance after minus before, each date's luminance standardised;
the two luminances; change of chromaticity (visible bands over their sum); new edges
(:func:`~sitewatch.detect.methods.new_edges`); change of local texture (log ratio of the
luminance's local standard deviation); and the first, second, third and seventh again
averaged over a wider neighbourhood (:data:`CONTEXT_SIGMA`), the context of a pixel."""
CONTEXT_SIGMA = 6.0
"""σ in pixels of the context views' Gaussian (masked) average."""
TEXTURE_SIGMA = 2.0
"""σ in pixels of the local window of the texture view."""
L2 = 1e-3
"""L2 penalty of the logistic fit (per weight, on standardised views)."""


@dataclass(frozen=True)
class LearnedModel:
    """A logistic model over :data:`FEATURES`.

    Attributes
    ----------
    coef : tuple of float
        One weight per feature, on the robust z of that view.
    intercept : float
    cutoff : float
        Probability of change above which a pixel is flagged.
    trained_on : tuple of str
        Datasets the model was fitted on.
    pixels : int
        Labelled pixels the fit saw.
    features : tuple of str
        Must equal :data:`FEATURES`.
    """

    coef: tuple[float, ...]
    intercept: float
    cutoff: float = 0.5
    trained_on: tuple[str, ...] = ()
    pixels: int = 0
    features: tuple[str, ...] = FEATURES
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if tuple(self.features) != FEATURES:
            raise ValueError(
                f"the model's features {list(self.features)} are not this version's "
                f"{list(FEATURES)}; retrain it with scripts/train_learned.py"
            )
        if len(self.coef) != len(FEATURES) or not all(map(math.isfinite, self.coef)):
            raise ValueError(f"the model needs {len(FEATURES)} finite weights")
        if not 0.0 < self.cutoff < 1.0 or not math.isfinite(self.intercept):
            raise ValueError("the model's cutoff must lie in (0, 1) and its intercept be finite")

    def logit(self, z: Sequence[np.ndarray]) -> np.ndarray:
        """Log-odds of change from the views' robust z (one array per feature).

        Each z enters through :func:`squash` (``asinh``), so one extreme view cannot
        push the log-odds without bound.

        Examples
        --------
        >>> m = LearnedModel(coef=(1.0,) + (0.0,) * 11, intercept=-2.0)
        >>> z = [np.sinh(np.array([0.0, 2.0, 4.0]))] + [np.zeros(3)] * 11
        >>> m.logit(z).round(6).tolist()
        [-2.0, 0.0, 2.0]
        """
        out = np.full(np.shape(z[0]), self.intercept, dtype=np.float64)
        for w, x in zip(self.coef, z, strict=True):
            if w:
                out += w * squash(x)
        return out

    def probability(self, z: Sequence[np.ndarray]) -> np.ndarray:
        """P(change) from the views' robust z: the method's score (float32, in [0, 1])."""
        return _sigmoid(self.logit(z)).astype(np.float32)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what :func:`load_model` reads)."""
        return {
            "features": list(self.features),
            "coef": [float(c) for c in self.coef],
            "intercept": float(self.intercept),
            "cutoff": float(self.cutoff),
            "trained_on": list(self.trained_on),
            "pixels": int(self.pixels),
        }

    def save(self, path: str | Path) -> None:
        """Write the model as JSON."""
        Path(path).write_text(json.dumps(self.as_dict(), indent=1) + "\n", encoding="utf-8")


def load_model(path: str | Path | None = None) -> LearnedModel:
    """The model shipped with sitewatch, or one written by :meth:`LearnedModel.save`.

    Raises
    ------
    InputError
        The file is missing, not JSON, or not a model of this version's features.
    """
    if path is None:
        from importlib import resources

        text = resources.files("sitewatch.data").joinpath("learned.json").read_text("utf-8")
        where = "the shipped model"
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"cannot read the model {where}: {exc.strerror or exc}; "
                "give a file written by scripts/train_learned.py"
            ) from None
    try:
        d = json.loads(text)
        return LearnedModel(
            coef=tuple(float(c) for c in d["coef"]),
            intercept=float(d["intercept"]),
            cutoff=float(d.get("cutoff", 0.5)),
            trained_on=tuple(d.get("trained_on", ())),
            pixels=int(d.get("pixels", 0)),
            features=tuple(d["features"]),
            source=where,
        )
    except (ValueError, KeyError, TypeError) as exc:
        msg = str(exc) if isinstance(exc, ValueError) else f"missing or bad field {exc}"
        raise InputError(f"{where} is not a sitewatch learned model: {msg}") from None


def fit_logistic(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray, *, l2: float = L2
) -> tuple[np.ndarray, float]:
    """Weighted, L2-penalised logistic regression (L-BFGS on the exact gradient).

    Parameters
    ----------
    x : (n, d) ndarray
    y : (n,) bool ndarray
    weight : (n,) ndarray
        Sample weights (they are normalised to sum to 1).
    l2 : float
        Penalty on the weights of the standardised columns (not the intercept).

    Returns
    -------
    coef : (d,) ndarray
        Weights in the units of ``x``.
    intercept : float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 1)); y = x[:, 0] + 0.3 * rng.normal(size=2000) > 1
    >>> coef, b = fit_logistic(x, y, np.ones(2000), l2=0.0)
    >>> round(float(-b / coef[0]), 1)  # the boundary is found where it is
    1.0
    """
    from scipy.optimize import minimize

    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    w = w / w.sum()
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    xs = (x - mu) / sd

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = xs @ theta[:-1] + theta[-1]
        # log(1 + e^z) - t z, stably
        value = float((w * (np.logaddexp(0.0, z) - t * z)).sum())
        g = w * (_sigmoid(z) - t)
        grad = np.concatenate([xs.T @ g + 2 * l2 * theta[:-1], [g.sum()]])
        return value + l2 * float((theta[:-1] ** 2).sum()), grad

    res = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B")
    coef = res.x[:-1] / sd
    return coef, float(res.x[-1] - (coef * mu).sum())


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def squash(z: np.ndarray) -> np.ndarray:
    """``asinh(z)``: linear near 0, logarithmic in the tails (both signs).

    Examples
    --------
    >>> squash(np.array([0.0, 1e6])).round(2).tolist()
    [0.0, 14.51]
    """
    return np.arcsinh(np.asarray(z, dtype=np.float64))


CUTOFFS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99)
"""Candidate cutoffs (probability of change) :func:`train` chooses from."""


def _f1_at(p: np.ndarray, t: np.ndarray, share: float, cutoff: float) -> float:
    """F1 at ``cutoff`` of a class-stratified sample, counted at the true ``share``."""
    n_pos = max(int(t.sum()), 1)
    n_neg = max(t.size - int(t.sum()), 1)
    flag = p > cutoff
    tp = float((flag & t).sum()) * share / n_pos
    fp = float((flag & ~t).sum()) * (1.0 - share) / n_neg
    fn = share - tp
    return 2 * tp / max(2 * tp + fp + fn, 1e-12)


def train(
    samples: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    shares: Mapping[str, float] | None = None,
    l2: float = L2,
) -> LearnedModel:
    """Fit the model on labelled samples of several datasets, and choose its cutoff.

    Every dataset weighs the same, and within a dataset the changed and unchanged
    pixels weigh half each, so the fit does not favour the datasets with much change.
    The cutoff is then the one of :data:`CUTOFFS` with the best mean F1 over the
    training datasets, each counted at its true share of change (``shares``; 0.5
    without), so it is chosen on the training data only.

    Parameters
    ----------
    samples : mapping
        ``{dataset: (z, truth)}``: ``z`` (n, len(FEATURES)) robust z of the views,
        ``truth`` (n,) bool (a class-stratified sample).
    shares : mapping, optional
        ``{dataset: share of changed pixels}`` among all its labelled pixels.
    l2 : float

    Raises
    ------
    ValueError
        No dataset, or a dataset without both classes.
    """
    if not samples:
        raise ValueError("no labelled samples to train on")
    xs, ys, ws = [], [], []
    for name, (z, t) in samples.items():
        t = np.asarray(t, dtype=bool)
        n_pos = int(t.sum())
        n_neg = t.size - n_pos
        if n_pos == 0 or n_neg == 0:
            raise ValueError(f"dataset {name!r} needs both changed and unchanged pixels")
        xs.append(squash(z))
        ys.append(t)
        ws.append(np.where(t, 0.5 / n_pos, 0.5 / n_neg) / len(samples))
    x = np.concatenate(xs)
    if x.shape[1] != len(FEATURES):
        raise ValueError(f"samples need {len(FEATURES)} columns, got {x.shape[1]}")
    coef, b = fit_logistic(x, np.concatenate(ys), np.concatenate(ws), l2=l2)
    coef = np.round(coef, 6)
    b = round(b, 6)
    share = dict(shares or {})
    scored = [
        (_sigmoid(squash(z) @ coef + b), np.asarray(t, bool), share.get(k, 0.5))
        for k, (z, t) in samples.items()
    ]

    def mean_f1(c: float) -> float:
        return float(np.mean([_f1_at(p, t, sh, c) for p, t, sh in scored]))

    cutoff = max(CUTOFFS, key=mean_f1)  # the first of equals: the lowest
    return LearnedModel(
        coef=tuple(float(c) for c in coef),
        intercept=b,
        cutoff=cutoff,
        trained_on=tuple(samples),
        pixels=int(x.shape[0]),
    )
