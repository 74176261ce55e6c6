"""``sitewatch aoi list | show ID | check [FILE...] | match ARTICLE | new ID ... | map``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sitewatch.cli._common import add_json, emit_json
from sitewatch.errors import AOIError, InputError

if TYPE_CHECKING:
    from sitewatch.aoi import AOI

CONFIDENCE_LEVELS = ("high", "medium", "low")
"""As :data:`sitewatch.aoi.CONFIDENCE_LEVELS` (a test keeps them equal; the parser is built
without importing shapely)."""


class _Lazy:
    """A module imported on first attribute access (keeps ``sitewatch`` start-up light)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        from importlib import import_module

        return getattr(import_module(self._name), attr)


_aoi = _Lazy("sitewatch.aoi")
_user = _Lazy("sitewatch.usercatalog")

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``aoi`` subcommand group."""
    p = sub.add_parser(
        "aoi",
        help="the facility catalog: list, show, check, match articles, new, map",
        description=(
            "Work with the AOI catalog: the built-in entries (aoi/*.geojson) plus your own, "
            "in $SITEWATCH_AOI_PATH (default ~/.config/sitewatch/aoi), which override "
            "built-in entries with the same id."
        ),
    )
    p.add_argument(
        "--catalog",
        metavar="DIR",
        help="use only this catalog folder (default: the bundled aoi/, or $SITEWATCH_AOI_DIR, "
        "plus your user catalog)",
    )
    asub = p.add_subparsers(dest="aoi_command", metavar="ACTION", parser_class=type(p))
    asub.required = True

    q = asub.add_parser("list", help="one line per facility")
    add_json(q)
    q.set_defaults(func=cmd_list)

    q = asub.add_parser("show", help="everything the catalog knows about one facility")
    q.add_argument("id", metavar="ID", help="catalog id or alias")
    add_json(q)
    q.set_defaults(func=cmd_show)

    q = asub.add_parser("check", help="validate geometry and provenance of every AOI")
    q.add_argument(
        "files", nargs="*", metavar="FILE", help="GeoJSON files to check instead of the catalog"
    )
    add_json(q)
    q.set_defaults(func=cmd_check)

    q = asub.add_parser("match", help="which catalog facilities an article names")
    q.add_argument("article", metavar="ARTICLE", help="text file (UTF-8), or - for stdin")
    add_json(q)
    q.set_defaults(func=cmd_match)

    q = asub.add_parser(
        "new",
        help="add your own facility to your user catalog",
        description=(
            "Write a catalog entry for a facility from a sourced point into your user catalog "
            "($SITEWATCH_AOI_PATH, else $XDG_CONFIG_HOME/sitewatch/aoi or "
            "~/.config/sitewatch/aoi). Every command then finds it by id, and "
            "'sitewatch aoi check' validates it like the built-in ones."
        ),
    )
    q.add_argument("id", metavar="ID", help="new id: lowercase letters, digits and '-'")
    q.add_argument("--name", required=True, help="the facility's name")
    q.add_argument("--point", required=True, metavar="LAT,LON", help="the sourced point")
    shape = q.add_mutually_exclusive_group()
    shape.add_argument(
        "--box-km",
        metavar="W,H",
        help="working box size around the point in km (default 2,2: a plant or yard)",
    )
    shape.add_argument(
        "--polygon", metavar="FILE", help="your outline instead (.geojson/.gpkg/.shp/.zip)"
    )
    q.add_argument("--source", required=True, metavar="URL", help="where the point comes from")
    q.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="the source's date")
    q.add_argument(
        "--confidence",
        required=True,
        metavar="LEVEL",
        help=f"one of {', '.join(CONFIDENCE_LEVELS)} (scale in aoi/README.md)",
    )
    q.add_argument(
        "--country",
        required=True,
        metavar="CC",
        help="ISO 3166-1 alpha-2 code(s), e.g. KP or RU,KP",
    )
    q.add_argument("--kind", default="site", help="facility type (plant, port, ...)")
    q.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="[LANG:]NAME",
        help="another name for article matching (LANG: en, ko, id, ru); repeatable",
    )
    q.add_argument("--note", help="text added to the geometry note")
    q.add_argument(
        "--override-builtin",
        metavar="WHY",
        help="replace the built-in entry with this id in your catalog, saying why",
    )
    q.add_argument("--overwrite", action="store_true", help="replace your existing entry")
    add_json(q)
    q.set_defaults(func=cmd_new)

    q = asub.add_parser(
        "map",
        help="every facility on one offline HTML map",
        description=(
            "Write one self-contained HTML page (no tiles, no CDN: works offline) showing every "
            "located facility as a box and a dot coloured by confidence, with a popup of its "
            "sources, events and conflicts."
        ),
    )
    q.add_argument(
        "--out", default="aoi-map.html", metavar="FILE.html", help="default ./aoi-map.html"
    )
    q.add_argument(
        "--overwrite", action="store_true", help="replace FILE even if sitewatch did not write it"
    )
    q.set_defaults(func=cmd_map)


def _catalog(args: argparse.Namespace) -> dict[str, AOI]:
    return _aoi.load_catalog(args.catalog)


def _row(a: AOI) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "kind": a.kind,
        "countries": list(a.countries),
        "located": a.located,
        "geometry_kind": a.geometry_kind,
        "confidence": a.confidence,
        "area_km2": round(a.area_m2 / 1e6, 3) if a.located else None,
        "origin": a.origin,
        "see_instead": (a.properties.get("see_instead") or {}).get("id"),
    }


def _origin_note(a: AOI) -> str:
    if a.origin != "user":
        return ""
    if a.id in _aoi.builtin_ids():
        return f" (your catalog; overrides the built-in entry: {a.properties.get('overrides')})"
    return " (your catalog)"


def cmd_list(args: argparse.Namespace) -> int:
    """Print the catalog, one facility a line."""
    rows = [_row(a) for a in sorted(_catalog(args).values(), key=lambda a: a.id)]
    if args.json:
        emit_json(rows)
        return 0
    print(f"{'id':<28} {'located':<12} {'conf':<7} {'km²':>7}  name")
    for r in rows:
        loc = (r["geometry_kind"] or "box") if r["located"] else "unlocated"
        km2 = f"{r['area_km2']:.2f}" if r["area_km2"] is not None else "-"
        see = f" → use {r['see_instead']}" if r["see_instead"] else ""
        mine = " (yours)" if r["origin"] == "user" else ""
        print(
            f"{r['id']:<28} {loc:<12} {r['confidence']:<7} {km2:>7}  {r['name']}"
            f" [{r['kind']}, {'/'.join(r['countries'])}]{mine}{see}"
        )
    n_loc = sum(r["located"] for r in rows)
    where = args.catalog or f"{_aoi.catalog_dir()} + {_aoi.user_catalog_dir()}"
    print(f"{len(rows)} facilities ({n_loc} located, {len(rows) - n_loc} unlocated) in {where}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print one facility in full."""
    cat = _catalog(args)
    a = _aoi.load_aoi(args.id, catalog=cat)
    if args.json:
        emit_json(a.to_feature())
        return 0
    p = a.properties
    out = [
        f"{a.name} ({a.id}) — {a.kind}, {', '.join(a.countries)}"
        f"{', ' + p['region'] if p.get('region') else ''}{_origin_note(a)}"
    ]
    if a.located:
        lon, lat = a.centroid  # type: ignore[misc]
        out.append(
            f"  polygon: {a.geometry_kind}, {a.area_m2 / 1e6:.2f} km², centre "
            f"{lat:.5f} N {lon:.5f} E, confidence {a.confidence}"
        )
    else:
        out.append(f"  UNLOCATED (confidence {a.confidence}): kept for article matching only")
        see = p.get("see_instead")
        if see:
            try:
                part: AOI | None = _aoi.load_aoi(see["id"], catalog=cat)
            except AOIError:
                part = None
            label = f"{part.name} ({see['id']})" if part else see["id"]
            out.append(f"  watch instead: {label}. {see.get('note', '')}")
            for pt in (part.properties.get("points") or []) if part else []:
                out.append(
                    f"    {see['id']} point: {pt.get('name')} {pt.get('lat')}, {pt.get('lon')} "
                    f"({pt.get('confidence')}; {pt.get('source')})"
                )
    if p.get("geometry_note"):
        out.append(f"  note: {p['geometry_note']}")
    for lang, names in a.aliases.items():
        if names:
            out.append(f"  aliases [{lang}]: {'; '.join(names)}")
    for lang, names in a.weak_aliases.items():
        if names:
            out.append(f"  weak aliases [{lang}]: {'; '.join(names)}")
    labels = (("point", "points"), ("candidate", "candidates"), ("hint", "reference_points"))
    for label, key in labels:
        for pt in p.get(key) or []:
            out.append(
                f"  {label}: {pt.get('name')} {pt.get('lat')}, {pt.get('lon')} "
                f"({pt.get('confidence')}; {pt.get('source')})"
            )
    for ev in p.get("events") or []:
        out.append(f"  event {ev.get('date')}: {ev.get('event')} [{ev.get('source')}]")
    for c in p.get("conflicts") or []:
        out.append(f"  conflict: {c}")
    for s in p.get("sources") or []:
        out.append(f"  source: {s.get('outlet')}, {s.get('date')}: {s.get('supports')}")
    print("\n".join(out))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Validate AOIs; exit 2 if any fails."""
    if args.files:
        paths = [(Path(f), "file") for f in args.files]
    else:
        paths = [
            (f, "builtin")
            for f in sorted(Path(args.catalog or _aoi.catalog_dir()).glob("*.geojson"))
        ]
        mine = _aoi.user_catalog_dir()
        if not args.catalog and mine.is_dir():
            paths += [(f, "user") for f in sorted(mine.glob("*.geojson"))]
    if not paths:
        raise InputError("no AOI files to check; give FILE.geojson or a --catalog DIR")
    results = []
    seen: dict[tuple[str, str], Path] = {}
    entries: dict[str, AOI] = {}
    for path, origin in paths:
        try:
            a = dataclasses.replace(_aoi.load_aoi_file(path), origin=origin)
            problems = _aoi.check_aoi(a) if not args.files else []
            if (origin, a.id) in seen:
                problems.append(f"id {a.id!r} also in {seen[(origin, a.id)]}")
            seen[(origin, a.id)] = path
            entries[a.id] = a
            aid = a.id
        except AOIError as err:
            aid, problems = path.stem, [str(err)]
        results.append(
            {
                "id": aid,
                "file": str(path),
                "origin": origin,
                "ok": not problems,
                "problems": problems,
            }
        )
    for r in results:
        a = entries.get(r["id"])
        see = a.properties.get("see_instead") if a is not None and not args.files else None
        if see and see.get("id") not in entries:
            r["problems"].append(f"see_instead {see.get('id')!r} is not in the catalog")
            r["ok"] = False
    failed = [r for r in results if not r["ok"]]
    if args.json:
        emit_json(
            {"ok": not failed, "checked": len(results), "failed": len(failed), "results": results}
        )
    else:
        for r in results:
            mine = " (yours)" if r["origin"] == "user" else ""
            print(
                f"{'ok  ' if r['ok'] else 'FAIL'} {r['id']}{mine}"
                + ("" if r["ok"] else ": " + "; ".join(r["problems"]))
            )
        print(f"{len(results) - len(failed)}/{len(results)} AOIs pass")
    if failed:
        sys.stderr.write(
            f"sitewatch: error: {len(failed)} AOI(s) failed the check: "
            f"{', '.join(r['id'] for r in failed)}; fix them as listed above\n"
        )
        return 2
    return 0


def _read_article(ref: str) -> str:
    if ref == "-":
        return sys.stdin.read()
    path = Path(ref)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"article {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise InputError(f"article {path} is a folder; give a text file") from None
    except OSError as err:
        raise InputError(f"cannot read article {path} ({err.strerror})") from None
    if b"\x00" in data[:4096]:
        raise InputError(f"article {path} looks binary; give a UTF-8 text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(
            f"article {path} is not UTF-8 text; convert it (e.g. iconv -t UTF-8)"
        ) from None


def cmd_match(args: argparse.Namespace) -> int:
    """Report the catalog facilities an article names."""
    text = _read_article(args.article)
    cat = _catalog(args)
    matches = _aoi.match_article(text, cat)
    if args.json:
        emit_json([m.as_dict() for m in matches])
        return 0
    if not matches:
        print("no catalog facility is named in this text")
        return 0
    for m in matches:
        tag = "possible" if m.weak else "named   "
        see = (cat[m.aoi_id].properties.get("see_instead") or {}).get("id")
        loc = (
            ""
            if m.located
            else f"  (unlocated: watch {see} instead)"
            if see
            else "  (unlocated: no polygon to watch)"
        )
        print(
            f'{tag} {m.aoi_id:<26} {m.name}  ← "{m.phrase}" [{m.language}, '
            f"{m.count}×, at char {m.start}]{loc}"
        )
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    """Write a user catalog entry from a sourced point."""
    aoi = _user.new_entry(
        args.id,
        name=args.name,
        point=_user.parse_point(args.point),
        source=args.source,
        date=args.date,
        confidence=args.confidence,
        countries=args.country.split(","),
        box_km=_user.parse_box_km(args.box_km) if args.box_km else None,
        polygon=args.polygon,
        kind=args.kind,
        aliases=args.alias,
        note=args.note,
        overrides=args.override_builtin,
    )
    folder = Path(args.catalog) if args.catalog else _aoi.user_catalog_dir()
    path = _user.write_entry(aoi, folder=folder, overwrite=args.overwrite)
    if args.json:
        emit_json({"id": aoi.id, "file": str(path), "area_km2": round(aoi.area_m2 / 1e6, 3)})
        return 0
    lon, lat = aoi.centroid  # type: ignore[misc]
    print(
        f"wrote {path}: {aoi.name} ({aoi.id}), working box {aoi.area_m2 / 1e6:.2f} km² "
        f"around {lat:.5f} N {lon:.5f} E, confidence {aoi.confidence}"
    )
    if args.override_builtin:
        print(f"note: {aoi.id} now overrides the built-in entry ({args.override_builtin})")
    print(f"use it: sitewatch detect {aoi.id} --before ... --after ... --out DIR")
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    """Write the catalog map page."""
    from sitewatch.report.aoimap import write_map  # report/ is heavy; only this action needs it

    cat = _catalog(args)
    path = write_map(cat, args.out, overwrite=args.overwrite)
    n = sum(a.located for a in cat.values())
    print(
        f"wrote {path}: {n} located facilities on the map, {len(cat) - n} unlocated listed "
        "beside it; open it in a browser (works offline)"
    )
    return 0
