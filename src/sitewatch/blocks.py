"""Rasters larger than memory: the detection engine reading and writing by rows.

An image pair too large for memory (a 12,000 × 12,000 orthophoto pair is 3.5 GB as
float32) runs through the same engine as an in-memory pair
(:func:`~sitewatch.detect.engine.run_engine`), with two differences:

* the images are read from their sources block by block, each block with a halo of
  rows, and the co-registration shift (estimated once, on a central window of at
  most :data:`~sitewatch.detect.options.COREG_WINDOW` pixels, as in memory) is applied
  to every block as it is read;
* the engine's scores, labels and mask go to temporary tiled GeoTIFFs in the
  output folder instead of arrays; ``score.tif`` and ``mask.tif`` are copied from
  them as COGs.

The block height follows from the memory budget; the result does not depend on it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.features
from affine import Affine

from sitewatch._units import estimate_memory, parse_size
from sitewatch.aoi import AOI
from sitewatch.detect.options import COREG_ORDER, DetectOptions
from sitewatch.detect.threshold import Threshold
from sitewatch.errors import DataError
from sitewatch.grid import Grid, from_lonlat
from sitewatch.prepare.coregister import apply_shift

__all__ = [
    "BlockResult",
    "SourceReader",
    "block_rows",
    "detect_blockwise",
    "estimate_memory",
    "parse_size",
]


def gdal_cache_mb(max_memory: int) -> int:
    """GDAL block cache for a block-wise run: 1/8 of the budget, 32-256 MB.

    GDAL's default (5 % of RAM) alone can exceed a small budget.
    """
    return int(min(256, max(32, max_memory // 8 // (1 << 20))))


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


class SourceReader:
    """Two sources on the analysis grid, read by rows, the after one shifted.

    Each read takes ``ceil(|dy|) + 2`` more rows either side, so the shifted rows
    equal those of the whole image shifted at once. Reads are serialised (a source
    may hold one open dataset); the engine's threads work on what was read.
    """

    def __init__(
        self,
        bsrc: Any,
        asrc: Any,
        names: list[str],
        grid: Grid,
        aoi: AOI | None,
        shift: tuple[float, float] | None = None,
    ) -> None:
        self.b, self.a, self.names, self.grid = bsrc, asrc, names, grid
        self.shape = grid.shape
        self.bands = len(names)
        self.shift = shift
        self._halo = 0 if shift is None else math.ceil(abs(shift[0])) + 2
        self._lock = threading.Lock()
        self.aoi_shape = None if aoi is None else from_lonlat(aoi.geometry, grid.crs)

    def sub(self, r0: int, r1: int, c0: int = 0, c1: int | None = None) -> Grid:
        """The grid of rows r0:r1 (and columns c0:c1)."""
        g = self.grid
        c1 = g.width if c1 is None else c1
        return Grid(
            g.crs,
            g.transform @ Affine.translation(c0, r0),
            c1 - c0,
            r1 - r0,
            pixel_size_m=g.pixel_size_m,
        )

    def read_raw(
        self, r0: int, r1: int, c0: int = 0, c1: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(before, after, valid) of rows r0:r1 (and columns c0:c1), not shifted."""
        g = self.sub(r0, r1, c0, c1)
        with self._lock:
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

    def read(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(before, after, valid) of rows r0:r1, the after image shifted."""
        if self.shift is None:
            return self.read_raw(r0, r1)
        h = self.shape[0]
        a0, a1 = max(0, r0 - self._halo), min(h, r1 + self._halo)
        b, a, v = self.read_raw(a0, a1)
        a, ok = apply_shift(a, v, self.shift, order=COREG_ORDER)
        a = np.nan_to_num(a, nan=0.0).astype(np.float32)
        k = slice(r0 - a0, r1 - a0)
        return b[:, k], a[:, k], (v & ok)[k]


def block_rows(width: int, bands: int, *, max_memory: int, threads: int) -> int:
    """Rows per block so that the threads' blocks fit about half the memory budget.

    About ``40 B + 150`` bytes a pixel of a block in flight (the two stacks as
    float32 and float64, the views, the smoothing buffers, the labels).
    """
    per_row = width * (40 * bands + 150)
    # The engine rounds this up to whole 64-row chunks. Rounding down instead (64 rows
    # instead of 128 on a 12,000 px wide pair) left the peak RSS where it was (1.29 vs
    # 1.33 GB: the blocks are not the largest part) and took 36 % longer.
    return max(1, int(max_memory * 0.5 // (max(threads, 1) * per_row)))


def _coregistration(
    reader: SourceReader, names: list[str], pixel_area_m2: float
) -> tuple[tuple[float, float] | None, dict[str, Any]]:
    """The shift on the central window, as an in-memory run estimates it."""
    from sitewatch.detect.run import central_window, estimate_shift

    h, w = reader.shape
    r0, c0, wh, ww = central_window(h, w)
    b, a, v = reader.read_raw(r0, r0 + wh, c0, c0 + ww)
    shift, info = estimate_shift(b, a, v, names, pixel_area_m2=pixel_area_m2)
    if (wh, ww) != (h, w):
        info["window"] = [int(c0), int(r0), int(ww), int(wh)]
    return shift, info


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
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> BlockResult:
    """Run the detection engine on two sources, writing ``score.tif``/``mask.tif`` to ``workdir``.

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
        Any method; no ``normalize``.
    max_memory : int
        Bytes the blocks may use (the block height follows from it).
    threads : int, optional
        Threads of the block pool (default every core).
    progress : callable, optional
        Receives one line as each stage starts (co-registration, normalisation, the
        engine's passes).

    Returns
    -------
    BlockResult

    Raises
    ------
    DataError
        Too few observed pixels, constant bands.
    """
    from sitewatch.detect.engine import RasterSink, default_threads, run_engine

    opts = options or DetectOptions()
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    threads = threads or default_threads()
    reader = SourceReader(bsrc, asrc, names, grid, aoi)
    diagnostics: dict[str, Any] = {"options": opts.as_dict(), "blockwise": True}
    t = time.perf_counter()
    if opts.coregister:
        if progress is not None:
            progress("co-registration on the central window")
        shift, diagnostics["coregistration"] = _coregistration(reader, names, grid.pixel_area_m2)
        reader = SourceReader(bsrc, asrc, names, grid, aoi, shift)
    timings["coregister"] = time.perf_counter() - t
    if opts.normalize:
        from sitewatch.prepare.normalize import NormalizedReader, normalize_sampled

        t = time.perf_counter()
        if progress is not None:
            progress("normalisation: fitted on a sample read by rows")
        try:
            norm = normalize_sampled(reader, band_names=names)
        except ValueError as err:
            raise DataError(f"cannot normalise these images: {err}") from err
        diagnostics["normalization"] = norm.as_dict()
        reader = NormalizedReader(reader, norm.fits)  # type: ignore[assignment]
        timings["normalize"] = time.perf_counter() - t

    made: list[RasterSink] = []

    def sink(name: str, dtype: str, fill: float) -> RasterSink:
        fill = float("nan") if name == "score" else fill
        s = RasterSink(workdir / f".{name}.tmp.tif", grid, dtype, fill)
        made.append(s)
        return s

    t = time.perf_counter()
    rows = block_rows(grid.width, len(names), max_memory=max_memory, threads=threads)
    try:
        res = run_engine(
            reader,
            band_names=names,
            pixel_area_m2=grid.pixel_area_m2,
            options=opts,
            sinks=sink,
            threads=threads,
            block_rows=rows,
            grid=grid,
            evidence=True,
            progress=progress,
        )
    except ValueError as err:
        raise DataError(f"cannot score these images: {err}") from err
    finally:
        for s in made:
            s.close()
    timings["engine"] = time.perf_counter() - t
    diagnostics.update(res.diagnostics)

    t = time.perf_counter()
    _to_cog(workdir / ".score.tmp.tif", workdir / "score.tif", floats=True)
    _to_cog(workdir / ".mask.tmp.tif", workdir / "mask.tif", floats=False)
    for s in made:
        s.path.unlink(missing_ok=True)
    timings["write_rasters"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_start

    h, w = grid.shape
    area_px = h * w
    n_valid = int(diagnostics["valid_pixels"])
    pixel_area = grid.pixel_area_m2
    features = res.features or []
    diagnostics.update(
        {
            "gdal_cache_mb": gdal_cache_mb(max_memory),
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
        grid, features, res.threshold, diagnostics, {}, {k: round(v, 4) for k, v in timings.items()}
    )


def _to_cog(src: Path, dst: Path, *, floats: bool) -> None:
    """Copy a temporary raster to a COG with the options of the in-memory run's COGs."""
    from rasterio.shutil import copy as rio_copy

    from sitewatch.report.write import cog_options

    with rasterio.open(src) as ds:
        width, height = ds.width, ds.height
    how = cog_options(floats=floats, width=width, height=height)
    rio_copy(src, dst, driver="COG", BIGTIFF="IF_SAFER", **how)
