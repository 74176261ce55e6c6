"""--overwrite, report, batch and demo never delete a file sitewatch did not write."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sitewatch.cli.main import main
from sitewatch.errors import OutputError
from sitewatch.report import check_output_dir, write_result


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, *needles: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sitewatch: error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def pair(planted_pair):
    before, after, _ = planted_pair(folder=True)
    return before, after


def detect(capsys, before, after, out, *extra):
    return run(capsys, "detect", "--before", before, "--after", after, "--out", out, *extra)


def test_overwrite_refuses_a_folder_of_user_files(capsys, tmp_path, pair):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("analyst notes")
    code, _, err = detect(capsys, *pair, out, "--overwrite", "--no-report")
    assert code == 2
    one_line_error(err, "did not write", "--out")
    assert (out / "notes.txt").read_text() == "analyst notes"


def test_overwrite_refuses_the_folder_of_an_input(capsys, tmp_path, pair):
    before, after = pair
    kept = snapshot(tmp_path)
    code, _, err = detect(capsys, before, after, before, "--overwrite", "--no-report")
    assert code == 2
    one_line_error(err, "is an input")
    code, _, err = detect(capsys, before, after, tmp_path, "--overwrite", "--no-report")
    assert code == 2
    assert snapshot(tmp_path) == kept


def test_overwrite_refuses_the_current_folder_and_its_parents(capsys, tmp_path, pair, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "report.docx").write_text("draft")
    monkeypatch.chdir(work)
    for out in (".", "..", str(work)):
        code, _, err = detect(capsys, *pair, out, "--overwrite", "--no-report")
        assert code == 2, out
        one_line_error(err, "current folder")
    assert (work / "report.docx").read_text() == "draft"
    assert sorted(p.name for p in work.iterdir()) == ["report.docx"]


def test_overwrite_refuses_the_home_folder(capsys, tmp_path, pair, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# mine")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    code, _, err = detect(capsys, *pair, "~", "--overwrite", "--no-report")
    assert code == 2
    one_line_error(err, "home folder")
    assert (home / ".bashrc").read_text() == "# mine"


def test_overwrite_replaces_an_earlier_run_but_not_one_with_added_files(capsys, tmp_path, pair):
    out = tmp_path / "run"
    assert detect(capsys, *pair, out, "--no-report")[0] == 0
    assert detect(capsys, *pair, out, "--overwrite", "--no-report")[0] == 0  # its own run
    (out / "my-notes.md").write_text("keep")
    code, _, err = detect(capsys, *pair, out, "--overwrite", "--no-report")
    assert code == 2
    one_line_error(err, "did not write")
    assert (out / "my-notes.md").read_text() == "keep"


def test_empty_folder_is_used_without_overwrite(capsys, tmp_path, pair):
    out = tmp_path / "empty"
    out.mkdir()
    assert detect(capsys, *pair, out, "--no-report")[0] == 0
    assert (out / "manifest.json").is_file()


def test_report_rebuild_refuses_user_files_in_its_folders(capsys, tmp_path, pair):
    out = tmp_path / "run"
    assert detect(capsys, *pair, out, "--no-report")[0] == 0
    code, _, err = run(capsys, "report", out)
    assert code == 0, err
    # The rebuilt files are recorded, so the run stays replaceable by --overwrite ...
    listed = json.loads((out / "manifest.json").read_text())["outputs"]
    assert "report.html" in listed and any(k.startswith("quicklooks/") for k in listed)
    assert detect(capsys, *pair, out, "--overwrite", "--no-report")[0] == 0
    # ... and a file the user put where the rebuild writes is never replaced.
    assert run(capsys, "report", out)[0] == 0
    mine = out / "quicklooks" / "annotated.png"
    mine.write_bytes(b"my drawing")
    code, _, err = run(capsys, "report", out)
    assert code == 2
    one_line_error(err, "annotated.png", "move it out")
    assert mine.read_bytes() == b"my drawing"


def test_demo_refuses_the_current_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "thesis.tex").write_text("x")
    code, _, err = run(capsys, "demo", "--out", ".", "--quiet")
    assert code == 2
    one_line_error(err, "current folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]


def test_timeline_refuses_an_input_folder(capsys, tmp_path):
    import sitewatch as sw

    series = sw.synthetic_series(tmp_path / "series")
    target = series.folders[0]
    kept = snapshot(target)
    code, _, err = run(
        capsys,
        "timeline",
        "feb11-plant",
        "--images",
        *series.folders,
        "--out",
        target,
        "--overwrite",
    )
    assert code == 2
    one_line_error(err, "is an input")
    assert snapshot(target) == kept


def test_python_errors_name_python_arguments(tmp_path, pair):
    import sitewatch as sw

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("x")
    result = sw.detect_change(*pair)
    with pytest.raises(OutputError) as info:
        write_result(result, out)
    msg = str(info.value)
    assert "overwrite=True" in msg and "--" not in msg
    with pytest.raises(OutputError, match="did not write"):
        write_result(result, out, overwrite=True)
    with pytest.raises(OutputError, match="is an input"):
        write_result(result, pair[0], overwrite=True)
    assert (out / "notes.txt").read_text() == "x"


def test_check_output_dir_names_the_clash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match="holds the current folder"):
        check_output_dir(tmp_path.parent, overwrite=True)
    f = tmp_path / "a" / "b.tif"
    f.parent.mkdir()
    f.write_bytes(b"")
    with pytest.raises(OutputError, match=r"holds an input \(b.tif\)"):
        check_output_dir(tmp_path / "a", overwrite=True, inputs=[f])
    assert check_output_dir(tmp_path / "new") == (tmp_path / "new").resolve()
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_a_symlink_to_an_input_folder_is_refused(capsys, tmp_path, pair):
    before, after = pair
    link = tmp_path / "link"
    link.symlink_to(before, target_is_directory=True)
    code, _, err = detect(capsys, before, after, link, "--overwrite", "--no-report")
    assert code == 2
    one_line_error(err, "is an input")
    assert any(before.iterdir())
