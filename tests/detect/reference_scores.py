"""Whole-array reference formulas of the scores: the oracle the block engine is tested against.

These are the scorers as they were written before the engine (each band standardised
over the whole image at once with ``methods.standardise``, medians over every valid
pixel with ``methods.robust_z``); the package scores only through
:mod:`sitewatch.detect.engine`.
"""

from __future__ import annotations

import numpy as np

from sitewatch.detect.irmad import irmad
from sitewatch.detect.methods import (
    S2_10M,
    WATER_NDWI,
    _indices,
    _nd,
    _sigmoid,
    band_roles,
    new_edges,
    robust_z,
    smooth_masked,
    standardise,
)

Arr = np.ndarray


def _finish(score: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = np.asarray(score, dtype=np.float32).copy()
    out[~valid] = 0.0
    return out


def cva(b: Arr, a: Arr, v: Arr, names: list[str] | None = None) -> Arr:
    d = standardise(a, v).astype(np.float64) - standardise(b, v)
    return _finish(np.sqrt((d**2).sum(axis=0) / d.shape[0]), v)


def diff(b: Arr, a: Arr, v: Arr, names: list[str] | None = None) -> Arr:
    return _finish(np.abs(standardise(a, v) - standardise(b, v)).mean(axis=0), v)


def ratio(b: Arr, a: Arr, v: Arr, names: list[str] | None = None) -> Arr:
    bf, af = b.astype(np.float64), a.astype(np.float64)
    eps = np.maximum(np.median(np.abs(bf[:, v]), axis=1), 1e-6)[:, None, None] * 1e-3
    lr = np.log((np.abs(af) + eps) / (np.abs(bf) + eps))
    z = robust_z(lr, v, floor=0.01).astype(np.float64)
    return _finish(np.sqrt((z**2).mean(axis=0)), v)


def index(b: Arr, a: Arr, v: Arr, names: list[str] | None = None) -> Arr:
    roles = band_roles(names, b.shape[0])
    ib, ia = _indices(b, roles), _indices(a, roles)
    if not ib:
        ib = {"brightness": b.astype(np.float64).mean(axis=0)}
        ia = {"brightness": a.astype(np.float64).mean(axis=0)}
    z = robust_z(np.stack([ia[k] - ib[k] for k in ib]), v).astype(np.float64)
    return _finish(np.sqrt((z**2).mean(axis=0)), v)


def structural(
    b: np.ndarray, a: np.ndarray, v: np.ndarray, names: list[str] | None = None
) -> np.ndarray:
    upper = [n.upper() for n in names] if names is not None else []
    struct = [upper.index(s) for s in S2_10M if s in upper]
    if len(struct) < 2:
        struct = list(range(b.shape[0]))
    magnitude = cva(b[struct], a[struct], v).astype(np.float64)
    roles = band_roles(names, b.shape[0])
    if {"green", "nir"} <= roles.keys():
        both_water = np.minimum(
            _nd(b, roles["green"], roles["nir"]), _nd(a, roles["green"], roles["nir"])
        )
        magnitude *= 1.0 - _sigmoid(both_water, WATER_NDWI, 0.05)
    return _finish(magnitude, v)


def _varying(b: np.ndarray, a: np.ndarray, v: np.ndarray) -> list[int]:
    return [i for i in range(b.shape[0]) if np.ptp(b[i][v]) > 0 and np.ptp(a[i][v]) > 0]


def mad(b: Arr, a: Arr, v: Arr, names: list[str] | None = None) -> Arr:
    keep = _varying(b, a, v)
    return _finish(irmad(b[keep], a[keep], v, max_iter=1).chi2, v)


def irmad_chi2(
    b: np.ndarray, a: np.ndarray, v: np.ndarray, names: list[str] | None = None
) -> np.ndarray:
    keep = _varying(b, a, v)
    return _finish(irmad(b[keep], a[keep], v).chi2, v)


def construction(
    b: np.ndarray, a: np.ndarray, v: np.ndarray, names: list[str] | None, smooth: float
) -> tuple[np.ndarray, np.ndarray]:
    """(smoothed, pixel) construction score."""
    struct = structural(b, a, v, names)
    spectral = np.sqrt(mad(b, a, v))

    def agree(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        zx = np.clip(robust_z(x, v), 0, None)
        zy = np.clip(robust_z(y, v), 0, None)
        return _finish(np.sqrt(zx * zy), v)

    pixel = agree(struct, spectral)
    if smooth <= 0:
        return pixel, pixel
    return agree(smooth_masked(struct, v, smooth), smooth_masked(spectral, v, smooth)), pixel


def edges(b: Arr, a: Arr, v: Arr, names: list[str] | None = None) -> Arr:
    """Robust z of the IR-MAD χ² plus robust z of the visible luminance's new edges."""
    roles = band_roles(names, b.shape[0])
    vis = [roles[r] for r in ("red", "green", "blue") if r in roles] or _varying(b, a, v)

    def lum(x: Arr) -> Arr:
        y = standardise(x[vis], v).astype(np.float64).mean(axis=0)
        return y / y[v].std()

    grown = _finish(new_edges(lum(b), lum(a)), v)
    z = robust_z(np.stack([irmad_chi2(b, a, v), grown]), v).astype(np.float64)
    return _finish(z[0] + z[1], v)


SCORES = {
    "cva": cva,
    "diff": diff,
    "ratio": ratio,
    "index": index,
    "structural": structural,
    "mad": mad,
    "irmad": irmad_chi2,
    "edges": edges,
}


def learned(b: Arr, a: Arr, v: Arr, names: list[str] | None = None) -> Arr:
    """P(change) of the shipped model over its twelve views, each view's robust z."""
    from scipy import ndimage

    from sitewatch.detect.learned import CONTEXT_SIGMA, TEXTURE_SIGMA, load_model

    roles = band_roles(names, b.shape[0])
    keep = _varying(b, a, v)
    vis = [roles[r] for r in ("red", "green", "blue") if r in roles] or keep

    def lum(x: Arr) -> Arr:
        y = standardise(x[vis], v).astype(np.float64).mean(axis=0)
        return y / y[v].std()

    def chroma(x: Arr) -> Arr:
        c = np.clip(x[vis].astype(np.float64), 0, None)
        eps = 0.01 * abs(sum(float(x[i][v].astype(np.float64).mean()) for i in vis))
        return c / (c.sum(axis=0) + eps + 1e-12)

    def local_std(x: Arr) -> Arr:
        m = ndimage.gaussian_filter(x, TEXTURE_SIGMA)
        return np.sqrt(np.maximum(ndimage.gaussian_filter(x * x, TEXTURE_SIGMA) - m * m, 0))

    lb, la = lum(b), lum(a)
    chi2 = irmad_chi2(b, a, v)
    change = cva(b[keep], a[keep], v)
    dlum = _finish(la - lb, v)
    colour = _finish(np.sqrt(((chroma(a) - chroma(b)) ** 2).sum(axis=0)), v)
    grown = _finish(new_edges(lb, la), v)
    texture = _finish(np.log(local_std(la) + 0.05) - np.log(local_std(lb) + 0.05), v)
    context = [smooth_masked(x, v, CONTEXT_SIGMA) for x in (chi2, change, dlum, grown)]
    views = [chi2, change, dlum, _finish(la, v), _finish(lb, v), colour, grown, texture, *context]
    z = robust_z(np.stack(views), v).astype(np.float64)
    return _finish(load_model().probability(list(z)), v)


SCORES["learned"] = learned
