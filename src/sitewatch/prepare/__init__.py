"""Preparing image pairs for change detection (pure numpy/scipy).

Names are imported on first use (PEP 562): reading an image's cloud mask
(:mod:`sitewatch.prepare.masks`) does not pay for scipy's filters and FFTs.
"""

from sitewatch._lazy import lazy_names

_LAZY = {
    "BandFit": "sitewatch.prepare.normalize",
    "CoregResult": "sitewatch.prepare.coregister",
    "NormalizeResult": "sitewatch.prepare.normalize",
    "apply_shift": "sitewatch.prepare.coregister",
    "coregister": "sitewatch.prepare.coregister",
    "normalize_irmad": "sitewatch.prepare.normalize",
    "orthogonal_regression": "sitewatch.prepare.normalize",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
