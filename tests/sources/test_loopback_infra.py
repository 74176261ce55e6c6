"""Loopback test infrastructure: range server, fixture COGs over HTTP, rustac STAC API."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request

import pytest
import rasterio
from rasterio.windows import Window


def _get(url: str, *, method: str = "GET", rng: str | None = None):
    req = urllib.request.Request(url, method=method)
    if rng:
        req.add_header("Range", rng)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, dict(resp.headers), resp.read()


def _http_error(url: str, rng: str | None = None) -> int:
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(url, rng=rng)
    info.value.close()
    return info.value.code


def test_range_server_range_head_and_log(range_server):
    data = bytes(range(256)) * 40  # 10240 bytes
    (range_server.root / "blob.bin").write_bytes(data)
    url = f"{range_server.url}/blob.bin"
    range_server.reset_log()

    status, headers, body = _get(url, rng="bytes=100-1099")
    assert status == 206
    assert body == data[100:1100]
    assert headers["Content-Range"] == f"bytes 100-1099/{len(data)}"

    status, _, body = _get(url, rng="bytes=-16")
    assert (status, body) == (206, data[-16:])
    status, _, body = _get(url, rng="bytes=10000-")
    assert (status, body) == (206, data[10000:])
    status, _, body = _get(url)
    assert (status, body) == (200, data)

    status, headers, body = _get(url, method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) == len(data)
    assert headers["Accept-Ranges"] == "bytes"

    assert _http_error(url, rng="bytes=20000-") == 416
    assert _http_error(f"{range_server.url}/missing.bin") == 404

    log = range_server.requests()
    assert log[0] == {
        "method": "GET",
        "path": "/blob.bin",
        "range": "bytes=100-1099",
        "status": 206,
        "bytes": 1000,
    }
    assert [(r["method"], r["status"]) for r in log] == [
        ("GET", 206),
        ("GET", 206),
        ("GET", 206),
        ("GET", 200),
        ("HEAD", 200),
        ("GET", 416),
        ("GET", 404),
    ]
    assert log[4]["bytes"] == 0
    assert range_server.bytes_sent("/blob.bin") == 1000 + 16 + 240 + len(data) + len(b"416\n")


def test_rasterio_windowed_read_over_http(range_server, s2_fixture):
    item = s2_fixture["item_ids"][2]
    path = f"/{item}/B08.tif"
    size = (range_server.root / path.lstrip("/")).stat().st_size
    range_server.reset_log()
    env = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "VSI_CACHE": "FALSE"}
    with rasterio.Env(**env), rasterio.open(f"{range_server.url}{path}") as src:
        assert src.crs.to_epsg() == 32652
        assert src.shape == (600, 600)
        block = src.read(1, window=Window(520, 520, 64, 64))  # inside the last 512-px tile
        tile = int(src.get_tag_item("BLOCK_SIZE_1_1", "TIFF", bidx=1))
    assert block.shape == (64, 64)
    assert block.min() > 1000  # DN = reflectance / 0.0001 + 1000

    log = [r for r in range_server.requests() if r["path"] == path]
    fetched = sum(r["bytes"] for r in log)
    print(f"\n{path}: {len(log)} requests, {fetched} of {size} bytes ({fetched / size:.1%})")
    assert all(r["status"] in (200, 206) for r in log)
    assert any(r["range"] for r in log)
    assert fetched < 0.35 * size
    assert fetched <= 16384 + tile + 2 * 16384  # header + the tile, in 16 kB chunks


def test_stac_api_search(stac_api, range_server):
    from pystac_client import Client

    from sitewatch.sources.stac import items_from_dicts

    ids = stac_api.fixture["item_ids"]
    client = Client.open(stac_api.url)
    search = client.search(
        collections=["sentinel-2-c1-l2a"],
        bbox=[127.64, 39.905, 127.675, 39.935],
        datetime="2020-06-01/2020-06-30",
    )
    # As sitewatch reads them: pystac's default migration warns on real-shaped C1 items.
    items = sorted(items_from_dicts(list(search.items_as_dicts())), key=lambda it: it.id)
    assert [it.id for it in items] == sorted(ids[:2])
    by_id = {it.id: it for it in items}
    assert by_id[ids[0]].properties["eo:cloud_cover"] == 5.0
    assert by_id[ids[1]].properties["eo:cloud_cover"] == 40.0
    for it in items:
        assert it.properties["grid:code"] == "MGRS-52SCK"
        assert it.properties["s2:processing_baseline"] == "05.10"
        red = it.assets["red"]
        assert red.href == f"{range_server.url}/{it.id}/B04.tif"
        band = red.extra_fields["raster:bands"][0]
        assert (band["scale"], band["offset"], band["nodata"]) == (0.0001, -0.1, 0)
        scl = it.assets["scl"].extra_fields["raster:bands"][0]
        assert scl["data_type"] == "uint8"
        assert "scale" not in scl

    # AOI-local cloud fraction disagrees with scene-wide eo:cloud_cover (planted).
    frac = stac_api.fixture["aoi_cloud_fraction"]
    assert frac[ids[0]] >= 0.6
    assert frac[ids[1]] == 0.0


def test_fault_injection(range_server, s2_fixture):
    item = s2_fixture["item_ids"][0]
    path = f"/{item}/B02.tif"
    url = f"{range_server.url}{path}"
    range_server.reset_log()
    try:
        range_server.set_faults({path: {"status": 500, "times": 1}})
        assert _http_error(url, rng="bytes=0-99") == 500
        status, _, body = _get(url, rng="bytes=0-99")
        assert (status, len(body)) == (206, 100)
        assert [r["status"] for r in range_server.requests()] == [500, 206]

        range_server.set_faults({path: {"truncate": 10, "times": 1}})
        with pytest.raises(http.client.IncompleteRead):
            _get(url, rng="bytes=0-999")
        assert _get(url, rng="bytes=0-999")[0] == 206

        range_server.set_faults({path: {"delay": 0.3, "times": 1}})
        t0 = time.monotonic()
        _get(url, rng="bytes=0-9")
        assert time.monotonic() - t0 >= 0.3
        t0 = time.monotonic()
        _get(url, rng="bytes=0-9")
        assert time.monotonic() - t0 < 0.3
    finally:
        range_server.set_faults({})
