"""Collection-1 gaps: fall back to legacy ``sentinel-2-l2a`` per window (issue 12, point 3).

Earth Search's ``sentinel-2-c1-l2a`` lacks Nov 2016 - Nov 2019 and 2022, and some of its
items lack band assets (earth-search issue #36). The loopback STAC API here serves the
synthetic C1 fixture plus a legacy item in 2019, and, in July 2021, a C1 item without
``nir`` next to a complete legacy item. Legacy items are shaped like the real one in
``tests/data/stac/S2A_13TDE_20231008_0_L2A.trimmed.json`` (its asset keys, properties and
``raster:bands``), with only the id, time, footprint, grid and hrefs replaced.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest

from conftest import serve_stac, stac_files
from sitewatch.aoi import load_aoi
from sitewatch.cli.main import main
from sitewatch.sources._http import NetStats
from sitewatch.sources.stac import search_scenes

TEMPLATE = Path(__file__).parents[1] / "data" / "stac" / "S2A_13TDE_20231008_0_L2A.trimmed.json"
C1 = "sentinel-2-c1-l2a"
LEGACY = "sentinel-2-l2a"
LEGACY_2019 = "S2B_52SCK_20190615_0_L2A"
C1_NO_NIR = "S2A_T52SCK_20210710T021651_L2A"
LEGACY_2021 = "S2A_52SCK_20210710_0_L2A"
GRID_PROPS = ("proj:epsg", "mgrs:utm_zone", "mgrs:latitude_band", "mgrs:grid_square", "grid:code")


def _legacy_item(c1: dict, item_id: str, when: str, platform: str) -> dict:
    """A real-shaped legacy item reading the C1 fixture item's COGs."""
    doc = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    doc["id"] = item_id
    doc["collection"] = LEGACY
    doc["bbox"], doc["geometry"] = c1["bbox"], c1["geometry"]
    doc["links"] = []
    props = doc["properties"]
    props.update({k: c1["properties"][k] for k in GRID_PROPS})
    props.update(datetime=when, platform=platform, **{"eo:cloud_cover": 1.0})
    for key in list(doc["assets"]):
        asset = doc["assets"][key]
        if key in c1["assets"]:
            src = c1["assets"][key]
            asset.update({k: src[k] for k in ("href", "proj:shape", "proj:transform")})
        elif "data" in asset.get("roles", []):
            del doc["assets"][key]  # thumbnails, metadata: kept only if they read nothing
    return doc


@pytest.fixture(scope="module")
def gap_api(s2_fixture, tmp_path_factory):
    """A STAC API over the C1 fixture, a C1 item without ``nir`` and two legacy items."""
    root = tmp_path_factory.mktemp("c1-gaps")
    features = json.loads(Path(s2_fixture["items"]).read_text(encoding="utf-8"))["features"]
    clear = next(f for f in features if f["id"].startswith("S2A_T52SCK_2024"))
    no_nir = copy.deepcopy(clear)
    no_nir["id"] = C1_NO_NIR
    no_nir["properties"]["datetime"] = "2021-07-10T02:26:31.562000Z"
    del no_nir["assets"]["nir"]
    c1_items = root / "c1-items.json"
    c1_items.write_text(json.dumps({"type": "FeatureCollection", "features": [no_nir]}))
    legacy = [
        _legacy_item(clear, LEGACY_2019, "2019-06-15T02:26:11.000000Z", "sentinel-2b"),
        _legacy_item(clear, LEGACY_2021, "2021-07-10T02:26:31.000000Z", "sentinel-2a"),
    ]
    collection = json.loads(Path(s2_fixture["collection"]).read_text(encoding="utf-8"))
    collection.update(id=LEGACY, title="Sentinel-2 Level-2A (legacy; synthetic test fixture)")
    legacy_collection = root / "legacy-collection.json"
    legacy_collection.write_text(json.dumps(collection))
    legacy_items = root / "legacy-items.json"
    legacy_items.write_text(json.dumps({"type": "FeatureCollection", "features": legacy}))
    files = [*stac_files(s2_fixture), c1_items, legacy_collection, legacy_items]
    with serve_stac(files, root) as url:
        yield url


def _search(url, start, end):
    stats, record = NetStats(), {}
    found = search_scenes(load_aoi("feb11-plant"), start, end, url=url, stats=stats, record=record)
    searches = sum(n for u, n in stats.requests.items() if u.startswith(f"{url}/search"))
    return found, record, searches


def test_a_2019_window_uses_the_legacy_item_and_the_manifest_says_so(
    gap_api, range_server, tmp_path, capsys
):
    range_server.set_faults({})
    out = tmp_path / "feb11"
    code = main(
        [
            "detect",
            "feb11-plant",
            "--before",
            "2019-06",
            "--after",
            "2024-10",
            "--stac-url",
            gap_api,
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    note = f"before: no usable {C1} item between 2019-06-01 and 2019-06-30; using {LEGACY}"
    assert note in err
    assert f"before: 2019-06-15 {LEGACY_2019}" in err
    assert "after: no usable" not in err
    manifest = json.loads((out / "manifest.json").read_text())
    before, after = manifest["inputs"]["before"], manifest["inputs"]["after"]
    assert before["item_id"] == LEGACY_2019
    assert before["collection"] == LEGACY
    assert before["search"]["collection"] == C1
    assert before["search"]["fallback"]["collection"] == LEGACY
    assert "no usable sentinel-2-c1-l2a item" in before["search"]["fallback"]["reason"]
    assert before["search"]["candidates"][0]["collection"] == LEGACY
    assert after["collection"] == C1
    assert after["search"]["fallback"] is None


def test_a_c1_item_without_nir_is_dropped_and_the_legacy_item_used(
    gap_api, range_server, caplog, capsys
):
    range_server.set_faults({})
    with caplog.at_level(logging.INFO, logger="sitewatch"):
        found, record, searches = _search(gap_api, "2021-07-01", "2021-07-31")
    assert [c.item_id for c in found] == [LEGACY_2021]
    assert found[0].collection == LEGACY
    assert record["dropped"] == [{"item_id": C1_NO_NIR, "collection": C1, "missing": ["nir"]}]
    assert record["fallback"]["collection"] == LEGACY
    assert searches == 2  # C1, then the legacy collection
    assert any(C1_NO_NIR in r.getMessage() and "nir" in r.getMessage() for r in caplog.records)

    code = main(
        [
            "search",
            "feb11-plant",
            "--from",
            "2021-07-01",
            "--to",
            "2021-07-31",
            "--stac-url",
            gap_api,
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{LEGACY_2021} [{LEGACY}]" in out
    assert C1_NO_NIR not in out
    assert f"search: no usable {C1} item between 2021-07-01 and 2021-07-31" in err


def test_a_usable_c1_item_makes_no_fallback_search(gap_api, range_server):
    range_server.set_faults({})
    found, record, searches = _search(gap_api, "2020-06-01", "2020-06-30")
    assert found and all(c.collection == C1 for c in found)
    assert {k: record[k] for k in ("collection", "dropped", "fallback", "skipped")} == {
        "collection": C1,
        "dropped": [],
        "fallback": None,
        "skipped": [],
    }
    assert searches == 1
