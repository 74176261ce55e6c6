"""``sitewatch timeline``: follow change through a dated series of images (AOI optional)."""

from __future__ import annotations

import argparse
from typing import Any

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
from sitewatch.cli.detect_cmd import progress_printer, scene_query
from sitewatch.detect.options import STEP_FDR, TIMELINE_MODELS
from sitewatch.run import TimelineJob, resolve_aoi, timeline

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
    p.add_argument(
        "--every",
        default="3M",
        help="step: 1M, 3M, 6M, 1Y ... (default 3M); optical scenes only: a radar series "
        "(--source s1) tests every scene of one orbit in the period",
    )
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
    p.add_argument(
        "--model",
        choices=TIMELINE_MODELS,
        default="auto",
        help="step: test one lasting step per pixel over the whole series, with a threshold "
        "from time-shuffled copies of it; pairs: compare every date with the first; auto "
        "(default): step for series of 12 dates or more",
    )
    p.add_argument(
        "--fdr",
        type=float,
        default=STEP_FDR,
        metavar="Q",
        help="step model: share of the flags that time-shuffled copies of the series may "
        f"make at the threshold (default {STEP_FDR}; higher finds more and fainter changes)",
    )
    add_scene_options(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--threshold", type=float, metavar="T", help="fixed score threshold (overrides the rule)"
    )
    add_detector_options(p)
    add_radar_options(p, pair=False)
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


def main(args: argparse.Namespace) -> int:
    """Run ``sitewatch timeline``: arguments → :class:`~sitewatch.run.TimelineJob` → print."""
    job = TimelineJob(
        out=args.out,
        aoi=resolve_aoi(args.aoi, args.aoi_file),
        images=tuple(args.images or ()),
        start=args.start,
        end=args.end,
        every=args.every,
        dates=args.dates,
        min_persistence=args.min_persistence,
        model=args.model,
        fdr=args.fdr,
        options=detector_options(args),
        scenes=scene_query(args),
        resolution=args.resolution,
        bands=args.bands,
        redact_paths=args.redact_paths,
        overwrite=args.overwrite,
        command=tuple(args.command_line) if args.command_line is not None else None,
        radar=radar_options(args),
    )
    run = timeline(job, progress=progress_printer(args))
    if args.source in RADAR_SOURCES:
        return print_radar(run, args, "timeline")
    result, tl, out = run.result, run.timeline, run.out
    info = result.diagnostics["timeline"]
    if args.json:
        emit_json(
            {
                "out": str(out),
                "dates": info["dates"],
                "n_transient": info["n_transient"],
                "n_flat": info.get("n_flat", 0),
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
            f"{info['n_transient']} transient and {info.get('n_flat', 0)} flat region(s) "
            "dropped (flat: lasting, but no new outline)"
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
