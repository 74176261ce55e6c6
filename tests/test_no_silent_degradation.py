"""Doubtful inputs are said out loud: date order, the same image twice, dates, map projections."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import shapely
from affine import Affine
from pyproj import Geod, Transformer
from shapely.geometry import box

import sitewatch as sw
from conftest import write_raster
from sitewatch.cli.main import main
from sitewatch.errors import DateOrderWarning, SameImageWarning, SitewatchWarning


def run(capsys, *args) -> tuple[int, str, str]:
    """The CLI in process, with Python's default warning filter, as a user's shell has it."""
    with warnings.catch_warnings():
        warnings.simplefilter("default", SitewatchWarning)
        code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def warning_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("sitewatch: warning: ")]


def band_folder(root: Path, stamp: str, data: np.ndarray, **kw) -> Path:
    """A folder of Sentinel-2-named one-band files (B02, B03, B04, B08) dated ``stamp``."""
    root.mkdir(parents=True)
    for name, band in zip(("B02", "B03", "B04", "B08"), data, strict=True):
        write_raster(root / f"T52SCK_{stamp}T020000_{name}.tif", band[None], **kw)
    return root


def pair_arrays(size: int = 120, roof: tuple[slice, slice] = (slice(50, 70), slice(40, 70))):
    rng = np.random.default_rng(3)
    before = rng.normal(0.12, 0.02, (4, size, size)) + np.linspace(0, 0.05, size)
    after = before + rng.normal(0, 0.004, before.shape)
    after[:, roof[0], roof[1]] += np.array([0.12, 0.14, 0.16, 0.2])[:, None, None]
    to_dn = lambda x: np.clip(x * 10000, 1, 65535).astype("uint16")  # noqa: E731
    return to_dn(before), to_dn(after)


def test_before_later_than_after_warns_once(tmp_path, capsys):
    b, a = pair_arrays()
    before = band_folder(tmp_path / "b", "20240601", b)
    after = band_folder(tmp_path / "a", "20230601", a)
    code, out, err = run(
        capsys, "detect", "--before", before, "--after", after, "--out", tmp_path / "o"
    )
    assert code == 0, err
    lines = warning_lines(err)
    assert len(lines) == 1, err
    assert "2024-06-01" in lines[0] and "2023-06-01" in lines[0] and "swap" in lines[0]
    assert "2024-06-01 → 2023-06-01" in out  # the run is what was asked for, and says so
    with pytest.warns(DateOrderWarning):
        sw.detect_change(before, after)


def test_same_image_twice_warns(tmp_path, capsys):
    b, _ = pair_arrays()
    before = band_folder(tmp_path / "b", "20240601", b)
    code, _, err = run(
        capsys, "detect", "--before", before, "--after", before, "--out", tmp_path / "o"
    )
    assert code == 0, err
    lines = warning_lines(err)
    assert len(lines) == 1 and "the same" in lines[0], err
    with pytest.warns(SameImageWarning):
        sw.detect_change(before, str(before) + "/")


def test_before_and_after_dates_for_undated_images(tmp_path, capsys):
    b, a = pair_arrays()
    bf = write_raster(tmp_path / "before.tif", b[1:])  # 3 bands: taken as RGB, no date
    af = write_raster(tmp_path / "after.tif", a[1:])
    args = ["detect", "--before", bf, "--after", af]
    code, out, err = run(capsys, *args, "--out", tmp_path / "nodate")
    assert code == 0, err
    assert "dates unknown" in out
    code, out, err = run(
        capsys,
        *args,
        "--before-date",
        "2021-03-04",
        "--after-date",
        "2024-10-05",
        "--out",
        tmp_path / "o",
    )
    assert code == 0, err
    assert "2021-03-04 → 2024-10-05" in out
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["inputs"]["before"]["acquired"] == "2021-03-04"
    assert manifest["inputs"]["before"]["acquired_from"] == "given (--before-date)"
    fc = json.loads((tmp_path / "o" / "changes.geojson").read_text())
    assert fc["sitewatch"]["after"] == "2024-10-05"
    report = (tmp_path / "o" / "report.html").read_text()
    assert "None" not in report and ".tmp-" not in report


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--before-date", "2024-13-01"], "--before-date '2024-13-01'"),
        (["--after-date", "2024-10"], "--after-date '2024-10' is not a day"),
    ],
)
def test_bad_image_dates_are_one_line(tmp_path, capsys, extra, needle):
    b, a = pair_arrays()
    bf = write_raster(tmp_path / "before.tif", b[1:])
    af = write_raster(tmp_path / "after.tif", a[1:])
    code, _, err = run(
        capsys, "detect", "--before", bf, "--after", af, *extra, "--out", tmp_path / "o"
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert not (tmp_path / "o").exists()


def test_image_date_for_a_date_window_is_refused(tmp_path, capsys):
    code, _, err = run(
        capsys,
        "detect",
        "feb11-plant",
        "--before",
        "2023-10",
        "--after",
        "2024-10",
        "--before-date",
        "2023-10-05",
        "--out",
        tmp_path / "o",
    )
    assert code == 2
    assert "--before-date" in err and "local image" in err


def _mercator_pair(tmp_path: Path, crs: str, res: float, origin: tuple[float, float]):
    b, a = pair_arrays()
    t = Affine(res, 0, origin[0], 0, -res, origin[1])
    before = band_folder(tmp_path / "b", "20230601", b, crs=crs, transform=t)
    after = band_folder(tmp_path / "a", "20240601", a, crs=crs, transform=t)
    x0, y0 = t @ (40, 50)
    x1, y1 = t @ (70, 70)
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform
    roof = shapely.transform(
        box(x0, y1, x1, y0).segmentize(1e-5 if res < 1 else 1.0),
        lambda xy: np.column_stack(to_lonlat(xy[:, 0], xy[:, 1])),
    )
    area, _ = Geod(ellps="WGS84").geometry_area_perimeter(roof)
    return before, after, abs(area)


def test_web_mercator_is_analysed_on_a_utm_grid(tmp_path, capsys):
    origin = (14_209_000.0, 4_853_000.0)  # Web Mercator at 39.9° N: areas 1.70× too large
    before, after, roof_m2 = _mercator_pair(tmp_path, "EPSG:3857", 10.0, origin)
    out = tmp_path / "o"
    code, stdout, err = run(capsys, "detect", "--before", before, "--after", after, "--out", out)
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["grid"]["crs"] == "EPSG:32652"
    assert manifest["parameters"]["grid_rule"] == "before-overlap-utm"
    px_m2 = manifest["grid"]["pixel_area_m2"]
    true_px = roof_m2 / (20 * 30)  # the planted roof is 20 × 30 source pixels
    assert px_m2 == pytest.approx(true_px, rel=0.05)
    assert f"px of {px_m2:.1f} m²" in stdout
    fc = json.loads((out / "changes.geojson").read_text())
    total = sum(f["properties"]["area_m2"] for f in fc["features"])
    assert total == pytest.approx(roof_m2, rel=0.35)  # smoothing widens edges by ~1 px
    assert "grid: the images' CRS (EPSG:3857) enlarges areas 1.70× here" in stdout


def test_geographic_grid_keeps_its_pixels_with_their_true_area(tmp_path, capsys):
    before, after, roof_m2 = _mercator_pair(tmp_path, "EPSG:4326", 0.0001, (127.64, 39.93))
    out = tmp_path / "o"
    code, stdout, err = run(capsys, "detect", "--before", before, "--after", after, "--out", out)
    assert code == 0, err
    assert "grid: " not in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["grid"]["crs"] == "EPSG:4326"
    assert manifest["grid"]["pixel_area_m2"] == pytest.approx(roof_m2 / 600, rel=0.01)


def test_metric_grid_keeps_its_own_pixels(planted_pair):
    before, after, _ = planted_pair(folder=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = sw.detect_change(before, after)
    assert result.grid.crs == "EPSG:32652" and result.grid.pixel_area_m2 == 100.0
    assert result.provenance["parameters"]["grid_rule"] == "before-grid-overlap"
