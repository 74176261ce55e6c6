"""The report read by a newcomer (issue 18): summary, links, comparison, legend, exports.

The page is parsed, not grepped: every in-page link must have its target, every change
its section with pictures, the comparison control its images inside the file, and the
legend every column of the table. The CSV must round-trip to the GeoJSON attributes
and the KML must be valid KML.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from affine import Affine

import sitewatch as sw
from conftest import write_raster
from sitewatch.cli.main import main
from sitewatch.report.html import FULL_SECTIONS, _credits
from sitewatch.report.quicklooks import _overlay_figure, place_labels, stretch_rgb

KML = "{http://www.opengis.net/kml/2.2}"


# --------------------------------------------------------------------------- parsing


@dataclasses.dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    parent: Node | None
    children: list[Node] = dataclasses.field(default_factory=list)
    text: list[str] = dataclasses.field(default_factory=list)

    def iter(self):
        yield self
        for c in self.children:
            yield from c.iter()

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def all_text(self) -> str:
        return "".join(t for n in self.iter() for t in n.text)


VOID = {"img", "br", "meta", "input", "link", "hr"}


class Tree(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("root", {}, None)
        self.cur = self.root
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.text.append(data)

    def find(self, pred) -> list[Node]:
        return [n for n in self.root.iter() if pred(n)]


def _by_id(tree: Tree) -> dict[str, Node]:
    return {n.attrs["id"]: n for n in tree.root.iter() if "id" in n.attrs}


def check_report(run_dir: Path) -> Tree:
    """The checks every report must pass; returns the parsed page."""
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    tree = Tree(html)
    ids = _by_id(tree)
    fc = json.loads((run_dir / "changes.geojson").read_text(encoding="utf-8"))
    fids = [f["properties"]["id"] for f in fc["features"]]

    # every in-page link has its target
    hrefs = [n.attrs["href"] for n in tree.find(lambda n: n.tag == "a" and "href" in n.attrs)]
    local = [h[1:] for h in hrefs if h.startswith("#")]
    assert local or not fids, "no in-page link"
    missing = sorted({h for h in local if h not in ids})
    assert not missing, f"links without a target: {missing}"
    summary = ids["summary"].all_text()
    assert summary.startswith("Between ")
    if not fids:
        assert "no place that differs" in summary and not tree.find(lambda n: n.tag == "section")
        return tree
    # each table row links to its change; one section per change, each with pictures
    table = ids["changes-table"]
    row_links = [
        n.attrs["href"][1:]
        for n in table.iter()
        if n.tag == "a" and "#" in n.attrs.get("href", "")[:1]
    ]
    assert row_links == fids
    sections = tree.find(lambda n: n.tag == "section")
    assert [s.attrs["id"] for s in sections] == fids
    for s in sections:
        imgs = [
            n
            for n in s.iter()
            if n.tag == "img" and n.attrs.get("src", "").startswith("data:image/png;base64,")
        ]
        assert len(imgs) >= 1, f"section {s.attrs['id']} has no picture"
    # nothing is fetched: no remote script, style, font or image
    assert not tree.find(lambda n: n.tag == "script" and "src" in n.attrs)
    assert not tree.find(lambda n: n.tag == "link")
    for n in tree.find(lambda n: "src" in n.attrs):
        assert n.attrs["src"].startswith("data:"), n.attrs["src"][:60]
    assert "@import" not in html and not re.search(r"url\(\s*['\"]?https?:", html)
    # external links are only the map links (and the AOI's sources)
    for h in hrefs:
        if h.startswith("http"):
            assert h.startswith(
                ("https://www.openstreetmap.org/", "https://livingatlas.arcgis.com/wayback/")
            ) or tree.find(lambda n, h=h: n.tag == "a" and n.attrs.get("href") == h)
    # the legend explains every column
    heads = [n.all_text().strip() for n in table.iter() if n.tag == "th"]
    legend = ids["legend"]
    terms = [n.all_text().strip() for n in legend.iter() if n.tag == "dt"]
    defs = [n.all_text().strip() for n in legend.iter() if n.tag == "dd"]
    assert heads and terms == heads
    assert all(len(d) > 30 for d in defs)
    for th in (n for n in table.iter() if n.tag == "th"):
        assert len(th.attrs.get("title", "")) > 30  # tooltips too
    # a comparison control per change with two pictures, and one for the whole area
    cmps = tree.find(lambda n: "cmp" in n.classes())
    if fids:
        assert "cmp-aoi" in {c.attrs["id"] for c in cmps}
        for fid in fids:
            assert f"cmp-{fid}" in ids, f"no comparison for {fid}"
    for c in cmps:
        froms = [n.attrs["data-src-from"] for n in c.iter() if "data-src-from" in n.attrs]
        assert len(froms) == 2
        for ref in froms:
            assert ids[ref].tag == "img" and ids[ref].attrs["src"].startswith("data:image/png")
        ranges = [n for n in c.iter() if n.tag == "input" and n.attrs.get("type") == "range"]
        buttons = [n for n in c.iter() if n.tag == "button"]
        assert len(ranges) == 1 and ranges[0].attrs.get("aria-label")  # keyboard: arrows
        assert len(buttons) == 1 and buttons[0].attrs.get("type") == "button"
    return tree


# --------------------------------------------------------------------------- demo run


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo18") / "run"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    return out


def test_demo_report_is_readable_and_complete(demo_run):
    tree = check_report(demo_run)
    fc = json.loads((demo_run / "changes.geojson").read_text())
    n = len(fc["features"])
    assert n > FULL_SECTIONS  # the demo has 29: compact sections are exercised
    ids = _by_id(tree)
    # the summary comes first, says what was found and what the method cannot tell
    body = [n for n in tree.root.iter() if n.tag in {"h1", "p", "h2"}]
    assert body[0].tag == "h1" and body[1].attrs.get("id") == "summary"
    summary = body[1].all_text()
    assert "Between 30 Nov 2015 and 19 Mar 2018" in summary
    assert f"{n} places" in summary and "c001" in summary
    total_ha = sum(f["properties"]["area_m2"] for f in fc["features"]) / 1e4
    assert f"{total_ha:,.1f} ha" in summary
    assert "cannot tell construction from demolition, earthworks" in summary
    c = fc["features"][0]["properties"]["centroid"]
    assert f"{c[1]:.3f} N {c[0]:.3f} E" in summary
    # P(no change) is not the same in every row
    table = ids["changes-table"]
    rows = [r for r in table.iter() if r.tag == "tr"][1:]
    evidence = [[td for td in r.children if td.tag == "td"][6] for r in rows]
    shown = {e.all_text().strip() for e in evidence}
    assert len(shown) > n // 2, shown
    assert all("P(no change)" in e.attrs["title"] for e in evidence)
    # map links at the centre of each change
    p = fc["features"][0]["properties"]
    lon, lat = p["centroid"]
    s = ids["c001"]
    links = {a.attrs["href"] for a in s.iter() if a.tag == "a"}
    assert (
        f"https://www.openstreetmap.org/?mlat={lat:.5f}&mlon={lon:.5f}#map=17/{lat:.5f}/{lon:.5f}"
        in links
    )
    assert f"https://livingatlas.arcgis.com/wayback/#mapCenter={lon:.5f}%2C{lat:.5f}%2C17" in links
    # full sections for the largest, compact (small pictures) for the rest
    assert "change" in ids["c001"].classes() and "compact" in ids[f"c{n:03d}"].classes()
    # credit line from the sources used: a Sentinel-2-only run does not credit Landsat
    credits = ids["credits"].all_text()
    assert "Copernicus Sentinel data (2015–2018)" in credits and "Landsat" not in credits


def test_the_writer_s_arrays_stand_in_for_its_rasters_only_when_they_fit(demo_run):
    # the report of a detect run takes the arrays it just wrote instead of decoding them
    from sitewatch.report.run import load_run

    disk = load_run(demo_run)
    names = {"score.tif": "score", "mask.tif": "mask", "before.tif": "before_rgb"}
    held = {f: getattr(disk, a).copy() for f, a in names.items()}
    held["before.tif"][:, 0, 0] = 0.123  # marks what came from memory
    held["mask.tif"] = held["mask.tif"][:-1]  # not the file's shape: read from disk
    mem = load_run(demo_run, rasters=held)
    assert mem.before_rgb[0, 0, 0] == np.float32(0.123)
    np.testing.assert_array_equal(mem.score, disk.score)
    np.testing.assert_array_equal(mem.mask, disk.mask)
    np.testing.assert_array_equal(mem.after_rgb, disk.after_rgb)
    assert (mem.transform, mem.crs, mem.pixel_size_m) == (
        disk.transform,
        disk.crs,
        disk.pixel_size_m,
    )
    # taken as they are, not copied (the report only reads them)
    assert np.shares_memory(mem.before_rgb, held["before.tif"])
    assert np.shares_memory(mem.score, held["score.tif"])
    side = max(disk.shape) - 1  # decimated reads come from the file's overviews
    small = load_run(demo_run, rasters=held, max_side=side)
    assert small.before_rgb[0, 0, 0] != np.float32(0.123)


def test_credits_follow_the_imagery(demo_run):
    run = sw.load_run(demo_run)
    landsat = {"kind": "landsat-product", "bands": ["SR_B2", "SR_B3", "SR_B4"]}
    both = dataclasses.replace(
        run, manifest={**run.manifest, "inputs": {"before": landsat, "after": landsat}}
    )
    text = _credits(both)
    assert "U.S. Geological Survey" in text and "Copernicus" not in text
    other = {"kind": "file", "bands": ["red", "green", "blue"], "path": "x.tif"}
    text = _credits(
        dataclasses.replace(
            run, manifest={**run.manifest, "inputs": {"before": other, "after": other}}
        )
    )
    assert "credit its provider" in text and "Copernicus" not in text


def test_csv_round_trips_to_the_geojson(demo_run):
    fc = json.loads((demo_run / "changes.geojson").read_text())
    with (demo_run / "changes.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == [f["properties"]["id"] for f in fc["features"]]
    for row, f in zip(rows, fc["features"], strict=True):
        p = f["properties"]
        assert float(row["centroid_lon"]) == p["centroid"][0]
        assert float(row["centroid_lat"]) == p["centroid"][1]
        for key, text in row.items():
            if key not in p:
                continue
            value = p[key]
            if value is None:
                assert text == ""
            elif isinstance(value, (int, float)):
                assert float(text) == value, key
            else:
                assert text == str(value), key
        assert row["osm_url"].startswith("https://www.openstreetmap.org/?mlat=")
        assert row["wayback_url"].startswith("https://livingatlas.arcgis.com/wayback/#mapCenter=")
    manifest = json.loads((demo_run / "manifest.json").read_text())
    assert {"changes.csv", "changes.kml"} <= set(manifest["outputs"])


def test_kml_is_valid_and_carries_the_polygons(demo_run):
    path = demo_run / "changes.kml"
    fc = json.loads((demo_run / "changes.geojson").read_text())
    root = ET.parse(path).getroot()
    assert root.tag == f"{KML}kml"
    marks = root.findall(f"./{KML}Document/{KML}Placemark")
    assert [m.findtext(f"{KML}name") for m in marks] == [f["id"] for f in fc["features"]]
    for m, f in zip(marks, fc["features"], strict=True):
        data = {
            d.get("name"): d.findtext(f"{KML}value")
            for d in m.findall(f"./{KML}ExtendedData/{KML}Data")
        }
        assert float(data["area_m2"]) == f["properties"]["area_m2"]
        assert float(data["centroid_lat"]) == f["properties"]["centroid"][1]
        text = m.find(f".//{KML}outerBoundaryIs/{KML}LinearRing/{KML}coordinates").text
        ring = [tuple(map(float, xyz.split(",")))[:2] for xyz in text.split()]
        geom = f["geometry"]
        first = (
            geom["coordinates"][0][0] if geom["type"] == "MultiPolygon" else geom["coordinates"][0]
        )
        assert np.allclose(ring, first, atol=1e-7)
        assert "openstreetmap.org" in m.findtext(f"{KML}description")


def test_kml_opens_with_gdal_when_available(demo_run):
    pyogrio = pytest.importorskip("pyogrio", reason="pyogrio not installed (geo extra)")
    if "KML" not in pyogrio.list_drivers() and "LIBKML" not in pyogrio.list_drivers():
        pytest.skip("GDAL here has no KML driver")
    fc = json.loads((demo_run / "changes.geojson").read_text())
    info = pyogrio.read_info(demo_run / "changes.kml")
    assert info["features"] == len(fc["features"])
    from pyogrio.raw import read
    from shapely import from_wkb
    from shapely.geometry import shape

    meta, _, geometry, fields = read(demo_run / "changes.kml")
    names = list(fields[[f.lower() for f in meta["fields"]].index("name")])
    assert names == [f["id"] for f in fc["features"]]
    for wkb, f in zip(geometry, fc["features"], strict=True):
        g = from_wkb(wkb)
        assert g.geom_type in {"Polygon", "MultiPolygon"}
        assert g.area == pytest.approx(shape(f["geometry"]).area, rel=1e-6)


def test_to_geodataframe(demo_run):
    pytest.importorskip("geopandas", reason="geopandas not installed (geo extra)")
    run = sw.load_run(demo_run)
    gdf = run.to_geodataframe()
    fc = json.loads((demo_run / "changes.geojson").read_text())
    assert list(gdf.index) == [f["id"] for f in fc["features"]]
    assert gdf.crs.to_epsg() == 4326
    assert gdf.loc["c001", "area_m2"] == fc["features"][0]["properties"]["area_m2"]
    assert gdf.geometry.iloc[0].equals_exact(
        __import__("shapely.geometry", fromlist=["shape"]).shape(fc["features"][0]["geometry"]),
        1e-9,
    )


def test_run_api_to_geodataframe(tmp_path):
    pytest.importorskip("geopandas", reason="geopandas not installed (geo extra)")
    from sitewatch import run

    paths = sw.demo_paths()
    done = run.detect(
        sw.DetectJob(
            before=str(paths["before"]), after=str(paths["after"]), out=str(tmp_path / "r")
        )
    )
    gdf = done.to_geodataframe()
    assert list(gdf.index) == [f["id"] for f in done.result.features]
    assert (gdf["area_m2"] > 0).all() and gdf.crs.to_epsg() == 4326


def test_to_geodataframe_without_geopandas_names_the_extra(demo_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "geopandas", None)
    with pytest.raises(sw.InputError, match=r"'geo' extra.*\.\[geo\]") as err:
        sw.load_run(demo_run).to_geodataframe()
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- many changes


ROOFS = [(r, c) for r in range(12, 300, 40) for c in range(12, 300, 40)]  # 8 x 8 = 64 roofs


@pytest.fixture(scope="module")
def many_run(tmp_path_factory):
    """A pair with 64 planted roofs of different sizes: > 30 changes, most compact."""
    root = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(3)
    h = w = 320
    base = rng.normal(0.12, 0.01, size=(4, h, w)) + np.linspace(0, 0.03, w)[None, None, :]
    after = base + rng.normal(0, 0.003, size=base.shape)
    for i, (r, c) in enumerate(ROOFS):
        side = 4 + i % 6  # 4..9 px: areas differ, so the order is by size
        after[:, r : r + side, c : c + side] += np.linspace(0.12, 0.2, 4)[:, None, None]
    b = write_raster(root / "b.tif", (base * 10000).astype("uint16"))
    a = write_raster(root / "a.tif", (after * 10000).astype("uint16"))
    result = sw.detect_change(
        b, a, bands="blue,green,red,nir", method="construction", threshold=3.0, min_area_m2=1000
    )
    out = sw.write_result(result, root / "run")
    return out, result


def test_every_change_of_a_large_run_is_reachable(many_run):
    out, result = many_run
    n = len(result.features)
    assert n >= 30, n
    tree = check_report(out)
    ids = _by_id(tree)
    compact = [s for s in tree.find(lambda n: n.tag == "section") if "compact" in s.classes()]
    assert len(compact) == n - FULL_SECTIONS
    for s in compact:  # small pictures, linked from the table, with their own comparison
        imgs = [i for i in s.iter() if i.tag == "img" and "src" in i.attrs]
        assert {i.attrs["id"].rsplit("-", 1)[1] for i in imgs} == {"before", "after"}
        assert f"cmp-{s.attrs['id']}" in ids
    # page weight stays reasonable: compact pictures are a few kB
    size = (out / "report.html").stat().st_size
    full = sum(p.stat().st_size for p in (out / "chips").glob("c0[01]*[0-9]_before.png"))
    assert size < 4_000_000, size
    small = [p.stat().st_size for p in (out / "chips").glob("*_small.png")]
    assert len(small) == 2 * (n - FULL_SECTIONS) and max(small) < 8_000 and full > 0


def test_overlay_labels_do_not_collide_and_c001_is_labelled(many_run):
    out, _ = many_run
    run = sw.load_run(out)
    _, after = stretch_rgb(run.before_rgb, run.after_rgb)
    fig = _overlay_figure(run, after, dpi=110)
    labels = [(t, box) for t, box in fig.labels if re.fullmatch(r"c\d{3}", t)]
    assert len(labels) == len(run.features)
    shown = [(t, box) for t, box in labels if box is not None]
    assert "c001" in {t for t, _ in shown}
    width, height = fig.size
    for i, (ta, a) in enumerate(shown):
        assert a[0] >= -1 and a[2] <= width + 1 and a[1] >= -1 and a[3] <= height + 1
        for tb, b in shown[i + 1 :]:
            w = min(a[2], b[2]) - max(a[0], b[0])
            h = min(a[3], b[3]) - max(a[1], b[1])
            assert w <= 0.5 or h <= 0.5, (ta, tb, a, b)
    assert len(shown) >= 0.9 * len(labels)


def _overlap(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _place_labels_by_loops(boxes, sizes, bounds, *, obstacles=(), gap=1.0, rings=40):
    """The greedy placement as plain loops (what the vectorised one must equal)."""
    from sitewatch.report.quicklooks import _candidates

    width, height = bounds
    placed, out = [], []
    for box, size in zip(boxes, sizes, strict=True):
        best = None
        for k in range(rings):
            for cand in _candidates(box, size, gap + k * size[1]):
                cand = tuple(float(v) for v in cand)
                if cand[0] < 0 or cand[1] < 0 or cand[2] > width or cand[3] > height:
                    continue
                if any(_overlap(cand, r) > 0 for r in (*placed, *obstacles)):
                    continue
                cost = sum(_overlap(cand, b) for b in boxes)
                if best is None or cost < best[0]:
                    best = (cost, cand)
                if cost == 0:
                    break
            if best is not None and best[0] == 0:
                break
        if best is None:
            out.append(None)
            continue
        placed.append(best[1])
        out.append(best[1])
    return out


@pytest.mark.parametrize("seed", range(6))
def test_place_labels_equals_the_greedy_loops(seed):
    """Vectorised, the same spots: crowds, image edges, obstacles, labels left out."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 120))
    span = rng.uniform(20, 150)  # from a tight crowd to a spread
    boxes = []
    for _ in range(n):
        x, y = rng.uniform(0, span, size=2)
        boxes.append((x, y, x + rng.uniform(0.5, 8), y + rng.uniform(0.5, 8)))
    sizes = [(float(rng.uniform(6, 14)), 4.0) for _ in boxes]
    bounds = (float(rng.uniform(60, 200)), float(rng.uniform(40, 150)))
    obstacles = [(bounds[0] - 20, 0.0, bounds[0], 20.0), (0.0, bounds[1] - 8, 30.0, bounds[1])]
    rings = int(rng.integers(2, 40))
    want = _place_labels_by_loops(boxes, sizes, bounds, obstacles=obstacles, rings=rings)
    got = place_labels(boxes, sizes, bounds, obstacles=obstacles, rings=rings)
    assert got == want


def test_place_labels_leaves_out_what_does_not_fit_as_the_loops_do():
    rng = np.random.default_rng(9)
    boxes = [(x, y, x + 2.0, y + 2.0) for x, y in rng.uniform(5, 25, size=(60, 2))]
    sizes = [(10.0, 4.0)] * len(boxes)
    want = _place_labels_by_loops(boxes, sizes, (40.0, 30.0), rings=5)
    assert None in want and any(r is not None for r in want)
    assert place_labels(boxes, sizes, (40.0, 30.0), rings=5) == want


def test_place_labels_in_a_crowd():
    rng = np.random.default_rng(0)
    boxes = []
    for _ in range(40):  # 40 polygons crowded into a quarter of the image
        x, y = rng.uniform(40, 90, size=2)
        boxes.append((x, y, x + rng.uniform(1, 6), y + rng.uniform(1, 6)))
    sizes = [(12.0, 4.0)] * len(boxes)
    rects = place_labels(boxes, sizes, (200, 150), obstacles=[(180, 0, 200, 20)])
    assert rects[0] is not None and all(r is not None for r in rects)
    for i, a in enumerate(rects):
        assert a[0] >= 0 and a[2] <= 200 and a[1] >= 0 and a[3] <= 150
        assert not (a[2] > 180 and a[1] < 20)  # off the north arrow
        for b in rects[i + 1 :]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    near = [
        math.dist(((a[0] + a[2]) / 2, (a[1] + a[3]) / 2), ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2))
        for a, b in zip(rects, boxes, strict=True)
    ]
    assert near[0] < 12  # the largest keeps its label next to it


# --------------------------------------------------------------------------- Python API


def test_detect_change_accepts_a_catalog_id(tmp_path):
    # a pair over the February 11 Plant working box (UTM 52N)
    t = Affine(10, 0, 383_500, 0, -10, 4_421_700)
    rng = np.random.default_rng(1)
    data = (rng.normal(0.12, 0.01, size=(4, 380, 340)) * 10000).astype("uint16")
    after = data.copy()
    after[:, 150:180, 140:180] += 1500
    b = write_raster(tmp_path / "b.tif", data, transform=t)
    a = write_raster(tmp_path / "a.tif", after, transform=t)
    by_id = sw.detect_change(b, a, aoi="feb11-plant", bands="blue,green,red,nir")
    by_obj = sw.detect_change(b, a, aoi=sw.load_aoi("feb11-plant"), bands="blue,green,red,nir")
    assert by_id.provenance["aoi"].id == "feb11-plant"
    assert [f["properties"]["area_m2"] for f in by_id.features] == [
        f["properties"]["area_m2"] for f in by_obj.features
    ]
    assert by_id.features and by_id.features[0]["properties"]["area_m2"] > 8000
    with pytest.raises(sw.AOIError):
        sw.detect_change(b, a, aoi="no-such-plant", bands="blue,green,red,nir")


# --------------------------------------------------------------------------- browser


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (apt-get install chromium)")
def test_comparison_works_offline_in_chromium(demo_run, tmp_path):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # no network at all: any fetch would fail and leave the control unwired
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [_chromium(), *flags, "--dump-dom", (demo_run / "report.html").as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    tree = Tree(dom.stdout)
    cmps = tree.find(lambda n: "cmp" in n.classes())
    fc = json.loads((demo_run / "changes.geojson").read_text())
    assert len(cmps) == len(fc["features"]) + 1
    for c in cmps:
        assert c.attrs.get("data-ready") == "1"  # the inline script ran
        imgs = [n for n in c.iter() if n.tag == "img"]
        assert all(i.attrs.get("src", "").startswith("data:image/png;base64,") for i in imgs)
    assert tree.find(lambda n: n.tag == "html" and "js" in n.classes())


def test_report_of_images_without_crs_and_of_no_change(planted_pair, tmp_path):
    before, after, _ = planted_pair(crs=None)
    result = sw.detect_change(before, after, pixel_size=10, bands="blue,green,red,nir")
    assert result.features
    out = sw.write_result(result, tmp_path / "pixels")
    tree = check_report(out)
    # pixel coordinates: no map links, no KML, CSV in col/row
    assert not [
        a for a in tree.find(lambda n: n.tag == "a") if "openstreetmap" in a.attrs.get("href", "")
    ]
    assert not (out / "changes.kml").exists()
    with (out / "changes.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert "centroid_col" in rows[0] and "osm_url" not in rows[0]
    assert float(rows[0]["centroid_col"]) == result.features[0]["properties"]["centroid"][0]
    none = sw.detect_change(before, after, pixel_size=10, bands="blue,green,red,nir", threshold=1e6)
    assert not none.features
    check_report(sw.write_result(none, tmp_path / "none"))
