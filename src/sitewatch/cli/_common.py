"""Options and printing shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_json", "emit_json", "positive_float", "summarise_result"]


def positive_float(text: str) -> float:
    """Argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def non_negative_float(text: str) -> float:
    """Argparse type: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def add_json(p: argparse.ArgumentParser) -> None:
    """Add ``--json`` (machine-readable stdout)."""
    p.add_argument("--json", action="store_true", help="print JSON on stdout instead of text")


def emit_json(obj: Any) -> None:
    """Print a JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def _latlon(lon: float, lat: float) -> str:
    return f"{abs(lat):.5f}°{'N' if lat >= 0 else 'S'} {abs(lon):.5f}°{'E' if lon >= 0 else 'W'}"


def summarise_result(result: Any, out: Path, *, top: int = 5) -> str:
    """Human summary of a detection: what changed, where, how big, where to look."""
    d = result.diagnostics
    prov = result.provenance
    aoi = prov.get("aoi")
    b, a = prov["before"]["acquired"], prov["after"]["acquired"]
    dates = f"{b or '?'} → {a or '?'}" if (a or b) else "dates unknown"
    where = f"{aoi.name} ({aoi.id})" if aoi is not None else "the overlap of the two images"
    georef = result.grid.crs is not None
    lines = [
        f"sitewatch detect: {where}, {dates}, method {prov['parameters']['method']}",
        f"  grid {result.grid.width}×{result.grid.height} px of "
        f"{result.grid.pixel_area_m2:.1f} m² ({result.grid.crs or 'no CRS: pixel coordinates'})"
        f", {d['valid_fraction']:.1%} observed in both images",
        f"  threshold {d['threshold']['value']:.3f} ({d['threshold']['why']})",
        f"  {d['n_polygons']} change polygon{'s' if d['n_polygons'] != 1 else ''}, "
        f"{d['changed_area_m2']:,.0f} m² in total (regions under {d['min_area_m2']:,.0f} m² "
        f"dropped: {d['regions_removed_below_mmu']})",
    ]
    for f in result.features[:top]:
        p = f["properties"]
        at = (
            _latlon(*p["centroid"])
            if georef
            else f"col {p['centroid'][0]:.0f}, row {p['centroid'][1]:.0f}"
        )
        lines.append(
            f"    {p['id']}  {p['area_m2']:>10,.0f} m²  score mean {p['score_mean']:.2f}"
            f" max {p['score_max']:.2f}  at {at}"
        )
    if len(result.features) > top:
        lines.append(f"    … {len(result.features) - top} more in changes.geojson")
    lines.append(
        f"  took {result.timings['total']:.2f} s; wrote {out}/ "
        "(changes.geojson, score.tif, mask.tif, manifest.json)"
    )
    return "\n".join(lines)
