"""One acquisition, one scene (issue 12, point 5): split granules of a datatake, on loopback.

An acquisition split across two granules (two datastrips, or two overlapping MGRS
tiles), each nodata over half of the AOI, is one scene: ``search`` lists it once at
~100 % AOI clear, ``detect`` mosaics both granules, and a composite counts it once.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import serve_stac
from sitewatch.cli.main import main

B = "S2B_T52SCK_20200620T021609_L2A"  # fixture item whose AOI is clear: the granules' source
WEST = "S2A_T52SCK_20210710T022601_L2A_W"  # one datatake, western half of the AOI
EAST = "S2A_T52SCK_20210710T022604_L2A_E"  # the same datatake, eastern half
OTHER = "S2A_T52SCK_20210720T022601_L2A"  # another acquisition, AOI clear
DATATAKE = "GS2A_20210710T022601_031637_N05.10"
SPLIT_COL_10M = 227  # the AOI spans 10 m columns ~74-380 of the fixture tile


def _granule(src: Path, dst: Path, keep: str | None) -> None:
    """Copy an item's COGs, setting one half of the tile to nodata (0)."""
    dst.mkdir(parents=True, exist_ok=True)
    for tif in sorted(src.glob("*.tif")):
        with rasterio.open(tif) as ds:
            data, profile = ds.read(1), ds.profile
        split = SPLIT_COL_10M * 10 // round(ds.transform.a)
        if keep == "west":
            data[:, split:] = 0
        elif keep == "east":
            data[:, :split] = 0
        profile.update(driver="COG", blocksize=512, compress="DEFLATE")
        for k in ("blockxsize", "blockysize", "tiled", "interleave"):
            profile.pop(k, None)
        with rasterio.open(dst / tif.name, "w", **profile) as out:
            out.write(data, 1)


@pytest.fixture(scope="module")
def split_api(range_server, s2_fixture, tmp_path_factory) -> Iterator[str]:
    """A STAC API with the fixture's items plus a split datatake and one other acquisition."""
    root = Path(range_server.root)
    doc = json.loads(Path(s2_fixture["items"]).read_text(encoding="utf-8"))
    template = next(f for f in doc["features"] if f["id"] == B)
    added = []
    for item_id, when, keep, datatake in (
        (WEST, "2021-07-10T02:26:12.024000Z", "west", DATATAKE),
        (EAST, "2021-07-10T02:26:15.410000Z", "east", DATATAKE),
        (OTHER, "2021-07-20T02:26:12.024000Z", None, "GS2A_20210720T022601_031780_N05.10"),
    ):
        _granule(root / B, root / item_id, keep)
        feat = copy.deepcopy(template)
        feat["id"] = item_id
        feat["properties"].update(
            {
                "datetime": when,
                "platform": "sentinel-2a",
                "s2:datatake_id": datatake,
                "eo:cloud_cover": 10.0,
                "s2:nodata_pixel_percentage": 0.0 if keep is None else 50.0,
            }
        )
        for asset in feat["assets"].values():
            asset["href"] = asset["href"].replace(f"/{B}/", f"/{item_id}/")
        added.append(feat)
    folder = tmp_path_factory.mktemp("split_stac")
    items = folder / "items.json"
    items.write_text(
        json.dumps({"type": "FeatureCollection", "features": doc["features"] + added}),
        encoding="utf-8",
    )
    with serve_stac([Path(s2_fixture["collection"]), items], folder) as url:
        yield url


def test_search_lists_a_split_acquisition_once_and_clear(split_api, range_server, capsys):
    range_server.set_faults({})
    code = main(
        [
            "search",
            "feb11-plant",
            "--from",
            "2021-07-10",
            "--to",
            "2021-07-10",
            "--stac-url",
            split_api,
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    scenes = json.loads(out)["scenes"]
    assert len(scenes) == 1  # one acquisition, not two half-empty scenes
    assert sorted(scenes[0]["item_ids"]) == sorted([EAST, WEST])
    assert scenes[0]["granules"] == 2
    assert scenes[0]["clear_fraction"] > 0.97  # the union of the two halves

    code = main(
        [
            "search",
            "feb11-plant",
            "--from",
            "2021-07-10",
            "--to",
            "2021-07-10",
            "--stac-url",
            split_api,
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = out.splitlines()[2:-1]  # the last line counts requests and bytes
    assert len(rows) == 1 and "2 granules" in rows[0]


def test_detect_mosaics_the_granules_of_one_acquisition(split_api, range_server, tmp_path, capsys):
    range_server.set_faults({})
    out = tmp_path / "o"
    code = main(
        [
            "detect",
            "feb11-plant",
            "--before",
            "2021-07-10",
            "--after",
            "2024-10",
            "--stac-url",
            split_api,
            "--out",
            str(out),
            "--no-report",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    before = manifest["inputs"]["before"]
    assert sorted(before["item_ids"]) == sorted([EAST, WEST])
    assert {p["item_id"] for p in before["items"]} == {EAST, WEST}
    assert all(p["requests"] > 0 or p["from_cache"] for p in before["items"])  # both read
    with rasterio.open(out / "mask.tif") as ds:
        observed = ds.read(1) != 255  # 255: unobserved in either image
    assert observed.mean() > 0.9  # the mosaic covers the AOI, not half of it


def test_composite_counts_a_split_acquisition_once(split_api, range_server, tmp_path, capsys):
    range_server.set_faults({})
    out = tmp_path / "c"
    code = main(
        [
            "detect",
            "feb11-plant",
            "--before",
            "2021-07",
            "--after",
            "2024-10",
            "--composite",
            "--stac-url",
            split_api,
            "--out",
            str(out),
            "--no-report",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "median of 2 acquisitions" in err
    before = json.loads((out / "manifest.json").read_text())["inputs"]["before"]
    assert before["kind"] == "stac-composite"
    assert before["acquisitions"] == 2
    assert sorted(before["item_ids"]) == sorted([EAST, WEST, OTHER])
    assert before["scenes_per_pixel_mean"] <= 2.0
    assert np.isclose(before["scenes_per_pixel_mean"], 2.0, atol=0.1)
