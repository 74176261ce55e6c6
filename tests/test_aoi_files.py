"""AOI files beyond lon/lat GeoJSON: GeoJSON with a crs member, GeoPackage, Shapefile, zip.

Every fixture is written here with the standard library, shapely and pyproj (the
Shapefile and the projected GeoPackage byte by byte), so the readers are checked against
the formats' layouts rather than against another reader.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon, Point, Polygon, box, mapping
from shapely.geometry.polygon import orient

from conftest import lonlat_box, write_geojson
from sitewatch import AOIError, load_aoi, load_aoi_file
from sitewatch.cli.main import main
from sitewatch.report.gpkg import write_gpkg

# The February 11 Plant working box (aoi/feb11-plant.geojson) and a hole inside it.
FEB11 = (127.640, 39.905, 127.675, 39.935)
HOLE = (127.650, 39.915, 127.660, 39.925)
UTM = "EPSG:32652"
PRJ_ESRI = CRS(UTM).to_wkt("WKT1_ESRI")
MESSAGE = re.compile(r"[^\n]+; [^\n]+")  # one line: "<file and problem>; <fix>"


def feb11(*, hole: bool = False) -> Polygon:
    outer = box(*FEB11)
    return Polygon(outer.exterior.coords, [box(*HOLE).exterior.coords] if hole else [])


def to_crs(geom, crs: str, *, inverse: bool = False):
    src, dst = (crs, "EPSG:4326") if inverse else ("EPSG:4326", crs)
    tr = Transformer.from_crs(src, dst, always_xy=True)
    return shapely.transform(geom, lambda x, y: tr.transform(x, y), interleaved=False)


def assert_same_shape(loaded, expected, tol: float = 1e-6) -> None:
    assert loaded.geom_type == expected.geom_type
    assert shapely.hausdorff_distance(loaded, expected) < tol
    assert abs(loaded.area - expected.area) < tol * 1e-3


def bad(path: Path, *needles: str) -> str:
    """Load ``path``, expecting exactly one one-line AOIError that names the file."""
    with pytest.raises(AOIError) as info:
        load_aoi_file(path)
    msg = str(info.value)
    assert MESSAGE.fullmatch(msg), msg
    assert Path(path).name.split(":")[0] in msg, msg  # FILE.gpkg:LAYER names FILE.gpkg
    for n in needles:
        assert n in msg, (n, msg)
    return msg


# --------------------------------------------------------------------------- writers


def _shp_content(geom, shape_type: int) -> bytes:
    """One shapefile record body: outer rings clockwise, holes counter-clockwise."""
    if shape_type in (1, 11, 21):
        return struct.pack("<i2d", shape_type, geom.x, geom.y) + (
            b"" if shape_type == 1 else struct.pack("<d", 0.0)
        )
    rings: list[np.ndarray] = []
    for poly in getattr(geom, "geoms", [geom]):
        poly = orient(poly, sign=-1.0)
        rings.append(np.asarray(poly.exterior.coords))
        rings += [np.asarray(r.coords) for r in poly.interiors]
    points = np.concatenate(rings)
    offsets = np.cumsum([0] + [len(r) for r in rings[:-1]])
    out = struct.pack("<i4d2i", shape_type, *geom.bounds, len(rings), len(points))
    out += struct.pack(f"<{len(rings)}i", *offsets) + points.astype("<f8").tobytes()
    if shape_type == 15:  # Z range and values, then M range and values
        z = np.full(len(points), 12.5)
        out += struct.pack("<2d", 12.5, 12.5) + z.astype("<f8").tobytes()
        out += struct.pack("<2d", 0, 0) + np.zeros(len(points)).astype("<f8").tobytes()
    return out


def write_shapefile(
    path: Path, geoms: list, *, shape_type: int = 5, prj: str | None = PRJ_ESRI
) -> Path:
    """Write .shp, .shx, .dbf (one numeric id field) and, optionally, .prj."""
    contents = [_shp_content(g, shape_type) for g in geoms]
    bounds = shapely.total_bounds(geoms)
    records, index, offset = b"", b"", 50
    for i, c in enumerate(contents, 1):
        records += struct.pack(">2i", i, len(c) // 2) + c
        index += struct.pack(">2i", offset, len(c) // 2)
        offset += 4 + len(c) // 2

    def header(length_bytes: int) -> bytes:
        return struct.pack(">7i", 9994, 0, 0, 0, 0, 0, length_bytes // 2) + struct.pack(
            "<2i8d", 1000, shape_type, *bounds, 0, 0, 0, 0
        )

    path.write_bytes(header(100 + len(records)) + records)
    path.with_suffix(".shx").write_bytes(header(100 + len(index)) + index)
    field = b"id".ljust(11, b"\0") + b"N" + bytes(4) + bytes([10, 0]) + bytes(14)
    dbf = struct.pack("<B3BIHH20x", 3, 124, 6, 1, len(geoms), 32 + 32 + 1, 11) + field + b"\r"
    dbf += b"".join(b" " + str(i).rjust(10).encode() for i in range(len(geoms))) + b"\x1a"
    path.with_suffix(".dbf").write_bytes(dbf)
    if prj is not None:
        path.with_suffix(".prj").write_text(prj, encoding="latin-1")
    return path


def zip_shapefile(shp: Path, dest: Path, *, folder: str = "") -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for ext in (".shp", ".shx", ".dbf", ".prj"):
            part = shp.with_suffix(ext)
            if part.exists():
                zf.write(part, folder + part.name)
    return dest


def _gpkg_blob(geom, srs_id: int, *, big_endian: bool = False) -> bytes:
    order = ">" if big_endian else "<"
    flags = 0b0000_0010 | (0 if big_endian else 1)  # envelope [minx, maxx, miny, maxy]
    minx, miny, maxx, maxy = geom.bounds
    head = b"GP" + struct.pack(f"{order}BBi4d", 0, flags, srs_id, minx, maxx, miny, maxy)
    return head + shapely.to_wkb(geom, byte_order=0 if big_endian else 1)


def write_gpkg_by_hand(
    path: Path,
    layers: list[tuple[str, str, int, list]],
    *,
    srs: list[tuple] = (),
    big_endian: bool = True,
) -> Path:
    """A GeoPackage with ``layers`` = [(name, geometry type, srs_id, geometries)]."""
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA application_id = 1196444487")
        con.executescript(
            """
            CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL,
              srs_id INTEGER PRIMARY KEY, organization TEXT NOT NULL,
              organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL,
              description TEXT);
            CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY,
              data_type TEXT NOT NULL, identifier TEXT, description TEXT,
              last_change DATETIME, min_x DOUBLE, min_y DOUBLE, max_x DOUBLE,
              max_y DOUBLE, srs_id INTEGER);
            CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL,
              column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
              srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL);
            """
        )
        con.executemany(
            "INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", None),
                ("Undefined geographic SRS", 0, "NONE", 0, "undefined", None),
                *srs,
            ],
        )
        now = dt.datetime.now(dt.UTC).isoformat()
        for name, gtype, srs_id, geoms in layers:
            con.execute(f'CREATE TABLE "{name}" (fid INTEGER PRIMARY KEY, shape BLOB)')
            con.executemany(
                f'INSERT INTO "{name}" (shape) VALUES (?)',
                [(_gpkg_blob(g, srs_id, big_endian=big_endian),) for g in geoms],
            )
            con.execute(
                "INSERT INTO gpkg_contents VALUES (?, 'features', ?, '', ?, "
                "NULL, NULL, NULL, NULL, ?)",
                (name, name, now, srs_id),
            )
            con.execute(
                "INSERT INTO gpkg_geometry_columns VALUES (?, 'shape', ?, ?, 0, 0)",
                (name, gtype, srs_id),
            )
        con.commit()
    finally:
        con.close()
    return path


UTM_SRS = ("WGS 84 / UTM zone 52N", 32652, "EPSG", 32652, CRS(UTM).to_wkt(), None)


# --------------------------------------------------------------------------- GeoJSON


@pytest.mark.parametrize(
    ("crs", "member"),
    [
        (UTM, {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32652"}}),
        ("EPSG:3857", {"type": "name", "properties": {"name": "EPSG:3857"}}),
        (UTM, {"type": "EPSG", "properties": {"code": 32652}}),
    ],
)
def test_geojson_with_a_crs_member_is_reprojected(tmp_path, crs, member):
    original = feb11(hole=True)
    doc = {
        "type": "FeatureCollection",
        "crs": member,
        "features": [
            {"type": "Feature", "properties": {}, "geometry": mapping(to_crs(original, crs))}
        ],
    }
    aoi = load_aoi_file(write_geojson(tmp_path / "feb11-utm.geojson", doc))
    assert aoi.id == "feb11-utm" and aoi.path == tmp_path / "feb11-utm.geojson"
    assert_same_shape(aoi.geometry, original)
    assert aoi.properties["source_crs"] == crs


def test_geojson_crs84_member_is_plain_lonlat(tmp_path):
    doc = lonlat_box(*FEB11)
    doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    aoi = load_aoi_file(write_geojson(tmp_path / "a.geojson", doc))
    assert aoi.id == "test-aoi" and aoi.geometry.equals(box(*FEB11))
    assert "source_crs" not in aoi.properties


def test_feature_collection_of_several_polygons_is_their_union(tmp_path):
    west, south, east, north = FEB11
    mid = (west + east) / 2
    halves = [lonlat_box(west, south, mid, north), lonlat_box(mid, south, east, north)]
    f = write_geojson(tmp_path / "two.geojson", {"type": "FeatureCollection", "features": halves})
    aoi = load_aoi_file(f)
    assert aoi.id == "two"  # the file stem, not one feature's id
    assert aoi.geometry.geom_type == "Polygon"
    assert aoi.geometry.symmetric_difference(box(*FEB11)).area < 1e-12
    assert "union of the 2 polygon features of two.geojson" in aoi.properties["geometry_note"]


def test_disjoint_features_become_a_multipolygon(tmp_path):
    a, b = lonlat_box(127.64, 39.905, 127.65, 39.915), lonlat_box(127.66, 39.92, 127.675, 39.935)
    f = write_geojson(tmp_path / "two.geojson", {"type": "FeatureCollection", "features": [a, b]})
    assert isinstance(load_aoi_file(f).geometry, MultiPolygon)


def test_one_feature_collection_keeps_the_feature(tmp_path):
    f = write_geojson(
        tmp_path / "one.geojson", {"type": "FeatureCollection", "features": [lonlat_box(*FEB11)]}
    )
    aoi = load_aoi_file(f)
    assert (aoi.id, aoi.name) == ("test-aoi", "Test AOI")
    assert "geometry_note" not in aoi.properties


def test_projected_geojson_without_crs_is_refused(tmp_path):
    f = write_geojson(
        tmp_path / "utm.geojson",
        {"type": "Feature", "properties": {}, "geometry": mapping(to_crs(feb11(), UTM))},
    )
    assert bad(f) == (
        f"AOI file {f}: coordinates look projected (e.g. metres) but the file declares no "
        "CRS; save it as lon/lat GeoJSON (RFC 7946) or add a crs member"
    )


def test_swapped_geojson_is_still_called_swapped(tmp_path):
    f = write_geojson(tmp_path / "sw.geojson", lonlat_box(39.905, 127.64, 39.935, 127.675))
    bad(f, "lat/lon swapped")


def test_unknown_geojson_crs_is_refused(tmp_path):
    doc = lonlat_box(*FEB11)
    doc["crs"] = {"type": "name", "properties": {"name": "EPSG:999999"}}
    bad(write_geojson(tmp_path / "c.geojson", doc), "crs 'EPSG:999999' is not a CRS", "EPSG")


def test_collection_with_a_point_feature_is_refused(tmp_path):
    pt = {"type": "Feature", "properties": {}, "geometry": mapping(Point(127.65, 39.92))}
    f = write_geojson(
        tmp_path / "mix.geojson",
        {"type": "FeatureCollection", "features": [lonlat_box(*FEB11), pt]},
    )
    bad(f, "feature 2 is a Point", "polygons only")


def test_empty_collection_and_empty_polygon_are_refused(tmp_path):
    f = write_geojson(tmp_path / "none.geojson", {"type": "FeatureCollection", "features": []})
    bad(f, "holds no features", "draw a polygon")
    g = write_geojson(tmp_path / "e.geojson", {"type": "Polygon", "coordinates": []})
    assert bad(g) == f"AOI 'e' ({g}): geometry is empty; draw a polygon around the site"


def test_invalid_polygon_in_a_collection_is_refused(tmp_path):
    bow = lonlat_box(*FEB11)
    bow["geometry"]["coordinates"] = [
        [[127.64, 39.905], [127.675, 39.935], [127.675, 39.905], [127.64, 39.935], [127.64, 39.905]]
    ]
    f = write_geojson(
        tmp_path / "bow.geojson",
        {"type": "FeatureCollection", "features": [lonlat_box(*FEB11), bow]},
    )
    bad(f, "feature 2 is invalid", "Self-intersection", "Fix geometries")


# --------------------------------------------------------------------------- GeoPackage


def test_geopackage_written_by_sitewatch_loads(tmp_path):
    west, south, east, north = FEB11
    mid = (south + north) / 2
    parts = [lonlat_box(west, south, east, mid), lonlat_box(west, mid, east, north)]
    for i, p in enumerate(parts):
        p["properties"] = {"id": f"c{i}", "area_m2": 1.0, "centroid": [0, 0]}
    path = tmp_path / "changes.gpkg"
    write_gpkg(path, parts, metadata={"aoi": "feb11-plant"})
    aoi = load_aoi_file(path)
    assert aoi.id == "changes" and aoi.path == path
    assert aoi.geometry.symmetric_difference(box(*FEB11)).area < 1e-12
    assert aoi.properties["source_crs"] == "EPSG:4326"
    assert aoi.properties["geometry_note"] == (
        "read from layer 'changes' of changes.gpkg (union of 2 polygons)"
    )


# The planted pair's bands carry no names; the run may say so (not what is tested here).
@pytest.mark.filterwarnings("ignore:bands of .* cannot be identified")
def test_changes_gpkg_from_a_detect_run_loads_as_an_aoi(tmp_path, planted_pair, capsys):
    before, after, _ = planted_pair()
    out = tmp_path / "run"
    argv = ["detect", "--before", str(before), "--after", str(after), "--out", str(out)]
    assert main([*argv, "--no-report", "--quiet"]) == 0, capsys.readouterr().err
    aoi = load_aoi(str(out / "changes.gpkg"))
    assert aoi.id == "changes"
    # The planted roof is 40 x 30 px of 10 m: about 0.12 km².
    assert 0.5 * 120_000 < aoi.area_m2 < 2 * 120_000
    assert FEB11[0] - 0.2 < aoi.centroid[0] < FEB11[2] + 0.2


def test_projected_geopackage_written_with_sqlite3(tmp_path):
    original = feb11(hole=True)
    path = write_gpkg_by_hand(
        tmp_path / "site.gpkg",
        [
            ("gates", "POINT", 32652, [to_crs(Point(127.65, 39.92), UTM)]),
            ("outline", "MULTIPOLYGON", 32652, [MultiPolygon([to_crs(original, UTM)])]),
        ],
        srs=[UTM_SRS],
    )
    aoi = load_aoi_file(path)  # the point layer is skipped
    assert aoi.id == "site"
    assert_same_shape(aoi.geometry, MultiPolygon([original]))
    assert aoi.properties["geometry_note"] == (
        "read from layer 'outline' of site.gpkg, reprojected from EPSG:32652"
    )
    assert load_aoi_file(path, layer="outline").geometry.equals(aoi.geometry)
    assert load_aoi(f"{path}:outline").geometry.equals(aoi.geometry)
    bad(Path(f"{path}:gates"), "layer 'gates' holds points, not polygons", "draw a polygon")


def test_geopackage_crs_from_the_definition_when_not_epsg(tmp_path):
    srs = ("custom", 100000, "NONE", 100000, PRJ_ESRI, None)
    path = write_gpkg_by_hand(
        tmp_path / "c.gpkg",
        [("p", "POLYGON", 100000, [to_crs(feb11(), UTM)])],
        srs=[srs],
        big_endian=False,
    )
    assert_same_shape(load_aoi_file(path).geometry, feb11())


def test_geopackage_in_pixel_coordinates_is_refused(tmp_path):
    path = tmp_path / "px.gpkg"
    write_gpkg(path, [lonlat_box(10, 10, 60, 60)], lonlat=False)
    bad(path, "undefined Cartesian SRS", "pixel coordinates", "save the layer with a CRS")


def test_geopackage_undefined_geographic_srs(tmp_path):
    ok = write_gpkg_by_hand(tmp_path / "ok.gpkg", [("p", "POLYGON", 0, [feb11()])])
    assert load_aoi_file(ok).geometry.equals(feb11())
    projected = write_gpkg_by_hand(
        tmp_path / "m.gpkg", [("p", "POLYGON", 0, [to_crs(feb11(), UTM)])]
    )
    assert bad(projected) == (
        f"AOI file {projected}: coordinates look projected (e.g. metres) but the file "
        "declares no CRS; save the layer with its CRS, or in lon/lat (EPSG:4326)"
    )


def test_bad_geopackages(tmp_path):
    text = tmp_path / "text.gpkg"
    text.write_text("not a database at all, just some text " * 20)
    bad(text, "is not a GeoPackage: not an SQLite database", "export the polygon layer again")

    plain = tmp_path / "plain.gpkg"
    con = sqlite3.connect(plain)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    bad(plain, "is not a GeoPackage: an SQLite database without GeoPackage tables")

    truncated = tmp_path / "cut.gpkg"
    write_gpkg(tmp_path / "whole.gpkg", [lonlat_box(*FEB11)])
    truncated.write_bytes((tmp_path / "whole.gpkg").read_bytes()[:1500])
    bad(truncated, "GeoPackage", "export")

    empty = tmp_path / "empty.gpkg"
    write_gpkg(empty, [])
    assert bad(empty) == (
        f"AOI file {empty}: layer 'changes' holds no geometry (empty layer); "
        "draw a polygon around the site"
    )

    lines = write_gpkg_by_hand(
        tmp_path / "roads.gpkg",
        [("roads", "LINESTRING", 0, [shapely.LineString([(127.64, 39.9), (127.65, 39.91)])])],
    )
    assert bad(lines) == (
        f"AOI file {lines} holds points/lines, not polygons; draw a polygon around the site "
        "and save it as a polygon layer"
    )

    corrupt = write_gpkg_by_hand(tmp_path / "bad.gpkg", [("p", "POLYGON", 0, [feb11()])])
    con = sqlite3.connect(corrupt)
    con.execute("UPDATE p SET shape = X'47500003'")
    con.commit()
    con.close()
    bad(corrupt, "row 1 of layer 'p' is corrupt", "export the layer again")

    bad(Path(f"{corrupt}:nope"), "has no feature layer 'nope' (layers: p)", "FILE.gpkg:LAYER")


# --------------------------------------------------------------------------- Shapefile


def test_shapefile_with_a_hole_in_utm(tmp_path):
    original = feb11(hole=True)
    shp = write_shapefile(tmp_path / "feb11.shp", [to_crs(original, UTM)])
    aoi = load_aoi_file(shp)
    assert aoi.id == "feb11" and aoi.path == shp
    assert len(aoi.geometry.interiors) == 1
    assert_same_shape(aoi.geometry, original)
    assert aoi.properties["source_crs"] == UTM
    assert aoi.properties["geometry_note"] == "read from feb11.shp, reprojected from EPSG:32652"


def test_zipped_shapefile(tmp_path):
    original = feb11(hole=True)
    shp = write_shapefile(tmp_path / "feb11.shp", [to_crs(original, UTM)])
    z = zip_shapefile(shp, tmp_path / "plant.zip", folder="export/")
    aoi = load_aoi(str(z))
    assert aoi.id == "plant" and aoi.path == z
    assert_same_shape(aoi.geometry, original)


def test_shapefile_polygonz_records_are_unioned(tmp_path):
    west, south, east, north = FEB11
    mid = (west + east) / 2
    parts = [to_crs(box(west, south, mid, north), UTM), to_crs(box(mid, south, east, north), UTM)]
    shp = write_shapefile(tmp_path / "z.shp", parts, shape_type=15)
    aoi = load_aoi_file(shp)
    assert aoi.geometry.geom_type == "Polygon" and not aoi.geometry.has_z
    assert abs(aoi.geometry.area - box(*FEB11).area) < 1e-9
    assert "union of 2 polygons" in aoi.properties["geometry_note"]


def test_shapefile_island_in_a_hole_is_a_second_polygon(tmp_path):
    outer = feb11(hole=True)
    island = box(127.653, 39.918, 127.657, 39.922)  # inside the hole
    shp = write_shapefile(
        tmp_path / "i.shp", [to_crs(MultiPolygon([outer, island]), UTM)], prj=PRJ_ESRI
    )
    geom = load_aoi_file(shp).geometry
    assert isinstance(geom, MultiPolygon) and len(geom.geoms) == 2
    assert_same_shape(geom, MultiPolygon([outer, island]))


def test_lonlat_shapefile_without_prj(tmp_path):
    shp = write_shapefile(tmp_path / "ll.shp", [feb11()], prj=None)
    aoi = load_aoi_file(shp)
    assert aoi.geometry.equals(feb11())
    assert aoi.properties["source_crs"] == "none declared (lon/lat assumed)"


def test_projected_shapefile_without_prj_is_refused(tmp_path):
    shp = write_shapefile(tmp_path / "m.shp", [to_crs(feb11(), UTM)], prj=None)
    assert bad(shp) == (
        f"AOI file {shp}: coordinates look projected (e.g. metres) but the file declares no "
        "CRS; put its .prj (m.prj) beside it, or save it in lon/lat (EPSG:4326)"
    )


def test_point_shapefile_is_refused(tmp_path):
    shp = write_shapefile(tmp_path / "pts.shp", [Point(127.65, 39.92)], shape_type=1, prj=None)
    assert bad(shp) == (
        f"AOI file {shp} holds points, not polygons; draw a polygon around the site "
        "and save it as a polygon layer"
    )


def test_bad_shapefiles(tmp_path):
    shp = write_shapefile(tmp_path / "ok.shp", [to_crs(feb11(), UTM)])
    data = shp.read_bytes()

    cut = tmp_path / "cut.shp"
    cut.write_bytes(data[:150])
    bad(cut, "is truncated or corrupt (header says", "copy the .shp again")

    tiny = tmp_path / "tiny.shp"
    tiny.write_bytes(data[:60])
    bad(tiny, "shorter than the 100-byte shapefile header")

    junk = tmp_path / "junk.shp"
    junk.write_bytes(b"\x00" * 200)
    bad(junk, "is not a shapefile (file code 0")

    bow = tmp_path / "bow.shp"
    w, s, e, n = FEB11
    write_shapefile(
        bow, [Polygon([(w, s), (e, n), (e, s), (w, n)])], prj=CRS("EPSG:4326").to_wkt("WKT1_ESRI")
    )
    bad(bow, "record 1 is invalid", "Self-intersection")

    prj = write_shapefile(tmp_path / "prj.shp", [feb11()], prj="GEOGCS[nonsense")
    bad(prj, "prj.prj is not a CRS pyproj can read", "export the shapefile again")


def test_missing_shp_beside_its_side_files(tmp_path):
    shp = write_shapefile(tmp_path / "gone.shp", [feb11()])
    shp.unlink()
    assert bad(shp) == (
        f"AOI file {shp} does not exist, though gone.shx and gone.dbf are beside it; copy the "
        ".shp too (a shapefile is several files: .shp, .shx, .dbf, .prj)"
    )
    bad(shp.with_suffix(".dbf"), "is one part of a shapefile whose gone.shp is missing")
    kept = write_shapefile(tmp_path / "kept.shp", [feb11()])
    bad(kept.with_suffix(".shx"), "is one part of a shapefile; pass kept.shp instead")


def test_bad_zips(tmp_path):
    notzip = tmp_path / "n.zip"
    notzip.write_bytes(b"PK but not really")
    bad(notzip, "is not a readable zip archive", "zip the shapefile")

    empty = tmp_path / "e.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "no shapes")
    assert bad(empty) == (
        f"AOI file {empty} holds no .shp; zip the shapefile's .shp, .shx, .dbf and .prj again"
    )

    a = write_shapefile(tmp_path / "a.shp", [feb11()])
    b = write_shapefile(tmp_path / "b.shp", [feb11()])
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.write(a, a.name)
        zf.write(b, b.name)
    bad(two, "holds 2 shapefiles (a.shp, b.shp)", "zip one")

    pts = write_shapefile(tmp_path / "pts.shp", [Point(127.65, 39.92)], shape_type=1)
    bad(zip_shapefile(pts, tmp_path / "pts.zip"), "pts.zip!pts.shp holds points")


# --------------------------------------------------------------------------- paths


def test_missing_file_folder_and_unknown_extension(tmp_path):
    assert bad(tmp_path / "nope.gpkg") == (
        f"AOI file {tmp_path / 'nope.gpkg'} does not exist; check the path"
    )
    kml = tmp_path / "site.kml"
    kml.write_text("<kml/>")
    assert bad(kml) == (
        f"AOI file {kml} has extension '.kml', which sitewatch does not read; use "
        ".geojson/.json (GeoJSON), .gpkg (GeoPackage), .shp (Shapefile) or .zip "
        "(a zipped Shapefile)"
    )
    folder = tmp_path / "dir.gpkg"
    folder.mkdir()
    bad(folder, "is a folder")
    f = write_geojson(tmp_path / "a.geojson", lonlat_box(*FEB11))
    with pytest.raises(AOIError, match=r"only a \.gpkg has layers"):
        load_aoi_file(f, layer="x")


def test_load_aoi_treats_new_extensions_as_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_shapefile(tmp_path / "s.shp", [to_crs(feb11(), UTM)])
    zip_shapefile(tmp_path / "s.shp", tmp_path / "s.zip")
    write_gpkg(tmp_path / "g.gpkg", [lonlat_box(*FEB11)])
    for ref in ("s.shp", "s.zip", "g.gpkg", "g.gpkg:changes"):
        assert load_aoi(ref, catalog={}).area_m2 > 1e6, ref
    (tmp_path / "x.kml").write_text("<kml/>")
    with pytest.raises(AOIError, match=r"extension '\.kml'"):
        load_aoi("x.kml", catalog={})
    with pytest.raises(AOIError, match="does not exist"):
        load_aoi("missing.zip", catalog={})


# --------------------------------------------------------------------------- CLI


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    utm = write_geojson(
        tmp / "utm.geojson",
        {"type": "Feature", "properties": {}, "geometry": mapping(to_crs(feb11(), UTM))},
    )
    kml = tmp / "a.kml"
    kml.write_text("<kml/>")
    cut = write_shapefile(tmp / "cut.shp", [to_crs(feb11(), UTM)])
    cut.write_bytes(cut.read_bytes()[:150])
    pts = write_shapefile(tmp / "pts.shp", [Point(127.65, 39.92)], shape_type=1)
    notdb = tmp / "x.gpkg"
    notdb.write_text("hello " * 50)
    gone = write_shapefile(tmp / "gone.shp", [feb11()])
    gone.unlink()
    return {
        "missing": (tmp / "missing.geojson", "does not exist"),
        "projected": (utm, "declares no CRS"),
        "extension": (kml, "use .geojson/.json"),
        "truncated": (cut, "truncated or corrupt"),
        "points": (pts, "holds points, not polygons"),
        "not-sqlite": (notdb, "not an SQLite database"),
        "no-shp": (gone, "gone.shx and gone.dbf are beside it"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing", "projected", "extension", "truncated", "points", "not-sqlite", "no-shp"],
)
def test_cli_bad_aoi_file_is_one_line_exit_2(tmp_path, capsys, case):
    path, needle = _bad_files(tmp_path)[case]
    # Existing --before/--after paths: the CLI checks them before it reads the AOI.
    x, y, out = tmp_path / "x", tmp_path / "y", tmp_path / "o"
    x.write_bytes(b"")
    y.write_bytes(b"")
    code = main(
        [
            "detect",
            "--aoi-file",
            str(path),
            "--before",
            str(x),
            "--after",
            str(y),
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sitewatch: error: AOI"), err
    assert needle in lines[0] and path.name in lines[0]
    assert not out.exists()
