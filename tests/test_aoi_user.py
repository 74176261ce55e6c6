"""A user's own catalog: ``sitewatch aoi new``, lookup by id, override notes, checks."""

from __future__ import annotations

import json
import warnings

import pytest
from pyproj import Transformer

from conftest import ORIGIN, RES, UTM, lonlat_box, write_geojson
from sitewatch import load_aoi, load_catalog
from sitewatch.aoi import user_catalog_dir
from sitewatch.cli.main import main
from sitewatch.errors import BandsNotIdentifiedWarning

NEW = [
    "aoi",
    "new",
    "my-yard",
    "--name",
    "My rail yard",
    "--point",
    "42.4214,130.6081",
    "--source",
    "https://example.org/report",
    "--date",
    "2025-03-01",
    "--confidence",
    "medium",
    "--country",
    "KP",
]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sitewatch: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)


def test_user_catalog_dir_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("SITEWATCH_AOI_PATH")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_catalog_dir() == tmp_path / "xdg" / "sitewatch" / "aoi"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_catalog_dir() == tmp_path / "home" / ".config" / "sitewatch" / "aoi"
    monkeypatch.setenv("SITEWATCH_AOI_PATH", str(tmp_path / "mine"))
    assert user_catalog_dir() == tmp_path / "mine"


def test_new_round_trips_and_every_command_finds_it(private_user_catalog, capsys):
    code, out, err = run(capsys, *NEW, "--box-km", "1.5,1", "--alias", "ru:станция Туманган")
    assert code == 0, err
    path = private_user_catalog / "my-yard.geojson"
    assert str(path) in out and path.exists()
    feat = json.loads(path.read_text(encoding="utf-8"))
    props = feat["properties"]
    assert props["points"][0]["lat"] == 42.4214 and props["points"][0]["lon"] == 130.6081
    assert props["sources"][0] == {
        "outlet": "example.org",
        "date": "2025-03-01",
        "title": None,
        "url": "https://example.org/report",
        "supports": "Point 42.4214, 130.6081 (medium).",
    }
    assert props["geometry_kind"] == "working_box" and "not a sourced" in props["geometry_note"]
    aoi = load_aoi("my-yard")
    assert aoi.origin == "user" and aoi.area_m2 / 1e6 == pytest.approx(1.5, rel=0.02)
    assert load_aoi("станция Туманган").id in ("my-yard", "tumangang-station")
    assert "my-yard" in load_catalog()
    assert "my-yard" not in load_catalog(user=False)
    code, out, _ = run(capsys, "aoi", "list")
    assert "my-yard" in out and "(yours)" in out and "(12 located" in out
    code, out, _ = run(capsys, "aoi", "check")
    assert code == 0 and "ok   my-yard (yours)" in out and "18/18 AOIs pass" in out
    code, out, _ = run(capsys, "aoi", "show", "my-yard")
    assert code == 0 and "(your catalog)" in out


def test_new_is_found_by_detect(private_user_catalog, planted_pair, tmp_path, capsys):
    before, after, _ = planted_pair()
    # The middle of the planted pair (UTM 52N, 200 x 200 px of 10 m), in lat/lon.
    to_ll = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(ORIGIN[0] + 100 * RES, ORIGIN[1] - 100 * RES)
    argv = [*NEW[:6], f"{lat:.6f},{lon:.6f}", *NEW[7:]]
    code, _, err = run(capsys, *argv, "--box-km", "1,1")
    assert code == 0, err
    with warnings.catch_warnings():
        warnings.simplefilter("always", BandsNotIdentifiedWarning)
        code, _, err = run(
            capsys,
            "detect",
            "my-yard",
            "--before",
            before,
            "--after",
            after,
            "--out",
            tmp_path / "run",
            "--json",
        )
    assert code == 0, err
    assert (tmp_path / "run" / "manifest.json").exists()
    manifest = (tmp_path / "run" / "manifest.json").read_text(encoding="utf-8")
    assert "my-yard" in manifest


def test_new_with_a_polygon_file(private_user_catalog, tmp_path, capsys):
    f = write_geojson(tmp_path / "outline.geojson", lonlat_box(130.60, 42.41, 130.62, 42.43))
    code, _, err = run(capsys, *NEW, "--polygon", f)
    assert code == 0, err
    note = json.loads((private_user_catalog / "my-yard.geojson").read_text())["properties"]
    assert "outline.geojson" in note["geometry_note"]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (["--point", "42.4214;130.6081"], "LAT,LON"),
        (["--point", "130.6081,42.4214"], "lat/lon swapped"),
        (["--point", "45.0,130.6081"], "lies outside KP"),
        (["--date", "2025-02-30"], "not a real YYYY-MM-DD"),
        (["--date", "March 2025"], "--date"),
        (["--confidence", "certain"], "--confidence 'certain'"),
        (["--country", "Korea"], "ISO 3166-1"),
        (["--box-km", "50,50"], "a facility, not a city"),
        (["--box-km", "two,2"], "--box-km"),
    ],
)
def test_new_refuses_bad_input(private_user_catalog, capsys, change, needle):
    argv = list(NEW)
    for i in range(0, len(change), 2):
        if change[i] in argv:
            argv[argv.index(change[i]) + 1] = change[i + 1]
        else:
            argv += change[i : i + 2]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    one_line_error(err, needle)
    assert list(private_user_catalog.iterdir()) == []


def test_polygon_must_contain_the_point(private_user_catalog, tmp_path, capsys):
    f = write_geojson(tmp_path / "far.geojson", lonlat_box(130.0, 42.0, 130.02, 42.02))
    code, _, err = run(capsys, *NEW, "--polygon", f)
    assert code == 2
    one_line_error(err, "does not contain --point")
    code, _, err = run(capsys, *NEW, "--polygon", f, "--box-km", "1,1")
    assert code == 2 and "not allowed with" in err


def test_no_silent_overwrite(private_user_catalog, capsys):
    assert run(capsys, *NEW)[0] == 0
    before = (private_user_catalog / "my-yard.geojson").read_text()
    code, _, err = run(capsys, *NEW[:4], "Another name", *NEW[5:])
    assert code == 2
    one_line_error(err, "already exists", "--overwrite")
    assert (private_user_catalog / "my-yard.geojson").read_text() == before
    assert run(capsys, *NEW[:4], "Another name", *NEW[5:], "--overwrite")[0] == 0
    assert load_aoi("my-yard").name == "Another name"
    assert [p.name for p in private_user_catalog.iterdir()] == ["my-yard.geojson"]  # no temp


def test_builtin_id_needs_an_override_note(private_user_catalog, capsys):
    argv = [*NEW[:2], "tumangang-station", *NEW[3:]]
    code, _, err = run(capsys, *argv)
    assert code == 2
    one_line_error(err, "built-in catalog entry", "--override-builtin")
    why = "yard re-measured from 2025 imagery"
    code, out, err = run(capsys, *argv, "--override-builtin", why)
    assert code == 0, err
    assert "overrides the built-in entry" in out
    aoi = load_aoi("tumangang-station")
    assert aoi.origin == "user" and aoi.properties["overrides"] == why
    code, out, _ = run(capsys, "aoi", "show", "tumangang-station")
    assert f"overrides the built-in entry: {why}" in out
    code, out, _ = run(capsys, "aoi", "check")
    assert code == 0 and "ok   tumangang-station (yours)" in out


def test_check_validates_user_entries(private_user_catalog, capsys):
    assert run(capsys, *NEW)[0] == 0
    f = private_user_catalog / "my-yard.geojson"
    feat = json.loads(f.read_text())
    feat["properties"]["sources"] = []
    f.write_text(json.dumps(feat))
    code, out, _ = run(capsys, "aoi", "check")
    assert code == 2 and "FAIL my-yard (yours): no sources" in out
    # A hand-copied built-in id without an 'overrides' note is flagged too.
    feat["properties"]["sources"] = [{"outlet": "x", "date": None, "supports": "y"}]
    f.unlink()
    feat["id"] = feat["properties"]["id"] = "sohae"
    (private_user_catalog / "sohae.geojson").write_text(json.dumps(feat))
    code, out, _ = run(capsys, "aoi", "check")
    assert code == 2 and "shadows the built-in entry without an 'overrides' note" in out
