"""log10 P(no change) stays finite and exact where P itself underflows."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sitewatch.pipeline import chi2_log10_sf


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 6, 13])
def test_log10_sf_matches_scipy_and_never_underflows(dof):
    x = np.concatenate([np.linspace(0, 50, 501), np.geomspace(50, 1e5, 400)])
    mine = chi2_log10_sf(x, dof)
    ref = stats.chi2.logsf(x, dof) / np.log(10)
    finite = np.isfinite(ref)
    np.testing.assert_allclose(mine[finite], ref[finite], rtol=1e-9, atol=1e-9)
    assert np.isfinite(mine).all()  # scipy gives -inf for the largest χ²
    assert (np.diff(mine) <= 1e-12).all()  # stronger change, smaller P
