"""Change scoring, thresholds and clean-up (pure numpy/scipy/scikit-image)."""

from sitewatch.detect.cleanup import remove_small_regions
from sitewatch.detect.methods import SCORERS, score_change, score_cva, score_diff
from sitewatch.detect.threshold import Threshold, threshold_otsu, threshold_scores

__all__ = [
    "SCORERS",
    "Threshold",
    "remove_small_regions",
    "score_change",
    "score_cva",
    "score_diff",
    "threshold_otsu",
    "threshold_scores",
]
