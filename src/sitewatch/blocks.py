"""Block-wise IR-MAD detection: rasters larger than memory, in horizontal strips.

An image pair too large for memory (a 12,000 × 12,000 orthophoto pair is 3.5 GB as
float32) is processed in strips of full rows, each read with a halo of rows so that
smoothing and co-registration see the same neighbourhood they would in memory:

0. **co-registration**: one global shift estimated on a central window (the whole
   image when it is small), applied to every strip;
1. **statistics** (pass over the data): per-band mean and variance of the valid
   pixels (Chan's parallel merge), the valid count of every strip, and, while the
   count is small, the pixels themselves;
2. **fit**: IR-MAD on the same sample of pixels an in-memory run draws
   (:func:`~sitewatch.detect.irmad.sample_ordinals`; a second pass gathers them
   when the image has more valid pixels than the sample);
3. **score** (pass): χ², P(no change) and the smoothed score of every strip, written
   to temporary tiled GeoTIFFs; the threshold rule runs on all valid scores, or on a
   fixed-size random sample of them when there are more;
4. **regions** (two passes over the scores): threshold, edge rule and opening per
   strip, 8-connected labels joined across strip edges by union-find, regions under
   the minimum mapping unit dropped, polygons traced per strip and dissolved across
   strip edges.

On inputs that fit in memory the result equals the in-memory path (same fit, same
threshold, same polygons); a test checks it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.features
from affine import Affine
from rasterio.windows import Window
from scipy import ndimage
from shapely.geometry import mapping, shape
from shapely.ops import unary_union

from sitewatch.aoi import AOI, geodesic_area_m2
from sitewatch.detect.cleanup import STRUCTURE_8
from sitewatch.detect.irmad import _CHUNK, irmad_fit, sample_ordinals
from sitewatch.detect.methods import band_roles, smooth_masked
from sitewatch.detect.run import COREG_ORDER, COREG_UPSAMPLE, DetectOptions, _disk
from sitewatch.detect.threshold import Threshold, threshold_scores
from sitewatch.errors import DataError, InputError
from sitewatch.grid import Grid, from_lonlat, to_lonlat
from sitewatch.prepare.coregister import apply_shift, coregister
from sitewatch.vectorize import _round_coords

__all__ = ["BlockResult", "detect_blockwise", "estimate_memory", "parse_size"]

IRMAD_SAMPLE = 200_000
"""Pixels IR-MAD is fitted on (as in memory)."""
THRESHOLD_SAMPLE = 2_000_000
"""Valid scores the threshold rule sees; all of them when there are fewer."""
COREG_WINDOW = 2048
"""Side of the central window the global co-registration shift is estimated on."""
BLOCK_METHODS = ("irmad",)


def parse_size(text: str) -> int:
    """Bytes in ``"1.5GB"``, ``"800MB"``, ``"512M"`` or a plain number.

    Examples
    --------
    >>> parse_size("1.5GB"), parse_size("800MB"), parse_size("1024")
    (1610612736, 838860800, 1024)
    """
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if t and t[-1] in mult:
            return int(float(t[:-1]) * mult[t[-1]])
        return int(float(t))
    except ValueError:
        raise InputError(f"size {text!r} is not like 800MB or 2GB") from None


def gdal_cache_mb(max_memory: int) -> int:
    """GDAL block cache for a block-wise run: 1/8 of the budget, 32-256 MB.

    GDAL's default (5 % of RAM) alone can exceed a small budget.
    """
    return int(min(256, max(32, max_memory // 8 // (1 << 20))))


def estimate_memory(height: int, width: int, bands: int) -> int:
    """Bytes an in-memory detection of a (bands, height, width) pair needs, roughly.

    Two float32 stacks, the shifted copy, and about twelve (H, W) work arrays
    (scores, masks, smoothing buffers, labels). It is a lower bound: it leaves out
    the interpreter and libraries (about 110 MB) and the report's images. The whole
    ``detect`` process on the 2048 px benchmark pair (352 MB by this estimate)
    peaked at 972 MB.
    """
    return int(height) * int(width) * (12 * bands + 48)


@dataclass(frozen=True, eq=False)
class BlockResult:
    """What a block-wise run found; reads like a ChangeResult for summaries/manifests."""

    grid: Grid
    features: list[dict[str, Any]]
    threshold: Threshold
    diagnostics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def total_area_m2(self) -> float:
        """Summed area of the change polygons."""
        return float(sum(f["properties"]["area_m2"] for f in self.features))


class _Welford:
    """Per-band mean and M2 of valid pixels, merged strip by strip (Chan et al.)."""

    def __init__(self, n_bands: int) -> None:
        self.n = 0
        self.mean = np.zeros(n_bands)
        self.m2 = np.zeros(n_bands)

    def add(self, bands: list[np.ndarray]) -> None:
        """Merge one strip: a 1-D array of valid values per band (one at a time in float64)."""
        nb = bands[0].size if bands else 0
        if nb == 0:
            return
        mean_b = np.empty(len(bands))
        m2_b = np.empty(len(bands))
        for i, v in enumerate(bands):
            x = v.astype(np.float64)
            mean_b[i] = x.mean()
            x -= mean_b[i]
            m2_b[i] = float(np.dot(x, x))
        n = self.n + nb
        delta = mean_b - self.mean
        self.mean = self.mean + delta * nb / n
        self.m2 = self.m2 + m2_b + delta**2 * self.n * nb / n
        self.n = n

    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.n, 1))


class _UnionFind:
    def __init__(self) -> None:
        self.parent = np.zeros(1, dtype=np.int64)

    def grow(self, n: int) -> None:
        old = self.parent.size
        if n > old:
            self.parent = np.concatenate([self.parent, np.arange(old, n, dtype=np.int64)])

    def find(self, a: int) -> int:
        p = self.parent
        root = a
        while p[root] != root:
            root = int(p[root])
        while p[a] != root:
            p[a], a = root, int(p[a])
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def roots(self) -> np.ndarray:
        for i in range(self.parent.size):
            self.find(i)
        return self.parent


class _Pair:
    """The two images on the analysis grid, readable by rows."""

    def __init__(self, bsrc: Any, asrc: Any, names: list[str], grid: Grid, aoi: AOI | None):
        self.b, self.a, self.names, self.grid = bsrc, asrc, names, grid
        self.aoi_shape = None if aoi is None else from_lonlat(aoi.geometry, grid.crs)

    def sub(self, r0: int, r1: int, c0: int = 0, c1: int | None = None) -> Grid:
        g = self.grid
        c1 = g.width if c1 is None else c1
        return Grid(g.crs, g.transform @ Affine.translation(c0, r0), c1 - c0, r1 - r0)

    def read(
        self, r0: int, r1: int, c0: int = 0, c1: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(before, after, valid) of rows r0:r1 (and columns c0:c1)."""
        g = self.sub(r0, r1, c0, c1)
        sb = self.b.read(g, bands=self.names)
        sa = self.a.read(g, bands=self.names)
        valid = sb.valid & sa.valid
        if self.aoi_shape is not None:
            inside = rasterio.features.rasterize(
                [(self.aoi_shape, 1)],
                out_shape=g.shape,
                transform=g.transform,
                fill=0,
                dtype="uint8",
            ).astype(bool)
            valid &= inside
        return sb.data, sa.data, valid


def _strips(height: int, rows: int, halo: int) -> Iterator[tuple[int, int, int, int]]:
    """(core r0, core r1, read r0, read r1) for strips of ``rows`` rows."""
    for r0 in range(0, height, rows):
        r1 = min(height, r0 + rows)
        yield r0, r1, max(0, r0 - halo), min(height, r1 + halo)


def _temp_raster(path: Path, grid: Grid, dtype: str, nodata: float | None) -> Any:
    return rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=grid.width,
        height=grid.height,
        count=1,
        dtype=dtype,
        crs=grid.crs,
        transform=grid.transform,
        nodata=nodata,
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="DEFLATE",
        predictor=3 if dtype.startswith("float") else 2,
        BIGTIFF="IF_SAFER",
    )


def _to_cog(src: Path, dst: Path) -> None:
    from rasterio.shutil import copy as rio_copy

    rio_copy(src, dst, driver="COG", compress="DEFLATE", BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS")


def detect_blockwise(
    bsrc: Any,
    asrc: Any,
    names: list[str],
    grid: Grid,
    workdir: Path,
    *,
    aoi: AOI | None = None,
    options: DetectOptions | None = None,
    max_memory: int = 2 << 30,
) -> BlockResult:
    """Run IR-MAD detection strip by strip and write ``score.tif``/``mask.tif`` to ``workdir``.

    Parameters
    ----------
    bsrc, asrc : source objects
        With ``read(grid, bands=...)`` (e.g. :class:`~sitewatch.sources.LocalSource`).
    names : list of str
        Bands to use (in both).
    grid : Grid
        Analysis grid.
    workdir : Path
        Folder receiving ``score.tif`` and ``mask.tif`` (COGs) and temporary files.
    aoi : AOI, optional
        Pixels outside it are unobserved.
    options : DetectOptions
        ``method`` must be ``"irmad"``; no ``normalize``.
    max_memory : int
        Bytes the strips may use (the strip height follows from it).

    Returns
    -------
    BlockResult
    """
    opts = options or DetectOptions(method="irmad")
    if opts.method not in BLOCK_METHODS:
        raise InputError(
            f"method {opts.method!r} needs the whole image in memory; use --method irmad for "
            "block-wise processing of large rasters, or raise --max-memory"
        )
    if opts.normalize:
        raise InputError("--normalize is not available block-wise; drop it or raise --max-memory")
    if grid.crs is None:
        raise InputError(
            "block-wise processing needs georeferenced images; raise --max-memory for these"
        )
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    pair = _Pair(bsrc, asrc, names, grid, aoi)
    h, w = grid.shape
    nb = len(names)
    diagnostics: dict[str, Any] = {"options": opts.as_dict(), "blockwise": True}

    # 0. Co-registration on a central window.
    t = time.perf_counter()
    shift = (0.0, 0.0)
    applied = False
    if opts.coregister:
        wh, ww = min(h, COREG_WINDOW), min(w, COREG_WINDOW)
        r0, c0 = (h - wh) // 2, (w - ww) // 2
        b, a, v = pair.read(r0, r0 + wh, c0, c0 + ww)
        roles = band_roles(names, nb)
        i = roles.get("nir", roles.get("red"))
        ref = b[i] if i is not None else b.mean(axis=0)
        mov = a[i] if i is not None else a.mean(axis=0)
        try:
            res = coregister(ref, mov, v, upsample=COREG_UPSAMPLE)
            info = res.as_dict()
            applied, shift = bool(res.applied), tuple(res.shift)
        except ValueError as err:
            info = {"applied": False, "flagged": False, "note": f"skipped: {err}"}
        if (wh, ww) != (h, w):
            info["window"] = [int(c0), int(r0), int(ww), int(wh)]
        diagnostics["coregistration"] = info
        del b, a, v, ref, mov
    timings["coregister"] = time.perf_counter() - t

    # Strip height from the memory budget.
    halo = math.ceil(4 * opts.smooth) + math.ceil(abs(shift[0])) + 2
    halo += int(opts.opening) + 1
    # Per pixel of a strip: before/after float32 and their uint8 reads, the shifted
    # copy and its nearest-fill indices, chi2/p/score float32, smoothing float64 x2.
    row_bytes = w * (24 * nb + 96)
    rows = max(32, int(max_memory * 0.6 // row_bytes) - 2 * halo)
    rows = min(rows, h)
    diagnostics["strip_rows"] = rows
    diagnostics["halo_rows"] = halo

    def aligned(r0: int, r1: int, a0: int, a1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b, a, v = pair.read(a0, a1)
        if applied:
            a, ok = apply_shift(a, v, shift, order=COREG_ORDER)
            a = np.nan_to_num(a, nan=0.0).astype(np.float32)
            v = v & ok
        return b, a, v

    # 1. Statistics, valid counts, and the pixels while they are few.
    t = time.perf_counter()
    stats = _Welford(2 * nb)
    counts: list[int] = []
    kept: list[np.ndarray] = []
    n_kept = 0
    all_kept = True
    for r0, r1, a0, a1 in _strips(h, rows, halo):
        b, a, v = aligned(r0, r1, a0, a1)
        k0, k1 = r0 - a0, r0 - a0 + (r1 - r0)
        vc = v[k0:k1]
        values = [b[i, k0:k1][vc] for i in range(nb)] + [a[i, k0:k1][vc] for i in range(nb)]
        stats.add(values)
        count = int(vc.sum())
        counts.append(count)
        if all_kept and n_kept + count <= IRMAD_SAMPLE:  # while few: keep, no second read
            kept.append(np.stack(values).astype(np.float64))
            n_kept += count
        else:
            all_kept = False  # too many: the sample is gathered in a second pass
            kept = []
        del b, a, v, values
    n_valid = stats.n
    if n_valid < max(2 * nb + 1, 64):
        raise DataError(f"only {n_valid} pixels are observed in both images")
    mu, sd = stats.mean, stats.std()
    for i in range(2 * nb):
        if not sd[i] > 1e-12 * max(abs(mu[i]), 1.0):
            raise DataError(f"band {names[i % nb]} is constant over the valid pixels")
    timings["pass_stats"] = time.perf_counter() - t

    # 2. The IR-MAD fit on the in-memory path's sample.
    t = time.perf_counter()
    ords = sample_ordinals(n_valid, IRMAD_SAMPLE, 0)
    if all_kept:
        zfit = np.concatenate(kept, axis=1)[:, ords]
    else:
        zfit = _gather_ordinals(aligned, h, rows, halo, counts, ords, nb)
    del kept
    fit = irmad_fit(zfit, mu, sd)
    del zfit
    diagnostics["irmad"] = {
        "rho": [round(float(r), 8) for r in fit.rho],
        "iterations": fit.iterations,
        "converged": fit.converged,
        "n_valid": n_valid,
        "n_fit": int(ords.size),
    }
    timings["fit"] = time.perf_counter() - t

    # 3. Scores to temporary rasters; the threshold sample.
    t = time.perf_counter()
    score_tmp, pix_tmp, p_tmp = (workdir / f".{n}.tmp.tif" for n in ("score", "pixel", "pnc"))
    thr_ords = _sparse_ordinals(n_valid, THRESHOLD_SAMPLE, 1)
    thr_vals = np.empty(thr_ords.size, dtype=np.float32)
    seen = 0
    j = 0
    with (
        _temp_raster(score_tmp, grid, "float32", float("nan")) as ds_s,
        _temp_raster(pix_tmp, grid, "float32", float("nan")) as ds_p,
        _temp_raster(p_tmp, grid, "float32", float("nan")) as ds_n,
    ):
        for r0, r1, a0, a1 in _strips(h, rows, halo):
            b, a, v = aligned(r0, r1, a0, a1)
            pix = np.zeros(v.shape, dtype=np.float32)
            pnc = np.full(v.shape, np.nan, dtype=np.float32)
            flat = np.flatnonzero(v)
            bb, aa = b.reshape(nb, -1), a.reshape(nb, -1)
            for s0 in range(0, flat.size, _CHUNK):
                idx = flat[s0 : s0 + _CHUNK]
                z = np.concatenate([bb[:, idx], aa[:, idx]]).astype(np.float64)
                _, chi2_v, p_v = fit.apply(z)
                pix.reshape(-1)[idx] = chi2_v
                pnc.reshape(-1)[idx] = p_v
            sm = smooth_masked(pix, v, opts.smooth) if opts.smooth > 0 else pix
            k0, k1 = r0 - a0, r0 - a0 + (r1 - r0)
            core_v = v[k0:k1]
            core_s = np.where(core_v, sm[k0:k1], np.nan).astype(np.float32)
            win = Window(0, r0, w, r1 - r0)
            ds_s.write(core_s, 1, window=win)
            ds_p.write(np.where(core_v, pix[k0:k1], np.nan).astype(np.float32), 1, window=win)
            ds_n.write(pnc[k0:k1], 1, window=win)
            vals = core_s[core_v]  # row-major order of this strip's valid pixels
            hi = seen + vals.size
            while j < thr_ords.size and thr_ords[j] < hi:
                k = j
                while k < thr_ords.size and thr_ords[k] < hi:
                    k += 1
                thr_vals[j:k] = vals[thr_ords[j:k] - seen]
                j = k
            seen = hi
    timings["pass_score"] = time.perf_counter() - t

    thr = threshold_scores(
        thr_vals,
        rule=opts.threshold_rule,
        value=opts.threshold,
        dof=nb,
        p=opts.chi2_p,
        k=opts.k,
        floor=None,
    )
    del thr_vals
    min_px = opts.min_pixels(grid.pixel_area_m2)

    # 4a. Threshold, edge rule, opening; labels joined across strips.
    t = time.perf_counter()
    ohalo = int(opts.opening) + 1

    def raw_mask(ds_s: Any, ds_p: Any, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        a0, a1 = max(0, r0 - ohalo), min(h, r1 + ohalo)
        win = Window(0, a0, w, a1 - a0)
        sc = ds_s.read(1, window=win)
        valid = np.isfinite(sc)
        raw = valid & (np.nan_to_num(sc, nan=-np.inf) > thr.value)
        if opts.smooth > 0 and opts.edge > 0:
            px = np.nan_to_num(ds_p.read(1, window=win), nan=-np.inf)
            raw &= px > opts.edge * thr.value
        if opts.opening:
            raw = ndimage.binary_opening(raw, structure=_disk(opts.opening))
        k0 = r0 - a0
        return raw[k0 : k0 + (r1 - r0)], sc[k0 : k0 + (r1 - r0)]

    uf = _UnionFind()
    sizes: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
    offsets: list[int] = []
    next_id = 1
    prev_last: np.ndarray | None = None
    n_raw = 0
    with rasterio.open(score_tmp) as ds_s, rasterio.open(pix_tmp) as ds_p:
        for r0, r1, _, _ in _strips(h, rows, 0):
            raw, _ = raw_mask(ds_s, ds_p, r0, r1)
            n_raw += int(raw.sum())
            lab, n = ndimage.label(raw, structure=STRUCTURE_8)
            offsets.append(next_id - 1)
            uf.grow(next_id + n)
            sizes.append(
                ndimage.sum_labels(np.ones(lab.shape), lab, np.arange(1, n + 1)).astype(np.int64)
                if n
                else np.zeros(0, dtype=np.int64)
            )
            glob = np.where(lab > 0, lab + (next_id - 1), 0)
            if prev_last is not None and n:
                first = glob[0]
                for dc in (-1, 0, 1):
                    p_ = prev_last[max(0, -dc) : w - max(0, dc)]
                    q_ = first[max(0, dc) : w - max(0, -dc)]
                    both = (p_ > 0) & (q_ > 0)
                    for x, y in set(zip(p_[both].tolist(), q_[both].tolist(), strict=True)):
                        uf.union(x, y)
            prev_last = glob[-1].copy()
            next_id += n
    roots = uf.roots()
    size_by_id = np.concatenate(sizes)
    root_size = np.bincount(roots[: size_by_id.size], weights=size_by_id)
    keep_root = root_size >= max(min_px, 1)
    keep_root[0] = False
    n_regions_all = int(np.count_nonzero(root_size[1:] > 0))
    removed = n_regions_all - int(np.count_nonzero(keep_root & (root_size > 0)))
    timings["pass_label"] = time.perf_counter() - t

    # 4b. Final labels: mask.tif, per-region statistics, polygons.
    t = time.perf_counter()
    mask_tmp = workdir / ".mask.tmp.tif"
    parts: dict[int, list[Any]] = {}
    n_px: dict[int, int] = {}
    s_sum: dict[int, float] = {}
    s_max: dict[int, float] = {}
    p_sum: dict[int, float] = {}
    p_n: dict[int, int] = {}
    n_changed = 0
    with (
        rasterio.open(score_tmp) as ds_s,
        rasterio.open(pix_tmp) as ds_p,
        rasterio.open(p_tmp) as ds_n,
        _temp_raster(mask_tmp, grid, "uint8", 255) as ds_m,
    ):
        for (r0, r1, _, _), off in zip(_strips(h, rows, 0), offsets, strict=True):
            raw, sc = raw_mask(ds_s, ds_p, r0, r1)
            lab, n = ndimage.label(raw, structure=STRUCTURE_8)
            glob = np.where(lab > 0, roots[np.where(lab > 0, lab + off, 0)], 0)
            glob = np.where(keep_root[glob], glob, 0).astype(np.int32)
            out = (glob > 0).astype(np.uint8)
            out[~np.isfinite(sc)] = 255
            ds_m.write(out, 1, window=Window(0, r0, w, r1 - r0))
            n_changed += int((glob > 0).sum())
            if not (glob > 0).any():
                continue
            pn = ds_n.read(1, window=Window(0, r0, w, r1 - r0))
            ids = np.unique(glob[glob > 0])
            cnt = ndimage.sum_labels(np.ones(glob.shape), glob, ids)
            ssum = ndimage.sum_labels(np.nan_to_num(sc), glob, ids)
            smax = ndimage.maximum(np.nan_to_num(sc), glob, ids)
            pfin = np.isfinite(pn)
            psum = ndimage.sum_labels(np.where(pfin, pn, 0), glob, ids)
            pcnt = ndimage.sum_labels(pfin & (glob > 0), glob, ids)
            for i, gid in enumerate(ids.tolist()):
                n_px[gid] = n_px.get(gid, 0) + int(cnt[i])
                s_sum[gid] = s_sum.get(gid, 0.0) + float(ssum[i])
                s_max[gid] = max(s_max.get(gid, -np.inf), float(smax[i]))
                p_sum[gid] = p_sum.get(gid, 0.0) + float(psum[i])
                p_n[gid] = p_n.get(gid, 0) + int(pcnt[i])
            tr = grid.transform @ Affine.translation(0, r0)
            for geom, value in rasterio.features.shapes(
                glob, mask=glob > 0, connectivity=8, transform=tr
            ):
                parts.setdefault(int(value), []).append(shape(geom))
    timings["pass_regions"] = time.perf_counter() - t

    t = time.perf_counter()
    features = []
    for gid, geoms in parts.items():
        geom = unary_union(geoms)
        ll = to_lonlat(geom, grid.crs)
        c = ll.centroid
        features.append(
            {
                "type": "Feature",
                "geometry": _round_coords(mapping(ll), 7),
                "properties": {
                    "area_m2": round(geodesic_area_m2(ll), 1),
                    "area_px": n_px[gid],
                    "score_mean": round(s_sum[gid] / n_px[gid], 4),
                    "score_max": round(s_max[gid], 4),
                    "centroid": [round(c.x, 7), round(c.y, 7)],
                    "bbox": [round(v, 7) for v in ll.bounds],
                    "p_no_change": round(p_sum[gid] / p_n[gid], 4) if p_n.get(gid) else None,
                    "clear_fraction": None,
                },
            }
        )
    features.sort(key=lambda f: -f["properties"]["area_m2"])
    for i, f in enumerate(features, start=1):
        f["id"] = f"c{i:03d}"
        f["properties"] = {"id": f["id"], **f["properties"]}
    timings["vectorize"] = time.perf_counter() - t

    t = time.perf_counter()
    _to_cog(score_tmp, workdir / "score.tif")
    _to_cog(mask_tmp, workdir / "mask.tif")
    for p in (score_tmp, pix_tmp, p_tmp, mask_tmp):
        p.unlink(missing_ok=True)
    timings["write_rasters"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_start

    area_px = h * w
    pixel_area = grid.pixel_area_m2
    diagnostics.update(
        {
            "threshold": thr.as_dict(),
            "threshold_sample": int(thr_ords.size),
            "gdal_cache_mb": gdal_cache_mb(max_memory),
            "changed_pixels_raw": n_raw,
            "changed_pixels": n_changed,
            "regions_removed_below_mmu": removed,
            "min_area_m2": round(min_px * pixel_area, 1),
            "min_area_px": min_px,
            "bands": names,
            "valid_pixels": n_valid,
            "valid_fraction": round(n_valid / max(area_px, 1), 4),
            "aoi_coverage": 1.0,
            "unobserved_m2": round((area_px - n_valid) * pixel_area, 1),
            "n_polygons": len(features),
            "changed_area_m2": round(float(sum(f["properties"]["area_m2"] for f in features)), 1),
        }
    )
    return BlockResult(
        grid, features, thr, diagnostics, {}, {k: round(v, 4) for k, v in timings.items()}
    )


def _sparse_ordinals(n: int, k: int, seed: int) -> np.ndarray:
    """``k`` sorted ordinals of ``range(n)`` drawn with replacement (all of them if n <= k).

    ``Generator.choice(n, k, replace=False)`` permutes all ``n`` when ``k`` is a few
    per cent of it: 1.2 GB for a 12,000 px square. A threshold needs a sample of the
    score distribution, and a few repeated pixels (about k² / 2n) do not change it.
    """
    if n <= k:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.integers(0, n, size=k))


def _gather_ordinals(
    aligned: Any,
    h: int,
    rows: int,
    halo: int,
    counts: list[int],
    ords: np.ndarray,
    nb: int,
) -> np.ndarray:
    """The pixels at valid-pixel ordinals ``ords`` (sorted), read strip by strip."""
    out = np.empty((2 * nb, ords.size))
    seen = 0
    j = 0
    for (r0, r1, a0, a1), n in zip(_strips(h, rows, halo), counts, strict=True):
        hi = seen + n
        k = int(np.searchsorted(ords, hi))
        if k > j:
            b, a, v = aligned(r0, r1, a0, a1)
            k0, k1 = r0 - a0, r0 - a0 + (r1 - r0)
            vc = v[k0:k1]
            idx = ords[j:k] - seen
            out[:nb, j:k] = b[:, k0:k1][:, vc][:, idx]
            out[nb:, j:k] = a[:, k0:k1][:, vc][:, idx]
            j = k
        seen = hi
    return out
