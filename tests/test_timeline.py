"""Timelines: a planted building is dated right, a planted transient is dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

import sitewatch as sw
from sitewatch.cli.main import main
from sitewatch.errors import InputError


def test_time_steps():
    assert sw.time_steps("2024-01-01", "2024-12-31", "1Y") == [("2024-01-01", "2024-12-31")]
    months = sw.time_steps("2024-01-31", "2024-04-30", "1M")
    assert months[0] == ("2024-01-31", "2024-02-28") and months[-1][1] == "2024-04-30"
    for bad in ("0M", "M", "2W", "x1Y"):
        with pytest.raises(InputError):
            sw.time_steps("2024-01-01", "2024-12-31", bad)


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return sw.synthetic_series(tmp_path_factory.mktemp("series"))


def _near(f, lonlat, tol=0.0008):
    c = f["properties"]["centroid"]
    return abs(c[0] - lonlat[0]) < tol and abs(c[1] - lonlat[1]) < tol


def test_building_dated_and_transient_dropped(series):
    aoi = sw.load_aoi("feb11-plant")
    result, tl = sw.detect_series(series.folders, aoi=aoi)
    assert tl.dates == series.dates
    kept = [f for f in result.features if _near(f, series.building_lonlat)]
    assert len(kept) == 1
    p = kept[0]["properties"]
    assert p["first_seen"] == series.building_from  # 2021-03-17
    i = series.dates.index(series.building_from)
    assert p["last_clear_before"] == series.dates[i - 1]
    assert p["persistence"] == 1.0 and p["status"] == "persistent"
    assert 8_000 < p["area_m2"] < 13_000  # planted 12 x 8 px = 9,600 m²
    # The transient is a region of the timeline, dropped: not a polygon.
    assert not any(_near(f, series.transient_lonlat) for f in result.features)
    transient = [r for r in tl.regions if r.status == "transient"]
    assert tl.n_transient == len(transient) >= 1
    assert any(r.first_seen == series.transient_on and r.persistence == 0.0 for r in transient)
    # The masked cloud (on its own date) made no region at all.
    assert all(r.first_seen != series.cloud_on for r in tl.regions)
    assert len(result.features) == 1


def test_timeline_cli_writes_the_series_evidence(series, tmp_path, capsys):
    out = tmp_path / "tl"
    code = main(
        ["timeline", "feb11-plant", "--images", *map(str, series.folders), "--out", str(out)]
    )
    text = capsys.readouterr().out
    assert code == 0
    assert f"c001: first seen {series.building_from}" in text and "1 transient" in text
    rows = (out / "timeline.csv").read_text().splitlines()
    assert rows[0] == "region,status,date,observed,changed_m2,score_mean"
    assert len(rows) == 1 + len(series.dates) * 2  # the building and the transient
    info = json.loads((out / "timeline.json").read_text())
    assert info["n_transient"] == 1 and info["n_persistent"] == 1
    assert (out / "timeline.png").stat().st_size > 10_000
    html = (out / "report.html").read_text()
    assert "<h2>Timeline</h2>" in html and "1 transient region(s) dropped" in html
    gpkg = sw.report.gpkg.read_gpkg(out / "changes.gpkg")
    assert gpkg[0]["properties"]["first_seen"] == series.building_from
    assert gpkg[0]["properties"]["persistence"] == 1.0


def test_timeline_needs_two_images_and_a_period(series, tmp_path, capsys):
    assert (
        main(
            [
                "timeline",
                "feb11-plant",
                "--images",
                str(series.folders[0]),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "at least two" in capsys.readouterr().err
    assert main(["timeline", "feb11-plant", "--out", str(tmp_path / "o")]) == 2
    assert "--from and --to" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# --- over a STAC API on loopback ----------------------------------------------------

S2_KEYS = {
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B08": "nir",
    "B11": "swir16",
    "B12": "swir22",
    "SCL": "scl",
}


def _series_items(series, root: Path, base_url: str) -> Path:
    """STAC items (Earth Search style) over the synthetic series' band files."""
    features = []
    geom = series.grid.footprint_lonlat
    for date, folder in zip(series.dates, series.folders, strict=True):
        assets = {}
        for path in sorted(folder.glob("*.tif")):
            band = path.stem.rsplit("_", 1)[-1]
            with rasterio.open(path) as ds:
                t, shape = list(ds.transform)[:6], [ds.height, ds.width]
            rel = path.relative_to(root).as_posix()
            asset = {
                "href": f"{base_url}/{rel}",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data"],
                "proj:shape": shape,
                "proj:transform": t,
            }
            if band != "SCL":
                asset["raster:bands"] = [{"nodata": 0, "scale": 0.0001, "offset": -0.1}]
            assets[S2_KEYS[band]] = asset
        stamp = date.replace("-", "")
        features.append(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "stac_extensions": [],
                "id": f"S2B_T52SCK_{stamp}T021609_L2A",
                "collection": "sentinel-2-c1-l2a",
                "bbox": list(geom.bounds),
                "geometry": json.loads(json.dumps(geom.__geo_interface__)),
                "properties": {
                    "datetime": f"{date}T02:26:12Z",
                    "platform": "sentinel-2b",
                    "eo:cloud_cover": 10.0,
                    "proj:epsg": int(series.grid.crs.split(":")[1]),
                    "s2:processing_baseline": "05.10",
                },
                "links": [],
                "assets": assets,
            }
        )
    path = root / "series-items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_timeline_over_stac_dates_the_building(range_server, s2_fixture, tmp_path):
    from conftest import serve_stac

    series = sw.synthetic_series(range_server.root / "series")
    items = _series_items(series, range_server.root, range_server.url)
    range_server.set_faults({})
    with serve_stac([s2_fixture["collection"], items], tmp_path) as url:
        out = tmp_path / "tl"
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "sitewatch.cli.main",
                "timeline",
                "feb11-plant",
                "--from",
                "2021-01",
                "--to",
                "2021-06",
                "--every",
                "1M",
                "--stac-url",
                url,
                "--out",
                str(out),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "SITEWATCH_CACHE": str(tmp_path / "cache")},
        )
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["dates"] == series.dates and doc["n_transient"] == 1
    (change,) = doc["changes"]
    assert change["first_seen"] == series.building_from and change["status"] == "persistent"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["series"][0]["item_id"].endswith("20210116T021609_L2A")
    assert np.isclose(manifest["grid"]["transform"][0], 10.0)
