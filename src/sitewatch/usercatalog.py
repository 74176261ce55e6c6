"""A user's own catalog entries: build one from a sourced point and write it safely.

``sitewatch aoi new`` is the command-line face of :func:`new_entry` and
:func:`write_entry`. An entry is a catalog GeoJSON Feature with every key the built-in
entries carry (see ``aoi/README.md``): one sourced point with its source, date and
confidence, and a polygon that is either a working box of a stated size around the
point or the user's own polygon file. It is validated exactly like a built-in entry
(:func:`sitewatch.aoi.check_aoi`) before anything is written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from shapely.geometry import Point, Polygon, mapping
from shapely.geometry.polygon import orient

from sitewatch.aoi import (
    AOI,
    CONFIDENCE_LEVELS,
    LANGUAGES,
    builtin_ids,
    check_aoi,
    load_aoi_file,
    user_catalog_dir,
)
from sitewatch.errors import AOIError, InputError

__all__ = [
    "DEFAULT_BOX_KM",
    "new_entry",
    "parse_box_km",
    "parse_point",
    "write_entry",
]

DEFAULT_BOX_KM = (2.0, 2.0)
"""Working-box size (W, H km) when neither ``--box-km`` nor ``--polygon`` is given: a
modest plant or yard, not a town."""
KM_PER_DEG_LAT = 111.32
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CLASH = (
    "'{aoi_id}' is a built-in catalog entry; pick another id, or add "
    "--override-builtin 'WHY' to replace it in your catalog"
)


def parse_point(text: str) -> tuple[float, float]:
    """``"LAT,LON"`` in decimal degrees → ``(lat, lon)``.

    Parameters
    ----------
    text : str
        E.g. ``"39.920212,127.657091"``.

    Returns
    -------
    tuple of float
        Latitude and longitude.

    Raises
    ------
    InputError
        If it is not two numbers, or a value is out of range.

    Examples
    --------
    >>> parse_point("39.92, 127.657")
    (39.92, 127.657)
    """
    parts = text.replace(" ", "").split(",")
    try:
        lat, lon = (float(v) for v in parts)
    except ValueError:
        raise InputError(
            f"--point {text!r} is not LAT,LON in decimal degrees (e.g. 39.920212,127.657091)"
        ) from None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise InputError(f"--point {text!r} is not a finite LAT,LON")
    if not -90 <= lat <= 90:
        swap = " (lat/lon swapped? the order is LAT,LON)" if -90 <= lon <= 90 else ""
        raise InputError(f"--point {text!r}: latitude {lat} is beyond ±90°{swap}")
    if not -180 <= lon <= 180:
        raise InputError(f"--point {text!r}: longitude {lon} is beyond ±180°")
    return lat, lon


def parse_box_km(text: str) -> tuple[float, float]:
    """``"W,H"`` in km → ``(w, h)``, each in (0, 30].

    Raises
    ------
    InputError
        If it is not two positive numbers up to 30 km.

    Examples
    --------
    >>> parse_box_km("2.3,2.3")
    (2.3, 2.3)
    """
    try:
        w, h = (float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise InputError(f"--box-km {text!r} is not W,H in km (e.g. 2,1.5)") from None
    if not (0 < w <= 30 and 0 < h <= 30):
        raise InputError(
            f"--box-km {text!r}: each side must be above 0 and at most 30 km; a facility, not a "
            "city"
        )
    return w, h


def _parse_date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise InputError(f"--date {text!r} is not a real YYYY-MM-DD date") from None


def _box(lat: float, lon: float, w_km: float, h_km: float) -> dict[str, Any]:
    dlat = h_km / 2 / KM_PER_DEG_LAT
    dlon = w_km / 2 / (KM_PER_DEG_LAT * math.cos(math.radians(lat)))
    w, s, e, n = (round(v, 6) for v in (lon - dlon, lat - dlat, lon + dlon, lat + dlat))
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _aliases(name: str, extra: Sequence[str]) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
    table["en"].append(name)
    for item in extra:
        lang, sep, text = item.partition(":")
        if sep and lang in LANGUAGES and text.strip():
            table[lang].append(text.strip())
        else:
            table["en"].append(item.strip())
    return table


def new_entry(
    aoi_id: str,
    *,
    name: str,
    point: tuple[float, float],
    source: str,
    date: str,
    confidence: str,
    countries: Sequence[str],
    box_km: tuple[float, float] | None = None,
    polygon: str | os.PathLike[str] | None = None,
    kind: str = "site",
    aliases: Sequence[str] = (),
    note: str | None = None,
    overrides: str | None = None,
) -> AOI:
    """Build and validate a user catalog entry (nothing is written).

    Parameters
    ----------
    aoi_id : str
        Slug, the file stem.
    name : str
        Canonical name.
    point : (lat, lon)
        The sourced point, which the polygon must contain.
    source, date, confidence : str
        Where the point comes from (a URL or an outlet), its date (YYYY-MM-DD) and
        ``high``/``medium``/``low``.
    countries : sequence of str
        ISO 3166-1 alpha-2 codes.
    box_km : (W, H), optional
        Working box size around the point; default :data:`DEFAULT_BOX_KM`.
    polygon : path, optional
        A polygon file (any format :func:`~sitewatch.aoi.load_aoi_file` reads) instead of
        a box; it is recorded as the user's own outline, not a sourced footprint.
    kind : str
        Facility type.
    aliases : sequence of str
        Extra names, each optionally prefixed by a language code (``ru:порт``).
    note : str, optional
        Free text added to the geometry note.
    overrides : str, optional
        Why this entry replaces the built-in one with the same id.

    Returns
    -------
    AOI
        The entry, with ``origin="user"``; it passes :func:`~sitewatch.aoi.check_aoi`.

    Raises
    ------
    AOIError
        On any bad input, with a one-line reason.
    """
    if not _SLUG.match(aoi_id):
        raise AOIError(f"id {aoi_id!r} is not a slug; use lowercase letters, digits and '-'")
    if aoi_id in builtin_ids() and not overrides:
        raise AOIError(_CLASH.format(aoi_id=aoi_id))
    if confidence not in CONFIDENCE_LEVELS:
        raise AOIError(f"--confidence {confidence!r} is not one of {', '.join(CONFIDENCE_LEVELS)}")
    if not name.strip():
        raise AOIError("--name is empty; give the facility's name")
    if not source.strip():
        raise AOIError("--source is empty; give the URL or outlet the point comes from")
    codes = [c.strip().upper() for c in countries if c.strip()]
    bad = [c for c in codes if not _COUNTRY.match(c)]
    if not codes or bad:
        raise AOIError(
            f"--country {','.join(bad or codes) or '(none)'} is not a list of ISO 3166-1 "
            "alpha-2 codes (e.g. KP or RU,KP)"
        )
    if box_km is not None and polygon is not None:
        raise AOIError("give either --box-km or --polygon, not both")
    date = _parse_date(date)
    lat, lon = point
    url = source if urlparse(source).scheme in ("http", "https") else None
    outlet = urlparse(source).netloc if url else source
    if polygon is not None:
        drawn = load_aoi_file(polygon)
        assert drawn.geometry is not None  # load_aoi_file never returns an unlocated AOI
        if not drawn.geometry.covers(Point(lon, lat)):
            raise AOIError(
                f"--polygon {polygon} does not contain --point {lat},{lon}; the sourced point "
                "must lie inside the facility's polygon (check LAT,LON order)"
            )
        outline = drawn.geometry
        geom = mapping(orient(outline) if isinstance(outline, Polygon) else outline)
        geom_note = (
            f"Polygon drawn by the user ({Path(polygon).name}), not a sourced footprint; it "
            f"contains the sourced point {lat}, {lon}."
        )
    else:
        w_km, h_km = box_km or DEFAULT_BOX_KM
        geom = _box(lat, lon, w_km, h_km)
        size = "default size" if box_km is None else "size given with --box-km"
        geom_note = (
            f"Working box (not a sourced footprint), {w_km:g} km × {h_km:g} km ({size}) centred "
            f"on the sourced point {lat}, {lon}; 1° lat = 111.32 km, 1° lon = 111.32·cos(lat) "
            "km. Check it against imagery."
        )
    if note:
        geom_note += " " + note
    props: dict[str, Any] = {
        "id": aoi_id,
        "name": name.strip(),
        "kind": kind,
        "countries": codes,
        "region": None,
        "located": True,
        "geometry_kind": "working_box",
        "geometry_note": geom_note,
        "confidence": confidence,
        "parent": None,
        "aliases": _aliases(name.strip(), aliases),
        "weak_aliases": {lang: [] for lang in LANGUAGES},
        "points": [
            {
                "name": f"{name.strip()} (sourced point)",
                "lat": lat,
                "lon": lon,
                "source": source,
                "confidence": confidence,
                "note": f"Entered with 'sitewatch aoi new' on {dt.date.today().isoformat()}.",
            }
        ],
        "candidates": [],
        "reference_points": [],
        "see_instead": None,
        "footprint": None,
        "sources": [
            {
                "outlet": outlet,
                "date": date,
                "title": None,
                "url": url,
                "supports": f"Point {lat}, {lon} ({confidence}).",
            }
        ],
        "conflicts": [],
        "events": [],
        "overrides": overrides,
    }
    feature = {"type": "Feature", "id": aoi_id, "geometry": geom, "properties": props}
    aoi = dataclasses.replace(AOI.from_feature(feature), origin="user")
    problems = check_aoi(aoi)
    if problems:
        raise AOIError(f"entry {aoi_id!r} would fail the catalog check: {problems[0]}")
    return aoi


def _file_mode() -> int:
    """0o666 less the process umask: what ``open()`` would have given the file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_entry(
    aoi: AOI, *, folder: str | os.PathLike[str] | None = None, overwrite: bool = False
) -> Path:
    """Write ``aoi`` as ``<folder>/<id>.geojson``, atomically.

    Parameters
    ----------
    aoi : AOI
        From :func:`new_entry`.
    folder : path, optional
        Default :func:`~sitewatch.aoi.user_catalog_dir`; created if missing.
    overwrite : bool
        Replace an existing entry of that id.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    AOIError
        If the entry exists and ``overwrite`` is false, or it would shadow a built-in
        entry without an ``overrides`` note.
    InputError
        If the folder cannot be written.
    """
    root = Path(folder) if folder is not None else user_catalog_dir()
    if aoi.id in builtin_ids() and not aoi.properties.get("overrides"):
        raise AOIError(_CLASH.format(aoi_id=aoi.id))
    path = root / f"{aoi.id}.geojson"
    if path.exists() and not overwrite:
        raise AOIError(f"{path} already exists; add --overwrite to replace it")
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{aoi.id}.", suffix=".tmp", dir=root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(aoi.to_feature(), fh, indent=2, ensure_ascii=False)
                fh.write("\n")
            os.chmod(tmp, _file_mode())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise InputError(
            f"cannot write the user catalog entry in {root} ({err.strerror}); set "
            "SITEWATCH_AOI_PATH to a writable folder"
        ) from None
    return path
