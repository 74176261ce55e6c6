"""Timelines on real series: dates from names and tags, --dates, no AOI, alpha masks."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

import sitewatch as sw
from conftest import ORIGIN, UTM
from sitewatch.cli.main import main
from sitewatch.detect.run import DetectOptions
from sitewatch.errors import DataError, InputError
from sitewatch.series import detect_series, series_dates
from sitewatch.sources.local import date_in_name, date_key, open_local, parse_date, read_scene

SIZE = 96
ROOF = (slice(30, 42), slice(40, 52))  # 12 x 12 px, from the third date on
HOLE = (slice(60, 80), slice(10, 40))  # alpha 0 on the later dates, garbage colours under it
MERCATOR = "EPSG:3857"
MERC_ORIGIN = (-13_544_488.5, 4_578_730.9)  # SpaceNet 7 crop near Antioch, CA (38° N)
MERC_RES = 4.777
# These tests are about dates, grids and masks, not about the detector's defaults (which
# choose a chain from the input): the RGB series below are scored by one fixed chain.
CHAIN = DetectOptions(method="cva", threshold_rule="precision")
CHAIN_ARGS = ("--method", "cva", "--threshold-rule", "precision")


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _scene(i: int, rng: np.random.Generator, fields: np.ndarray) -> np.ndarray:
    """(3, H, W) float RGB of date ``i``: fields, noise, a roof from date 2."""
    rgb = np.stack([fields * 0.8, fields, fields * 0.7])
    rgb = rgb + rng.normal(0, 1.0, size=rgb.shape)
    if i >= 2:
        rgb[(slice(None), *ROOF)] = 235.0
    return rgb


def write_rgb_series(
    folder: Path,
    names: list[str],
    *,
    crs: str = UTM,
    res: float = 4.0,
    origin: tuple[float, float] = ORIGIN,
    alpha: bool = False,
    shifts: list[int] | None = None,
    tags: list[dict[str, str]] | None = None,
    seed: int = 5,
) -> list[Path]:
    """One uint8 RGB (RGBA) GeoTIFF per name; the roof appears on the third image.

    With ``alpha``, the images from the third on are transparent over ``HOLE`` and
    hold bright random colours there (what an unusable pixel may contain).
    ``shifts`` moves each image east by that many pixels (partial overlap).
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    wide = SIZE + 8  # ground for images shifted east
    fields = np.kron(rng.uniform(60, 140, size=(SIZE // 8, wide // 8)), np.ones((8, 8)))
    paths = []
    for i, name in enumerate(names):
        rgb = _scene(i, rng, fields)
        bands = [np.clip(np.rint(rgb), 1, 255).astype("uint8")]
        if alpha:
            a = np.full((1, SIZE, wide), 255, dtype="uint8")
            if i >= 2:
                a[(0, *HOLE)] = 0
                bands[0][(slice(None), *HOLE)] = rng.integers(150, 256, size=(3, 20, 30))
            bands.append(a)
        shift = shifts[i] if shifts else 0
        data = np.concatenate(bands)[:, :, shift : shift + SIZE]
        t = Affine(res, 0, origin[0] + shift * res, 0, -res, origin[1])
        path = folder / name
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=SIZE,
            height=SIZE,
            count=data.shape[0],
            dtype="uint8",
            crs=crs,
            transform=t,
            photometric="RGB",
            **({"alpha": "YES"} if alpha else {}),
        ) as dst:
            dst.write(data)
            if tags:
                dst.update_tags(**tags[i])
        paths.append(path)
    return paths


# --- dates from names and tags -----------------------------------------------------------


@pytest.mark.parametrize(
    "name,date",
    [
        ("global_monthly_2018_01_mosaic_L15-0331E-1257N_1327_3160_13", "2018-01"),
        ("mosaic-2019-11", "2019-11"),
        ("site_2019-06-15_rgb", "2019-06-15"),
        ("site_2019_06_15", "2019-06-15"),
        ("ortho.2019.06.15", "2019-06-15"),
        ("S2_20190615_rgb", "2019-06-15"),
        ("drone_2019-06-15T10:30", "2019-06-15"),
        ("20190615T103012_ms", "2019-06-15"),
        ("T52SCK_20210116T020000_B04", "2021-01-16"),
        ("LC08_L2SP_044034_20210508_20210518_02_T1", "2021-05-08"),
        ("LT51200382002193BJC00_Nanjing", "2002-07-12"),
        ("1972-07-23_landsat1", "1972-07-23"),
        ("tile_1327_3160_2018_01", "2018-01"),
    ],
)
def test_date_in_name(name, date):
    assert date_in_name(name) == date


@pytest.mark.parametrize(
    "name",
    [
        "L15-0331E-1257N_1327_3160_13",  # a SpaceNet 7 tile id
        "T52SCK_B04",  # a Sentinel-2 tile
        "scene_2018_13",  # month 13
        "scene_2018-00-10",
        "x_20180231",  # 31 February
        "id_12345678",  # year 1234
        "run_1969_12",  # before Landsat
        "run_2101-01-01",
        "image6",
        "seasons_2019-2020",
        "frame_201801",  # YYYYMM is too ambiguous
        "c_123420180105",  # inside a longer run of digits
    ],
)
def test_date_in_name_rejects_numbers_that_are_not_dates(name):
    assert date_in_name(name) is None


def test_parse_date_and_ordering_key():
    assert parse_date("2019:06:15 10:30:00") == "2019-06-15"  # TIFFTAG_DATETIME
    assert parse_date("2019-06-15T10:30:00Z") == "2019-06-15"
    assert parse_date("20190615") == "2019-06-15" and parse_date("2019-06") == "2019-06"
    assert parse_date("2019-02-29") is None and parse_date("soon") is None
    assert date_key("2018-01") == dt.date(2018, 1, 1)  # a month orders as its first day
    assert date_key("2018-01") < date_key("2018-01-05") < date_key("2018-02")


@pytest.mark.parametrize(
    "tags,name,date,source",
    [
        (
            {"TIFFTAG_DATETIME": "2019:06:15 10:30:00"},
            "a.tif",
            "2019-06-15",
            "tag TIFFTAG_DATETIME",
        ),
        ({"ACQUISITION_DATE": "2020-03-04"}, "a.tif", "2020-03-04", "tag ACQUISITION_DATE"),
        (
            {"acquisition_date": "2020-03-04T10:00:00Z"},
            "a.tif",
            "2020-03-04",
            "tag ACQUISITION_DATE",
        ),
        ({"DATE_ACQUIRED": "2020/03/04"}, "a.tif", "2020-03-04", "tag DATE_ACQUIRED"),
        # the name is the acquisition, TIFFTAG_DATETIME may be when the file was made
        (
            {"TIFFTAG_DATETIME": "2024:01:01 00:00:00"},
            "s_2019-06-15.tif",
            "2019-06-15",
            "file name",
        ),
        # an acquisition tag says more than a name
        (
            {"ACQUISITION_DATE": "2020-03-04"},
            "s_2019-06-15.tif",
            "2020-03-04",
            "tag ACQUISITION_DATE",
        ),
        ({"ACQUISITION_DATE": "not a date"}, "a.tif", None, None),
    ],
)
def test_dates_from_tiff_tags(tmp_path, tags, name, date, source):
    (path,) = write_rgb_series(tmp_path, [name], tags=[tags])
    src = open_local(path)
    assert src.acquired == date
    assert src.acquired_from == source
    assert src.describe()["acquired_from"] == source


def test_band_folder_dated_by_its_name(tmp_path):
    (path,) = write_rgb_series(tmp_path / "2021-07", ["rgb.tif"])
    src = open_local(path.parent)
    assert (src.acquired, src.acquired_from) == ("2021-07", "folder name")


# --- --dates / dates= ----------------------------------------------------------------------


def test_series_dates_checks_every_date():
    assert series_dates(["2018-01", "2018-02-15"], 2) == ["2018-01", "2018-02-15"]
    with pytest.raises(InputError, match=r"dates= gives 1 date for 2 images"):
        series_dates("2018-01", 2)
    for bad in ("2018-13", "2018-02-30", "18-01-01", "2018/01/01", "", "image 6"):
        with pytest.raises(InputError, match="is not a date"):
            series_dates(["2018-01", bad], 2)


@pytest.fixture(scope="module")
def undated(tmp_path_factory) -> list[Path]:
    names = ["north.tif", "east.tif", "south.tif", "west.tif"]
    return write_rgb_series(tmp_path_factory.mktemp("undated"), names)


def test_undated_images_are_called_by_their_file_names(undated):
    result, tl = detect_series(undated, options=CHAIN)
    assert tl.dates == ["north.tif", "east.tif", "south.tif", "west.tif"]
    info = result.diagnostics["timeline"]
    assert info["undated"] == tl.dates and info["sorted_by_date"] is False
    assert not any("image" in d for d in tl.dates)
    (roof,) = [f for f in result.features if f["properties"]["status"] == "persistent"]
    assert roof["properties"]["first_seen"] == "south.tif"


def test_dates_override_and_order(undated, tmp_path, capsys):
    out = tmp_path / "tl"
    dates = "2021-01-10,2021-02,2021-03-12,2021-04-09"
    code, text, err = run(
        capsys, "timeline", "--images", *undated, "--dates", dates, "--out", out, *CHAIN_ARGS
    )
    assert code == 0, err
    assert "2021-01-10 … 2021-04-09" in text and "image" not in text.replace("images", "")
    assert "first seen 2021-03-12 (clear before: 2021-02)" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["acquired"] for s in manifest["series"]] == dates.split(",")
    assert {s["acquired_from"] for s in manifest["series"]} == {"given (--dates)"}
    # Dates given out of order put the images in date order.
    result, tl = detect_series(
        undated, dates=["2021-04-09", "2021-01-10", "2021-02", "2021-03"], options=CHAIN
    )
    assert tl.dates == ["2021-01-10", "2021-02", "2021-03", "2021-04-09"]
    assert result.diagnostics["timeline"]["sorted_by_date"] is True
    assert [Path(s["path"]).name for s in result.provenance["series"]] == [
        "east.tif",
        "south.tif",
        "west.tif",
        "north.tif",
    ]


@pytest.mark.parametrize(
    "dates,needle",
    [
        ("2021-01-10,2021-02", "--dates gives 2 dates for 4 images"),
        ("2021-01-10,2021-02,2021-13,2021-04", "--dates '2021-13' is not a date"),
        ("2021-01-10,2021-02,,2021-04", "--dates '' is not a date"),
    ],
)
def test_dates_errors_are_one_line(undated, tmp_path, capsys, dates, needle):
    code, _, err = run(
        capsys, "timeline", "--images", *undated, "--dates", dates, "--out", tmp_path / "o"
    )
    assert code == 2
    one_line(err, needle)
    assert not (tmp_path / "o").exists()


def test_dates_in_python_name_the_argument(undated):
    with pytest.raises(InputError, match=r"^dates= gives 3 dates for 4 images"):
        detect_series(undated, dates="2021-01,2021-02,2021-03")


def test_dates_need_local_images(capsys, tmp_path):
    code, _, err = run(
        capsys, "timeline", "feb11-plant", "--from", "2021-01", "--to", "2021-06",
        "--dates", "2021-01-01,2021-02-01", "--out", tmp_path / "o",
    )  # fmt: skip
    assert code == 2
    one_line(err, "--dates dates local --images")


# --- no AOI --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return sw.synthetic_series(tmp_path_factory.mktemp("series"))


def test_timeline_without_an_aoi(series):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result, tl = sw.detect_series(series.folders, aoi=None)
    assert tl.dates == series.dates
    assert result.grid == series.grid  # the images' own (UTM) grid: they all cover it
    assert result.provenance["parameters"]["grid_rule"] == "first-grid-overlap"
    assert result.provenance["aoi"] is None
    (kept,) = result.features
    p = kept["properties"]
    c = p["centroid"]
    assert abs(c[0] - series.building_lonlat[0]) < 8e-4
    assert abs(c[1] - series.building_lonlat[1]) < 8e-4
    assert p["first_seen"] == series.building_from and p["status"] == "persistent"
    assert any(r.first_seen == series.transient_on for r in tl.regions if r.status == "transient")


def test_timeline_cli_without_an_aoi(series, tmp_path, capsys):
    out = tmp_path / "tl"
    code, text, err = run(capsys, "timeline", "--images", *series.folders, "--out", out)
    assert code == 0, err
    assert "the overlap of the 6 images" in text
    assert f"c001: first seen {series.building_from}" in text and "1 transient" in text
    info = json.loads((out / "timeline.json").read_text())
    assert info["dates"] == series.dates
    assert info["dated_from"] == ["tag ACQUISITION_DATE"] * 6


def test_timeline_without_aoi_or_images_names_both(capsys, tmp_path):
    code, _, err = run(capsys, "timeline", "--out", tmp_path / "o")
    assert code == 2
    one_line(err, "name an AOI", "--images")


def test_series_overlap_is_what_every_image_covers(tmp_path):
    names = [f"s_2020-0{m}-01.tif" for m in range(1, 5)]
    paths = write_rgb_series(tmp_path, names, shifts=[0, 3, 6, 2])
    result, _ = detect_series(paths, options=CHAIN)
    assert result.grid.width == SIZE - 6 and result.grid.height == SIZE
    assert result.grid.transform.c == ORIGIN[0] + 6 * 4.0
    (roof,) = [f for f in result.features if f["properties"]["status"] == "persistent"]
    assert roof["properties"]["first_seen"] == "2020-03-01"


def test_series_that_do_not_overlap(tmp_path):
    paths = write_rgb_series(tmp_path, ["a_2020-01-01.tif", "b_2020-02-01.tif"])
    far = write_rgb_series(
        tmp_path / "far", ["c_2020-03-01.tif"], origin=(ORIGIN[0] + 5000, ORIGIN[1])
    )
    with pytest.raises(DataError, match="do not overlap"):
        detect_series([*paths, *far])


@pytest.fixture(scope="module")
def mercator(tmp_path_factory) -> list[Path]:
    names = [
        f"global_monthly_2018_{m:02d}_mosaic_L15-0331E-1257N_1327_3160_13.tif" for m in range(1, 6)
    ]
    return write_rgb_series(
        tmp_path_factory.mktemp("merc"),
        names,
        crs=MERCATOR,
        res=MERC_RES,
        origin=MERC_ORIGIN,
        alpha=True,
    )


def test_web_mercator_monthly_series_without_an_aoi(mercator, tmp_path, capsys):
    # given newest first: the month names put them in order
    result, tl = detect_series(list(reversed(mercator)), options=CHAIN)
    assert tl.dates == ["2018-01", "2018-02", "2018-03", "2018-04", "2018-05"]
    assert result.diagnostics["timeline"]["sorted_by_date"] is True
    assert result.grid.crs == "EPSG:32610"  # UTM, at the true ground size of a pixel
    true_px = MERC_RES * np.cos(np.radians(37.99))
    assert np.sqrt(result.grid.pixel_area_m2) == pytest.approx(true_px, rel=0.01)
    assert result.provenance["parameters"]["grid_rule"] == "first-overlap-utm"
    assert "enlarges areas" in result.diagnostics["grid_note"]
    (roof,) = [f for f in result.features if f["properties"]["status"] == "persistent"]
    p = roof["properties"]
    assert p["first_seen"] == "2018-03" and p["last_clear_before"] == "2018-02"
    roof_m2 = (12 * true_px) ** 2
    assert 0.6 * roof_m2 < p["area_m2"] < 1.6 * roof_m2
    code, text, err = run(
        capsys, "timeline", "--images", *mercator, "--out", tmp_path / "tl", *CHAIN_ARGS
    )
    assert code == 0, err
    assert "5 dates 2018-01 … 2018-05" in text and "first seen 2018-03" in text
    assert "grid: the images' CRS (EPSG:3857) enlarges areas" in text


# --- alpha ---------------------------------------------------------------------------------


def test_rgba_alpha_is_a_mask_not_a_band(mercator):
    src = open_local(mercator[2])
    assert src.band_names == ("blue", "green", "red")  # the alpha is not a colour
    assert [(b.name, b.index) for b in src.alpha_bands] == [("alpha", 4)]
    assert src.describe()["alpha_mask"] == "band 4"
    scene = read_scene(src, src.grid)
    assert not scene.valid[HOLE].any() and scene.valid.sum() == SIZE * SIZE - 20 * 30
    assert scene.provenance["alpha_masked_px"] == 20 * 30


def test_rgba_transparent_pixels_are_never_flagged(mercator):
    result, tl = detect_series(mercator, options=CHAIN)
    # Onto the UTM grid: where the hole was, nothing is observed on the later dates,
    # so the bright garbage under alpha 0 makes no change region.
    from pyproj import Transformer

    to_grid = Transformer.from_crs(MERCATOR, result.grid.crs, always_xy=True)
    x, y = to_grid.transform(
        MERC_ORIGIN[0] + 25 * MERC_RES, MERC_ORIGIN[1] - 70 * MERC_RES
    )  # the hole's centre
    col, row = ~result.grid.transform @ (x, y)
    r, c = int(row), int(col)
    assert not tl.valid[2:, r - 3 : r + 4, c - 8 : c + 8].any()
    assert not result.mask[r - 5 : r + 6, c - 10 : c + 10].any()
    assert len([f for f in result.features if f["properties"]["status"] == "persistent"]) == 1


def test_rgba_pair_detect_ignores_transparent_pixels(tmp_path):
    paths = write_rgb_series(tmp_path, ["a_2020-01-01.tif", "b", "c_2020-03-01.tif"], alpha=True)
    result = sw.detect_change(paths[0], paths[2], options=CHAIN)
    assert result.diagnostics["bands"] == ["blue", "green", "red"]
    assert not result.valid[HOLE].any() and not result.mask[HOLE].any()
    assert result.mask[ROOF].mean() > 0.8


def test_alpha_by_description(tmp_path):
    data = np.full((4, 16, 16), 120, dtype="uint8")
    data[3] = 255
    data[3, :4] = 0
    path = tmp_path / "x.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=16, height=16, count=4, dtype="uint8",
        crs=UTM, transform=Affine(4, 0, ORIGIN[0], 0, -4, ORIGIN[1]), photometric="MINISBLACK",
    ) as dst:  # fmt: skip
        dst.write(data)
        dst.set_band_description(4, "Alpha")
    src = open_local(path)
    assert src.band_names == ("b1", "b2", "b3") and src.alpha_bands[0].index == 4
    assert read_scene(src, src.grid).valid.sum() == 12 * 16


def test_a_fourth_8bit_band_marked_alpha_but_holding_nir_is_a_band(tmp_path):
    # GDAL marks the 4th band of a 4-band 8-bit GeoTIFF written without options alpha.
    rng = np.random.default_rng(1)
    data = rng.integers(20, 200, size=(4, 32, 32), dtype="uint8")
    path = tmp_path / "rgbn.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=32, height=32, count=4, dtype="uint8",
        crs=UTM, transform=Affine(4, 0, ORIGIN[0], 0, -4, ORIGIN[1]),
    ) as dst:  # fmt: skip
        dst.write(data)
    with rasterio.open(path) as ds:
        assert ds.colorinterp[3] == rasterio.enums.ColorInterp.alpha
    src = open_local(path)
    assert src.band_names == ("red", "green", "blue", "b4") and src.alpha_bands == ()


def test_bands_count_names_the_alpha(mercator):
    with pytest.raises(InputError, match=r"has 3 bands .* and an alpha mask \(band 4"):
        open_local(mercator[0], bands="red,green,blue,nir")
    assert open_local(mercator[0], bands="red,green,blue").band_names == ("blue", "green", "red")
