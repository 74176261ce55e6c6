"""bench speed: synthetic pairs, child accounting, naive vs shipped IR-MAD, CLI end to end.

Correctness only: no timing is asserted.
"""

from __future__ import annotations

import json
import os
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
from scipy import stats

from sitewatch.bench import speed
from sitewatch.bench.naive import naive_detect, naive_irmad
from sitewatch.cli.main import main as cli_main
from sitewatch.detect.irmad import irmad


@pytest.fixture(scope="module")
def pair600(tmp_path_factory: pytest.TempPathFactory) -> speed.SyntheticPair:
    return speed.write_synthetic_pair(tmp_path_factory.mktemp("pairs"), 600, seed=3)


def test_pair_is_tiled_deflate_utm_uint8(pair600: speed.SyntheticPair) -> None:
    for path in (pair600.before, pair600.after):
        with rasterio.open(path) as ds:
            assert (ds.count, ds.height, ds.width) == (3, 600, 600)
            assert ds.dtypes == ("uint8",) * 3
            assert ds.crs.to_epsg() == 32633
            assert ds.profile["tiled"] and ds.block_shapes == [(512, 512)] * 3
            assert ds.compression.name.lower() == "deflate"
            assert ds.res == (1.0, 1.0)
            assert ds.tags()["GENERATOR"] == speed.GENERATOR


def test_pair_is_deterministic_and_written_block_by_block(tmp_path: Path) -> None:
    # A 1500 px pair held whole would be 2 x 6.75 MB as uint8 and 4x that as float32;
    # block-wise generation stays far below.
    tracemalloc.start()
    p = speed.write_synthetic_pair(tmp_path, 1500, seed=3)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 40 * 1024**2
    # A tile generated on its own equals that tile of the written file.
    b, a = speed.synthetic_block(1024, 512, 476, 512, size=1500, seed=3)
    win = rasterio.windows.Window(512, 1024, 512, 476)
    with rasterio.open(p.before) as db, rasterio.open(p.after) as da:
        np.testing.assert_array_equal(db.read(window=win), b)
        np.testing.assert_array_equal(da.read(window=win), a)
    mtime = p.before.stat().st_mtime_ns
    again = speed.write_synthetic_pair(tmp_path, 1500, seed=3)
    assert again.before.stat().st_mtime_ns == mtime  # reused, not rewritten


def test_pair_has_gain_offset_and_planted_roofs(pair600: speed.SyntheticPair) -> None:
    with rasterio.open(pair600.before) as db, rasterio.open(pair600.after) as da:
        b, a = db.read().astype(float), da.read().astype(float)
    truth = pair600.truth()
    assert len(pair600.changes) >= 4 and 0.002 < truth.mean() < 0.05
    # Unchanged pixels follow after ~ gain * before + offset, band by band.
    for i in range(3):
        slope, icpt = np.polyfit(b[i][~truth], a[i][~truth], 1)
        assert slope == pytest.approx(speed.GAIN[i], abs=0.05)
        assert icpt == pytest.approx(speed.OFFSET[i], abs=6)
    resid = np.abs(a - (speed.GAIN[:, None, None] * b + speed.OFFSET[:, None, None])).sum(0)
    assert resid[truth].mean() > 5 * resid[~truth].mean()


def test_naive_and_shipped_irmad_agree(pair600: speed.SyntheticPair) -> None:
    with rasterio.open(pair600.before) as db, rasterio.open(pair600.after) as da:
        b, a = db.read().astype(np.float32), da.read().astype(np.float32)
    ours = irmad(b, a, np.ones(b.shape[1:], bool))
    chi2, rho, _ = naive_irmad(b, a)
    np.testing.assert_allclose(np.sort(rho), ours.rho, atol=0.01)
    assert stats.spearmanr(chi2.ravel(), ours.chi2.ravel()).statistic > 0.98
    truth = pair600.truth()
    for score in (chi2, ours.chi2):
        top = score > np.quantile(score, 1 - truth.mean())
        assert (top & truth).sum() / truth.sum() > 0.8  # the roofs rank on top


def test_naive_detect_writes_polygons_on_the_roofs(
    pair600: speed.SyntheticPair, tmp_path: Path
) -> None:
    out = tmp_path / "naive.geojson"
    summary = naive_detect(pair600.before, pair600.after, out)
    doc = json.loads(out.read_text())
    assert summary["regions"] >= len(pair600.changes) - 1
    assert len(doc["features"]) >= summary["regions"]
    with rasterio.open(pair600.before) as ds:
        inv = ~ds.transform
    hit = 0
    for r, c, h, w in pair600.changes:
        for f in doc["features"]:
            xs, ys = zip(*f["geometry"]["coordinates"][0], strict=True)
            cols, rows = zip(*(inv @ (x, y) for x, y in zip(xs, ys, strict=True)), strict=True)
            if min(rows) < r + h and max(rows) > r and min(cols) < c + w and max(cols) > c:
                hit += 1
                break
    assert hit >= len(pair600.changes) - 1


@pytest.mark.parametrize("timer", ["gnu-time", "launcher"])
def test_measure_accounts_for_one_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timer: str
) -> None:
    if timer == "launcher":
        monkeypatch.setattr(speed, "_gnu_time", lambda: None)
    elif speed._gnu_time() is None:
        pytest.skip("no GNU /usr/bin/time")
    ballast = np.ones(200_000_000, np.uint8)  # this process is large: children must not inherit it
    big = [sys.executable, "-c", "import numpy as np; a = np.ones(60_000_000, np.uint8)"]
    small = [sys.executable, "-c", "pass"]
    m_big = speed.measure(big, log=tmp_path / "a.log")
    m_small = speed.measure(small, log=tmp_path / "b.log")
    assert m_big.returncode == m_small.returncode == 0
    assert m_big.peak_rss > 60e6
    # Not the cumulative maximum over children: the small one reports its own peak.
    assert m_small.peak_rss < m_big.peak_rss - 40e6
    bad = speed.measure([sys.executable, "-c", "raise SystemExit(4)"], log=tmp_path / "c.log")
    assert bad.returncode == 4
    assert m_small.peak_rss < ballast.size / 2


def test_options_are_checked() -> None:
    assert speed.SpeedOptions(sizes=(512, 1024, 4096)).compare_size == 1024
    assert speed.SpeedOptions(sizes=(256,)).compare_size == 256
    with pytest.raises(ValueError, match="repeat"):
        speed.SpeedOptions(repeat=0)
    with pytest.raises(ValueError, match="sizes"):
        speed.SpeedOptions(sizes=(64,))


@pytest.mark.slow
def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "speed.json"
    argv = ["bench", "speed", "--sizes", "256", "--repeat", "1", "--big", "0"]
    code = cli_main([*argv, "--batch-jobs", "0", "--json", str(out)])
    text, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert {"machine", "settings", "startup", "compare", "profile", "scaling", "big", "batch"} <= (
        doc.keys()
    )
    assert {"cpu_count", "ram_bytes", "versions"} <= doc["machine"].keys()
    c = doc["compare"]
    assert c["size"] == 256
    for key in ("sitewatch", "sitewatch_no_coregister", "naive"):
        assert c[key]["median_s"] > 0 and c[key]["median_peak_rss_bytes"] > 0
        assert len(c[key]["runs"]) == 1
    assert c["naive"]["ratio_sitewatch_over_naive"] > 0
    assert "skipped" in c["otb"] or c["otb"]["ratio_sitewatch_over_otb"] > 0
    assert [r["size"] for r in doc["scaling"]["rows"]] == [256]
    assert doc["scaling"]["rows"][0]["time_per_pixel_ratio"] == 1.0
    assert any(r["function"].endswith("read_scene") for r in doc["profile"]["stages"])
    assert doc["big"] == {"skipped": "--big 0"}
    assert "IR-MAD change detection, 256×256" in text
    assert "scaling:" in text and "wrote" in text


def test_rows_skip_with_a_reason(tmp_path: Path) -> None:
    opts = speed.SpeedOptions(sizes=(256,), big=12_000)
    args = (tmp_path, tmp_path, tmp_path, lambda _m: None)
    big = speed._big(opts, False, *args, {"rows": []})
    assert "block mode unavailable" in big["skipped"]
    batch = speed._batch(opts, False, *args)
    assert batch["skipped"] == "batch: not available (no `sitewatch batch` subcommand)"


def test_bytecode_is_written_before_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The timed commands run as from an installed package: sitewatch's modules are
    compiled beside their sources first, even where PYTHONDONTWRITEBYTECODE is set."""
    import importlib.util

    import sitewatch
    import sitewatch.bench.speed as module

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    source = Path(module.__file__)
    cached = Path(importlib.util.cache_from_source(str(source)))
    if os.access(cached.parent, os.W_OK):
        cached.unlink(missing_ok=True)  # Python's own cache, rewritten below
    note = speed.compile_package()
    assert str(Path(sitewatch.__file__).parent) in note
    if "up to date" in note:  # a read-only install says so instead
        assert cached.is_file() and cached.stat().st_mtime >= source.stat().st_mtime
