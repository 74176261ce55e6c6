"""Counting GDAL's network reads from its debug log, for every network file system."""

from __future__ import annotations

import logging

import pytest

from sitewatch.sources._http import NetStats, _GDALLog


def emit(handler: _GDALLog, msg: str) -> None:
    handler.emit(logging.LogRecord("rasterio._env", logging.DEBUG, __file__, 0, msg, None, None))


# Shaped like GDAL's own lines (cpl_vsil_curl.cpp: "Downloading %s (%s)...",
# "GetFileSize(%s)=..."), under each handler's debug key, as rasterio forwards them.
S3_URL = "https://usgs-landsat.s3.us-west-2.amazonaws.com/collection02/x/LC08_SR_B4.TIF"


@pytest.mark.parametrize(
    ("lines", "url", "requests", "nbytes"),
    [
        (
            [
                "VSICURL: GetFileSize(http://127.0.0.1:8000/a/B04.tif)=1234567  response_code=200",
                "VSICURL: Downloading 0-16383 (http://127.0.0.1:8000/a/B04.tif)...",
            ],
            "http://127.0.0.1:8000/a/B04.tif",
            2,
            16384,
        ),
        (
            [
                f"S3: GetFileSize({S3_URL})=98765432  response_code=200",
                f"S3: Downloading 0-16383 ({S3_URL})...",
                f"S3: Downloading 65536-131071 ({S3_URL})...",
            ],
            S3_URL,
            3,
            16384 + 65536,
        ),
    ],
    ids=["vsicurl", "vsis3"],
)
def test_gdal_log_counts_vsicurl_and_vsis3_reads(lines, url, requests, nbytes):
    stats = NetStats()
    handler = _GDALLog(stats)
    for line in lines:
        emit(handler, line)
    assert stats.requests == {url: requests}
    assert stats.bytes == {url: nbytes}


def test_gdal_log_ignores_other_debug_lines():
    stats = NetStats()
    handler = _GDALLog(stats)
    emit(handler, "GDAL: GDALOpen(/vsis3/usgs-landsat/x.TIF, this=0x1) succeeds as GTiff.")
    emit(handler, "S3: Using credentials from environment")
    assert stats.total_requests() == 0
