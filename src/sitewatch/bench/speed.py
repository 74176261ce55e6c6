"""Speed benchmark: ``sitewatch detect --method irmad`` as a whole process, with ratios.

Every figure is a ratio against a baseline measured in the same run, on pairs of
synthetic 3-band 8-bit GeoTIFFs generated here:

- **OTB**: ``otbcli_MultivariateAlterationDetector`` (Debian ``otb-bin``) on the same
  files. It writes only the MAD variates (plain MAD, no iterations, no χ², threshold,
  polygons or report), so sitewatch does strictly more work. Skipped when absent.
- **naive numpy**: :mod:`sitewatch.bench.naive`, a straightforward implementation of
  the same steps (float64, IR-MAD on every pixel, χ², threshold, polygons).
- **profile**: where ``detect_change(..., method="irmad")`` + ``write_result`` spends
  its time (cProfile, in process), with what the code optimises.
- **scaling**: time, peak RSS and pixels/s per image size, relative to the smallest.
- **big**: two 12,000 × 12,000 images in block mode (``detect --max-memory``).
- **batch**: ``sitewatch batch`` with 1 vs 2 workers (hook; runs when it exists).

Each measured command runs as a subprocess under a fresh GNU ``/usr/bin/time`` (or a
tiny launcher when it is absent): wall time is ``time.perf_counter`` around it, peak
RSS and CPU time are the kernel's accounting of that one command (see
:func:`measure` for why not ``RUSAGE_CHILDREN`` or a plain ``wait4``). Medians of
``repeat`` runs are quoted; commands that are compared run in turn (A B A B ...)
and their ratio is the median of the per-round ratios, so a drift in machine speed
cancels.
"""

from __future__ import annotations

import contextlib
import cProfile
import functools
import importlib.metadata
import inspect
import json
import math
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from sitewatch._threads import launch_environment
from sitewatch.bench.defaults import BIG_SIZE, DEFAULT_SIZES

__all__ = [
    "DEFAULT_SIZES",
    "BenchCommandError",
    "Measurement",
    "SpeedOptions",
    "SyntheticPair",
    "format_speed",
    "measure",
    "planted_changes",
    "profile_detection",
    "run_speed",
    "synthetic_block",
    "write_synthetic_pair",
]

COMPARE_SIZE = 2048
"""Image side of the OTB / naive / profile comparisons (the closest requested size)."""
BIG_MIN_FREE_BYTES = 8 * 1024**3
BLOCK_MODE_MEMORY = "1GB"
BIG_TARGET_BYTES = int(1.5 * 1024**3)
TILE = 512
PIXEL_M = 1.0
CRS = "EPSG:32633"
ORIGIN = (400_000.0, 5_800_000.0)
GENERATOR = "sitewatch-bench-speed/1"
OTB_APP = "otbcli_MultivariateAlterationDetector"

# Land-cover classes of the synthetic scene: mean (R, G, B) and texture amplitude.
_CLASSES = np.array(
    [
        [62, 88, 52, 14],  # grass
        [138, 118, 92, 18],  # bare soil
        [44, 68, 40, 10],  # dark crop
        [150, 148, 142, 22],  # concrete / built
        [36, 52, 66, 4],  # water
        [118, 122, 80, 16],  # dry grass
    ],
    dtype=np.float32,
)
_ROAD = np.array([112, 110, 108], dtype=np.float32)
_ROOFS = np.array([[205, 92, 72], [228, 226, 218], [88, 112, 150], [60, 60, 64]], np.float32)
# Radiometric difference between the dates (after = gain * before + offset).
GAIN = np.array([1.10, 1.04, 0.94], dtype=np.float32)
OFFSET = np.array([-6.0, 4.0, 9.0], dtype=np.float32)
NOISE = 2.5
"""Sensor noise (DN, standard deviation) of each date."""


# --------------------------------------------------------------------------- synthetic data


def _hash01(iy: np.ndarray, ix: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic uniform [0, 1) value of integer lattice points (splitmix64)."""
    iy, ix = np.broadcast_arrays(iy, ix)
    h = iy.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    h ^= ix.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
    h ^= np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _value_noise(rows: np.ndarray, cols: np.ndarray, spacing: float, salt: int) -> np.ndarray:
    """Smooth value noise in [0, 1) on a lattice of ``spacing`` px, for any window."""
    ry, rx = rows / spacing, cols / spacing
    iy, ix = np.floor(ry).astype(np.int64), np.floor(rx).astype(np.int64)
    fy, fx = ry - iy, rx - ix
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    y0, x0 = int(iy.min()), int(ix.min())
    ly = np.arange(y0, int(iy.max()) + 2)
    lx = np.arange(x0, int(ix.max()) + 2)
    lat = _hash01(ly[:, None], lx[None, :], salt)
    jy, jx = iy - y0, ix - x0
    a, b = lat[np.ix_(jy, jx)], lat[np.ix_(jy, jx + 1)]
    c, d = lat[np.ix_(jy + 1, jx)], lat[np.ix_(jy + 1, jx + 1)]
    top = a + (b - a) * fx
    bot = c + (d - c) * fx
    return (top + (bot - top) * fy[:, None]).astype(np.float32)


def planted_changes(size: int, *, seed: int = 0) -> tuple[tuple[int, int, int, int], ...]:
    """New roofs planted in the after image: ``(row, col, height, width)`` in pixels.

    About one per 420 × 420 px (at least four), 16-48 px a side, away from the edges.
    """
    if size < 128:
        raise ValueError(f"size must be >= 128 px; got {size}")
    rng = np.random.default_rng([seed, size, 7])
    n = max(4, round(size * size / 420**2))
    hw = rng.integers(16, 49, size=(n, 2))
    rows = rng.integers(16, size - 16 - hw[:, 0])
    cols = rng.integers(16, size - 16 - hw[:, 1])
    return tuple(
        (int(r), int(c), int(h), int(w)) for r, c, (h, w) in zip(rows, cols, hw, strict=True)
    )


def synthetic_block(
    row0: int,
    col0: int,
    height: int,
    width: int,
    *,
    size: int,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """One window of the synthetic before and after images, (3, H, W) uint8 each.

    The scene (wavy land-cover parcels with per-class texture, a road grid; in the
    after image a per-band gain/offset and the roofs of :func:`planted_changes`) is a
    function of global pixel coordinates (hashed value noise), so windows join
    seamlessly and each needs memory proportional to its size only. Sensor noise is
    seeded by the window's origin: a window is reproduced exactly when asked for with
    the same origin and shape (the writer asks tile by tile).
    """
    rows = np.arange(row0, row0 + height, dtype=np.float64)
    cols = np.arange(col0, col0 + width, dtype=np.float64)
    s = seed * 1000
    warp_r = (_value_noise(rows, cols, 256.0, s + 1) - 0.5) * 90
    warp_c = (_value_noise(rows, cols, 256.0, s + 2) - 0.5) * 90
    pr = np.floor((rows[:, None] + warp_r) / 170.0).astype(np.int64)
    pc = np.floor((cols[None, :] + warp_c) / 170.0).astype(np.int64)
    cls = (_hash01(pr, pc, s + 3) * len(_CLASSES)).astype(np.intp)
    tex1 = (
        0.5 * _value_noise(rows, cols, 96.0, s + 4)
        + 0.3 * _value_noise(rows, cols, 24.0, s + 5)
        + 0.2 * _value_noise(rows, cols, 6.0, s + 6)
        - 0.5
    )
    tex2 = _value_noise(rows, cols, 12.0, s + 7) - 0.5
    props = _CLASSES[cls]  # (H, W, 4)
    amp = props[..., 3]
    ground = np.empty((3, height, width), dtype=np.float32)
    for b, (k1, k2) in enumerate(((1.0, 0.35), (0.9, -0.2), (0.75, 0.45))):
        ground[b] = props[..., b] + amp * (2.0 * k1 * tex1 + k2 * tex2)
    road = ((rows[:, None] + 0.5 * warp_r) % 700 < 7) | ((cols[None, :] + 0.5 * warp_c) % 900 < 6)
    ground[:, road] = _ROAD[:, None]

    rng = np.random.default_rng([seed, row0, col0])
    before = ground + rng.normal(0.0, NOISE, ground.shape).astype(np.float32)
    after = GAIN[:, None, None] * ground + OFFSET[:, None, None]
    after += rng.normal(0.0, NOISE, ground.shape).astype(np.float32)
    for i, (r, c, h, w) in enumerate(planted_changes(size, seed=seed)):
        r0, r1 = max(r, row0), min(r + h, row0 + height)
        c0, c1 = max(c, col0), min(c + w, col0 + width)
        if r0 >= r1 or c0 >= c1:
            continue
        roof = _ROOFS[i % len(_ROOFS)][:, None, None]
        patch = after[:, r0 - row0 : r1 - row0, c0 - col0 : c1 - col0]
        patch[:] = roof + 4.0 * tex2[None, r0 - row0 : r1 - row0, c0 - col0 : c1 - col0]
        patch += rng.normal(0.0, NOISE, patch.shape).astype(np.float32)
    to_u8 = np.uint8
    return (
        np.clip(np.rint(before), 0, 255).astype(to_u8),
        np.clip(np.rint(after), 0, 255).astype(to_u8),
    )


@dataclass(frozen=True)
class SyntheticPair:
    """A generated before/after pair of ``size`` × ``size`` 3-band uint8 GeoTIFFs."""

    before: Path
    after: Path
    size: int
    seed: int
    changes: tuple[tuple[int, int, int, int], ...]

    @property
    def pixels(self) -> int:
        """Pixels per image."""
        return self.size * self.size

    def truth(self) -> np.ndarray:
        """(size, size) bool mask of the planted changes (small sizes only)."""
        mask = np.zeros((self.size, self.size), dtype=bool)
        for r, c, h, w in self.changes:
            mask[r : r + h, c : c + w] = True
        return mask


def _profile(size: int) -> dict[str, Any]:
    return {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 3,
        "dtype": "uint8",
        "crs": CRS,
        "transform": Affine(PIXEL_M, 0.0, ORIGIN[0], 0.0, -PIXEL_M, ORIGIN[1]),
        "tiled": True,
        "blockxsize": TILE,
        "blockysize": TILE,
        "compress": "deflate",
        "photometric": "RGB",
        "BIGTIFF": "IF_SAFER",
    }


def _matches(path: Path, size: int, seed: int) -> bool:
    try:
        with rasterio.open(path) as ds:
            tags = ds.tags()
            return (
                ds.width == size
                and ds.height == size
                and tags.get("GENERATOR") == GENERATOR
                and tags.get("SEED") == str(seed)
            )
    except rasterio.errors.RasterioIOError:
        return False


def write_synthetic_pair(
    folder: str | Path, size: int, *, seed: int = 0, reuse: bool = True
) -> SyntheticPair:
    """Write (or reuse) ``before_<size>.tif`` and ``after_<size>.tif`` in ``folder``.

    UTM 33N, 1 m pixels, 512 × 512 tiles, DEFLATE. Written tile row by tile row with
    a small GDAL cache, so memory stays a few tens of MB whatever the size.

    Parameters
    ----------
    folder : str or Path
        Existing folder.
    size : int
        Image side in pixels (>= 128).
    seed : int
        Scene seed; equal seeds and sizes give identical files.
    reuse : bool
        Keep files already there from the same generator, size and seed.
    """
    changes = planted_changes(size, seed=seed)
    folder = Path(folder)
    before, after = folder / f"before_{size}.tif", folder / f"after_{size}.tif"
    pair = SyntheticPair(before, after, size, seed, changes)
    if reuse and _matches(before, size, seed) and _matches(after, size, seed):
        return pair
    tmp_b, tmp_a = before.with_suffix(".tmp.tif"), after.with_suffix(".tmp.tif")
    tags = {"GENERATOR": GENERATOR, "SEED": str(seed), "CHANGES": str(len(changes))}
    with (
        rasterio.Env(GDAL_CACHEMAX=64),
        rasterio.open(tmp_b, "w", **_profile(size)) as db,
        rasterio.open(tmp_a, "w", **_profile(size)) as da,
    ):
        db.update_tags(**tags, ACQUISITION_DATE="2021-06-01")
        da.update_tags(**tags, ACQUISITION_DATE="2023-06-01")
        for r in range(0, size, TILE):
            h = min(TILE, size - r)
            for c in range(0, size, TILE):
                w = min(TILE, size - c)
                b, a = synthetic_block(r, c, h, w, size=size, seed=seed)
                win = Window(c, r, w, h)
                db.write(b, window=win)
                da.write(a, window=win)
    os.replace(tmp_b, before)
    os.replace(tmp_a, after)
    return pair


# --------------------------------------------------------------------------- measurement


@dataclass(frozen=True)
class Measurement:
    """One finished subprocess: wall seconds, peak RSS bytes, CPU seconds, exit code."""

    seconds: float
    peak_rss: int
    cpu_seconds: float
    returncode: int


_GNU_TIME = "/usr/bin/time"
_FORMAT = "%e %M %U %S"
# Fallback when GNU time is absent: a small launcher that spawns the command and
# reports the child's own rusage in GNU time's format.
_LAUNCHER = """
import os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, ru = os.wait4(pid, 0)
with open(out, "w") as f:
    f.write(f"{time.perf_counter() - t0:.3f} {ru.ru_maxrss} {ru.ru_utime} {ru.ru_stime}\\n")
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


@functools.cache
def _gnu_time() -> str | None:
    """``/usr/bin/time`` if it is GNU time (``-f``/``-o``), else None."""
    if not os.access(_GNU_TIME, os.X_OK):
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".time") as f:
        try:
            done = subprocess.run(
                [_GNU_TIME, "-f", _FORMAT, "-o", f.name, "true"], capture_output=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        ok = done.returncode == 0 and len(f.read().split()) == 4
    return _GNU_TIME if ok else None


def measure(cmd: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None) -> Measurement:
    """Run ``cmd`` once as a child process and account for it alone.

    The command runs under a fresh small parent (GNU ``/usr/bin/time``, else a tiny
    Python launcher) whose rusage of it is read back: Linux starts a child's
    ``ru_maxrss`` at the RSS of the process it was forked from, so waiting for the
    command straight from this (large) process, or reading ``RUSAGE_CHILDREN``,
    would report this process's memory. Wall time is measured here; peak RSS and
    CPU seconds are the kernel's for the command. Output goes to ``log``.
    """
    timing = log.with_suffix(".time")
    timer = _gnu_time()
    if timer is not None:
        wrapped = [timer, "-f", _FORMAT, "-o", str(timing), *cmd]
    else:
        wrapped = [sys.executable, "-c", _LAUNCHER, str(timing), *cmd]
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        done = subprocess.run(wrapped, stdout=out, stderr=subprocess.STDOUT, check=False, env=env)
        seconds = time.perf_counter() - t0
    try:
        fields = timing.read_text(encoding="utf-8").strip().splitlines()[-1].split()
        _, kb, user, system = (float(v) for v in fields)
    except (OSError, IndexError, ValueError):
        kb, user, system = 0.0, 0.0, 0.0
    timing.unlink(missing_ok=True)
    return Measurement(
        seconds=seconds,
        peak_rss=int(kb) * 1024,  # kilobytes on Linux
        cpu_seconds=user + system,
        returncode=done.returncode,
    )


class BenchCommandError(RuntimeError):
    """A measured command exited non-zero."""


def _tail(log: Path, n: int = 5) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-n:])


@dataclass
class Series:
    """Repeated runs of one command."""

    name: str
    cmd: list[str]
    runs: list[Measurement] = field(default_factory=list)
    env: Mapping[str, str] | None = None
    """Environment of a baseline (None: this process's, as for sitewatch's commands)."""

    @property
    def seconds(self) -> float:
        """Median wall seconds."""
        return statistics.median(r.seconds for r in self.runs)

    @property
    def peak_rss(self) -> int:
        """Median peak RSS in bytes."""
        return int(statistics.median(r.peak_rss for r in self.runs))

    @property
    def cpu_seconds(self) -> float:
        """Median CPU (user + system) seconds."""
        return statistics.median(r.cpu_seconds for r in self.runs)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "command": self.cmd,
            "median_s": round(self.seconds, 4),
            "median_peak_rss_bytes": self.peak_rss,
            "median_cpu_s": round(self.cpu_seconds, 4),
            "runs": [
                {
                    "s": round(r.seconds, 4),
                    "peak_rss_bytes": r.peak_rss,
                    "cpu_s": round(r.cpu_seconds, 4),
                }
                for r in self.runs
            ],
        }


def run_interleaved(series: Sequence[Series], repeat: int, logdir: Path) -> None:
    """Run every series ``repeat`` times, in turn (A B C A B C ...)."""
    for i in range(repeat):
        for s in series:
            log = logdir / f"{s.name}.{i}.log"
            m = measure(s.cmd, log=log, env=s.env)
            if m.returncode != 0:
                raise BenchCommandError(
                    f"{s.name} exited {m.returncode}: {' '.join(s.cmd)}\n  {_tail(log)}"
                )
            s.runs.append(m)


def paired_ratio(a: Series, b: Series) -> float:
    """Median over rounds of ``a.seconds / b.seconds`` (runs made in turn)."""
    return statistics.median(x.seconds / y.seconds for x, y in zip(a.runs, b.runs, strict=True))


# --------------------------------------------------------------------------- environment


def compile_package() -> str:
    """Byte-compile sitewatch's own modules in place, as installing it does; say what was done.

    ``pip install`` writes every module's bytecode; an editable install (a checkout)
    writes it on first import, unless ``PYTHONDONTWRITEBYTECODE`` is set, when every
    process compiles sitewatch's sources again (a quarter of a second on 2 cores). The
    timed commands are meant as a user runs them, so the bytecode is written first,
    beside the modules (``__pycache__``, where Python keeps it).
    """
    import compileall

    import sitewatch

    folder = Path(sitewatch.__file__).parent
    try:
        ok = compileall.compile_dir(folder, quiet=2, workers=1)
    except OSError:
        ok = False
    how = "up to date" if ok else "could not be written (timings include compiling them)"
    return f"sitewatch's bytecode in {folder}: {how}"


def _sitewatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "sitewatch.cli.main", *args]


def _ram_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _otb_version(app: str) -> str | None:
    try:
        done = subprocess.run([app], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for word in (done.stdout + done.stderr).replace(",", " ").split():
        if word[:1].isdigit() and word.count(".") == 2:
            return word.rstrip(".")
    return None


def machine_info() -> dict[str, Any]:
    """CPU count, RAM, platform and the versions that matter to the figures."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "ram_bytes": _ram_bytes(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "versions": {
            "sitewatch": _version("sitewatch"),
            "numpy": np.__version__,
            "scipy": _version("scipy"),
            "rasterio": rasterio.__version__,
            "gdal": rasterio.__gdal_version__,
        },
        "env": {
            k: os.environ[k]
            for k in (
                "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS",
                "OPENBLAS_CORETYPE",
                "MKL_NUM_THREADS",
                "NUMPY_MADVISE_HUGEPAGE",
            )
            if k in os.environ
        },
    }


# --------------------------------------------------------------------------- the benchmark


@dataclass(frozen=True)
class SpeedOptions:
    """What ``sitewatch bench speed`` measures.

    Attributes
    ----------
    sizes : tuple of int
        Image sides of the scaling rows (pixels).
    big : int
        Side of the block-mode row (0 skips it).
    repeat : int
        Runs per command; medians are quoted.
    workdir : Path or None
        Where pairs and outputs go; None = a temporary folder removed at the end.
        A given folder is kept (generated pairs are reused on the next run).
    batch_jobs : int
        Jobs of the ``sitewatch batch`` row (0 skips it).
    seed : int
        Seed of the synthetic scenes.
    """

    sizes: tuple[int, ...] = DEFAULT_SIZES
    big: int = BIG_SIZE
    repeat: int = 3
    workdir: Path | None = None
    batch_jobs: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.sizes or any(s < 128 for s in self.sizes):
            raise ValueError(f"sizes must be >= 128 px; got {self.sizes}")
        if self.repeat < 1:
            raise ValueError(f"repeat must be >= 1; got {self.repeat}")
        if self.big and self.big < 128:
            raise ValueError(f"big must be 0 (skip) or >= 128 px; got {self.big}")
        if self.batch_jobs < 0:
            raise ValueError(f"batch_jobs must be >= 0; got {self.batch_jobs}")

    @property
    def compare_size(self) -> int:
        """Side of the OTB / naive / profile pair: 2048, or the closest requested size."""
        return min(self.sizes, key=lambda s: (abs(math.log(s / COMPARE_SIZE)), s))


Progress = Callable[[str], None]


HEAVY = "construction"
"""The method of the 'default' rows: the construction score, Sentinel-2's default and the
heaviest chain (these synthetic 3-band images would choose IR-MAD by themselves)."""


def _detect_cmd(
    pair: SyntheticPair, out: Path, *extra: str, method: str | None = "irmad"
) -> list[str]:
    """``sitewatch detect`` on a pair (``method=None``: the method the input chooses)."""
    return _sitewatch(
        "detect",
        "--before",
        str(pair.before),
        "--after",
        str(pair.after),
        *(("--method", method) if method else ()),
        "--out",
        str(out),
        "--overwrite",
        "--quiet",
        *extra,
    )


def _run_facts(out: Path) -> dict[str, Any]:
    """What a finished ``detect`` run folder says: block-wise or not, stage timings."""
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"path": "?"}
    blocks = any(
        isinstance(manifest.get(k), dict) and manifest[k].get("blockwise")
        for k in ("parameters", "diagnostics")
    )
    diag = manifest.get("diagnostics") or {}
    return {
        "path": "blocks" if blocks else "in-memory",
        "timings_s": manifest.get("timings_s"),
        "n_polygons": diag.get("n_polygons"),
        "engine": diag.get("engine"),
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b > 0 else None


@contextlib.contextmanager
def _workdir(path: Path | None) -> Iterator[tuple[Path, bool]]:
    if path is not None:
        path = Path(path).expanduser().absolute()
        path.mkdir(parents=True, exist_ok=True)
        yield path, True
        return
    tmp = Path(tempfile.mkdtemp(prefix="sitewatch-speed-"))
    try:
        yield tmp, False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_speed(options: SpeedOptions | None = None, *, progress: Progress | None = None) -> dict:
    """Run the speed benchmark; return a JSON-ready document (see module docstring).

    Raises
    ------
    BenchCommandError
        If a sitewatch or naive command fails (an absent OTB only skips its row).
    """
    opts = options or SpeedOptions()
    say = progress or (lambda _msg: None)
    t_start = time.perf_counter()
    block_mode = True  # detect --max-memory (block-wise) and batch are part of the CLI
    batch = True
    otb = shutil.which(OTB_APP)
    machine = machine_info()
    machine["versions"]["otb"] = _otb_version(otb) if otb else None
    doc: dict[str, Any] = {
        "benchmark": "sitewatch bench speed",
        "machine": machine,
        "settings": {
            "sizes": list(opts.sizes),
            "compare_size": opts.compare_size,
            "big": opts.big,
            "repeat": opts.repeat,
            "seed": opts.seed,
            "timer": _gnu_time() or "python launcher (os.wait4 of the command)",
            "block_mode": block_mode,
            "block_mode_memory": BLOCK_MODE_MEMORY if block_mode else None,
            "measurement": "subprocess wall time (perf_counter); peak RSS (max resident set) "
            "and CPU of that command alone, from a fresh /usr/bin/time (or launcher); medians of "
            "`repeat` runs; compared commands run in turn and their ratio is the median of "
            "per-round ratios",
            "data": "synthetic 3-band uint8 GeoTIFF pairs, UTM 33N, 1 m, 512 px tiles, "
            "DEFLATE; per-band gain/offset between dates, sensor noise, planted roofs",
        },
    }
    with _workdir(opts.workdir) as (work, keep):
        doc["settings"]["workdir"] = str(work) if keep else "(temporary, removed)"
        data, runs, logs = work / "data", work / "runs", work / "logs"
        for d in (data, runs, logs):
            d.mkdir(exist_ok=True)

        doc["bytecode"] = compile_package()
        say("measuring process start-up (sitewatch --version)")
        startup = Series("startup", _sitewatch("--version"))
        run_interleaved([startup], opts.repeat, logs)
        doc["startup"] = startup.as_dict()

        c = opts.compare_size
        say(f"generating the {c}×{c} pair")
        pair = write_synthetic_pair(data, c, seed=opts.seed)
        extra = ("--max-memory", BLOCK_MODE_MEMORY) if block_mode else ()
        doc["compare"] = _compare(pair, opts, otb, runs, logs, say, extra)

        say(f"profiling detect_change + write_result in process on the {c}×{c} pair")
        doc["profile"] = profile_detection(pair, runs / "profile")

        doc["scaling"] = _scaling(opts, extra, data, runs, logs, say, doc["compare"])
        doc["big"] = _big(opts, block_mode, data, runs, logs, say, doc["scaling"])
        doc["batch"] = _batch(opts, batch, data, runs, logs, say)
        shutil.rmtree(runs, ignore_errors=True)
        if not keep:
            doc["settings"]["workdir_removed"] = True
    doc["seconds"] = round(time.perf_counter() - t_start, 1)
    return doc


def _compare(
    pair: SyntheticPair,
    opts: SpeedOptions,
    otb: str | None,
    runs: Path,
    logs: Path,
    say: Progress,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """Time sitewatch (default, --no-coregister), OTB MAD and naive numpy in turn."""
    sw = Series("sitewatch", _detect_cmd(pair, runs / "sw", *extra))
    sw_nc = Series(
        "sitewatch_no_coregister", _detect_cmd(pair, runs / "swnc", "--no-coregister", *extra)
    )
    sw_core = Series(
        "sitewatch_core",
        _detect_cmd(pair, runs / "swcore", "--no-coregister", "--no-report", *extra),
    )
    naive = Series(
        "naive_numpy",
        [
            sys.executable,
            "-m",
            "sitewatch.bench.naive",
            str(pair.before),
            str(pair.after),
            str(runs / "naive.geojson"),
        ],
        env=launch_environment(),
    )
    sw_default = Series(
        "sitewatch_default", _detect_cmd(pair, runs / "swdef", *extra, method=HEAVY)
    )
    sw_default_1 = Series(
        "sitewatch_default_1_thread",
        _detect_cmd(pair, runs / "swdef1", "--threads", "1", *extra, method=HEAVY),
    )
    sw_irmad = Series(
        "sitewatch_irmad_no_report", _detect_cmd(pair, runs / "swir", "--no-report", *extra)
    )
    sw_irmad_1 = Series(
        "sitewatch_irmad_no_report_1_thread",
        _detect_cmd(pair, runs / "swir1", "--no-report", "--threads", "1", *extra),
    )
    series = [sw_default, sw_default_1, sw, sw_irmad, sw_irmad_1, sw_nc, sw_core, naive]
    otb_doc: dict[str, Any]
    if otb:
        mad = runs / "otb_mad.tif"
        otb_s = Series(
            "otb",
            [otb, "-in1", str(pair.before), "-in2", str(pair.after), "-out", str(mad)],
            env=launch_environment(),
        )
        series.append(otb_s)
    else:
        otb_s = None
    say(
        f"timing {', '.join(s.name for s in series)} on the {pair.size}×{pair.size} pair, "
        f"{opts.repeat} rounds"
    )
    run_interleaved(series, opts.repeat, logs)
    if otb_s is not None:
        otb_doc = {
            **otb_s.as_dict(),
            "outputs": "MAD variates only (plain MAD, one fit; no chi2, threshold, polygons, "
            "report)",
            "ratio_sitewatch_over_otb": round(paired_ratio(sw, otb_s), 4),
            "ratio_sitewatch_no_coregister_over_otb": round(paired_ratio(sw_nc, otb_s), 4),
            "ratio_sitewatch_core_over_otb": round(paired_ratio(sw_core, otb_s), 4),
            "ratio_sitewatch_default_over_otb": round(paired_ratio(sw_default, otb_s), 4),
            "ratio_sitewatch_irmad_no_report_over_otb": round(paired_ratio(sw_irmad, otb_s), 4),
        }
    else:
        otb_doc = {"skipped": f"{OTB_APP} not on PATH (Debian package otb-bin)"}
    return {
        "size": pair.size,
        "pixels": pair.pixels,
        "sitewatch": {
            **sw.as_dict(),
            **_run_facts(runs / "sw"),
            "options": "default (co-registration on)",
        },
        "sitewatch_no_coregister": {
            **sw_nc.as_dict(),
            **_run_facts(runs / "swnc"),
            "options": "--no-coregister (like OTB and the naive run: no registration step)",
        },
        "sitewatch_core": {
            **sw_core.as_dict(),
            **_run_facts(runs / "swcore"),
            "options": "--no-coregister --no-report (chi2, threshold, polygons, COGs, GPKG, "
            "manifest; no registration, no quicklooks/chips/report.html)",
        },
        "sitewatch_default": {
            **sw_default.as_dict(),
            **_run_facts(runs / "swdef"),
            "options": "--method construction (the Sentinel-2 default) with its full report",
        },
        "sitewatch_irmad_no_report": {
            **sw_irmad.as_dict(),
            **_run_facts(runs / "swir"),
            "options": "--method irmad --no-report (co-registration on)",
        },
        "threads": {
            "cpu_count": os.cpu_count(),
            "default_1_thread": sw_default_1.as_dict(),
            "irmad_no_report_1_thread": sw_irmad_1.as_dict(),
            "ratio_default_1_over_all": round(paired_ratio(sw_default_1, sw_default), 4),
            "ratio_irmad_no_report_1_over_all": round(paired_ratio(sw_irmad_1, sw_irmad), 4),
        },
        "otb": otb_doc,
        "naive": {
            **naive.as_dict(),
            "outputs": "GeoJSON polygons in the image CRS only",
            "ratio_sitewatch_no_coregister_over_naive": round(paired_ratio(sw_nc, naive), 4),
            "ratio_sitewatch_over_naive": round(paired_ratio(sw, naive), 4),
            "ratio_sitewatch_core_over_naive": round(paired_ratio(sw_core, naive), 4),
        },
    }


def _scaling(
    opts: SpeedOptions,
    extra: Sequence[str],
    data: Path,
    runs: Path,
    logs: Path,
    say: Progress,
    compare: dict[str, Any],
) -> dict[str, Any]:
    mode = (
        f"--max-memory {BLOCK_MODE_MEMORY} (block-wise above the budget)"
        if extra
        else "in-memory (no block mode yet)"
    )
    rows: list[dict[str, Any]] = []
    for size in sorted(set(opts.sizes)):
        pair_done = None
        if size == compare["size"]:
            pair_done = compare.get("sitewatch_default")  # the same command, measured
        if pair_done is None:
            say(f"generating the {size}×{size} pair")
            pair = write_synthetic_pair(data, size, seed=opts.seed)
            say(f"timing sitewatch detect on {size}×{size}, {opts.repeat} runs ({mode})")
            s = Series(
                f"scaling_{size}", _detect_cmd(pair, runs / f"scale{size}", *extra, method=HEAVY)
            )
            run_interleaved([s], opts.repeat, logs)
            pair_done = {**s.as_dict(), **_run_facts(runs / f"scale{size}")}
            shutil.rmtree(runs / f"scale{size}", ignore_errors=True)
        rows.append({"size": size, "pixels": size * size, **pair_done})
    base = rows[0]
    for r in rows:
        per_px = r["median_s"] / r["pixels"]
        r["pixels_per_s"] = round(r["pixels"] / r["median_s"], 1)
        r["time_per_pixel_ratio"] = _ratio(per_px, base["median_s"] / base["pixels"])
        r["peak_rss_ratio"] = _ratio(r["median_peak_rss_bytes"], base["median_peak_rss_bytes"])
    return {"mode": mode, "baseline_size": base["size"], "rows": rows}


def _big(
    opts: SpeedOptions,
    block_mode: bool,
    data: Path,
    runs: Path,
    logs: Path,
    say: Progress,
    scaling: dict[str, Any],
) -> dict[str, Any]:
    size = opts.big
    if not size:
        return {"skipped": "--big 0"}
    if not block_mode:
        return {
            "size": size,
            "skipped": "block mode unavailable (sitewatch detect has no --max-memory); "
            "in memory it would need far more than 1.5 GB",
        }
    free = shutil.disk_usage(data).free
    if free < BIG_MIN_FREE_BYTES:
        return {
            "size": size,
            "skipped": f"{free / 1024**3:.1f} GB free in the work dir (< 8 GB needed)",
        }
    say(f"generating the {size}×{size} pair (block by block)")
    pair = write_synthetic_pair(data, size, seed=opts.seed)
    say(f"timing sitewatch detect --max-memory {BLOCK_MODE_MEMORY} on {size}×{size}, 1 run")
    s = Series(
        "big", _detect_cmd(pair, runs / "big", "--max-memory", BLOCK_MODE_MEMORY, method=HEAVY)
    )
    run_interleaved([s], 1, logs)
    facts = _run_facts(runs / "big")
    facts["planted_found"] = _planted_found(runs / "big" / "mask.tif", pair.changes)
    shutil.rmtree(runs / "big", ignore_errors=True)
    for p in (pair.before, pair.after):
        if opts.workdir is None:
            p.unlink(missing_ok=True)
    base = scaling["rows"][0]
    d = s.as_dict()
    return {
        "size": size,
        "pixels": pair.pixels,
        **d,
        **facts,
        "pixels_per_s": round(pair.pixels / d["median_s"], 1),
        "time_per_pixel_ratio": _ratio(
            d["median_s"] / pair.pixels, base["median_s"] / base["pixels"]
        ),
        "peak_rss_ratio": _ratio(d["median_peak_rss_bytes"], base["median_peak_rss_bytes"]),
        "target_peak_rss_bytes": BIG_TARGET_BYTES,
        "peak_rss_over_target": _ratio(d["median_peak_rss_bytes"], BIG_TARGET_BYTES),
        "runs_note": "1 run (a 12k pair takes minutes)",
    }


def _planted_found(mask_path: Path, changes: Sequence[tuple[int, int, int, int]]) -> list[int]:
    """[found, planted]: planted roofs with at least half their pixels in ``mask.tif``."""
    from rasterio.windows import Window

    found = 0
    try:
        with rasterio.open(mask_path) as ds:
            for r, c, h, w in changes:
                found += int((ds.read(1, window=Window(c, r, w, h)) == 1).mean() >= 0.5)
    except rasterio.errors.RasterioIOError:
        return [0, len(changes)]
    return [found, len(changes)]


# HOOK(batch): the dask batch row. It runs only when `sitewatch batch` exists; the
# watch-list format follows sitewatch.batch (out, [defaults], [[job]] aoi/before/after).
def _write_watchlist(folder: Path, pair: SyntheticPair, jobs: int) -> Path:
    from sitewatch.grid import Grid

    grid = Grid(
        CRS, Affine(PIXEL_M, 0.0, ORIGIN[0], 0.0, -PIXEL_M, ORIGIN[1]), pair.size, pair.size
    )
    west, south, east, north = grid.footprint_lonlat.bounds
    dx, dy = (east - west) * 0.05, (north - south) * 0.05
    ring = [
        [west + dx, south + dy],
        [east - dx, south + dy],
        [east - dx, north - dy],
        [west + dx, north - dy],
        [west + dx, south + dy],
    ]
    aoi = {
        "type": "Feature",
        "properties": {"id": "bench-speed", "name": "bench speed synthetic scene"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    (folder / "aoi.geojson").write_text(json.dumps(aoi), encoding="utf-8")
    lines = ['out = "results"', "", "[defaults]", 'method = "irmad"', ""]
    for i in range(jobs):
        lines += [
            "[[job]]",
            f'name = "job{i:02d}"',
            'aoi = "aoi.geojson"',
            f'before = "{pair.before}"',
            f'after = "{pair.after}"',
            "",
        ]
    path = folder / "watchlist.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _batch(
    opts: SpeedOptions,
    available: bool,
    data: Path,
    runs: Path,
    logs: Path,
    say: Progress,
) -> dict[str, Any]:
    if not opts.batch_jobs:
        return {"skipped": "--batch-jobs 0"}
    if not available:
        return {"skipped": "batch: not available (no `sitewatch batch` subcommand)"}
    size = min(opts.sizes)
    pair = write_synthetic_pair(data, size, seed=opts.seed)
    folder = runs / "batch"
    folder.mkdir(exist_ok=True)
    wl = _write_watchlist(folder, pair, opts.batch_jobs)
    series = [
        Series(
            f"batch_{n}w",
            _sitewatch(
                "batch",
                str(wl),
                "--workers",
                str(n),
                "--rerun",
                "--quiet",
                "--out",
                str(folder / f"out{n}"),
            ),
        )
        for n in (1, 2)
    ]
    say(f"timing sitewatch batch: {opts.batch_jobs} jobs of {size}×{size}, 1 vs 2 workers")
    try:
        run_interleaved(series, opts.repeat, logs)
    except BenchCommandError as err:
        return {"skipped": f"batch: failed ({err})"}
    one, two = series
    return {
        "jobs": opts.batch_jobs,
        "size": size,
        "workers_1": {
            **one.as_dict(),
            "jobs_per_min": round(60 * opts.batch_jobs / one.seconds, 2),
        },
        "workers_2": {
            **two.as_dict(),
            "jobs_per_min": round(60 * opts.batch_jobs / two.seconds, 2),
        },
        "throughput_ratio_2_over_1": round(1 / paired_ratio(two, one), 4),
    }


# --------------------------------------------------------------------------- profile

# (label, indent, candidates): the first (path suffix, function) found in the profile
# gives the row; several candidates keep the table working while the code moves.
_STAGES: tuple[tuple[str, int, tuple[tuple[str, str], ...]], ...] = (
    ("read both images (float32)", 0, (("sources/local.py", "read_scene"),)),
    ("co-registration", 0, (("detect/run.py", "align_after"),)),
    ("detection engine", 0, (("detect/engine.py", "run_engine"),)),
    ("statistics pass", 1, (("detect/engine.py", "stats_block"),)),
    ("fit sample pass", 1, (("detect/engine.py", "gather_block"),)),
    ("IR-MAD fits (CCA iterations)", 1, (("detect/irmad.py", "irmad_fit"),)),
    ("views + robust sample pass", 1, (("detect/engine.py", "robust_block"),)),
    ("score pass", 1, (("detect/engine.py", "score_block"),)),
    ("threshold", 1, (("detect/threshold.py", "threshold_scores"),)),
    ("labels pass", 1, (("detect/engine.py", "label_block"),)),
    ("final labels pass", 1, (("detect/engine.py", "final_block"),)),
    ("polygons pass (statistics, outlines)", 1, (("detect/engine.py", "_polygons"),)),
    ("write outputs + report", 0, (("report/write.py", "write_result"),)),
    ("COG rasters", 1, (("report/write.py", "_write_raster"),)),
    ("report.html, quicklooks, chips", 1, (("report/html.py", "build_report"),)),
)


def _stage_rows(stats: pstats.Stats, total: float) -> list[dict[str, Any]]:
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    rows = []
    for label, indent, candidates in _STAGES:
        for suffix, name in candidates:
            hits = [
                (key, val)
                for key, val in table.items()
                if key[2] == name and key[0].replace(os.sep, "/").endswith(suffix)
            ]
            if hits:
                calls = sum(v[1] for _, v in hits)
                cum = sum(v[3] for _, v in hits)
                rows.append(
                    {
                        "stage": label,
                        "indent": indent,
                        "function": f"{suffix.split('/')[-1]}:{name}",
                        "calls": int(calls),
                        "cum_s": round(cum, 4),
                        "share": round(cum / total, 4) if total > 0 else None,
                    }
                )
                break
    return rows


def _optimisations(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """What the shipped code optimises (read from it) and what the profile flags."""
    from sitewatch.detect import irmad as irmad_mod
    from sitewatch.detect import run as run_mod
    from sitewatch.report.run import OVERVIEW_MIN_SIDE

    sample = inspect.signature(irmad_mod.irmad).parameters["sample"].default
    chunk = getattr(irmad_mod, "_CHUNK", None)
    done = [
        f"IR-MAD is fitted on a random sample of {sample:,} valid pixels, not all of them; "
        "the fitted transform is then applied to every pixel"
        + (f" in {chunk:,}-pixel chunks (bounded temporaries)" if chunk else ""),
        "weighted covariances by one BLAS syrk into a reused buffer; canonical pairs from one "
        "SVD of the whitened cross-covariance; standardisation folded into the final transform",
        "images read as float32 and score/chi2/p arrays kept float32 (half of float64)",
        f"co-registration: phase correlation at 1/{run_mod.COREG_UPSAMPLE} px on the central "
        f"{run_mod.COREG_WINDOW}² window, shift applied with order-{run_mod.COREG_ORDER} "
        "(bilinear) interpolation",
    ]
    done += [
        "one engine, block by block on a thread pool (profiled here on 1 thread, so cProfile "
        "sees every pass; 'bench speed' times threads 1 vs all above)",
        "the construction score's views are computed once and kept for the score pass",
        "float COGs in ZSTD level 1, with overviews only above "
        f"{OVERVIEW_MIN_SIDE} px a side; P(no change) computed on the change mask only",
        "the command line leaves the cores to the block pool (OPENBLAS_NUM_THREADS=1 unless "
        "set); scipy loads on a second thread while the images are read",
        "the report's figures drawn with Pillow (no matplotlib), their PNGs encoded on two "
        "more threads",
        "co-registration's sub-pixel peak in two stages (1/10 px, then the finer step); "
        "few small regions traced and counted in their own windows, not whole-block scans",
        "no huge-page advice from numpy where the kernel would compact memory to honour it "
        "(NUMPY_MADVISE_HUGEPAGE=0 unless set, when transparent_hugepage/defrag says so)",
    ]
    found = []
    ranked = sorted((r for r in rows if r["indent"] == 0), key=lambda r: -r["cum_s"])
    if ranked:
        top = ranked[0]
        found.append(f"largest stage: {top['stage']} ({top['share']:.0%})")
    return done, found


def profile_detection(pair: SyntheticPair, out: Path) -> dict[str, Any]:
    """Time ``detect_change(..., threads=1)`` (construction score) + ``write_result`` in process.

    One plain run (wall time, the pipeline's own stage timings), then one under
    cProfile: cumulative seconds of each stage's function and its share of the
    profiled total (cProfile slows Python-heavy code more than numpy-heavy code, so
    shares are approximate).
    """
    from sitewatch.pipeline import detect_change
    from sitewatch.report import write_result

    def once() -> dict[str, float]:
        t0 = time.perf_counter()
        result = detect_change(pair.before, pair.after, method=HEAVY, threads=1)
        t1 = time.perf_counter()
        write_result(result, out, overwrite=True, command=["sitewatch", "bench", "speed"])
        t2 = time.perf_counter()
        return {**result.timings, "write": round(t2 - t1, 4), "wall": round(t2 - t0, 4)}

    plain = once()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    try:
        once()
    finally:
        prof.disable()
    total = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    stats = pstats.Stats(prof)
    rows = _stage_rows(stats, total)
    done, found = _optimisations(rows)
    return {
        "size": pair.size,
        "call": "detect_change(before, after, method='construction', threads=1) "
        "+ write_result(...)",
        "plain_wall_s": plain["wall"],
        "plain_stage_s": plain,
        "profiled_wall_s": round(total, 4),
        "stages": rows,
        "optimised": done,
        "findings": found,
    }


# --------------------------------------------------------------------------- text table


def _mb(n: int | None) -> str:
    return "–" if n is None else f"{n / 1024**2:,.0f}"


def _x(r: float | None) -> str:
    return "–" if r is None else f"{r:.2f}x"


def format_speed(doc: dict[str, Any]) -> str:
    """The plain-text table printed by ``sitewatch bench speed``."""
    m, st = doc["machine"], doc["settings"]
    v = m["versions"]
    ram = f"{m['ram_bytes'] / 1024**3:.1f} GiB RAM" if m.get("ram_bytes") else "RAM ?"
    lines = [
        f"sitewatch bench speed: {m['cpu_count']} CPUs, {ram}, {m['machine']}; "
        f"sitewatch {v['sitewatch']}, numpy {v['numpy']}, GDAL {v['gdal']}"
        + (f", OTB {v['otb']}" if v.get("otb") else ""),
        f"whole processes; median of {st['repeat']} run{'s' if st['repeat'] != 1 else ''}; "
        f"wall s, peak RSS MB ({st['timer'].split(' (')[0]}); compared commands run in turn, "
        "ratio = median of per-round ratios",
    ]
    s = doc["startup"]
    lines.append(
        f"process start-up (sitewatch --version): {s['median_s']:.2f} s, "
        f"{_mb(s['median_peak_rss_bytes'])} MB (included in every sitewatch row)"
    )
    if doc.get("bytecode"):
        lines.append(doc["bytecode"])
    c = doc["compare"]
    n = c["size"]
    lines += ["", f"IR-MAD change detection, {n}×{n} 3-band uint8 pair"]
    head = f"{'command':<48}{'s':>8}{'MB':>7}{'cpu s':>8}{'vs OTB':>9}{'vs naive':>10}"
    lines.append(head)
    otb, naive = c["otb"], c["naive"]

    def row(name: str, d: dict[str, Any], vs_otb: float | None, vs_naive: float | None) -> str:
        return (
            f"{name:<48}{d['median_s']:>8.2f}{_mb(d['median_peak_rss_bytes']):>7}"
            f"{d['median_cpu_s']:>8.2f}{_x(vs_otb):>9}{_x(vs_naive):>10}"
        )

    if "sitewatch_default" in c:
        lines.append(
            row(
                "sitewatch detect --method construction (full report)",
                c["sitewatch_default"],
                otb.get("ratio_sitewatch_default_over_otb"),
                None,
            )
        )
        lines.append(
            row(
                "sitewatch detect --method irmad --no-report",
                c["sitewatch_irmad_no_report"],
                otb.get("ratio_sitewatch_irmad_no_report_over_otb"),
                None,
            )
        )
    lines.append(
        row(
            "sitewatch detect --method irmad (full report)",
            c["sitewatch"],
            otb.get("ratio_sitewatch_over_otb"),
            naive.get("ratio_sitewatch_over_naive"),
        )
    )
    lines.append(
        row(
            "  same, --no-coregister (no registration step)",
            c["sitewatch_no_coregister"],
            otb.get("ratio_sitewatch_no_coregister_over_otb"),
            naive.get("ratio_sitewatch_no_coregister_over_naive"),
        )
    )
    lines.append(
        row(
            "  same, --no-coregister --no-report",
            c["sitewatch_core"],
            otb.get("ratio_sitewatch_core_over_otb"),
            naive.get("ratio_sitewatch_core_over_naive"),
        )
    )
    if "skipped" in otb:
        lines.append(f"{OTB_APP}: skipped, {otb['skipped']}")
    else:
        lines.append(row(f"{OTB_APP} *", otb, 1.0, None))
    lines.append(row("naive numpy (float64, IR-MAD on all pixels) **", naive, None, 1.0))
    if "skipped" not in otb:
        r = otb.get(
            "ratio_sitewatch_irmad_no_report_over_otb", otb["ratio_sitewatch_core_over_otb"]
        )
        verdict = "met" if r <= 1.0 else "NOT met"
        lines.append(
            f"* OTB writes only the MAD variates (plain MAD, one fit): no chi2, threshold, "
            f"polygons or report. Target --method irmad --no-report <= 1.0x OTB: {verdict} "
            f"({r:.2f}x)"
        )
        if "ratio_sitewatch_default_over_otb" in otb:
            r = otb["ratio_sitewatch_default_over_otb"]
            verdict = "met" if r <= 2.0 else "NOT met"
            auto = otb.get("ratio_sitewatch_over_otb")
            also = (
                f"; the auto default of this 3-band pair, IR-MAD, {auto:.2f}x"
                if auto is not None
                else ""
            )
            lines.append(
                f"  target default with its report <= 2.0x OTB: {verdict} ({r:.2f}x for the "
                f"construction run, Sentinel-2's default{also})"
            )
    if "threads" in c:
        t = c["threads"]
        lines.append(
            f"threads 1 vs all ({t['cpu_count']} CPUs), same commands with --threads 1: "
            f"default {t['default_1_thread']['median_s']:.2f} s = "
            f"{_x(t['ratio_default_1_over_all'])} the all-threads time; "
            f"--method irmad --no-report {t['irmad_no_report_1_thread']['median_s']:.2f} s = "
            f"{_x(t['ratio_irmad_no_report_1_over_all'])}"
        )
    lines.append(
        "** same steps, fitted on every pixel; writes only a GeoJSON (no COGs, GPKG, report)"
    )
    if st.get("block_mode_memory"):
        lines.append(
            f"sitewatch rows pass --max-memory {st['block_mode_memory']}, like the scaling rows"
        )

    p = doc["profile"]
    lines += [
        "",
        f"where sitewatch's time goes: {p['call']} in process on {p['size']}×{p['size']}; "
        f"plain {p['plain_wall_s']:.2f} s, under cProfile {p['profiled_wall_s']:.2f} s",
        f"{'stage':<36}{'function':<34}{'calls':>6}{'cum s':>8}{'share':>7}",
    ]
    for r in p["stages"]:
        label = "  " * r["indent"] + r["stage"]
        share = "–" if r["share"] is None else f"{r['share']:.0%}"
        lines.append(f"{label:<36}{r['function']:<34}{r['calls']:>6}{r['cum_s']:>8.2f}{share:>7}")
    stage_s = p["plain_stage_s"]
    known = ("read", "detect", "write")
    lines.append(
        "plain run, pipeline's own timings (s): "
        + ", ".join(f"{k} {stage_s[k]:.2f}" for k in known if k in stage_s)
    )
    lines += [f"optimised: {t}" for t in p["optimised"]]
    lines += [f"profile: {t}" for t in p["findings"]]

    sc = doc["scaling"]
    base = sc["baseline_size"]
    lines += [
        "",
        f"scaling: sitewatch detect --method construction, {sc['mode']}; "
        f"ratios vs the {base} px row",
        f"{'side px':>8}{'Mpx':>8}{'s':>9}{'MB':>8}{'Mpx/s':>8}{'s/px ratio':>12}{'RSS ratio':>11}"
        f"  path",
    ]
    rows = list(sc["rows"])
    big = doc["big"]
    if "skipped" not in big:
        rows.append({**big, "size": f"{big['size']}*"})
    for r in rows:
        lines.append(
            f"{r['size']!s:>8}{r['pixels'] / 1e6:>8.1f}{r['median_s']:>9.2f}"
            f"{_mb(r['median_peak_rss_bytes']):>8}{r['pixels_per_s'] / 1e6:>8.2f}"
            f"{_x(r['time_per_pixel_ratio']):>12}{_x(r['peak_rss_ratio']):>11}"
            f"  {r.get('path', '?')}"
        )
    if "skipped" in big:
        lines.append(f"big ({big.get('size', '–')} px): skipped, {big['skipped']}")
    else:
        verdict = "met" if big["peak_rss_over_target"] <= 1.0 else "NOT met"
        lines.append(
            f"* two {big['size']}² images, --max-memory {st['block_mode_memory']}, 1 run: "
            f"peak RSS {_mb(big['median_peak_rss_bytes'])} MB = "
            f"{big['peak_rss_over_target']:.2f}x the 1.5 GB target ({verdict}); "
            f"{big.get('n_polygons')} change polygons; planted roofs found (half their "
            f"pixels flagged): {'/'.join(str(v) for v in big.get('planted_found', []))}"
        )
    b = doc["batch"]
    if "skipped" in b:
        lines.append("")
        lines.append(b["skipped"] if b["skipped"].startswith("batch") else f"batch: {b['skipped']}")
    else:
        lines += [
            "",
            f"dask batch: {b['jobs']} jobs of {b['size']}² via sitewatch batch: 1 worker "
            f"{b['workers_1']['jobs_per_min']:.1f} jobs/min, 2 workers "
            f"{b['workers_2']['jobs_per_min']:.1f} jobs/min = "
            f"{b['throughput_ratio_2_over_1']:.2f}x throughput",
        ]
    lines.append(f"total benchmark time {doc['seconds']:.0f} s")
    return "\n".join(lines)
