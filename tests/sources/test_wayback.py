"""sitewatch wayback against a fake Wayback service served on loopback."""

from __future__ import annotations

import doctest
import json
import math
import tempfile
import time
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning

import sitewatch.sources.wayback as wb
from conftest import serve_range
from sitewatch import load_aoi, load_aoi_file
from sitewatch.cli.main import main
from sitewatch.errors import InputError, SourceError
from wayback_fixtures import (
    CAPTURES,
    CHRONOLOGICAL,
    EXPECTED_VINTAGES,
    PNG_RELEASE,
    RELEASES,
    SMALL_BOX,
    SNAPSHOT_RELEASE,
    build_wayback_fixture,
    small_feature,
    tile_colour,
)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("wayback_root")
    log = tmp_path_factory.mktemp("wayback_log") / "requests.log"
    with serve_range(root, log) as server:
        facts = build_wayback_fixture(root, server.url)
        server.facts = facts
        yield server


@pytest.fixture(autouse=True)
def fast(monkeypatch, service):
    monkeypatch.delenv("SITEWATCH_WAYBACK_CONFIG", raising=False)
    monkeypatch.delenv("SITEWATCH_HTTP_TIMEOUT", raising=False)
    service.reset()
    yield
    service.reset()


@pytest.fixture
def small_aoi(tmp_path):
    path = tmp_path / "feb11-small.geojson"
    path.write_text(json.dumps(small_feature()), encoding="utf-8")
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_doctests_of_the_tile_maths():
    result = doctest.testmod(wb, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 8 and result.failed == 0


def test_releases_are_sorted_by_title_date_not_number(service, monkeypatch):
    releases = wb.load_releases(service.facts["config_url"])
    assert [r.number for r in releases] == CHRONOLOGICAL  # undated "99" skipped
    assert [r.release_date for r in releases] == sorted(d for d, _, _ in RELEASES.values())
    r = releases[0]
    assert (r.number, r.title, r.layer_identifier) == (
        10,
        "World Imagery (Wayback 2014-02-20)",
        "WB_2014_R01",
    )
    monkeypatch.setenv("SITEWATCH_WAYBACK_CONFIG", service.facts["config_url"])
    assert wb.wayback_config_url() == service.facts["config_url"]
    assert [x.number for x in wb.load_releases()] == CHRONOLOGICAL


def test_walk_returns_the_distinct_vintages_with_capture_dates(service):
    vintages = wb.list_vintages(load_aoi("feb11-plant"), config_url=service.facts["config_url"])
    assert [v.release.number for v in vintages] == EXPECTED_VINTAGES
    for v in vintages:
        day, provider, sensor, res, acc = CAPTURES[v.release.number]
        assert (v.capture_date, v.provider, v.sensor, v.resolution_m, v.accuracy_m) == (
            day,
            provider,
            sensor,
            res,
            acc,
        )
        assert v.capture_date != v.release.release_date
    # Only the tilemaps the walk needs: newest, then the one just older than each select.
    col, row = service.facts["plant_tile"]
    tilemaps = service.paths(service.facts["tilemap_dir"])
    assert tilemaps == [
        f"{service.facts['tilemap_dir']}/{n}/17/{row}/{col}" for n in (56102, 577, 10)
    ]
    assert all("/MapServer/6/query" in p for p in service.paths("/metadata/"))
    assert len(service.paths("/metadata/")) == 3
    assert service.paths(service.facts["tile_dir"]) == []  # the walk fetches no imagery


def test_walk_stops_at_a_tile_without_data(service):
    vintages = wb.list_vintages(
        load_aoi("feb11-plant"), zoom=16, config_url=service.facts["config_url"]
    )
    assert [v.release.number for v in vintages] == [42663]
    assert all("/MapServer/7/query" in p for p in service.paths("/metadata/"))


def test_cli_table(service, capsys):
    code, out, err = run(
        capsys, "wayback", "feb11-plant", "--wayback-config", service.facts["config_url"]
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("3 distinct Wayback vintage(s) of 5 releases at February 11 Plant")
    assert "release date ≠ capture date" in lines[1]
    assert lines[2].split() == ["released", "release", "captured", "provider", "sensor", "res", "m"]
    rows = [ln.split() for ln in lines[3:6]]
    assert [r[1] for r in rows] == [str(n) for n in EXPECTED_VINTAGES]
    assert rows[0] == ["2022-01-12", "42663", "2021-10-03", "Maxar", "WV03", "0.31"]
    assert rows[2][:3] == ["2014-02-20", "10", "2012-09-30"]
    assert "Esri, Maxar, Earthstar Geographics, and the GIS User Community" in lines[6]
    assert "viewing" in lines[7] and "do not" in lines[7]


def test_cli_json(service, capsys):
    code, out, err = run(
        capsys, "wayback", "feb11-plant", "--json", "--wayback-config", service.facts["config_url"]
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["aoi"] == "feb11-plant"
    assert [v["release"] for v in doc["vintages"]] == EXPECTED_VINTAGES
    assert [v["capture_date"] for v in doc["vintages"]] == [
        CAPTURES[n][0] for n in EXPECTED_VINTAGES
    ]
    assert doc["vintages"][0]["release_date"] == "2022-01-12"
    assert doc["tile"] == {"level": 17, "row": service.facts["plant_tile"][1], "col": 112014}


def read_png(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            assert ds.driver == "PNG"
            return ds.read(), ds.tags()


def _merc(lon, lat):
    r = 6378137.0
    return r * math.radians(lon), r * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def test_snapshot_png_covers_the_polygon_and_stores_nothing_else(
    service, capsys, small_aoi, tmp_path, monkeypatch
):
    work, temp = tmp_path / "cwd", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("TMPDIR", str(temp))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, out, err = run(
        capsys,
        "wayback",
        "--aoi-file",
        str(small_aoi),
        "--wayback-config",
        service.facts["config_url"],
        "--snapshot",
        "latest",
        "--out",
        str(out_dir / "snap.png"),
    )
    assert code == 0, err
    assert f"wrote {out_dir / 'snap.png'}" in out and "captured 2021-10-03" in out
    assert sorted(p.name for p in out_dir.iterdir()) == ["snap.json", "snap.png"]
    assert list(work.iterdir()) == [] and list(temp.iterdir()) == []

    # Only the four tiles over the bbox, once each, from the newest distinct vintage.
    tile_gets = service.paths(service.facts["tile_dir"])
    assert sorted(tile_gets) == sorted(service.facts["tiles"][SNAPSHOT_RELEASE])

    # Size: the bbox in Web Mercator pixels at zoom 17.
    w, s, e, n = SMALL_BOX
    res = 2 * math.pi * 6378137.0 / (256 * 2**17)
    c0, r0, _, _ = service.facts["tile_range"]
    left = -math.pi * 6378137.0 + c0 * 256 * res
    top = math.pi * 6378137.0 - r0 * 256 * res
    (x0, y1), (x1, y0) = _merc(w, n), _merc(e, s)
    width = math.ceil((x1 - left) / res) - math.floor((x0 - left) / res)
    height = math.ceil((top - y0) / res) - math.floor((top - y1) / res)
    img, tags = read_png(out_dir / "snap.png")
    assert img.shape == (3, height, width)
    assert "Earthstar Geographics" in tags["Copyright"]
    # The outline is burned in along the edges; inside, each quadrant shows its tile.
    magenta = (img[0] == 255) & (img[1] == 0) & (img[2] == 255)
    assert magenta[:, :3].any(axis=1).mean() > 0.9 and magenta[:3, :].any(axis=0).mean() > 0.9
    assert not magenta[10:-10, 10:-10].any()
    seen = {
        tuple(int(v) for v in img[:, y, x]) for y in (12, height - 12) for x in (12, width - 12)
    }
    expected = {tile_colour(dc, dr) for dc in (0, 1) for dr in (0, 1)}
    assert all(min(np.abs(np.subtract(c, t)).max() for t in expected) <= 4 for c in seen)
    assert len(seen) == 4

    side = json.loads((out_dir / "snap.json").read_text(encoding="utf-8"))
    assert side["release"] == SNAPSHOT_RELEASE and side["capture_date"] == "2021-10-03"
    assert side["release_date"] == "2022-01-12" and side["zoom"] == 17
    assert side["attribution"] == "Esri, Maxar, Earthstar Geographics, and the GIS User Community"
    assert len(side["tiles"]) == 4 and side["missing_tiles"] == []
    assert side["size"] == [width, height]


def test_snapshot_of_a_numbered_release_paints_missing_tiles_grey(service, small_aoi, tmp_path):
    releases = wb.load_releases(service.facts["config_url"])
    release = wb.find_release(releases, PNG_RELEASE)
    shot = wb.snapshot(load_aoi_file(small_aoi), release, out_png=tmp_path / "old.png")
    assert shot.vintage.capture_date == "2015-06-18" and shot.zoom == 17
    assert len(shot.tiles) == 4 and len(shot.missing_tiles) == 1
    assert shot.missing_tiles[0].endswith(service.facts["missing_tile"])
    img, _ = read_png(shot.png)
    assert tuple(int(v) for v in img[:, 12, -12]) == (128, 128, 128)  # top-right: missing
    assert tuple(int(v) for v in img[:, -12, 12]) == tile_colour(0, 1)  # PNG tiles: exact


def test_snapshot_refuses_too_many_tiles_before_any_request(service, tmp_path):
    release = wb.Release(
        1, "2020-01-01", "t", "http://127.0.0.1:9/tile/1/{level}/{row}/{col}", "", ""
    )
    with pytest.raises(
        InputError, match=r"needs \d+ tiles at zoom 17, more than 16; use --zoom 15 or lower"
    ):
        wb.snapshot(load_aoi("feb11-plant"), release, zoom=17, out_png=tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []
    # Without --zoom the highest zoom that fits is chosen.
    assert wb._pick_zoom(load_aoi("feb11-plant").geometry.bounds, None, 16) == 15


def test_a_500_once_is_retried(service):
    col, row = service.facts["plant_tile"]
    path = f"{service.facts['tilemap_dir']}/577/17/{row}/{col}"
    service.set_faults({path: {"status": 500, "times": 1}})
    vintages = wb.list_vintages(load_aoi("feb11-plant"), config_url=service.facts["config_url"])
    assert [v.release.number for v in vintages] == EXPECTED_VINTAGES
    assert [r["status"] for r in service.requests() if r["path"] == path] == [500, 200]


def test_truncated_json_and_timeouts_are_retried(service, monkeypatch):
    aoi = load_aoi("feb11-plant")
    meta = f"/metadata/arcgis/rest/services/{RELEASES[42663][2]}/MapServer/6/query"
    service.set_faults({meta: {"truncate": 20, "times": 1}})
    vintages = wb.list_vintages(aoi, config_url=service.facts["config_url"])
    assert vintages[0].capture_date == "2021-10-03"
    assert len([p for p in service.paths() if p == meta]) == 2

    service.reset()
    monkeypatch.setenv("SITEWATCH_HTTP_TIMEOUT", "0.2")
    service.set_faults({"/config/waybackconfig.json": {"delay": 1.0, "times": 1}})
    start = time.monotonic()
    assert [r.number for r in wb.load_releases(service.facts["config_url"])] == CHRONOLOGICAL
    assert time.monotonic() - start < 0.9  # the first try timed out; the second answered


def test_arcgis_error_bodies_with_http_200_fail(service):
    with pytest.raises(SourceError, match="ArcGIS error 400: Invalid or missing"):
        wb._get_json(f"{service.url}/errors/arcgis_400.json")
    assert len(service.paths("/errors/")) == 1  # a client error is not retried
    with pytest.raises(SourceError, match=r"after 3 tries \(ArcGIS error 500"):
        wb._get_json(f"{service.url}/errors/arcgis_500.json")
    assert len(service.paths("/errors/")) == 4


def test_persistent_500_exits_3_with_one_line_and_no_png(service, capsys, small_aoi, tmp_path):
    bad = service.facts["tiles"][SNAPSHOT_RELEASE][2]
    service.set_faults({bad: {"status": 500, "times": 50}})
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _out, err = run(
        capsys,
        "wayback",
        "--aoi-file",
        str(small_aoi),
        "--wayback-config",
        service.facts["config_url"],
        "--snapshot",
        "latest",
        "--out",
        str(out_dir / "snap.png"),
    )
    assert code == 3
    lines = err.splitlines()
    assert len(lines) == 3 and all("trying again" in ln for ln in lines[:2])
    assert bad in lines[-1] and "after 3 tries (HTTP 500)" in lines[-1]
    assert "check the network or --wayback-config" in lines[-1]
    assert list(out_dir.iterdir()) == []
    assert [r["status"] for r in service.requests() if r["path"] == bad] == [500, 500, 500]


def test_unreachable_config_exits_3(capsys, monkeypatch):
    monkeypatch.setenv("SITEWATCH_HTTP_TIMEOUT", "2")
    code, _, err = run(
        capsys, "wayback", "feb11-plant", "--wayback-config", "http://127.0.0.1:9/none.json"
    )
    lines = err.splitlines()
    assert code == 3 and len(lines) == 3 and lines[-1].startswith("sitewatch: error: ")
    assert "127.0.0.1:9/none.json" in lines[-1] and "refused the connection" in lines[-1]


def test_unlocated_aoi_exits_2_before_any_request(service, capsys):
    code, out, err = run(
        capsys, "wayback", "kanggye-tractor-plant", "--wayback-config", service.facts["config_url"]
    )
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "kanggye-tractor-plant" in err
    assert "no sourced location" in err
    assert service.requests() == []


def test_bad_options_exit_2(capsys, service):
    code, _, err = run(capsys, "wayback", "feb11-plant", "--out", "x.png")
    assert code == 2 and "--out needs --snapshot" in err
    code, _, err = run(capsys, "wayback", "feb11-plant", "--snapshot", "soon", "--out", "x.png")
    assert code == 2 and "not a release number" in err
    code, _, err = run(
        capsys,
        "wayback",
        "feb11-plant",
        "--wayback-config",
        service.facts["config_url"],
        "--snapshot",
        "12345",
        "--out",
        "x.png",
    )
    assert code == 2 and "release 12345 is not in the Wayback config" in err


def _run_dir(tmp_path, ring):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    feature = {
        "type": "Feature",
        "id": "c001",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"id": "c001", "area_m2": 1000.0},
    }
    (run_dir / "changes.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8"
    )
    return run_dir


def test_snapshot_of_a_flagged_change(service, capsys, tmp_path):
    # A 30 m polygon in the middle of the fixture's tiles: the view adds 100 m around it.
    lon, lat = (SMALL_BOX[0] + SMALL_BOX[2]) / 2, (SMALL_BOX[1] + SMALL_BOX[3]) / 2
    d = 0.00015
    ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d]]
    run_dir = _run_dir(tmp_path, [*ring, ring[0]])
    code, out, err = run(
        capsys,
        "wayback",
        "feb11-plant",
        "--change",
        f"{run_dir}:c001",
        "--wayback-config",
        service.facts["config_url"],
        "--snapshot",
        "latest",
        "--out",
        str(tmp_path / "c001.png"),
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["change"] == f"{run_dir}:c001"
    assert doc["point"] == pytest.approx([lon, lat], abs=1e-4)
    assert doc["snapshot"]["capture_date"] == "2021-10-03"
    img, _ = read_png(tmp_path / "c001.png")
    # 30 m + 2 x 100 m of ground at about 0.92 m per zoom-17 pixel (cos 39.9°).
    assert 200 < img.shape[1] < 300 and 200 < img.shape[2] < 300
    # The flagged polygon is outlined, inside the view; the view's own edge is not.
    magenta = (img[0] == 255) & (img[1] == 0) & (img[2] == 255)
    h, w = magenta.shape
    assert magenta[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].any()
    assert not magenta[:10].any() and not magenta[-10:].any()


def test_unknown_change_id_is_exit_2(service, capsys, tmp_path):
    run_dir = _run_dir(
        tmp_path, [[127.65, 39.92], [127.66, 39.92], [127.66, 39.93], [127.65, 39.92]]
    )
    code, _, err = run(capsys, "wayback", "feb11-plant", "--change", f"{run_dir}:c009")
    assert code == 2 and "no change 'c009'" in err and "c001" in err
    code, _, err = run(capsys, "wayback", "feb11-plant", "--change", "nowhere:c001")
    assert code == 2 and "does not exist" in err
