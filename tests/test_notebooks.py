"""The example notebooks (notebooks/*.ipynb): executed end to end, committed clean.

Each notebook runs in a fresh kernel of *this* interpreter (a kernel spec written to
a temp dir that is put first on JUPYTER_PATH, so a user-level "python3" kernel of
another Python cannot be picked up), with a temp dir as working directory.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import os
import re
import sys
import warnings
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

import sitewatch as sw
from conftest import SHARED

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01_quickstart", "02_feb11_plant", "03_methods"]
OSCD_IMAGES = SHARED / "data" / "oscd" / "Onera Satellite Change Detection dataset - Images"
HAVE_OSCD = OSCD_IMAGES.is_dir()

EXPECTED = {
    "01_quickstart": [
        "demo-mumbai",
        "threshold ",
        "polygons in all",
        "report.html",
        "changes.gpkg",
        "quicklooks/overlay.png",
        "reloaded",
    ],
    "02_feb11_plant": [
        "working_box",
        "Building B (large central building)",
        "unresolved conflicts",
        "2024-10-01 → 2024-12-31",
        "SYNTHETIC series",
        # the planted building is dated to the day it appeared; the transient is dropped
        "building: first seen 2021-03-17, planted 2021-03-17",
        "status persistent",
        "transient: first seen 2021-05-16, planted 2021-05-16, status transient",
        "1 dropped as transient",
    ],
    "03_methods": [
        "8 methods on the demo pair",
        "SYNTHETIC pair 2021-01-16 → 2021-06-15",
        *(
            ["OSCD found at", "mean over cities  construction"]
            if HAVE_OSCD
            else ["shared data not found: skipping OSCD PR curves"]
        ),
    ],
}


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def _text(nb: nbformat.NotebookNode) -> tuple[str, list[str], int]:
    """Stdout + text/plain outputs, stderr chunks, number of PNG outputs."""
    out, err, pngs = [], [], 0
    for cell in _code_cells(nb):
        for o in cell.outputs:
            if o.output_type == "stream":
                (err if o.name == "stderr" else out).append(o.text)
            elif o.output_type in {"execute_result", "display_data"}:
                out.append(o.data.get("text/plain", ""))
                pngs += "image/png" in o.data
    return "".join(out), err, pngs


def write_html(nb: nbformat.NotebookNode, path: Path) -> Path:
    """An executed notebook as one self-contained HTML page (figures embedded).

    nbconvert's exporter when it is installed (the ``notebooks`` extra); otherwise a
    plain page: markdown as text, code, text outputs and PNG figures.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from nbconvert import HTMLExporter
    except ImportError:
        parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(path.stem)}</title>"]
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                parts.append(f"<pre style='white-space:pre-wrap'>{html.escape(cell.source)}</pre>")
                continue
            parts.append(
                f"<pre style='background:#f4f4f4'><code>{html.escape(cell.source)}</code></pre>"
            )
            for o in cell.get("outputs", []):
                if o.output_type == "stream":
                    parts.append(f"<pre>{html.escape(o.text)}</pre>")
                elif o.output_type in {"execute_result", "display_data"}:
                    if "image/png" in o.data:
                        png = o.data["image/png"].replace("\n", "")
                        base64.b64decode(png)  # a broken figure fails here, not in a browser
                        parts.append(f"<img src='data:image/png;base64,{png}'>")
                    elif "text/html" in o.data:
                        parts.append(o.data["text/html"])
                    else:
                        parts.append(f"<pre>{html.escape(o.data.get('text/plain', ''))}</pre>")
                elif o.output_type == "error":
                    parts.append(f"<pre>{html.escape(o.ename)}: {html.escape(o.evalue)}</pre>")
        path.write_text("\n".join(parts), encoding="utf-8")
        return path
    body, _ = HTMLExporter().from_notebook_node(nb)
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JUPYTER_PATH whose "python3" kernel is this interpreter (sys.executable)."""
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(root / "kernels" / "python3")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(
    name: str, jupyter_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("SITEWATCH_SHARED", str(SHARED))  # the kernel's cwd is tmp_path
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    with warnings.catch_warnings():
        # jupyter_client / zmq / tornado deprecations, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        spec = KernelSpecManager().get_kernel_spec("python3")
        assert Path(spec.resource_dir) == jupyter_path / "kernels" / "python3"
        assert spec.argv[0] == sys.executable
        client.execute()  # raises CellExecutionError on the first failing cell

    text, stderr, pngs = _text(nb)
    for expected in EXPECTED[name]:
        assert expected in text, f"{name}: {expected!r} not in the output"
    assert not stderr, f"{name} wrote to stderr: {''.join(stderr)[:2000]}"
    assert pngs >= 1, f"{name} displayed no image"
    assert all(c.execution_count for c in _code_cells(nb))
    assert not list(tmp_path.iterdir()), "a notebook wrote into its working directory"
    # CI keeps an executed copy of each notebook (.ci/run sets the folder; not committed)
    if out := os.environ.get("SITEWATCH_NOTEBOOK_HTML"):
        page = write_html(nb, Path(out) / f"{name}.html")
        assert page.stat().st_size > 10_000 and "data:image/png;base64," in page.read_text()


@pytest.mark.parametrize("name", NAMES)
def test_committed_clean_and_public_api_only(name: str) -> None:
    path = NOTEBOOKS / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in _code_cells(nb):
        assert cell.outputs == [], f"{name}: committed with outputs"
        assert cell.execution_count is None, f"{name}: committed with execution counts"
    source = "\n".join(c.source for c in _code_cells(nb))
    assert "import sitewatch as sw" in source
    assert not re.search(r"(from|import)\s+sitewatch\.", source), "private sitewatch import"
    used = set(re.findall(r"\bsw\.(\w+)", source))
    assert used <= set(sw.__all__), f"not public API: {sorted(used - set(sw.__all__))}"


def test_notebooks_match_their_generator() -> None:
    """notebooks/make_notebooks.py writes exactly the committed notebooks."""
    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS / "make_notebooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sorted(module.NOTEBOOKS) == NAMES
    for name, cells in module.NOTEBOOKS.items():
        committed = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        generated = module._notebook(cells, name)
        assert [(c.cell_type, c.source) for c in committed.cells] == [
            (c.cell_type, c.source) for c in generated.cells
        ], f"{name}.ipynb differs from make_notebooks.py; re-run it"
