"""``sitewatch wayback``: distinct Esri World Imagery Wayback vintages over an AOI."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sitewatch.cli._common import AOI_FILE_HELP, _latlon, add_json, emit_json
from sitewatch.cli.detect_cmd import resolve_aoi
from sitewatch.errors import InputError

LIST_ZOOM = 17
"""Default zoom of the vintage list (:data:`sitewatch.sources.wayback.DEFAULT_ZOOM`; a
test keeps them equal, so building the parser does not import the tile code)."""

__all__ = ["register"]


def _zoom(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 23:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0–23")
    return value


def _release_ref(text: str) -> str | int:
    if text == "latest":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a release number or 'latest'") from None


def register(sub: Any) -> None:
    """Add the ``wayback`` subcommand."""
    p = sub.add_parser(
        "wayback",
        help="list the distinct Esri World Imagery Wayback vintages over an AOI",
        description="List the distinct very-high-resolution pictures Esri World Imagery "
        "Wayback holds at the AOI's representative point, newest first, with each "
        "picture's capture date (not its release date), provider, sensor and resolution. "
        "--snapshot writes a static PNG view of one release over the AOI. Viewing only: "
        "Esri's terms forbid storing or redistributing the tiles.",
    )
    p.add_argument("aoi", nargs="?", metavar="AOI_ID", help="catalog id or .geojson path")
    p.add_argument("--aoi-file", metavar="FILE", help=AOI_FILE_HELP)
    p.add_argument(
        "--zoom",
        type=_zoom,
        metavar="Z",
        help=f"tile level (default: {LIST_ZOOM} for the list; for --snapshot the "
        "highest up to 17 that needs at most 16 tiles)",
    )
    p.add_argument(
        "--wayback-config",
        metavar="URL",
        dest="wayback_config",
        help="Wayback config JSON (default: $SITEWATCH_WAYBACK_CONFIG or Esri's "
        "waybackconfig.json)",
    )
    p.add_argument(
        "--snapshot",
        type=_release_ref,
        metavar="RELEASE|latest",
        help="write a PNG view of this release ('latest' = newest distinct vintage)",
    )
    p.add_argument(
        "--change",
        metavar="RUN_DIR:ID",
        help="look at one flagged polygon of a detect run (e.g. out/feb11:c001) instead of "
        "the whole AOI: vintages at its centre, snapshot of it with 100 m around",
    )
    p.add_argument("--out", metavar="FILE.png", help="PNG written by --snapshot")
    add_json(p)
    p.set_defaults(func=main)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(vintages: list[Any]) -> list[str]:
    lines = [
        "release date ≠ capture date: 'released' is when Esri published the basemap, "
        "'captured' when the satellite took the picture",
        f"{'released':<11} {'release':>7}  {'captured':<11} {'provider':<14} {'sensor':<10} "
        f"{'res m':>6}",
    ]
    for v in vintages:
        r = v.release
        lines.append(
            f"{r.release_date:<11} {r.number:>7}  {v.capture_date or '?':<11} "
            f"{v.provider or '-':<14} {v.sensor or '-':<10} {_fmt(v.resolution_m):>6}"
        )
    return lines


CHANGE_CONTEXT_M = 100.0
"""Ground shown around a flagged polygon in its snapshot."""


def load_change(ref: str) -> Any:
    """Change ``ID`` of ``RUN_DIR/changes.geojson`` (``RUN_DIR:ID``), and its view area.

    Returns
    -------
    (polygon, view) : lon/lat shapely geometries
        The flagged polygon, and it grown by :data:`CHANGE_CONTEXT_M`.
    """
    import json

    from shapely.geometry import shape

    from sitewatch.grid import from_lonlat, to_lonlat, utm_crs_for

    run, sep, fid = ref.rpartition(":")
    if not sep or not run or not fid:
        raise InputError(f"--change {ref!r} is not RUN_DIR:ID (e.g. out/feb11:c001)")
    path = Path(run) / "changes.geojson"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path} does not exist; give the folder a detect run wrote") from None
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {path} ({err}); give a detect run folder") from None
    feats = [f for f in doc.get("features", []) if str(f.get("id")) == fid]
    if not feats:
        ids = ", ".join(str(f.get("id")) for f in doc.get("features", [])[:8]) or "none"
        raise InputError(f"no change {fid!r} in {path} (ids: {ids})")
    geom = shape(feats[0]["geometry"])
    if abs(geom.centroid.x) > 180 or abs(geom.centroid.y) > 90:
        raise InputError(f"{path} is in pixel coordinates (no CRS); Wayback needs lon/lat")
    c = geom.centroid
    crs = utm_crs_for(c.x, c.y)
    return geom, to_lonlat(from_lonlat(geom, crs).buffer(CHANGE_CONTEXT_M), crs)


def main(args: argparse.Namespace) -> int:
    """Run ``sitewatch wayback``."""
    from sitewatch.sources.wayback import (
        ATTRIBUTION,
        DEFAULT_ZOOM,
        TERMS_NOTE,
        aoi_point,
        find_release,
        list_vintages,
        load_releases,
        lonlat_to_tile,
        snapshot,
        wayback_config_url,
    )

    if args.out and args.snapshot is None:
        raise InputError("--out needs --snapshot RELEASE|latest")
    if args.snapshot is not None and not args.out:
        raise InputError("--snapshot needs --out FILE.png")
    aoi = resolve_aoi(args.aoi, args.aoi_file)
    if aoi is None:
        raise InputError("name an AOI: sitewatch wayback AOI_ID (or --aoi-file FILE)")
    outline, target = (None, aoi) if args.change is None else load_change(args.change)
    lon, lat = aoi_point(target)  # unlocated → AOIError before any request
    zoom = DEFAULT_ZOOM if args.zoom is None else args.zoom
    releases = load_releases(args.wayback_config)
    vintages = list_vintages(target, zoom=zoom, releases=releases)

    shot = None
    if args.snapshot is not None:
        if args.snapshot == "latest":
            if not vintages:
                raise InputError(
                    f"Wayback has no imagery at {aoi.id} at zoom {zoom}; "
                    "name a release number or try a lower --zoom"
                )
            release = vintages[0].release
        else:
            release = find_release(releases, args.snapshot)
        shot = snapshot(target, release, out_png=args.out, zoom=args.zoom, outline=outline)

    col, row = lonlat_to_tile(lon, lat, zoom)
    if args.json:
        doc: dict[str, Any] = {
            "aoi": aoi.id,
            "change": args.change,
            "point": [lon, lat],
            "zoom": zoom,
            "tile": {"level": zoom, "row": row, "col": col},
            "config_url": wayback_config_url(args.wayback_config),
            "vintages": [v.as_dict() for v in vintages],
            "attribution": ATTRIBUTION,
            "terms": TERMS_NOTE,
        }
        if shot is not None:
            doc["snapshot"] = shot.as_dict()
        emit_json(doc)
        return 0
    where = "" if args.change is None else f", change {args.change}"
    print(
        f"{len(vintages)} distinct Wayback vintage(s) of {len(releases)} releases at "
        f"{aoi.name} ({aoi.id}){where}, point {_latlon(lon, lat)}, tile {zoom}/{row}/{col}; "
        "newest first"
    )
    for line in _table(vintages):
        print(line)
    if shot is not None:
        v = shot.vintage
        print(
            f"wrote {shot.png} ({shot.size[0]}×{shot.size[1]} px, zoom {shot.zoom}, "
            f"release {v.release.number} of {v.release.release_date}, captured "
            f"{v.capture_date or 'unknown'}) and {shot.sidecar.name}"
        )
    print(f"Imagery: {ATTRIBUTION} (Esri World Imagery Wayback)")
    print(f"{TERMS_NOTE}.")
    return 0
