"""Radar statistics on synthetic gamma speckle of known equivalent number of looks."""

from __future__ import annotations

import numpy as np
import pytest

from sitewatch.detect.sar import (
    equivalent_looks,
    log_ratio_test,
    omnibus_p_value,
    sequential_omnibus,
    to_db,
)

ENL = 4.4  # one Sentinel-1 IW GRDH scene
DATES = 12
ALPHAS = (1e-2, 1e-3, 1e-4)


def speckle(mean: np.ndarray, enl: float, rng: np.random.Generator) -> np.ndarray:
    """Gamma intensities of shape ``enl`` around ``mean`` (fully developed speckle)."""
    return rng.gamma(enl, mean / enl).astype(np.float32)


@pytest.fixture(scope="module")
def no_change() -> np.ndarray:
    """12 dates x VV/VH x 10⁶ pixels of pure speckle around one backscatter."""
    rng = np.random.default_rng(20160501)
    mean = np.array([0.05, 0.01]).reshape(1, 2, 1, 1)  # VV -13 dB, VH -20 dB
    return speckle(np.broadcast_to(mean, (DATES, 2, 1000, 1000)), ENL, rng)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_false_alarm_rate_is_the_chosen_alpha(no_change: np.ndarray, alpha: float) -> None:
    valid = np.ones(no_change.shape[2:], bool)
    res = sequential_omnibus(no_change, valid, alpha=alpha, enl=ENL)
    far = float((res.first_change >= 0).mean())
    assert 0.5 * alpha <= far <= 1.5 * alpha, f"FAR {far:.2e} at alpha {alpha:.0e}"
    # every flagged pixel carries an omnibus p-value below alpha
    flagged = res.first_change >= 0
    assert np.all(res.p_first[flagged] < alpha)
    assert np.all(np.isnan(res.p_first[~flagged]))


@pytest.mark.parametrize("alpha", ALPHAS)
def test_pair_p_value_is_calibrated(no_change: np.ndarray, alpha: float) -> None:
    valid = np.ones(no_change.shape[2:], bool)
    res = log_ratio_test(no_change[:3], no_change[3:6], valid, enl=ENL)
    far = float((res.p_value < alpha).mean())
    assert 0.5 * alpha <= far <= 1.5 * alpha
    assert res.enl_before == res.enl_after == pytest.approx(3 * ENL)


def test_mean_of_n_scenes_has_n_times_the_looks(no_change: np.ndarray) -> None:
    """Speckle variance of the mean falls as 1/n: measured ENL = mean² / variance."""
    vv = no_change[:, 0].reshape(DATES, -1)
    for n in (1, 4, 12):
        m = vv[:n].mean(axis=0)
        measured = m.mean() ** 2 / m.var()
        assert measured == pytest.approx(equivalent_looks(n, ENL), rel=0.03)


def planted_series(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    mean = np.ones((DATES, 2, 160, 160))
    mean[:, 0] *= 0.05
    mean[:, 1] *= 0.01
    roof = np.zeros((160, 160), bool)
    roof[70:90, 60:92] = True  # 200 m x 320 m new hall at 10 m
    mean[7:, :, roof] *= 10**0.6  # +6 dB from the 8th date on
    return speckle(mean, ENL, rng), roof


def test_planted_building_is_found_and_dated() -> None:
    from sitewatch.radar import series_changes

    x, roof = planted_series(np.random.default_rng(7))
    valid = np.ones(roof.shape, bool)
    res = sequential_omnibus(x, valid, alpha=1e-3, enl=ENL)
    found = res.first_change >= 0
    assert (found & roof).sum() / roof.sum() > 0.85
    assert np.bincount(res.first_change[roof & found]).argmax() == 7
    dates = [f"2024-{m:02d}-01" for m in range(1, 13)]
    from sitewatch.grid import Grid

    grid = Grid(crs=None, transform=_pixels(10.0), width=160, height=160, pixel_size_m=10.0)
    mask, feats = series_changes(res, grid, dates, orbit="ascending 127")
    assert len(feats) == 1, [f["properties"]["area_px"] for f in feats]
    props = feats[0]["properties"]
    assert props["first_seen"] == "2024-08-01"
    assert props["p_value"] < 1e-3
    assert 5.0 < props["db_vv"] < 7.0
    assert props["orbit"] == "ascending 127"
    assert props["looks"] == pytest.approx(ENL)
    assert (mask & roof).sum() / (mask | roof).sum() > 0.8


def _pixels(size: float) -> object:
    from affine import Affine

    return Affine(size, 0, 0, 0, -size, 0)


def test_unchanged_then_changed_pair_db() -> None:
    rng = np.random.default_rng(1)
    mean = np.full((4, 2, 50, 50), 0.05)
    after = mean.copy()
    after[:, :, 10:20, 10:20] *= 4.0
    res = log_ratio_test(
        speckle(mean, ENL, rng), speckle(after, ENL, rng), np.ones((50, 50), bool), enl=ENL
    )
    assert np.nanmedian(res.db[0, 10:20, 10:20]) == pytest.approx(6.0, abs=0.6)
    assert np.nanmedian(res.p_value[10:20, 10:20]) < 1e-6
    assert abs(np.nanmedian(res.db[0, 30:, 30:])) < 0.3


def test_omnibus_p_value_rejects_a_step() -> None:
    rng = np.random.default_rng(2)
    mean = np.full((6, 2, 20, 20), 0.05)
    mean[3:, :, :10] *= 4.0
    p = omnibus_p_value(speckle(mean, ENL, rng), np.ones((20, 20), bool), enl=ENL)
    assert np.median(p[:10]) < 1e-2 < np.median(p[10:])


def test_inputs_are_checked() -> None:
    x = np.ones((3, 2, 4, 4), np.float32)
    v = np.ones((4, 4), bool)
    with pytest.raises(ValueError, match="alpha"):
        sequential_omnibus(x, v, alpha=0.0)
    with pytest.raises(ValueError, match="enl"):
        sequential_omnibus(x, v, enl=-1.0)
    with pytest.raises(ValueError, match="at least 2"):
        sequential_omnibus(x[:1], v)
    with pytest.raises(ValueError, match="valid shape"):
        log_ratio_test(x, x, v[:2])
    assert np.isnan(to_db(np.array([0.0]))[0])
