"""``sitewatch aoi list | show ID | check [FILE...] | match ARTICLE``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sitewatch.aoi import (
    AOI,
    catalog_dir,
    check_aoi,
    load_aoi,
    load_aoi_file,
    load_catalog,
    match_article,
)
from sitewatch.cli._common import add_json, emit_json
from sitewatch.errors import AOIError, InputError

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``aoi`` subcommand group."""
    p = sub.add_parser(
        "aoi",
        help="the facility catalog: list, show, check, match articles",
        description="Work with the AOI catalog (aoi/*.geojson).",
    )
    p.add_argument(
        "--catalog",
        metavar="DIR",
        help="catalog folder (default: the bundled aoi/, or $SITEWATCH_AOI_DIR)",
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


def _catalog(args: argparse.Namespace) -> dict[str, AOI]:
    return load_catalog(args.catalog)


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
    }


def cmd_list(args: argparse.Namespace) -> int:
    """Print the catalog, one facility a line."""
    rows = [_row(a) for a in _catalog(args).values()]
    if args.json:
        emit_json(rows)
        return 0
    print(f"{'id':<28} {'located':<12} {'conf':<7} {'km²':>7}  name")
    for r in rows:
        loc = (r["geometry_kind"] or "box") if r["located"] else "unlocated"
        km2 = f"{r['area_km2']:.2f}" if r["area_km2"] is not None else "-"
        print(
            f"{r['id']:<28} {loc:<12} {r['confidence']:<7} {km2:>7}  {r['name']}"
            f" [{r['kind']}, {'/'.join(r['countries'])}]"
        )
    print(f"{len(rows)} facilities in {args.catalog or catalog_dir()}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print one facility in full."""
    a = load_aoi(args.id, catalog=_catalog(args))
    if args.json:
        emit_json(a.to_feature())
        return 0
    p = a.properties
    out = [
        f"{a.name} ({a.id}) — {a.kind}, {', '.join(a.countries)}"
        f"{', ' + p['region'] if p.get('region') else ''}"
    ]
    if a.located:
        lon, lat = a.centroid  # type: ignore[misc]
        out.append(
            f"  polygon: {a.geometry_kind}, {a.area_m2 / 1e6:.2f} km², centre "
            f"{lat:.5f} N {lon:.5f} E, confidence {a.confidence}"
        )
    else:
        out.append(f"  UNLOCATED (confidence {a.confidence}): kept for article matching only")
    if p.get("geometry_note"):
        out.append(f"  note: {p['geometry_note']}")
    for lang, names in a.aliases.items():
        if names:
            out.append(f"  aliases [{lang}]: {'; '.join(names)}")
    for lang, names in a.weak_aliases.items():
        if names:
            out.append(f"  weak aliases [{lang}]: {'; '.join(names)}")
    for label, key in (("point", "points"), ("candidate", "candidates")):
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
    paths = (
        [Path(f) for f in args.files]
        if args.files
        else sorted(Path(args.catalog or catalog_dir()).glob("*.geojson"))
    )
    if not paths:
        raise InputError("no AOI files to check; give FILE.geojson or a --catalog DIR")
    results = []
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            a = load_aoi_file(path)
            problems = check_aoi(a) if not args.files else []
            if a.id in seen:
                problems.append(f"id {a.id!r} also in {seen[a.id]}")
            seen[a.id] = path
            aid = a.id
        except AOIError as err:
            aid, problems = path.stem, [str(err)]
        results.append({"id": aid, "file": str(path), "ok": not problems, "problems": problems})
    failed = [r for r in results if not r["ok"]]
    if args.json:
        emit_json(
            {"ok": not failed, "checked": len(results), "failed": len(failed), "results": results}
        )
    else:
        for r in results:
            print(
                f"{'ok  ' if r['ok'] else 'FAIL'} {r['id']}"
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
    matches = match_article(text, _catalog(args))
    if args.json:
        emit_json([m.as_dict() for m in matches])
        return 0
    if not matches:
        print("no catalog facility is named in this text")
        return 0
    for m in matches:
        tag = "possible" if m.weak else "named   "
        loc = "" if m.located else "  (unlocated: no polygon to watch)"
        print(
            f'{tag} {m.aoi_id:<26} {m.name}  ← "{m.phrase}" [{m.language}, '
            f"{m.count}×, at char {m.start}]{loc}"
        )
    return 0
