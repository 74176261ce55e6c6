"""Regions handled one window each give exactly the whole block's outlines and counts."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from scipy import ndimage
from shapely.ops import unary_union

import sitewatch.vectorize as vectorize


def _both(monkeypatch, fn, *args):
    monkeypatch.setattr(vectorize, "_SPARSE_SHARE", float("inf"))  # one window per region
    windows = fn(*args)
    monkeypatch.setattr(vectorize, "_SPARSE_SHARE", -1.0)  # the whole block
    whole = fn(*args)
    return windows, whole


@pytest.mark.parametrize("seed", range(40))
def test_windows_equal_the_whole_block(monkeypatch, seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(20, 120, 2))
    field = ndimage.gaussian_filter(rng.random((h, w)), rng.uniform(0.5, 3.0))
    lab, n = ndimage.label(field > rng.uniform(0.5, 0.7), structure=np.ones((3, 3)))
    # ids in no particular order, with gaps, as a block's final labels are
    ids = np.r_[0, rng.permutation(n) + 1 + int(rng.integers(0, 5))]
    lab = ids[lab].astype(np.int32)
    observed = rng.random((h, w)) < 0.8
    c = int(rng.integers(1, 5))
    core = slice(int(rng.integers(0, 6)), h - int(rng.integers(0, 6)))

    got, want = _both(monkeypatch, vectorize._context, lab, core, observed, c)
    assert got.keys() == want.keys()
    for key in want:
        assert np.array_equal(got[key], want[key]), key

    t = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 4_000_000.0)
    got, want = _both(monkeypatch, vectorize._trace, lab[core], t)
    assert got.keys() == want.keys()
    for k in want:
        assert unary_union(got[k]).simplify(0).wkt == unary_union(want[k]).simplify(0).wkt
