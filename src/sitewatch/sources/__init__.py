"""Readers that turn imagery sources into Scenes on a Grid."""

from sitewatch.sources.local import LocalSource, open_local, read_scene

__all__ = ["LocalSource", "open_local", "read_scene"]
