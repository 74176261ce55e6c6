"""Type aliases shared across sitewatch."""

from __future__ import annotations

from typing import Literal

BBox = tuple[float, float, float, float]
"""(west, south, east, north) or (left, bottom, right, top) in a CRS's units."""

Method = Literal["cva", "diff"]
"""Change-scoring methods available from :func:`sitewatch.detect_change`."""

ThresholdRule = Literal["otsu"]
"""Rules that turn a score image into a change mask."""

METHODS: tuple[str, ...] = ("cva", "diff")
THRESHOLDS: tuple[str, ...] = ("otsu",)
