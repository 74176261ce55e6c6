"""--method learned: the logistic fit, training, the model file, the method end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sitewatch.detect import learned
from sitewatch.detect.learned import CUTOFFS, FEATURES, LearnedModel, load_model, squash, train
from sitewatch.detect.options import DetectOptions
from sitewatch.detect.run import detect_arrays
from sitewatch.errors import InputError

RGB = ["red", "green", "blue"]


def test_fit_logistic_recovers_known_weights():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60_000, 2))
    p = 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.0 * x[:, 1] - 0.5)))
    y = rng.random(60_000) < p
    coef, b = learned.fit_logistic(x, y, np.ones(60_000), l2=0.0)
    np.testing.assert_allclose(coef, [2.0, -1.0], atol=0.06)
    assert b == pytest.approx(-0.5, abs=0.05)


def _dataset(rng: np.random.Generator, n: int, boundary: float) -> tuple[np.ndarray, np.ndarray]:
    """Class-stratified samples whose feature 0 separates the classes at ``boundary``."""
    z = rng.normal(0, 0.3, (n, len(FEATURES)))
    t = np.arange(n) < n // 2
    z[:, 0] = np.sinh(np.where(t, boundary + 1, boundary - 1) + rng.normal(0, 0.5, n))
    return z, t


def test_every_dataset_weighs_the_same_whatever_its_size():
    rng = np.random.default_rng(1)
    big, small = _dataset(rng, 20_000, 1.0), _dataset(rng, 1_000, 3.0)
    m = train({"big": big, "small": small})
    # The boundary on squash(z0) lies halfway between the two datasets' own (2.0), not
    # at the big dataset's (1.0) as pooling the pixels would put it.
    boundary = -m.intercept / m.coef[0]
    assert 1.7 < boundary < 2.3
    assert m.trained_on == ("big", "small") and m.pixels == 21_000
    assert m.cutoff in CUTOFFS


def test_cutoff_is_chosen_at_the_true_share_of_change():
    rng = np.random.default_rng(2)
    z, t = _dataset(rng, 10_000, 1.0)
    # The same sample counted as 1 % change wants a stricter cutoff than as 50 %.
    rare = train({"a": (z, t)}, shares={"a": 0.01})
    common = train({"a": (z, t)}, shares={"a": 0.5})
    assert rare.cutoff > common.cutoff


def test_train_refuses_a_dataset_without_both_classes():
    z = np.zeros((10, len(FEATURES)))
    with pytest.raises(ValueError, match="both changed and unchanged"):
        train({"a": (z, np.zeros(10, bool))})


def test_model_file_round_trip_and_clear_errors(tmp_path):
    m = LearnedModel(coef=tuple(np.linspace(-1, 1, len(FEATURES))), intercept=-0.5, cutoff=0.8)
    path = tmp_path / "m.json"
    m.save(path)
    back = load_model(path)
    assert back == m and back.source == str(path)
    z = [np.full(3, float(i)) for i in range(len(FEATURES))]
    np.testing.assert_allclose(back.probability(z), m.probability(z))

    with pytest.raises(InputError, match=r"cannot read the model .*nope\.json"):
        load_model(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=r"bad\.json is not a sitewatch learned model"):
        load_model(bad)
    doc = m.as_dict()
    doc["features"] = doc["features"][:-1]
    bad.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"retrain it with scripts/train_learned\.py"):
        load_model(bad)
    doc = m.as_dict()
    doc["cutoff"] = 1.5
    bad.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="cutoff must lie in"):
        load_model(bad)


def test_the_shipped_model_is_small_and_trained_on_the_shared_datasets():
    from importlib import resources

    ref = resources.files("sitewatch.data").joinpath("learned.json")
    assert len(ref.read_bytes()) < 5 * 1024 * 1024
    m = load_model()
    assert m.features == FEATURES and m.cutoff in CUTOFFS
    assert set(m.trained_on) == {
        "oscd",
        "sztaki_airchange",
        "levir_cd_samples",
        "dsifn_cd_samples",
        "landsat_taizhou_nanjing",
        "spacenet7",
    }


def test_squash_keeps_order_and_bounds_the_tails():
    z = np.array([-1e9, -3.0, 0.0, 0.5, 3.0, 1e9])
    s = squash(z)
    assert np.all(np.diff(s) > 0) and abs(s[0]) < 25 and s[3] == pytest.approx(0.4812, abs=1e-4)


def test_options_keep_the_model_and_its_rule_with_the_learned_method():
    with pytest.raises(ValueError, match="use it with --method learned"):
        DetectOptions(method="irmad", threshold_rule="model")
    with pytest.raises(ValueError, match="add --method learned"):
        DetectOptions(method="irmad", weights="m.json")
    DetectOptions(method="learned", threshold_rule="model", weights="m.json")


def _pair(seed: int = 0, size: int = 192) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured RGB pair with a gain, an offset and noise, and three bright new roofs."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(40, 200, (3, size // 8, size // 8)).repeat(8, 1).repeat(8, 2)
    before = base + rng.normal(0, 4, base.shape)
    after = 1.1 * base + 7 + rng.normal(0, 4, base.shape)
    truth = np.zeros((size, size), bool)
    for r, c in ((30, 30), (100, 60), (140, 150)):
        truth[r : r + 14, c : c + 14] = True
    after[:, truth] = np.array([235.0, 230.0, 225.0])[:, None] + rng.normal(0, 4, (3, 588))
    return before.astype(np.float32), after.astype(np.float32), truth


def test_learned_method_end_to_end_states_its_rule_and_model(tmp_path):
    b, a, truth = _pair()
    v = np.ones(truth.shape, bool)
    det = detect_arrays(
        b, a, v, band_names=RGB, pixel_area_m2=1.0, options=DetectOptions(method="learned")
    )
    assert det.diagnostics["chain"]["threshold_rule"] == "model"
    assert det.threshold.rule == "model" and det.threshold.value == load_model().cutoff
    assert "learned model's cutoff" in det.threshold.why
    assert det.diagnostics["learned"]["model"] == "the shipped model"
    assert det.score.min() >= 0.0 and det.score.max() <= 1.0  # a probability
    assert (det.mask & truth).sum() / truth.sum() > 0.95  # every roof is found
    # A model given by file is the one used (here: one that flags nothing).
    path = tmp_path / "never.json"
    LearnedModel(coef=(0.0,) * len(FEATURES), intercept=-20.0).save(path)
    opts = DetectOptions(method="learned", weights=str(path))
    none = detect_arrays(b, a, v, band_names=RGB, pixel_area_m2=1.0, options=opts)
    assert not none.mask.any() and none.diagnostics["learned"]["model"] == str(path)


def test_learned_method_without_change_flags_little():
    """Gain, offset and noise only. The model's fixed cutoff is no per-image rule: it
    flags about 1 % here, where IR-MAD with Kittler's rule flags < 0.1 % (test_chain)."""
    b, _, truth = _pair()
    rng = np.random.default_rng(1)
    a = (1.2 * b - 15 + rng.normal(0, 4, b.shape)).astype(np.float32)
    opts = DetectOptions(method="learned")
    det = detect_arrays(b, a, np.ones(truth.shape, bool), band_names=RGB, pixel_area_m2=1.0,
                        options=opts)  # fmt: skip
    assert det.mask.mean() < 0.02


def test_a_bad_model_file_is_one_line_and_exit_2(tmp_path, capsys):
    from sitewatch.cli.main import main

    out = tmp_path / "run"
    code = main(["detect", "--before", str(tmp_path / "b.tif"), "--after",
                 str(tmp_path / "a.tif"), "--method", "learned", "--weights",
                 str(tmp_path / "missing.json"), "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "missing.json" in err and "scripts/train_learned.py" in err
    assert not out.exists()
    code = main(["detect", "--before", str(tmp_path / "b.tif"), "--after",
                 str(tmp_path / "a.tif"), "--method", "irmad", "--threshold-rule", "model",
                 "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "use it with --method learned" in err and not out.exists()
