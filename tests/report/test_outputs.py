"""The run folder: attributes, GeoPackage, COGs, report.html and its rebuild."""

from __future__ import annotations

import base64
import json
import re
import shutil
import sqlite3
import subprocess
import warnings

import numpy as np
import pytest
import rasterio

from sitewatch import load_run
from sitewatch.cli.main import main
from sitewatch.report.gpkg import read_gpkg

ATTRIBUTES = {
    "id",
    "area_m2",
    "centroid",
    "first_seen",
    "before_date",
    "after_date",
    "score_mean",
    "score_max",
    "p_no_change",
    "clear_fraction",
    "coreg_residual_px",
    "method",
    "threshold",
}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    return out


def test_polygons_carry_their_evidence(demo_run):
    fc = json.loads((demo_run / "changes.geojson").read_text())
    meta = fc["sitewatch"]
    assert meta["aoi"].startswith("demo-") and meta["aoi_confidence"] == "high"
    for f in fc["features"]:
        p = f["properties"]
        assert set(p) >= ATTRIBUTES, ATTRIBUTES - set(p)
        assert p["first_seen"] == p["after_date"] == meta["after"]
        assert p["before_date"] == meta["before"]
        assert 0 <= p["p_no_change"] <= 1 and 0 < p["clear_fraction"] <= 1
        assert p["threshold"] == pytest.approx(meta["threshold"]["value"], abs=1e-3)
    # Changed pixels are unlikely under IR-MAD's no-change model.
    assert np.median([f["properties"]["p_no_change"] for f in fc["features"]]) < 0.05


def test_geopackage_is_a_valid_gpkg_with_the_same_polygons(demo_run):
    path = demo_run / "changes.gpkg"
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
        assert con.execute("PRAGMA user_version").fetchone()[0] == 10300
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        contents = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents"))
        assert contents == {"changes": "features", "sitewatch_run": "attributes"}
        srs = con.execute(
            "SELECT srs_id FROM gpkg_geometry_columns WHERE table_name = 'changes'"
        ).fetchone()[0]
        assert srs == 4326
        desc = json.loads(
            con.execute(
                "SELECT description FROM gpkg_contents WHERE table_name='changes'"
            ).fetchone()[0]
        )
        assert desc["aoi"].startswith("demo-") and desc["aoi_confidence"] == "high"
        blob = con.execute("SELECT geom FROM changes LIMIT 1").fetchone()[0]
        assert blob[:2] == b"GP" and blob[2] == 0  # GeoPackage binary header, version 0
    finally:
        con.close()
    fc = json.loads((demo_run / "changes.geojson").read_text())
    back = read_gpkg(path)
    assert [f["properties"]["id"] for f in back] == [f["properties"]["id"] for f in fc["features"]]
    from shapely.geometry import shape

    for a, b in zip(back, fc["features"], strict=True):
        assert shape(a["geometry"]).equals_exact(shape(b["geometry"]), 1e-9)
        assert a["properties"]["area_m2"] == b["properties"]["area_m2"]


@pytest.mark.parametrize("name", ["score.tif", "mask.tif", "before.tif", "after.tif"])
def test_rasters_are_cloud_optimized(demo_run, name):
    with rasterio.open(demo_run / name) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.profile["tiled"] and ds.crs is not None
        run = load_run(demo_run)
        assert (ds.height, ds.width) == run.shape and ds.transform == run.transform


def test_report_embeds_every_image_and_the_evidence(demo_run):
    html = (demo_run / "report.html").read_text(encoding="utf-8")
    assert "<h2>Where, and on whose word</h2>" in html and "Working box" in html
    assert "Method and caveats" in html and "Copernicus" in html
    fc = json.loads((demo_run / "changes.geojson").read_text())
    for f in fc["features"][:20]:
        assert f"id='{f['id']}'" in html  # a chip section per change
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 4 + 2 * min(20, len(fc["features"]))
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'src="http' not in html  # nothing fetched when opened offline


def test_report_rebuilds_from_the_run_folder_alone(demo_run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(demo_run, copy)
    for p in [copy / "report.html", *copy.glob("quicklooks/*.png"), *copy.glob("chips/*.png")]:
        p.unlink()
    assert main(["report", str(copy)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (copy / "report.html").is_file() and (copy / "quicklooks" / "overlay.png").is_file()
    assert len(list((copy / "chips").glob("*.png"))) == len(list((demo_run / "chips").glob("*")))


def test_report_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a sitewatch run folder" in err
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(demo_run, tmp_path):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = (demo_run / "report.html").as_uri()
    shot = tmp_path / "report.png"
    run = subprocess.run(
        [_chromium(), *flags, "--window-size=1200,3000", f"--screenshot={shot}", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(shot) as ds:
            img = ds.read()
    assert img.shape[1:] == (3000, 1200)
    assert img.std() > 20  # a page with text and pictures, not a blank or error page
    dom = subprocess.run(
        [_chromium(), *flags, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0
    assert "Mumbai demo crop" in dom.stdout and "Method and caveats" in dom.stdout
    assert "ERR_" not in dom.stdout


def test_a_failed_rebuild_leaves_the_previous_report(demo_run, tmp_path, monkeypatch, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(demo_run, copy)
    before = {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*.png")}
    html = (copy / "report.html").read_bytes()

    import sitewatch.report.quicklooks as ql

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while drawing chips")

    monkeypatch.setattr(ql, "render_chips", broken)
    assert main(["report", str(copy)]) == 1
    assert (copy / "report.html").read_bytes() == html
    assert {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*.png")} == before
    assert not list(copy.glob(".report-*"))  # no staging folder left behind
