"""Process defaults the command line sets before numpy is imported.

**One owner of the cores: the engine's block pool, not OpenBLAS's threads as well.** The
detection engine (:mod:`sitewatch.detect.engine`) scores blocks on a thread pool as wide
as the machine. Inside each block, numpy's matrix products (IR-MAD's transform of every
pixel) call OpenBLAS, which would start threads of its own and keep them spinning
between calls, against the pool's threads. OpenBLAS reads its thread count once, when
numpy is first imported, so the command line sets ``OPENBLAS_NUM_THREADS=1`` before
that, unless the user set it. Measured whole-process on a 2048² pair, 2 cores
(``sitewatch detect --method irmad --no-report``, 8 runs each way, alternating): 0.85×
the wall time and 0.72× the CPU time of the same run with OpenBLAS's default threads.

**No huge-page advice where it stalls.** numpy asks the kernel for transparent huge
pages (``madvise(MADV_HUGEPAGE)``) on every array of 4 MB or more. When the kernel's
defrag mode compacts memory synchronously for such regions (``madvise``,
``defer+madvise`` or ``always`` in ``/sys/kernel/mm/transparent_hugepage/defrag``), a
fresh allocation can stall while the kernel defragments (numpy issue 31590): on the
2-core machine of the README, copying three 2048² float32 bands took 0.15–0.22 s instead
of 0.01–0.03 s once a run had used a few hundred MB. There the command line sets
``NUMPY_MADVISE_HUGEPAGE=0`` (numpy's own switch, read once at import), unless the user
set it. Measured whole-process on the same pair, alternating, 8 runs each way:
``--method irmad --no-report`` 0.89× the wall time (every pair faster), the default run
with its report 0.90×.

**Freed memory reused, not returned and faulted in again.** glibc's malloc serves
requests over a threshold (128 kB, rising with use to at most 32 MB) with fresh
``mmap`` regions and unmaps them when freed, so every full-size temporary of a run (a
2048² float32 band is 16 MB, a 3-band stack 48 MB) arrives as untouched pages the
kernel must fault in and zero again. The command line raises both the mmap and the trim
threshold to :data:`MALLOC_THRESHOLD` (``mallopt``; glibc only, and only when the user
set neither ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` nor
``GLIBC_TUNABLES``), so arrays up to that size come from the heap and their pages are
reused. Measured whole-process on the 2048² pair, 2 cores (``detect --method irmad
--no-report``, median of 7): 3.21 → 2.66 s wall, system time 0.90 → 0.57 s, peak RSS
526 → 571 MB.

**No unused numpy submodules at start-up.** scipy (1.16 and 1.17) builds its array-API
namespace for numpy by reading every public name of the ``numpy`` module, and numpy
loads its lazy submodules on first access, so importing ``scipy.ndimage`` also runs
``numpy.f2py`` (the Fortran wrapper generator) and ``numpy.testing`` (with
``unittest``): about a sixth of a second that no sitewatch run uses. The command line
registers those two as lazy modules (:class:`importlib.util.LazyLoader`) before scipy is
first imported: the name resolves, and the module runs only if something uses it.
Measured on the 2-core machine of the README: ``import numpy, scipy.ndimage`` 0.59 s
(median of 8) without, 0.43 s with.

A library user who imports numpy first keeps whatever numpy and OpenBLAS started with,
and a library user's process imports numpy's submodules as numpy and scipy decide.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "BLAS_VARIABLE",
    "DEFRAG_PATH",
    "HUGEPAGE_VARIABLE",
    "MALLOC_THRESHOLD",
    "UNUSED_NUMPY_MODULES",
    "defer_unused_numpy_modules",
    "hugepage_advice_stalls",
    "launch_environment",
    "limit_blas_threads",
    "limit_hugepage_advice",
    "reuse_freed_memory",
]

BLAS_VARIABLE = "OPENBLAS_NUM_THREADS"
HUGEPAGE_VARIABLE = "NUMPY_MADVISE_HUGEPAGE"
DEFRAG_PATH = Path("/sys/kernel/mm/transparent_hugepage/defrag")

# Defrag modes in which a fault in a region advised MADV_HUGEPAGE compacts synchronously
# (Documentation/admin-guide/mm/transhuge.rst); "defer" and "never" do not stall.
_STALLING_MODES = frozenset({"always", "defer+madvise", "madvise"})

MALLOC_THRESHOLD = 256 << 20
"""Bytes: glibc's mmap and trim thresholds under the command line (see the module notes)."""
_MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, <malloc.h>

UNUSED_NUMPY_MODULES = ("numpy.f2py", "numpy.testing")
"""numpy submodules scipy's import touches and no sitewatch run uses."""

_defaulted: set[str] = set()


def _default(variable: str, value: str) -> bool:
    if variable in os.environ:
        return False
    os.environ[variable] = value
    _defaulted.add(variable)
    return True


def limit_blas_threads() -> bool:
    """Set ``OPENBLAS_NUM_THREADS=1`` unless the user set it; True if this set it.

    Effective only before numpy is first imported in the process; child processes
    (dask workers, notebook kernels) inherit it.
    """
    return _default(BLAS_VARIABLE, "1")


def hugepage_advice_stalls(defrag: str | Path = DEFRAG_PATH) -> bool:
    """Whether the kernel compacts memory synchronously for regions advised huge pages.

    Parameters
    ----------
    defrag : str or Path
        The kernel's ``transparent_hugepage/defrag`` file, whose selected mode is in
        brackets (``always defer defer+madvise [madvise] never``).

    Returns
    -------
    bool
        False when the file is absent or unreadable (not Linux, no transparent huge
        pages) or names no stalling mode.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "defrag"
    >>> _ = f.write_text("always defer defer+madvise [madvise] never")
    >>> hugepage_advice_stalls(f)
    True
    """
    try:
        text = Path(defrag).read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    selected = [w[1:-1] for w in text.split() if w.startswith("[") and w.endswith("]")]
    return bool(selected) and selected[0] in _STALLING_MODES


def limit_hugepage_advice(defrag: str | Path = DEFRAG_PATH) -> bool:
    """Set ``NUMPY_MADVISE_HUGEPAGE=0`` where huge-page advice stalls; True if this set it.

    Only when the user has not set the variable and :func:`hugepage_advice_stalls`
    says the kernel would compact on such faults. Effective only before numpy is first
    imported in the process; child processes inherit it.
    """
    if HUGEPAGE_VARIABLE in os.environ or not hugepage_advice_stalls(defrag):
        return False
    return _default(HUGEPAGE_VARIABLE, "0")


def launch_environment() -> Mapping[str, str]:
    """The environment as the user launched the process (without the defaults above).

    For baselines that ``bench speed`` runs as other programs, so they get the threads
    and memory behaviour they would get from the user's shell.
    """
    env = dict(os.environ)
    for variable in _defaulted:
        env.pop(variable, None)
    return env


def defer_unused_numpy_modules(names: Sequence[str] = UNUSED_NUMPY_MODULES) -> tuple[str, ...]:
    """Register numpy submodules as lazy modules that run on first use; the ones deferred.

    A submodule already imported (or already registered) is left as it is. Importing
    numpy is part of this call.

    Parameters
    ----------
    names : sequence of str
        Dotted names of numpy submodules.

    Returns
    -------
    tuple of str
        The names registered now.
    """
    import numpy  # noqa: F401  (the parent must exist before its submodules)

    deferred = []
    for name in names:
        parent, _, child = name.rpartition(".")
        if name in sys.modules or parent not in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            continue
        loader = importlib.util.LazyLoader(spec.loader)
        spec.loader = loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)  # lazy: runs the module on its first attribute access
        setattr(sys.modules[parent], child, module)
        deferred.append(name)
    return tuple(deferred)


def reuse_freed_memory(threshold: int = MALLOC_THRESHOLD) -> bool:
    """Raise glibc's mmap and trim thresholds to ``threshold`` bytes; True if this did.

    Nothing happens (False) when the user set one of glibc's malloc variables, or the C
    library is not glibc.
    """
    if any(v in os.environ for v in _MALLOC_VARIABLES) or not _glibc():
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, threshold)
    )


def _glibc() -> bool:
    """Whether the C library is glibc.

    What ``platform.libc_ver`` asks first, without importing ``platform`` at every start.
    """
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):
        return False
