"""Preparing image pairs for change detection (pure numpy/scipy)."""

from sitewatch.prepare.coregister import CoregResult, apply_shift, coregister
from sitewatch.prepare.normalize import (
    BandFit,
    NormalizeResult,
    normalize_irmad,
    orthogonal_regression,
)

__all__ = [
    "BandFit",
    "CoregResult",
    "NormalizeResult",
    "apply_shift",
    "coregister",
    "normalize_irmad",
    "orthogonal_regression",
]
