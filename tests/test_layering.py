"""One library API owns orchestration (issue 14, point 1): the CLI is a thin layer over it.

No module outside ``sitewatch/cli/`` imports ``sitewatch.cli``; batch builds the library's
job specs with no argument parser.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sitewatch

SRC = Path(sitewatch.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_no_module_outside_cli_imports_cli():
    offenders = {
        str(p.relative_to(SRC)): sorted(m for m in _imports(p) if m.startswith("sitewatch.cli"))
        for p in SRC.rglob("*.py")
        if "cli" not in p.relative_to(SRC).parts
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_batch_uses_no_argument_parser():
    assert "argparse" not in _imports(SRC / "batch.py")


def test_a_watch_list_job_maps_onto_the_library_job_specs(tmp_path):
    from sitewatch.batch import job_spec
    from sitewatch.run import DetectJob, SceneQuery, TimelineJob

    spec = {
        "name": "f11",
        "kind": "pair",
        "aoi": "feb11-plant",
        "before": "2020-06",
        "after": "2024-10",
        "out": str(tmp_path / "f11"),
        "overwrite": False,
        "options": {"source": "landsat", "composite": True, "k": 5.0, "cache": False},
    }
    job = job_spec(spec)
    assert isinstance(job, DetectJob)
    assert job.scenes == SceneQuery(source="landsat", composite=True, cache=False)
    assert job.options.k == 5.0 and job.before == "2020-06" and job.command is None
    series = job_spec({**spec, "kind": "timeline", "images": [], "start": "2020", "end": "2024"})
    assert isinstance(series, TimelineJob) and series.every == "3M"


def test_python_errors_name_python_arguments(tmp_path):
    from sitewatch.errors import InputError
    from sitewatch.run import DetectJob, detect

    with pytest.raises(InputError, match=r"before= 2023-10\.\.2023-11 is neither"):
        detect(DetectJob(before="2023-10..2023-11", after="2024-10", out=tmp_path / "o"))


def test_light_copies_of_names_match_the_implementations():
    from sitewatch.cli.wayback_cmd import LIST_ZOOM
    from sitewatch.detect.methods import SCORERS
    from sitewatch.detect.options import METHODS
    from sitewatch.sources.stac import COLLECTIONS
    from sitewatch.sources.wayback import DEFAULT_ZOOM

    assert tuple(SCORERS) == METHODS
    assert LIST_ZOOM == DEFAULT_ZOOM
    from sitewatch.aoi import CONFIDENCE_LEVELS
    from sitewatch.cli.aoi_cmd import CONFIDENCE_LEVELS as CLI_LEVELS

    assert CLI_LEVELS == CONFIDENCE_LEVELS
    from sitewatch.cli.main import build_parser

    search = next(
        a.choices
        for a in build_parser()._subparsers._group_actions[0].choices["search"]._actions
        if "--source" in a.option_strings
    )
    assert set(search) == set(COLLECTIONS)


def _prints(code: str, timeout: float = 60) -> str:
    """What ``python -c code`` prints, in a fresh interpreter."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=timeout
    ).stdout.strip()


def test_start_up_imports_no_numeric_stack():
    """Building the command line imports no numpy, scipy, rasterio or shapely."""
    code = (
        "import sys; from sitewatch.cli.main import build_parser; build_parser(); "
        "print(sorted(m for m in ('numpy', 'scipy', 'rasterio', 'shapely', 'skimage') "
        "if m in sys.modules))"
    )
    assert _prints(code) == "[]"


def test_reading_images_imports_no_scipy():
    """What ``detect`` runs up to reading the images loads no scipy: the engine's modules
    load on a second thread during the read (``pipeline.detect_change``)."""
    code = (
        "import sys; import sitewatch.cli.detect_cmd, sitewatch.run, sitewatch.pipeline, "
        "sitewatch.report, sitewatch.sources.local, sitewatch.prepare.masks, sitewatch._units; "
        "print(sorted(m for m in sys.modules if m == 'scipy' or m.startswith('scipy.')))"
    )
    assert _prints(code) == "[]"


def test_detect_reads_its_images_before_loading_scipy(planted_pair, tmp_path):
    """Through ``sitewatch detect``, scipy is not loaded when the first image is read (with
    the preload thread disabled, so the check is not a race), and the run completes."""
    before, after, _ = planted_pair()
    code = (
        "import sys, threading\n"
        "import sitewatch.pipeline as p, sitewatch.sources.local as L\n"
        "def idle(name):\n"
        "    t = threading.Thread(target=lambda: None)\n"
        "    t.start()\n"
        "    return t\n"
        "p.preload_module = idle\n"
        "seen = []\n"
        "read = L.LocalSource.read\n"
        "def spy(self, *a, **k):\n"
        "    seen.append(sorted(m for m in ('scipy', 'sitewatch.blocks', 'skimage') "
        "if m in sys.modules))\n"
        "    return read(self, *a, **k)\n"
        "L.LocalSource.read = spy\n"
        "from sitewatch.cli.main import main\n"
        f"rc = main(['detect', '--before', {str(before)!r}, '--after', {str(after)!r}, "
        f"'--out', {str(tmp_path / 'run')!r}, '--quiet', '--no-report'])\n"
        "print(rc, seen[0])\n"
    )
    assert _prints(code, timeout=120).splitlines()[-1] == "0 []"


def test_an_opened_local_source_is_protected_as_an_input(planted_pair):
    """Through the API, an input may be an opened source; its folder is still never replaced."""
    from sitewatch.errors import OutputError
    from sitewatch.run import DetectJob, detect
    from sitewatch.sources.local import open_local

    before, after, _ = planted_pair(folder=True)
    with pytest.raises(OutputError, match="is an input"):
        detect(DetectJob(before=open_local(before), after=after, out=before, overwrite=True))
    assert any(before.iterdir())


def test_threads_must_be_positive(tmp_path, planted_pair, capsys):
    from sitewatch.cli.main import main
    from sitewatch.errors import InputError
    from sitewatch.run import DetectJob, detect

    before, after, _ = planted_pair()
    with pytest.raises(InputError, match="threads= 0 must be 1 or more"):
        detect(DetectJob(before=before, after=after, out=tmp_path / "o", threads=0))
    code = main(
        [
            "detect",
            "--before",
            str(before),
            "--after",
            str(after),
            "--out",
            str(tmp_path / "c"),
            "--threads",
            "0",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--threads 0 must be 1 or more" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists() and not (tmp_path / "c").exists()


def test_the_engine_threads_do_not_change_a_run(tmp_path, planted_pair):
    """Whole runs on 1 and 2 threads write the same polygons."""
    import json

    from sitewatch.run import DetectJob, detect

    before, after, _ = planted_pair()
    out = {}
    for threads in (1, 2):
        detect(
            DetectJob(
                before=before,
                after=after,
                out=tmp_path / f"t{threads}",
                threads=threads,
                report=False,
                bands="blue,green,red,nir",
            )
        )
        fc = json.loads((tmp_path / f"t{threads}" / "changes.geojson").read_text())
        out[threads] = [(f["geometry"], f["properties"]["area_px"]) for f in fc["features"]]
    assert out[1] and out[1] == out[2]
