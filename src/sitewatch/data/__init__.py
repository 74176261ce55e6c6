"""Data bundled with sitewatch: the demo sample (see demo/SOURCE.md)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["demo_paths"]


def demo_paths() -> dict[str, Path]:
    """Paths of the bundled sample: ``before``, ``after`` band folders, ``aoi``, ``source``."""
    root = Path(str(resources.files("sitewatch.data"))) / "demo"
    return {
        "before": root / "before",
        "after": root / "after",
        "aoi": root / "aoi.geojson",
        "source": root / "SOURCE.md",
    }
