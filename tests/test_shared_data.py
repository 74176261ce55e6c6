"""detect on real labelled data from ../shared/data (skipped when absent)."""

from __future__ import annotations

import json

import pytest

from conftest import SHARED, needs_shared
from sitewatch.cli.main import main

OSCD = SHARED / "data" / "oscd" / "Onera Satellite Change Detection dataset - Images"
SZTAKI = SHARED / "data" / "sztaki_airchange" / "SZTAKI_AirChange_Benchmark"


@needs_shared("data", "oscd")
@pytest.mark.shared
def test_detect_on_an_oscd_city(tmp_path, capsys):
    city = OSCD / "abudhabi"  # imgs_2 is a few pixels smaller: exercises resampling
    code = main(
        [
            "detect",
            "--before",
            str(city / "imgs_1"),
            "--after",
            str(city / "imgs_2"),
            "--out",
            str(tmp_path / "o"),
            "--json",
        ]
    )
    assert code == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out)
    assert doc["diagnostics"]["n_polygons"] >= 1
    assert len(doc["diagnostics"]["bands"]) == 13
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["grid"]["width"] == 785 and manifest["grid"]["height"] == 799
    assert manifest["inputs"]["before"]["acquired"] == "2016-01-20"


@needs_shared("data", "sztaki_airchange")
@pytest.mark.shared
def test_detect_on_a_sztaki_pair(tmp_path, capsys):
    pair = SZTAKI / "Szada" / "2"
    code = main(
        [
            "detect",
            "--before",
            str(pair / "im1.png"),
            "--after",
            str(pair / "im2.png"),
            "--pixel-size",
            "1.5",
            "--out",
            str(tmp_path / "o"),
            "--json",
        ]
    )
    assert code == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out)
    assert doc["diagnostics"]["n_polygons"] >= 1
    fc = json.loads((tmp_path / "o" / "changes.geojson").read_text())
    assert "pixels" in fc["sitewatch"]["coordinates"]
