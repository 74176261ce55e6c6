"""IR-MAD radiometric normalisation recovers a planted gain/offset, never makes it worse."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from sitewatch.prepare import normalize_irmad, orthogonal_regression

GAIN = np.array([0.8, 1.1, 1.25, 0.95])
OFFSET = np.array([0.01, -0.02, 0.03, 0.0])


def scene(size: int = 200, *, seed: int = 0) -> np.ndarray:
    """Four correlated reflectance-like bands from smooth random fields."""
    rng = np.random.default_rng(seed)
    fields = np.stack([ndimage.gaussian_filter(rng.normal(size=(size, size)), 3) for _ in range(4)])
    fields /= fields.std(axis=(1, 2), keepdims=True)
    mix = 0.6 * np.eye(4) + 0.25
    return 0.15 + 0.03 * np.einsum("bk,khw->bhw", mix, fields)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """after = before * gain + offset + noise; 20% of pixels changed to new materials."""
    rng = np.random.default_rng(1)
    before = scene()
    after = before * GAIN[:, None, None] + OFFSET[:, None, None]
    after += rng.normal(scale=0.001, size=after.shape)
    changed = np.zeros(before.shape[1:], dtype=bool)
    changed[10:90, 20:120] = True  # 8000 px = 20% of 200 x 200
    n = int(changed.sum())
    spectra = rng.uniform(0.05, 0.4, size=(4, 3))  # three new materials
    which = rng.integers(0, 3, size=n)
    after[:, changed] = spectra[:, which] + rng.normal(scale=0.01, size=(4, n))
    return before, after, changed


def test_gain_and_offset_recovered_within_one_percent(pair):
    before, after, changed = pair
    valid = np.ones(changed.shape, bool)
    res = normalize_irmad(before, after, valid, band_names=["B02", "B03", "B04", "B08"])
    assert res.applied and len(res.fits) == 4
    assert [f.band for f in res.fits] == ["B02", "B03", "B04", "B08"]
    for i, fit in enumerate(res.fits):
        # The fit maps after back to before: slope = 1/gain, intercept = -offset/gain.
        recovered_gain = 1.0 / fit.slope
        assert abs(recovered_gain / GAIN[i] - 1) < 0.01, (fit.band, recovered_gain)
        recovered_offset = -fit.intercept / fit.slope
        dyn_range = np.ptp(before[i])
        assert abs(recovered_offset - OFFSET[i]) < 0.01 * dyn_range, (fit.band, fit.intercept)
        assert fit.applied and fit.r > 0.99 and fit.span > 0.25
        assert fit.rmse_test < fit.rmse_test_before / 5
        assert fit.n_test == pytest.approx(fit.n_train / 2, rel=0.01)
        assert 0 <= fit.t_p <= 1 and 0 <= fit.f_p <= 1
    # Unchanged pixels now agree with the before image to the noise level.
    err = np.abs(res.after[:, ~changed] - before[:, ~changed])
    assert np.median(err) < 0.002


def test_changed_pixels_are_excluded_from_nochange_set(pair):
    before, after, changed = pair
    res = normalize_irmad(before, after, np.ones(changed.shape, bool))
    assert res.n_nochange == int(res.nochange.sum()) >= 1000
    assert (res.nochange & changed).sum() <= 0.01 * res.n_nochange
    assert (res.nochange & changed).sum() < 0.001 * changed.sum()


def test_inputs_are_not_modified_and_invalid_pixels_kept(pair):
    before, after, changed = pair
    b, a = before.copy(), after.copy()
    valid = np.ones(changed.shape, bool)
    valid[150:, 150:] = False
    a[:, ~valid] = -9999.0
    a_in = a.copy()
    res = normalize_irmad(b, a, valid)
    np.testing.assert_array_equal(b, before)
    np.testing.assert_array_equal(a, a_in)
    assert res.after.dtype == np.float32 and res.after.shape == a.shape
    assert np.all(res.after[:, ~valid] == -9999.0)
    assert not (res.nochange & ~valid).any()


def test_too_few_nochange_pixels_returns_input_unchanged(pair):
    before, after, changed = pair
    res = normalize_irmad(before, after, np.ones(changed.shape, bool), min_pixels=10**6)
    assert not res.applied and res.fits == ()
    assert "not normalised" in res.note and str(res.n_nochange) in res.note
    np.testing.assert_array_equal(res.after, after.astype(np.float32))
    json.dumps(res.as_dict(), allow_nan=False)


def test_band_that_would_not_improve_is_left_alone():
    """An already-matching band is kept as is: normalisation never makes it worse."""
    rng = np.random.default_rng(4)
    before = scene(120, seed=4)
    after = before * GAIN[:, None, None] + OFFSET[:, None, None]
    after += rng.normal(scale=0.001, size=after.shape)
    after[2] = before[2]  # band 3 already matches exactly
    res = normalize_irmad(before, after, np.ones((120, 120), bool))
    kept = res.fits[2]
    assert not kept.applied and (kept.slope, kept.intercept) == (1.0, 0.0)
    assert kept.rmse_test == kept.rmse_test_before == 0.0
    assert "b3" in res.note and "left unnormalised" in res.note
    np.testing.assert_array_equal(res.after[2], after[2].astype(np.float32))
    assert res.applied and all(f.applied for i, f in enumerate(res.fits) if i != 2)
    for fit in res.fits:
        assert fit.rmse_test <= fit.rmse_test_before


def test_narrow_nochange_set_is_not_extrapolated():
    """Invariant pixels all on dark, flat water: the line would be extrapolated to land."""
    rng = np.random.default_rng(5)
    before = scene(120, seed=5)
    water = np.zeros((120, 120), dtype=bool)
    water[:, :50] = True
    before[:, water] = 0.04 + 0.1 * (before[:, water] - 0.15)
    after = before * GAIN[:, None, None] + OFFSET[:, None, None]
    after += rng.normal(scale=0.001, size=after.shape)
    after[:, ~water] += rng.normal(scale=0.05, size=(4, int((~water).sum())))
    res = normalize_irmad(before, after, np.ones((120, 120), bool))
    assert res.n_nochange >= 100 and not (res.nochange & ~water).any()
    assert not res.applied
    assert all(not f.applied and f.span < 0.25 for f in res.fits)
    assert "not normalised" in res.note and "span under 25%" in res.note
    np.testing.assert_array_equal(res.after, after.astype(np.float32))
    loose = normalize_irmad(before, after, np.ones((120, 120), bool), min_span=0.0, min_r=-1.0)
    assert loose.applied


def test_weakly_correlated_band_is_left_alone(pair):
    """A band whose invariant pixels barely correlate is not flattened to its mean."""
    before, after, changed = pair
    rng = np.random.default_rng(9)
    after = after.copy()
    # Band 4 of the after image unrelated to the before image (like cirrus band B10).
    after[3] = 0.15 + ndimage.gaussian_filter(rng.normal(size=after[3].shape), 2)
    res = normalize_irmad(before, after, np.ones(changed.shape, bool))
    weak = res.fits[3]
    assert weak.r < 0.8 and not weak.applied and (weak.slope, weak.intercept) == (1.0, 0.0)
    assert "correlate under r = 0.8" in res.note and "b4" in res.note
    assert all(f.applied for f in res.fits[:3])


def test_as_dict_is_json(pair):
    before, after, changed = pair
    res = normalize_irmad(before, after, np.ones(changed.shape, bool))
    doc = json.loads(json.dumps(res.as_dict(), allow_nan=False))
    assert doc["applied"] is True and doc["p_threshold"] == 0.95
    assert len(doc["bands"]) == 4 and doc["bands"][0]["band"] == "b1"
    assert doc["irmad"]["converged"] is True
    assert {"slope", "intercept", "rmse_test", "rmse_test_before", "t_p", "f_p"} <= set(
        doc["bands"][0]
    )


def test_bad_options_raise(pair):
    before, after, changed = pair
    valid = np.ones(changed.shape, bool)
    with pytest.raises(ValueError, match="band names"):
        normalize_irmad(before, after, valid, band_names=["a", "b"])
    with pytest.raises(ValueError, match="p_nochange"):
        normalize_irmad(before, after, valid, p_nochange=1.0)
    with pytest.raises(ValueError, match="holdout"):
        normalize_irmad(before, after, valid, holdout=0.0)
    with pytest.raises(ValueError, match="min_span"):
        normalize_irmad(before, after, valid, min_span=2.0)
    with pytest.raises(ValueError, match="min_r"):
        normalize_irmad(before, after, valid, min_r=1.5)
    with pytest.raises(ValueError, match="after shape"):
        normalize_irmad(before, after[:3], valid)


def test_orthogonal_regression_is_symmetric():
    rng = np.random.default_rng(0)
    t = rng.normal(size=5000)
    # Equal error variances in x and y: the case the major axis is unbiased for.
    x = t + rng.normal(scale=0.3, size=5000)
    y = 3.0 * t + 2.0 + rng.normal(scale=0.3, size=5000)
    s_xy, i_xy = orthogonal_regression(x, y)
    s_yx, i_yx = orthogonal_regression(y, x)
    assert s_xy * s_yx == pytest.approx(1.0)
    assert i_yx == pytest.approx(-i_xy / s_xy)
    assert s_xy == pytest.approx(3.0, rel=0.02)
    assert np.isnan(orthogonal_regression(np.array([0.0, 1, 0, -1]), np.array([1.0, 0, -1, 0]))[0])


# --------------------------------------------------------------------------- by rows


def test_sampled_fit_equals_the_whole_image_fit_when_the_image_is_small(pair):
    from sitewatch.detect.engine import ArrayReader
    from sitewatch.prepare.normalize import apply_normalization, normalize_sampled

    before, after, _ = pair
    valid = np.ones(before.shape[1:], dtype=bool)
    valid[150:160, :] = False  # a gap: the sample follows the valid pixels
    whole = normalize_irmad(before, after, valid)
    for rows in (7, 256):  # however the rows are read
        sampled = normalize_sampled(ArrayReader(before, after, valid), rows=rows)
        assert sampled.fits == whole.fits and sampled.note == whole.note
        out = apply_normalization(after, valid, sampled.fits)
        assert np.array_equal(out, whole.after)


def test_sampled_fit_on_a_larger_image_draws_the_same_pixels_by_any_rows(pair):
    from sitewatch.detect.engine import ArrayReader
    from sitewatch.prepare.normalize import (
        NormalizedReader,
        apply_normalization,
        normalize_sampled,
        sample_rows,
    )

    before, after, _ = pair
    valid = np.ones(before.shape[1:], dtype=bool)
    reader = ArrayReader(before, after, valid)
    fits = [normalize_sampled(reader, sample=5_000, rows=r) for r in (3, 64, 200)]
    assert fits[0].fits == fits[1].fits == fits[2].fits
    assert "fitted on a sample of" in fits[0].note
    drawn = sample_rows(0, 200, 200, 200 * 200, 5_000)
    assert 4_500 < int(drawn.sum()) < 5_500
    assert fits[0].fits[0].n_train + fits[0].fits[0].n_test <= drawn.sum()
    # The planted gain is recovered from the sample too.
    applied = [f for f in fits[0].fits if f.applied]
    assert applied
    for f in applied:
        i = int(f.band[1:]) - 1
        assert f.slope * GAIN[i] == pytest.approx(1.0, abs=0.02)
    # A normalised reader gives the rows of the normalised image.
    norm = NormalizedReader(reader, fits[0].fits)
    b, a, v = norm.read(40, 90)
    whole = apply_normalization(after, valid, fits[0].fits)
    assert np.array_equal(a, whole[:, 40:90]) and np.array_equal(b, before[:, 40:90])
    assert v.all()
    assert norm.shape == reader.shape and norm.bands == reader.bands


def test_sampled_fit_needs_a_valid_pixel(pair):
    from sitewatch.detect.engine import ArrayReader
    from sitewatch.prepare.normalize import normalize_sampled

    before, after, _ = pair
    with pytest.raises(ValueError, match="no valid pixel"):
        normalize_sampled(ArrayReader(before, after, np.zeros(before.shape[1:], bool)))
