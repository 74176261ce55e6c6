"""``sitewatch demo``: the whole chain on the bundled real Sentinel-2 sample, offline."""

from __future__ import annotations

import argparse
from typing import Any

from sitewatch.cli._common import add_json, add_redact_option
from sitewatch.cli.detect_cmd import report
from sitewatch.data import demo_paths
from sitewatch.run import DetectJob, detect

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``demo`` subcommand."""
    p = sub.add_parser(
        "demo",
        help="run detection on the bundled Sentinel-2 sample (offline, seconds)",
        description="Detect new construction in a small real Sentinel-2 pair bundled with "
        "sitewatch (cut from the OSCD dataset; see its SOURCE.md) and write the same outputs "
        "as 'sitewatch detect'.",
    )
    p.add_argument(
        "--out",
        default="sitewatch-demo",
        metavar="DIR",
        help="output folder (default: ./sitewatch-demo; a previous demo output there is replaced)",
    )
    add_redact_option(p)
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    add_json(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run ``sitewatch demo``."""
    from sitewatch.aoi import load_aoi_file
    from sitewatch.report.output import is_sitewatch_run

    paths = demo_paths()
    run = detect(
        DetectJob(
            before=str(paths["before"]),
            after=str(paths["after"]),
            out=args.out,
            aoi=load_aoi_file(paths["aoi"]),
            overwrite=is_sitewatch_run(args.out),
            command=("sitewatch", "demo", "--out", str(args.out)),
            redact_paths=args.redact_paths,
        )
    )
    out = run.out
    report(run.result, out, args)
    if not args.json and not args.quiet:
        print(
            f"\nOpen {out / 'report.html'} in a browser (works offline): the changes, "
            "before/after images and chips, method and caveats.\n"
            f"GIS: {out / 'changes.gpkg'} (or .geojson), score.tif, mask.tif; spreadsheet: "
            "changes.csv; Google Earth: changes.kml; "
            f"{out / 'manifest.json'} records the inputs, hashes and parameters.\n"
            f"Data: {paths['source']}"
        )
    return 0
