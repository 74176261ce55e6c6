"""CLI behaviour: exit codes, one clear error line, no traceback, nothing half-written."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from conftest import ORIGIN, lonlat_box, write_geojson, write_raster
from sitewatch.cli.main import main
from sitewatch.errors import BandsNotIdentifiedWarning


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def run_unnamed(capsys, *args: str) -> tuple[int, str, str]:
    """run() on planted_pair's unnamed bands (b1 ... b4): a successful run prints one
    warning that they cannot be identified; stderr is returned without it."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", BandsNotIdentifiedWarning)
        code, out, err = run(capsys, *args)
    lines = err.splitlines(keepends=True)
    warned = [ln for ln in lines if ln.startswith("sitewatch: warning: bands of ")]
    assert len(warned) == 1 if code == 0 else len(warned) <= 1, err
    return code, out, "".join(ln for ln in lines if ln not in warned)


def assert_one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sitewatch: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def assert_nothing_written(parent: Path, name: str = "out") -> None:
    assert not (parent / name).exists()
    leftovers = [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")]
    assert leftovers == []


def test_detect_writes_outputs(planted_pair, tmp_path, capsys):
    before, after, _ = planted_pair()
    code, out, err = run_unnamed(
        capsys, "detect", "--before", before, "--after", after, "--out", tmp_path / "out"
    )
    assert code == 0, err
    assert "1 change polygon" in out
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert {"changes.geojson", "changes.gpkg", "manifest.json", "mask.tif", "score.tif"} <= set(
        files
    )
    assert {"report.html", "quicklooks", "chips"} <= set(files)
    fc = json.loads((tmp_path / "out" / "changes.geojson").read_text())
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 1
    props = fc["features"][0]["properties"]
    assert {"id", "area_m2", "score_mean", "score_max"} <= set(props)
    lon, lat = props["centroid"]
    assert 127 < lon < 128 and 39 < lat < 41  # EPSG:4326, lon first
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["inputs"]["before"]["files"][0]["sha256"]
    assert manifest["parameters"]["method"] == "auto"  # chosen from the input:
    chain = manifest["diagnostics"]["chain"]
    assert chain["method"] in ("construction", "irmad") and chain["why"]
    assert props["method"] == chain["method"]
    # The summary and the report say which detector the input chose, and why.
    assert f"method {chain['method']} (auto)" in out
    page = (tmp_path / "out" / "report.html").read_text()
    assert "chosen from the input" in page and manifest["diagnostics"]["threshold"]["rule"] in page
    assert manifest["diagnostics"]["coregistration"]["applied"] in (True, False)
    assert manifest["versions"]["rasterio"] and manifest["versions"]["gdal"]
    assert manifest["timings_s"]["total"] > 0
    outputs = manifest["outputs"]
    assert {"changes.geojson", "changes.gpkg", "mask.tif", "score.tif", "report.html"} <= set(
        outputs
    )
    assert "quicklooks/overlay.png" in outputs and "manifest.json" not in outputs
    for name, digest in outputs.items():  # every file the run wrote, hashed
        assert hashlib.sha256((tmp_path / "out" / name).read_bytes()).hexdigest() == digest


def test_detect_json(planted_pair, tmp_path, capsys):
    before, after, _ = planted_pair()
    code, out, _ = run_unnamed(
        capsys, "detect", "--before", before, "--after", after, "--out", tmp_path / "out", "--json"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["diagnostics"]["n_polygons"] == 1 and len(doc["changes"]) == 1


def test_missing_file(tmp_path, capsys, planted_pair):
    _, after, _ = planted_pair()
    code, _, err = run(
        capsys,
        "detect",
        "--before",
        tmp_path / "nope.tif",
        "--after",
        after,
        "--out",
        tmp_path / "out",
    )
    assert code == 2
    assert_one_line_error(err, "nope.tif", "does not exist")
    assert_nothing_written(tmp_path)


def test_text_file_as_raster(tmp_path, capsys, planted_pair):
    _, after, _ = planted_pair()
    txt = tmp_path / "notes.tif"
    txt.write_text("this is not an image\n")
    code, _, err = run(
        capsys, "detect", "--before", txt, "--after", after, "--out", tmp_path / "out"
    )
    assert code == 2
    assert_one_line_error(err, "notes.tif", "not a readable raster")
    assert_nothing_written(tmp_path)


def test_raster_without_crs(tmp_path, capsys):
    data = np.ones((3, 50, 50), np.uint8)
    a = write_raster(tmp_path / "a.tif", data, crs=None)
    b = write_raster(tmp_path / "b.tif", data, crs=None)
    code, _, err = run(capsys, "detect", "--before", a, "--after", b, "--out", tmp_path / "out")
    assert code == 2
    assert_one_line_error(err, "no CRS", "--pixel-size")
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize("max_memory", ["8GB", "1MB"])  # in memory and block by block
def test_rasters_without_crs_of_different_sizes(tmp_path, capsys, max_memory):
    a = write_raster(tmp_path / "a.tif", np.ones((3, 50, 60), np.uint8), crs=None)
    b = write_raster(tmp_path / "b.tif", np.ones((3, 70, 80), np.uint8), crs=None)
    out = tmp_path / "out"
    args = ("--pixel-size", "1", "--max-memory", max_memory, "--out", out)
    code, _, err = run(capsys, "detect", "--before", a, "--after", b, *args)
    assert code == 2
    assert_one_line_error(err, "b.tif is 80x70 px but", "a.tif is 60x50", "must be the same size")
    assert_nothing_written(tmp_path)


def test_series_without_crs_of_different_sizes(tmp_path):
    """A series of images without a CRS must be one size too (a larger one was read
    as a window of its pixels once blocks could read windows)."""
    from sitewatch.errors import DataError
    from sitewatch.series import detect_series
    from sitewatch.sources.local import open_local

    paths = [
        write_raster(tmp_path / f"{n}.tif", np.ones((3, h, w), np.uint8), crs=None)
        for n, (h, w) in (("a", (50, 60)), ("b", (50, 60)), ("c", (70, 80)))
    ]
    srcs = [open_local(p, pixel_size=1.0) for p in paths]
    with pytest.raises(DataError, match=r"c.tif is 80x70 px but .*a.tif is 60x50"):
        detect_series(srcs, labels=["a", "b", "c"])


def test_rasters_that_do_not_overlap(tmp_path, capsys, planted_pair):
    before, _, _ = planted_pair()
    far = Affine(10, 0, ORIGIN[0] + 50_000, 0, -10, ORIGIN[1])
    other = write_raster(tmp_path / "far.tif", np.ones((4, 200, 200), np.uint16), transform=far)
    code, _, err = run(
        capsys, "detect", "--before", before, "--after", other, "--out", tmp_path / "out"
    )
    assert code == 2
    assert_one_line_error(err, "do not overlap")
    assert_nothing_written(tmp_path)


def test_aoi_not_overlapping_imagery(tmp_path, capsys, planted_pair):
    before, after, _ = planted_pair()
    # The catalog's Sohae AOI is ~250 km from the synthetic scene near Hamhung.
    code, _, err = run(
        capsys, "detect", "sohae", "--before", before, "--after", after, "--out", tmp_path / "out"
    )
    assert code == 2
    assert_one_line_error(err, "sohae", "does not overlap the imagery")
    assert_nothing_written(tmp_path)


def test_self_intersecting_aoi(tmp_path, capsys, planted_pair):
    before, after, _ = planted_pair()
    bowtie = lonlat_box(127.5, 39.9, 127.6, 40.0)
    bowtie["geometry"]["coordinates"] = [
        [[127.5, 39.9], [127.6, 40.0], [127.6, 39.9], [127.5, 40.0], [127.5, 39.9]]
    ]
    f = write_geojson(tmp_path / "bowtie.geojson", bowtie)
    code, _, err = run(
        capsys,
        "detect",
        "--aoi-file",
        f,
        "--before",
        before,
        "--after",
        after,
        "--out",
        tmp_path / "out",
    )
    assert code == 2
    assert_one_line_error(err, "invalid", "Self-intersection")
    assert_nothing_written(tmp_path)


def test_latlon_swapped_aoi_out_of_range(tmp_path, capsys, planted_pair):
    before, after, _ = planted_pair()
    swapped = lonlat_box(39.90, 127.60, 39.95, 127.65)  # [lat, lon] written by mistake
    f = write_geojson(tmp_path / "swapped.geojson", swapped)
    code, _, err = run(
        capsys,
        "detect",
        "--aoi-file",
        f,
        "--before",
        before,
        "--after",
        after,
        "--out",
        tmp_path / "out",
    )
    assert code == 2
    assert_one_line_error(err, "lat/lon swapped")
    assert_nothing_written(tmp_path)


def test_latlon_swapped_aoi_detected_against_imagery(tmp_path, capsys):
    # Where both orders are in range (|lon| < 90), the imagery tells: a scene near
    # Tikhoretsk (lon 40.1, lat 45.9) and an AOI written as [lat, lon].
    t = Affine(10, 0, 353_000, 0, -10, 5_081_000)  # UTM 37N
    data = np.random.default_rng(0).integers(100, 2000, (4, 200, 200)).astype(np.uint16)
    a = write_raster(tmp_path / "a.tif", data, crs="EPSG:32637", transform=t)
    b = write_raster(tmp_path / "b.tif", data, crs="EPSG:32637", transform=t)
    from rasterio.warp import transform_bounds

    w, s, e, n = transform_bounds("EPSG:32637", "EPSG:4326", 353_200, 5_079_200, 354_800, 5_080_800)
    f = write_geojson(tmp_path / "sw.geojson", lonlat_box(s, w, n, e))
    code, _, err = run(
        capsys, "detect", "--aoi-file", f, "--before", a, "--after", b, "--out", tmp_path / "out"
    )
    assert code == 2
    assert_one_line_error(err, "lat/lon swapped")


def test_output_folder_not_writable(tmp_path, capsys, planted_pair):
    before, after, _ = planted_pair()
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    code, _, err = run(
        capsys, "detect", "--before", before, "--after", after, "--out", blocker / "out"
    )
    assert code == 2
    assert_one_line_error(err, "writable --out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_output_folder_permission_denied(tmp_path, capsys, planted_pair):
    before, after, _ = planted_pair()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, _, err = run(
            capsys, "detect", "--before", before, "--after", after, "--out", ro / "out"
        )
    finally:
        ro.chmod(0o700)
    assert code == 2
    assert_one_line_error(err, "not writable")


def test_existing_output_needs_overwrite(tmp_path, capsys, planted_pair):
    before, after, _ = planted_pair()
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("analyst notes")
    code, _, err = run_unnamed(capsys, "detect", "--before", before, "--after", after, "--out", out)
    assert code == 2
    assert_one_line_error(err, "--overwrite")
    assert (out / "keep.txt").read_text() == "analyst notes"
    # --overwrite replaces only an earlier sitewatch run, never the analyst's notes.
    code, _, err = run_unnamed(
        capsys, "detect", "--before", before, "--after", after, "--out", out, "--overwrite"
    )
    assert code == 2
    assert_one_line_error(err, "did not write")
    assert (out / "keep.txt").read_text() == "analyst notes"
    (out / "keep.txt").unlink()
    assert run_unnamed(capsys, "detect", "--before", before, "--after", after, "--out", out)[0] == 0
    code, _, _ = run_unnamed(
        capsys, "detect", "--before", before, "--after", after, "--out", out, "--overwrite"
    )
    assert code == 0 and (out / "changes.geojson").exists()


def test_failure_midway_leaves_previous_output_intact(tmp_path, capsys, planted_pair, monkeypatch):
    before, after, _ = planted_pair()
    out = tmp_path / "out"
    assert run_unnamed(capsys, "detect", "--before", before, "--after", after, "--out", out)[0] == 0
    original = (out / "manifest.json").read_text()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("sitewatch.report.write.build_manifest", boom)
    code, _, err = run_unnamed(
        capsys, "detect", "--before", before, "--after", after, "--out", out, "--overwrite"
    )
    assert code == 2
    assert_one_line_error(err, "No space left on device", "nothing was written")
    assert (out / "manifest.json").read_text() == original
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []


def test_usage_error_is_one_line(capsys):
    code, _, err = run(capsys, "detect", "--before", "a.tif")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "required" in err


def test_unknown_aoi_id(tmp_path, capsys, planted_pair):
    before, after, _ = planted_pair()
    code, _, err = run(
        capsys,
        "detect",
        "hamhung-plant-x",
        "--before",
        before,
        "--after",
        after,
        "--out",
        tmp_path / "out",
    )
    assert code == 2
    assert_one_line_error(err, "no AOI", "sitewatch aoi list")


def test_unlocated_aoi_is_refused(tmp_path, capsys, planted_pair):
    before, after, _ = planted_pair()
    code, _, err = run(
        capsys,
        "detect",
        "ryongsong-complex",
        "--before",
        before,
        "--after",
        after,
        "--out",
        tmp_path / "out",
    )
    assert code == 2
    assert_one_line_error(err, "no sourced location", "run this on feb11-plant")


def test_real_entry_point_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sitewatch.cli.main",
            "detect",
            "--before",
            str(tmp_path / "x.tif"),
            "--after",
            str(tmp_path / "y.tif"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_manifest_records_registration_and_normalisation(planted_pair, tmp_path, capsys):
    before, after, _ = planted_pair(bands=6)
    code, out, err = run_unnamed(
        capsys,
        "detect",
        "--before",
        before,
        "--after",
        after,
        "--out",
        tmp_path / "out",
        "--normalize",
    )
    assert code == 0, err
    assert "co-registration:" in out
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    d = manifest["diagnostics"]
    assert d["coregistration"]["flagged"] is False and "note" in d["coregistration"]
    fits = d["normalization"]["bands"]
    assert len(fits) == 6 and all("rmse_test" in f for f in fits)
    assert manifest["parameters"]["normalize"] is True
    assert d["threshold"]["rule"] == d["chain"]["threshold_rule"] and d["threshold"]["why"]
    fc = json.loads((tmp_path / "out" / "changes.geojson").read_text())
    assert "coregistration" in fc["sitewatch"]


def test_flat_images_give_a_clear_error(tmp_path, capsys):
    flat = np.full((4, 60, 60), 1000, np.uint16)
    a = write_raster(tmp_path / "a.tif", flat)
    b = write_raster(tmp_path / "b.tif", flat)
    code, _, err = run(capsys, "detect", "--before", a, "--after", b, "--out", tmp_path / "out")
    assert code == 2
    assert_one_line_error(err, "cannot score", "constant")
    assert_nothing_written(tmp_path)
