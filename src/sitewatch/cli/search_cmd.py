"""``sitewatch search``: scenes over an AOI, ranked by AOI-local clear sky."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sitewatch.cli._common import (
    AOI_FILE_HELP,
    add_cache_options,
    add_json,
    add_service_options,
    cache_from_args,
    emit_json,
)
from sitewatch.cli.detect_cmd import resolve_aoi
from sitewatch.errors import InputError

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``search`` subcommand."""
    p = sub.add_parser(
        "search",
        help="list Sentinel-2 / Landsat scenes over an AOI, clearest over the AOI first",
        description="Search a STAC API for scenes over an AOI and rank them by the share of "
        "AOI pixels their cloud mask (Sentinel-2 SCL, Landsat QA_PIXEL) calls clear, read "
        "over the AOI window only. The scene-wide cloud cover is shown for comparison.",
    )
    p.add_argument("aoi", nargs="?", metavar="AOI_ID", help="catalog id or .geojson path")
    p.add_argument("--aoi-file", metavar="FILE", help=AOI_FILE_HELP)
    p.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="DATE",
        help="first date (YYYY-MM-DD or YYYY-MM)",
    )
    p.add_argument(
        "--to", dest="end", required=True, metavar="DATE", help="last date (YYYY-MM-DD or YYYY-MM)"
    )
    p.add_argument(
        "--source",
        default="s2",
        choices=("landsat", "s1", "s2"),
        help="s2 = Sentinel-2 L2A (default), landsat = Landsat C2 L2, s1 = Sentinel-1 RTC "
        "radar (Planetary Computer; needs PC_SDK_SUBSCRIPTION_KEY), listed with its orbit",
    )
    p.add_argument(
        "--max-cloud",
        type=float,
        metavar="PCT",
        dest="max_cloud",
        help="drop scenes whose scene-wide cloud cover exceeds PCT",
    )
    add_service_options(p)
    p.add_argument("--limit", type=int, default=200, help="most items to consider")
    add_cache_options(p)
    add_json(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run ``sitewatch search``."""
    from sitewatch.sources._http import NetStats
    from sitewatch.sources.stac import parse_period, search_scenes, stac_url

    aoi = resolve_aoi(args.aoi, args.aoi_file)
    if aoi is None:
        raise InputError("name an AOI: sitewatch search AOI_ID (or --aoi-file FILE)")
    start, end = parse_period(args.start, args.end)
    record: dict[str, Any] = {}
    stats = NetStats()
    scenes = search_scenes(
        aoi,
        start,
        end,
        source=args.source,
        url=args.stac_url,
        max_cloud=args.max_cloud,
        limit=args.limit,
        cache=cache_from_args(args),
        record=record,
        requester_pays=args.requester_pays,
        stats=stats,
    )
    api = record.get("profile", {}).get("stac_url") or stac_url(args.stac_url, source=args.source)
    fallback = record.get("fallback")
    if fallback:
        print(f"search: {fallback['reason']}; using {fallback['collection']}", file=sys.stderr)
    if args.json:
        emit_json(
            {
                "aoi": aoi.id,
                "from": start,
                "to": end,
                "stac_url": api,
                "service": record.get("profile"),
                "collection": record.get("collection"),
                "fallback": fallback,
                "dropped": record.get("dropped", []),
                "skipped": record.get("skipped", []),
                "scenes": [s.as_dict() for s in scenes],
                "requests": stats.total_requests(),
                "bytes_read": stats.total_bytes(),
            }
        )
        return 0
    radar = args.source == "s1"
    print(
        f"{len(scenes)} acquisition(s) over {aoi.name} ({aoi.id}), {start} → {end}, "
        f"from {api}; "
        + (
            "by orbit geometry (compared only within one), then date"
            if radar
            else "clearest over the AOI first"
        )
    )
    print(f"{'date':<11} {'platform':<12} {'tile':<12} {'scene cloud':>11} {'AOI clear':>10}  item")
    for s in scenes:
        cloud = "-" if s.cloud_cover is None else f"{s.cloud_cover:.1f} %"
        clear = "-" if s.clear_fraction is None else f"{100 * s.clear_fraction:.1f} %"
        more = f" (+{s.granules - 1} more; {s.granules} granules)" if s.granules > 1 else ""
        if s.collection != record.get("collection"):
            more += f" [{s.collection}]"
        print(
            f"{s.datetime[:10]:<11} {s.platform:<12} {s.tile:<12} {cloud:>11} {clear:>10}"
            f"  {s.item_id}{more}"
        )
    print(
        f"read {stats.total_requests()} HTTP request(s), {stats.total_bytes() / 1000:,.1f} kB "
        + (
            "(search pages and the SAS token)"
            if radar
            else "(search pages, and cloud masks over the AOI window only)"
        )
    )
    return 0
