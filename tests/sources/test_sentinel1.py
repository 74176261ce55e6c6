"""Sentinel-1 RTC on loopback (issue 15): the Planetary Computer as a radar user meets it.

* Items shaped like the real Planetary Computer ``sentinel-1-rtc`` items
  (``tests/s1_fixtures.py``: asset keys ``vv``/``vh``, ``sat:orbit_state``,
  ``sat:relative_orbit``, ``sar:polarizations``, item-level ``proj:*``), served by a real
  STAC API (rustac). Their COGs sit behind a rule that answers 403 without the SAS
  token's ``sig``; the token endpoint (``/api/sas/v1/token/sentinel-1-rtc``) answers 403
  without the ``Ocp-Apim-Subscription-Key`` header, as the real one does.
* Two orbit geometries: ascending 127 (12 scenes, a +6 dB hall from the 8th) and
  descending 32 (4 scenes, 3 dB brighter everywhere): never compared with each other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import serve_range, serve_stac

SIG = "loopback-s1-signature"
TOKEN = {"msft:expiry": "2099-01-01T00:00:00Z", "token": f"st=2026-01-01&se=2099-01-01&sig={SIG}"}
KEY = "loopback-account-key"


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
        timeout=300,
        env=full,
    )


@pytest.fixture(scope="module")
def pc(tmp_path_factory):
    """Loopback Planetary Computer: STAC API, keyed token endpoint, signed blob server."""
    from s1_fixtures import BLOB, build_s1_fixture
    from stac_fixtures import build_s2_fixture

    root = tmp_path_factory.mktemp("pc_s1_root")
    log = tmp_path_factory.mktemp("pc_s1_log") / "requests.log"
    with serve_range(root, log) as blob:
        fixture = build_s1_fixture(root, blob.url)
        s2 = build_s2_fixture(root, blob.url)  # optical scenes of the same AOI, for fusion
        token_dir = root / "api" / "sas" / "v1" / "token"
        token_dir.mkdir(parents=True)
        (token_dir / "sentinel-1-rtc").write_text(json.dumps(TOKEN), encoding="utf-8")
        (root / "_auth.json").write_text(
            json.dumps(
                {
                    f"/{BLOB}/": {"query": "sig", "value": SIG},
                    "/api/sas/v1/token/": {"header": "Ocp-Apim-Subscription-Key", "value": KEY},
                }
            ),
            encoding="utf-8",
        )
        with serve_stac(
            [fixture["collection"], fixture["items"], s2["collection"], s2["items"]],
            tmp_path_factory.mktemp("rustac_s1"),
        ) as url:
            env = {
                "SITEWATCH_PC_STAC_URL": url,
                "SITEWATCH_PC_TOKEN_URL": f"{blob.url}/api/sas/v1/token",
            }
            yield {
                "blob": blob,
                "stac": url,
                "env": env,
                "keyed": {**env, "PC_SDK_SUBSCRIPTION_KEY": KEY},
                **fixture,
            }


def test_items_have_the_real_planetary_computer_shape(pc):
    from s1_fixtures import TEMPLATE

    real = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    items = json.loads(Path(pc["items"]).read_text(encoding="utf-8"))["features"]
    assert len(items) == 16
    for doc in items:
        assert set(doc["assets"]) == {"vv", "vh"}
        for key in (
            "sar:polarizations",
            "sar:instrument_mode",
            "sar:looks_equivalent_number",
            "sat:orbit_state",
            "sat:relative_orbit",
            "s1:datatake_id",
            "proj:epsg",
            "proj:transform",
            "proj:shape",
        ):
            assert key in doc["properties"], key
        assert doc["properties"]["sar:polarizations"] == real["properties"]["sar:polarizations"]
        assert doc["assets"]["vv"]["raster:bands"] == real["assets"]["vv-rtc"]["raster:bands"]
        assert doc["assets"]["vv"]["href"].endswith("/measurement/iw-vv.rtc.tiff")
        assert "sig=" not in doc["assets"]["vv"]["href"]  # the service signs them
        assert any(link["rel"] == "derived_from" for link in doc["links"])


def test_token_endpoint_answers_403_without_the_key(pc):
    url = f"{pc['env']['SITEWATCH_PC_TOKEN_URL']}/sentinel-1-rtc"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 403
    err.value.close()
    req = urllib.request.Request(url, headers={"Ocp-Apim-Subscription-Key": KEY})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["token"].endswith(SIG)


def test_without_the_key_one_line_before_any_request(pc, tmp_path):
    pc["blob"].reset_log()
    dead = {**pc["env"], "SITEWATCH_PC_STAC_URL": "http://127.0.0.1:9"}  # nothing listens
    for args in (
        ("search", "feb11-plant", "--from", "2020-07", "--to", "2024-12", "--source", "s1"),
        (
            "detect",
            "feb11-plant",
            "--source",
            "s1",
            "--before",
            "2021-01/2021-12",
            "--after",
            "2024-01/2024-12",
            "--out",
            str(tmp_path / "d"),
        ),
        (
            "timeline",
            "feb11-plant",
            "--source",
            "s1",
            "--from",
            "2020-07",
            "--to",
            "2024-12",
            "--out",
            str(tmp_path / "t"),
        ),
    ):
        res = sitewatch(*args, cache=tmp_path / "cache", env=dead)
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, res.stderr
        assert "PC_SDK_SUBSCRIPTION_KEY" in lines[0]
        assert "https://planetarycomputer.microsoft.com/account/request" in lines[0]
    assert pc["blob"].requests() == []
    assert not (tmp_path / "d").exists() and not (tmp_path / "t").exists()


def test_a_wrong_key_is_refused_naming_the_variable(pc, tmp_path):
    env = {**pc["env"], "PC_SDK_SUBSCRIPTION_KEY": "not-the-key"}
    res = sitewatch(
        "search",
        "feb11-plant",
        "--from",
        "2020-07",
        "--to",
        "2024-12",
        "--source",
        "s1",
        "--no-cache",
        cache=tmp_path,
        env=env,
    )
    assert res.returncode != 0
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "HTTP 403" in res.stderr and "PC_SDK_SUBSCRIPTION_KEY" in res.stderr


def test_earth_search_sentinel1_points_to_planetary_computer(tmp_path):
    res = sitewatch(
        "search",
        "feb11-plant",
        "--from",
        "2024-01",
        "--to",
        "2024-02",
        "--source",
        "s1",
        "--stac-url",
        "earth-search",
        cache=tmp_path,
    )
    assert res.returncode == 2
    line = res.stderr.strip()
    assert "\n" not in line
    assert "requester-pays" in line and "--stac-url planetary-computer" in line


def test_search_lists_both_geometries_and_signs(pc, tmp_path):
    pc["blob"].reset_log()
    res = sitewatch(
        "search",
        "feb11-plant",
        "--from",
        "2020-07",
        "--to",
        "2024-12",
        "--source",
        "s1",
        "--json",
        cache=tmp_path,
        env=pc["keyed"],
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["collection"] == "sentinel-1-rtc"
    tiles = [s["tile"] for s in doc["scenes"]]
    assert tiles.count("ascending 127") == 12 and tiles.count("descending 32") == 4
    token_calls = [r for r in pc["blob"].requests() if r["path"].startswith("/api/sas/")]
    assert len(token_calls) == 1 and token_calls[0]["status"] == 200


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_detect_s1_pair_finds_the_hall(pc, tmp_path):
    out = tmp_path / "pair"
    res = sitewatch(
        "detect",
        "feb11-plant",
        "--source",
        "s1",
        "--before",
        "2020-07/2023-01",
        "--after",
        "2023-04/2024-12",
        "--scenes",
        "4",
        "--out",
        str(out),
        cache=tmp_path / "cache",
        env=pc["keyed"],
    )
    assert res.returncode == 0, res.stderr
    print(res.stdout)
    fc = json.loads((out / "changes.geojson").read_text(encoding="utf-8"))
    assert len(fc["features"]) == 1, [f["properties"]["area_m2"] for f in fc["features"]]
    p = fc["features"][0]["properties"]
    assert p["orbit"] == "ascending 127"
    assert p["looks"] == {"before": pytest.approx(17.6), "after": pytest.approx(17.6)}
    assert 5.0 < p["db_vv"] < 7.0 and p["p_value"] < 1e-3
    assert p["first_seen"] == pc["ascending_dates"][7]
    man = _manifest(out)
    assert man["parameters"]["looks"] == {
        "before": pytest.approx(17.6),
        "after": pytest.approx(17.6),
    }
    assert man["parameters"]["enl_per_scene"] == 4.4
    assert man["inputs"]["before"]["orbit"] == man["inputs"]["after"]["orbit"] == "ascending 127"
    assert man["network"]["requests"] > 0
    for name in ("score.tif", "mask.tif", "db.tif", "p_value.tif", "before.tif", "report.html"):
        assert (out / name).is_file(), name
    assert "sig=" not in (out / "manifest.json").read_text(encoding="utf-8")


def test_timeline_s1_dates_the_hall_with_one_orbit(pc, tmp_path):
    out = tmp_path / "series"
    res = sitewatch(
        "timeline",
        "feb11-plant",
        "--source",
        "s1",
        "--from",
        "2020-07",
        "--to",
        "2024-12",
        "--alpha",
        "1e-3",
        "--out",
        str(out),
        cache=tmp_path / "cache",
        env=pc["keyed"],
    )
    assert res.returncode == 0, res.stderr
    print(res.stdout)
    fc = json.loads((out / "changes.geojson").read_text(encoding="utf-8"))
    assert len(fc["features"]) == 1
    p = fc["features"][0]["properties"]
    assert p["first_seen"] == pc["ascending_dates"][7]
    assert p["orbit"] == "ascending 127" and p["looks"] == 4.4 and p["p_value"] < 1e-3
    man = _manifest(out)
    assert man["diagnostics"]["orbits_not_used"] == ["descending 32"]
    used = [s["orbit"] for s in man["series"]]
    assert used == ["ascending 127"] * 12
    tl = json.loads((out / "timeline.json").read_text(encoding="utf-8"))
    assert tl["dates"] == pc["ascending_dates"]


def test_the_other_orbit_alone_shows_no_change(pc, tmp_path):
    """Descending scenes are 3 dB brighter: mixed with ascending ones, all would 'change'."""
    out = tmp_path / "desc"
    res = sitewatch(
        "timeline",
        "feb11-plant",
        "--source",
        "s1",
        "--orbit",
        "descending",
        "--from",
        "2020-07",
        "--to",
        "2024-12",
        "--out",
        str(out),
        cache=tmp_path / "cache",
        env=pc["keyed"],
    )
    assert res.returncode == 0, res.stderr
    fc = json.loads((out / "changes.geojson").read_text(encoding="utf-8"))
    assert fc["features"] == []
    assert [s["orbit"] for s in _manifest(out)["series"]] == ["descending 32"] * 4


def test_fused_timeline_sees_the_hall_with_both_sensors(pc, tmp_path):
    """Optical has two clear dates (2020-06, 2024-10); radar dates the hall in between."""
    out = tmp_path / "fused"
    res = sitewatch(
        "timeline",
        "feb11-plant",
        "--source",
        "s2,s1",
        "--from",
        "2020-06",
        "--to",
        "2024-12",
        "--every",
        "6M",
        "--stac-url",
        pc["stac"],
        "--out",
        str(out),
        cache=tmp_path / "cache",
        env=pc["keyed"],
    )
    assert res.returncode == 0, res.stderr
    print(res.stdout)
    fc = json.loads((out / "changes.geojson").read_text(encoding="utf-8"))
    both = [
        f["properties"] for f in fc["features"] if f["properties"]["seen_by"] == "optical and radar"
    ]
    assert len(both) == 1, [f["properties"]["seen_by"] for f in fc["features"]]
    p = both[0]
    assert p["first_seen_optical"].startswith("2024-10-05")
    assert p["first_seen_radar"] == pc["ascending_dates"][7]
    assert p["first_seen"] == pc["ascending_dates"][7]  # radar narrows the date
    assert p["orbit"] == "ascending 127" and p["p_value"] < 1e-3
    sensors = {h["sensor"] for h in p["history"]}
    assert sensors == {"optical", "radar"}
    fusion = json.loads((out / "fusion.json").read_text(encoding="utf-8"))
    assert fusion["steps_seen_only_by_radar"]  # the cloudy/empty optical steps
    for name in (
        "radar_before.tif",
        "radar_after.tif",
        "radar/first_change.tif",
        "timeline.json",
        "report.html",
    ):
        assert (out / name).is_file(), name
    assert "seen by optical and radar" in res.stdout
    chips = sorted(p.name for p in (out / "chips").iterdir())
    assert "c001_radar_VV_before.png" in chips, chips
    assert "radar VV before" in (out / "report.html").read_text(encoding="utf-8")


def test_batch_watch_list_with_radar_jobs(pc, tmp_path):
    wl = tmp_path / "watch.toml"
    wl.write_text(
        f"""out = "{tmp_path / "runs"}"

[[job]]
name = "radar"
aoi = "feb11-plant"
from = "2020-07"
to = "2024-12"
source = "s1"
alpha = 1e-3

[[job]]
name = "fused"
aoi = "feb11-plant"
from = "2020-06"
to = "2024-12"
every = "6M"
source = "s2,s1"
stac_url = "{pc["stac"]}"

[[job]]
name = "radar-pair"
aoi = "feb11-plant"
before = "2020-07/2023-01"
after = "2023-04/2024-12"
source = "s1"
scenes = 4
""",
        encoding="utf-8",
    )
    res = sitewatch(
        "batch", str(wl), "--workers", "1", "--json", cache=tmp_path / "cache", env=pc["keyed"]
    )
    assert res.returncode == 0, res.stdout + res.stderr
    jobs = {j["name"]: j for j in json.loads(res.stdout)["jobs"]}
    assert {n: j["status"] for n, j in jobs.items()} == dict.fromkeys(jobs, "ok")
    assert jobs["radar"]["n_polygons"] == jobs["radar-pair"]["n_polygons"] == 1
    fused = json.loads((tmp_path / "runs" / "fused" / "changes.geojson").read_text("utf-8"))
    assert [f["properties"]["seen_by"] for f in fused["features"]] == ["optical and radar"]


def test_batch_refuses_an_unknown_source(tmp_path):
    wl = tmp_path / "watch.toml"
    wl.write_text(
        '[[job]]\naoi = "feb11-plant"\nfrom = "2020-07"\nto = "2024-12"\nsource = "s1,landsat"\n',
        encoding="utf-8",
    )
    res = sitewatch("batch", str(wl), cache=tmp_path)
    assert res.returncode == 2
    assert "'s2', 'landsat', 's1' or 's2,s1'" in res.stderr


def test_python_api_runs_the_radar_timeline(pc, tmp_path, monkeypatch):
    import sitewatch as sw
    from sitewatch import run

    for k, v in pc["keyed"].items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("SITEWATCH_STAC_URL", raising=False)
    done = run.timeline(
        sw.TimelineJob(
            out=tmp_path / "api",
            aoi="feb11-plant",
            start="2020-07",
            end="2024-12",
            scenes=sw.SceneQuery(source="s1", cache=str(tmp_path / "cache")),
            radar=sw.RadarOptions(alpha=1e-4),
        )
    )
    assert done.timeline == pc["ascending_dates"]
    (p,) = [f["properties"] for f in done.result.features]
    assert p["first_seen"] == pc["ascending_dates"][7] and p["alpha"] == 1e-4


def test_python_api_pair_and_fused_raise_no_warning(pc, tmp_path, monkeypatch):
    """In-process, so any warning is an error (the CLI tests run in a subprocess)."""
    import sitewatch as sw
    from sitewatch import run

    for k, v in pc["keyed"].items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("SITEWATCH_STAC_URL", raising=False)
    cache = str(tmp_path / "cache")
    pair = run.detect(
        sw.DetectJob(
            before="2020-07/2023-01",
            after="2023-04/2024-12",
            out=tmp_path / "pair",
            aoi="feb11-plant",
            scenes=sw.SceneQuery(source="s1", cache=cache),
            radar=sw.RadarOptions(scenes=2),
        )
    )
    (p,) = [f["properties"] for f in pair.result.features]
    assert p["looks"] == {"before": pytest.approx(8.8), "after": pytest.approx(8.8)}
    fused = run.timeline(
        sw.TimelineJob(
            out=tmp_path / "fused",
            aoi="feb11-plant",
            start="2020-06",
            end="2024-12",
            every="6M",
            scenes=sw.SceneQuery(source="s2,s1", stac_url=pc["stac"], cache=cache),
        )
    )
    assert [f["properties"]["seen_by"] for f in fused.result.features] == ["optical and radar"]
