"""The default detector is chosen from the input, and its threshold adapts to the image."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from sitewatch.detect import methods
from sitewatch.detect.chain import choose_method, resolve_options
from sitewatch.detect.options import DetectOptions
from sitewatch.detect.run import detect_arrays

S2_ALL = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
RGB = ["red", "green", "blue"]


@pytest.mark.parametrize(
    ("names", "area", "method"),
    [
        (S2_ALL, 100.0, "construction"),  # Sentinel-2 at 10 m
        (S2_ALL, 400.0, "construction"),  # ... resampled to 20 m
        (S2_ALL, 900.0, "irmad"),  # 30 m: a building is under a pixel
        (["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"], 900.0, "irmad"),  # Landsat TM
        (["B02", "B03", "B04", "B08"], 100.0, "irmad"),  # 10 m bands only: no SWIR
        (RGB, 0.25, "irmad"),  # aerial photo
        (["red", "green", "blue", "nir"], 14.0, "irmad"),  # Planet
        (S2_ALL, None, "irmad"),  # pixel size unknown
    ],
)
def test_method_is_chosen_from_bands_and_pixel_size(names, area, method):
    chosen, why = choose_method(names, len(names), area)
    assert chosen == method and why


def test_resolve_keeps_what_the_user_named_and_records_the_choice():
    opts, chain = resolve_options(DetectOptions(), RGB, 3, 0.25)
    assert (opts.method, opts.threshold_rule) == ("irmad", "kittler")
    assert chain is not None and chain["method"] == "irmad" and "IR-MAD" in chain["why"]
    opts, chain = resolve_options(DetectOptions(method="cva"), RGB, 3, 0.25)
    assert (opts.method, opts.threshold_rule) == ("cva", "kittler") and chain is not None
    opts, chain = resolve_options(DetectOptions(), S2_ALL, 10, 100.0)
    assert (opts.method, opts.threshold_rule) == ("construction", "precision")
    named = DetectOptions(method="irmad", threshold_rule="otsu")
    assert resolve_options(named, RGB, 3, 0.25) == (named, None)


def _rgb_pair(share: float, *, seed: int = 0, size: int = 256):
    """A textured RGB pair: the after image has a gain, an offset and new noise, and
    ``share`` of it (square roofs of 12 px) is changed to another colour."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(40, 200, (3, size // 8, size // 8)).repeat(8, 1).repeat(8, 2)
    before = base + rng.normal(0, 4, base.shape)
    after = 1.1 * base + 7 + rng.normal(0, 4, base.shape)
    truth = np.zeros((size, size), bool)
    cells = [(r, c) for r in range(0, size - 12, 16) for c in range(0, size - 12, 16)]
    order = rng.permutation(len(cells))
    while truth.mean() < share:
        r, c = cells[order[int(truth.sum()) // 144]]
        truth[r : r + 12, c : c + 12] = True
    colour = np.array([230.0, 60.0, 40.0])[:, None]
    after[:, truth] = colour + rng.normal(0, 4, (3, int(truth.sum())))
    return before.astype(np.float32), after.astype(np.float32), truth


@pytest.mark.parametrize("share", [0.05, 0.15, 0.30])
def test_default_threshold_recovers_the_change_share_of_a_mixture(share):
    b, a, truth = _rgb_pair(share)
    det = detect_arrays(b, a, np.ones(truth.shape, bool), band_names=RGB, pixel_area_m2=1.0)
    assert det.diagnostics["chain"]["method"] == "irmad"
    assert det.threshold.rule == "kittler"
    # The flagged share follows the true one within 3 points, and the flags are the change.
    assert abs(det.mask.mean() - truth.mean()) < 0.03
    assert (det.mask & truth).sum() / det.mask.sum() > 0.9


def test_default_threshold_flags_almost_nothing_without_change():
    b, _, truth = _rgb_pair(0.0)
    rng = np.random.default_rng(1)
    a = (1.2 * b - 15 + rng.normal(0, 4, b.shape)).astype(np.float32)  # gain, offset, noise
    det = detect_arrays(b, a, np.ones(truth.shape, bool), band_names=RGB, pixel_area_m2=1.0)
    assert det.mask.mean() < 0.001
    assert "no-change floor" in det.threshold.why


@pytest.mark.parametrize("share", [0.05, 0.15, 0.30])
def test_edges_method_finds_every_roof_and_widens_it_by_the_outline_only(share):
    b, a, truth = _rgb_pair(share)
    opts = DetectOptions(method="edges")
    v = np.ones(truth.shape, bool)
    det = detect_arrays(b, a, v, band_names=RGB, pixel_area_m2=1.0, options=opts)
    assert det.diagnostics["chain"]["threshold_rule"] == "kittler"
    assert (det.mask & truth).sum() / truth.sum() > 0.99
    # New edges are spread from the outline (gradient and smoothing): regions come out
    # wider than the roofs, by up to 7 px, never farther.
    near = ndimage.binary_dilation(truth, np.ones((3, 3), bool), iterations=7)
    assert (det.mask & ~near).sum() / det.mask.sum() < 0.01


def test_edges_method_flags_almost_nothing_without_change():
    b, _, truth = _rgb_pair(0.0)
    rng = np.random.default_rng(1)
    a = (1.2 * b - 15 + rng.normal(0, 4, b.shape)).astype(np.float32)  # gain, offset, noise
    opts = DetectOptions(method="edges")
    det = detect_arrays(
        b, a, np.ones(truth.shape, bool), band_names=RGB, pixel_area_m2=1.0, options=opts
    )
    assert det.mask.mean() < 0.001


def test_new_edges_see_an_outline_that_a_colour_change_of_the_scene_does_not_make():
    """A roof of the ground's own colour shows only by its outline; a non-linear change
    of colour over the whole scene (season, a different camera curve) makes no new edge."""
    rng = np.random.default_rng(3)
    size = 128
    yy, xx = np.mgrid[0:size, 0:size] / size
    ground = np.stack([0.3 + 0.2 * np.sin(6 * xx + k) * np.cos(4 * yy) for k in range(3)])
    before = ground + rng.normal(0, 0.01, ground.shape)
    after = ground**1.6 + rng.normal(0, 0.01, ground.shape)  # a non-linear colour change
    truth = np.zeros((size, size), bool)
    truth[50:66, 70:86] = True
    outline = truth & ~ndimage.binary_erosion(truth)
    after[:, outline] *= 0.3  # walls and eaves: a dark outline
    v = np.ones((size, size), bool)
    s = methods.score_edges(before.astype(np.float32), after.astype(np.float32), v, band_names=RGB)
    ring = ndimage.binary_dilation(outline, iterations=2)
    far = ~ndimage.binary_dilation(truth, iterations=8)
    assert np.median(s[ring]) > 2 * np.percentile(s[far], 99.9)
    # IR-MAD alone cannot: to it the darker outline is less change than the curve.
    chi2 = methods.SCORERS["irmad"](before.astype(np.float32), after.astype(np.float32), v)
    assert np.median(chi2[ring]) < np.percentile(chi2[far], 99.9)
