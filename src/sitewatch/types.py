"""Type aliases shared across sitewatch."""

from __future__ import annotations

from typing import Literal

BBox = tuple[float, float, float, float]
"""(west, south, east, north) or (left, bottom, right, top) in a CRS's units."""

Method = Literal["construction", "cva", "diff", "ratio", "index", "irmad", "mad"]
"""Change-scoring methods (the keys of :data:`sitewatch.detect.methods.SCORERS`)."""

ThresholdRule = Literal["precision", "kittler", "otsu", "chi2"]
"""Rules that turn a score image into a change mask."""
