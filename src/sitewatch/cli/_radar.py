"""Radar options and summaries shared by ``detect`` and ``timeline`` (``--source s1``)."""

from __future__ import annotations

import argparse
from typing import Any

from sitewatch.detect.sar_options import DEFAULT_SCENES, RADAR_SOURCES, RadarOptions

__all__ = ["RADAR_SOURCES", "add_radar_options", "print_radar", "radar_options"]


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def add_radar_options(p: argparse.ArgumentParser, *, pair: bool) -> None:
    """``--alpha``, ``--enl``, ``--orbit`` (and ``--scenes`` for a pair)."""
    p.add_argument(
        "--alpha",
        type=_float,
        default=1e-3,
        metavar="P",
        help="radar (--source s1): false-alarm rate per pixel, the level of the test "
        "(default 1e-3)",
    )
    p.add_argument(
        "--enl",
        type=_float,
        metavar="L",
        help="radar: equivalent number of looks of one scene (default: as the items "
        "declare, else 4.4)",
    )
    p.add_argument(
        "--orbit",
        metavar="DIR-N",
        help="radar: compare only this pass direction and/or relative orbit, e.g. "
        "ascending-127 (default: the geometry with most scenes)",
    )
    if pair:
        p.add_argument(
            "--scenes",
            type=int,
            default=DEFAULT_SCENES,
            metavar="N",
            help=f"radar: scenes averaged on each side (default {DEFAULT_SCENES}); "
            "speckle variance falls as 1/N",
        )


def radar_options(args: argparse.Namespace) -> RadarOptions:
    """The :class:`~sitewatch.detect.sar_options.RadarOptions` of the parsed options."""
    return RadarOptions(
        alpha=args.alpha,
        enl=args.enl,
        orbit=args.orbit,
        scenes=getattr(args, "scenes", DEFAULT_SCENES),
    )


def _summary(result: Any, out: Any, what: str) -> str:
    d, prm = result.diagnostics, result.provenance["parameters"]
    lines = [
        f"sitewatch {what}: {result.provenance['aoi'].id}, Sentinel-1 RTC orbit {prm['orbit']}, "
        f"method {prm['method']}, alpha {prm['alpha']:g}, {prm['enl_per_scene']:g} looks/scene",
        f"  {d['valid_fraction']:.1%} of the AOI observed in every scene; "
        f"{d['n_polygons']} change polygon(s), {d['changed_area_m2']:,.0f} m²",
    ]
    for f in result.features[:5]:
        p = f["properties"]
        lines.append(
            f"    {p['id']}  {p['area_m2']:>9,.0f} m²  first seen {p['first_seen']}  "
            f"p {p['p_value']:.2g}  VV {p['db_vv']:+.1f} dB  VH {p['db_vh']:+.1f} dB"
        )
    lines.append(f"  wrote {out}/")
    return "\n".join(lines)


def print_radar(run: Any, args: argparse.Namespace, what: str) -> int:
    """Print a radar (or fused) run's summary, text or JSON, unless ``--quiet``."""
    from sitewatch.cli._common import emit_json

    result, out = run.result, run.out
    if args.json:
        emit_json(
            {
                "out": str(out),
                "diagnostics": result.diagnostics,
                "changes": [f["properties"] for f in result.features],
            }
        )
    elif args.quiet:
        pass
    elif args.source == "s2,s1":
        from sitewatch.fusion import fused_summary

        print(fused_summary(result, out))
    else:
        print(_summary(result, out, what))
        if what == "timeline":
            dates = run.timeline
            print(f"  {len(dates)} dates {dates[0]} … {dates[-1]}")
    return 0
