"""The step model of long series: one lasting step per pixel, thresholded by shuffles."""

from __future__ import annotations

import json

import numpy as np
import pytest

import sitewatch as sw
from sitewatch.cli.main import main
from sitewatch.detect.options import DetectOptions
from sitewatch.detect.steps import MIN_DATES, prepare_series, step_scores, threshold_steps
from sitewatch.errors import InputError
from sitewatch.timeline import track_changes

MONTHS = [f"{2021 + m // 12}-{m % 12 + 1:02d}-15" for m in range(14)]


@pytest.fixture(scope="module")
def long_series(tmp_path_factory):
    return sw.synthetic_series(
        tmp_path_factory.mktemp("long"),
        dates=MONTHS,
        building_from=MONTHS[6],
        transient_on=MONTHS[9],
        cloud_on=MONTHS[4],
    )


def _near(f, lonlat, tol=0.0008):
    c = f["properties"]["centroid"]
    return abs(c[0] - lonlat[0]) < tol and abs(c[1] - lonlat[1]) < tol


def test_long_series_takes_the_step_model_and_dates_the_building(long_series):
    s = long_series
    result, _ = sw.detect_series(s.folders, aoi=sw.load_aoi("feb11-plant"))
    info = result.diagnostics["timeline"]
    assert info["model"] == "step" and result.threshold.rule == "step-fdr"
    assert "time-shuffled" in result.threshold.why
    assert result.provenance["parameters"]["timeline_model"] == "auto"
    (f,) = result.features  # the building only: the one-date transient is no step
    assert _near(f, s.building_lonlat)
    p = f["properties"]
    assert p["first_seen"] == MONTHS[6] and p["last_clear_before"] == MONTHS[5]
    assert p["status"] == "persistent" and p["persistence"] >= 0.5
    assert 8_000 < p["area_m2"] < 13_000  # planted 12 x 8 px = 9,600 m² (half-maximum outline)
    assert not any(_near(g, s.transient_lonlat) for g in result.features)


def _noise_series(n: int, seed: int = 0, step: bool = False):
    """n dates of 3 bands: texture + noise + a gain, an offset and a haze ramp per date."""
    rng = np.random.default_rng(seed)
    h, w = 90, 110
    ground = rng.normal(0.2, 0.05, (3, h, w))
    ramp = np.linspace(0, 1, w)[None, None, :]
    stacks, valids = [], []
    for t in range(n):
        gain, offset, haze = rng.uniform(0.8, 1.2), rng.uniform(-0.05, 0.05), rng.uniform(0, 0.1)
        img = gain * ground + offset + haze * ramp + rng.normal(0, 0.01, (3, h, w))
        if step and t >= n // 2:
            img[:, 40:48, 50:60] += 0.3 * gain
        stacks.append(img.astype(np.float32))
        valids.append(np.ones((h, w), bool))
    return stacks, valids, MONTHS[:n] if n <= len(MONTHS) else [str(i) for i in range(n)]


def test_no_change_series_flags_almost_nothing():
    stacks, valids, dates = _noise_series(14)
    tl = track_changes(stacks, valids, dates, pixel_area_m2=100.0)
    assert tl.diagnostics[1]["timeline_model"] == "step"
    assert tl.kept_mask().mean() < 0.001


def test_step_is_found_at_its_date_under_gain_offset_and_haze():
    stacks, valids, dates = _noise_series(14, step=True)
    tl = track_changes(stacks, valids, dates, pixel_area_m2=100.0)
    kept = tl.kept_mask()
    assert kept[40:48, 50:60].mean() > 0.9 and kept.sum() < 1.3 * 80
    (r,) = tl.kept
    assert r.first_seen == dates[7] and r.last_clear_before == dates[6]


def test_short_series_compares_pairs_and_models_are_checked():
    stacks, valids, dates = _noise_series(MIN_DATES - 1, step=True)
    tl = track_changes(stacks, valids, dates, pixel_area_m2=100.0)
    assert "timeline_model" not in tl.diagnostics[1]  # the pair detector's diagnostics
    with pytest.raises(InputError, match="model"):
        track_changes(stacks, valids, dates, model="steps")
    with pytest.raises(InputError, match="three"):
        track_changes(stacks[:2], valids[:2], dates[:2], model="step")


def test_threshold_is_reproducible_and_checks_fdr():
    stacks, valids, _ = _noise_series(13, step=True)
    v = np.stack(valids)
    x = prepare_series(stacks, v).reshape(13, 3, -1)
    vv = v.reshape(13, -1)
    s = step_scores(x, vv)
    where = s.split > 0
    a = threshold_steps(x, vv, s.stat, where)
    b = threshold_steps(x, vv, s.stat, where)
    assert a == b and a.rule == "step-fdr" and np.isfinite(a.value)
    assert threshold_steps(x, vv, s.stat, where, fdr=0.2).value <= a.value
    with pytest.raises(ValueError, match="fdr"):
        threshold_steps(x, vv, s.stat, where, fdr=1.5)


def test_timeline_cli_model_and_fdr(long_series, tmp_path, capsys):
    out = tmp_path / "tl"
    folders = [str(f) for f in long_series.folders]
    code = main(["timeline", "--images", *folders, "--model", "pairs", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert "step-fdr" not in json.dumps(manifest)
    step = tmp_path / "step"
    assert main(["timeline", "--images", *folders, "--fdr", "0.05", "--out", str(step)]) == 0
    manifest = json.loads((step / "manifest.json").read_text())
    assert manifest["diagnostics"]["threshold"]["rule"] == "step-fdr"
    assert manifest["parameters"]["fdr"] == 0.05
    assert "step model" in (step / "report.html").read_text()
    capsys.readouterr()
    bad = tmp_path / "bad"
    code = main(["timeline", "--images", *folders, "--fdr", "1.5", "--out", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--fdr" in err
    assert not bad.exists()


def test_dates_are_registered_onto_the_first_before_the_steps():
    from scipy import ndimage

    rng = np.random.default_rng(2)
    ground = ndimage.gaussian_filter(rng.normal(0, 1, (3, 90, 110)), (0, 2, 2)) * 0.2 + 0.3
    stacks, valids, dates = [], [], MONTHS
    for t in range(14):  # the mosaic moves by 2.5 px from the eighth month on
        img = ground + rng.normal(0, 0.003, ground.shape)
        if t >= 7:
            img = ndimage.shift(img, (0, 2.5, -1.5), order=3, mode="nearest")
        stacks.append(img.astype(np.float32))
        valids.append(np.ones((90, 110), bool))
    tl = track_changes(stacks, valids, dates, pixel_area_m2=100.0)
    shifts = tl.diagnostics[1]["shifts_px"]
    assert shifts[0] is None and all(s is not None for s in shifts[7:])
    inner = (slice(8, -8), slice(8, -8))  # near the edge the shifted image is padding
    assert tl.kept_mask()[inner].mean() < 0.001
    off = track_changes(
        stacks, valids, dates, pixel_area_m2=100.0, options=DetectOptions(coregister=False)
    )
    # unregistered, a move of more than a pixel is a lasting step (one of a pixel is
    # dropped as a displacement, see test_a_moved_edge_is_a_displacement_not_a_change)
    assert off.kept_mask()[inner].mean() > 0.01


def test_a_moved_edge_is_a_displacement_not_a_change():
    """A roof whose outline moves by a pixel (view angle, a shadow) is not new material;
    a new roof beside a strong change keeps its own outline (one basin per peak)."""
    from sitewatch.detect.steps import StepScores, displacement_ratio

    rng = np.random.default_rng(5)
    h, w = 90, 110
    ground = rng.normal(0.2, 0.03, (3, h, w))
    stacks, valids = [], []
    for t in range(14):
        img = ground + rng.normal(0, 0.01, (3, h, w))
        x0 = 20 if t < 7 else 21  # an existing roof leans one pixel east from month 8
        img[:, 20:30, x0 : x0 + 10] = 0.6
        if t >= 7:
            img[:, 60:70, 60:70] += 0.35  # a strong new change
            img[:, 62:68, 70:76] += 0.12  # a faint new roof against it
        stacks.append(img.astype(np.float32))
        valids.append(np.ones((h, w), bool))
    tl = track_changes(stacks, valids, MONTHS, pixel_area_m2=100.0)
    kept = tl.kept_mask()
    assert not kept[15:35, 15:35].any()  # the moved roof
    assert kept[60:70, 60:70].mean() > 0.8
    assert kept[62:68, 71:76].mean() > 0.5  # the faint roof, not trimmed by its neighbour's peak
    assert tl.diagnostics[1]["regions_dropped_as_displacements"] >= 1

    # the ratio itself: a step that a neighbour's old level explains is near 0
    before = np.zeros((1, 4, 4), np.float32)
    before[0, :, 1] = 1.0
    after = np.zeros_like(before)
    after[0, :, 2] = 1.0  # the bright column moved east
    after[0, 3, 0] = 1.0  # new in its neighbourhood? no: (2, 1) was bright before
    after[0, 0, 3] = 0.0
    s = StepScores(
        np.ones(16, np.float32), np.ones(16, np.int16), before.reshape(1, -1), after.reshape(1, -1)
    )
    r = displacement_ratio(s, (4, 4))
    assert (r[:, 2] < 0.01).all() and r[3, 0] < 0.01


def test_a_lasting_step_that_adds_no_outline_is_flat_and_listed_not_kept():
    """A bright field cleared to the level of the ground around it is a lasting step
    but no new structure; a new roof on the same ground adds an outline and is kept."""
    rng = np.random.default_rng(7)
    h, w = 90, 110
    ground = rng.normal(0.2, 0.03, (3, h, w))
    stacks, valids = [], []
    for t in range(14):
        img = ground + rng.normal(0, 0.01, (3, h, w))
        if t < 7:
            img[:, 20:40, 20:40] = 0.5  # a bright field ...
        else:
            img[:, 60:70, 70:80] = 0.55  # ... cleared, while a roof goes up
        stacks.append(img.astype(np.float32))
        valids.append(np.ones((h, w), bool))
    # (not co-registered: on this bare scene the field and the roof are the only
    # features, and phase correlation pairs one with the other)
    opts = DetectOptions(coregister=False)
    tl = track_changes(stacks, valids, MONTHS, pixel_area_m2=100.0, options=opts)
    kept = tl.kept_mask()
    assert kept[60:70, 70:80].mean() > 0.9 and not kept[20:40, 20:40].any()
    flat = [r for r in tl.regions if r.status == "flat"]
    assert tl.n_flat == len(flat) >= 1  # listed and counted, with their dates
    assert all(r.first_seen == MONTHS[7] for r in flat)
    field = np.unique(tl.labels[20:40, 20:40])
    assert {r.label for r in flat} == set(field[field > 0])
    assert [r.status for r in tl.kept] == ["persistent"]
