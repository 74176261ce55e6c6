"""Change scoring, thresholds and clean-up (pure numpy/scipy/scikit-image).

Names are imported on first use, so :mod:`sitewatch.detect.options` (used to build the
command line) does not pull in scipy and scikit-image.
"""

from sitewatch._lazy import lazy_names

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

_LAZY = {
    "remove_small_regions": "sitewatch.detect.cleanup",
    "SCORERS": "sitewatch.detect.methods",
    "score_change": "sitewatch.detect.methods",
    "score_cva": "sitewatch.detect.methods",
    "score_diff": "sitewatch.detect.methods",
    "Threshold": "sitewatch.detect.threshold",
    "threshold_otsu": "sitewatch.detect.threshold",
    "threshold_scores": "sitewatch.detect.threshold",
}


__getattr__, __dir__ = lazy_names("sitewatch.detect", _LAZY, globals())
