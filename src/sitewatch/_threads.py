"""One owner of the cores: the engine's block pool, not OpenBLAS's threads as well.

The detection engine (:mod:`sitewatch.detect.engine`) scores blocks on a thread pool as
wide as the machine. Inside each block, numpy's matrix products (IR-MAD's transform of
every pixel) call OpenBLAS, which would start threads of its own and keep them spinning
between calls, against the pool's threads. OpenBLAS reads its thread count once, when
numpy is first imported, so the command line sets ``OPENBLAS_NUM_THREADS=1`` before
that, unless the user set it. Measured whole-process on a 2048² pair, 2 cores
(``sitewatch detect --method irmad --no-report``, 8 runs each way, alternating): 0.85×
the wall time and 0.72× the CPU time of the same run with OpenBLAS's default threads.

A library user who imports numpy first keeps whatever OpenBLAS was started with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["BLAS_VARIABLE", "launch_environment", "limit_blas_threads"]

BLAS_VARIABLE = "OPENBLAS_NUM_THREADS"

_defaulted = False


def limit_blas_threads() -> bool:
    """Set ``OPENBLAS_NUM_THREADS=1`` unless the user set it; True if this set it.

    Effective only before numpy is first imported in the process; child processes
    (dask workers, notebook kernels) inherit it.
    """
    global _defaulted
    if BLAS_VARIABLE in os.environ:
        return False
    os.environ[BLAS_VARIABLE] = "1"
    _defaulted = True
    return True


def launch_environment() -> Mapping[str, str]:
    """The environment as the user launched the process (without the default above).

    For baselines that ``bench speed`` runs as other programs, so they get the threads
    they would get from the user's shell.
    """
    env = dict(os.environ)
    if _defaulted:
        env.pop(BLAS_VARIABLE, None)
    return env
