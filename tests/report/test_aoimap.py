"""``sitewatch aoi map``: one self-contained, offline HTML page of the catalog."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import warnings

import pytest
import rasterio

from sitewatch import load_catalog
from sitewatch.cli.main import main
from sitewatch.report.aoimap import GENERATOR, map_data


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def page(tmp_path, capsys):
    out = tmp_path / "map.html"
    assert main(["aoi", "map", "--out", str(out)]) == 0
    assert "11 located facilities" in capsys.readouterr().out
    return out


def test_page_is_self_contained(page):
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(page.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600
    text = page.read_text(encoding="utf-8")
    assert f'<meta name="generator" content="{GENERATOR}">' in text
    # Nothing is fetched: no external script, stylesheet, image, font or tile URL.
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", text, re.I)
    assert not re.search(r"url\(|@import|fetch\(|XMLHttpRequest", text)
    data = json.loads(re.search(r'id="data">(.*?)</script>', text, re.S).group(1))
    assert {d["id"] for d in data} == set(load_catalog())


def test_map_data_carries_popup_content():
    data = {d["id"]: d for d in map_data(load_catalog())}
    feb11 = data["feb11-plant"]
    assert feb11["located"] and feb11["confidence"] == "high" and feb11["rings"]
    assert feb11["sources"] and feb11["events"] and feb11["conflicts"]
    assert data["ryongsong-complex"]["see_instead"] == "feb11-plant"
    assert data["kanggye-tractor-plant"]["hints"][0]["lat"] == 40.967
    assert sum(d["located"] for d in data.values()) == 11


def test_map_does_not_clobber_a_foreign_file(tmp_path, capsys):
    other = tmp_path / "notes.html"
    other.write_text("<p>my notes</p>")
    assert main(["aoi", "map", "--out", str(other)]) == 2
    assert "not a sitewatch map" in capsys.readouterr().err
    assert other.read_text() == "<p>my notes</p>"
    assert main(["aoi", "map", "--out", str(other), "--overwrite"]) == 0
    assert main(["aoi", "map", "--out", str(other)]) == 0  # its own page may be replaced


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (apt-get install chromium)")
def test_map_renders_in_headless_chromium(page, tmp_path):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,800",
    ]
    url = page.as_uri() + "#feb11-plant"
    dom = subprocess.run(
        [_chromium(), *flags, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert 'data-rendered="11"' in html  # the script ran to the end
    assert html.count('class="fac"') == 11 and html.count('class="box ') >= 11
    assert 'role="button"' in html and 'tabindex="0"' in html  # keyboard reachable
    # The #feb11-plant start opened its popup with sources and conflicts.
    assert 'id="ptitle">February 11 Plant<' in html
    assert "Sources</h4>" in html and "Conflicts</h4>" in html and "Rakwon" in html
    # An unlocated facility opens on its popup, which leads to the AOI to watch instead.
    dom = subprocess.run(
        [_chromium(), *flags, "--dump-dom", page.as_uri() + "#ryongsong-complex"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 'id="ptitle">Ryongsong Machine Complex<' in dom.stdout
    assert "Watch instead:" in dom.stdout and 'data-id="feb11-plant"' in dom.stdout
    assert re.search(r'id="scaletext">[0-9.]+ km<', dom.stdout)
    shot = tmp_path / "map.png"
    run = subprocess.run(
        [_chromium(), *flags, f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(shot) as ds:
            img = ds.read()
    assert img.shape[1:] == (800, 1200) and img.std() > 20
