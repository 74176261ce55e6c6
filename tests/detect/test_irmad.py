"""IR-MAD on synthetic pairs with a planted change, and on one OSCD city when present."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from scipy import ndimage, special, stats

from conftest import SHARED, needs_shared
from sitewatch.detect.irmad import (
    chi2_quantile,
    chi2_sf,
    consistency_factor,
    irmad,
    score_irmad,
)

BLOCK = (slice(60, 110), slice(80, 140))


def landscape(bands: int, size: int = 200, *, seed: int = 0) -> np.ndarray:
    """Smooth random fields mixed into correlated, reflectance-like bands."""
    rng = np.random.default_rng(seed)
    fields = np.stack(
        [ndimage.gaussian_filter(rng.normal(size=(size, size)), 3) for _ in range(bands)]
    )
    fields /= fields.std(axis=(1, 2), keepdims=True)
    mix = 0.6 * np.eye(bands) + 0.4 / bands + 0.1 * rng.random((bands, bands))
    return 0.15 + 0.03 * np.einsum("bk,khw->bhw", mix, fields)


def planted_pair(
    bands: int = 5, size: int = 200, *, seed: int = 0, noise: float = 0.002
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """after = gain * before + offset + noise, with a block of a new material."""
    rng = np.random.default_rng(seed + 1)
    before = landscape(bands, size, seed=seed)
    gain = np.linspace(0.9, 1.2, bands)[:, None, None]
    offset = np.linspace(-0.01, 0.02, bands)[:, None, None]
    after = gain * before + offset + rng.normal(scale=noise, size=before.shape)
    truth = np.zeros((size, size), dtype=bool)
    truth[BLOCK] = True
    roof = np.linspace(0.35, 0.2, bands)[:, None]  # flat spectrum unlike the landscape
    after[:, truth] = roof + rng.normal(scale=0.01, size=(bands, int(truth.sum())))
    return before, after, truth


@pytest.fixture(scope="module")
def pair5() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return planted_pair(5)


def test_planted_block_has_high_chi2_and_no_nochange_probability(pair5):
    before, after, truth = pair5
    res = irmad(before, after, np.ones(truth.shape, bool))
    outside = ~truth
    assert np.median(res.chi2[truth]) > 100 * np.median(res.chi2[outside])
    assert (res.chi2[truth] > chi2_quantile(5, 0.9999)).mean() > 0.99
    assert (res.p_nochange[truth] < 1e-3).mean() > 0.99
    # Unchanged pixels: chi2 ~ chi-square(5), so ~95% have P(no change) > 0.05.
    assert 0.9 < (res.p_nochange[outside] > 0.05).mean() < 0.99
    assert res.converged and res.iterations < 50 and res.delta < 1e-4
    assert res.dof == 5 and res.n_valid == truth.size


def test_rho_ascending_and_mad_variances_match_sigma(pair5):
    before, after, truth = pair5
    res = irmad(before, after, np.ones(truth.shape, bool))
    assert res.rho.shape == res.sigma.shape == (5,)
    assert np.all((res.rho >= 0) & (res.rho <= 1))
    assert np.all(np.diff(res.rho) >= 0)  # MAD_1 from the least correlated pair
    assert np.all(np.diff(res.sigma) <= 0)
    mad_std = res.mad[:, ~truth].std(axis=1)
    np.testing.assert_allclose(mad_std, res.sigma, rtol=0.05)
    # MAD variates of unchanged pixels are uncorrelated.
    corr = np.corrcoef(res.mad[:, ~truth])
    assert np.abs(corr - np.eye(5)).max() < 0.05


def test_chi2_invariant_to_linear_transforms_of_either_image(pair5):
    before, after, truth = pair5
    valid = np.ones(truth.shape, bool)
    a = np.array([2.0, 0.5, 10.0, 1.0, -3.0])[:, None, None]
    c = np.array([1000.0, 3.0, 0.2, -1.0, 7.0])[:, None, None]
    base = irmad(before, after, valid).chi2
    moved = irmad(a * before + 5.0, c * after - 2.0, valid).chi2
    assert np.corrcoef(base.ravel(), moved.ravel())[0, 1] > 0.99
    np.testing.assert_allclose(moved, base, rtol=1e-3, atol=1e-3)


def test_invalid_pixels_are_zero_and_ignored(pair5):
    before, after, truth = pair5
    valid = np.ones(truth.shape, bool)
    valid[:, :20] = False
    b, a = before.copy(), after.copy()
    b[:, ~valid] = np.nan
    a[:, ~valid] = 1e6
    res = irmad(b, a, valid)
    assert np.all(res.chi2[~valid] == 0) and np.all(res.p_nochange[~valid] == 0)
    assert np.all(res.mad[:, ~valid] == 0)
    assert res.n_valid == int(valid.sum())
    assert np.isfinite(res.chi2).all()
    assert (res.p_nochange[truth] < 1e-3).mean() > 0.99
    np.testing.assert_array_equal(score_irmad(b, a, valid), res.chi2)


@pytest.mark.parametrize("bands", [1, 2, 13])
def test_any_band_count_is_calibrated(bands):
    before, after, truth = planted_pair(bands, 120, seed=bands)
    res = irmad(before, after, np.ones(truth.shape, bool))
    assert res.converged
    assert res.mad.shape == (bands, 120, 120)
    assert res.chi2.dtype == res.p_nochange.dtype == res.mad.dtype == np.float32
    assert np.median(res.chi2[truth]) > chi2_quantile(bands, 0.999)
    ratio = res.chi2[~truth].mean() / bands  # E[chi2] = B for unchanged pixels
    assert 0.85 < ratio < 1.15


def test_published_estimator_inflates_chi2_but_ranks_alike(pair5):
    """consistent=False is Nielsen (2007) as published: chi2 too large, same ranking."""
    before, after, truth = pair5
    valid = np.ones(truth.shape, bool)
    ours = irmad(before, after, valid)
    nielsen = irmad(before, after, valid, consistent=False)
    assert nielsen.consistency == 1.0 and ours.consistency == pytest.approx(0.6605, abs=1e-3)
    assert nielsen.chi2[~truth].mean() > 1.5 * ours.chi2[~truth].mean()
    rank = stats.spearmanr(ours.chi2.ravel(), nielsen.chi2.ravel()).statistic
    assert rank > 0.95


def test_sampled_fit_matches_full_fit(pair5):
    before, after, truth = pair5
    valid = np.ones(truth.shape, bool)
    full = irmad(before, after, valid, sample=None)
    part = irmad(before, after, valid, sample=10_000, seed=3)
    assert full.n_fit == truth.size and part.n_fit == 10_000
    np.testing.assert_allclose(part.rho, full.rho, atol=2e-3)
    assert np.corrcoef(part.chi2.ravel(), full.chi2.ravel())[0, 1] > 0.99


def test_max_iter_one_is_plain_mad(pair5):
    before, after, truth = pair5
    res = irmad(before, after, np.ones(truth.shape, bool), max_iter=1)
    assert res.iterations == 1 and not res.converged and res.delta == np.inf
    doc = res.as_dict()
    assert doc["delta"] is None
    json.dumps(doc, allow_nan=False)


def test_as_dict_is_json(pair5):
    before, after, truth = pair5
    doc = irmad(before, after, np.ones(truth.shape, bool)).as_dict()
    text = json.dumps(doc, allow_nan=False)
    back = json.loads(text)
    assert set(back) >= {"rho", "sigma", "iterations", "converged", "delta"}
    assert len(back["rho"]) == 5 and back["converged"] is True


def test_bad_inputs_raise_clear_errors():
    before, after, truth = planted_pair(3, 40)
    valid = np.ones(truth.shape, bool)
    with pytest.raises(ValueError, match="after shape"):
        irmad(before, after[:2], valid)
    with pytest.raises(ValueError, match="valid mask"):
        irmad(before, after, valid[:10])
    with pytest.raises(ValueError, match="bool"):
        irmad(before, after, valid.astype(np.uint8))
    with pytest.raises(ValueError, match=r"\(bands, H, W\)"):
        irmad(before[0], after[0], valid)
    flat = after.copy()
    flat[1] = 0.2
    with pytest.raises(ValueError, match="after band 1 is constant"):
        irmad(before, flat, valid)
    bad = before.copy()
    bad[2, 5, 5] = np.nan
    with pytest.raises(ValueError, match="before band 2 has non-finite"):
        irmad(bad, after, valid)
    few = np.zeros_like(valid)
    few[0, :5] = True
    with pytest.raises(ValueError, match="too few"):
        irmad(before, after, few)
    with pytest.raises(ValueError, match="no valid pixels"):
        score_irmad(before, after, np.zeros_like(valid))
    with pytest.raises(ValueError, match="max_iter"):
        irmad(before, after, valid, max_iter=0)


def test_chi2_quantile_and_consistency_factor():
    assert chi2_quantile(1, 0.95) == pytest.approx(3.841459, rel=1e-6)
    assert chi2_quantile(13, 0.99) == pytest.approx(stats.chi2.ppf(0.99, 13))
    assert consistency_factor(2) == pytest.approx(0.5)
    assert consistency_factor(4) == pytest.approx(0.625)
    # Monte Carlo check of kappa = E[min(S, S')] / dof.
    s = np.random.default_rng(0).chisquare(13, size=(2, 200_000))
    assert consistency_factor(13) == pytest.approx(s.min(axis=0).mean() / 13, rel=0.01)
    with pytest.raises(ValueError, match="p must"):
        chi2_quantile(4, 1.0)
    with pytest.raises(ValueError, match="dof"):
        chi2_quantile(0, 0.5)


OSCD = SHARED / "data" / "oscd" / "Onera Satellite Change Detection dataset - Images"


@needs_shared("data", "oscd")
@pytest.mark.shared
def test_irmad_on_an_oscd_city():
    from sitewatch.sources.local import open_local, read_scene

    city = OSCD / "cupertino"
    src1, src2 = open_local(city / "imgs_1"), open_local(city / "imgs_2")
    s1 = read_scene(src1, src1.grid)
    s2 = read_scene(src2, src1.grid)
    valid = s1.valid & s2.valid
    t0 = time.perf_counter()
    res = irmad(s1.data, s2.data, valid)
    took = time.perf_counter() - t0
    print(f"irmad on cupertino {s1.data.shape}: {took:.2f} s, {res.iterations} iterations")
    assert res.converged
    assert np.isfinite(res.chi2).all() and res.dof == 13
    assert took < 30


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 6, 13, 40, 41])
def test_chi2_sf_is_scipys_survival_function(dof):
    """The closed form IR-MAD's reweighting uses equals chdtrc (41: chdtrc itself)."""
    rng = np.random.default_rng(dof)
    x = np.r_[0.0, 1e-9, rng.chisquare(dof, 20_000) * rng.uniform(0.1, 5.0, 20_000), 300.0]
    want = special.chdtrc(dof, x)
    got = chi2_sf(dof, x)
    assert got.shape == x.shape
    assert np.allclose(got, want, rtol=1e-12, atol=1e-300)
