"""Options of the radar tests (light: no numpy), carried by the run job specs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from sitewatch.errors import InputError, arg

__all__ = ["DEFAULT_SCENES", "RADAR_SOURCES", "RadarOptions"]

RADAR_SOURCES = ("s1", "s2,s1")
"""``source`` values that involve Sentinel-1 (``"s2,s1"``: optical and radar, fused)."""
DEFAULT_SCENES = 4
"""Scenes averaged on each side of a radar pair."""


@dataclass(frozen=True)
class RadarOptions:
    """How Sentinel-1 scenes are tested (see :mod:`sitewatch.detect.sar`).

    Attributes
    ----------
    alpha : float
        Per-pixel false-alarm rate: the level of every test (0 < alpha < 1).
    enl : float, optional
        Equivalent number of looks of one scene (default: as the items declare, else 4.4).
    orbit : str, optional
        Pass direction and/or relative orbit to compare (``"ascending-127"``, ``"127"``,
        ``"descending"``); default: the geometry with most scenes.
    scenes : int
        Scenes averaged on each side of a pair.

    Examples
    --------
    >>> RadarOptions(alpha=1e-4).scenes
    4
    """

    alpha: float = 1e-3
    enl: float | None = None
    orbit: str | None = None
    scenes: int = DEFAULT_SCENES

    def __post_init__(self) -> None:
        if not (isinstance(self.alpha, int | float) and 0 < self.alpha < 1):
            raise InputError(f"{arg('alpha')} {self.alpha:g} must be between 0 and 1 (e.g. 1e-3)")
        if self.enl is not None and not (math.isfinite(self.enl) and self.enl > 0):
            raise InputError(f"{arg('enl')} {self.enl} must be a positive number of looks")
        if not (isinstance(self.scenes, int) and self.scenes >= 1):
            raise InputError(f"{arg('scenes')} {self.scenes} must be at least 1")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)
