"""--redact-paths: names and hashes of the inputs stay; no folder of the user's does."""

from __future__ import annotations

import json
from pathlib import Path

import sitewatch as sw
from conftest import lonlat_box, write_geojson
from sitewatch.cli.main import main


def leaks(root: Path, *secrets: str) -> list[str]:
    """Output files whose bytes contain any of ``secrets``."""
    found = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            found += [f"{p.name}: {s}" for s in secrets if s.encode() in data]
    return found


def test_detect_with_redact_paths_writes_no_absolute_path(tmp_path, capsys, planted_pair):
    before, after, _ = planted_pair(folder=True)
    aoi = write_geojson(tmp_path / "site.geojson", lonlat_box(127.541, 39.906, 127.557, 39.918))
    out = tmp_path / "run"
    args = ["detect", "--aoi-file", aoi, "--before", before, "--after", after]
    code = main([str(a) for a in [*args, "--out", out, "--redact-paths"]])
    assert code == 0, capsys.readouterr().err
    secrets = (str(tmp_path), str(Path.home()), str(Path(sw.__file__).parent.parent))
    assert leaks(out, *secrets) == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["paths_redacted"] is True
    files = manifest["inputs"]["before"]["files"]
    assert files[0]["path"] == "T52SCK_20240601T020000_B02.tif" and len(files[0]["sha256"]) == 64
    assert manifest["aoi"]["file"] == "site.geojson" and manifest["aoi"]["sha256"]
    assert manifest["command"][-4:] == ["after", "--out", "run", "--redact-paths"]
    # Without the option the paths are there (the test can fail).
    code = main([str(a) for a in [*args, "--out", tmp_path / "plain"]])
    assert code == 0
    assert leaks(tmp_path / "plain", str(tmp_path))
    # A rebuilt report keeps the redaction (it reads the manifest).
    assert main(["report", str(out), "--quiet"]) == 0
    assert leaks(out, *secrets) == []


def test_timeline_and_demo_with_redact_paths(tmp_path, capsys):
    series = sw.synthetic_series(tmp_path / "series")
    out = tmp_path / "tl"
    images = [str(f) for f in series.folders]
    code = main(
        [
            "timeline",
            "feb11-plant",
            "--images",
            *images,
            "--out",
            str(out),
            "--redact-paths",
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert leaks(out, str(tmp_path)) == []
    assert main(["demo", "--out", str(tmp_path / "demo"), "--redact-paths", "--quiet"]) == 0
    site = str(Path(sw.__file__).parent)
    assert leaks(tmp_path / "demo", str(tmp_path), site) == []


def test_redact_paths_keeps_urls_and_names():
    from sitewatch.report.manifest import redact_paths

    doc = {
        "inputs": {"before": {"path": "https://e.example/S2/B04.tif", "kind": "stac-item"}},
        "network": {"cache_dir": "/home/ana/.cache/sitewatch"},
        "command": ["sitewatch", "detect", "--before=/srv/x/b.tif", "--method", "irmad"],
    }
    assert redact_paths(doc) == {
        "inputs": {"before": {"path": "https://e.example/S2/B04.tif", "kind": "stac-item"}},
        "network": {"cache_dir": "sitewatch"},
        "command": ["sitewatch", "detect", "--before=b.tif", "--method", "irmad"],
    }
