"""A run killed while writing leaves nothing behind once the job runs again (issue 14).

A SIGKILL (an out-of-memory kill, a lost dask worker) gives sitewatch no chance to
clean up its hidden temporary folder ``.<name>.tmp-*``. The folder carries a marker
naming its writer; the next run of the same output (and every batch, for its jobs)
removes such folders when their writer is gone, and nothing else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sitewatch.report.output import PARTIAL_MARKER, atomic_output_dir, sweep_stale

WRITER = """
import sys, time
from sitewatch.report.output import atomic_output_dir
with atomic_output_dir(sys.argv[1]) as tmp:
    (tmp / "score.tif").write_bytes(b"half")
    print("WRITING", flush=True)
    time.sleep(60)
"""


def _killed_writer(out: Path) -> Path:
    """Run a writer in another process, SIGKILL it mid-write; return its temporary folder."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "WRITING"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    (tmp,) = out.parent.glob(f".{out.name}.tmp-*")
    return tmp


def test_the_next_run_sweeps_what_a_killed_run_left(tmp_path):
    out = tmp_path / "run"
    tmp = _killed_writer(out)
    assert (tmp / PARTIAL_MARKER).is_file() and not out.exists()
    with atomic_output_dir(out) as new:
        (new / "manifest.json").write_text("{}", encoding="utf-8")
    assert not tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]  # no marker left


def test_only_sitewatch_leftovers_of_dead_writers_are_swept(tmp_path):
    out = tmp_path / "run"
    dead = _killed_writer(out)
    foreign = tmp_path / ".run.tmp-mine"  # the user's, no marker
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep", encoding="utf-8")
    live = tmp_path / ".run.tmp-live"  # a run still writing (this process)
    live.mkdir()
    (live / PARTIAL_MARKER).write_text(
        json.dumps({"host": os.uname().nodename, "pid": os.getpid(), "start": None}), "utf-8"
    )
    other = tmp_path / ".other.tmp-x"  # another output's
    other.mkdir()
    assert sweep_stale(out) == [dead]
    assert foreign.is_dir() and live.is_dir() and other.is_dir()


def _big_pair(root: Path, n: int = 1400) -> tuple[Path, Path]:
    import rasterio
    from affine import Affine

    rng = np.random.default_rng(7)
    base = rng.integers(40, 120, size=(3, n, n), dtype=np.uint8)
    after = base.copy()
    after[:, 600:640, 600:660] = 230  # a planted roof
    paths = []
    for name, data in (("before.tif", base), ("after.tif", after)):
        path = root / name
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=n,
            height=n,
            count=3,
            dtype="uint8",
            crs="EPSG:32633",
            transform=Affine(1, 0, 500_000, 0, -1, 5_000_000),
        ) as dst:
            dst.write(data)
            dst.descriptions = ("red", "green", "blue")
        paths.append(path)
    return paths[0], paths[1]


@pytest.mark.slow
def test_a_dask_worker_killed_mid_job_leaves_nothing_behind(tmp_path):
    pytest.importorskip("distributed")
    from sitewatch.batch import load_watchlist, run_batch

    before, after = _big_pair(tmp_path)
    wl = tmp_path / "watch.toml"
    from pyproj import Transformer

    from conftest import lonlat_box, write_geojson

    to_ll = Transformer.from_crs(32633, 4326, always_xy=True)
    (w, s), (e, n) = to_ll.transform(500_050, 4_998_650), to_ll.transform(501_350, 4_999_950)
    aoi = write_geojson(tmp_path / "site.geojson", lonlat_box(w, s, e, n))
    wl.write_text(
        f'out = "runs"\n\n[[job]]\nname = "big"\naoi = "{aoi}"\n'
        f'before = "{before}"\nafter = "{after}"\n',
        encoding="utf-8",
    )
    out = tmp_path / "runs"
    result: dict = {}

    def batch() -> None:
        result.update(run_batch(load_watchlist(wl), workers=1))

    thread = threading.Thread(target=batch)
    thread.start()
    killed = None
    deadline = time.monotonic() + 240
    while thread.is_alive() and killed is None and time.monotonic() < deadline:
        for tmp in out.glob(".big.tmp-*"):
            try:
                owner = json.loads((tmp / PARTIAL_MARKER).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            os.kill(int(owner["pid"]), signal.SIGKILL)  # the worker, mid-write
            killed = tmp
            break
        time.sleep(0.01)
    thread.join(timeout=300)
    assert killed is not None, "the job finished before it could be killed"
    assert not thread.is_alive()
    (job,) = result["jobs"]
    assert job["status"] == "ok", job  # dask ran it again on the restarted worker
    assert not killed.exists()
    left = sorted(p.name for p in out.iterdir())
    assert left == ["batch_summary.json", "big"], left
    assert not (out / "big" / PARTIAL_MARKER).exists()
