"""Orbit geometry rules of Sentinel-1 scenes, without any service (issue 15)."""

from __future__ import annotations

import datetime as dt

import pystac
import pytest

from sitewatch.cli.main import main
from sitewatch.errors import DataError, InputError
from sitewatch.sources.sentinel1 import (
    OrbitGeometry,
    S1Scene,
    S1Stack,
    group_by_geometry,
    orbit_geometry,
    parse_orbit,
    pick_geometry,
)
from sitewatch.sources.stac import SceneCandidate


def item(i: int, state: str | None = "ascending", rel: int | None = 127) -> pystac.Item:
    props = {"sat:orbit_state": state, "sat:relative_orbit": rel}
    props = {k: v for k, v in props.items() if v is not None}
    it = pystac.Item(
        f"S1_{i}", None, None, dt.datetime(2024, 1, 1) + dt.timedelta(days=12 * i), props
    )
    for key in ("vv", "vh"):
        it.add_asset(key, pystac.Asset(f"https://x/{i}/{key}.tif"))
    return it


def cand(it: pystac.Item) -> SceneCandidate:
    return SceneCandidate(
        item_id=it.id,
        collection="sentinel-1-rtc",
        datetime=it.datetime.isoformat(),
        platform="",
        tile="",
        cloud_cover=None,
        clear_fraction=None,
        aoi_pixels=0,
        mask_href=None,
        item=it,
        item_ids=(it.id,),
        items=(it,),
    )


def test_scenes_of_two_geometries_are_never_one_stack():
    a = S1Scene([item(0)])
    d = S1Scene([item(1, "descending", 32)])
    with pytest.raises(DataError, match="different orbit geometries"):
        S1Stack([a, d])
    with pytest.raises(DataError, match="spans orbit geometries"):
        S1Scene([item(0), item(1, "ascending", 54)])


def test_group_and_pick_geometry():
    asc = [cand(item(i)) for i in range(5)]
    desc = [cand(item(10 + i, "descending", 32)) for i in range(3)]
    groups = group_by_geometry(desc + asc)
    assert {g.label: len(v) for g, v in groups.items()} == {"ascending 127": 5, "descending 32": 3}
    assert pick_geometry([asc + desc]) == OrbitGeometry("ascending", 127)
    # a pair: the geometry must be in both windows; the poorer window decides
    assert pick_geometry([asc[:1] + desc[:2], desc[2:] + asc[1:]]) == OrbitGeometry(
        "ascending", 127
    )
    assert pick_geometry([asc + desc], orbit="desc") == OrbitGeometry("descending", 32)
    assert pick_geometry([asc + desc], orbit="ascending-127").relative_orbit == 127
    with pytest.raises(DataError, match="every window"):
        pick_geometry([asc, desc])
    with pytest.raises(DataError, match="--orbit 99"):
        pick_geometry([asc + desc], orbit="99")


def test_orbit_fields_are_required_and_parsed():
    with pytest.raises(DataError, match="sat:orbit_state"):
        orbit_geometry(item(0, None, None))
    with pytest.raises(InputError, match="--orbit"):
        parse_orbit("north")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [
                "detect",
                "feb11-plant",
                "--source",
                "s2,s1",
                "--before",
                "2024-01",
                "--after",
                "2024-06",
            ],
            "detect compares one sensor",
        ),
        (
            ["timeline", "feb11-plant", "--source", "s1", "--images", "a.tif", "b.tif"],
            "--images are optical files",
        ),
        (
            [
                "timeline",
                "feb11-plant",
                "--source",
                "s1",
                "--from",
                "2024-01",
                "--to",
                "2024-06",
                "--alpha",
                "2",
            ],
            "--alpha 2 must be between 0 and 1",
        ),
        (
            [
                "detect",
                "feb11-plant",
                "--source",
                "s1",
                "--before",
                "2024-01",
                "--after",
                "2024-06",
                "--scenes",
                "0",
            ],
            "--scenes 0 must be at least 1",
        ),
    ],
)
def test_radar_option_errors_are_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err
    assert not (tmp_path / "out").exists()


def test_radar_options_name_python_arguments():
    from sitewatch import RadarOptions

    with pytest.raises(InputError, match=r"alpha= 2 must be between 0 and 1"):
        RadarOptions(alpha=2)
    with pytest.raises(InputError, match=r"scenes= 0"):
        RadarOptions(scenes=0)
    with pytest.raises(InputError, match=r"enl= -1"):
        RadarOptions(enl=-1.0)
