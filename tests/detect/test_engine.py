"""The block engine: blocks, threads and one block give one result, for every method."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import reference_scores
from affine import Affine
from shapely.geometry import shape

from sitewatch.detect import methods
from sitewatch.detect.engine import block_plan
from sitewatch.detect.options import METHODS
from sitewatch.detect.run import DetectOptions, detect_arrays
from sitewatch.grid import Grid

S2 = ["B02", "B03", "B04", "B08"]
H, W = 333, 217  # not a multiple of the 64-row block


def _pair(seed: int = 5, bands: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.normal(0.2, 0.05, (bands, H // 3 + 1, W // 3 + 1)).repeat(3, 1).repeat(3, 2)
    before = (base[:, :H, :W] + rng.normal(0, 0.01, (bands, H, W))).astype(np.float32)
    after = (before * 1.05 + 0.01 + rng.normal(0, 0.01, (bands, H, W))).astype(np.float32)
    after[:, 58:75, 30:60] += 0.25  # straddles the edge between rows 63 and 64
    after[:, 120:200, 100:104] -= 0.12  # a long thin strip across two edges
    after[:, 250:262, 150:170] += 0.3
    after[2, 300:310, 10:40] += 0.2
    valid = np.ones((H, W), bool)
    valid[:, 200:] = False  # an unobserved edge
    valid[140:150, 20:30] = False  # a cloud
    return before, after, valid


GRID = Grid("EPSG:32652", Affine(10.0, 0, 500000, 0, -10.0, 4400000), W, H)


def _run(method: str, *, threads: int, rows: int | None, **kw: object):
    b, a, v = _pair()
    opts = DetectOptions(method=method, coregister=False, min_area_m2=100.0, **kw)  # type: ignore[arg-type]
    return detect_arrays(
        b,
        a,
        v,
        band_names=S2,
        options=opts,
        grid=GRID,
        evidence=True,
        threads=threads,
        block_rows=rows,
    )


def _same(one, many) -> None:
    np.testing.assert_array_equal(one.valid, many.valid)
    np.testing.assert_allclose(one.score, many.score, rtol=1e-5, atol=1e-6)
    assert one.threshold.value == pytest.approx(many.threshold.value, rel=1e-6)
    np.testing.assert_array_equal(one.mask, many.mask)
    assert one.diagnostics["changed_pixels"] == many.diagnostics["changed_pixels"]
    assert (
        one.diagnostics["regions_removed_below_mmu"]
        == many.diagnostics["regions_removed_below_mmu"]
    )
    # Seams neither split nor duplicate a polygon: the same polygons, the same numbers.
    assert len(one.features) == len(many.features)
    for f, g in zip(one.features, many.features, strict=True):
        pf, pg = f["properties"], g["properties"]
        assert pf["area_px"] == pg["area_px"]
        assert pf["area_m2"] == pytest.approx(pg["area_m2"], abs=0.2)
        assert pf["score_max"] == pytest.approx(pg["score_max"], rel=1e-4)
        assert pf["clear_fraction"] == pg["clear_fraction"]
        assert shape(f["geometry"]).symmetric_difference(shape(g["geometry"])).area < 1e-10  # ~1 m²


@pytest.mark.parametrize("method", METHODS)
def test_blocks_equal_one_block_for_every_method(method):
    one = _run(method, threads=1, rows=None)
    assert one.diagnostics["engine"]["blocks"] == 1
    blocks = _run(method, threads=1, rows=64)
    assert blocks.diagnostics["engine"]["blocks"] == 6
    assert one.features, "the planted changes are found"
    _same(one, blocks)


@pytest.mark.parametrize("method", ["construction", "irmad", "index"])
def test_thread_pool_equals_one_thread(method):
    one = _run(method, threads=1, rows=64)
    pool = _run(method, threads=2, rows=64)
    np.testing.assert_array_equal(one.score, pool.score)
    np.testing.assert_array_equal(one.mask, pool.mask)
    assert [f["geometry"] for f in one.features] == [f["geometry"] for f in pool.features]


def test_a_region_across_a_seam_is_one_polygon():
    det = _run("construction", threads=2, rows=64)
    # The planted roof at rows 58-75 crosses the edge between blocks 0 and 1.
    point = {"type": "Point", "coordinates": _lonlat(45, 66)}
    hits = [f for f in det.features if shape(f["geometry"]).intersects(shape(point))]
    assert len(hits) == 1
    assert hits[0]["properties"]["area_px"] >= 17 * 30 * 0.8


def _lonlat(col: float, row: float) -> tuple[float, float]:
    from pyproj import Transformer

    x, y = GRID.transform @ (col, row)
    lon, lat = Transformer.from_crs("EPSG:32652", "EPSG:4326", always_xy=True).transform(x, y)
    return lon, lat


def test_opening_and_share_rule_blockwise():
    for kw in ({"opening": 1}, {"threshold_rule": "share"}, {"smooth": 0.0}):
        _same(_run("cva", threads=1, rows=None, **kw), _run("cva", threads=2, rows=64, **kw))


@pytest.mark.parametrize("method", sorted(reference_scores.SCORES))
def test_engine_scores_are_the_whole_array_formulas(method):
    """One block of the engine computes what the whole-array formulas compute."""
    b, a, v = _pair()
    det = detect_arrays(
        b,
        a,
        v,
        band_names=S2,
        options=DetectOptions(method=method, coregister=False, smooth=0.0),
        threads=1,
    )
    ref = reference_scores.SCORES[method](b, a, v, S2)
    np.testing.assert_allclose(det.pixel_score, ref, rtol=1e-4, atol=1e-5)
    # The public scorers are the engine.
    np.testing.assert_allclose(
        methods.score_change(b, a, v, method=method, band_names=S2), ref, rtol=1e-4, atol=1e-5
    )


def test_construction_is_the_whole_array_construction_score():
    b, a, v = _pair()
    opts = DetectOptions(method="construction", coregister=False)
    det = detect_arrays(b, a, v, band_names=S2, options=opts)
    smoothed, pixel = reference_scores.construction(b, a, v, S2, 2.0)
    np.testing.assert_allclose(det.score, smoothed, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(det.pixel_score, pixel, rtol=1e-4, atol=1e-4)
    mine = methods.construction_scores(b, a, v, band_names=S2, smooth=2.0)
    np.testing.assert_allclose(mine[0], smoothed, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mine[1], pixel, rtol=1e-4, atol=1e-4)


def test_block_plan_covers_every_row_once():
    for h in (1, 63, 64, 65, 333, 4097):
        for threads in (1, 2, 8):
            for rows in (None, 1, 64, 100):
                plan = block_plan(h, threads=threads, rows=rows)
                assert plan[0][0] == 0 and plan[-1][1] == h
                assert all(p[1] == q[0] for p, q in itertools.pairwise(plan))
                assert all((r1 - r0) % 64 == 0 for r0, r1 in plan[:-1])


def test_a_source_that_reads_a_row_differently_does_not_break_the_samples():
    """Sample ordinals past a block's valid count (a row read differently) are dropped."""
    from sitewatch.detect.engine import ArrayReader, ArraySink, run_engine

    b, a, v = _pair()

    class Flaky(ArrayReader):
        calls = 0

        def read(self, r0, r1):
            bb, aa, vv = super().read(r0, r1)
            Flaky.calls += 1
            if Flaky.calls > 6:  # after the statistics pass: a row comes back unobserved
                vv = vv.copy()
                vv[: min(3, vv.shape[0])] = False
            return bb, aa, vv

    shape = v.shape
    res = run_engine(
        Flaky(b, a, v),
        band_names=S2,
        pixel_area_m2=100.0,
        options=DetectOptions(coregister=False),
        sinks=lambda name, dtype, fill: ArraySink(shape, dtype, fill),
        threads=1,
        block_rows=64,
    )
    assert res.diagnostics["changed_pixels"] > 0


def test_seam_components_are_scipys():
    """The engine's union-find numbers components as scipy's connected_components does."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from sitewatch.detect.engine import _components

    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 60))
        parts = [rng.integers(0, n, size=(2, int(rng.integers(1, 10)))) for _ in range(5)]
        e = np.concatenate(parts, axis=1)
        g = coo_matrix((np.ones(e.shape[1], dtype=np.int8), (e[0], e[1])), shape=(n, n))
        np.testing.assert_array_equal(
            _components(n, parts), connected_components(g, directed=False)[1]
        )
    np.testing.assert_array_equal(_components(4, []), np.arange(4))
