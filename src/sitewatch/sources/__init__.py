"""Readers that turn imagery sources into Scenes on a Grid (names imported on first use)."""

from importlib import import_module
from typing import Any

__all__ = ["LocalSource", "open_local", "read_scene"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'sitewatch.sources' has no attribute {name!r}")
    value = getattr(import_module("sitewatch.sources.local"), name)
    globals()[name] = value
    return value
