"""bench suite: dataset discovery, SpaceNet 7 pairs and timelines, leave-one-out (synthetic)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp
from test_bench import make_oscd, make_sparse, one_line_error, run_cli

from conftest import SHARED, needs_shared, write_raster
from sitewatch.bench import pairs as pairs_mod
from sitewatch.bench import suite
from sitewatch.bench.metrics import PixelCounts
from sitewatch.detect.options import STEP_FDR
from sitewatch.detect.run import DetectOptions
from sitewatch.errors import InputError

# --------------------------------------------------------------------------- fixtures

MERC = Affine(4.777, 0, -13_544_488.5, 0, -4.777, 4_578_730.9)  # Web Mercator, ~38° N
SN_SIZE = 32
OLD = (slice(22, 27), slice(3, 9))  # Id 3: there from the first month
NEW = (slice(8, 16), slice(10, 18))  # Id 7: appears in month 2 (2018-02), 64 px
MONTHS = ("2018_01", "2018_02", "2018_03", "2018_04")
RGB = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]


def _box(rows: slice, cols: slice) -> dict:
    """A pixel-coordinate polygon (x = column, y = row) covering those pixels."""
    x0, x1, y0, y1 = cols.start, cols.stop, rows.start, rows.stop
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [ring]}


def make_spacenet7(root: Path, *, seed: int = 5, crop: str = "L15-0000E-0000N_r0_c0") -> Path:
    """One crop: 4 monthly 32x32 RGBA GeoTIFFs (EPSG:3857), labels per month, the csv."""
    rng = np.random.default_rng(seed)
    base = root / crop
    (base / "images_masked").mkdir(parents=True)
    (base / "labels_match_pix").mkdir()
    ground = rng.normal(90, 6, (3, SN_SIZE, SN_SIZE))
    for t, month in enumerate(MONTHS):
        rgb = ground + rng.normal(0, 2, ground.shape)
        rgb[:, OLD[0], OLD[1]] = 200
        feats = [{"type": "Feature", "properties": {"Id": 3}, "geometry": _box(*OLD)}]
        if t >= 1:
            rgb[:, NEW[0], NEW[1]] = 230
            feats.append({"type": "Feature", "properties": {"Id": 7}, "geometry": _box(*NEW)})
        alpha = np.full((1, SN_SIZE, SN_SIZE), 255.0)
        if t == len(MONTHS) - 1:
            alpha[0, :, :4] = 0  # a strip without data in the last month
        data = np.concatenate([np.clip(rgb, 1, 254), alpha]).astype(np.uint8)
        stem = f"global_monthly_{month}_mosaic_{crop}"
        path = base / "images_masked" / f"{stem}.tif"
        write_raster(path, data, crs="EPSG:3857", transform=MERC)
        with rasterio.open(path, "r+") as ds:
            ds.colorinterp = [
                ColorInterp.red,
                ColorInterp.green,
                ColorInterp.blue,
                ColorInterp.alpha,
            ]
        doc = {"type": "FeatureCollection", "features": feats}
        (base / "labels_match_pix" / f"{stem}_Buildings.geojson").write_text(json.dumps(doc))
    (base / "buildings_first_seen.csv").write_text(
        "id,first_idx,first_seen,area_px_first\n3,0,2018_01,30.0\n7,1,2018_02,64.0\n"
    )
    return root


def _rgb_images(d: int, *, false_alarm: int = 0, size: int = 24, seed: int = 3):
    """before/after/gt uint8: texture, a planted change of d (+ a no-change patch)."""
    before = np.random.default_rng(seed).integers(60, 140, (3, size, size)).astype(np.uint8)
    after = before.copy()
    truth = np.zeros((size, size), bool)
    truth[4:10, 4:10] = True
    after[:, truth] += np.uint8(d)
    if false_alarm:
        after[:, 14:20, 14:20] += np.uint8(false_alarm)
    return before, after, np.where(truth, 255, 0).astype(np.uint8)[None]


def make_sztaki(root: Path, *, d: int = 60, false_alarm: int = 0) -> Path:
    folder = root / "sztaki_airchange" / "Szada" / "2"
    folder.mkdir(parents=True)
    for name, arr in zip(
        ("im1", "im2", "gt"), _rgb_images(d, false_alarm=false_alarm), strict=True
    ):
        write_raster(folder / f"{name}.png", arr, crs=None, driver="PNG")
    return root


def make_dsifn(root: Path, *, d: int = 60, false_alarm: int = 0) -> Path:
    base = root / "dsifn_cd_samples" / "samples_DSIFN"
    for sub, arr in zip(("A", "B", "label"), _rgb_images(d, false_alarm=false_alarm), strict=True):
        (base / sub).mkdir(parents=True)
        write_raster(base / sub / "0_1.png", arr, crs=None, driver="PNG")
    return root


@pytest.fixture(scope="module")
def full_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("suite")
    make_oscd(root / "oscd")
    make_sztaki(root)
    make_dsifn(root)
    make_sparse(root / "landsat_taizhou_nanjing" / "Taizhou", np.random.default_rng(0))
    make_spacenet7(root / "spacenet7")
    return root


def fake_k_detector(monkeypatch) -> list[tuple[float, float]]:
    """Detector stand-in: score = largest band change, mask = score > k. Logs (k, area)."""
    calls: list[tuple[float, float]] = []

    def fake(before, after, valid, *, band_names=None, pixel_area_m2=100.0, options=None):
        opts = options or DetectOptions()
        calls.append((opts.k, pixel_area_m2))
        score = np.abs(after - before).max(axis=0).astype(np.float32)
        return SimpleNamespace(score=score, mask=score > opts.k)

    monkeypatch.setattr(pairs_mod, "detect_arrays", fake)
    return calls


# --------------------------------------------------------------------------- whole suite


def test_suite_table_and_json_shape(full_root, tmp_path, capsys):
    out = tmp_path / "suite.json"
    code, stdout, err = run_cli(capsys, "bench", "suite", full_root, "--json", out)
    assert code == 0, err
    doc = json.loads(out.read_text())
    names = ["oscd", "sztaki_airchange", "dsifn_cd_samples", "landsat_taizhou_nanjing",
             "spacenet7"]  # fmt: skip
    assert list(doc["datasets"]) == names  # table order; levir_cd_samples is missing
    assert doc["skipped"] == [f"levir_cd_samples: no levir_cd_samples/ folder under {full_root}; "
                              "skipped"]  # fmt: skip
    for name, d in doc["datasets"].items():
        assert {"pooled", "baseline", "ratio", "pixels", "oracle_threshold"} <= set(d), name
        oracle = d["oracle_threshold"]  # flagging everything is one of its thresholds
        assert oracle["flag_all_f1"] - 1e-6 <= oracle["f1"] <= 1
        assert 0 < oracle["flagged_share"] <= 1
        assert set(d["pooled"]) == {"precision", "recall", "f1", "iou", "auc_pr", "counts",
                                    "objects"}  # fmt: skip
        assert set(d["baseline"]) == set(d["pooled"])
        objects = d["pooled"]["objects"]
        assert (
            objects["found"] <= objects["labelled"] and objects["on_change"] <= objects["regions"]
        )
        assert sum(d["pooled"]["counts"].values()) == d["pixels"]
        if d["baseline"]["f1"]:
            assert d["ratio"] == pytest.approx(d["pooled"]["f1"] / d["baseline"]["f1"], abs=1e-3)
        assert name in stdout
    assert doc["datasets"]["oscd"]["pixels"] == 2 * 48 * 48
    assert set(doc["datasets"]["oscd"]["cities"]) == {"alpha", "beta"}
    assert doc["datasets"]["landsat_taizhou_nanjing"]["pixels"] == 75  # labelled only
    assert doc["datasets"]["spacenet7"]["pixels"] == SN_SIZE * (SN_SIZE - 4)  # alpha strip
    assert doc["datasets"]["sztaki_airchange"]["pixel_size_m"] == 1.5
    f1s = [d["pooled"]["f1"] for d in doc["datasets"].values()]
    assert doc["macro_f1"] == pytest.approx(np.mean(f1s), abs=1e-5)
    tl = doc["spacenet7_timeline"]
    assert tl["new_buildings"] == 1 and set(tl["crops"]) == {"L15-0000E-0000N_r0_c0"}
    (b,) = tl["crops"]["L15-0000E-0000N_r0_c0"]["buildings"]
    assert b["id"] == 7 and b["labelled"] == "2018-02"
    assert tl["fdr"] == STEP_FDR  # the step model's default false-discovery share
    assert "leave_one_out" not in doc and doc["seconds"] > 0
    assert "macro-F1" in stdout and "spacenet7 timeline" in stdout and "note: levir" in stdout
    assert "oracle threshold (best F1 of one threshold" in stdout
    # The SZTAKI fixture plants one changed square: found, as one region.
    o = doc["datasets"]["sztaki_airchange"]["pooled"]["objects"]
    assert (o["labelled"], o["found"], o["pieces_per_found"]) == (1, 1, 1.0)
    assert "objects (8-connected; an object is found" in stdout
    # The detector each dataset's input chose is printed and recorded.
    assert doc["datasets"]["sztaki_airchange"]["detector"] == "irmad + kittler"  # RGB, no CRS
    assert "sztaki_airchange irmad + kittler" in stdout


def test_suite_runs_a_named_method_on_every_dataset(full_root, tmp_path, capsys):
    out = tmp_path / "edges.json"
    code, stdout, err = run_cli(capsys, "bench", "suite", full_root, "--method", "edges",
                                "--json", out)  # fmt: skip
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert {d["detector"] for d in doc["datasets"].values()} == {"edges + kittler"}
    assert "method edges, rule auto" in stdout


def test_learned_method_is_scored_with_a_model_that_never_saw_the_dataset(
    full_root, tmp_path, capsys, monkeypatch
):
    from sitewatch.detect.learned import load_model

    used: list[tuple[str, frozenset[str]]] = []  # (what ran, datasets its model saw)

    def record(what: str, options: DetectOptions) -> None:
        if options.method == "learned":
            used.append((what, frozenset(load_model(options.weights).trained_on)))

    real_eval, real_timeline = suite.evaluate_pair, suite.run_spacenet7_timeline

    def evaluate(pair, options):
        record(pair.name, options)
        return real_eval(pair, options)

    def timeline(crop, *, options=None, fdr=STEP_FDR):
        record("timeline", options)
        return real_timeline(crop, options=options, fdr=fdr)

    monkeypatch.setattr(suite, "evaluate_pair", evaluate)
    monkeypatch.setattr(suite, "run_spacenet7_timeline", timeline)
    out = tmp_path / "learned.json"
    code, stdout, err = run_cli(capsys, "bench", "suite", full_root, "--method", "learned",
                                "--json", out)  # fmt: skip
    assert code == 0, err
    doc = json.loads(out.read_text())
    names = set(doc["datasets"])
    assert {d["detector"] for d in doc["datasets"].values()} == {"learned + model"}
    # Every learned run, the timelines' too, used a model trained on all the datasets
    # but one (never the shipped model, trained on ../shared/data), one per dataset.
    assert used and all(len(names - saw) == 1 and saw < names for _, saw in used)
    assert len({saw for _, saw in used}) == len(names)
    assert {"spacenet7"} == names - next(saw for what, saw in used if what == "timeline")
    assert "leave-one-dataset-out" in stdout
    assert "learned: sampled sztaki_airchange" in err


def test_learned_suite_needs_two_datasets(tmp_path, capsys):
    make_sztaki(tmp_path)
    code, _, err = run_cli(capsys, "bench", "suite", tmp_path, "--method", "learned")
    assert code == 2
    one_line_error(err, "at least two", "datasets")


def test_spacenet7_timeline_finds_and_dates_the_new_building(tmp_path):
    (crop,) = suite.spacenet7_crops(make_spacenet7(tmp_path))
    s = suite.run_spacenet7_timeline(crop)
    assert (s.n_new, s.n_found, s.n_dated) == (1, 1, 1)
    assert s.buildings[0]["first_seen"] == "2018-02"
    assert 0 < s.flagged_near_px <= s.flagged_px  # the part on the roof is near a new building


def test_empty_root_is_one_input_error_line(tmp_path, capsys):
    (tmp_path / "unrelated").mkdir()
    code, _, err = run_cli(capsys, "bench", "suite", tmp_path)
    assert code == 2
    one_line_error(err, "no labelled dataset", "oscd", "spacenet7")
    code, _, err = run_cli(capsys, "bench", "suite", tmp_path / "nope")
    assert code == 2
    one_line_error(err, "nope", "not a folder")
    with pytest.raises(SystemExit) as exc:  # a usage error, from the argument parser
        run_cli(capsys, "bench", "suite", tmp_path, "--fdr", "1.5")
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--fdr" in err and "between 0 and 1" in err


def test_missing_datasets_are_skipped_with_a_note(tmp_path):
    make_dsifn(tmp_path)
    found, notes = suite.find_datasets(tmp_path)
    assert [d.name for d in found] == ["dsifn_cd_samples"]
    assert found[0].pixel_size_m == 1.0
    assert len(notes) == len(suite.DATASETS) - 1 and all("skipped" in n for n in notes)


def test_json_is_not_overwritten_without_flag(tmp_path, capsys):
    make_dsifn(tmp_path / "root")
    out = tmp_path / "r.json"
    out.write_text("{}")
    code, _, err = run_cli(capsys, "bench", "suite", tmp_path / "root", "--json", out)
    assert code == 2
    one_line_error(err, "exists", "--overwrite")
    assert out.read_text() == "{}"


# --------------------------------------------------------------------------- leave one out


def test_leave_one_out_chooses_on_the_other_datasets(tmp_path, capsys, monkeypatch):
    # sztaki: change of 4 -> only k = 3 finds it. dsifn: change of 5 and a false alarm
    # of 4 -> only k = 4.5 is exact. Each is scored with the other's best k.
    calls = fake_k_detector(monkeypatch)
    make_sztaki(tmp_path, d=4)
    make_dsifn(tmp_path, d=5, false_alarm=4)
    out = tmp_path / "loo.json"
    code, stdout, err = run_cli(capsys, "bench", "suite", tmp_path, "--leave-one-out",
                                "--json", out)  # fmt: skip
    assert code == 0, err
    doc = json.loads(out.read_text())
    sz, ds = doc["datasets"]["sztaki_airchange"], doc["datasets"]["dsifn_cd_samples"]
    default_smooth = DetectOptions().smooth  # smooth changes nothing here: tie -> default
    assert sz["chosen"] == {"k": 4.5, "smooth": default_smooth}
    assert ds["chosen"] == {"k": 3.0, "smooth": default_smooth}
    assert sz["f1_by_config"][f"k=3,smooth={default_smooth:g}"] == 1.0
    assert ds["f1_by_config"][f"k=4.5,smooth={default_smooth:g}"] == 1.0
    assert sz["pooled"]["f1"] == 0.0  # scored with dsifn's choice, which misses it
    assert 0 < ds["pooled"]["f1"] < 1  # scored with sztaki's choice: a false alarm
    assert doc["macro_f1"] == pytest.approx((sz["pooled"]["f1"] + ds["pooled"]["f1"]) / 2, abs=1e-5)
    assert "macro_f1_default" in doc and set(doc["leave_one_out"]["tunables"]) == {"k", "smooth"}
    # One detector run per entry per configuration (+ the baseline), not per fold.
    n_configs = len(sz["f1_by_config"])
    assert n_configs == len(suite.TUNABLES["k"].values(DetectOptions())) * len(
        suite.TUNABLES["smooth"].values(DetectOptions())
    )
    assert len(calls) == 2 * (n_configs + 1)
    assert {a for _, a in calls} == {1.5**2, 1.0}  # the pixel-size table
    assert "k=4.5" in stdout and "chosen on the others" in stdout


def test_choose_leave_one_out_ties_go_to_the_default():
    lo, mid, hi = (("k", 3.0),), (("k", 6.5),), (("k", 9.0),)
    f1 = {
        "a": {lo: 0.5, mid: 0.5, hi: 0.1},
        "b": {lo: 0.6, mid: 0.6, hi: 0.2},
        "c": {lo: 0.0, mid: 0.3, hi: 0.9},
    }
    chosen = suite.choose_leave_one_out(f1, mid)
    assert chosen["a"] == hi  # on b, c: 0.3, 0.45, 0.55 (a's own 0.5 for lo/mid is not seen)
    assert chosen["b"] == hi  # on a, c: 0.25, 0.4, 0.5
    assert chosen["c"] == mid  # on a, b: 0.55, 0.55, 0.15 -> the tie goes to the default
    assert suite.choose_leave_one_out({"a": {lo: 1.0, mid: 0.0}}, mid) == {"a": mid}


def test_search_grid_registry():
    base = DetectOptions()
    used, configs, notes = suite.search_grid(None, base)
    assert [t.name for t in used] == list(suite.TUNABLES)
    assert (("k", base.k), ("smooth", base.smooth)) in configs and not notes
    with pytest.raises(InputError, match="unknown tunable 'nope'"):
        suite.search_grid(["nope"], base)
    # k acts only under the precision rule: inert tunables cost no run.
    used, configs, notes = suite.search_grid(["k"], DetectOptions(threshold_rule="otsu"))
    assert not used and configs == [()] and "no effect" in notes[0]
    # One call adds a tunable to the search.
    suite.register_tunable(suite.Tunable("edge", (0.0, 0.25), "boundary rule"))
    try:
        used, configs, _ = suite.search_grid(["edge"], base)
        assert configs == [(("edge", 0.0),), (("edge", 0.25),), (("edge", base.edge),)]
    finally:
        suite.TUNABLES.pop("edge")


def test_tune_needs_leave_one_out(tmp_path):
    make_dsifn(tmp_path)
    with pytest.raises(InputError, match="--leave-one-out"):
        suite.run_suite(tmp_path, tunables=["k"])


# --------------------------------------------------------------------------- SpaceNet 7


def test_spacenet7_pair_reference_and_alpha(tmp_path):
    (crop,) = suite.spacenet7_crops(make_spacenet7(tmp_path))
    assert [m % 12 + 1 for m in crop.months] == [1, 2, 3, 4]
    pair = suite.read_spacenet7_pair(crop)
    assert pair.band_names == ("red", "green", "blue") and pair.before.shape == (3, 32, 32)
    expected = np.zeros((32, 32), bool)
    expected[NEW] = True  # Id 7 only: Id 3 is in the first month too
    assert np.array_equal(pair.truth, expected)
    assert pair.labelled.sum() == 32 * 28 and not pair.labelled[:, :4].any()
    assert 10 < pair.pixel_area_m2 < 4.777**2  # true ground area, not Web Mercator's
    buildings = suite.read_buildings(crop)
    assert {i: b.first % 12 + 1 for i, b in buildings.items()} == {3: 1, 7: 2}


def test_score_buildings_by_hand():
    shape = (20, 20)
    a = np.zeros(shape, bool)
    a[2:6, 2:6] = True  # 16 px, labelled month 10
    b = np.zeros(shape, bool)
    b[12:16, 12:16] = True  # 16 px, labelled month 10
    flagged = np.zeros(shape, bool)
    flagged[2:6, 6:8] = True  # beside a: within 1 px of 4 of its pixels ... (25 %)
    flagged[3:6, 1:2] = True  # ... plus 3 more on its other side: 7/16 >= 30 %
    flagged[12:16, 12:16] = True  # b exactly, but seen 3 months late
    flagged[0, 19] = True  # far from both: 1 px not near
    regions = np.zeros(shape, int)
    regions[:, :10] = 1
    regions[10:, 10:] = 2
    regions = np.where(flagged, regions, 0)
    s = suite.score_buildings([a, b], [10, 10], flagged, regions, {1: 11, 2: 13}, pixel_size_m=5.0)
    assert s.found == (True, True) and s.first_seen == (11, 13) and s.dated == (True, False)
    assert s.flagged_px == 8 + 3 + 16 + 1 and s.flagged_near_px == 8 + 3 + 16


@needs_shared("data", "spacenet7")
@pytest.mark.shared
def test_spacenet7_real_crops_read():
    crops = suite.spacenet7_crops(SHARED / "data" / "spacenet7")
    assert len(crops) == 2 and all(len(c.images) == 25 for c in crops)
    for c in crops:
        pair = suite.read_spacenet7_pair(c)
        new = {i for i, b in suite.read_buildings(c).items() if b.first > c.months[0]}
        assert pair.before.shape == (3, 256, 256) and pair.truth.sum() > 400
        assert len(new) in (31, 26)  # SOURCE.md: new after the first month
        assert PixelCounts.from_masks(pair.truth, pair.truth).tp == pair.truth.sum()
