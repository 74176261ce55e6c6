"""Scorers, thresholds and the numeric chain on synthetic arrays with known answers."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from sitewatch.detect.methods import (
    SCORERS,
    band_roles,
    normalised_gaussian,
    score_construction,
    score_index,
    score_ratio,
)
from sitewatch.detect.run import DetectOptions, detect_arrays, smooth_masked
from sitewatch.detect.threshold import (
    QUIET_HALO,
    quiet_pixels,
    threshold_chi2,
    threshold_kittler,
    threshold_otsu,
    threshold_precision_first,
    threshold_scores,
)
from sitewatch.prepare.coregister import apply_shift

S2 = ["B02", "B03", "B04", "B08", "B11", "B12"]


def landscape(bands: int = 6, size: int = 160, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=(bands, size, size)), (0, 2, 2))
    return np.clip(0.15 + 0.05 * field / field.std(), 0.02, None).astype(np.float32)


def roof(size: int = 160) -> np.ndarray:
    m = np.zeros((size, size), bool)
    m[60:90, 50:90] = True
    return m


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# ----------------------------------------------------------------- thresholds


def test_kittler_separates_unequal_classes():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, 95_000), rng.normal(10, 3, 5_000)]
    t = threshold_kittler(x)
    assert 2.5 < t.value < 6.5
    assert t.rule == "kittler" and "Kittler" in t.why


def test_chi2_threshold_has_stated_false_alarm_rate():
    rng = np.random.default_rng(1)
    x = rng.chisquare(6, 200_000)
    t = threshold_chi2(x, dof=6, p=0.99)
    assert (x > t.value).mean() == pytest.approx(0.01, abs=0.002)


def test_precision_first_is_stricter_than_otsu_on_a_long_tail():
    rng = np.random.default_rng(2)
    x = np.abs(rng.standard_t(3, 100_000))
    assert threshold_precision_first(x, k=6).value > threshold_otsu(x).value


def _gated_scene(share: float, *, seed: int = 0, n: int = 400):
    """A construction-like score: 60 % of pixels tied at 0, a heavy |t| tail, and
    ``share`` of the scene in 8 x 8 px changes scoring 8-16 (clear of the noise's tail)."""
    rng = np.random.default_rng(seed)
    noise = np.abs(rng.standard_t(4, (n, n))) * 0.8
    score = np.where(rng.random((n, n)) < 0.6, 0.0, noise)
    truth = np.zeros((n, n), bool)
    cells = [(r, c) for r in range(0, n - 8, 10) for c in range(0, n - 8, 10)]
    order = iter(rng.permutation(len(cells)))
    while truth.mean() < share:
        r, c = cells[next(order)]
        truth[r : r + 8, c : c + 8] = True
    score[truth] = rng.uniform(8, 16, int(truth.sum()))
    return score, truth


@pytest.mark.parametrize("share", [0.0, 0.02, 0.08, 0.12, 0.15])
def test_precision_rule_follows_the_changed_share_with_its_cap(share):
    # The whole scene's spread grows with its changed share; the spread of the pixels
    # outside dense clusters above the floor does not, and caps the threshold.
    score, truth = _gated_scene(share)
    quiet = quiet_pixels(score, np.ones(score.shape, bool), 3.0)
    assert not quiet[truth].any()  # every change is in a dense cluster
    t = threshold_precision_first(score.ravel(), k=6.5, floor=3.0, quiet=quiet.ravel())
    flagged = score > t.value
    # the flagged share follows the true one within a point (the noise above the floor)
    assert abs(flagged.mean() - truth.mean()) < 0.01
    if share:
        assert (flagged & truth).sum() / flagged.sum() > (0.85 if share >= 0.08 else 0.7)
        assert (flagged & truth).sum() / truth.sum() > 0.99
    uncapped = threshold_precision_first(score.ravel(), k=6.5, floor=3.0)
    if share >= 0.08:  # without the cap most of the change is missed
        assert (score > uncapped.value).mean() < truth.mean() / 1.5
        assert "capped" in t.why and "capped" not in uncapped.why
    elif share <= 0.02:
        assert t.value == uncapped.value


def test_quiet_pixels_of_row_blocks_with_their_halo_are_the_whole_image_s():
    score, _ = _gated_scene(0.1, seed=3, n=97)
    valid = np.random.default_rng(4).random(score.shape) > 0.05
    whole = quiet_pixels(score, valid, 3.0)
    for rows in (1, 7, 32):
        parts = []
        for r0 in range(0, 97, rows):
            r1 = min(97, r0 + rows)
            a0, a1 = max(0, r0 - QUIET_HALO), min(97, r1 + QUIET_HALO)
            q = quiet_pixels(score[a0:a1], valid[a0:a1], 3.0)
            parts.append(q[r0 - a0 : r0 - a0 + r1 - r0])
        np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_the_precision_cap_needs_enough_quiet_pixels_of_the_right_shape():
    score, _ = _gated_scene(0.12)
    s = score.ravel()
    few = np.zeros(s.size, bool)
    few[:500] = True  # under CAP_MIN_PIXELS: no cap
    assert "capped" not in threshold_precision_first(s, k=6.5, floor=3.0, quiet=few).why
    with pytest.raises(ValueError, match="quiet"):
        threshold_precision_first(s, k=6.5, floor=3.0, quiet=few[:-1])


def test_threshold_scores_rules_and_errors():
    x = np.linspace(0, 1, 100)
    assert threshold_scores(x, value=0.5).rule == "fixed"
    with pytest.raises(ValueError, match="dof"):
        threshold_scores(x, rule="chi2")
    with pytest.raises(ValueError, match="unknown"):
        threshold_scores(x, rule="magic")
    assert json.dumps(threshold_scores(x, rule="kittler").as_dict())


# ----------------------------------------------------------------- scorers


def test_band_roles_for_landsat_and_rgb():
    assert band_roles(["SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"], 6)["nir"] == 3
    assert band_roles(["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"], 6)["nir"] == 3
    assert band_roles(["b1", "b2", "b3", "b4"], 4) == {}


@pytest.mark.parametrize("method", sorted(SCORERS))
def test_every_method_finds_the_planted_roof(method):
    before = landscape()
    after = before + np.random.default_rng(4).normal(0, 0.003, before.shape).astype(np.float32)
    truth = roof()
    after[:, truth] = np.array([0.35, 0.33, 0.30, 0.28, 0.30, 0.27])[:, None]  # bright roof
    valid = np.ones(truth.shape, bool)
    s = SCORERS[method](before, after, valid, band_names=S2)
    assert s.shape == truth.shape and s.dtype == np.float32
    elsewhere = ~truth
    if method == "edges":  # new edges spread up to 7 px out of the outline
        elsewhere = ~ndimage.binary_dilation(truth, np.ones((3, 3), bool), iterations=7)
    assert np.median(s[truth]) > np.percentile(s[elsewhere], 99)


def test_ratio_ignores_a_multiplicative_illumination_change():
    before = landscape()
    s = score_ratio(before, before * 1.4, np.ones(before.shape[1:], bool))
    assert float(s.max()) < 0.25  # a quarter of one robust sigma, anywhere


def test_index_uses_named_bands():
    before = landscape()
    after = before.copy()
    after[3, roof()] *= 0.3  # NIR drops: vegetation cleared
    s = score_index(before, after, np.ones(before.shape[1:], bool), band_names=S2)
    assert s[roof()].mean() > 5 * s[~roof()].mean()


def test_construction_suppresses_water_on_both_dates():
    before = landscape()
    water = np.zeros(before.shape[1:], bool)
    water[10:40, 10:40] = True
    before[:, water] = np.array([0.05, 0.08, 0.05, 0.01, 0.01, 0.01])[:, None]  # NDWI ~ 0.8
    after = before.copy()
    after[:, water] *= 1.8  # waves and glint: brighter water, still water
    truth = roof()
    after[:, truth] = 0.3
    s = score_construction(before, after, np.ones(truth.shape, bool), band_names=S2)
    assert s[water].mean() < 0.2 * s[truth].mean()


# ----------------------------------------------------------------- the chain


def test_smooth_masked_ignores_invalid_pixels():
    s = np.ones((20, 20), np.float32)
    valid = np.ones((20, 20), bool)
    valid[:, :10] = False
    s[~valid] = 1000.0
    out = smooth_masked(s, valid, 2.0)
    assert np.allclose(out[valid], 1.0) and (out[~valid] == 0).all()


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.0, 6.0])
@pytest.mark.parametrize("shape", [(7, 5), (130, 97)])
def test_normalised_gaussian_of_all_valid_pixels_is_the_general_formula(sigma, shape):
    """Its shortcut (one filter when every pixel weighs) is bit-identical."""
    rng = np.random.default_rng(3)
    x = rng.gamma(1.5, size=shape).astype(np.float32)
    w = np.ones(shape, bool)
    num = ndimage.gaussian_filter(np.where(w, x, 0.0).astype(np.float64), sigma, mode="nearest")
    den = ndimage.gaussian_filter(w.astype(np.float64), sigma, mode="nearest")
    want = np.divide(num, den, out=np.zeros_like(num), where=den > 1e-6)
    assert np.array_equal(normalised_gaussian(x, w, sigma), want)
    w[0, 0] = False  # the general path still fills a pixel without weight
    assert normalised_gaussian(x, w, sigma)[0, 0] > 0


@pytest.mark.parametrize("shift", [(0.3, 0.0), (0.0, -1.7), (1.7, 4.2)])
def test_chain_coregisters_a_shifted_pair(shift):
    rng = np.random.default_rng(5)
    before = landscape(size=200)
    truth = np.zeros((200, 200), bool)
    truth[80:110, 60:100] = True
    after = before + rng.normal(0, 0.002, before.shape).astype(np.float32)
    after[:, truth] += 0.15
    moved, ok = apply_shift(after, np.ones((200, 200), bool), shift)
    moved = np.nan_to_num(moved)
    det = detect_arrays(before, moved, ok, band_names=S2)
    co = det.diagnostics["coregistration"]
    assert co["applied"] and not co["flagged"]
    assert co["shift"][0] == pytest.approx(-shift[0], abs=0.1)
    assert co["shift"][1] == pytest.approx(-shift[1], abs=0.1)
    _, n = ndimage.label(det.mask)
    assert n == 1 and iou(det.mask, truth) >= 0.8


@pytest.mark.parametrize("method", ["construction", "cva"])
def test_chain_without_coregistration_is_worse_on_a_shifted_pair(method):
    before = landscape(size=200)
    truth = np.zeros((200, 200), bool)
    truth[80:110, 60:100] = True
    after = before.copy()
    after[:, truth] += 0.15
    moved, ok = apply_shift(after, np.ones((200, 200), bool), (1.7, 4.2))
    moved = np.nan_to_num(moved)
    opts = DetectOptions(method=method, threshold_rule="precision")
    on = detect_arrays(before, moved, ok, band_names=S2, options=opts)
    off = detect_arrays(before, moved, ok, band_names=S2, options=replace(opts, coregister=False))
    # Misregistration turns the roof's edges into a displaced, distorted outline.
    assert iou(on.mask, truth) >= 0.8
    assert iou(on.mask, truth) > iou(off.mask, truth) + 0.05


def test_options_are_validated():
    with pytest.raises(ValueError, match="unknown method"):
        DetectOptions(method="magic")
    with pytest.raises(ValueError, match="threshold rule"):
        DetectOptions(threshold_rule="magic")
    with pytest.raises(ValueError):
        DetectOptions(k=0)


@pytest.mark.parametrize("method", ["construction", "mad", "irmad"])
def test_constant_band_is_skipped_by_mad_methods(method):
    before = landscape()
    after = before.copy()
    after[:, roof()] = 0.3
    before[1] = 0.1  # a band with no variation (e.g. a fill value in a small AOI)
    after[1] = 0.1
    s = SCORERS[method](before, after, np.ones(before.shape[1:], bool), band_names=S2)
    assert np.median(s[roof()]) > np.percentile(s[~roof()], 99)


# --- the "share" rule: IR-MAD's estimate of the changed share -------------------------


def _mixture(share: float, *, seed: int = 0, size: int = 200, bands: int = 4):
    """A noise pair where ``share`` of the area (in 10 x 10 px blocks) changed spectrally."""
    rng = np.random.default_rng(seed)
    before = rng.normal(0.2, 0.03, (bands, size, size)).astype(np.float32)
    after = 1.1 * before + 0.02 + rng.normal(0, 0.01, before.shape).astype(np.float32)
    truth = np.zeros((size, size), bool)
    blocks = [(r, c) for r in range(0, size, 10) for c in range(0, size, 10)]
    pick = rng.choice(len(blocks), round(share * len(blocks)), replace=False)
    for i in pick:  # each block a different new material
        r, c = blocks[i]
        truth[r : r + 10, c : c + 10] = True
        after[:, r : r + 10, c : c + 10] += rng.normal(0, 0.15, (bands, 1, 1)).astype(np.float32)
    return before, after, truth


@pytest.mark.parametrize("share", [0.05, 0.15, 0.3])
def test_share_rule_recovers_the_changed_share_of_a_mixture(share):
    from sitewatch.detect.irmad import irmad
    from sitewatch.detect.threshold import change_share

    before, after, truth = _mixture(share, seed=int(share * 100))
    valid = np.ones(truth.shape, bool)
    est = change_share(irmad(before, after, valid).p_nochange[valid])
    assert abs(est - share) <= 0.03, (est, share)  # stated tolerance: 3 points of area
    det = detect_arrays(
        before,
        after,
        valid,
        pixel_area_m2=100.0,
        options=DetectOptions(method="cva", threshold_rule="share", coregister=False),
    )
    assert det.threshold.rule == "share" and "IR-MAD estimates" in det.threshold.why
    flagged = det.diagnostics["changed_pixels_raw"] / valid.sum()
    assert abs(flagged - share) <= 0.05, (flagged, share)
    iou = (det.mask & truth).sum() / (det.mask | truth).sum()
    assert iou >= 0.7


def test_share_rule_flags_almost_nothing_without_change():
    rng = np.random.default_rng(5)
    before = rng.normal(0.2, 0.03, (4, 200, 200)).astype(np.float32)
    after = 0.8 * before + 0.05 + rng.normal(0, 0.01, before.shape).astype(np.float32)
    valid = np.ones((200, 200), bool)
    det = detect_arrays(
        before,
        after,
        valid,
        pixel_area_m2=100.0,
        options=DetectOptions(threshold_rule="share", coregister=False),
    )
    assert det.diagnostics["changed_pixels"] <= 0.001 * valid.sum()


def test_share_rule_falls_back_to_precision_when_the_law_does_not_fit():
    from sitewatch.detect.threshold import threshold_share

    rng = np.random.default_rng(1)
    scores = rng.gamma(2.0, 1.0, 10_000)
    p = np.r_[np.zeros(6_000), rng.uniform(0, 1, 4_000)]  # "60 % changed": implausible
    t = threshold_share(scores, p, k=6.5)
    assert t.rule == "share" and "precision rule applies" in t.why
    with pytest.raises(ValueError, match="needs IR-MAD"):
        threshold_scores(scores, rule="share")


@pytest.mark.parametrize("image_dtype", [np.float32, np.uint16])
@pytest.mark.parametrize("stats_dtype", [np.float32, np.float64])
def test_standardise_and_cva_band_by_band_equal_the_stacked_formulas(image_dtype, stats_dtype):
    """Band-by-band standardisation and CVA give the stacked expressions' exact values."""
    from sitewatch.detect.engine import _cva
    from sitewatch.detect.methods import standardise_with

    rng = np.random.default_rng(11)
    b = (rng.random((4, 60, 50)) * 255).astype(image_dtype)
    a = (b * 1.1 + rng.normal(0, 3, b.shape)).clip(0, None).astype(image_dtype)
    flat = np.concatenate([b, a]).reshape(8, -1)
    mean, std = flat.mean(axis=1).astype(stats_dtype), flat.std(axis=1).astype(stats_dtype)
    std[1] = 0  # a constant band: divided by 1
    stats = type("Stats", (), {"mean": mean, "std": std})()

    def stacked(x, m, s, v):
        s = np.where(s == 0, 1.0, s)
        out = (x - m[:, None, None]) / s[:, None, None]
        out[:, ~v] = 0.0
        return out.astype(np.float32)

    for valid in (np.ones((60, 50), bool), rng.random((60, 50)) > 0.1):
        assert np.array_equal(
            standardise_with(b, mean[:4], std[:4], valid), stacked(b, mean[:4], std[:4], valid)
        )
        idx = [0, 1, 3]
        d = stacked(a[idx], mean[[4, 5, 7]], std[[4, 5, 7]], valid).astype(np.float64)
        d -= stacked(b[idx], mean[idx], std[idx], valid)
        want = np.sqrt((d**2).sum(axis=0) / 3).astype(np.float32)
        want[~valid] = 0.0
        assert np.array_equal(_cva(b, a, valid, stats, idx), want)
