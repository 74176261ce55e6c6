"""Benchmark harness: metrics by hand, dataset layouts, JSON shape, errors (synthetic data)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from affine import Affine
from skimage.transform import resize

from conftest import ORIGIN, SHARED, UTM, needs_shared, write_raster
from sitewatch.bench import (
    LabelledPair,
    ObjectCounts,
    PixelCounts,
    average_precision,
    find_pairs,
    run_benchmark,
    scores_to_metrics,
)
from sitewatch.bench import oscd as oscd_mod
from sitewatch.bench import pairs as pairs_mod
from sitewatch.bench.oscd import IMAGES_DIR, LABELS_DIRS
from sitewatch.bench.pairs import read_pair
from sitewatch.cli import bench_cmd
from sitewatch.detect import methods
from sitewatch.detect.run import DetectOptions
from sitewatch.errors import DataError, SitewatchError

METRIC_KEYS = {"precision", "recall", "f1", "iou", "auc_pr"}
COUNT_KEYS = {"tp", "fp", "fn", "tn"}

# --------------------------------------------------------------------------- helpers


def run_cli(capsys, *argv: object) -> tuple[int, str, str]:
    """Parse and run like sitewatch.cli.main does (one-line errors, exit codes)."""
    parser = argparse.ArgumentParser(prog="sitewatch")
    sub = parser.add_subparsers(dest="command", required=True)
    bench_cmd.register(sub)
    args = parser.parse_args([str(a) for a in argv])
    try:
        code = args.func(args)
    except SitewatchError as err:
        sys.stderr.write(f"sitewatch: error: {err}\n")
        code = err.exit_code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sitewatch: error: ")
    for n in needles:
        assert n in lines[0], (n, lines[0])


def fake_detector(monkeypatch, *, mask_value: bool = True) -> None:
    """Replace the detector by one that flags every pixel with score 1."""

    def fake(before, after, valid, *, band_names=None, pixel_area_m2=100.0, options=None):
        shape = valid.shape
        return SimpleNamespace(
            score=np.ones(shape, np.float32), mask=np.full(shape, mask_value, dtype=bool)
        )

    monkeypatch.setattr(pairs_mod, "detect_arrays", fake)


def entry_shape(d: dict) -> None:
    assert set(d) == METRIC_KEYS | {"counts", "seconds"}
    assert set(d["counts"]) == COUNT_KEYS


def method_shape(doc: dict, entry_key: str, names: set[str]) -> None:
    assert set(doc["pooled"]) == METRIC_KEYS | {"counts"}
    assert set(doc[entry_key]) == names
    for e in doc[entry_key].values():
        entry_shape(e)
    pooled = PixelCounts(**doc["pooled"]["counts"])
    assert pooled == sum(PixelCounts(**e["counts"]) for e in doc[entry_key].values())
    for v in [*doc["pooled"].values(), doc["auc_pr_mean"]]:
        assert isinstance(v, dict) or 0.0 <= v <= 1.0


# --------------------------------------------------------------------------- metrics


def test_object_counts_by_hand():
    truth = np.zeros((12, 12), bool)
    truth[1:4, 1:6] = True  # object A
    truth[8:11, 8:11] = True  # object B, missed
    pred = np.zeros_like(truth)
    pred[1, 1:6] = pred[3, 1:6] = True  # A in two pieces (row 2 empty between them)
    pred[6, 0:3] = True  # a false region
    o = ObjectCounts.from_masks(pred, truth)
    assert o == ObjectCounts(labelled=2, found=1, regions=3, on_change=2, pieces=2)
    assert (o.found_share, o.on_change_share, o.pieces_per_found) == (0.5, 2 / 3, 2.0)
    pred[2, 3] = True  # joins the two pieces: A comes back as one region
    o = ObjectCounts.from_masks(pred, truth)
    assert o == ObjectCounts(labelled=2, found=1, regions=2, on_change=1, pieces=1)
    assert o.as_dict()["pieces_per_found"] == 1.0


def test_object_counts_one_region_over_two_objects():
    truth = np.zeros((5, 12), bool)
    truth[1:4, 1:3] = truth[1:4, 9:11] = True
    pred = np.zeros_like(truth)
    pred[2, 2:10] = True  # shares a pixel with each object
    o = ObjectCounts.from_masks(pred, truth)
    assert o == ObjectCounts(labelled=2, found=2, regions=1, on_change=1, pieces=2)
    assert o.pieces_per_found == 1.0
    pred[:] = False
    pred[0, 3] = True  # diagonal to A's corner, sharing no pixel: not on change
    assert ObjectCounts.from_masks(pred, truth).on_change == 0


def test_object_counts_sparse_reference_and_pooling():
    truth = np.zeros((6, 6), bool)
    truth[0:2, 0:2] = True
    where = np.zeros_like(truth)
    where[:, :3] = True  # the reference covers the left half only
    truth[4, 5] = True  # outside the reference: not an object
    pred = np.zeros_like(truth)
    pred[0, 0] = pred[4, 4:6] = True  # the second region lies wholly outside: not judged
    o = ObjectCounts.from_masks(pred, truth, where=where)
    assert o == ObjectCounts(labelled=1, found=1, regions=1, on_change=1, pieces=1)
    assert sum([o, o]) == ObjectCounts(2, 2, 2, 2, 2)
    empty = ObjectCounts.from_masks(np.zeros_like(truth), np.zeros_like(truth))
    assert empty == ObjectCounts() and empty.pieces_per_found == 0.0  # no NaN
    with pytest.raises(ValueError, match="shape"):
        ObjectCounts.from_masks(pred, truth[:3])
    with pytest.raises(ValueError, match="negative"):
        ObjectCounts(found=-1)


def test_pixel_counts_by_hand():
    pred = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], bool)
    truth = np.array([[1, 0, 1, 0], [1, 1, 0, 0]], bool)
    c = PixelCounts.from_masks(pred, truth)
    assert c == PixelCounts(tp=2, fp=1, fn=2, tn=3)
    assert c.precision == pytest.approx(2 / 3)
    assert c.recall == pytest.approx(0.5)
    assert c.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert c.iou == pytest.approx(2 / 5)
    where = np.array([[1, 1, 1, 1], [0, 0, 0, 0]], bool)
    assert PixelCounts.from_masks(pred, truth, where=where) == PixelCounts(1, 1, 1, 1)


def test_zero_division_is_zero_not_nan():
    empty = np.zeros((3, 3), bool)
    c = PixelCounts.from_masks(empty, empty)
    assert c.metrics() == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "iou": 0.0}
    m = scores_to_metrics(np.zeros((3, 3)), empty, empty)
    assert m["auc_pr"] == 0.0
    json.dumps(m, allow_nan=False)


def test_counts_pool_with_plus_and_sum():
    a, b = PixelCounts(1, 2, 3, 4), PixelCounts(10, 20, 30, 40)
    assert a + b == PixelCounts(11, 22, 33, 44) == sum([a, b])
    with pytest.raises(ValueError, match="negative"):
        PixelCounts(tp=-1)


def test_average_precision_by_hand():
    # Ranked: + - + -  -> thresholds give (R, P) = (.5, 1), (.5, .5), (1, 2/3), (1, .5)
    # AP = .5 * 1 + 0 + .5 * 2/3 = 5/6
    s = np.array([0.9, 0.8, 0.3, 0.1])
    assert average_precision(s, np.array([1, 0, 1, 0], bool)) == pytest.approx(5 / 6)
    # A perfect ranking scores 1, whatever the scale.
    assert average_precision(s * 100, np.array([1, 1, 0, 0], bool)) == pytest.approx(1.0)


def test_average_precision_groups_ties():
    # 0.5 is one threshold: (R, P) = (.5, 1) then (1, 2/3) -> 5/6 for either order
    # inside the tie (an ungrouped sort would give 1.0 for one of them).
    s = np.array([0.9, 0.5, 0.5, 0.1])
    assert average_precision(s, np.array([1, 1, 0, 0], bool)) == pytest.approx(5 / 6)
    assert average_precision(s, np.array([1, 0, 1, 0], bool)) == pytest.approx(5 / 6)
    # All scores equal: one threshold, AP = base rate.
    assert average_precision(np.ones(8), np.arange(8) < 2) == pytest.approx(0.25)


def test_average_precision_non_finite_rank_last():
    s = np.array([np.nan, 0.2, -np.inf, 0.1])
    t = np.array([0, 1, 0, 1], bool)
    assert average_precision(s, t) == pytest.approx(1.0)


def test_best_f1_is_the_best_threshold_and_groups_ties():
    from sitewatch.bench.metrics import best_f1

    rng = np.random.default_rng(3)
    s = np.round(rng.normal(size=400), 1)  # many ties
    t = rng.random(400) < 0.3 + 0.4 * (s > 0.5)
    f1, share = best_f1(s, t)
    by_hand = max(  # every distinct threshold, its tie entering whole
        (2 * np.sum((s >= v) & t) / (np.sum(s >= v) + t.sum()), np.mean(s >= v))
        for v in np.unique(s)
    )
    assert (f1, share) == pytest.approx(by_hand)
    assert best_f1(s, np.zeros(400, bool)) == (0.0, 0.0)
    # one class of scores only: the best is to flag everything
    assert best_f1(np.ones(4), np.array([1, 0, 0, 0], bool)) == pytest.approx((0.4, 1.0))


def _ap_reference(s: np.ndarray, t: np.ndarray) -> float:
    ap, prev_r = 0.0, 0.0
    for v in np.unique(s)[::-1]:
        sel = s >= v
        tp = np.sum(sel & t)
        r, p = tp / t.sum(), tp / sel.sum()
        ap += (r - prev_r) * p
        prev_r = r
    return ap


def test_average_precision_matches_reference_on_ties():
    rng = np.random.default_rng(3)
    t = rng.random(400) < 0.2
    s = np.round(rng.random(400) + 0.4 * t, 1)  # many ties
    assert average_precision(s, t) == pytest.approx(_ap_reference(s, t))
    where = rng.random(400) < 0.5
    assert average_precision(s, t, where=where) == pytest.approx(_ap_reference(s[where], t[where]))


# --------------------------------------------------------------------------- harness core


def _pair(name, valid, truth, labelled=None) -> LabelledPair:
    img = np.zeros((2, *truth.shape), np.float32)
    return LabelledPair(name, img, img, valid, truth, labelled, 1.0, ("b1", "b2"))


def test_unobserved_pixels_count_as_no_change(monkeypatch):
    fake_detector(monkeypatch)  # flags everything
    truth = np.zeros((4, 4), bool)
    truth[:2] = True
    valid = np.ones((4, 4), bool)
    valid[:, :2] = False  # half unobserved
    res = run_benchmark([_pair("p", valid, truth)], dataset="t", entry_key="pairs")
    (m,) = res.methods
    assert m.counts == PixelCounts(tp=4, fp=4, fn=4, tn=4)  # every pixel counts
    assert m.counts.total == 16


def test_pooled_counts_are_the_sum(monkeypatch):
    fake_detector(monkeypatch)
    ones = np.ones((3, 3), bool)
    t1, t2 = np.eye(3, dtype=bool), np.zeros((3, 3), bool)
    res = run_benchmark(
        [_pair("a", ones, t1), _pair("b", ones, t2)], dataset="t", entry_key="pairs"
    )
    m = res.methods[0]
    assert m.counts == m.entries[0].counts + m.entries[1].counts == PixelCounts(3, 15, 0, 0)
    assert m.auc_pr_mean == pytest.approx(m.entries[0].auc_pr)  # "b" has no change: skipped


def test_duplicate_names_rejected(monkeypatch):
    fake_detector(monkeypatch)
    ones = np.ones((3, 3), bool)
    with pytest.raises(DataError, match="named 'a'"):
        run_benchmark(
            [_pair("a", ones, ones), _pair("a", ones, ones)], dataset="t", entry_key="pairs"
        )


# --------------------------------------------------------------------------- synthetic OSCD

S2_RES = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}  # fmt: skip
SIZE = 48  # 10 m pixels per side: 24 at 20 m, 8 at 60 m
CHANGE = (slice(12, 24), slice(24, 36))  # aligned with the 60 m pixels
CITIES = {"alpha": 48 * 48, "beta": 48 * 48}


def _write_band(path: Path, field: np.ndarray, res: int, shrink: int) -> None:
    f = res // 10
    n = SIZE // f
    coarse = field.reshape(n, f, n, f).mean(axis=(1, 3))
    if shrink:  # same bounds, a pixel fewer per side (as imgs_2 of some OSCD cities)
        coarse = resize(coarse, (n - shrink, n - shrink), order=1, anti_aliasing=False)
        n -= shrink
    px = SIZE * 10 / n
    write_raster(
        path,
        coarse.astype(np.uint16)[None],
        crs=UTM,
        transform=Affine(px, 0, ORIGIN[0], 0, -px, ORIGIN[1]),
    )


def make_oscd(root: Path, *, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    images = root / IMAGES_DIR
    labels = root / LABELS_DIRS["train"]
    images.mkdir(parents=True)
    (images / "train.txt").write_text("alpha,beta\n")
    (images / "test.txt").write_text("gamma,delta")
    truth = np.zeros((SIZE, SIZE), bool)
    truth[CHANGE] = True
    for city in CITIES:
        for i, (band, res) in enumerate(S2_RES.items()):
            base = 1000 + 40 * i + rng.normal(0, 30, (SIZE, SIZE)) + np.linspace(0, 200, SIZE)
            after = base + rng.normal(0, 10, base.shape)
            after[truth] += 1500
            for date, field in ((1, base), (2, after)):
                folder = images / city / f"imgs_{date}"
                folder.mkdir(parents=True, exist_ok=True)
                shrink = 1 if (city == "beta" and date == 2) else 0
                _write_band(folder / f"S2A_TEST_T52SCK_{band}.tif", field, res, shrink)
        cm = labels / city / "cm"
        cm.mkdir(parents=True)
        if city == "alpha":
            write_raster(cm / "alpha-cm.tif", (1 + truth).astype(np.uint8)[None], crs=None)
        else:  # only the RGBA png: 255 = change
            v = np.where(truth, 255, 0).astype(np.uint8)
            rgba = np.stack([v, v, v, np.full_like(v, 255)])
            write_raster(cm / "cm.png", rgba, crs=None, driver="PNG")
    return root


@pytest.fixture(scope="module")
def oscd_root(tmp_path_factory) -> Path:
    return make_oscd(tmp_path_factory.mktemp("oscd"))


def test_oscd_json_shape_and_counts(oscd_root, tmp_path, capsys):
    out = tmp_path / "r.json"
    code, stdout, err = run_cli(
        capsys, "bench", "oscd", oscd_root, "--split", "train", "--json", out
    )
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert set(doc) == {
        "method",
        "pooled",
        "cities",
        "seconds",
        "auc_pr_mean",
        "dataset",
        "split",
        "params",
        "baseline",
        "f1_vs_baseline",
    }
    assert doc["baseline"]["pooled"]["f1"] >= 0 and "Otsu" in doc["baseline"]["name"]
    assert doc["f1_vs_baseline"] == pytest.approx(
        doc["pooled"]["f1"] / doc["baseline"]["pooled"]["f1"], rel=1e-2
    )
    assert "/ baseline" in stdout
    assert (
        doc["method"] == DetectOptions().method
        and doc["split"] == "train"
        and doc["dataset"] == "oscd"
    )
    method_shape(doc, "cities", set(CITIES))
    for name, n in CITIES.items():  # every pixel of every city counts
        c = doc["cities"][name]["counts"]
        assert sum(c.values()) == n
        assert c["tp"] + c["fn"] == 144
    assert doc["pooled"]["auc_pr"] > 0.8 and doc["pooled"]["f1"] > 0.5  # planted change found
    for word in ("alpha", "beta", "pooled", "AUC-PR"):
        assert word in stdout
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left


def test_oscd_method_all_reads_each_city_once(oscd_root, tmp_path, capsys, monkeypatch):
    reads = []
    original = oscd_mod.read_city

    def counting(city):
        reads.append(city.name)
        return original(city)

    monkeypatch.setattr(oscd_mod, "read_city", counting)
    out = tmp_path / "all.json"
    code, stdout, err = run_cli(
        capsys, "bench", "oscd", oscd_root, "--split", "train", "--method", "all", "--json", out
    )
    assert code == 0, err
    assert reads == ["alpha", "beta"]
    doc = json.loads(out.read_text())
    assert set(doc) == {"methods", "seconds", "dataset", "split", "params", "baseline"}
    assert list(doc["methods"]) == list(methods.SCORERS)
    for name, m in doc["methods"].items():
        assert set(m) == {"method", "pooled", "cities", "seconds", "auc_pr_mean", "f1_vs_baseline"}
        assert m["method"] == name
        method_shape(m, "cities", set(CITIES))
    assert "F1 per city" in stdout


def test_oscd_test_split_without_labels(oscd_root, capsys):
    code, _, err = run_cli(capsys, "bench", "oscd", oscd_root, "--split", "test")
    assert code == 2
    one_line_error(err, "Test Labels", "does not exist")


def test_oscd_missing_root(tmp_path, capsys):
    code, _, err = run_cli(capsys, "bench", "oscd", tmp_path / "nope", "--split", "train")
    assert code == 2
    one_line_error(err, "nope", "does not exist")


def test_oscd_label_shape_mismatch(tmp_path, capsys):
    root = make_oscd(tmp_path / "o")
    label = root / LABELS_DIRS["train"] / "alpha" / "cm" / "alpha-cm.tif"
    write_raster(label, np.ones((1, SIZE - 2, SIZE), np.uint8), crs=None)
    code, _, err = run_cli(capsys, "bench", "oscd", root, "--split", "train")
    assert code == 2
    one_line_error(err, "alpha-cm.tif", "48x46", "48x48")


def test_oscd_missing_city_label(tmp_path):
    root = make_oscd(tmp_path / "o")
    (root / LABELS_DIRS["train"] / "beta" / "cm" / "cm.png").unlink()
    with pytest.raises(DataError, match=r"beta-cm\.tif \(or cm\.png\)"):
        oscd_mod.oscd_cities(root, split="train")


# --------------------------------------------------------------------------- synthetic pairs


def _rgb_pair(rng, size=32):
    before = rng.integers(40, 120, (3, size, size)).astype(np.uint8)
    after = np.clip(before.astype(int) + rng.integers(-3, 4, before.shape), 0, 255)
    truth = np.zeros((size, size), bool)
    truth[8:20, 10:22] = True
    after[:, truth] = 250
    return before, after.astype(np.uint8), np.where(truth, 255, 0).astype(np.uint8)[None]


def make_pairs(root: Path, *, seed: int = 2) -> Path:
    rng = np.random.default_rng(seed)
    site1 = root / "site" / "1"
    site1.mkdir(parents=True)
    b, a, gt = _rgb_pair(rng)
    for name, arr in (("im1", b), ("im2", a), ("gt", gt)):
        write_raster(site1 / f"{name}.png", arr, crs=None, driver="PNG")
    site2 = root / "site" / "2"  # upper-case BMP names
    site2.mkdir()
    b, a, gt = _rgb_pair(rng)
    for name, arr in (("IM1.BMP", b), ("Im2.bmp", a), ("GT.BMP", gt)):
        write_raster(site2 / name, arr, crs=None, driver="BMP")
    for sub in ("A", "B", "label"):
        (root / "levir" / sub).mkdir(parents=True)
    for stem in ("x", "y"):
        b, a, gt = _rgb_pair(rng)
        for sub, arr in (("A", b), ("B", a), ("label", gt)):
            write_raster(root / "levir" / sub / f"{stem}.png", arr, crs=None, driver="PNG")
    make_sparse(root / "landsat" / "T", rng)
    return root


def make_sparse(folder: Path, rng) -> tuple[np.ndarray, np.ndarray]:
    """Two ENVI rasters (later one first by name) + sparse change/unchanged masks."""
    folder.mkdir(parents=True)
    size = 40
    before = rng.integers(20, 90, (6, size, size)).astype(np.uint8)
    after = before.copy()
    after[:, 5:15, 5:15] = 200
    t = Affine(30, 0, 203325, 0, -30, 3604935)
    write_raster(folder / "2000TM", before, crs="EPSG:32651", transform=t, driver="ENVI")
    write_raster(folder / "2003TM", after, crs="EPSG:32651", transform=t, driver="ENVI")
    change = np.zeros((size, size), bool)
    change[7:12, 7:12] = True  # 25 px
    unchanged = np.zeros((size, size), bool)
    unchanged[25:35, 25:30] = True  # 50 px
    for name, m in (("change.bmp", change), ("unchanged.bmp", unchanged)):
        mask = np.where(m, 255, 0).astype(np.uint8)[None]
        write_raster(folder / name, mask, crs=None, driver="BMP")
    (folder / "preview2000.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "README.md").write_text("sparse labels\n")
    return change, unchanged


PAIR_NAMES = {"site/1", "site/2", "levir/x", "levir/y", "landsat/T"}


@pytest.fixture(scope="module")
def pairs_root(tmp_path_factory) -> Path:
    return make_pairs(tmp_path_factory.mktemp("pairs"))


def test_find_pairs_all_layouts(pairs_root):
    found = {p.name: p for p in find_pairs(pairs_root)}
    assert set(found) == PAIR_NAMES
    assert found["site/2"].before.name == "IM1.BMP"
    sparse = found["landsat/T"]
    assert sparse.sparse and sparse.before.name == "2000TM" and sparse.after.name == "2003TM"
    assert not found["levir/x"].sparse


def test_sparse_pair_is_georeferenced(pairs_root):
    (src,) = [p for p in find_pairs(pairs_root) if p.sparse]
    pair = read_pair(src, pixel_size=1.0)
    assert pair.pixel_area_m2 == pytest.approx(900.0)  # real 30 m pixels, not --pixel-size
    assert pair.before.shape == (6, 40, 40) and pair.labelled.sum() == 75


def test_pairs_json_shape(pairs_root, tmp_path, capsys):
    out = tmp_path / "p.json"
    code, stdout, err = run_cli(
        capsys, "bench", "pairs", pairs_root, "--pixel-size", "0.5", "--json", out
    )
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert set(doc) == {
        "method",
        "pooled",
        "pairs",
        "seconds",
        "auc_pr_mean",
        "dataset",
        "params",
        "baseline",
        "f1_vs_baseline",
    }
    method_shape(doc, "pairs", PAIR_NAMES)
    assert doc["params"]["pixel_size_m"] == 0.5
    assert sum(doc["pairs"]["site/1"]["counts"].values()) == 32 * 32
    assert sum(doc["pairs"]["landsat/T"]["counts"].values()) == 75  # labelled pixels only
    assert doc["pairs"]["site/1"]["auc_pr"] > 0.9
    for name in PAIR_NAMES:
        assert name in stdout


def test_sparse_evaluation_counts_only_labelled(pairs_root, monkeypatch):
    fake_detector(monkeypatch)  # flags every pixel
    (src,) = [p for p in find_pairs(pairs_root) if p.sparse]
    res = run_benchmark([read_pair(src)], dataset="t", entry_key="pairs")
    assert res.methods[0].counts == PixelCounts(tp=25, fp=50, fn=0, tn=0)


def test_sparse_without_dates_is_an_error(tmp_path):
    folder = tmp_path / "d" / "p"
    make_sparse(folder, np.random.default_rng(0))
    (folder / "2000TM").rename(folder / "first")
    (folder / "2000TM.hdr").rename(folder / "first.hdr")
    with pytest.raises(DataError, match="cannot tell which"):
        find_pairs(tmp_path / "d")


def test_pairs_method_all_and_new_methods(pairs_root, tmp_path, capsys, monkeypatch):
    def score_zero(before, after, valid, *, band_names=None):
        return np.zeros(valid.shape, np.float32)

    monkeypatch.setitem(methods.SCORERS, "zero", score_zero)  # choices follow SCORERS
    code, _, err = run_cli(capsys, "bench", "pairs", pairs_root, "--method", "zero")
    assert code == 0, err
    out = tmp_path / "all.json"
    code, _, err = run_cli(capsys, "bench", "pairs", pairs_root, "--method", "all", "--json", out)
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert set(doc["methods"]) == set(methods.SCORERS) >= {"zero", "cva"}
    for m in doc["methods"].values():
        method_shape(m, "pairs", PAIR_NAMES)


def test_unknown_method_is_a_usage_error(pairs_root, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(capsys, "bench", "pairs", pairs_root, "--method", "nope")
    assert exc.value.code == 2
    assert "unknown method 'nope'" in capsys.readouterr().err


def test_pairs_empty_and_missing_dir(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "bench", "pairs", tmp_path / "empty")
    assert code == 2
    one_line_error(err, "no labelled pairs", "im1/im2/gt")
    code, _, err = run_cli(capsys, "bench", "pairs", tmp_path / "nope")
    assert code == 2
    one_line_error(err, "nope", "does not exist")


def test_incomplete_pair_folder(tmp_path):
    (tmp_path / "p").mkdir()
    write_raster(tmp_path / "p" / "im1.png", np.ones((1, 8, 8), np.uint8), crs=None, driver="PNG")
    with pytest.raises(DataError, match="not all of im1, im2 and gt"):
        find_pairs(tmp_path)


def test_json_not_overwritten_without_flag(pairs_root, tmp_path, capsys):
    out = tmp_path / "r.json"
    out.write_text("{}")
    code, _, err = run_cli(capsys, "bench", "pairs", pairs_root, "--json", out)
    assert code == 2
    one_line_error(err, "exists", "--overwrite")
    assert out.read_text() == "{}"
    code, _, err = run_cli(capsys, "bench", "pairs", pairs_root, "--json", out, "--overwrite")
    assert code == 0, err
    assert "pooled" in json.loads(out.read_text())


# --------------------------------------------------------------------------- real data

DSIFN = SHARED / "data" / "dsifn_cd_samples" / "samples_DSIFN"


@needs_shared("data", "dsifn_cd_samples", "samples_DSIFN")
@pytest.mark.shared
def test_bench_pairs_on_dsifn_samples(tmp_path, capsys):
    out = tmp_path / "dsifn.json"
    code, stdout, err = run_cli(capsys, "bench", "pairs", DSIFN, "--json", out)
    assert code == 0, err
    doc = json.loads(out.read_text())
    names = {p.stem for p in (DSIFN / "label").glob("*.png")}
    assert len(names) == 10
    method_shape(doc, "pairs", names)
    for e in doc["pairs"].values():
        assert sum(e["counts"].values()) == 256 * 256
    c = doc["pooled"]["counts"]
    assert c["tp"] + c["fn"] == 177_684  # change pixels per SOURCE.md
    assert "pooled" in stdout
