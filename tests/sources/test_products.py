"""Downloaded products as users get them (issue 16).

Sentinel-2 ``.SAFE`` folders, their zips and ``MTD_MSIL2A.xml``; Landsat C2 L2 folders
and tars. Built from synthetic pixels with real JPEG 2000 / GeoTIFF encoding and the
real folder and file naming (``tests/product_fixtures.py``), read for real through
``/vsizip/`` and ``/vsitar/``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Transformer
from shapely.geometry import box, shape

from product_fixtures import (
    ORIGIN,
    S2_REFL,
    UTM,
    landsat_pair,
    landscape,
    s2_pair,
    tar_landsat,
    write_jp2,
    write_safe,
    zip_safe,
)
from sitewatch.cli.main import main
from sitewatch.errors import DataError
from sitewatch.grid import Grid
from sitewatch.sources.local import open_local
from sitewatch.sources.products import ProductSource, is_product, open_product


@pytest.fixture(scope="module")
def s2(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("s2")
    b, a, planted = s2_pair(root / "safe")
    (root / "zip").mkdir()
    return {
        "safe": (b, a),
        "zip": (
            zip_safe(b, root / "zip" / f"{b.stem}.zip"),
            zip_safe(a, root / "zip" / f"{a.stem}.zip"),
        ),
        "mtd": (b / "MTD_MSIL2A.xml", a / "MTD_MSIL2A.xml"),
        "planted": planted,
        "root": root,
    }


@pytest.fixture(scope="module")
def landsat(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("landsat")
    b, a, planted = landsat_pair(root / "folders")
    (root / "tar").mkdir()
    tars = (
        tar_landsat(b, root / "tar" / f"{b.name}.tar"),
        tar_landsat(a, root / "tar" / f"{a.name}.tar"),
    )
    return {"folder": (b, a), "tar": tars, "planted": planted}


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def one_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sitewatch: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def snapshot(*paths: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``paths``: size and modification time."""
    out = {}
    for p in paths:
        for f in [p, *p.rglob("*")] if p.is_dir() else [p]:
            if f.is_file():
                out[str(f)] = (f.stat().st_size, f.stat().st_mtime_ns)
    return out


def polygons_utm(out: Path) -> list:
    fc = json.loads((out / "changes.geojson").read_text(encoding="utf-8"))
    t = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
    return [
        shapely.transform(shape(f["geometry"]), t.transform, interleaved=False)
        for f in fc["features"]
    ]


def planted_box(planted, which: str):
    rows, cols = getattr(planted, which)
    x0, y0 = planted.origin
    r = planted.res
    return box(x0 + cols.start * r, y0 - rows.stop * r, x0 + cols.stop * r, y0 - rows.start * r)


# ---------------------------------------------------------------------------
# What is read from each kind of product
# ---------------------------------------------------------------------------


def test_safe_bands_at_their_finest_resolution_with_scl_and_metadata(s2):
    after = s2["safe"][1]
    src = open_local(after)  # the ordinary entry point recognises the product
    assert isinstance(src, ProductSource) and src.kind == "product"
    assert src.band_names == ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
    res = {name: r for name, _, r in src.band_files}
    assert res["B02"] == res["B08"] == 10.0 and res["B05"] == res["B11"] == 20.0
    assert src.band_files[0][1].endswith("IMG_DATA/R10m/T52SCK_20240105T022109_B02_10m.jp2")
    assert src.mask_band is not None and src.mask_band.name == "SCL"
    assert src.mask_file.endswith("R20m/T52SCK_20240105T022109_SCL_20m.jp2")
    assert src.grid.res == (10.0, 10.0) and src.grid.crs == UTM
    info = src.product
    assert info.product_id == "S2B_MSIL2A_20240105T022109_N0510_R003_T52SCK_20240105T045502"
    assert (info.level, info.platform, info.tile) == ("L2A", "Sentinel-2B", "T52SCK")
    assert (info.acquired, info.processing_baseline) == ("2024-01-05", "05.10")
    assert src.acquired == "2024-01-05"
    assert src.acquired_from == "MTD_MSIL2A.xml PRODUCT_START_TIME"
    left = dict(info.left_out)
    assert set(left) == {"B01", "B09"} and "aerosol" in left["B01"] and "vapour" in left["B09"]
    assert src.scale_offset("B04") == pytest.approx((1e-4, -0.1))
    assert (
        "BOA_ADD_OFFSET" in info.reflectance_rule and "(DN - 1000) / 10000" in info.reflectance_rule
    )
    with_all = open_product(after, all_bands=True)
    assert {"B01", "B09"} <= set(with_all.band_names) and with_all.product.left_out == ()


def test_zip_and_mtd_give_the_same_product_read_in_place(s2):
    safe = open_product(s2["safe"][1])
    zipped = open_product(s2["zip"][1])
    mtd = open_product(s2["mtd"][1])
    for src in (zipped, mtd):
        assert src.band_names == safe.band_names
        assert src.product.product_id == safe.product.product_id
        assert src.product.reflectance_rule == safe.product.reflectance_rule
    assert zipped.product.container == "zip"
    assert all(str(b.path).startswith("/vsizip//") for b in zipped.bands)
    assert str(zipped.mask_band.path).startswith("/vsizip//")
    assert zipped.files == (s2["zip"][1],)  # the manifest hashes the archive
    assert mtd.product.root == s2["safe"][1]
    grid = safe.grid
    a, b = safe.read(grid), zipped.read(grid)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.valid, b.valid)


def test_reflectance_follows_the_processing_baseline(tmp_path):
    refl = landscape(S2_REFL, 60, seed=5)
    new = open_product(write_safe(tmp_path / "new", refl, baseline="05.10"))
    old = open_product(write_safe(tmp_path / "old", refl, baseline="03.01", day="20210105"))
    assert new.scale_offset("B04") == pytest.approx((1e-4, -0.1))
    assert old.scale_offset("B04") == pytest.approx((1e-4, 0.0))
    assert "03.01 < 04.00: no offset" in old.product.reflectance_rule
    grid = new.grid
    for src in (new, old):
        scene = src.read(grid, bands=["B04", "B08"])
        got = scene.data[0][scene.valid]
        want = refl["B04"][scene.valid]
        assert np.abs(got - want).max() < 1e-4  # DN rounding only


def test_l1c_safe_reads_img_data_at_native_resolution(tmp_path):
    refl = landscape(S2_REFL, 60, seed=2)
    src = open_product(write_safe(tmp_path, refl, level="L1C"))
    assert src.product.level == "L1C" and src.mask_band is None
    assert set(dict(src.product.left_out)) == {"B01", "B09", "B10"}
    res = {name: r for name, _, r in src.band_files}
    assert res["B04"] == 10.0 and res["B8A"] == 20.0
    assert "L1C TOA" in src.product.reflectance_rule
    assert "RADIO_ADD_OFFSET" in src.product.reflectance_rule


def test_landsat_tar_sr_bands_qa_pixel_and_mtl_scale(landsat):
    src = open_local(landsat["tar"][1])
    assert isinstance(src, ProductSource)
    assert src.band_names == ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7")
    assert all(str(b.path).startswith("/vsitar//") for b in src.bands)
    assert src.mask_band.name == "QA_PIXEL"
    info = src.product
    assert info.product_id == "LC09_L2SP_116032_20240110_20240111_02_T1"
    assert (info.level, info.platform, info.tile, info.acquired) == (
        "L2SP",
        "LANDSAT_9",
        "116/032",
        "2024-01-10",
    )
    assert src.acquired_from == "LC09_L2SP_116032_20240110_20240111_02_T1_MTL.txt DATE_ACQUIRED"
    assert set(dict(info.left_out)) == {"SR_B1", "ST_B10"}
    # LEVEL2_SURFACE_REFLECTANCE_PARAMETERS, not the Level-1 TOA factors in the same MTL
    assert src.scale_offset("SR_B4") == pytest.approx((2.75e-05, -0.2))
    assert "from the MTL" in info.reflectance_rule


def test_landsat_folder_with_only_the_json_mtl(landsat, tmp_path):
    folder = shutil.copytree(landsat["folder"][0], tmp_path / landsat["folder"][0].name)
    next(folder.glob("*_MTL.txt")).unlink()
    src = open_product(folder)
    assert src.product.metadata_file.endswith("_MTL.json")
    assert src.product.platform == "LANDSAT_8" and src.acquired == "2023-12-09"
    assert src.scale_offset("SR_B2") == pytest.approx((2.75e-05, -0.2))


def test_is_product_leaves_plain_inputs_alone(tmp_path):
    (tmp_path / "bands").mkdir()
    assert not is_product(tmp_path / "bands")
    assert not is_product(tmp_path / "x.tif")
    assert is_product(tmp_path / "x.zip") and is_product(tmp_path / "y.tar")


# ---------------------------------------------------------------------------
# detect, timeline and batch on products
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["safe", "zip", "mtd", "tar"])
def test_detect_finds_the_roof_and_nothing_at_the_masked_cloud(s2, landsat, kind, tmp_path, capsys):
    fix = landsat if kind == "tar" else s2
    before, after = fix[kind]
    inputs = snapshot(before.parent if kind == "mtd" else before, after)
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "detect", "--before", before, "--after", after, "--out", out)
    assert code == 0, err
    assert "2023-12" in stdout and "2024-01" in stdout
    polys = polygons_utm(out)
    roof, cloud = planted_box(fix["planted"], "roof"), planted_box(fix["planted"], "cloud")
    assert any(p.intersects(roof) for p in polys)
    assert not any(p.distance(cloud) < 30 for p in polys)  # no change polygon near the cloud
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["inputs"]["after"]
    assert entry["kind"] == "product"
    assert entry["mask_band"] == ("QA_PIXEL" if kind == "tar" else "SCL")
    assert entry["product"]["acquired"] == entry["acquired"]
    assert entry["reflectance_rule"] and entry["scale_offset"]
    assert entry["band_files"] and entry["left_out"]
    assert manifest["diagnostics"]["cloud_masked_m2"]["after"] > 0
    if kind == "zip":
        assert [f["path"] for f in entry["files"]] == [str(after)]
        assert entry["product"]["container"] == "zip"
    assert snapshot(before.parent if kind == "mtd" else before, after) == inputs  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing unpacked here


def test_without_the_scl_cloud_the_cloud_would_be_change(tmp_path, capsys):
    """The planted cloud is found as change when SCL does not class it: the mask matters."""
    b, a, planted = s2_pair(tmp_path / "p")
    for f in a.rglob("*_SCL_*.jp2"):  # a product whose SCL saw no cloud
        with rasterio.open(f) as ds:
            codes, res = ds.read(1), ds.res[0]
        codes[codes == 9] = 5
        write_jp2(f, codes, res)
    code, _, err = run(capsys, "detect", "--before", b, "--after", a, "--out", tmp_path / "o")
    assert code == 0, err
    cloud = planted_box(planted, "cloud")
    assert any(p.intersects(cloud) for p in polygons_utm(tmp_path / "o"))


def test_timeline_over_a_zip_and_a_safe_folder(s2, tmp_path, capsys):
    before, after = s2["zip"][0], s2["safe"][1]
    out = tmp_path / "tl"
    code, _, err = run(capsys, "timeline", "--images", after, before, "--out", out, "--quiet")
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    tl = manifest["diagnostics"]["timeline"]
    assert tl["dates"] == ["2023-12-06", "2024-01-05"] and tl["sorted_by_date"]


def test_batch_job_on_products(s2, tmp_path):
    from sitewatch.batch import run_job

    to_ll = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform
    west, south = to_ll(ORIGIN[0] + 50, ORIGIN[1] - 550)
    east, north = to_ll(ORIGIN[0] + 550, ORIGIN[1] - 50)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    aoi = tmp_path / "site.geojson"
    aoi.write_text(
        json.dumps(
            {
                "type": "Feature",
                "properties": {"id": "site", "name": "Site"},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        ),
        encoding="utf-8",
    )
    spec = {
        "name": "s2",
        "kind": "pair",
        "aoi": str(aoi),
        "before": str(s2["zip"][0]),
        "after": str(s2["zip"][1]),
        "options": {},
        "out": str(tmp_path / "s2"),
        "overwrite": False,
    }
    summary = run_job(spec)
    assert summary["status"] == "ok", summary
    assert summary["n_polygons"] >= 1


def test_python_api_reads_products(s2):
    import sitewatch as sw

    result = sw.detect_change(s2["zip"][0], s2["zip"][1])
    assert result.provenance["after"]["source"].product.level == "L2A"
    assert len(result.features) >= 1


# ---------------------------------------------------------------------------
# Errors: one line naming the product and what is wrong, exit 2
# ---------------------------------------------------------------------------


def test_l1c_l2a_mix_is_refused(tmp_path, capsys):
    b, a, _ = s2_pair(tmp_path / "p", levels=("L1C", "L2A"))
    code, _, err = run(capsys, "detect", "--before", b, "--after", a, "--out", tmp_path / "o")
    assert code == 2
    one_line(err, b.name, a.name, "L1C", "L2A", "download L2A for both")
    assert not (tmp_path / "o").exists()


def test_products_that_do_not_overlap(tmp_path, capsys):
    far = (ORIGIN[0] + 50_000, ORIGIN[1])
    b, a, _ = s2_pair(tmp_path / "p", after_origin=far)
    code, _, err = run(capsys, "detect", "--before", b, "--after", a, "--out", tmp_path / "o")
    assert code == 2
    one_line(err, "do not overlap", b.name, a.name)


def test_truncated_zip(s2, tmp_path, capsys):
    good = s2["zip"][1]
    cut = tmp_path / good.name
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    code, _, err = run(
        capsys, "detect", "--before", s2["zip"][0], "--after", cut, "--out", tmp_path / "o"
    )
    assert code == 2
    one_line(err, cut.name, "truncated", "download the product again")


def test_truncated_tar(landsat, tmp_path, capsys):
    good = landsat["tar"][1]
    cut = tmp_path / good.name
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    code, _, err = run(
        capsys, "detect", "--before", landsat["tar"][0], "--after", cut, "--out", tmp_path / "o"
    )
    assert code == 2
    one_line(err, cut.name, "truncated", "download the product again")


def test_product_missing_a_band_the_method_needs(tmp_path, capsys):
    b, a, _ = s2_pair(tmp_path / "p", omit_after=("B08",))
    code, _, err = run(capsys, "detect", "--before", b, "--after", a, "--out", tmp_path / "o")
    assert code == 2
    one_line(err, a.name, "B08 (nir)", "--method construction", "download the product again")
    # a method that uses whatever bands there are runs on the bands both products have
    code, _, err = run(
        capsys, "detect", "--before", b, "--after", a, "--out", tmp_path / "o2", "--method", "irmad"
    )
    assert code == 0, err


def test_archive_without_a_product_and_bands_option(s2, tmp_path, capsys):
    import zipfile

    empty = tmp_path / "photos.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "not imagery")
    code, _, err = run(
        capsys, "detect", "--before", empty, "--after", s2["zip"][1], "--out", tmp_path / "o"
    )
    assert code == 2
    one_line(err, "photos.zip holds no Sentinel-2 product", "Landsat")
    code, _, err = run(
        capsys,
        "detect",
        "--before",
        s2["zip"][0],
        "--after",
        s2["zip"][1],
        "--out",
        tmp_path / "o",
        "--bands",
        "blue,green,red,nir",
    )
    assert code == 2
    one_line(err, "--bands", "metadata names its bands")


def test_a_landsat_level1_tar_is_refused(landsat, tmp_path):
    folder = shutil.copytree(landsat["folder"][1], tmp_path / "l1")
    mtl = next(folder.glob("*_MTL.txt"))
    mtl.write_text(
        mtl.read_text().replace('PROCESSING_LEVEL = "L2SP"', 'PROCESSING_LEVEL = "L1TP"')
    )
    next(folder.glob("*_MTL.json")).unlink()
    with pytest.raises(DataError, match="not Collection 2 Level-2"):
        open_product(tar_landsat(folder, tmp_path / "l1.tar"))


def test_grid_of_product_is_the_finest_band(s2):
    src = open_product(s2["zip"][0])
    assert isinstance(src.grid, Grid) and src.grid.shape == (60, 60)


def test_sentinel2_and_landsat_are_not_mixed(s2, landsat, tmp_path, capsys):
    code, _, err = run(
        capsys,
        "detect",
        "--before",
        s2["zip"][0],
        "--after",
        landsat["tar"][1],
        "--out",
        tmp_path / "o",
    )
    assert code == 2
    one_line(err, s2["zip"][0].name, landsat["tar"][1].name, "one mission")


def test_a_safe_folder_and_its_own_zip_are_the_same_product(s2):
    from sitewatch.errors import SameImageWarning
    from sitewatch.sources.products import check_products

    with pytest.warns(SameImageWarning, match="same product"):
        check_products([open_product(s2["safe"][1]), open_product(s2["zip"][1])])
