"""Service profiles on loopback (issue 12, point 2): Landsat an anonymous user can read.

* **Planetary Computer**: items shaped like the real PC ``landsat-c2-l2`` item in
  ``tests/data/stac`` (asset keys, ``raster:bands``, item-level ``proj:*``), served by a
  real STAC API (rustac); their COGs sit behind an access rule that answers 403 without
  the SAS token's ``sig``, as Azure Blob does, and the token comes from a
  Planetary-Computer-shaped token endpoint (``/api/sas/v1/token/{collection}``). The
  profile is moved to loopback with ``$SITEWATCH_PC_STAC_URL``/``$SITEWATCH_PC_TOKEN_URL``;
  ``--stac-url`` is not given, so the default Landsat route is the one tested.
* **Earth Search requester-pays S3**: items shaped like the real Earth Search
  ``landsat-c2-l2`` item (``s3://usgs-landsat/...``, ``storage:requester_pays``). Without
  ``--requester-pays`` (or without AWS credentials) the run stops before any read with
  one line; with both, GDAL reads them through ``/vsis3/`` from a loopback S3 endpoint
  that answers 403 unless the request carries ``x-amz-request-payer: requester``.
* Planetary Computer's Sentinel-2 shape (``B02`` ... ``SCL``, no ``raster:bands``, ESA's
  DN with the +1000 offset from baseline 04.00): keys renamed, the offset applied once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import serve_stac
from stac_fixtures import C1_TEMPLATE, real_shaped

DATA = Path(__file__).parents[1] / "data" / "stac"
PC_LANDSAT = DATA / "LC09_L2SR_089113_20231008_02_T2.pc.trimmed.json"
ES_LANDSAT = DATA / "LC08_L2SP_033032_20231008_02_T1.trimmed.json"
SIG = "loopback-signature"
TOKEN = {"msft:expiry": "2099-01-01T00:00:00Z", "token": f"st=2026-01-01&se=2099-01-01&sig={SIG}"}
KEY = "loopback-account-key"
LANDSAT_KEYS = ("blue", "green", "red", "nir08", "swir16", "swir22", "qa_pixel")
PC_S2_KEYS = {
    "blue": "B02",
    "green": "B03",
    "red": "B04",
    "nir": "B08",
    "swir16": "B11",
    "swir22": "B12",
    "scl": "SCL",
}


def sitewatch(*args: str, cache: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI in a fresh process (fresh GDAL state, no SAS token held)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PC_SDK"))}
    full.update(SITEWATCH_CACHE=str(cache), SITEWATCH_BACKOFF_S="0.01", **(env or {}))
    full.pop("SITEWATCH_STAC_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "sitewatch.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
        env=full,
    )


def _copy_cogs(src_root: Path, item_ids: list[str], dest: Path) -> None:
    for item_id in item_ids:
        shutil.copytree(src_root / item_id, dest / item_id, dirs_exist_ok=True)


def _collection(template: Path, collection: str, root: Path) -> Path:
    doc = json.loads(template.read_text(encoding="utf-8"))
    doc["id"] = collection
    path = root / f"{collection}-collection.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _items(features: list[dict], root: Path, name: str) -> Path:
    path = root / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    return path


def _rehost(feature: dict, old: str, new: str) -> dict:
    out = json.loads(json.dumps(feature))
    for asset in out["assets"].values():
        asset["href"] = asset["href"].replace(old, new)
    return out


@pytest.fixture(scope="module")
def services(range_server, landsat_fixture, s2_fixture, tmp_path_factory):
    """Loopback Planetary Computer (STAC + token endpoint + signed blobs) and requester-pays S3."""
    root = range_server.root
    work = tmp_path_factory.mktemp("profiles")
    landsat = json.loads(Path(landsat_fixture["items"]).read_text(encoding="utf-8"))["features"]
    s2 = json.loads(Path(s2_fixture["items"]).read_text(encoding="utf-8"))["features"]
    _copy_cogs(root, landsat_fixture["item_ids"], root / "pc-blob")
    _copy_cogs(root, s2_fixture["item_ids"], root / "pc-blob")
    _copy_cogs(root, landsat_fixture["item_ids"], root / "usgs-landsat" / "collection02")
    base = range_server.url

    pc_landsat = [
        real_shaped(PC_LANDSAT, _rehost(f, f"{base}/", f"{base}/pc-blob/")) for f in landsat
    ]
    es_landsat = [
        real_shaped(ES_LANDSAT, _rehost(f, f"{base}/", "s3://usgs-landsat/collection02/"))
        for f in landsat
    ]
    pc_s2 = []
    for f in s2:  # Planetary Computer's Sentinel-2 shape, from the documentation
        doc = _rehost(real_shaped(C1_TEMPLATE, f), f"{base}/", f"{base}/pc-blob/")
        doc["collection"] = "sentinel-2-l2a"
        doc["stac_extensions"] = [e for e in doc["stac_extensions"] if "raster" not in e]
        assets = {}
        for ours, theirs in PC_S2_KEYS.items():
            asset = doc["assets"][ours]
            asset.pop("raster:bands", None)  # PC declares no raster:bands (PlanetaryComputer#406)
            assets[theirs] = asset
        doc["assets"] = assets
        pc_s2.append(doc)

    token_dir = root / "api" / "sas" / "v1" / "token"
    token_dir.mkdir(parents=True, exist_ok=True)
    for collection in ("landsat-c2-l2", "sentinel-2-l2a", "keyed-collection"):
        (token_dir / collection).write_text(json.dumps(TOKEN), encoding="utf-8")
    (root / "_auth.json").write_text(
        json.dumps(
            {
                "/pc-blob/": {"query": "sig", "value": SIG},
                "/usgs-landsat/": {"header": "x-amz-request-payer", "value": "requester"},
                "/api/sas/v1/token/keyed-collection": {
                    "header": "Ocp-Apim-Subscription-Key",
                    "value": KEY,
                },
            }
        ),
        encoding="utf-8",
    )
    pc_files = [
        _collection(PC_LANDSAT, "landsat-c2-l2", work),
        _items(pc_landsat, work, "pc-landsat.json"),
        _collection(C1_TEMPLATE, "sentinel-2-l2a", work),
        _items(pc_s2, work, "pc-s2.json"),
    ]
    es_files = [_collection(ES_LANDSAT, "landsat-c2-l2", work), _items(es_landsat, work, "es.json")]
    with serve_stac(pc_files, work) as pc_url, serve_stac(es_files, work) as es_url:
        yield {
            "pc_env": {
                "SITEWATCH_PC_STAC_URL": pc_url,
                "SITEWATCH_PC_TOKEN_URL": f"{base}/api/sas/v1/token",
            },
            "es_url": es_url,
            "s3_env": {
                "AWS_S3_ENDPOINT": base.removeprefix("http://"),
                "AWS_HTTPS": "NO",
                "AWS_VIRTUAL_HOSTING": "FALSE",
                "AWS_REGION": "us-west-2",
            },
            "pc_landsat": pc_landsat,
            "pc_s2": pc_s2,
        }
    (root / "_auth.json").unlink(missing_ok=True)


def _near_building(out: Path) -> list[dict]:
    fc = json.loads((out / "changes.geojson").read_text(encoding="utf-8"))
    return [
        f
        for f in fc["features"]
        if abs(f["properties"]["centroid"][0] - 127.657) < 0.002
        and abs(f["properties"]["centroid"][1] - 39.920) < 0.002
    ]


def _no_token_in(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".html", ".geojson", ".csv", ".txt"):
            assert SIG not in path.read_text(encoding="utf-8", errors="replace"), path


# --- the fixtures are the real documents' shape ---------------------------------------


def test_fixture_items_keep_the_real_documents_shape(services):
    real = json.loads(PC_LANDSAT.read_text(encoding="utf-8"))
    item = services["pc_landsat"][0]
    assert set(item["assets"]) == set(LANDSAT_KEYS)
    assert item["stac_extensions"] == real["stac_extensions"]
    for key in LANDSAT_KEYS:
        mine, theirs = item["assets"][key], real["assets"][key]
        assert mine["roles"] == theirs["roles"] and mine.get("eo:bands") == theirs.get("eo:bands")
        assert mine["raster:bands"] == theirs["raster:bands"]
        assert not any(k.startswith("proj:") for k in mine)  # PC keeps the grid on the item
    assert "proj:transform" in item["properties"]
    es = json.loads(ES_LANDSAT.read_text(encoding="utf-8"))["assets"]["red"]
    assert es["href"].startswith("s3://usgs-landsat/") and es["storage:requester_pays"] is True


# --- Planetary Computer: the default Landsat route --------------------------------------


def test_landsat_search_defaults_to_planetary_computer_and_signs(services, range_server, tmp_path):
    range_server.reset_log()
    run = sitewatch(
        "search",
        "feb11-plant",
        "--source",
        "landsat",
        "--from",
        "2020-06",
        "--to",
        "2020-06",
        "--json",
        cache=tmp_path / "c",
        env=services["pc_env"],
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    doc = json.loads(run.stdout)
    assert doc["service"]["profile"] == "planetary-computer"
    assert doc["stac_url"] == services["pc_env"]["SITEWATCH_PC_STAC_URL"]
    (scene,) = doc["scenes"]
    assert scene["item_id"] == "LC08_L2SP_116032_20200615_02_T1"
    assert 0.3 < scene["clear_fraction"] < 0.9  # QA_PIXEL read over the AOI: signed reads work
    assert SIG not in run.stdout  # the token is never printed
    assert doc["requests"] >= 4 and doc["bytes_read"] > 0  # API pages, token, mask window
    reqs = range_server.requests()
    tokens = [r for r in reqs if r["path"].startswith("/api/sas/v1/token/")]
    assert [r["path"] for r in tokens] == ["/api/sas/v1/token/landsat-c2-l2"]  # one token
    blobs = [r for r in reqs if r["path"].startswith("/pc-blob/")]
    assert blobs and all(r["status"] in (200, 206) for r in blobs)


def test_unsigned_blob_reads_are_refused(services, range_server):
    """The access rule is real: without the token the blob answers 403."""
    import urllib.error
    import urllib.request

    href = services["pc_landsat"][0]["assets"]["red"]["href"]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(href, timeout=5)
    assert err.value.code == 403
    err.value.close()
    with urllib.request.urlopen(f"{href}?{TOKEN['token']}", timeout=5) as resp:
        assert resp.status == 200


def test_landsat_detect_through_planetary_computer(services, range_server, tmp_path):
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
        "--out",
        str(out),
        cache=tmp_path / "c",
        env=services["pc_env"],
    )
    assert run.returncode == 0, run.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    after = manifest["inputs"]["after"]
    assert after["search"]["service"]["profile"] == "planetary-computer"
    assert after["assets"]["SR_B4"]["scale_offset"] == [2.75e-05, -0.2]
    assert after["requests"] > 0 and after["bytes_read"] > 0
    assert after["assets"]["SR_B4"]["href"].endswith("_SR_B4.TIF")  # unsigned in the record
    assert len(_near_building(out)) == 1
    _no_token_in(out)


def test_a_refused_token_names_the_account_key(services, range_server, tmp_path, monkeypatch):
    """A token endpoint that wants an account key (as PC's sentinel-1-rtc does)."""
    from sitewatch.errors import SourceError
    from sitewatch.sources import profiles

    monkeypatch.setenv("SITEWATCH_PC_TOKEN_URL", services["pc_env"]["SITEWATCH_PC_TOKEN_URL"])
    monkeypatch.delenv(profiles.PC_SUBSCRIPTION_KEY_ENV, raising=False)
    monkeypatch.setattr(profiles, "_TOKENS", {})
    pc = profiles.resolve_profile("planetary-computer")
    with pytest.raises(SourceError, match=r"HTTP 403.*PC_SDK_SUBSCRIPTION_KEY"):
        profiles.token_for(pc, "keyed-collection")
    monkeypatch.setenv(profiles.PC_SUBSCRIPTION_KEY_ENV, KEY)
    assert profiles.token_for(pc, "keyed-collection") == TOKEN["token"]


# --- Planetary Computer's Sentinel-2 shape ----------------------------------------------


def test_planetary_computer_sentinel2_keys_and_esa_offset(services, range_server, tmp_path):
    out = tmp_path / "out"
    run = sitewatch(
        "detect",
        "feb11-plant",
        "--before",
        "2020-06",
        "--after",
        "2024-10",
        "--stac-url",
        "planetary-computer",
        "--out",
        str(out),
        cache=tmp_path / "c",
        env=services["pc_env"],
    )
    assert run.returncode == 0, run.stderr
    after = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["inputs"]["after"]
    assert after["collection"] == "sentinel-2-l2a"
    red = after["assets"]["B04"]
    assert red["scale_offset"] == [0.0001, -0.1]  # ESA's +1000 DN removed once
    assert "Planetary Computer keeps ESA's DN" in red["scale_rule"]
    assert len(_near_building(out)) == 1
    _no_token_in(out)


# --- Earth Search requester-pays S3 ------------------------------------------------------


def _es_search(services, tmp_path, *extra: str, env: dict | None = None):
    return sitewatch(
        "search",
        "feb11-plant",
        "--source",
        "landsat",
        "--from",
        "2020-06",
        "--to",
        "2020-06",
        "--stac-url",
        services["es_url"],
        *extra,
        cache=tmp_path / "c",
        env={"HOME": str(tmp_path), **(env or {})},
    )


def test_requester_pays_without_the_flag_names_both_ways_out(services, range_server, tmp_path):
    range_server.reset_log()
    run = _es_search(services, tmp_path)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "requester-pays" in run.stderr and "--requester-pays" in run.stderr
    assert "planetary-computer" in run.stderr
    assert not range_server.paths("/usgs-landsat/")  # stopped before any read


def test_requester_pays_without_credentials_says_so(services, range_server, tmp_path):
    run = _es_search(services, tmp_path, "--requester-pays")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1
    assert "AWS credentials" in run.stderr and "planetary-computer" in run.stderr


def test_requester_pays_reads_through_vsis3_with_the_payer_header(services, range_server, tmp_path):
    range_server.reset_log()
    env = {**services["s3_env"], "AWS_ACCESS_KEY_ID": "AKIDLOOPBACK", "AWS_SECRET_ACCESS_KEY": "x"}
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
        services["es_url"],
        "--requester-pays",
        "--out",
        str(out),
        cache=tmp_path / "c",
        env={"HOME": str(tmp_path), **env},
    )
    assert run.returncode == 0, run.stderr
    s3 = [r for r in range_server.requests() if r["path"].startswith("/usgs-landsat/")]
    assert s3 and all(r["status"] in (200, 206) for r in s3)  # 403 without the payer header
    after = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["inputs"]["after"]
    assert after["assets"]["SR_B4"]["href"].startswith("s3://usgs-landsat/")
    served = sum(r["bytes"] for r in s3)
    before = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["inputs"]["before"]
    assert 0 < after["bytes_read"] + before["bytes_read"] <= served  # /vsis3/ reads counted
    assert len(_near_building(out)) == 1


# --- choosing a service -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "source", "name"),
    [
        (None, "s2", "earth-search"),
        (None, "landsat", "planetary-computer"),
        ("earth-search", "landsat", "earth-search"),
        ("planetary-computer", "s2", "planetary-computer"),
        ("https://planetarycomputer.microsoft.com/api/stac/v1", "s2", "planetary-computer"),
        ("http://127.0.0.1:8080/", "landsat", "custom"),
    ],
)
def test_profile_resolution(value, source, name, monkeypatch):
    from sitewatch.sources.profiles import resolve_profile

    monkeypatch.delenv("SITEWATCH_STAC_URL", raising=False)
    assert resolve_profile(value, source=source).name == name


def test_a_bad_stac_url_is_exit_2(capsys):
    from sitewatch.cli.main import main

    code = main(
        ["search", "feb11-plant", "--from", "2020-06", "--to", "2020-06", "--stac-url", "ftp://x"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "planetary-computer" in err
