"""The command line leaves the cores to the engine's pool (sitewatch._threads)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "import os, sitewatch.cli, numpy; from sitewatch._threads import launch_environment as e; "
    "v = 'OPENBLAS_NUM_THREADS'; print(os.environ.get(v), e().get(v))"
)


def _probe(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
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
