"""manifest.json: inputs with hashes, parameters, versions, timings — enough to re-run."""

from __future__ import annotations

import datetime as dt
import platform
import sys
from importlib import metadata
from typing import Any

from sitewatch.aoi import AOI
from sitewatch.sources.local import LocalSource, file_sha256

__all__ = ["build_manifest", "package_versions"]

_PACKAGES = ("sitewatch", "numpy", "scipy", "scikit-image", "rasterio", "shapely", "pyproj")


def package_versions() -> dict[str, str]:
    """Versions of Python, GDAL/PROJ and the packages a result depends on."""
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


def build_manifest(
    result: Any, *, outputs: dict[str, str], command: list[str] | None = None
) -> dict[str, Any]:
    """Assemble the manifest of a :class:`~sitewatch.pipeline.ChangeResult`.

    Parameters
    ----------
    result : ChangeResult
    outputs : dict
        Output file name → sha256.
    command : list of str, optional
        The command line that produced the result.
    """
    prov = result.provenance
    inputs: dict[str, Any] = {}
    for key in ("before", "after"):
        src: LocalSource = prov[key]["source"]
        inputs[key] = src.describe()
    g = result.grid
    return {
        "sitewatch_manifest": 1,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command if command is not None else sys.argv,
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
    }
