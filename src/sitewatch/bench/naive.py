"""A straightforward numpy IR-MAD change detector: the baseline of ``bench speed``.

The same steps as ``sitewatch detect --method irmad --no-coregister``, written the
obvious way: both images read whole as float64; IR-MAD fitted on **every** pixel with
``np.cov``-style weighted covariances and the textbook generalised eigenproblems
(Canty 2019, ch. 9) until the canonical correlations settle; χ² of the standardised
MAD variates; the same Gaussian smoothing (σ = 2 px), precision-first threshold
(median + 6.5 robust σ), edge rule and minimum mapping unit; 8-connected regions
labelled with ``scipy.ndimage.label`` and traced with ``rasterio.features.shapes``
into a GeoJSON file in the image CRS.

It writes only that GeoJSON (no lon/lat reprojection, rasters, report or manifest),
so it does less than sitewatch; the benchmark prints the ratio anyway.

Run: ``python -m sitewatch.bench.naive BEFORE AFTER OUT.geojson``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.features
from scipy import integrate, linalg, ndimage, special

__all__ = ["naive_detect", "naive_irmad"]


def naive_irmad(
    x: np.ndarray, y: np.ndarray, *, max_iter: int = 50, tol: float = 1e-4
) -> tuple[np.ndarray, np.ndarray, int]:
    """Textbook IR-MAD on all pixels.

    Parameters
    ----------
    x, y : (B, H, W) ndarray
        Before and after images.
    max_iter, tol : int, float
        Most fits; stop when no canonical correlation moves more than ``tol``.

    Returns
    -------
    chi2 : (H, W) float64 ndarray
        Sum of squared standardised MAD variates.
    rho : (B,) float64 ndarray
        Canonical correlations, ascending.
    iterations : int
    """
    nb = x.shape[0]
    shape = x.shape[1:]
    z = np.concatenate([x.reshape(nb, -1), y.reshape(nb, -1)]).astype(np.float64)
    n = z.shape[1]
    w = np.ones(n)
    # Gaussian consistency of the P(no change) weights, as sitewatch applies it.
    kappa = integrate.quad(lambda s: special.chdtrc(nb, s) ** 2, 0, np.inf, limit=200)[0] / nb
    rho_old = np.full(nb, np.inf)
    chi2 = np.zeros(n)
    rho = np.zeros(nb)
    it = 0
    for it in range(1, max_iter + 1):
        mean = (z * w).sum(axis=1) / w.sum()
        zc = z - mean[:, None]
        s = (zc * w) @ zc.T / w.sum()
        s11, s22, s12 = s[:nb, :nb], s[nb:, nb:], s[:nb, nb:]
        # S12 S22^-1 S21 a = rho^2 S11 a, with a^T S11 a = 1 (eigh normalises so).
        lam, a = linalg.eigh(s12 @ np.linalg.inv(s22) @ s12.T, s11)
        rho = np.sqrt(np.clip(lam, 0.0, 1.0))
        b = np.linalg.inv(s22) @ s12.T @ a
        b /= np.sqrt(np.diag(b.T @ s22 @ b))
        sign = np.sign(np.diag(a.T @ s12 @ b))
        b *= np.where(sign == 0, 1.0, sign)
        mad = a.T @ zc[:nb] - b.T @ zc[nb:]
        var = 2.0 * (1.0 - rho) / (kappa if it > 1 else 1.0)
        chi2 = (mad**2 / np.maximum(var, 1e-12)[:, None]).sum(axis=0)
        w = special.chdtrc(nb, chi2)
        if np.max(np.abs(rho - rho_old)) < tol:
            break
        rho_old = rho
    return chi2.reshape(shape), rho, it


def naive_detect(
    before: str | Path,
    after: str | Path,
    out: str | Path,
    *,
    smooth: float = 2.0,
    k: float = 6.5,
    edge: float = 0.5,
    min_area_m2: float = 50.0,
) -> dict[str, Any]:
    """Read, IR-MAD, χ², threshold, clean up and write polygons; return a summary."""
    with rasterio.open(before) as ds:
        x = ds.read().astype(np.float64)
        transform, crs = ds.transform, ds.crs
        pixel_area = abs(transform.a * transform.e)
    with rasterio.open(after) as ds:
        y = ds.read().astype(np.float64)
    chi2, rho, iterations = naive_irmad(x, y)
    score = ndimage.gaussian_filter(chi2, smooth, mode="nearest")
    med = np.median(score)
    thr = med + k * 1.4826 * np.median(np.abs(score - med))
    mask = (score > thr) & (chi2 > edge * thr)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel())
    min_px = max(int(np.ceil(min_area_m2 / pixel_area - 1e-9)), 5)
    keep = sizes >= min_px
    keep[0] = False
    mask = keep[labels]
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    index = np.arange(1, n + 1)
    means = ndimage.mean(score, labels, index) if n else np.zeros(0)
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    features = []
    for geom, value in rasterio.features.shapes(
        labels.astype(np.int32), mask=mask, connectivity=8, transform=transform
    ):
        v = int(value)
        props = {
            "region": v,
            "area_m2": float(counts[v] * pixel_area),
            "score_mean": float(means[v - 1]),
        }
        features.append({"type": "Feature", "geometry": geom, "properties": props})
    doc = {"type": "FeatureCollection", "crs": str(crs), "features": features}
    Path(out).write_text(json.dumps(doc), encoding="utf-8")
    return {
        "threshold": float(thr),
        "rho": [float(r) for r in rho],
        "iterations": iterations,
        "regions": int(n),
        "changed_pixels": int(mask.sum()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sitewatch.bench.naive BEFORE AFTER OUT.geojson``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3:
        sys.stderr.write("usage: python -m sitewatch.bench.naive BEFORE AFTER OUT.geojson\n")
        return 2
    print(json.dumps(naive_detect(*args)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
