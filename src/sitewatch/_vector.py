"""Polygon readers for AOI files: GeoJSON in any CRS, GeoPackage and (zipped) Shapefile.

Only the standard library, shapely and pyproj are used: a GeoPackage is an SQLite file
whose geometries are a small header plus WKB (OGC 12-128r18, section 2.1), a Shapefile
is a fixed binary layout (ESRI Shapefile Technical Description, 1998). Readers return
the polygons in the file's own CRS; :func:`to_lonlat` reprojects them to EPSG:4326.
Every problem is an :class:`~sitewatch.errors.AOIError` whose one-line message names the
file, the problem and the fix.
"""

from __future__ import annotations

import copy
import itertools
import sqlite3
import struct
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

from sitewatch.errors import AOIError

__all__ = [
    "SHAPEFILE_PARTS",
    "PolygonLayer",
    "crs_label",
    "geojson_to_lonlat",
    "gpkg_blob_geometry",
    "looks_projected",
    "read_gpkg_polygons",
    "read_shapefile_polygons",
    "read_shp_bytes",
    "read_zip_polygons",
    "shapefile_parts",
    "to_lonlat",
]

_WGS84 = CRS.from_epsg(4326)
_POLYGON_TYPES = {"POLYGON", "MULTIPOLYGON", "CURVEPOLYGON", "MULTISURFACE", "SURFACE"}
_NOT_POLYGON_TYPES = {
    "POINT",
    "MULTIPOINT",
    "LINESTRING",
    "MULTILINESTRING",
    "CIRCULARSTRING",
    "COMPOUNDCURVE",
    "CURVE",
    "MULTICURVE",
}
_SHP_POLYGON = {5, 15, 25}
_SHP_OTHER = {
    1: "points",
    11: "points",
    21: "points",
    8: "points",
    18: "points",
    28: "points",
    3: "lines",
    13: "lines",
    23: "lines",
    31: "multipatch (3-D) shapes",
}
SHAPEFILE_PARTS = (".shx", ".dbf", ".prj", ".cpg", ".sbn", ".sbx", ".qix")
"""Side files of a shapefile (the shapes themselves are in the ``.shp``)."""
_DRAW = "draw a polygon around the site"


def _one_line(err: Exception | str, limit: int = 120) -> str:
    """A third-party message squeezed onto one short line."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class PolygonLayer:
    """Polygons read from a vector file, still in the file's CRS.

    Attributes
    ----------
    polygons : tuple of shapely Polygon or MultiPolygon
        Non-empty 2-D polygons, one per record / row.
    crs : pyproj.CRS or None
        The CRS the file declares; ``None`` when it declares none.
    layer : str or None
        GeoPackage table name (``None`` for shapefiles).
    no_crs_fix : str
        How to fix a file without a CRS, for the "declares no CRS" message.
    """

    polygons: tuple[Polygon | MultiPolygon, ...]
    crs: CRS | None
    layer: str | None = None
    no_crs_fix: str = "save it in lon/lat (EPSG:4326) with its CRS"


def looks_projected(bounds: Sequence[float]) -> bool:
    """True when (minx, miny, maxx, maxy) fit neither lon/lat nor swapped lat/lon degrees.

    Examples
    --------
    >>> looks_projected((375_000.0, 4_420_000.0, 378_000.0, 4_423_000.0))
    True
    >>> looks_projected((127.64, 39.905, 127.675, 39.935))
    False
    >>> looks_projected((39.905, 127.64, 39.935, 127.675))  # swapped, not projected
    False
    """
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    lonlat = -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
    latlon = -180 <= miny <= maxy <= 180 and -90 <= minx <= maxx <= 90
    return not (lonlat or latlon)


def crs_label(crs: CRS) -> str:
    """Short name of a CRS: ``EPSG:n`` when it has a code, else its name."""
    code = crs.to_epsg(min_confidence=90)
    return f"EPSG:{code}" if code else crs.name


def to_lonlat(
    geoms: Sequence[BaseGeometry], crs: CRS | None, *, path: Path, fix: str
) -> list[BaseGeometry]:
    """Reproject geometries to EPSG:4326 (lon, lat), or check they already are.

    Parameters
    ----------
    geoms : sequence of shapely geometry
        Geometries in ``crs``.
    crs : pyproj.CRS or None
        Their CRS; ``None`` means the file declares none, which is accepted only when
        the coordinates look like degrees.
    path : Path
        The file, quoted in errors.
    fix : str
        What to tell the user when coordinates look projected but no CRS is declared.

    Returns
    -------
    list of shapely geometry
        The geometries in lon/lat (traditional GIS axis order).

    Raises
    ------
    AOIError
        If coordinates look projected without a CRS, or cannot be transformed.
    """
    if crs is None:
        live = [g for g in geoms if not g.is_empty]
        if live and looks_projected(shapely.total_bounds(live)):
            raise AOIError(
                f"AOI file {path}: coordinates look projected (e.g. metres) but the file "
                f"declares no CRS; {fix}"
            )
        return list(geoms)
    if crs.equals(_WGS84, ignore_axis_order=True):
        return list(geoms)
    try:
        tr = Transformer.from_crs(crs, _WGS84, always_xy=True)
    except CRSError as err:  # pragma: no cover - pyproj builds a ballpark otherwise
        raise AOIError(
            f"AOI file {path}: cannot transform from {crs_label(crs)} to lon/lat "
            f"({_one_line(err)}); save it in lon/lat (EPSG:4326)"
        ) from err
    out = [shapely.transform(g, lambda x, y: tr.transform(x, y), interleaved=False) for g in geoms]
    for g in out:
        xy = shapely.get_coordinates(g)
        if xy.size and not np.isfinite(xy).all():
            raise AOIError(
                f"AOI file {path}: coordinates cannot be transformed from {crs_label(crs)} "
                "to lon/lat (outside the CRS's area); check the declared CRS"
            )
    return out


# --------------------------------------------------------------------------- GeoJSON


def _geojson_crs(obj: Mapping[str, Any], *, path: Path) -> CRS | None:
    """The CRS of a legacy (2008) GeoJSON ``crs`` member, or ``None`` if absent."""
    member = obj.get("crs")
    if member is None:
        return None
    props = member.get("properties") if isinstance(member, Mapping) else None
    kind = member.get("type") if isinstance(member, Mapping) else None
    if not isinstance(props, Mapping):
        props = {}
    if kind == "name" and props.get("name"):
        text = str(props["name"])
    elif kind == "EPSG" and props.get("code") is not None:
        text = f"EPSG:{props['code']}"
    else:
        raise AOIError(
            f"AOI file {path}: crs member {_one_line(repr(member), 80)} is not a named CRS; "
            'use {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::CODE"}}'
        )
    try:
        return CRS.from_user_input(text)
    except CRSError as err:
        raise AOIError(
            f"AOI file {path}: crs {text!r} is not a CRS pyproj knows ({_one_line(err, 80)}); "
            "use an EPSG code such as urn:ogc:def:crs:EPSG::32652"
        ) from err


def _geometry_slots(obj: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """(container, key) of every geometry object in a Feature/FeatureCollection/geometry."""
    if not isinstance(obj, dict):
        return
    kind = obj.get("type")
    if kind == "FeatureCollection":
        for feat in obj.get("features") or []:
            yield from _geometry_slots(feat)
    elif kind == "Feature" and isinstance(obj.get("geometry"), dict):
        yield obj, "geometry"


def geojson_to_lonlat(obj: Any, *, path: Path) -> Any:
    """Reproject parsed GeoJSON with a legacy ``crs`` member to lon/lat.

    Parameters
    ----------
    obj : object
        Parsed GeoJSON (Feature, FeatureCollection or bare geometry).
    path : Path
        The file, quoted in errors.

    Returns
    -------
    object
        ``obj`` itself (a bare geometry wrapped in a Feature) when it declares no CRS
        and its coordinates look like degrees; without the ``crs`` member when that is
        WGS 84; else a reprojected copy with ``properties.source_crs`` on each Feature.

    Raises
    ------
    AOIError
        If the crs member is unknown, or the coordinates look projected without one.
    """
    if not isinstance(obj, dict):
        return obj
    crs = _geojson_crs(obj, path=path)
    if crs is not None:
        obj = copy.deepcopy(obj)
        obj.pop("crs", None)
    if obj.get("type") in ("Polygon", "MultiPolygon", "GeometryCollection"):
        obj = {"type": "Feature", "geometry": obj, "properties": {}}
    slots = list(_geometry_slots(obj))
    geoms: list[BaseGeometry | None] = []
    for holder, key in slots:
        try:
            geoms.append(shape(holder[key]))
        except (ValueError, TypeError, AttributeError, KeyError, shapely.errors.GEOSException):
            if crs is not None:
                raise AOIError(
                    f"AOI file {path}: unreadable geometry ({_one_line(holder[key], 60)}); "
                    "it must be a GeoJSON Polygon or MultiPolygon"
                ) from None
            geoms.append(None)  # AOI.from_feature names the problem
    fix = "save it as lon/lat GeoJSON (RFC 7946) or add a crs member"
    live = [g for g in geoms if g is not None]
    if crs is None:
        to_lonlat(live, None, path=path, fix=fix)  # only checks the coordinates are degrees
        return obj
    if crs.equals(_WGS84, ignore_axis_order=True):
        return obj
    moved = iter(to_lonlat(live, crs, path=path, fix=fix))
    label = crs_label(crs)
    for (holder, key), g in zip(slots, geoms, strict=True):
        if g is not None:
            holder[key] = mapping(next(moved))
            holder.setdefault("properties", {})
            if isinstance(holder["properties"], dict):
                holder["properties"].setdefault("source_crs", label)
    return obj


# --------------------------------------------------------------------------- GeoPackage

_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def gpkg_blob_geometry(blob: bytes) -> tuple[BaseGeometry | None, int]:
    """Parse one GeoPackageBinary geometry (header + WKB).

    Parameters
    ----------
    blob : bytes
        The geometry column value.

    Returns
    -------
    geometry : shapely geometry or None
        2-D geometry; ``None`` when the header flags it empty.
    srs_id : int
        The header's SRS id.

    Raises
    ------
    ValueError
        If the blob is not GeoPackageBinary or its WKB is corrupt.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> wkb = shapely.to_wkb(box(0, 0, 1, 1), byte_order=1)
    >>> g, srs = gpkg_blob_geometry(b"GP" + struct.pack("<BBi", 0, 1, 4326) + wkb)
    >>> (g.area, srs)
    (1.0, 4326)
    """
    if not isinstance(blob, bytes | bytearray | memoryview) or len(blob) < 8:
        raise ValueError("not a GeoPackage geometry blob")
    blob = bytes(blob)
    if blob[:2] != b"GP":
        raise ValueError("geometry blob lacks the 'GP' magic")
    flags = blob[3]
    if flags & 0b0010_0000:
        raise ValueError("extended (non-standard) GeoPackage geometry type")
    env = _ENVELOPE_BYTES.get((flags >> 1) & 0b111)
    if env is None:
        raise ValueError(f"invalid envelope code {(flags >> 1) & 0b111}")
    (srs_id,) = struct.unpack("<i" if flags & 1 else ">i", blob[4:8])
    if flags & 0b0001_0000 or len(blob) == 8 + env:
        return None, srs_id
    try:
        geom = shapely.from_wkb(blob[8 + env :])
    except shapely.errors.GEOSException as err:
        raise ValueError(f"corrupt WKB ({_one_line(err, 60)})") from err
    if geom is None or geom.is_empty:
        return None, srs_id
    return shapely.force_2d(geom), srs_id


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _gpkg_crs(con: sqlite3.Connection, srs_id: int, *, path: Path, layer: str) -> CRS | None:
    if srs_id == 0:
        return None  # "Undefined geographic SRS": lon/lat if the coordinates agree
    row = con.execute(
        "SELECT organization, organization_coordsys_id, definition "
        "FROM gpkg_spatial_ref_sys WHERE srs_id = ?",
        (srs_id,),
    ).fetchone()
    if srs_id == -1 or (row is not None and str(row[2]).strip().lower() == "undefined"):
        raise AOIError(
            f"AOI file {path}: layer {layer!r} has no CRS (undefined Cartesian SRS, e.g. "
            "pixel coordinates); an AOI needs a georeferenced polygon, so save the layer "
            "with a CRS (EPSG:4326 or the image's UTM zone)"
        )
    if row is None:
        raise AOIError(
            f"AOI file {path}: layer {layer!r} uses srs_id {srs_id}, which "
            "gpkg_spatial_ref_sys does not define; export the layer again"
        )
    org, code, definition = row
    if str(org).upper() == "EPSG" and code is not None and int(code) > 0:
        try:
            return CRS.from_epsg(int(code))
        except CRSError:
            pass  # fall back to the definition
    try:
        return CRS.from_user_input(str(definition))
    except CRSError as err:
        raise AOIError(
            f"AOI file {path}: the CRS of layer {layer!r} (srs_id {srs_id}) is not one "
            f"pyproj can read ({_one_line(err, 80)}); export the layer in EPSG:4326"
        ) from err


def read_gpkg_polygons(path: Path, *, layer: str | None = None) -> PolygonLayer:
    """Read the polygons of one feature table of a GeoPackage.

    Parameters
    ----------
    path : Path
        An existing ``.gpkg`` file.
    layer : str, optional
        Table to read; default the first feature table (in ``gpkg_contents`` order)
        holding polygons.

    Returns
    -------
    PolygonLayer
        The non-empty polygons of every row, with the layer's CRS.

    Raises
    ------
    AOIError
        If the file is not a GeoPackage, has no polygon layer, or a geometry is corrupt.
    """
    export = "export the polygon layer again as GeoPackage (QGIS: Export > Save Features As)"
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise AOIError(f"cannot open AOI file {path} ({_one_line(err)}); check the path") from err
    try:
        try:
            tables = con.execute(
                "SELECT c.table_name, g.column_name, upper(g.geometry_type_name), g.srs_id "
                "FROM gpkg_contents c JOIN gpkg_geometry_columns g "
                "ON c.table_name = g.table_name WHERE c.data_type = 'features' "
                "ORDER BY c.rowid"
            ).fetchall()
        except sqlite3.DatabaseError as err:
            what = (
                "an SQLite database without GeoPackage tables"
                if "no such table" in str(err)
                else f"not an SQLite database ({_one_line(err, 60)})"
            )
            raise AOIError(f"AOI file {path} is not a GeoPackage: {what}; {export}") from err
        if layer is not None:
            chosen = [t for t in tables if t[0] == layer]
            if not chosen:
                names = ", ".join(t[0] for t in tables) or "none"
                raise AOIError(
                    f"AOI file {path} has no feature layer {layer!r} (layers: {names}); "
                    "name one of them as FILE.gpkg:LAYER"
                )
            tables = chosen
        kinds_seen: set[str] = set()
        empty: list[str] = []
        for table, column, gtype, srs_id in tables:
            if gtype in _NOT_POLYGON_TYPES:
                kinds_seen.add(gtype)
                continue
            polys, others = _gpkg_rows(con, table, column, path=path)
            if polys and others:
                raise AOIError(
                    f"AOI file {path}: layer {table!r} mixes polygons with "
                    f"{', '.join(sorted(others))} geometries; keep only the polygons"
                )
            if polys:
                return PolygonLayer(
                    tuple(polys),
                    _gpkg_crs(con, int(srs_id), path=path, layer=table),
                    layer=table,
                    no_crs_fix="save the layer with its CRS, or in lon/lat (EPSG:4326)",
                )
            kinds_seen |= {k.upper() for k in others}
            if not others:
                empty.append(table)
        if kinds_seen:
            kinds = "points" if all("POINT" in k for k in kinds_seen) else "points/lines"
            what = f"AOI file {path}: layer {layer!r}" if layer else f"AOI file {path}"
            raise AOIError(
                f"{what} holds {kinds}, not polygons; {_DRAW} and save it as a polygon layer"
            )
        if empty:
            raise AOIError(
                f"AOI file {path}: layer {empty[0]!r} holds no geometry (empty layer); {_DRAW}"
            )
        raise AOIError(f"AOI file {path} has no polygon layer; {_DRAW} and save it as a layer")
    except sqlite3.DatabaseError as err:
        raise AOIError(
            f"AOI file {path} is a corrupt GeoPackage ({_one_line(err)}); {export}"
        ) from err
    finally:
        con.close()


def _gpkg_rows(
    con: sqlite3.Connection, table: str, column: str, *, path: Path
) -> tuple[list[Polygon | MultiPolygon], set[str]]:
    polys: list[Polygon | MultiPolygon] = []
    others: set[str] = set()
    for i, (blob,) in enumerate(con.execute(f"SELECT {_quote(column)} FROM {_quote(table)}")):
        if blob is None:
            continue
        try:
            geom, _ = gpkg_blob_geometry(blob)
        except ValueError as err:
            raise AOIError(
                f"AOI file {path}: row {i + 1} of layer {table!r} is corrupt ({err}); "
                "export the layer again"
            ) from err
        if geom is None:
            continue
        if isinstance(geom, Polygon | MultiPolygon):
            polys.append(geom)
        else:
            others.add(geom.geom_type)
    return polys, others


# --------------------------------------------------------------------------- Shapefile


def _signed_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))


def _assemble(rings: list[np.ndarray]) -> Polygon | MultiPolygon:
    """Rings of one record → polygons: clockwise rings are shells, the others holes."""
    shells: list[np.ndarray] = []
    holes: list[np.ndarray] = []
    for r in rings:
        (shells if _signed_area(r) < 0 else holes).append(r)
    shell_polys = [Polygon(s) for s in shells]
    owned: list[list[np.ndarray]] = [[] for _ in shells]
    for h in holes:
        filled = Polygon(h)
        inside = [i for i, p in enumerate(shell_polys) if p.covers(filled)]
        if not inside:  # a hole that crosses its shell: let validation name the problem
            probe = filled.representative_point()
            inside = [i for i, p in enumerate(shell_polys) if p.contains(probe)]
        if inside:
            owned[min(inside, key=lambda i: shell_polys[i].area)].append(h)
        else:  # an orphan hole is a shell drawn the wrong way round (as GDAL reads it)
            shells.append(h)
            owned.append([])
    parts = [Polygon(s, hs) for s, hs in zip(shells, owned, strict=True)]
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def read_shp_bytes(data: bytes, *, path: Path) -> list[Polygon | MultiPolygon]:
    """Parse the main (``.shp``) file of a polygon shapefile.

    Parameters
    ----------
    data : bytes
        The whole ``.shp`` file.
    path : Path
        The file, quoted in errors.

    Returns
    -------
    list of shapely Polygon or MultiPolygon
        One per non-null record, 2-D (Z and M values are dropped).

    Raises
    ------
    AOIError
        If the file is not a shapefile, is truncated, or holds points/lines.
    """
    again = "copy the .shp again (with its .shx, .dbf and .prj)"
    if len(data) < 100:
        raise AOIError(
            f"AOI file {path} is truncated or corrupt ({len(data)} bytes, shorter than "
            f"the 100-byte shapefile header); {again}"
        )
    code, words = struct.unpack(">i20xi", data[:28])
    version, shape_type = struct.unpack("<ii", data[28:36])
    if code != 9994 or version != 1000:
        raise AOIError(
            f"AOI file {path} is not a shapefile (file code {code}, version {version}); {again}"
        )
    if shape_type in _SHP_OTHER:
        raise AOIError(
            f"AOI file {path} holds {_SHP_OTHER[shape_type]}, not polygons; {_DRAW} "
            "and save it as a polygon layer"
        )
    if shape_type not in _SHP_POLYGON | {0}:
        raise AOIError(f"AOI file {path} has unknown shape type {shape_type}; {again}")
    end = 2 * words
    if end > len(data):
        raise AOIError(
            f"AOI file {path} is truncated or corrupt (header says {end} bytes, the file "
            f"has {len(data)}); {again}"
        )
    out: list[Polygon | MultiPolygon] = []
    pos, n = 100, 0
    while pos < end:
        n += 1
        if pos + 12 > end:
            raise AOIError(f"AOI file {path} is truncated or corrupt (record {n}); {again}")
        (length,) = struct.unpack(">4xi", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + 2 * length]
        pos += 8 + 2 * length
        if len(body) < 4 or pos > end:
            raise AOIError(
                f"AOI file {path} is truncated or corrupt (record {n} runs past the end "
                f"of the file); {again}"
            )
        (rtype,) = struct.unpack("<i", body[:4])
        if rtype == 0:
            continue  # null shape
        if rtype not in _SHP_POLYGON:
            what = _SHP_OTHER.get(rtype, f"shape type {rtype}")
            raise AOIError(f"AOI file {path}: record {n} holds {what}, not a polygon; {_DRAW}")
        out.append(_shp_polygon(body, n, path=path, again=again))
    return out


def _shp_polygon(body: bytes, n: int, *, path: Path, again: str) -> Polygon | MultiPolygon:
    corrupt = f"AOI file {path} is truncated or corrupt (record {n}"
    if len(body) < 44:
        raise AOIError(f"{corrupt} is too short); {again}")
    nparts, npoints = struct.unpack("<ii", body[36:44])
    need = 44 + 4 * nparts + 16 * npoints
    if nparts < 1 or npoints < 4 or need > len(body):
        raise AOIError(
            f"{corrupt}: {nparts} parts, {npoints} points in {len(body)} bytes); {again}"
        )
    starts = np.frombuffer(body, "<i4", nparts, 44).tolist()
    xy = np.frombuffer(body, "<f8", 2 * npoints, 44 + 4 * nparts).reshape(npoints, 2)
    bounds = [*starts, npoints]
    if starts[0] != 0 or any(b <= a for a, b in itertools.pairwise(bounds)):
        raise AOIError(f"{corrupt}: part offsets {starts} are not increasing); {again}")
    if not np.isfinite(xy).all():
        raise AOIError(f"{corrupt}: non-finite coordinates); {again}")
    rings = [xy[a:b] for a, b in itertools.pairwise(bounds)]
    if any(len(r) < 4 for r in rings):
        raise AOIError(f"{corrupt}: a ring has fewer than 4 points); {again}")
    return _assemble(rings)


def _prj_crs(text: str, *, path: Path, prj: str) -> CRS:
    try:
        return CRS.from_wkt(text.strip())
    except CRSError as err:
        raise AOIError(
            f"AOI file {path}: {prj} is not a CRS pyproj can read ({_one_line(err, 80)}); "
            "export the shapefile again with its CRS"
        ) from err


def _sibling(path: Path, ext: str) -> Path | None:
    """``path`` with suffix ``ext`` in either case, if present."""
    for cand in (path.with_suffix(ext), path.with_suffix(ext.upper())):
        if cand.is_file():
            return cand
    return None


def shapefile_parts(path: Path) -> list[Path]:
    """The side files (.shx, .dbf, .prj, ...) present beside a shapefile path."""
    return [p for ext in SHAPEFILE_PARTS if (p := _sibling(path, ext)) is not None]


def read_shapefile_polygons(path: Path) -> PolygonLayer:
    """Read a polygon shapefile (``.shp``) and the CRS in the ``.prj`` beside it.

    Only the ``.shp`` and ``.prj`` are read; attributes (``.dbf``) are not needed.

    Raises
    ------
    AOIError
        If the file is not a readable polygon shapefile or the .prj is unreadable.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise AOIError(f"cannot read AOI file {path} ({_one_line(err)}); check it") from err
    polys = read_shp_bytes(data, path=path)
    prj = _sibling(path, ".prj")
    crs = None
    if prj is not None:
        crs = _prj_crs(prj.read_text(encoding="latin-1"), path=path, prj=prj.name)
    return PolygonLayer(
        tuple(polys),
        crs,
        no_crs_fix=f"put its .prj ({path.with_suffix('.prj').name}) beside it, or save it in "
        "lon/lat (EPSG:4326)",
    )


def read_zip_polygons(path: Path) -> PolygonLayer:
    """Read the one polygon shapefile inside a ``.zip`` (and its ``.prj``).

    Raises
    ------
    AOIError
        If the archive is unreadable, holds no or several shapefiles, or the shapefile
        itself is unusable.
    """
    again = "zip the shapefile's .shp, .shx, .dbf and .prj again"
    try:
        with zipfile.ZipFile(path) as zf:
            names = [
                n for n in zf.namelist() if not n.endswith("/") and "__MACOSX" not in n.split("/")
            ]
            shps = [n for n in names if n.lower().endswith(".shp")]
            if not shps:
                raise AOIError(f"AOI file {path} holds no .shp; {again}")
            if len(shps) > 1:
                listed = ", ".join(shps[:4]) + (", …" if len(shps) > 4 else "")
                raise AOIError(f"AOI file {path} holds {len(shps)} shapefiles ({listed}); zip one")
            shp = shps[0]
            stem = shp[:-4].lower()
            prjs = [n for n in names if n.lower() == stem + ".prj"]
            data = zf.read(shp)
            prj_text = zf.read(prjs[0]).decode("latin-1") if prjs else None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as err:
        raise AOIError(
            f"AOI file {path} is not a readable zip archive ({_one_line(err, 60)}); {again}"
        ) from err
    inner = Path(f"{path}!{shp}")
    polys = read_shp_bytes(data, path=inner)
    crs = None if prj_text is None else _prj_crs(prj_text, path=inner, prj=Path(shp).stem + ".prj")
    return PolygonLayer(
        tuple(polys),
        crs,
        no_crs_fix=f"add {Path(shp).stem}.prj to the zip, or save it in lon/lat (EPSG:4326)",
    )
