"""Windowed remote reads, the cache, composites, Landsat and faults, on loopback.

Every command runs in a fresh process (GDAL's in-process cache cannot hide requests)
against ``rustac serve`` and the Range-capable file server; requests and bytes are
counted from the file server's log.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import serve_stac, stac_files

A = "S2B_T52SCK_20200610T021609_L2A"
B = "S2B_T52SCK_20200620T021609_L2A"
C = "S2A_T52SCK_20241005T021651_L2A"


def sitewatch(*args: str, cache: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh process with its own cache folder."""
    full_env = {
        **os.environ,
        "SITEWATCH_CACHE": str(cache),
        "SITEWATCH_BACKOFF_S": "0.01",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "sitewatch.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
        env=full_env,
    )


def detect_args(url: str, out: Path, *extra: str) -> list[str]:
    return [
        "detect",
        "feb11-plant",
        "--before",
        "2020-06",
        "--after",
        "2024-10",
        "--stac-url",
        url,
        "--out",
        str(out),
        "--overwrite",
        *extra,
    ]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def own_api(range_server, s2_fixture, landsat_fixture, tmp_path):
    """A STAC API this test may stop (to prove a run needs no network)."""
    cm = serve_stac(stac_files(s2_fixture, landsat_fixture), tmp_path)
    url = cm.__enter__()
    yield url, cm
    cm.__exit__(None, None, None)


def test_second_run_is_served_from_cache_with_zero_requests(own_api, range_server, tmp_path):
    url, api = own_api
    cache, out = tmp_path / "cache", tmp_path / "out"
    range_server.set_faults({})
    range_server.reset_log()
    first = sitewatch(*detect_args(url, out), cache=cache)
    assert first.returncode == 0, first.stderr
    first_requests = range_server.requests()
    m1 = json.loads((out / "manifest.json").read_text())
    outputs1 = {n: sha(out / n) for n in ("changes.geojson", "score.tif", "mask.tif")}
    assert first_requests and m1["network"]["requests"] > 0

    api.__exit__(None, None, None)  # the STAC API is gone ...
    range_server.reset_log()
    second = sitewatch(*detect_args(url, out), cache=cache)
    assert second.returncode == 0, second.stderr
    assert range_server.requests() == []  # ... and no COG byte was asked for either
    m2 = json.loads((out / "manifest.json").read_text())
    assert m2["network"]["requests"] == 0 and m2["network"]["bytes"] == 0
    assert m2["network"]["cache_hits"] > 0
    for key in ("before", "after"):
        assert m2["inputs"][key]["item_id"] == m1["inputs"][key]["item_id"]
        for band, entry in m2["inputs"][key]["assets"].items():
            assert entry["cached"] is True
            assert entry["sha256"] == m1["inputs"][key]["assets"][band]["sha256"]
    assert {n: sha(out / n) for n in outputs1} == outputs1
    print(
        f"first run: {len(first_requests)} requests, "
        f"{sum(r['bytes'] for r in first_requests)} bytes; second run: 0 requests"
    )


def test_corrupt_cache_entry_is_detected_and_read_again(stac_api, range_server, tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    range_server.set_faults({})
    first = sitewatch(*detect_args(stac_api.url, out), cache=cache)
    assert first.returncode == 0, first.stderr
    m1 = json.loads((out / "manifest.json").read_text())
    red = m1["inputs"]["after"]["assets"]["B04"]
    entries = sorted((cache / "windows").rglob("*.npz"))
    assert entries and not list(cache.rglob(".tmp-*"))
    # Truncate every window entry of the after image's red band: find it by content.
    victims = []
    for path in entries:
        with np.load(path) as z:
            if json.loads(str(z["meta"]))["sha256"] == red["sha256"]:
                victims.append(path)
    assert len(victims) == 1
    victims[0].write_bytes(victims[0].read_bytes()[:200])
    range_server.reset_log()
    second = sitewatch(*detect_args(stac_api.url, out), cache=cache)
    assert second.returncode == 0, second.stderr
    paths = {r["path"] for r in range_server.requests()}
    assert paths == {f"/{C}/B04.tif"}  # only the corrupt entry was read again
    m2 = json.loads((out / "manifest.json").read_text())
    assert m2["network"]["cache_corrupt"] == 1
    assert m2["inputs"]["after"]["assets"]["B04"]["sha256"] == red["sha256"]


def _intersecting_tile_bytes(path: Path, window: list[int]) -> int:
    """Bytes of the COG tiles (full-resolution IFD) that a pixel window touches."""
    c0, r0, w, h = window
    with rasterio.open(path) as ds:
        bh, bw = ds.block_shapes[0]
        total = 0
        for row in range(r0 // bh, math.ceil((r0 + h) / bh)):
            for col in range(c0 // bw, math.ceil((c0 + w) / bw)):
                total += int(ds.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=1))
    return total


def test_bytes_read_stay_close_to_the_tiles_the_aoi_touches(
    stac_api, range_server, s2_fixture, tmp_path
):
    range_server.set_faults({})
    range_server.reset_log()
    out = tmp_path / "out"
    run = sitewatch(*detect_args(stac_api.url, out), cache=tmp_path / "cache")
    assert run.returncode == 0, run.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    log = range_server.requests()
    rows = []
    for key in ("before", "after"):
        inp = manifest["inputs"][key]
        for entry in [*inp["assets"].values(), inp["mask"]]:
            path = "/" + entry["href"].split("/", 3)[3]
            sent = sum(r["bytes"] for r in log if r["path"] == path)
            tiles = _intersecting_tile_bytes(range_server.root / path[1:], entry["window"])
            size = (range_server.root / path[1:]).stat().st_size
            rows.append((path, sent, tiles, size))
            assert sent <= 1.5 * tiles, f"{path}: {sent} bytes sent for {tiles} tile bytes"
            if not entry["cached"]:  # (the masks were read, and cached, by the search)
                assert entry["bytes"] == sent  # the manifest counts what the server sent
    assert manifest["network"]["bytes"] == sum(r["bytes"] for r in log)
    total_sent = sum(r[1] for r in rows)
    total_tiles = sum(r[2] for r in rows)
    total_size = sum(r[3] for r in rows)
    print(
        f"{len(rows)} assets: {total_sent} bytes read, {total_tiles} in intersecting tiles "
        f"({total_sent / total_tiles:.2f}x), files {total_size} bytes"
    )


def test_composite_takes_the_median_of_clear_pixels(stac_api, range_server, s2_fixture, tmp_path):
    range_server.set_faults({})
    out = tmp_path / "out"
    run = sitewatch(*detect_args(stac_api.url, out, "--composite"), cache=tmp_path / "c")
    assert run.returncode == 0, run.stderr
    assert "before: median of 2 acquisitions 2020-06-10/2020-06-20" in run.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    before = manifest["inputs"]["before"]
    assert before["kind"] == "stac-composite"
    assert set(before["item_ids"]) == {A, B}
    assert 1.0 < before["scenes_per_pixel_mean"] < 2.0  # A's cloud leaves one scene there
    assert manifest["inputs"]["after"]["item_id"] == C  # one scene: no composite
    fc = json.loads((out / "changes.geojson").read_text())
    assert len(fc["features"]) == 1  # no artefacts where scene A's cloud ends
    lon, lat = s2_fixture["building_lonlat"]
    hits = [
        f
        for f in fc["features"]
        if abs(f["properties"]["centroid"][0] - lon) < 0.001
        and abs(f["properties"]["centroid"][1] - lat) < 0.001
    ]
    assert len(hits) == 1
    dates = json.loads((out / "changes.geojson").read_text())
    assert "2020-06-10/2020-06-20" in json.dumps(dates)


def test_truncated_body_is_retried(stac_api, range_server, tmp_path):
    range_server.reset_log()
    range_server.set_faults({f"/{C}/B04.tif": {"truncate": 300, "times": 1}})
    run = sitewatch(*detect_args(stac_api.url, tmp_path / "out"), cache=tmp_path / "c")
    range_server.set_faults({})
    assert run.returncode == 0, run.stderr
    assert len([r for r in range_server.requests() if r["path"] == f"/{C}/B04.tif"]) >= 2


def test_timeout_is_retried(stac_api, range_server, tmp_path):
    range_server.reset_log()
    range_server.set_faults({f"/{C}/B08.tif": {"delay": 3, "times": 1}})
    run = sitewatch(
        *detect_args(stac_api.url, tmp_path / "out"),
        cache=tmp_path / "c",
        env={"SITEWATCH_HTTP_TIMEOUT": "1"},
    )
    range_server.set_faults({})
    assert run.returncode == 0, run.stderr
    assert len([r for r in range_server.requests() if r["path"] == f"/{C}/B08.tif"]) >= 2


@pytest.mark.parametrize("fault", [{"truncate": 300}, {"status": 502}, {"delay": 3}])
def test_persistent_fault_is_exit_3_and_leaves_nothing(stac_api, range_server, tmp_path, fault):
    cache, out = tmp_path / "cache", tmp_path / "out"
    range_server.set_faults({f"/{C}/B04.tif": {**fault, "times": 20}})
    try:
        run = sitewatch(
            *detect_args(stac_api.url, out),
            cache=cache,
            env={"SITEWATCH_HTTP_TIMEOUT": "1"},
        )
    finally:
        range_server.set_faults({})
    assert run.returncode == 3, run.stderr
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("sitewatch: error:")]
    assert len(errors) == 1 and "after 3 tries" in errors[0] and "B04.tif" in errors[0]
    assert run.stderr.strip().splitlines()[-1] == errors[0]
    assert "Traceback" not in run.stderr
    assert not out.exists()
    assert not list(cache.rglob(".tmp-*"))  # no partial cache entry
    for path in (cache / "windows").rglob("*.npz"):  # every entry left is whole
        with np.load(path) as z:
            assert json.loads(str(z["meta"]))["sha256"]


def test_landsat_reflectance_scaling_and_qa_mask(stac_api, landsat_fixture):
    import pystac

    from sitewatch.aoi import load_aoi
    from sitewatch.grid import Grid
    from sitewatch.sources.stac import StacSource

    items = json.loads(Path(landsat_fixture["items"]).read_text())["features"]
    item = pystac.Item.from_dict(items[0], migrate=False)
    aoi = load_aoi("feb11-plant")
    src = StacSource(item, mask_key="qa_pixel", aoi=aoi)
    assert src.band_names == ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7")
    grid = Grid(src.grid.crs, src.grid.transform, src.grid.width, src.grid.height)
    scene = src.read(grid)
    truth = landsat_fixture["truth"][item.id]
    expected = np.rint((truth["reflectance"]["red"] + 0.2) / 2.75e-05) * 2.75e-05 - 0.2
    r0, c0, h, w = landsat_fixture["cloud_window_30m"]
    inside = scene.valid.copy()
    assert inside.any()
    red = scene.data[scene.band_names.index("SR_B4")]
    np.testing.assert_allclose(red[inside], expected[inside], atol=1e-6)
    assert not scene.valid[r0 : r0 + h, c0 : c0 + w].any()  # QA_PIXEL cloud is masked
    assert 0.03 < float(red[inside].mean()) < 0.12  # reflectance, not DN


def test_landsat_detect_finds_the_roof(stac_api, range_server, landsat_fixture, tmp_path):
    range_server.set_faults({})
    out = tmp_path / "out"
    run = sitewatch(
        "detect",
        "feb11-plant",
        "--source",
        "landsat",
        "--before",
        "2020-06",
        "--after",
        "2024-10",
        "--stac-url",
        stac_api.url,
        "--out",
        str(out),
        cache=tmp_path / "c",
    )
    assert run.returncode == 0, run.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["after"]["assets"]["SR_B4"]["scale_offset"] == [2.75e-05, -0.2]
    assert manifest["grid"]["transform"][0] == 30.0
    fc = json.loads((out / "changes.geojson").read_text())
    near = [
        f
        for f in fc["features"]
        if abs(f["properties"]["centroid"][0] - 127.657) < 0.002
        and abs(f["properties"]["centroid"][1] - 39.920) < 0.002
    ]
    assert len(near) == 1  # planted 6 x 8 px of 900 m² = 43,200 m²
    assert 30_000 <= near[0]["properties"]["area_m2"] <= 65_000


def test_a_window_without_clear_pixels_is_a_clear_message(stac_api, range_server, tmp_path):
    from conftest import lonlat_box, write_geojson

    # 500 m inside scene A's cloud; A is the only scene on 2020-06-10.
    aoi = write_geojson(
        tmp_path / "cloudy.geojson", lonlat_box(127.6519, 39.9250, 127.6577, 39.9295)
    )
    range_server.set_faults({})
    out = tmp_path / "out"
    run = sitewatch(
        "detect",
        "--aoi-file",
        str(aoi),
        "--before",
        "2020-06-10",
        "--after",
        "2024-10",
        "--stac-url",
        stac_api.url,
        "--out",
        str(out),
        cache=tmp_path / "c",
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1
    assert "no scene between 2020-06-10 and 2020-06-10 has a clear pixel" in run.stderr
    assert not out.exists()


def test_sentinel2_reflectance_uses_scale_and_the_baseline_offset(stac_api, s2_fixture):
    import pystac

    from sitewatch.aoi import load_aoi
    from sitewatch.grid import Grid
    from sitewatch.sources.stac import StacSource

    items = json.loads(Path(s2_fixture["items"]).read_text())["features"]
    item = pystac.Item.from_dict(next(f for f in items if f["id"] == C), migrate=False)
    src = StacSource(item, aoi=load_aoi("feb11-plant"))
    grid = Grid(src.grid.crs, src.grid.transform, src.grid.width, src.grid.height)
    scene = src.read(grid, bands=["B04", "B08"])
    r0, c0, h, w = s2_fixture["building_window_10m"]
    roof = scene.data[0, r0 + 1 : r0 + h - 1, c0 + 1 : c0 + w - 1]
    # Planted 0.35 reflectance, stored as DN 4500 (DN = (reflectance + 0.1) / 0.0001).
    np.testing.assert_allclose(roof, 0.35, atol=1e-6)
    # Vegetated/bare fields elsewhere: red 0.03-0.11, NIR 0.18-0.40 (not DN, not offset-free).
    inside = scene.valid.copy()
    inside[r0 - 2 : r0 + h + 2, c0 - 2 : c0 + w + 2] = False
    assert 0.02 < float(np.median(scene.data[0][inside])) < 0.12
    assert 0.17 < float(np.median(scene.data[1][inside])) < 0.41
