"""A minimal OGC GeoPackage writer (stdlib sqlite3 + shapely WKB) for change polygons.

GeoPackage is the format GIS desktops open without questions (QGIS, ArcGIS); GeoJSON
is kept for the web. Writing it needs no GDAL vector driver: a GeoPackage is an
SQLite file with three metadata tables and geometries as a small header + WKB
(OGC 12-128r18, sections 1.1 and 2.1). The run's metadata (AOI id, provenance
confidence, dates, method, threshold) is both the layer description and a
``sitewatch_run`` attributes table.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape

__all__ = ["read_gpkg", "write_gpkg"]

_GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
_GPKG_USER_VERSION = 10300  # 1.3.0

_WGS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AUTHORITY["EPSG","4326"]]'
)


def _column_type(values: Sequence[Any]) -> str:
    kinds = {type(v) for v in values if v is not None}
    if kinds and kinds <= {int, bool}:
        return "INTEGER"
    if kinds and kinds <= {int, float}:
        return "REAL"
    return "TEXT"


def _value(v: Any) -> Any:
    if v is None or isinstance(v, (int, float, str)):
        return v
    return json.dumps(v)  # lists (centroid, bbox) as JSON text


def _geometry_blob(geom: Any, srs_id: int) -> bytes:
    minx, miny, maxx, maxy = geom.bounds
    flags = 0b0000_0011  # little endian, envelope [minx, maxx, miny, maxy]
    header = b"GP" + struct.pack("<BBi4d", 0, flags, srs_id, minx, maxx, miny, maxy)
    return header + shapely.to_wkb(geom, byte_order=1, flavor="iso")


def write_gpkg(
    path: str | Path,
    features: Sequence[Mapping[str, Any]],
    *,
    layer: str = "changes",
    lonlat: bool = True,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Write GeoJSON-like features as one polygon layer of a new GeoPackage.

    Parameters
    ----------
    path : path
        File to create (must not exist).
    features : sequence of dict
        GeoJSON Features (``geometry`` + ``properties``).
    layer : str
        Table name.
    lonlat : bool
        Coordinates are EPSG:4326 lon/lat; otherwise undefined Cartesian (pixels).
    metadata : mapping, optional
        Stored as the layer description (JSON) and in a ``sitewatch_run`` table.
    """
    srs_id = 4326 if lonlat else -1
    props = [dict(f.get("properties") or {}) for f in features]
    columns: list[str] = []
    for p in props:
        columns += [k for k in p if k not in columns and k.lower() != "fid"]
    geoms = [shape(f["geometry"]) for f in features]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    con = sqlite3.connect(str(path))
    try:
        con.execute(f"PRAGMA application_id = {_GPKG_APPLICATION_ID}")
        con.execute(f"PRAGMA user_version = {_GPKG_USER_VERSION}")
        con.executescript(
            """
            CREATE TABLE gpkg_spatial_ref_sys (
              srs_name TEXT NOT NULL, srs_id INTEGER NOT NULL PRIMARY KEY,
              organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL,
              definition TEXT NOT NULL, description TEXT);
            CREATE TABLE gpkg_contents (
              table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL,
              identifier TEXT UNIQUE, description TEXT DEFAULT '',
              last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
              min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
              CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id)
                REFERENCES gpkg_spatial_ref_sys(srs_id));
            CREATE TABLE gpkg_geometry_columns (
              table_name TEXT NOT NULL, column_name TEXT NOT NULL,
              geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL,
              z TINYINT NOT NULL, m TINYINT NOT NULL,
              CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
              CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
              CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
            """
        )
        con.executemany(
            "INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "pixel coordinates"),
                ("Undefined geographic SRS", 0, "NONE", 0, "undefined", None),
                ("WGS 84 geodetic", 4326, "EPSG", 4326, _WGS84_WKT, "longitude/latitude"),
            ],
        )
        types = {c: _column_type([p.get(c) for p in props]) for c in columns}
        cols_sql = "".join(f', "{c}" {types[c]}' for c in columns)
        con.execute(
            f'CREATE TABLE "{layer}" (fid INTEGER PRIMARY KEY AUTOINCREMENT, geom GEOMETRY'
            f"{cols_sql})"
        )
        placeholders = ", ".join("?" for _ in range(len(columns) + 1))
        names = "".join(f', "{c}"' for c in columns)
        con.executemany(
            f'INSERT INTO "{layer}" (geom{names}) VALUES ({placeholders})',
            [
                (_geometry_blob(g, srs_id), *(_value(p.get(c)) for c in columns))
                for g, p in zip(geoms, props, strict=True)
            ],
        )
        bounds = shapely.total_bounds(geoms) if geoms else (None,) * 4
        description = json.dumps(dict(metadata or {}), ensure_ascii=False)
        con.execute(
            "INSERT INTO gpkg_contents VALUES (?, 'features', ?, ?, ?, ?, ?, ?, ?, ?)",
            (layer, layer, description, now, *[_num(b) for b in bounds], srs_id),
        )
        con.execute(
            "INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', 'GEOMETRY', ?, 0, 0)",
            (layer, srs_id),
        )
        con.execute("CREATE TABLE sitewatch_run (key TEXT PRIMARY KEY, value TEXT)")
        con.executemany(
            "INSERT INTO sitewatch_run VALUES (?, ?)",
            [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in (metadata or {}).items()],
        )
        con.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
            "last_change) VALUES ('sitewatch_run', 'attributes', 'sitewatch_run', "
            "'run metadata', ?)",
            (now,),
        )
        con.commit()
    finally:
        con.close()


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def read_gpkg(path: str | Path, *, layer: str = "changes") -> list[dict[str, Any]]:
    """Read a layer written by :func:`write_gpkg` back as GeoJSON-like features."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cur = con.execute(f'SELECT * FROM "{layer}"')
        names = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            rec = dict(zip(names, row, strict=True))
            blob = rec.pop("geom")
            flags = blob[3]
            env = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[(flags >> 1) & 0b111]
            geom = shapely.from_wkb(bytes(blob[8 + env :]))
            rec.pop("fid", None)
            out.append(
                {"type": "Feature", "geometry": shapely.geometry.mapping(geom), "properties": rec}
            )
        return out
    finally:
        con.close()
