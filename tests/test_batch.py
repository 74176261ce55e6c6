"""sitewatch batch: watch lists on a real dask.distributed LocalCluster (2 workers)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import sitewatch as sw
from sitewatch.batch import batch_exit_code, load_watchlist, run_job
from sitewatch.cli.main import main
from sitewatch.errors import InputError

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """Address of a LocalCluster of 2 worker processes shared by the module."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address="127.0.0.1:0",  # no fixed port (8787 may be taken)
        silence_logs=logging.ERROR,
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> sw.SyntheticSeries:
    return sw.synthetic_series(tmp_path_factory.mktemp("series"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _three_jobs(tmp: Path, series: sw.SyntheticSeries) -> Path:
    demo = sw.demo_paths()
    first, last = series.folders[0], series.folders[-1]
    return _write(
        tmp / "watch.toml",
        f"""
out = "runs"

[defaults]
min_area_m2 = 300

[[job]]
name = "demo"
aoi = "{demo["aoi"]}"
before = "{demo["before"]}"
after = "{demo["after"]}"

[[job]]
aoi = "feb11-plant"
before = "{first}"
after = "{last}"
smooth = 1.0

[[job]]
name = "broken"
aoi = "feb11-plant"
before = "no/such/folder"
after = "{last}"
""",
    )


def _summary(out: Path) -> dict:
    return json.loads((out / "batch_summary.json").read_text(encoding="utf-8"))


def test_batch_runs_reports_failures_and_resumes(tmp_path, series, scheduler, capsys):
    wl = _three_jobs(tmp_path, series)
    runs = tmp_path / "runs"
    pair = "feb11-plant_2021-01-16_2021-06-15"

    assert main(["batch", str(wl), "--scheduler", scheduler]) == 2
    cap = capsys.readouterr()
    jobs = {j["name"]: j for j in _summary(runs)["jobs"]}
    assert list(jobs) == ["demo", pair, "broken"]
    for name in ("demo", pair):
        assert jobs[name]["status"] == "ok", jobs[name]
        assert (runs / name / "report.html").is_file()
        assert (runs / name / "manifest.json").is_file()
    assert jobs[pair]["n_polygons"] >= 1  # the planted building
    broken = jobs["broken"]
    assert broken["status"] == "failed"
    assert broken["exit_code"] == 2
    assert "no/such/folder does not exist" in broken["error"]
    assert "\n" not in broken["error"]
    assert not (runs / "broken").exists()
    assert [p.name for p in runs.iterdir() if p.name.startswith(".")] == []  # no temp folders
    assert "FAILED broken (exit 2)" in cap.err
    assert "[3/3]" in cap.err
    table = cap.out.splitlines()
    assert table[0].split()[:3] == ["name", "status", "polygons"]
    assert any(ln.startswith("broken") and "failed (exit 2)" in ln for ln in table)

    # A finished job keeps its manifest; the failed one is retried (on a default cluster).
    manifest = runs / "demo" / "manifest.json"
    mtimes = {n: (runs / n / "manifest.json").stat().st_mtime_ns for n in ("demo", pair)}
    assert main(["batch", str(wl), "--workers", "2"]) == 2
    cap = capsys.readouterr()
    jobs = {j["name"]: j for j in _summary(runs)["jobs"]}
    assert [jobs[n]["status"] for n in ("demo", pair, "broken")] == ["skipped", "skipped", "failed"]
    assert jobs["demo"]["n_polygons"] is not None  # read back from the manifest
    assert {n: (runs / n / "manifest.json").stat().st_mtime_ns for n in mtimes} == mtimes
    assert "skipped (done) demo" in cap.err
    assert json.loads(manifest.read_text())["command"][1:] == [
        "batch",
        str(wl),
        "--job",
        "demo",
        "--rerun",
    ]

    # --job selects jobs; all skipped: no cluster is started and the exit code is 0.
    assert main(["batch", str(wl), "--job", "demo", "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_timeline_job_and_json(tmp_path, series, scheduler, capsys):
    wl = _write(
        tmp_path / "tl.toml",
        f"""
out = "out"
[[job]]
name = "series"
aoi = "feb11-plant"
images = {json.dumps([str(f) for f in series.folders])}
""",
    )
    assert main(["batch", str(wl), "--scheduler", scheduler, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (job,) = doc["jobs"]
    assert job["kind"] == "timeline"
    assert job["status"] == "ok"
    assert job["n_polygons"] == 1  # the building persists; the transient is dropped
    assert (tmp_path / "out" / "series" / "timeline.json").is_file()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[job]]\naoi = "feb11-plant"\nbefore = "2020-06"\nafter = "2024-10"\ncolour = 1\n',
            "job 1: unknown key 'colour'",
        ),
        (
            '[[job]]\nname = "a"\naoi = "feb11-plant"\nbefore = "2020-06"\n',
            "job 1 (a): missing key 'after'",
        ),
        (
            '[[job]]\nname = "a"\naoi = "x"\nbefore = "2020"\nafter = "2021"\n'
            '[[job]]\nname = "a"\naoi = "y"\nbefore = "2020"\nafter = "2021"\n',
            "job 2 (a): duplicate name",
        ),
        (
            '[defaults]\nmethod = "magic"\n[[job]]\naoi = "x"\nbefore = "a"\nafter = "b"\n',
            "[defaults]: unknown method 'magic'",
        ),
        (
            '[[job]]\naoi = "x"\nfrom = "2020-01"\nto = "2021-01"\nevery = "3W"\n',
            "job 1: --every '3W'",
        ),
        (
            '[[job]]\naoi = "x"\nbefore = "a"\nafter = "b"\nk = "four"\n',
            "job 1: k = 'four' must be a number",
        ),
        (
            '[[job]]\naoi = "x"\nfrom = "2020-01"\nto = "2021-01"\ntimeline_model = "s"\n',
            "job 1: timeline_model = 's' must be one of auto, step, pairs",
        ),
        (
            '[[job]]\naoi = "x"\nfrom = "2020-01"\nto = "2021-01"\nfdr = 2\n',
            "job 1: fdr = 2 must be between 0 and 1",
        ),
        (
            '[[job]]\naoi = "x"\nbefore = "a"\nafter = "b"\nfdr = 0.05\n',
            "key 'fdr' is for timeline jobs",
        ),
        ('out = "runs"\n', "no jobs"),
        ("[[job]\n", "not valid TOML"),
    ],
)
def test_invalid_watch_list_is_one_line_and_creates_nothing(tmp_path, capsys, text, message):
    wl = _write(tmp_path / "bad.toml", text)
    assert main(["batch", str(wl)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_watch_list_paths_names_and_defaults(tmp_path):
    (tmp_path / "a").mkdir()
    wl = _write(
        tmp_path / "w.toml",
        """
out = "results"
[defaults]
method = "cva"
max_cloud = 30
[[job]]
aoi = "sites/plant.geojson"
before = "a"
after = "2024-10-01/2024-10-31"
method = "irmad"
[[job]]
aoi = "feb11-plant"
from = "2020-01"
to = "2024-12"
every = "6M"
timeline_model = "step"
fdr = 0.05
""",
    )
    parsed = load_watchlist(wl)
    assert parsed.out == tmp_path / "results"
    pair, timeline = parsed.jobs
    assert pair.name == "plant_a_2024-10-01-2024-10-31"
    assert pair.kind == "pair"
    assert pair.aoi == str(tmp_path / "sites" / "plant.geojson")
    assert pair.before == str(tmp_path / "a")
    assert pair.after == "2024-10-01/2024-10-31"
    assert pair.options == {"method": "irmad", "max_cloud": 30}
    assert timeline.kind == "timeline"
    assert timeline.name == "feb11-plant_2020-01_2024-12"
    assert (timeline.start, timeline.end, timeline.every) == ("2020-01", "2024-12", "6M")
    assert timeline.options["method"] == "cva"
    assert (timeline.options["timeline_model"], timeline.options["fdr"]) == ("step", 0.05)


def test_watch_list_model_and_cache_paths_are_relative_to_it(tmp_path):
    (tmp_path / "lists").mkdir()
    wl = _write(
        tmp_path / "lists" / "w.toml",
        """
[defaults]
cache = "cache"
[[job]]
aoi = "feb11-plant"
before = "2023-10"
after = "2024-10"
method = "learned"
weights = "models/mine.json"
""",
    )
    (job,) = load_watchlist(wl).jobs
    assert job.options["weights"] == str(tmp_path / "lists" / "models" / "mine.json")
    assert job.options["cache"] == str(tmp_path / "lists" / "cache")


def test_run_job_never_raises(tmp_path):
    spec = {
        "name": "x",
        "kind": "pair",
        "aoi": "no-such-aoi",
        "before": "a",
        "after": "b",
        "options": {},
        "out": str(tmp_path / "x"),
        "overwrite": False,
    }
    summary = run_job(spec)
    assert summary["status"] == "failed"
    assert summary["exit_code"] == 2
    assert "no AOI 'no-such-aoi'" in summary["error"]
    assert not (tmp_path / "x").exists()


def test_batch_exit_code():
    ok, skipped = {"status": "ok"}, {"status": "skipped"}
    assert batch_exit_code([ok, skipped]) == 0
    assert batch_exit_code([ok, {"status": "failed", "exit_code": 2}]) == 2
    failures = [{"status": "failed", "exit_code": c} for c in (2, 3, 1)]
    assert batch_exit_code(failures) == 3
    assert batch_exit_code([{"status": "failed", "exit_code": 1}]) == 1


def test_scheduler_and_workers_exclusive(tmp_path, capsys):
    wl = _write(tmp_path / "w.toml", '[[job]]\naoi = "x"\nbefore = "a"\nafter = "b"\n')
    assert main(["batch", str(wl), "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"]) == 2
    assert "--workers" in capsys.readouterr().err
    with pytest.raises(InputError, match="does not exist"):
        load_watchlist(tmp_path / "missing.toml")


def test_job_folder_of_user_files_is_never_replaced(tmp_path, series):
    demo = sw.demo_paths()
    out = tmp_path / "x"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    spec = {
        "name": "x",
        "kind": "pair",
        "aoi": str(demo["aoi"]),
        "before": str(demo["before"]),
        "after": str(demo["after"]),
        "options": {},
        "out": str(out),
        "overwrite": True,  # what a --rerun asks for
    }
    summary = run_job(spec)
    assert summary["status"] == "failed" and summary["exit_code"] == 2
    assert "did not write" in summary["error"]
    assert (out / "notes.txt").read_text() == "mine"
    spec["out"] = str(series.folders[0])  # a job writing over its own input
    summary = run_job(spec | {"before": str(series.folders[0])})
    assert summary["status"] == "failed" and "is an input" in summary["error"]


def test_batch_without_the_dask_extra_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    wl = _write(tmp_path / "w.toml", '[[job]]\naoi = "feb11-plant"\nbefore = "a"\nafter = "b"\n')
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    assert main(["batch", str(wl)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sitewatch: error: "), err
    assert "'dask' extra" in err[0] and "pip install --only-binary=:all: '.[dask]'" in err[0]
    assert not (tmp_path / "runs").exists()


def test_watch_list_redact_paths(tmp_path):
    demo = sw.demo_paths()
    wl = _write(
        tmp_path / "w.toml",
        f"""
out = "runs"
[defaults]
redact_paths = true
[[job]]
name = "demo"
aoi = "{demo["aoi"]}"
before = "{demo["before"]}"
after = "{demo["after"]}"
""",
    )
    job = load_watchlist(wl).jobs[0]
    assert job.options["redact_paths"] is True
    summary = run_job(job.spec(tmp_path / "runs"))
    assert summary["status"] == "ok", summary
    manifest = (tmp_path / "runs" / "demo" / "manifest.json").read_text()
    assert json.loads(manifest)["paths_redacted"] is True
    assert str(demo["before"].parent) not in manifest
    with pytest.raises(InputError, match="redact_paths"):
        load_watchlist(_write(tmp_path / "bad.toml", wl.read_text().replace("true", '"yes"')))
