"""Co-registration: planted sub-pixel shifts on synthetic and real (OSCD) pairs."""

from __future__ import annotations

import functools
import importlib
import json
import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from conftest import SHARED, needs_shared
from sitewatch.prepare.coregister import CoregResult, apply_shift, coregister

OSCD = SHARED / "data" / "oscd" / "Onera Satellite Change Detection dataset - Images"
NOISE = 0.05  # noise std as a fraction of the scene std


def _scene(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Sentinel-2-like texture: smooth random field, a slow gradient and sharp 'buildings'."""
    rng = np.random.default_rng(seed)
    h, w = shape
    img = ndi.gaussian_filter(rng.normal(size=shape), 1.5)
    img /= img.std()
    img += 10 * ndi.gaussian_filter(rng.normal(size=shape), 20)  # fields, relief
    for _ in range(h * w // 1500):
        y, x = rng.integers(0, h - 12), rng.integers(0, w - 12)
        dy, dx = rng.integers(3, 12, size=2)
        img[y : y + dy, x : x + dx] += rng.uniform(1.5, 4.0)
    return ndi.gaussian_filter(img, 0.7)  # sensor blur


def _pair(
    shape: tuple[int, int], move: tuple[float, float], *, seed: int = 0, margin: int = 16
) -> tuple[np.ndarray, np.ndarray, float]:
    """Reference and moving crops of one larger scene, the moving content displaced by ``move``.

    A feature at (y, x) in the reference is at (y + move[0], x + move[1]) in the moving
    image, so the shift that aligns moving onto reference is -move. The sub-pixel
    displacement is an exact (Fourier) shift of the larger scene, then cropped, so the
    image edges are not periodic. Returns also the noise std of each image.
    """
    h, w = shape
    big = _scene((h + 2 * margin, w + 2 * margin), seed)
    moved = np.fft.ifft2(ndi.fourier_shift(np.fft.fft2(big), move)).real
    crop = (slice(margin, margin + h), slice(margin, margin + w))
    sigma = NOISE * float(big.std())
    rng = np.random.default_rng(seed + 1)
    ref = big[crop] + rng.normal(0, sigma, shape)
    mov = moved[crop] + rng.normal(0, sigma, shape)
    return ref, mov, sigma


def _rms(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b)[mask] ** 2)))


# Magnitudes 0.3, 1.7 and 4.2 px along each axis, with both signs.
MOVES = [(0.3, 0.0), (0.0, -0.3), (0.0, 1.7), (-1.7, 4.2), (4.2, -0.3), (-4.2, -1.7)]


@pytest.mark.parametrize("move", MOVES)
def test_recovers_planted_shift_within_a_tenth_of_a_pixel(move):
    ref, mov, _ = _pair((300, 300), move, seed=int(10 * (move[0] + 2 * move[1])) % 97)
    res = coregister(ref, mov)
    print(f"\nplanted content move {move}: estimated shift {res.shift}; {res.note}")
    assert res.applied
    assert res.method == "global"  # 300 px < 2 * 256: no tie points
    assert np.allclose(res.shift, (-move[0], -move[1]), atol=0.1)
    assert res.residual_before == pytest.approx(math.hypot(*move), abs=0.1)
    assert res.residual_after < 0.1
    assert not res.flagged


def test_sign_convention_moves_a_feature_back():
    ref = np.zeros((128, 128))
    ref[50:56, 60:66] = 1.0  # a bright roof at rows 50-55, columns 60-65
    ref = ndi.gaussian_filter(ref, 1.0) + _scene((128, 128), 3) * 0.01
    mov = ndi.shift(ref, (2.0, -1.0), order=3, mode="nearest")  # roof moves 2 down, 1 left
    res = coregister(ref, mov)
    assert res.shift == pytest.approx((-2.0, 1.0), abs=0.05)
    out, _ = apply_shift(mov, np.ones(mov.shape, bool), res.shift)
    peak = np.unravel_index(np.nanargmax(ndi.gaussian_filter(np.nan_to_num(out), 2)), out.shape)
    assert peak == np.unravel_index(np.argmax(ndi.gaussian_filter(ref, 2)), ref.shape)


@pytest.mark.parametrize("order", [3, 1])
def test_apply_shift_with_the_result_aligns_to_the_noise_level(order):
    ref, mov, sigma = _pair((300, 300), (-1.7, 4.2), seed=5)
    valid = np.ones(ref.shape, bool)
    res = coregister(ref, mov, valid)
    out, ok = apply_shift(mov, valid, res.shift, order=order)
    noise_rms = math.sqrt(2) * sigma  # two independent noisy images
    before, after = _rms(ref, mov, ok), _rms(ref, out, ok)
    print(f"\norder {order}: RMS {before:.3f} -> {after:.3f} (noise {noise_rms:.3f})")
    assert after < 0.2 * before
    assert after < (1.1 if order == 3 else 1.5) * noise_rms
    assert ok.sum() > 0.95 * ok.size


def test_already_aligned_pair_is_kept():
    ref, mov, _ = _pair((300, 300), (0.0, 0.0), seed=11)
    res = coregister(ref, mov)
    assert not res.applied
    assert res.shift == (0.0, 0.0)
    assert res.residual_after == res.residual_before < 0.01
    assert res.note.startswith("kept the original")
    assert not res.flagged


def test_unrelated_images_are_flagged_and_left_alone():
    # Two different places: no correlation peak, so no residual can be claimed.
    ref, mov = _scene((300, 300), 21), _scene((300, 300), 22)
    res = coregister(ref, mov)
    assert res.flagged
    assert not res.applied and res.shift == (0.0, 0.0)
    assert math.isnan(res.residual_after)
    assert "no reliable correlation peak" in res.note
    doc = json.loads(json.dumps(res.as_dict(), allow_nan=False))
    assert doc["residual_after"] is None and doc["flagged"] is True


def test_local_tie_points_refine_a_large_scene():
    ref, mov, _ = _pair((512, 512), (1.7, -4.2), seed=8)
    res = coregister(ref, mov)
    assert res.method == "global+local"
    assert res.n_tiepoints == 9  # 3 x 3 windows of 256 px, step 128
    assert res.n_tiepoints_used >= 4
    assert np.allclose(res.shift, (-1.7, 4.2), atol=0.1)
    assert res.local_residual < 0.1
    assert not res.flagged


def test_rotation_is_flagged_by_the_tie_points():
    # A 0.5 degree rotation moves the corners ~1.5 px in opposite directions: no single
    # translation fixes it. The global residual looks fine; the tie points do not.
    big = _scene((612, 612), 4)
    rotated = ndi.rotate(big, 0.5, reshape=False, order=3)
    res = coregister(big[50:562, 50:562], rotated[50:562, 50:562])
    assert res.n_tiepoints_used >= 4
    assert res.residual_after < 0.5
    assert res.local_residual > 0.5
    assert res.flagged
    assert "translation cannot remove" in res.note


def test_invalid_pixels_are_ignored():
    ref, mov, _ = _pair((300, 300), (0.3, -1.7), seed=13)
    valid = np.ones(ref.shape, bool)
    valid[:90, :120] = False  # a nodata corner holding garbage in the moving image
    mov = mov.copy()
    mov[:90, :120] = 1e4
    ref[200:210, 10:20] = np.nan  # non-finite pixels are invalid too
    res = coregister(ref, mov, valid)
    assert np.allclose(res.shift, (-0.3, 1.7), atol=0.1)


@pytest.mark.parametrize(
    ("ref_shape", "mov_shape", "valid", "match"),
    [
        ((3, 100, 100), (3, 100, 100), None, "must be 2-D"),
        ((100, 100), (100, 120), None, "moving shape"),
        ((50, 200), (50, 200), None, "smaller than min_size"),
        ((100, 100), (100, 100), "few", "valid in both images"),
        ((100, 100), (100, 100), "shape", "valid mask"),
    ],
)
def test_bad_input_raises(ref_shape, mov_shape, valid, match):
    rng = np.random.default_rng(0)
    ref, mov = rng.normal(size=ref_shape), rng.normal(size=mov_shape)
    mask = None
    if valid == "few":
        mask = np.zeros(ref_shape, bool)
        mask[:40] = True  # 40 % valid
    elif valid == "shape":
        mask = np.ones((99, 100), bool)
    with pytest.raises(ValueError, match=match):
        coregister(ref, mov, mask)


def test_inputs_are_not_mutated():
    ref, mov, _ = _pair((300, 300), (1.7, 0.3), seed=2)
    ref = ref.astype(np.float32)
    valid = np.ones(ref.shape, bool)
    valid[:5] = False
    copies = [a.copy() for a in (ref, mov, valid)]
    res = coregister(ref, mov, valid)
    stack = np.stack([mov, 2 * mov])
    stack_copy = stack.copy()
    apply_shift(stack, valid, res.shift)
    for a, b in zip((ref, mov, valid), copies, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(stack, stack_copy)


@pytest.mark.parametrize(
    ("shift", "order", "rows", "cols"),
    [
        ((0.0, 2.3), 1, slice(None), slice(0, 3)),  # content moves right: left strip
        ((0.0, 2.3), 3, slice(None), slice(0, 4)),  # cubic reaches one pixel further
        ((-1.5, 0.0), 1, slice(-2, None), slice(None)),  # moves up: bottom strip
        ((0.0, -2.0), 3, slice(None), slice(-2, None)),  # integer: exactly 2 columns
        ((3.0, 0.0), 1, slice(0, 3), slice(None)),  # moves down: top strip
    ],
)
def test_apply_shift_invalidates_the_border_strip(shift, order, rows, cols):
    img = _scene((40, 50), 1)
    out, ok = apply_shift(img, np.ones(img.shape, bool), shift, order=order)
    expected = np.ones(img.shape, bool)
    expected[rows, cols] = False
    np.testing.assert_array_equal(ok, expected)
    assert out.dtype == np.float32
    assert np.isnan(out[~ok]).all() and np.isfinite(out[ok]).all()


def test_apply_shift_stack_and_invalid_pixels():
    img = _scene((40, 50), 2)
    stack = np.stack([img, -img, img + 1])
    valid = np.ones(img.shape, bool)
    valid[20, 25] = False
    stack[:, 20, 25] = np.nan
    out, ok = apply_shift(stack, valid, (0.5, 1.0), order=1)
    assert out.shape == stack.shape
    # The bad pixel lands at (20.5, 26): rows 20-21 of column 26 touch it.
    assert not ok[20, 26] and not ok[21, 26] and ok[19, 26] and ok[22, 26]
    assert ok[20, 27] and ok[20, 25]
    np.testing.assert_allclose(out[1][ok], -out[0][ok], rtol=1e-5, atol=1e-5)
    # An integer shift is exact.
    out, ok = apply_shift(stack[0], valid, (2.0, -3.0))
    np.testing.assert_allclose(out[2:, :-3][ok[2:, :-3]], img[:-2, 3:][ok[2:, :-3]], atol=1e-5)


def test_apply_shift_rejects_bad_arguments():
    img = np.zeros((10, 10))
    with pytest.raises(ValueError, match="valid mask"):
        apply_shift(img, np.ones((9, 10), bool), (0.0, 0.0))
    with pytest.raises(ValueError, match="finite"):
        apply_shift(img, np.ones((10, 10), bool), (np.nan, 0.0))
    with pytest.raises(ValueError, match="expected"):
        apply_shift(np.zeros(10), np.ones(10, bool), (0.0, 0.0))


def test_result_as_dict_is_json_ready():
    ref, mov, _ = _pair((128, 128), (0.3, -1.7), seed=3)
    res = coregister(ref, mov)
    doc = json.loads(json.dumps(res.as_dict(), allow_nan=False))
    assert doc["shift"] == pytest.approx([-0.3, 1.7], abs=0.1)
    assert doc["applied"] is True and doc["method"] == "global"
    assert "applied" in doc["note"] and "→" in doc["note"]
    with pytest.raises(ValueError, match="method"):
        CoregResult((0.0, 0.0), 0.0, 0.0, False, False, "warp", 0, 0, "")  # type: ignore[arg-type]


# --- Real Sentinel-2 pairs (OSCD, ../shared; skipped when absent) -------------------------


@functools.cache
def _oscd_b08(city: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """B08 of both dates on the imgs_1 grid, and the joint valid mask (cached: read-only)."""
    from sitewatch.sources.local import open_local, read_scene

    src1 = open_local(OSCD / city / "imgs_1")
    src2 = open_local(OSCD / city / "imgs_2")
    s1 = read_scene(src1, src1.grid, bands=["B08"])
    s2 = read_scene(src2, src1.grid, bands=["B08"])
    out = s1.data[0], s2.data[0], s1.valid & s2.valid
    for a in out:
        a.flags.writeable = False
    return out


@functools.cache
def _oscd_own(city: str) -> CoregResult:
    return coregister(*_oscd_b08(city))


@needs_shared("data", "oscd")
@pytest.mark.shared
def test_recovers_a_planted_shift_on_a_real_pair():
    planted = (1.7, -1.7)
    ref, mov, valid = _oscd_b08("nantes")  # 522 x 582: the tie-point path runs
    own = _oscd_own("nantes")
    own_shift = np.array(own.shift) if own.applied else np.zeros(2)
    moved, moved_ok = apply_shift(mov, valid, planted)  # content moves by +planted
    res = coregister(ref, moved, moved_ok)
    assert res.applied and res.method == "global+local"
    recovered = own_shift - np.array(res.shift)
    print(f"\nnantes planted {planted}: recovered {recovered.round(3)}; {res.note}")
    assert np.allclose(recovered, planted, atol=0.1)


@needs_shared("data", "oscd")
@pytest.mark.shared
def test_report_real_pair_misregistration():
    for city in ("paris", "bercy", "rennes", "bordeaux", "aguasclaras", "nantes"):
        res = _oscd_own(city)
        shape = _oscd_b08(city)[0].shape
        print(f"\n{city:12s} {shape}: {res.note} (r = {res.correlation:.2f})")
        assert not math.isnan(res.residual_before)


def test_a_shift_that_does_not_lower_the_residual_is_not_applied(monkeypatch):
    # Break the local refinement on purpose: five tie points agreeing on a wrong 0.8 px.
    # (The package re-exports the function `coregister`, which shadows the module name.)
    mod = importlib.import_module("sitewatch.prepare.coregister")
    monkeypatch.setattr(mod, "_tiepoints", lambda *a, **k: np.full((5, 2), 0.8))
    ref, mov, _ = _pair((300, 300), (0.0, 0.0), seed=17)
    res = coregister(ref, mov, window=128)
    assert res.method == "global+local"
    assert not res.applied and res.shift == (0.0, 0.0)
    assert res.residual_after == res.residual_before
    assert res.note.startswith("kept the original: residual did not fall")


@pytest.mark.parametrize("upsample", [1, 7, 20, 100])
def test_phase_correlation_is_scikit_images(upsample):
    """The half-spectrum, two-stage search finds scikit-image's full-spectrum, one-stage
    peak and correlation (even and odd widths: the real FFT's last column differs)."""
    from skimage.registration import phase_cross_correlation

    from sitewatch.prepare.coregister import phase_correlation

    rng = np.random.default_rng(upsample)
    for h, w in ((64, 64), (96, 97), (128, 128), (65, 127)):
        scene = ndi.gaussian_filter(rng.normal(size=(h + 20, w + 20)), rng.uniform(0.7, 3))
        a = scene[10:-10, 10:-10]
        b = ndi.shift(scene, rng.uniform(-4, 4, 2), order=3)[10:-10, 10:-10]
        b = b + rng.normal(0, rng.uniform(0.0, 0.5), a.shape)
        a, b = a - a.mean(), b - b.mean()
        want, error, _ = phase_cross_correlation(a, b, upsample_factor=upsample, normalization=None)
        shift, corr = phase_correlation(a, b, upsample)
        np.testing.assert_allclose(shift, want, rtol=0, atol=1e-9)
        assert corr == pytest.approx(np.sqrt(max(0.0, 1.0 - error**2)), abs=1e-12)


def _field_and_roof() -> tuple[np.ndarray, np.ndarray]:
    """A bare scene whose only features are a field (before) and a roof (after), 40 px
    apart: phase correlation pairs one with the other."""
    rng = np.random.default_rng(7)
    ground = rng.normal(0.2, 0.03, (90, 110))
    before = ground + rng.normal(0, 0.01, ground.shape)
    before[20:40, 20:40] = 0.5
    after = ground + rng.normal(0, 0.01, ground.shape)
    after[60:70, 70:80] = 0.55
    return before, after


def test_a_shift_longer_than_max_shift_is_not_applied_and_flagged():
    before, after = _field_and_roof()
    free = coregister(before, after)
    assert free.applied and math.hypot(*free.shift) > 50  # the false match
    capped = coregister(before, after, max_shift=6.0)
    assert not capped.applied and capped.shift == (0.0, 0.0) and capped.flagged
    assert "longer than the 6 px" in capped.note
    # a real shift within the cap is still applied
    rng = np.random.default_rng(1)
    scene = ndi.gaussian_filter(rng.normal(size=(128, 128)), 1.5)
    res = coregister(scene, ndi.shift(scene, (1.0, -2.0), order=3), max_shift=6.0)
    assert res.applied and np.allclose(res.shift, (-1.0, 2.0), atol=0.1)
    with pytest.raises(ValueError, match="max_shift"):
        coregister(scene, scene, max_shift=0.0)


def test_the_chain_caps_the_shift_in_metres():
    """60 m (at least 3 px): 6 px at 10 m, 120 px at 0.5 m; recorded in the manifest."""
    from sitewatch.detect.run import align_after, max_shift_px

    assert (max_shift_px(100.0), max_shift_px(900.0), max_shift_px(0.25)) == (6.0, 3.0, 120.0)
    before, after = _field_and_roof()
    b, a = (np.repeat(x[None], 3, axis=0).astype(np.float32) for x in (before, after))
    valid = np.ones(before.shape, bool)
    out, _, info = align_after(b, a, valid, None, pixel_area_m2=100.0)
    assert out is a and not info["applied"] and info["flagged"] and info["max_shift_px"] == 6.0
    _, _, info = align_after(b, a, valid, None, pixel_area_m2=0.25)
    assert info["applied"] and info["max_shift_px"] == 120.0


def test_half_spectrum_helpers_are_the_full_spectrum():
    from sitewatch.prepare.coregister import _energy, _full_spectrum

    rng = np.random.default_rng(3)
    for shape in ((8, 8), (7, 9), (6, 5), (1, 4)):
        x = rng.normal(size=shape)
        full = np.fft.fft2(x)
        half = np.fft.rfft2(x)
        np.testing.assert_allclose(_full_spectrum(half, shape[1]), full, rtol=0, atol=1e-12)
        assert _energy(half, shape[1]) == pytest.approx(float(np.sum(np.abs(full) ** 2)), rel=1e-12)
