"""Band names: recognised patterns, --bands / bands=, and the warning when none is known."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from conftest import ORIGIN, UTM, lonlat_box, write_geojson
from sitewatch import detect_change
from sitewatch.cli.main import main
from sitewatch.detect.methods import band_roles
from sitewatch.errors import BandsNotIdentifiedWarning, DataError, InputError
from sitewatch.pipeline import plan_detection
from sitewatch.sources.local import EARTH_SEARCH_S2, band_name, open_local

SIZE = 64
T10 = Affine(10.0, 0, ORIGIN[0], 0, -10.0, ORIGIN[1])
T20 = Affine(20.0, 0, ORIGIN[0], 0, -20.0, ORIGIN[1])
SAFE = "T43QBB_{date8}T053719_{band}_{res}"
BROWSER = "{date}-00:00_{date}-23:59_Sentinel-2_L2A_{band}_(Raw).tiff"


def _pair(bands: int = 4, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(bands, 64, 64) uint16 before/after with a bright 12 x 12 px new roof."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.12, 0.02, size=(bands, SIZE, SIZE)) + np.linspace(0, 0.05, SIZE)
    after = base + rng.normal(0, 0.004, size=base.shape)
    after[:, 20:32, 24:36] += np.linspace(0.12, 0.2, bands)[:, None, None]
    return tuple(np.clip(x * 10000, 1, 65535).astype("uint16") for x in (base, after))


def _write(
    path: Path,
    data: np.ndarray,
    *,
    transform: Affine = T10,
    descriptions: tuple[str, ...] | None = None,
    photometric: str | None = None,
) -> Path:
    data = data[None] if data.ndim == 2 else data
    extra = {"photometric": photometric} if photometric else {}
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype.name,
        crs=UTM,
        transform=transform,
        **extra,
    ) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions or (), start=1):
            dst.set_band_description(i, d)
    return path


def _folder(root: Path, names: list[str], data: np.ndarray) -> Path:
    root.mkdir(parents=True)
    for name, band in zip(names, data, strict=True):
        _write(root / name, band)
    return root


def _folders(tmp: Path, pattern: str, bands: list[str], **fmt: str) -> tuple[Path, Path]:
    """before/ and after/ band folders whose files are ``pattern`` for each band."""
    b, a = _pair(len(bands))
    out = []
    for which, data, date in (("before", b, "2023-10-10"), ("after", a, "2023-11-09")):
        d = {"date": date, "date8": date.replace("-", ""), **fmt}
        names = [pattern.format(band=band, **d) for band in bands]
        out.append(_folder(tmp / which, names, data))
    return out[0], out[1]


def _files(tmp: Path, **kw) -> tuple[Path, Path]:
    b, a = _pair(4)
    return _write(tmp / "before.tif", b, **kw), _write(tmp / "after.tif", a, **kw)


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _detect_writes_true_colour(capsys, before: Path, after: Path, out: Path, *extra: str) -> str:
    code, _, err = run(
        capsys, "detect", "--before", before, "--after", after, "--out", out, "--no-report", *extra
    )
    assert code == 0, err
    assert (out / "before.tif").is_file() and (out / "after.tif").is_file()
    with rasterio.open(out / "before.tif") as ds:
        assert ds.count == 3
    return err


# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,name",
    [
        ("T43QBB_20231010T053719_B02_10m", "B02"),
        ("T43QBB_20231010T053719_B8A_20m", "B8A"),
        ("T43QBB_20231010T053719_B01_60m", "B01"),
        ("2023-10-10-00:00_2023-10-10-23:59_Sentinel-2_L2A_B04_(Raw)", "B04"),
        ("x_b11_(DN)", "B11"),
        ("B12_(Reflectance)", "B12"),
        ("S2A_OPER_MSI_L1C_TL_SGS__20160120T_B03", "B03"),
        ("LC09_L2SP_116033_20230601_SR_B5", "SR_B5"),
        ("Red", "red"),
        ("scene-GREEN", "green"),
        ("ortho.blue", "blue"),
        ("nir", "nir"),
        ("Near-Infrared", "nir"),
        ("nir08", "nir08"),
        ("NIR09", "nir09"),
        ("rededge", "rededge"),
        ("red_edge2", "rededge2"),
        ("swir16", "swir1"),
        ("SWIR1", "swir1"),
        ("swir22", "swir2"),
        ("coastal", "coastal"),
        ("coastal_blue", "coastal"),
        ("green_i", None),
        ("Band 1", None),
        ("shred", None),
        ("B4", None),
        ("b1", None),
        ("T43QBB_20231010T053719_TCI_10m", None),
    ],
)
def test_band_name_patterns(text, name):
    assert band_name(text) == name


def test_earth_search_table_matches_stac_assets():
    from sitewatch.sources.stac import S2_ASSETS

    assert {key: band for band, key in S2_ASSETS.items()}.items() <= EARTH_SEARCH_S2.items()


def test_band_roles_of_role_names():
    assert band_roles(["blue", "green", "red", "nir", "swir1", "swir2"], 6) == {
        "blue": 0,
        "green": 1,
        "red": 2,
        "nir": 3,
        "swir1": 4,
        "swir2": 5,
    }
    assert band_roles(["coastal", "blue", "green", "red", "nir08", "swir1"], 6)["nir"] == 4
    assert band_roles(["nir", "red", "green"], 3) == {"green": 2, "red": 1, "nir": 0}  # CIR
    assert band_roles([f"b{i}" for i in range(1, 14)], 13) == {}  # b11 is not B11


# --- patterns: open_local names them, and detect writes true colour ---------------------


def test_safe_img_data_names(tmp_path, capsys):
    before, after = _folders(tmp_path, SAFE + ".tif", ["B02", "B03", "B04", "B08"], res="10m")
    for folder, date in ((before, "20231010"), (after, "20231109")):  # and what sits next to them
        scl = np.full((32, 32), 4, "uint8")  # vegetation: clear
        _write(folder / f"T43QBB_{date}T053719_SCL_20m.tif", scl, transform=T20)
        _write(folder / f"T43QBB_{date}T053719_AOT_10m.tif", np.full((SIZE, SIZE), 100, "uint16"))
        tci = np.full((3, SIZE, SIZE), 90, "uint8")
        _write(folder / f"T43QBB_{date}T053719_TCI_10m.tif", tci, photometric="RGB")
    src = open_local(before)
    assert src.band_names == ("B02", "B03", "B04", "B08")
    assert src.mask_band is not None and src.mask_band.name == "SCL"
    assert src.acquired == "2023-10-10"
    assert src.grid.res == (10.0, 10.0)
    _detect_writes_true_colour(capsys, before, after, tmp_path / "out")


def test_copernicus_browser_names_and_date(tmp_path, capsys):
    before, after = _folders(tmp_path, BROWSER, ["B02", "B03", "B04", "B08"])
    src = open_local(before)
    assert src.band_names == ("B02", "B03", "B04", "B08")
    assert src.acquired == "2023-10-10"
    assert open_local(after).acquired == "2023-11-09"
    _detect_writes_true_colour(capsys, before, after, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["inputs"]["before"]["acquired"] == "2023-10-10"


def test_copernicus_browser_range_has_no_single_date(tmp_path):
    name = "2023-10-01-00:00_2023-10-31-23:59_Sentinel-2_L2A_{band}_(Raw).tiff"
    before, _ = _folders(tmp_path, name, ["B02", "B03", "B04", "B08"])
    assert open_local(before).acquired is None  # a month's mosaic: no acquisition date


def test_colour_word_files(tmp_path, capsys):
    before, after = _folders(tmp_path, "{band}.tif", ["red", "green", "blue", "nir"])
    src = open_local(before)
    assert src.band_names == ("blue", "green", "red", "nir")  # in wavelength order
    _detect_writes_true_colour(capsys, before, after, tmp_path / "out")


def test_earth_search_sentinel2_keys_get_sentinel2_names(tmp_path):
    keys = ["blue", "green", "red", "nir", "nir08", "rededge1", "swir16", "swir22"]
    before, _ = _folders(tmp_path, "S2B_43QBB_20231010_0_L2A_{band}.tif", keys)
    # as a STAC Sentinel-2 scene names them, so the 10 m construction view applies
    assert open_local(before).band_names == ("B02", "B03", "B04", "B05", "B08", "B8A", "B11", "B12")


def test_landsat_asset_keys_stay_role_names(tmp_path):
    keys = ["coastal", "blue", "green", "red", "nir08", "swir16", "swir22"]
    before, _ = _folders(tmp_path, "{band}.tif", keys)
    names = open_local(before).band_names
    assert names == ("coastal", "blue", "green", "red", "nir08", "swir1", "swir2")
    assert band_roles(names, 7)["nir"] == 4


def test_described_bands(tmp_path, capsys):
    before, after = _files(tmp_path, descriptions=("Blue", "Green", "Red", "NIR"))
    assert open_local(before).band_names == ("blue", "green", "red", "nir")
    _detect_writes_true_colour(capsys, before, after, tmp_path / "out")


def test_colour_interpretation_rgb_plus_one(tmp_path, capsys):
    before, after = _files(tmp_path, photometric="RGB")
    assert open_local(before).band_names == ("red", "green", "blue", "b4")
    _detect_writes_true_colour(capsys, before, after, tmp_path / "out")


def test_sentinel2_and_role_named_images_pair_by_role(tmp_path):
    before, _ = _folders(tmp_path / "s2", BROWSER, ["B02", "B03", "B04", "B08"])
    _, after = _folders(tmp_path / "roles", "{band}.tif", ["red", "green", "blue", "nir"])
    _, _, bands_b, bands_a, *_ = plan_detection(before, after)
    assert bands_b == ["B02", "B03", "B04", "B08"]
    assert bands_a == ["blue", "green", "red", "nir"]


# --- unnamed bands: one warning, and --bands / bands= ----------------------------------


def test_unnamed_bands_warn_once_and_bands_names_them(tmp_path, capsys):
    before, after = _files(tmp_path)
    assert open_local(before).band_names == ("b1", "b2", "b3", "b4")
    with warnings.catch_warnings():
        warnings.simplefilter("always", BandsNotIdentifiedWarning)
        code, _, err = run(
            capsys, "detect", "--before", before, "--after", after, "--out", tmp_path / "o1"
        )
    assert code == 0, err
    assert err.splitlines() == [
        f"sitewatch: warning: bands of {before} cannot be identified (b1, b2, b3, b4); the "
        "report will have no true-colour images; name them with --bands blue,green,red,nir "
        "(in file order)"
    ]
    assert not (tmp_path / "o1" / "before.tif").exists()

    err = _detect_writes_true_colour(
        capsys, before, after, tmp_path / "o2", "--bands", "blue,green,red,nir"
    )
    assert "warning" not in err
    manifest = json.loads((tmp_path / "o2" / "manifest.json").read_text())
    assert manifest["diagnostics"]["bands"] == ["blue", "green", "red", "nir"]


def test_python_api_warns_once_and_bands_keyword(tmp_path):
    before, after = _files(tmp_path)
    with pytest.warns(BandsNotIdentifiedWarning, match=r"\(b1, b2, b3, b4\)") as caught:
        result = detect_change(before, after)
    assert len(caught) == 1 and result.before_rgb is None
    assert 'name them with bands="blue,green,red,nir"' in str(caught[0].message)
    result = detect_change(before, after, bands=["Blue", "green", "red", "NIR"])
    assert result.diagnostics["bands"] == ["blue", "green", "red", "nir"]
    assert result.before_rgb is not None and result.before_rgb.shape == (3, SIZE, SIZE)


def test_bands_override_file_names(tmp_path):
    before, _ = _folders(tmp_path, "{band}.tif", ["band1", "band2", "band3", "band4"])
    src = open_local(before, bands="blue,green,red,nir")
    assert src.band_names == ("blue", "green", "red", "nir") and src.bands_given
    assert [b.path.name for b in src.bands] == ["band1.tif", "band2.tif", "band3.tif", "band4.tif"]
    assert src.describe()["bands_given"] is True


def test_bands_count_mismatch_is_one_line(tmp_path, capsys):
    before, after = _files(tmp_path)
    code, _, err = run(
        capsys, "detect", "--before", before, "--after", after, "--out", tmp_path / "o",
        "--bands", "red,green,blue",
    )  # fmt: skip
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sitewatch: error: "), err
    assert "gives 3 names (red, green, blue)" in lines[0]
    assert "has 4 bands (b1, b2, b3, b4)" in lines[0]
    assert not (tmp_path / "o").exists()


def test_bands_count_mismatch_names_the_folder_files(tmp_path):
    before, _ = _folders(tmp_path, "{band}.tif", ["x1", "x2", "x3", "x4", "x5"])
    with pytest.raises(InputError, match=r"has 5 band files \(x1, x2, x3, x4, x5\)"):
        open_local(before, bands=["blue", "green", "red", "nir"])


@pytest.mark.parametrize("bands", ["blue,,red", "red,red,blue,nir", ""])
def test_bands_bad_names(tmp_path, bands):
    before, _ = _files(tmp_path)
    with pytest.raises(InputError, match="bands="):
        open_local(before, bands=bands)


def test_bands_for_a_source_object_is_an_error(tmp_path):
    before, after = _files(tmp_path)
    with pytest.raises(InputError, match="local image files"):
        plan_detection(open_local(before), after, bands="blue,green,red,nir")


def test_duplicate_names_after_canonicalisation(tmp_path):
    before, _ = _folders(tmp_path, "{band}.tif", ["swir1", "swir16"])
    with pytest.raises(DataError, match="duplicate band names"):
        open_local(before)


# --- timeline and batch -----------------------------------------------------------------


def _aoi(tmp: Path) -> Path:
    from pyproj import Transformer

    to_ll = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    x0, y1 = ORIGIN
    west, south = to_ll.transform(x0 + 60, y1 - SIZE * 10 + 60)
    east, north = to_ll.transform(x0 + SIZE * 10 - 60, y1 - 60)
    return write_geojson(tmp / "aoi.geojson", lonlat_box(west, south, east, north))


def test_timeline_bands(tmp_path, capsys):
    b, a = _pair(4)
    images = [_write(tmp_path / f"{i}.tif", x) for i, x in enumerate((b, a, a))]
    code, _, err = run(
        capsys, "timeline", "--aoi-file", _aoi(tmp_path), "--images", *images,
        "--out", tmp_path / "tl", "--bands", "blue,green,red,nir",
    )  # fmt: skip
    assert code == 0, err
    assert "warning" not in err
    assert (tmp_path / "tl" / "before.tif").is_file() and (tmp_path / "tl" / "after.tif").is_file()


def test_batch_job_bands(tmp_path):
    from sitewatch.batch import load_watchlist, run_job

    before, after = _files(tmp_path)
    aoi = _aoi(tmp_path)
    text = f"""
[[job]]
name = "named"
aoi = "{aoi}"
before = "{before}"
after = "{after}"
bands = ["blue", "green", "red", "nir"]

[[job]]
name = "unnamed"
aoi = "{aoi}"
before = "{before}"
after = "{after}"
"""
    (tmp_path / "w.toml").write_text(text, encoding="utf-8")
    wl = load_watchlist(tmp_path / "w.toml")
    assert wl.jobs[0].options["bands"] == ["blue", "green", "red", "nir"]
    named, unnamed = (run_job(j.spec(tmp_path / "runs")) for j in wl.jobs)
    assert named["status"] == "ok" and named["warnings"] == [], named
    assert (tmp_path / "runs" / "named" / "before.tif").is_file()
    assert unnamed["status"] == "ok"
    assert [w for w in unnamed["warnings"] if "cannot be identified" in w] != []

    (tmp_path / "bad.toml").write_text(text.replace('"green", ', '"", '), encoding="utf-8")
    with pytest.raises(InputError, match=r"job 1 .*empty name"):
        load_watchlist(tmp_path / "bad.toml")


def test_true_colour_stack_is_red_green_blue_nan_where_unobserved():
    from sitewatch.pipeline import _rgb

    stack = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)  # blue, green, red, nir
    keep = stack.copy()
    valid = np.ones((3, 2), bool)
    out = _rgb(stack, valid, [2, 1, 0])  # not consecutive: a copy in that order
    np.testing.assert_array_equal(out, stack[[2, 1, 0]])
    out = _rgb(stack, valid, [1, 2, 3])  # consecutive and all valid: the bands themselves
    np.testing.assert_array_equal(out, stack[1:4])
    valid[1, 0] = False
    for idx in ([2, 1, 0], [1, 2, 3]):
        out = _rgb(stack, valid, idx)
        np.testing.assert_array_equal(np.isnan(out), np.broadcast_to(~valid, out.shape))
        np.testing.assert_array_equal(out[:, valid], stack[idx][:, valid])
    np.testing.assert_array_equal(stack, keep)  # the caller's stack is never written
    assert _rgb(stack, valid, None) is None
