"""Detector options: a small frozen value object, importable without numpy or scipy.

The command line builds its parsers from these (method and rule names, defaults) at
start-up, so they live apart from the numeric code; :mod:`sitewatch.detect.methods` and
:mod:`sitewatch.detect.threshold` hold the implementations, and a test keeps the names
here equal to theirs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AUTO",
    "COREG_MAX_SHIFT_M",
    "COREG_MAX_SHIFT_MIN_PX",
    "DEFAULT_MIN_AREA_M2",
    "METHODS",
    "THRESHOLD_RULES",
    "TIMELINE_MODELS",
    "DetectOptions",
]

AUTO = "auto"
"""Method and threshold rule chosen from the input (:mod:`sitewatch.detect.chain`)."""
METHODS = (
    "construction",
    "structural",
    "cva",
    "diff",
    "ratio",
    "index",
    "irmad",
    "mad",
    "edges",
    "learned",
)
"""Change scores (:data:`sitewatch.detect.methods.SCORERS` implements each)."""
THRESHOLD_RULES = ("otsu", "kittler", "chi2", "precision", "share", "model")
"""Threshold rules (:func:`sitewatch.detect.threshold.threshold_scores`)."""

TIMELINE_MODELS = ("auto", "step", "pairs")
"""How a timeline decides (:func:`sitewatch.timeline.track_changes`): ``step`` tests one
lasting step per pixel over the whole series, ``pairs`` compares every date with the
first, ``auto`` takes ``step`` for series of at least
:data:`sitewatch.detect.steps.MIN_DATES` dates."""
STEP_FDR = 0.05
"""Default false-discovery share of the step model's threshold: the conventional level of
Benjamini & Hochberg (1995). The share of flags that time-shuffled copies of the series
would make at the threshold; most of the rest is lasting change of some kind (a new
roof, a cleared plot, a new road), see the README's SpaceNet 7 figures."""

DEFAULT_MIN_AREA_M2 = 50.0
"""Default minimum mapping unit in m²; the default is also at least
:data:`DEFAULT_MIN_PIXELS` pixels, so 500 m² at Sentinel-2's 10 m and 50 m² (a
small house) in sub-metre imagery."""
DEFAULT_MIN_PIXELS = 5
DEFAULT_METHOD = AUTO
DEFAULT_THRESHOLD_RULE = AUTO
DEFAULT_K = 6.5
DEFAULT_SMOOTH = 2.0
DEFAULT_EDGE = 0.5
SCORE_FLOOR = 3.0
"""Lowest threshold for the construction score (robust-σ units): noise alone seldom
reaches a geometric mean of 3 σ in both views."""
COREG_UPSAMPLE = 20
"""Phase-correlation upsampling in the chain: 1/20 px steps, 1.5x faster than 1/100."""
COREG_MAX_SHIFT_M = 60.0
"""Largest co-registration shift applied, in metres (at least :data:`COREG_MAX_SHIFT_MIN_PX`
pixels). Public imagery is registered far better: Sentinel-2 to about 12 m (95 %) before
its 2021 geometric refinement and 5 m since, Landsat Collection 2 to about 12 m. A
larger estimate is a false match (a scene that changed, or has little texture), or
images georeferenced apart: it is not applied, and the pair is flagged."""
COREG_MAX_SHIFT_MIN_PX = 3.0
"""Smallest cap of the co-registration shift, in pixels (30 m pixels: 90 m)."""
COREG_ORDER = 1
"""Interpolation order used to apply the co-registration shift (1 = bilinear: 3x faster
than cubic on 13 bands at equal benchmark F1)."""
COREG_WINDOW = 1024
"""Side of the central window the co-registration shift is estimated on (the whole image
when smaller), in memory and block by block alike."""


@dataclass(frozen=True)
class DetectOptions:
    """Options of the numeric chain (defaults chosen on the OSCD train cities).

    Attributes
    ----------
    method : str
        Change score name (see :data:`sitewatch.detect.methods.SCORERS`), or ``"auto"``
        (the default): chosen from the bands and pixel size of the input
        (:func:`sitewatch.detect.chain.resolve_options`).
    threshold_rule : {"auto", "precision", "kittler", "otsu", "chi2", "share", "model"}
        Rule that picks the threshold when ``threshold`` is None (``"share"``: the
        changed share IR-MAD estimates, see
        :func:`~sitewatch.detect.threshold.threshold_share`; ``"model"``: the
        ``learned`` method's own cutoff; ``"auto"``: ``precision`` for the
        construction score, ``model`` for ``learned``, ``kittler`` for any other).
    threshold : float or None
        Fixed threshold.
    k : float
        Robust-σ multiplier of the ``"precision"`` rule.
    chi2_p : float
        Quantile of the ``"chi2"`` rule.
    smooth : float
        Gaussian σ in pixels applied to the score (masked); 0 disables.
    min_area_m2 : float or None
        Minimum mapping unit; None = ``max(50 m², 5 px)`` (500 m² at 10 m).
    opening : int
        Radius in pixels of a morphological opening of the mask; 0 disables.
    edge : float
        Boundary rule: a pixel of a detected (smoothed) region is kept only where its
        own unsmoothed score exceeds ``edge`` × the threshold, so smoothing finds the
        regions but does not grow them; 0 keeps the smoothed outline.
    coregister : bool
        Estimate and apply a sub-pixel shift of the after image (never worse).
    normalize : bool
        IR-MAD radiometric normalisation of the after image (Canty & Nielsen 2008).
    weights : str or None
        Weights of the ``learned`` method (a JSON file written by
        ``scripts/train_learned.py``); None: the model shipped with sitewatch.
    """

    method: str = DEFAULT_METHOD
    threshold_rule: str = DEFAULT_THRESHOLD_RULE
    threshold: float | None = None
    k: float = DEFAULT_K
    chi2_p: float = 0.999
    smooth: float = DEFAULT_SMOOTH
    min_area_m2: float | None = None
    opening: int = 0
    edge: float = DEFAULT_EDGE
    coregister: bool = True
    normalize: bool = False
    weights: str | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS and self.method != AUTO:
            from sitewatch.detect.methods import SCORERS  # a scorer registered at run time

            if self.method not in SCORERS:
                raise ValueError(
                    f"unknown method {self.method!r}; choose {AUTO!r} or one of {sorted(SCORERS)}"
                )
        if self.threshold_rule not in THRESHOLD_RULES and self.threshold_rule != AUTO:
            raise ValueError(
                f"unknown threshold rule {self.threshold_rule!r}; choose one of {THRESHOLD_RULES}"
            )
        if self.threshold_rule == "model" and self.method != "learned":
            raise ValueError(
                "the 'model' threshold rule is the learned model's cutoff; "
                "use it with --method learned"
            )
        if self.weights is not None and self.method != "learned":
            raise ValueError("--weights are those of --method learned; add --method learned")
        if self.min_area_m2 is not None and self.min_area_m2 < 0:
            raise ValueError(f"min_area_m2 {self.min_area_m2} is negative")
        if self.smooth < 0 or self.opening < 0 or self.k <= 0 or not 0 < self.chi2_p < 1:
            raise ValueError("smooth and opening must be >= 0, k > 0 and 0 < chi2_p < 1")

    def min_pixels(self, pixel_area_m2: float) -> int:
        """Minimum mapping unit in pixels for a given pixel area."""
        mmu = DEFAULT_MIN_AREA_M2 if self.min_area_m2 is None else float(self.min_area_m2)
        floor = DEFAULT_MIN_PIXELS if self.min_area_m2 is None else 1
        return max(math.ceil(mmu / pixel_area_m2 - 1e-9), floor)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(self.__dict__)
