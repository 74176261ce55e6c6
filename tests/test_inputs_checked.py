"""Inputs are checked before any work: dates, periods, paths; one line, exit 2, nothing written."""

from __future__ import annotations

import pytest

from sitewatch.cli.main import main


def run(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def one_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sitewatch: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize(
    ("ref", "needle"),
    [
        ("2023-10..2023-11", "is neither an existing file or folder nor a date"),
        ("2023-13", "does not exist (month must be in 1..12)"),
        ("2024-10/2023-10", "ends before it starts"),
        ("S2_before/", "does not exist; check the path"),
    ],
)
def test_bad_image_argument_is_one_line_before_any_search(
    capsys, tmp_path, monkeypatch, ref, needle
):
    # An unreachable STAC API: any network use would fail differently (exit 3).
    monkeypatch.setenv("SITEWATCH_STAC_URL", "http://127.0.0.1:9/")
    code, err = run(
        capsys,
        "detect",
        "feb11-plant",
        "--before",
        ref,
        "--after",
        "2024-10",
        "--out",
        tmp_path / "o",
    )
    assert code == 2
    one_line(err, needle)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["search", "timeline"])
def test_reversed_period_is_refused_before_the_network(capsys, tmp_path, monkeypatch, command):
    monkeypatch.setenv("SITEWATCH_STAC_URL", "http://127.0.0.1:9/")
    args = [command, "feb11-plant", "--from", "2024-10", "--to", "2023-10"]
    if command == "timeline":
        args += ["--out", tmp_path / "o"]
    code, err = run(capsys, *args)
    assert code == 2
    one_line(err, "the period 2024-10 → 2023-10 ends before it starts", "swap")
    assert not (tmp_path / "o").exists()


def test_bad_every_is_refused_before_the_network(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SITEWATCH_STAC_URL", "http://127.0.0.1:9/")
    code, err = run(
        capsys,
        "timeline",
        "feb11-plant",
        "--from",
        "2023-01",
        "--to",
        "2023-12",
        "--every",
        "3W",
        "--out",
        tmp_path / "o",
    )
    assert code == 2
    one_line(err, "--every '3W'")
