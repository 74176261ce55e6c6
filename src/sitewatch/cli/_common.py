"""Options and printing shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "AOI_FILE_HELP",
    "add_detector_options",
    "add_json",
    "add_redact_option",
    "detector_options",
    "emit_json",
    "positive_float",
    "summarise_result",
]


AOI_FILE_HELP = (
    "the polygon to watch: GeoJSON (any CRS), GeoPackage (FILE.gpkg or FILE.gpkg:LAYER) or "
    "Shapefile (.shp, or a .zip of one); several polygons are merged"
)


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


def add_redact_option(p: argparse.ArgumentParser) -> None:
    """``--redact-paths`` for commands that write a run folder."""
    p.add_argument(
        "--redact-paths",
        action="store_true",
        dest="redact_paths",
        help="record input files by name and SHA-256 only, without their folders, in "
        "manifest.json and report.html (for sharing a run)",
    )


def add_cache_options(p: argparse.ArgumentParser) -> None:
    """``--cache DIR`` and ``--no-cache`` for commands that read remote imagery."""
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="cache folder for remote reads (default: $SITEWATCH_CACHE or ~/.cache/sitewatch)",
    )
    p.add_argument(
        "--no-cache",
        dest="no_cache",
        action="store_true",
        help="read everything from the source; store nothing",
    )


def add_service_options(p: argparse.ArgumentParser) -> None:
    """``--stac-url`` and ``--requester-pays``: which service a search asks, and who pays."""
    p.add_argument(
        "--stac-url",
        metavar="SERVICE|URL",
        dest="stac_url",
        help="where scenes are searched: earth-search (Earth Search, the default for s2), "
        "planetary-computer (Microsoft Planetary Computer, the default for landsat: "
        "anonymous, URLs signed for you), or a STAC API URL "
        "(default: $SITEWATCH_STAC_URL, else as said)",
    )
    p.add_argument(
        "--requester-pays",
        action="store_true",
        dest="requester_pays",
        help="read assets in requester-pays S3 buckets (Earth Search Landsat) with your "
        "AWS credentials; the reads are billed to your AWS account",
    )


def add_scene_options(p: argparse.ArgumentParser) -> None:
    """How dates become scenes (``detect``, ``timeline``): collection, API, composites, cache."""
    p.add_argument(
        "--source",
        default="s2",
        choices=("s2", "landsat", "s1", "s2,s1"),
        help="collection searched for dates (default: s2); s1 = Sentinel-1 RTC radar "
        "(Planetary Computer, needs PC_SDK_SUBSCRIPTION_KEY); s2,s1 = both (timeline)",
    )
    add_service_options(p)
    p.add_argument(
        "--max-cloud",
        type=float,
        metavar="PCT",
        dest="max_cloud",
        help="ignore scenes whose scene-wide cloud cover exceeds PCT",
    )
    p.add_argument(
        "--composite",
        action="store_true",
        help="for date windows: per-pixel median of the clear pixels of the clearest "
        "scenes (up to --composite-max) instead of the single clearest scene",
    )
    p.add_argument(
        "--composite-max",
        type=int,
        default=5,
        metavar="N",
        dest="composite_max",
        help="most scenes in a composite (default 5)",
    )
    add_cache_options(p)


def cache_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~sitewatch.sources.cache.Cache` the options ask for (or None)."""
    from sitewatch.sources.cache import open_cache

    return open_cache(args.cache, enabled=not args.no_cache)


def emit_json(obj: Any) -> None:
    """Print a JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def _latlon(lon: float, lat: float) -> str:
    return f"{abs(lat):.5f}°{'N' if lat >= 0 else 'S'} {abs(lon):.5f}°{'E' if lon >= 0 else 'W'}"


def _coreg_line(info: dict[str, Any] | None) -> str:
    if not info:
        return ""
    if info.get("flagged"):
        return f"  WARNING co-registration: {info.get('note')} (residual > 0.5 px: check edges)"
    return f"  co-registration: {info.get('note')}"


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
        f"sitewatch detect: {where}, {dates}, method {_method_name(prov, d)}",
        f"  grid {result.grid.width}×{result.grid.height} px of "
        f"{result.grid.pixel_area_m2:.1f} m² ({result.grid.crs or 'no CRS: pixel coordinates'})"
        f", {d['valid_fraction']:.1%} observed in both images",
        f"  grid: {d['grid_note']}" if d.get("grid_note") else "",
        _coreg_line(d.get("coregistration")),
        f"  threshold {d['threshold']['value']:.3f} ({d['threshold']['why']})",
        f"  {d['n_polygons']} change polygon{'s' if d['n_polygons'] != 1 else ''}, "
        f"{d['changed_area_m2']:,.0f} m² in total (regions under {d['min_area_m2']:,.0f} m² "
        f"dropped: {d['regions_removed_below_mmu']})",
    ]
    lines = [ln for ln in lines if ln]
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
    files = sorted(p.name + ("/" if p.is_dir() else "") for p in Path(out).iterdir())
    lines.append(f"  took {result.timings['total']:.2f} s; wrote {out}/ ({', '.join(files)})")
    return "\n".join(lines)


def _method_name(prov: dict[str, Any], diagnostics: dict[str, Any]) -> str:
    """``irmad`` / ``construction (auto)``: the method run, and whether it was chosen."""
    if diagnostics.get("timeline_model") == "step":
        return "step model (one lasting step per pixel over the series)"
    from sitewatch.detect.chain import method_run

    method = str(prov["parameters"]["method"])
    run = method_run(method, diagnostics)
    return f"{run} ({method})" if method == "auto" and run != method else method


def add_detector_options(p: argparse.ArgumentParser, *, with_method: bool = True) -> None:
    """Add the options of the numeric chain (shared by ``detect`` and ``bench``)."""
    from sitewatch.detect.options import AUTO, METHODS, THRESHOLD_RULES, DetectOptions

    d = DetectOptions()
    if with_method:
        p.add_argument(
            "--method",
            default=d.method,
            choices=[AUTO, *sorted(METHODS)],
            help=f"change score (default: {d.method}: the construction score for Sentinel-2-like "
            "images with SWIR at 5-20 m pixels, IR-MAD otherwise; the manifest says which)",
        )
    p.add_argument(
        "--threshold-rule",
        default=d.threshold_rule,
        choices=[AUTO, *THRESHOLD_RULES],
        dest="threshold_rule",
        help=f"how the threshold is chosen (default: {d.threshold_rule}: precision for the "
        "construction score, the model's cutoff for learned, kittler for the others)",
    )
    p.add_argument(
        "--k",
        type=positive_float,
        default=d.k,
        metavar="K",
        help=f"robust-σ multiplier of the precision rule (default: {d.k})",
    )
    p.add_argument(
        "--chi2-p",
        type=float,
        default=d.chi2_p,
        dest="chi2_p",
        metavar="P",
        help=f"quantile of the chi2 rule (default: {d.chi2_p})",
    )
    p.add_argument(
        "--smooth",
        type=non_negative_float,
        default=d.smooth,
        metavar="PX",
        help=f"Gaussian σ in pixels applied to the score (default: {d.smooth})",
    )
    p.add_argument(
        "--opening",
        type=int,
        default=d.opening,
        metavar="PX",
        help="radius of a morphological opening of the mask (default: off)",
    )
    p.add_argument(
        "--no-coregister",
        action="store_false",
        dest="coregister",
        help="do not estimate and apply a sub-pixel shift of the after image",
    )
    p.add_argument(
        "--normalize",
        action="store_true",
        help="IR-MAD radiometric normalisation of the after image",
    )
    p.add_argument(
        "--weights",
        metavar="JSON",
        help="weights of --method learned (default: the model shipped with sitewatch; "
        "scripts/train_learned.py writes one)",
    )
    p.add_argument(
        "--min-area",
        type=non_negative_float,
        metavar="M2",
        dest="min_area",
        help="minimum mapping unit in m² (default: max(50 m², 5 px): 500 m² at 10 m)",
    )


def detector_options(args: argparse.Namespace, *, method: str | None = None) -> Any:
    """Build :class:`~sitewatch.detect.run.DetectOptions` from parsed arguments."""
    from sitewatch.detect.options import DetectOptions
    from sitewatch.errors import InputError

    try:
        opts = DetectOptions(
            method=method or getattr(args, "method", None) or DetectOptions().method,
            threshold_rule=args.threshold_rule,
            threshold=getattr(args, "threshold", None),
            k=args.k,
            chi2_p=args.chi2_p,
            smooth=args.smooth,
            opening=args.opening,
            coregister=args.coregister,
            normalize=args.normalize,
            min_area_m2=args.min_area,
            weights=getattr(args, "weights", None),
        )
    except ValueError as err:
        raise InputError(str(err)) from err
    if opts.weights is not None:  # a bad file stops the run before any image is read
        from sitewatch.detect.learned import load_model

        load_model(opts.weights)
    return opts
