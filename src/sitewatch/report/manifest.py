"""manifest.json: inputs with hashes, parameters, versions, timings — enough to re-run."""

from __future__ import annotations

import datetime as dt
import os
import platform
from functools import lru_cache
from importlib import metadata
from typing import Any

from sitewatch.aoi import AOI
from sitewatch.sources.local import LocalSource, file_sha256

__all__ = ["build_manifest", "package_versions", "redact_paths"]

_PACKAGES = ("sitewatch", "numpy", "scipy", "scikit-image", "rasterio", "shapely", "pyproj")


def package_versions() -> dict[str, str]:
    """Versions of Python, GDAL/PROJ and the packages a result depends on."""
    return dict(_package_versions())


@lru_cache(maxsize=1)
def _package_versions() -> dict[str, str]:
    import rasterio

    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["gdal"] = rasterio.__gdal_version__
    out["proj"] = rasterio.__proj_version__ if hasattr(rasterio, "__proj_version__") else "?"
    return out


def _aoi_entry(aoi: AOI | None) -> dict[str, Any] | None:
    if aoi is None:
        return None
    entry: dict[str, Any] = {
        "id": aoi.id,
        "name": aoi.name,
        "geometry_kind": aoi.geometry_kind,
        "confidence": aoi.confidence,
        "area_m2": round(aoi.area_m2, 1),
    }
    props = aoi.properties or {}
    entry["provenance"] = {
        k: props.get(k)
        for k in ("region", "geometry_note", "sources", "conflicts", "points", "events")
        if props.get(k)
    }
    if aoi.path is not None and aoi.path.is_file():
        entry["file"] = str(aoi.path)
        entry["sha256"] = file_sha256(aoi.path)
    return entry


def _network(prov: dict[str, Any]) -> dict[str, Any] | None:
    """Requests, bytes and cache use of remote sources (None for local files)."""
    stats: list[Any] = []
    caches: list[Any] = []
    for key in ("before", "after"):
        src = prov[key]["source"]
        for part in getattr(src, "parts", [src]):
            st, cache = getattr(part, "stats", None), getattr(part, "cache", None)
            if st is not None and all(st is not x for x in stats):
                stats.append(st)
            if cache is not None and all(cache is not x for x in caches):
                caches.append(cache)
    if not stats and not caches:
        return None
    from sitewatch.sources._http import NetStats

    total = NetStats()
    for st in stats:
        total.merge(st)
    return {
        "requests": total.total_requests(),
        "bytes": total.total_bytes(),
        "by_url": {
            url: {"requests": n, "bytes": total.bytes.get(url, 0)}
            for url, n in total.requests.items()
        },
        "cache_dir": str(caches[0].root) if caches else None,
        "cache_hits": sum(c.hits for c in caches),
        "cache_misses": sum(c.misses for c in caches),
        "cache_corrupt": sum(c.corrupt for c in caches),
    }


_PATH_KEYS = frozenset({"path", "file", "cache_dir", "out"})


def _is_url(text: str) -> bool:
    return "://" in text


def _name(text: str) -> str:
    return os.path.basename(os.path.normpath(os.path.expanduser(text))) or text


def _redact_arg(text: str) -> str:
    """A command-line word with any local path in it cut to its file name."""
    if _is_url(text):
        return text
    key, eq, value = text.partition("=")
    if eq and key.startswith("-"):
        return f"{key}={_redact_arg(value)}"
    if os.path.isabs(os.path.expanduser(text)) or os.path.exists(text) or os.sep in text:
        return _name(text)
    return text


def redact_paths(obj: Any, *, key: str | None = None) -> Any:
    """A copy of a manifest with every local path cut to its file or folder name.

    The file names and SHA-256 hashes stay, so a reader can still check the inputs;
    the folders (a user's name, their folder layout) go. URLs are kept.

    Examples
    --------
    >>> redact_paths({"path": "/home/ana/leaks/S2_before", "sha256": "ab",
    ...               "command": ["sitewatch", "detect", "--before", "/home/ana/b.tif"]})
    {'path': 'S2_before', 'sha256': 'ab', 'command': ['sitewatch', 'detect', '--before', 'b.tif']}
    """
    if isinstance(obj, dict):
        return {k: redact_paths(v, key=k) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        if key == "command":
            return [_redact_arg(str(v)) for v in obj]
        return [redact_paths(v, key=key) for v in obj]
    local = isinstance(obj, str) and not _is_url(obj)
    if local and (key in _PATH_KEYS or os.path.isabs(obj)):
        return _name(obj)
    return obj


def build_manifest(
    result: Any,
    *,
    outputs: dict[str, str],
    command: list[str] | None = None,
    redact: bool = False,
) -> dict[str, Any]:
    """Assemble the manifest of a :class:`~sitewatch.pipeline.ChangeResult`.

    Parameters
    ----------
    result : ChangeResult
    outputs : dict
        Output file name → sha256.
    command : list of str, optional
        The command line that produced the result (None from the Python API).
    redact : bool
        Keep file names and hashes but no folders (see :func:`redact_paths`).
    """
    prov = result.provenance
    inputs: dict[str, Any] = {}
    for key in ("before", "after"):
        src: LocalSource = prov[key]["source"]
        inputs[key] = src.describe()
    g = result.grid
    manifest = {
        "sitewatch_manifest": 1,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "inputs": inputs,
        "series": prov.get("series"),
        "aoi": _aoi_entry(prov.get("aoi")),
        "network": _network(prov),
        "parameters": prov["parameters"],
        "grid": {
            "crs": g.crs,
            "transform": list(g.transform)[:6],
            "width": g.width,
            "height": g.height,
            "pixel_area_m2": round(g.pixel_area_m2, 3),
        },
        "diagnostics": result.diagnostics,
        "versions": package_versions(),
        "timings_s": result.timings,
        "outputs": outputs,
        "paths_redacted": redact,
    }
    return redact_paths(manifest) if redact else manifest
