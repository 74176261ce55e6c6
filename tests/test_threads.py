"""The command line's process defaults (sitewatch._threads): BLAS threads, huge pages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sitewatch import _threads
from sitewatch._threads import hugepage_advice_stalls, limit_hugepage_advice

PROBE = (
    "import os, sitewatch.cli, numpy; from sitewatch._threads import launch_environment as e; "
    "v = 'OPENBLAS_NUM_THREADS'; print(os.environ.get(v), e().get(v))"
)
HUGEPAGE_PROBE = (
    "import sitewatch.cli, numpy; from sitewatch._threads import launch_environment as e; "
    "from sitewatch._threads import hugepage_advice_stalls as s; "
    "print(s(), numpy._core.multiarray._get_madvise_hugepage(), "
    "e().get('NUMPY_MADVISE_HUGEPAGE'))"
)
OURS = ("OPENBLAS_NUM_THREADS", "NUMPY_MADVISE_HUGEPAGE")
# Probes start without the user's malloc settings too: dask's nanny leaves
# MALLOC_TRIM_THRESHOLD_ in the environment of the process that ran a LocalCluster.
OURS += ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def _probe(code: str = PROBE, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in OURS}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_cli_sets_one_blas_thread_and_baselines_get_the_launch_environment():
    assert _probe() == "1 None"


@pytest.mark.parametrize("value", ["4", "1"])
def test_a_users_blas_setting_is_kept(value):
    assert _probe(OPENBLAS_NUM_THREADS=value) == f"{value} {value}"


@pytest.mark.parametrize(
    ("text", "stalls"),
    [
        ("always defer defer+madvise [madvise] never\n", True),
        ("always defer [defer+madvise] madvise never\n", True),
        ("[always] defer defer+madvise madvise never\n", True),
        ("always [defer] defer+madvise madvise never\n", False),
        ("always defer defer+madvise madvise [never]\n", False),
        ("always defer defer+madvise madvise never\n", False),  # nothing selected
        ("", False),
    ],
)
def test_which_defrag_modes_stall(tmp_path, text, stalls):
    f = tmp_path / "defrag"
    f.write_text(text)
    assert hugepage_advice_stalls(f) is stalls


def test_no_defrag_file_means_no_stall(tmp_path):
    assert hugepage_advice_stalls(tmp_path / "absent") is False


def test_huge_page_advice_is_switched_off_only_where_it_stalls(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    monkeypatch.setattr(_threads, "_defaulted", set())
    calm, stalling = tmp_path / "calm", tmp_path / "stalling"
    calm.write_text("always [defer] defer+madvise madvise never\n")
    stalling.write_text("always defer defer+madvise [madvise] never\n")
    assert limit_hugepage_advice(calm) is False
    assert "NUMPY_MADVISE_HUGEPAGE" not in os.environ
    assert limit_hugepage_advice(stalling) is True
    assert os.environ["NUMPY_MADVISE_HUGEPAGE"] == "0"
    assert "NUMPY_MADVISE_HUGEPAGE" not in _threads.launch_environment()
    monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")  # the user's choice wins
    monkeypatch.setattr(_threads, "_defaulted", set())
    assert limit_hugepage_advice(stalling) is False
    assert os.environ["NUMPY_MADVISE_HUGEPAGE"] == "1"
    assert _threads.launch_environment()["NUMPY_MADVISE_HUGEPAGE"] == "1"


def test_cli_process_follows_this_kernel_and_baselines_get_numpys_default():
    stalls, advised, launched = _probe(HUGEPAGE_PROBE).split()
    # numpy advises huge pages (on Linux) unless the command line switched it off here.
    assert advised == ("False" if stalls == "True" or sys.platform != "linux" else "True")
    assert launched == "None"


@pytest.mark.skipif(sys.platform != "linux", reason="numpy advises huge pages on Linux only")
def test_a_users_huge_page_setting_is_kept():
    _, advised, launched = _probe(HUGEPAGE_PROBE, NUMPY_MADVISE_HUGEPAGE="1").split()
    assert (advised, launched) == ("True", "1")


LAZY_PROBE = (
    "import sys; from sitewatch._threads import defer_unused_numpy_modules as d; "
    "print(','.join(d()) or '-', end=' '); import scipy.ndimage; "
    "ran = 'numpy.f2py.crackfortran' in sys.modules, 'unittest' in sys.modules; "
    "import numpy.testing as t; t.assert_array_equal([1], [1]); "
    "import numpy.f2py as f; print(*ran, callable(f.run_main), d() or '-')"
)


def test_scipy_import_skips_numpys_unused_submodules_until_they_are_used():
    deferred, f2py_ran, unittest_ran, usable, again = _probe(LAZY_PROBE).split()
    assert deferred == "numpy.f2py,numpy.testing"
    # scipy.ndimage imported without running either module; both work when used.
    assert (f2py_ran, unittest_ran, usable) == ("False", "False", "True")
    assert again == "-"  # registered once


def test_modules_already_imported_are_left_alone():
    code = (
        "import numpy.testing, sys; from sitewatch._threads import defer_unused_numpy_modules "
        "as d; print(d(), type(sys.modules['numpy.testing']).__name__)"
    )
    assert _probe(code) == "('numpy.f2py',) module"


def test_the_command_line_defers_them():
    code = (
        "import sys; from sitewatch.cli.main import main; main(['aoi', 'list']); "
        "print(type(sys.modules['numpy.f2py']).__name__, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stderr.strip().splitlines()[-1] == "_LazyModule"


FAULTS_PROBE = (
    "import resource, numpy as np; {setup}; "
    "flt = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt; "
    "a = np.ones(6 << 20); del a; f0 = flt(); a = np.ones(6 << 20); "  # 48 MB, twice
    "print(done, flt() - f0)"
)
GLIBC = sys.platform == "linux" and __import__("platform").libc_ver()[0] == "glibc"


def _faults(setup: str, **env: str) -> tuple[str, int]:
    done, faults = _probe(
        FAULTS_PROBE.format(setup=setup), NUMPY_MADVISE_HUGEPAGE="0", **env
    ).split()
    return done, int(faults)


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    setup = "from sitewatch._threads import reuse_freed_memory; done = reuse_freed_memory()"
    done, faults = _faults(setup)
    assert done == "True" and faults < 1000  # the 12,288 pages came back from the heap
    # Without it, glibc unmaps a 48 MB array when freed and the next one faults again (page
    # by page, unless the kernel backs every mapping with huge pages).
    enabled = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not (enabled.exists() and "[always]" in enabled.read_text()):
        assert _faults("done = None")[1] > 10_000


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_the_command_line_reuses_freed_memory_unless_the_user_tuned_malloc():
    assert _faults("import sitewatch.cli; done = 1")[1] < 1000
    setup = "from sitewatch._threads import reuse_freed_memory; done = reuse_freed_memory()"
    for variable in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"):
        value = "glibc.malloc.check=0" if variable == "GLIBC_TUNABLES" else "131072"
        assert _faults(setup, **{variable: value})[0] == "False"
