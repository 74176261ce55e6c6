"""sitewatch search against a real STAC API (rustac) and real HTTP range reads, on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import sitewatch.sources.stac as stac
from sitewatch.cli.main import main

A = "S2B_T52SCK_20200610T021609_L2A"  # scene-wide 5 % cloud, but the AOI is 69 % cloud
B = "S2B_T52SCK_20200620T021609_L2A"  # scene-wide 40 % cloud, the AOI is clear


def search(capsys, stac_api, *extra):
    code = main(
        [
            "search",
            "feb11-plant",
            "--from",
            "2020-06-01",
            "--to",
            "2020-06-30",
            "--stac-url",
            stac_api.url,
            *extra,
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_aoi_local_clear_fraction_beats_scene_cloud_cover(stac_api, range_server, capsys):
    range_server.set_faults({})
    range_server.reset_log()
    code, out, err = search(capsys, stac_api, "--json")
    assert code == 0, err
    scenes = json.loads(out)["scenes"]
    assert [s["item_id"] for s in scenes] == [B, A]
    by_id = {s["item_id"]: s for s in scenes}
    assert by_id[A]["cloud_cover"] < by_id[B]["cloud_cover"]  # the catalog prefers A ...
    assert by_id[B]["clear_fraction"] > 0.99  # ... the AOI says B
    assert by_id[A]["clear_fraction"] == pytest.approx(1 - 0.693, abs=0.03)


def test_the_mask_is_read_by_range_requests_only(stac_api, range_server, tmp_path):
    # A fresh process, so GDAL's in-process cache cannot hide requests.
    range_server.set_faults({})
    range_server.reset_log()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sitewatch.cli.main",
            "search",
            "feb11-plant",
            "--from",
            "2020-06-01",
            "--to",
            "2020-06-30",
            "--stac-url",
            stac_api.url,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for item in (A, B):
        gets = [
            r
            for r in range_server.requests()
            if r["path"] == f"/{item}/SCL.tif" and r["method"] == "GET"
        ]
        assert gets and all(r["range"] and r["status"] == 206 for r in gets)
    # Nothing but the two cloud masks is fetched (no band, no sidecar probing).
    fetched = {r["path"] for r in range_server.requests()}
    assert fetched == {f"/{A}/SCL.tif", f"/{B}/SCL.tif"}


def test_table_output(stac_api, range_server, capsys):
    range_server.set_faults({})
    code, out, _ = search(capsys, stac_api)
    assert code == 0
    lines = out.splitlines()
    assert "clearest over the AOI first" in lines[0]
    assert lines[2].endswith(B) and "40.0 %" in lines[2] and "100.0 %" in lines[2]


def test_a_transient_5xx_is_retried(stac_api, range_server, capsys):
    range_server.set_faults({f"/{B}/SCL.tif": {"status": 503, "times": 1}})
    code, out, err = search(capsys, stac_api, "--json")
    assert code == 0, err
    statuses = [r["status"] for r in range_server.requests() if r["path"] == f"/{B}/SCL.tif"]
    assert 503 in statuses
    assert json.loads(out)["scenes"][0]["item_id"] == B


def test_an_unreadable_item_is_skipped_with_a_note(stac_api, range_server, capsys):
    """Issue 12, point 2: one item that cannot be read does not abort the search."""
    range_server.set_faults({f"/{B}/SCL.tif": {"status": 500, "times": 50}})
    try:
        code, out, err = search(capsys, stac_api, "--json", "--no-cache")
    finally:
        range_server.set_faults({})
    assert code == 0, err
    doc = json.loads(out)
    assert [s["item_id"] for s in doc["scenes"]] == [A]
    assert [s["item_ids"] for s in doc["skipped"]] == [[B]]
    assert "after 3 tries" in doc["skipped"][0]["reason"]
    notes = [ln for ln in err.splitlines() if ln.strip()]
    assert any(ln.startswith("sitewatch: skipped " + B) for ln in notes), err
    assert "Traceback" not in err


def test_persistent_failure_of_every_item_is_exit_3_with_one_line(stac_api, range_server, capsys):
    range_server.set_faults({f"/{x}/SCL.tif": {"status": 500, "times": 50} for x in (A, B)})
    try:
        code, _, err = search(capsys, stac_api, "--no-cache")
    finally:
        range_server.set_faults({})
    assert code == 3
    lines = err.strip().splitlines()
    assert lines[-1].startswith("sitewatch: error: ") and "after 3 tries" in lines[-1]
    progress = [ln for ln in lines[:-1] if "skipped" not in ln]
    assert all("trying again" in ln for ln in progress)  # progress before the one error
    assert "Traceback" not in err


def test_unreachable_api_is_exit_3(capsys):
    code = main(
        [
            "search",
            "feb11-plant",
            "--from",
            "2020-06-01",
            "--to",
            "2020-06-30",
            "--stac-url",
            "http://127.0.0.1:9/",
        ]
    )
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 3 and lines[-1].startswith("sitewatch: error: ") and "STAC API" in lines[-1]
    assert "refused the connection" in lines[-1]
    assert lines[:-1] == [
        f"sitewatch: the STAC API http://127.0.0.1:9/ refused the connection; trying again ({n}/3)"
        for n in (2, 3)
    ]


def test_bad_dates_and_unlocated_aoi(capsys):
    assert main(["search", "feb11-plant", "--from", "2020-13-01", "--to", "2020-06-30"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["search", "kursk-oblast", "--from", "2020-06-01", "--to", "2020-06-30"]) == 2
    assert "no sourced location" in capsys.readouterr().err


def test_parse_window():
    assert stac.parse_window("2024-02") == ("2024-02-01", "2024-02-29")
    with pytest.raises(stac.InputError):
        stac.parse_window("2024-06-01/2024-05-01")


def test_detect_with_dates_finds_the_planted_building(
    stac_api, range_server, s2_fixture, tmp_path, capsys
):
    range_server.set_faults({})
    out = tmp_path / "feb11"
    code = main(
        [
            "detect",
            "feb11-plant",
            "--before",
            "2020-06",
            "--after",
            "2024-10",
            "--stac-url",
            stac_api.url,
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"before: 2020-06-20 {B}" in captured.err  # the AOI-clear scene, not the 5 % one
    fc = json.loads((out / "changes.geojson").read_text())
    lon, lat = s2_fixture["building_lonlat"]
    hits = [
        f
        for f in fc["features"]
        if abs(f["properties"]["centroid"][0] - lon) < 0.001
        and abs(f["properties"]["centroid"][1] - lat) < 0.001
    ]
    assert len(hits) == 1
    assert 6_000 < hits[0]["properties"]["area_m2"] < 14_000  # planted 12 x 8 px = 9,600 m²
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["before"]["item_id"] == B
    assert manifest["inputs"]["after"]["assets"]["B04"]["scale_offset"] == [0.0001, -0.1]
    assert manifest["grid"]["crs"] == "EPSG:32652"


def test_detect_with_a_window_without_scenes(stac_api, tmp_path, capsys):
    code = main(
        [
            "detect",
            "feb11-plant",
            "--before",
            "2019-01",
            "--after",
            "2024-10",
            "--stac-url",
            stac_api.url,
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "no s2 scene over feb11-plant" in err
    assert not (tmp_path / "o").exists()


def test_a_stac_api_answering_5xx_is_retried_then_exit_3(range_server, capsys):
    # The file server plays a STAC API that keeps answering 503.
    range_server.reset_log()
    range_server.set_faults({"/stacapi": {"status": 503, "times": 50}})
    try:
        code = main(
            [
                "search",
                "feb11-plant",
                "--from",
                "2020-06-01",
                "--to",
                "2020-06-30",
                "--stac-url",
                f"{range_server.url}/stacapi",
            ]
        )
    finally:
        range_server.set_faults({})
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(lines) == 3 and "after 3 tries" in lines[-1] and "503" in lines[-1]
    assert lines[-1].startswith("sitewatch: error: ") and "trying again (3/3)" in lines[1]
    assert [r["status"] for r in range_server.requests() if r["path"] == "/stacapi"] == [503] * 3


REAL_C1_ITEM = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "stac"
    / ("S2B_T20EPT_20250731T131905_L2A.c1.trimmed.json")
)


def test_real_c1_item_parses_without_a_warning():
    """A real Earth Search C1 item declares storage:platform with https hrefs; pystac's
    migration of the storage extension warned on every one (warnings are errors here)."""
    from sitewatch.sources.stac import items_from_dicts

    doc = json.loads(REAL_C1_ITEM.read_text(encoding="utf-8"))
    assert doc["properties"].get("storage:platform") or any(
        "storage:" in k for a in doc["assets"].values() for k in a
    )
    (item,) = items_from_dicts([doc])
    assert item.id == "S2B_T20EPT_20250731T131905_L2A" and "red" in item.assets


REAL_ITEMS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "stac_items"


@pytest.mark.skipif(not REAL_ITEMS.is_dir(), reason=f"{REAL_ITEMS} not present")
def test_real_earth_search_items_parse_without_a_warning():
    """Real C1 items declare storage:platform with https hrefs; pystac's migration of the
    storage extension warned on every one of them (warnings are errors here)."""
    import json

    from sitewatch.sources.stac import items_from_dicts

    n = 0
    for f in sorted(REAL_ITEMS.glob("*.json")):
        doc = json.loads(f.read_text(encoding="utf-8"))
        feats = doc.get("features") or ([doc] if doc.get("type") == "Feature" else [])
        items = items_from_dicts(feats)
        n += len(items)
        assert all(i.id for i in items)
    assert n >= 10
