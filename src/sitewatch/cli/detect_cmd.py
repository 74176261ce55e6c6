"""``sitewatch detect``: change between two local images, optionally inside an AOI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sitewatch.aoi import AOI, load_aoi, load_aoi_file
from sitewatch.cli._common import (
    add_detector_options,
    add_json,
    detector_options,
    emit_json,
    positive_float,
    summarise_result,
)
from sitewatch.detect.run import DetectOptions
from sitewatch.errors import InputError
from sitewatch.pipeline import ChangeResult, detect_change
from sitewatch.report import check_output_dir, write_result

__all__ = ["register", "run_detection"]


def register(sub: Any) -> None:
    """Add the ``detect`` subcommand."""
    p = sub.add_parser(
        "detect",
        help="flag change between two images (files or band folders)",
        description="Flag change between a before and an after image. Each is a raster "
        "file (GeoTIFF/COG, any band count) or a folder of one-file-per-band rasters "
        "(e.g. Sentinel-2 *_B02.tif ...). With an AOI the images are resampled onto the "
        "AOI's UTM grid; without one, onto the part of the before grid both cover.",
    )
    p.add_argument(
        "aoi",
        nargs="?",
        metavar="AOI_ID",
        help="catalog id (see 'sitewatch aoi list') or a .geojson path",
    )
    p.add_argument("--aoi-file", metavar="FILE", help="GeoJSON polygon to analyse")
    p.add_argument("--before", required=True, metavar="PATH", help="earlier image")
    p.add_argument("--after", required=True, metavar="PATH", help="later image")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--threshold", type=float, metavar="T", help="fixed score threshold (overrides the rule)"
    )
    add_detector_options(p)
    p.add_argument(
        "--resolution",
        type=positive_float,
        metavar="M",
        help="AOI grid pixel size in metres (default: native)",
    )
    p.add_argument(
        "--pixel-size",
        type=positive_float,
        metavar="M",
        dest="pixel_size",
        help="ground pixel size for images without CRS (output in pixel coords)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    add_json(p)
    p.set_defaults(func=main)


def resolve_aoi(ref: str | None, aoi_file: str | None) -> AOI | None:
    """The AOI named by a positional id/path or ``--aoi-file`` (not both)."""
    if ref and aoi_file:
        raise InputError("give either AOI_ID or --aoi-file, not both")
    if aoi_file:
        return load_aoi_file(aoi_file)
    return load_aoi(ref) if ref else None


def run_detection(
    before: str,
    after: str,
    out: str,
    *,
    aoi: AOI | None,
    options: DetectOptions,
    overwrite: bool,
    resolution: float | None = None,
    pixel_size: float | None = None,
    command: list[str] | None = None,
) -> tuple[ChangeResult, Path]:
    """Detect and write; shared by ``detect`` and ``demo``."""
    check_output_dir(out, overwrite=overwrite)
    result = detect_change(
        before, after, aoi=aoi, options=options, resolution=resolution, pixel_size=pixel_size
    )
    written = write_result(
        result,
        out,
        overwrite=overwrite,
        command=command if command is not None else ["sitewatch", *sys.argv[1:]],
    )
    return result, written


def report(result: ChangeResult, out: Path, args: argparse.Namespace) -> None:
    """Print the summary (text or JSON) unless ``--quiet``."""
    if args.json:
        emit_json(
            {
                "out": str(out),
                "files": sorted(p.name for p in out.iterdir()),
                "diagnostics": result.diagnostics,
                "timings_s": result.timings,
                "changes": [f["properties"] for f in result.features],
            }
        )
    elif not args.quiet:
        print(summarise_result(result, out))


def main(args: argparse.Namespace) -> int:
    """Run ``sitewatch detect``."""
    aoi = resolve_aoi(args.aoi, args.aoi_file)
    result, out = run_detection(
        args.before,
        args.after,
        args.out,
        aoi=aoi,
        options=detector_options(args),
        overwrite=args.overwrite,
        resolution=args.resolution,
        pixel_size=args.pixel_size,
    )
    report(result, out, args)
    return 0
