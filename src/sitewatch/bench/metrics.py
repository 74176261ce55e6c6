"""Metrics of a change mask and a change score against a reference.

Pixel counts, ranking (AUC-PR, best single threshold) and object counts (8-connected
regions, labelled by :func:`scipy.ndimage.label`). Every ratio whose denominator is zero
is 0.0, never NaN, so results always serialise to valid JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ObjectCounts", "PixelCounts", "average_precision", "best_f1", "scores_to_metrics"]


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def _flat_pair(
    a: np.ndarray, truth: np.ndarray, where: np.ndarray | None, *, name: str
) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    t = np.asarray(truth)
    if a.shape != t.shape:
        raise ValueError(f"{name} shape {a.shape} != truth shape {t.shape}")
    if where is None:
        return a.ravel(), t.astype(bool, copy=False).ravel()
    w = np.asarray(where, dtype=bool)
    if w.shape != t.shape:
        raise ValueError(f"where shape {w.shape} != truth shape {t.shape}")
    return a[w], t[w].astype(bool, copy=False)


@dataclass(frozen=True)
class PixelCounts:
    """Confusion counts of a binary change map; ``+`` (and ``sum``) pools them.

    Attributes
    ----------
    tp, fp, fn, tn : int
        True/false positives and negatives, "positive" meaning change.

    Raises
    ------
    ValueError
        If a count is negative.

    Examples
    --------
    >>> c = PixelCounts(tp=3, fp=1, fn=2, tn=4)
    >>> c.precision, c.recall, round(c.f1, 4), c.iou
    (0.75, 0.6, 0.6667, 0.5)
    >>> sum([c, c]) == PixelCounts(6, 2, 4, 8)
    True
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __post_init__(self) -> None:
        for name in ("tp", "fp", "fn", "tn"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} is negative")

    @classmethod
    def from_masks(
        cls, pred: np.ndarray, truth: np.ndarray, *, where: np.ndarray | None = None
    ) -> PixelCounts:
        """Count a predicted mask against a reference mask.

        Parameters
        ----------
        pred, truth : (H, W) bool ndarray
            Predicted and reference change.
        where : (H, W) bool ndarray, optional
            Pixels to count (sparse references); default every pixel.

        Returns
        -------
        PixelCounts
        """
        p, t = _flat_pair(pred, truth, where, name="pred")
        p = p.astype(bool, copy=False)
        tp = int(np.count_nonzero(p & t))
        n_pred = int(np.count_nonzero(p))
        n_true = int(np.count_nonzero(t))
        return cls(tp, n_pred - tp, n_true - tp, int(t.size) - n_pred - n_true + tp)

    def __add__(self, other: object) -> PixelCounts:
        if not isinstance(other, PixelCounts):
            return NotImplemented
        return PixelCounts(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    def __radd__(self, other: object) -> PixelCounts:
        if other == 0:  # lets the builtin sum() start from 0
            return self
        return self.__add__(other)

    @property
    def total(self) -> int:
        """Number of pixels counted."""
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        """Share of predicted change that is change: tp / (tp + fp); 0.0 if none predicted."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """Share of change that is predicted: tp / (tp + fn); 0.0 if the reference has none."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall: 2 tp / (2 tp + fp + fn)."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def iou(self) -> float:
        """Intersection over union of the change class: tp / (tp + fp + fn)."""
        return _ratio(self.tp, self.tp + self.fp + self.fn)

    def as_dict(self) -> dict[str, int]:
        """``{"tp", "fp", "fn", "tn"}``."""
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}

    def metrics(self) -> dict[str, float]:
        """``{"precision", "recall", "f1", "iou"}``."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "iou": self.iou,
        }


@dataclass(frozen=True)
class ObjectCounts:
    """Change counted as objects; ``+`` (and ``sum``) pools them.

    An analyst reads polygons, not pixels: a house that comes back as three pieces, or a
    scene strewn with small false regions, costs review time that pixel F1 does not show.
    Objects are 8-connected regions: of the reference change (within the evaluated
    pixels) and of the flagged mask.

    Attributes
    ----------
    labelled : int
        Reference objects.
    found : int
        Reference objects that a flagged pixel touches.
    regions : int
        Flagged regions with at least one evaluated pixel (a region wholly outside a
        sparse reference cannot be judged).
    on_change : int
        Flagged regions that touch a reference object.
    pieces : int
        Flagged regions touching each found object, summed over the found objects.

    Examples
    --------
    >>> truth = np.zeros((5, 9), bool); truth[1:4, 1:4] = True; truth[1:4, 6:8] = True
    >>> pred = np.zeros_like(truth); pred[1, 1:4] = True; pred[3, 1:4] = True
    >>> pred[0, 8] = True
    >>> ObjectCounts.from_masks(pred, truth)
    ObjectCounts(labelled=2, found=1, regions=3, on_change=2, pieces=2)
    """

    labelled: int = 0
    found: int = 0
    regions: int = 0
    on_change: int = 0
    pieces: int = 0

    def __post_init__(self) -> None:
        for name in ("labelled", "found", "regions", "on_change", "pieces"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} is negative")

    @classmethod
    def from_masks(
        cls, pred: np.ndarray, truth: np.ndarray, *, where: np.ndarray | None = None
    ) -> ObjectCounts:
        """Count the objects of a predicted mask against a reference mask.

        Parameters
        ----------
        pred, truth : (H, W) bool ndarray
            Predicted and reference change.
        where : (H, W) bool ndarray, optional
            Pixels the reference covers (sparse references); default every pixel.

        Returns
        -------
        ObjectCounts
        """
        from scipy import ndimage

        p = np.asarray(pred, dtype=bool)
        t = np.asarray(truth, dtype=bool)
        if p.shape != t.shape or p.ndim != 2:
            raise ValueError(f"pred shape {p.shape} != truth shape {t.shape} (or not 2-D)")
        w = None if where is None else np.asarray(where, dtype=bool)
        if w is not None and w.shape != t.shape:
            raise ValueError(f"where shape {w.shape} != truth shape {t.shape}")
        eight = np.ones((3, 3), dtype=bool)
        t_lab, n_true = ndimage.label(t if w is None else t & w, structure=eight)
        p_lab, n_pred = ndimage.label(p, structure=eight)
        judged = n_pred if w is None else np.unique(p_lab[w & p]).size
        both = (t_lab > 0) & (p_lab > 0)
        pairs = np.unique(t_lab[both].astype(np.int64) * (n_pred + 1) + p_lab[both])
        return cls(
            labelled=int(n_true),
            found=int(np.unique(pairs // (n_pred + 1)).size),
            regions=int(judged),
            on_change=int(np.unique(pairs % (n_pred + 1)).size),
            pieces=int(pairs.size),
        )

    def __add__(self, other: object) -> ObjectCounts:
        if not isinstance(other, ObjectCounts):
            return NotImplemented
        return ObjectCounts(
            *(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__)
        )

    def __radd__(self, other: object) -> ObjectCounts:
        if other == 0:  # lets the builtin sum() start from 0
            return self
        return self.__add__(other)

    @property
    def found_share(self) -> float:
        """Share of reference objects found (object recall)."""
        return _ratio(self.found, self.labelled)

    @property
    def on_change_share(self) -> float:
        """Share of flagged regions touching change (object precision)."""
        return _ratio(self.on_change, self.regions)

    @property
    def pieces_per_found(self) -> float:
        """Flagged regions per found object (1.0: every found object is one region)."""
        return _ratio(self.pieces, self.found)

    def as_dict(self) -> dict[str, float]:
        """The counts and the three shares, JSON-ready."""
        return {
            **{f: getattr(self, f) for f in self.__dataclass_fields__},
            "found_share": round(self.found_share, 6),
            "on_change_share": round(self.on_change_share, 6),
            "pieces_per_found": round(self.pieces_per_found, 6),
        }


def average_precision(
    score: np.ndarray, truth: np.ndarray, *, where: np.ndarray | None = None
) -> float:
    """Area under the precision-recall curve of a continuous score (average precision).

    Pixels are sorted by decreasing score and every distinct score is one threshold
    (pixels with equal scores enter together, so ties do not depend on pixel order):
    ``AP = Σ_n (R_n − R_{n−1}) P_n``, as in scikit-learn's ``average_precision_score``.
    Non-finite scores (NaN, −inf) rank last, together.

    Pooling several images by concatenating their raw scores is only meaningful if the
    scores share one scale (for a self-normalising score such as CVA on standardised
    bands they roughly do; for others report the mean of per-image values as well).

    Parameters
    ----------
    score : ndarray
        Change score, higher = more likely change.
    truth : bool ndarray, same shape
        Reference change.
    where : bool ndarray, same shape, optional
        Pixels to evaluate (sparse references); default every pixel.

    Returns
    -------
    float
        Average precision in [0, 1]; 0.0 when the reference holds no change.

    Examples
    --------
    >>> average_precision(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0], bool))
    0.8333333333333333

    The tied pair counts as one threshold, whatever its order:

    >>> average_precision(np.array([0.9, 0.5, 0.5, 0.1]), np.array([1, 0, 1, 0], bool))
    0.8333333333333333
    >>> average_precision(np.array([0.9, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0], bool))
    0.8333333333333333
    """
    s, t = _flat_pair(score, truth, where, name="score")
    n_pos = int(np.count_nonzero(t))
    if n_pos == 0:
        return 0.0
    if s.dtype.kind != "f":
        s = s.astype(np.float64)
    s = np.where(np.isfinite(s) | (s == np.inf), s, -np.inf)
    # Only thresholds at a positive's score move recall, so sort the two classes' values
    # (cheaper than an argsort of everything) and, for each distinct positive score v,
    # count tp(v) = #pos >= v and fp(v) = #neg >= v.
    pos = np.sort(s[t])
    neg = np.sort(s[~t])
    starts = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]])
    values = pos[starts]
    n_equal = np.diff(np.r_[starts, pos.size])
    tp = (pos.size - starts).astype(np.float64)
    fp = (neg.size - np.searchsorted(neg, values, side="left")).astype(np.float64)
    return float(np.sum(n_equal / n_pos * (tp / (tp + fp))))


def best_f1(
    score: np.ndarray, truth: np.ndarray, *, where: np.ndarray | None = None
) -> tuple[float, float]:
    """The best F1 one threshold on ``score`` can reach, and the share it flags.

    The ceiling of any threshold rule on this score (an oracle: it knows the labels).
    Pixels with equal scores enter together, as in :func:`average_precision`.

    Returns
    -------
    f1 : float
        0.0 when the reference holds no change.
    flagged : float
        Share of the evaluated pixels at or above that threshold.

    Examples
    --------
    >>> best_f1(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0], bool))
    (0.8, 0.75)
    """
    s, t = _flat_pair(score, truth, where, name="score")
    n_pos = int(np.count_nonzero(t))
    if n_pos == 0 or s.size == 0:
        return 0.0, 0.0
    s = np.where(np.isfinite(s) | (s == np.inf), s.astype(np.float64), -np.inf)
    order = np.argsort(-s, kind="stable")
    ranked, hits = s[order], t[order]
    last = np.r_[ranked[1:] != ranked[:-1], True]  # the end of each run of equal scores
    tp = np.cumsum(hits)[last].astype(np.float64)
    n = (np.flatnonzero(last) + 1).astype(np.float64)
    f1 = 2 * tp / (n + n_pos)
    i = int(np.argmax(f1))
    return float(f1[i]), float(n[i] / s.size)


def scores_to_metrics(
    score: np.ndarray, pred: np.ndarray, truth: np.ndarray, *, where: np.ndarray | None = None
) -> dict[str, float]:
    """Precision, recall, F1, IoU of a change mask and AUC-PR of its score.

    Parameters
    ----------
    score : (H, W) float ndarray
        Continuous change score (for ``auc_pr``).
    pred : (H, W) bool ndarray
        Thresholded change mask (for the other metrics).
    truth : (H, W) bool ndarray
        Reference change.
    where : (H, W) bool ndarray, optional
        Pixels to evaluate; default every pixel.

    Returns
    -------
    dict
        ``{"precision", "recall", "f1", "iou", "auc_pr"}``, each a float in [0, 1].

    Examples
    --------
    >>> t = np.array([[1, 1, 0, 0]], bool)
    >>> m = scores_to_metrics(np.array([[0.9, 0.2, 0.8, 0.1]]), np.array([[1, 0, 1, 0]], bool), t)
    >>> {k: round(v, 4) for k, v in m.items()}
    {'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'iou': 0.3333, 'auc_pr': 0.8333}
    """
    counts = PixelCounts.from_masks(pred, truth, where=where)
    return {**counts.metrics(), "auc_pr": average_precision(score, truth, where=where)}
