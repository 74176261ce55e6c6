"""``sitewatch detect``: change between two local images, optionally inside an AOI."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sitewatch.cli._common import (
    AOI_FILE_HELP,
    add_detector_options,
    add_json,
    add_redact_option,
    add_scene_options,
    detector_options,
    emit_json,
    positive_float,
    summarise_result,
)
from sitewatch.cli._radar import RADAR_SOURCES, add_radar_options, print_radar, radar_options
from sitewatch.run import (
    DetectJob,
    Progress,
    SceneQuery,
    detect,
    resolve_aoi,
    stderr_progress,
)

if TYPE_CHECKING:
    from sitewatch.pipeline import ChangeResult

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``detect`` subcommand."""
    p = sub.add_parser(
        "detect",
        help="flag change between two images (files or band folders)",
        description="Flag change between a before and an after image. Each is a raster "
        "file (GeoTIFF/COG, any band count) or a folder of one-file-per-band rasters "
        "(e.g. Sentinel-2 *_B02.tif ...), or a downloaded product: a Sentinel-2 .SAFE folder, "
        "its .zip or MTD_MSIL2A.xml, a Landsat Collection 2 Level-2 .tar or folder. With an "
        "AOI the images are resampled onto the AOI's UTM grid; without one, onto the part of "
        "the before grid both cover.",
    )
    p.add_argument(
        "aoi",
        nargs="?",
        metavar="AOI_ID",
        help="catalog id (see 'sitewatch aoi list') or a .geojson path",
    )
    p.add_argument("--aoi-file", metavar="FILE", help=AOI_FILE_HELP)
    p.add_argument(
        "--before",
        required=True,
        metavar="PATH|DATE",
        help="earlier image: a file or band folder, a Sentinel-2 .SAFE folder or .zip "
        "(or its MTD_MSIL2A.xml), a Landsat C2 L2 .tar or folder, or a date / month / "
        "START/END window to search (needs an AOI)",
    )
    p.add_argument("--after", required=True, metavar="PATH|DATE", help="later image, likewise")
    add_scene_options(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--threshold", type=float, metavar="T", help="fixed score threshold (overrides the rule)"
    )
    add_detector_options(p)
    add_radar_options(p, pair=True)
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
    p.add_argument(
        "--before-date",
        metavar="YYYY-MM-DD",
        dest="before_date",
        help="acquisition date of a local before image whose files do not say it",
    )
    p.add_argument(
        "--after-date",
        metavar="YYYY-MM-DD",
        dest="after_date",
        help="acquisition date of a local after image, likewise",
    )
    p.add_argument(
        "--bands",
        metavar="NAMES",
        help="comma-separated names of the bands of both images, in file order (a band "
        "folder: its files sorted by name), e.g. blue,green,red,nir; for images whose file "
        "names or band descriptions do not say (B02..., SR_B4..., red/green/blue/nir... are "
        "recognised)",
    )
    p.add_argument(
        "--max-memory",
        default=DEFAULT_MAX_MEMORY,
        metavar="SIZE",
        dest="max_memory",
        help="memory budget, e.g. 800MB or 4GB (default %(default)s); larger rasters are "
        "read and written block by block (every method)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="threads of the detection engine (default: every core, or SITEWATCH_THREADS); "
        "results do not depend on it",
    )
    p.add_argument(
        "--no-report",
        dest="report",
        action="store_false",
        help="skip quicklooks, chips and report.html (polygons, rasters and manifest only; "
        "'sitewatch report DIR' adds them later)",
    )
    add_redact_option(p)
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    add_json(p)
    p.set_defaults(func=main)


DEFAULT_MAX_MEMORY = "2GB"


def scene_query(args: argparse.Namespace) -> SceneQuery:
    """The :class:`~sitewatch.run.SceneQuery` of the scene options (``add_scene_options``)."""
    return SceneQuery(
        source=args.source,
        stac_url=args.stac_url,
        requester_pays=args.requester_pays,
        max_cloud=args.max_cloud,
        composite=args.composite,
        composite_max=args.composite_max,
        cache=False if args.no_cache else args.cache,
    )


def progress_printer(args: argparse.Namespace) -> Progress | None:
    """Progress lines on stderr, unless ``--quiet`` or ``--json``."""
    return None if (args.quiet or args.json) else stderr_progress


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
    """Run ``sitewatch detect``: arguments → :class:`~sitewatch.run.DetectJob` → print."""
    from sitewatch._units import parse_size

    job = DetectJob(
        before=args.before,
        after=args.after,
        out=args.out,
        aoi=resolve_aoi(args.aoi, args.aoi_file),
        options=detector_options(args),
        scenes=scene_query(args),
        resolution=args.resolution,
        pixel_size=args.pixel_size,
        bands=args.bands,
        before_date=args.before_date,
        after_date=args.after_date,
        max_memory=parse_size(args.max_memory),
        threads=args.threads,
        report=args.report,
        redact_paths=args.redact_paths,
        overwrite=args.overwrite,
        command=tuple(args.command_line) if args.command_line is not None else None,
        radar=radar_options(args),
    )
    run = detect(job, progress=progress_printer(args))
    if args.source in RADAR_SOURCES:
        return print_radar(run, args, "detect")
    report(run.result, run.out, args)
    return 0
