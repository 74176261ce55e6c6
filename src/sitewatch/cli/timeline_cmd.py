"""``sitewatch timeline``: follow change through a dated series of images (AOI optional)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sitewatch.cli._common import (
    AOI_FILE_HELP,
    add_detector_options,
    add_json,
    add_redact_option,
    add_scene_options,
    cache_from_args,
    detector_options,
    emit_json,
    positive_float,
    summarise_result,
)
from sitewatch.cli.detect_cmd import resolve_aoi
from sitewatch.errors import DataError, InputError
from sitewatch.report import check_output_dir, input_paths, write_result

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``timeline`` subcommand."""
    p = sub.add_parser(
        "timeline",
        help="follow change through a series of dates: first seen, persistence, growth",
        description="Take the clearest scene over the AOI in every step (--every) of a "
        "period (or the given --images, put in date order), compare each with the first, "
        "and follow every change region through the series: the date it was first seen, "
        "the last clear date before, its persistence and growth. Regions that do not "
        "persist (missed clouds, crops, ships) are dropped and counted. Local images are "
        "dated by their file names (2018_01, 2018-01-05, 20180105, 2018-01-05T10:30) or "
        "date tags, or by --dates; without an AOI, --images are analysed where they all "
        "overlap. Writes the detect outputs for the kept regions plus timeline.csv, "
        "timeline.json and timeline.png.",
    )
    p.add_argument(
        "aoi",
        nargs="?",
        metavar="AOI_ID",
        help="catalog id or .geojson path (optional with --images: their overlap)",
    )
    p.add_argument("--aoi-file", metavar="FILE", help=AOI_FILE_HELP)
    p.add_argument("--from", dest="start", metavar="DATE", help="first date (YYYY-MM[-DD])")
    p.add_argument("--to", dest="end", metavar="DATE", help="last date (YYYY-MM[-DD])")
    p.add_argument("--every", default="3M", help="step: 1M, 3M, 6M, 1Y ... (default 3M)")
    p.add_argument(
        "--images",
        nargs="+",
        metavar="PATH",
        help="local images, band folders or downloaded products (.SAFE, .zip, Landsat .tar) "
        "instead of a STAC search; put in date order "
        "when every one is dated, else kept oldest first as given",
    )
    p.add_argument(
        "--dates",
        metavar="D1,D2,...",
        help="acquisition dates of the --images, one per image in the order given "
        "(YYYY-MM-DD, or YYYY-MM for a monthly mosaic), replacing the dates their files give",
    )
    p.add_argument(
        "--min-persistence",
        type=float,
        default=0.5,
        dest="min_persistence",
        metavar="F",
        help="drop regions flagged on less than this share of the later clear dates (default 0.5)",
    )
    add_scene_options(p)
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
        "--bands",
        metavar="NAMES",
        help="comma-separated names of the bands of every --images image, in file order "
        "(a band folder: its files sorted by name), e.g. blue,green,red,nir; for images "
        "whose file names or band descriptions do not say",
    )
    add_redact_option(p)
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    add_json(p)
    p.set_defaults(func=main)


def _stac_series(aoi: Any, args: argparse.Namespace, cache: Any, stats: Any) -> list[Any]:
    from sitewatch.cli.detect_cmd import resolve_image
    from sitewatch.sources.stac import parse_period
    from sitewatch.timeline import time_steps

    if not (args.start and args.end):
        raise InputError("give --from and --to (or --images PATH ...)")
    start, end = parse_period(args.start, args.end)
    time_steps(start, end, args.every)  # a bad --every fails before any search
    sources = []
    for a, b in time_steps(start, end, args.every):
        try:
            sources.append(
                resolve_image(f"{a}/{b}", aoi, args, f"{a}/{b}", cache=cache, stats=stats)
            )
        except DataError as err:  # no (clear) scene in this step: a gap, not a failure
            if not (args.quiet or args.json):
                print(f"{a}/{b}: skipped ({err})", file=sys.stderr)
    if len(sources) < 2:
        raise DataError(
            f"only {len(sources)} step(s) of {args.every} between {start} and {end} have a "
            "clear scene over the AOI; widen the period or use a longer --every"
        )
    return sources


def main(args: argparse.Namespace) -> int:
    """Run ``sitewatch timeline``."""
    from sitewatch.series import detect_series, timeline_files
    from sitewatch.sources._http import NetStats

    aoi = resolve_aoi(args.aoi, args.aoi_file)
    if aoi is None and not args.images:
        raise InputError(
            "name an AOI: sitewatch timeline AOI_ID (or --aoi-file FILE), or give local "
            "--images PATH ... (analysed where they all overlap)"
        )
    if not 0 < args.min_persistence <= 1:
        raise InputError("--min-persistence must be in (0, 1]")
    check_output_dir(
        args.out,
        overwrite=args.overwrite,
        inputs=input_paths(*(args.images or ()), aoi.path if aoi is not None else None),
    )
    cache, stats = cache_from_args(args), NetStats()
    if args.images:
        if args.start or args.end:
            raise InputError("give either --images or --from/--to, not both")
        sources: list[Any] = list(args.images)
        if args.bands is not None:
            from sitewatch.sources.local import open_local

            sources = [open_local(path, bands=args.bands) for path in sources]
    elif args.bands is not None:
        raise InputError("--bands names the bands of local --images; STAC scenes name theirs")
    elif args.dates is not None:
        raise InputError("--dates dates local --images; STAC scenes are dated by their catalog")
    else:
        sources = _stac_series(aoi, args, cache, stats)
    result, tl = detect_series(
        sources,
        aoi=aoi,
        options=detector_options(args),
        resolution=args.resolution,
        min_persistence=args.min_persistence,
        dates=args.dates,
    )
    out = write_result(
        result,
        args.out,
        overwrite=args.overwrite,
        command=args.command_line,
        extra=lambda tmp: timeline_files(result, tl, tmp),
        redact_paths=args.redact_paths,
    )
    info = result.diagnostics["timeline"]
    if args.json:
        emit_json(
            {
                "out": str(out),
                "dates": info["dates"],
                "n_transient": info["n_transient"],
                "regions": [r.as_dict() for r in tl.regions],
                "changes": [f["properties"] for f in result.features],
            }
        )
    elif not args.quiet:
        n = len(info["dates"])
        print(
            summarise_result(result, out)
            .replace("sitewatch detect:", "sitewatch timeline:")
            .replace("the overlap of the two images", f"the overlap of the {n} images")
        )
        print(
            f"  {n} dates {info['dates'][0]} … {info['dates'][-1]}; "
            f"{info['n_persistent']} persistent, {info['n_unconfirmed']} unconfirmed, "
            f"{info['n_transient']} transient region(s) dropped"
        )
        if info.get("sorted_by_date"):
            print("  images put in date order")
        if info.get("undated"):
            shown = ", ".join(info["undated"][:3]) + (" ..." if len(info["undated"]) > 3 else "")
            print(
                f"  {len(info['undated'])} image(s) without a date in their names or tags "
                f"are labelled by file name ({shown}); give --dates D1,D2,... to date them"
            )
        for f in result.features[:5]:
            p = f["properties"]
            print(
                f"    {p['id']}: first seen {p['first_seen']} (clear before: "
                f"{p['last_clear_before'] or '–'}), persistence {p['persistence']}, "
                f"growth {p['growth_m2']:,.0f} m², {p['status']}"
            )
    return 0
