"""Block-wise (strip) processing gives the in-memory result."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from shapely.geometry import shape

from sitewatch.blocks import estimate_memory, parse_size
from sitewatch.cli.main import main
from sitewatch.errors import InputError


def _pair(tmp_path, *, shift_px: float = 0.0, crs: str | None = "EPSG:32652"):
    rng = np.random.default_rng(3)
    h, w = 700, 650
    base = rng.normal(100, 25, (3, h // 5 + 1, w // 5 + 1)).repeat(5, 1).repeat(5, 2)[:, :h, :w]
    base = base + rng.normal(0, 4, (3, h, w))
    after = base * 1.1 + 5 + rng.normal(0, 4, (3, h, w))
    after[:, 100:130, 200:260] = 230  # a roof across several strips' edges
    after[:, 400:403, 100:400] = 20  # a long thin road
    after[:, 250:330, 500:520] = 200
    if shift_px:
        from scipy import ndimage

        after = ndimage.shift(after, (0, shift_px, 0), order=1, mode="nearest")
    georef = {"crs": crs, "transform": Affine(1.0, 0, 500000, 0, -1.0, 4400000)} if crs else {}
    paths = []
    for name, arr in (("before", base), ("after", after)):
        p = tmp_path / f"{name}.tif"
        with warnings.catch_warnings():  # no CRS: rasterio says so
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(
                p, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8", **georef
            ) as dst:
                dst.write(np.clip(arr, 0, 255).astype("uint8"))
        paths.append(p)
    return paths


def _run(before, after, out, *extra, method="irmad"):
    code = main(
        [
            "detect",
            "--before",
            str(before),
            "--after",
            str(after),
            "--method",
            method,
            "--out",
            str(out),
            "--quiet",
            *extra,
        ]
    )
    assert code == 0
    return json.loads((out / "changes.geojson").read_text()), json.loads(
        (out / "manifest.json").read_text()
    )


@pytest.mark.parametrize(
    ("shift_px", "method", "crs"),
    [
        (0.0, "irmad", "EPSG:32652"),
        (1.6, "irmad", "EPSG:32652"),
        (1.6, "construction", "EPSG:32652"),
        (0.0, "index", "EPSG:32652"),
        (1.6, "irmad", None),  # no CRS: pixel coordinates, read by windows of the image
    ],
)
def test_blockwise_equals_in_memory(tmp_path, shift_px, method, crs):
    """Rasters read and written block by block give the in-memory result, any method."""
    before, after = _pair(tmp_path, shift_px=shift_px, crs=crs)
    extra = () if crs else ("--pixel-size", "1")
    fc_mem, man_mem = _run(
        before, after, tmp_path / "mem", "--max-memory", "8GB", *extra, method=method
    )
    fc_blk, man_blk = _run(
        before, after, tmp_path / "blk", "--max-memory", "4MB", *extra, method=method
    )
    assert "blockwise" not in man_mem["diagnostics"]
    d = man_blk["diagnostics"]
    # many blocks, seams inside the changes
    assert d["blockwise"] and d["engine"]["block_rows"] < 100 and d["engine"]["blocks"] > 6
    co_mem, co_blk = man_mem["diagnostics"]["coregistration"], d["coregistration"]
    assert co_blk["shift"] == pytest.approx(co_mem["shift"], abs=1e-9)
    assert d["threshold"]["value"] == pytest.approx(
        man_mem["diagnostics"]["threshold"]["value"], rel=1e-6
    )
    with (
        rasterio.open(tmp_path / "mem" / "score.tif") as a,
        rasterio.open(tmp_path / "blk" / "score.tif") as b,
    ):
        sa, sb = a.read(1), b.read(1)
    assert np.array_equal(np.isnan(sa), np.isnan(sb))
    np.testing.assert_allclose(sb[~np.isnan(sb)], sa[~np.isnan(sa)], rtol=1e-4, atol=1e-4)
    with (
        rasterio.open(tmp_path / "mem" / "mask.tif") as a,
        rasterio.open(tmp_path / "blk" / "mask.tif") as b,
    ):
        assert np.array_equal(a.read(1), b.read(1))
    assert len(fc_blk["features"]) == len(fc_mem["features"]) >= 3
    for fm, fb in zip(fc_mem["features"], fc_blk["features"], strict=True):
        pm, pb = fm["properties"], fb["properties"]
        assert pb["id"] == pm["id"] and pb["area_px"] == pm["area_px"]
        assert pb["score_mean"] == pytest.approx(pm["score_mean"], rel=1e-4)
        assert pb["score_max"] == pytest.approx(pm["score_max"], rel=1e-4)
        assert pb["p_no_change"] == pytest.approx(pm["p_no_change"], abs=1e-3)
        gm, gb = shape(fm["geometry"]), shape(fb["geometry"])
        # The same polygon, seams dissolved: only float noise from projecting the extra
        # seam vertices to lon/lat (the pixel sets are equal, area_px above).
        assert gm.symmetric_difference(gb).area < 1e-3 * gm.area
        assert pb["area_m2"] == pytest.approx(pm["area_m2"], rel=1e-3)


def test_blockwise_normalize_equals_in_memory(tmp_path):
    """--normalize block by block: the same sample, fits and result as in memory."""
    before, after = _pair(tmp_path, shift_px=1.6)
    fc_mem, man_mem = _run(before, after, tmp_path / "mem", "--max-memory", "8GB", "--normalize")
    fc_blk, man_blk = _run(before, after, tmp_path / "blk", "--max-memory", "4MB", "--normalize")
    d_mem, d_blk = man_mem["diagnostics"], man_blk["diagnostics"]
    assert d_blk["blockwise"] and d_blk["engine"]["blocks"] > 6
    n_mem, n_blk = d_mem["normalization"], d_blk["normalization"]
    assert n_mem["applied"] and n_blk == n_mem  # slopes, intercepts, tests: the same
    assert d_blk["threshold"]["value"] == pytest.approx(d_mem["threshold"]["value"], rel=1e-6)
    with (
        rasterio.open(tmp_path / "mem" / "mask.tif") as a,
        rasterio.open(tmp_path / "blk" / "mask.tif") as b,
    ):
        assert np.array_equal(a.read(1), b.read(1))
    assert [f["properties"]["area_px"] for f in fc_blk["features"]] == [
        f["properties"]["area_px"] for f in fc_mem["features"]
    ]


def test_blockwise_run_says_where_it_is(tmp_path, capsys):
    """A long block-wise run prints a line as each stage starts (stderr); --quiet none."""
    before, after = _pair(tmp_path)
    args = ["detect", "--before", str(before), "--after", str(after), "--max-memory", "4MB"]
    assert main([*args, "--out", str(tmp_path / "a"), "--no-report"]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert "block by block" in lines[0] and "--max-memory" in lines[0]
    assert lines[1] == "co-registration on the central window"
    steps = [ln.split(":")[0] for ln in lines if ln.startswith("engine ")]
    assert steps == ["engine 1/6", "engine 2/6", "engine 4/6", "engine 5/6", "engine 6/6"]
    assert lines[-1].startswith("writing the polygons (") and "polygons)" in lines[-1]
    assert "sitewatch detect:" in out and "engine" not in out  # the summary stays on stdout
    assert main([*args, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")


def test_sizes():
    assert parse_size("2GB") == 2 << 30 and parse_size("512m") == 512 << 20
    with pytest.raises(InputError):
        parse_size("lots")
    assert estimate_memory(12_000, 12_000, 3) > 8 << 30  # why 12k pairs go block-wise


def test_in_memory_and_blocks_estimate_the_shift_on_one_central_window(tmp_path, monkeypatch):
    """Above COREG_WINDOW both paths estimate co-registration on the same central window."""
    import sitewatch.detect.run as run_mod

    monkeypatch.setattr(run_mod, "COREG_WINDOW", 320)
    before, after = _pair(tmp_path, shift_px=1.6)
    _, man_mem = _run(before, after, tmp_path / "mem", "--max-memory", "8GB")
    _, man_blk = _run(before, after, tmp_path / "blk", "--max-memory", "4MB")
    co_mem = man_mem["diagnostics"]["coregistration"]
    co_blk = man_blk["diagnostics"]["coregistration"]
    assert co_mem["window"] == co_blk["window"] == [165, 190, 320, 320]
    assert co_mem["applied"] and co_mem["shift"] == pytest.approx(co_blk["shift"], abs=1e-9)
    assert abs(co_mem["shift"][0]) == pytest.approx(1.6, abs=0.1)
