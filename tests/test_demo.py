"""The bundled demo: real Sentinel-2 sample, offline, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import rasterio

from sitewatch.cli.main import main
from sitewatch.data import demo_paths


def test_bundled_sample_is_small_and_attributed():
    paths = demo_paths()
    root = paths["before"].parent
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert total <= 2_000_000
    text = paths["source"].read_text(encoding="utf-8")
    assert "Copernicus Sentinel data" in text and "make_demo_sample.py" in text
    assert not list(root.rglob("*cm*"))  # labels are not shipped
    with rasterio.open(paths["before"] / "B02.tif") as ds:
        assert ds.crs is not None and ds.count == 1


def test_demo_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "change polygon" in text and "report.html" in text
    # The full report set.
    for name in (
        "changes.geojson",
        "changes.gpkg",
        "score.tif",
        "mask.tif",
        "before.tif",
        "after.tif",
        "report.html",
        "manifest.json",
        "quicklooks/before.png",
        "quicklooks/after.png",
        "quicklooks/score.png",
        "quicklooks/overlay.png",
        "chips/c001_before.png",
        "chips/c001_after.png",
    ):
        assert (out / name).is_file(), name
    fc = json.loads((out / "changes.geojson").read_text(encoding="utf-8"))
    assert len(fc["features"]) >= 1
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["aoi"]["id"].startswith("demo-")
    assert manifest["inputs"]["before"]["acquired"] < manifest["inputs"]["after"]["acquired"]
    assert len(manifest["inputs"]["before"]["files"]) == 13
    # A second run replaces its own earlier output without --overwrite.
    assert main(["demo", "--out", str(out), "--quiet"]) == 0


def test_demo_refuses_to_overwrite_foreign_folder(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["demo", "--out", str(out)]) == 2
    assert (out / "notes.txt").exists()
    assert "--overwrite" in capsys.readouterr().err


def test_demo_files_are_inside_the_package():
    assert Path(demo_paths()["aoi"]).is_file()
