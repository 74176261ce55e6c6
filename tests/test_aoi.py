"""The facility catalog, AOI validation and article matching."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import Point

from conftest import SHARED, lonlat_box, needs_shared, write_geojson
from sitewatch import AOI, AOIError, load_aoi, load_aoi_file, load_catalog, match_article
from sitewatch.aoi import _fold, check_aoi
from sitewatch.cli.main import main

REQUIRED = [
    "feb11-plant",
    "ryongsong-complex",
    "rajin-port",
    "tumangang-khasan",
    "dunay-port",
    "tikhoretsk-depot",
    "vostochny-cosmodrome",
    "sohae",
]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_catalog_has_the_required_facilities(catalog):
    assert set(REQUIRED) <= set(catalog)


@pytest.mark.parametrize("aoi_id", REQUIRED)
def test_catalog_entries_pass_the_check(catalog, aoi_id):
    assert check_aoi(catalog[aoi_id]) == []


def test_every_catalog_entry_passes(catalog):
    assert {k: check_aoi(a) for k, a in catalog.items() if check_aoi(a)} == {}


def test_feb11_polygon_contains_buildings_a_and_b(catalog):
    feb11 = catalog["feb11-plant"]
    assert feb11.located and feb11.geometry_kind == "working_box"
    assert feb11.geometry.contains(Point(127.656521, 39.921628))  # Building A
    assert feb11.geometry.contains(Point(127.657091, 39.920212))  # Building B
    assert 1e6 < feb11.area_m2 < 2e7
    events = " ".join(e["date"] + " " + e["event"] for e in feb11.properties["events"])
    assert "2024-10" in events and "final-assembly building" in events


def test_unlocated_and_conflicting_entries(catalog):
    assert not catalog["ryongsong-complex"].located
    rajin = catalog["rajin-port"]
    assert not rajin.located and len(rajin.properties["candidates"]) >= 2
    assert rajin.properties["conflicts"]


def test_aliases_cover_languages(catalog):
    feb11 = catalog["feb11-plant"]
    assert any("Februari" in a for a in feb11.aliases["id"])
    assert catalog["ryongsong-complex"].aliases["ko"]
    assert any("Восточный" in a for a in catalog["vostochny-cosmodrome"].aliases["ru"])


def test_load_aoi_by_alias(catalog):
    assert load_aoi("Kosmodrom Vostochny", catalog=catalog).id == "vostochny-cosmodrome"


def test_cli_check_passes(capsys):
    assert main(["aoi", "check"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "AOIs pass" in out


def test_cli_list_and_show_json(capsys):
    assert main(["aoi", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in rows} >= set(REQUIRED)
    assert main(["aoi", "show", "feb11-plant", "--json"]) == 0
    feat = json.loads(capsys.readouterr().out)
    assert feat["properties"]["points"][0]["lat"] == pytest.approx(39.92, abs=0.01)


def test_cli_check_reports_bad_files(tmp_path, capsys):
    bad = lonlat_box(127.5, 39.9, 127.6, 40.0)
    bad["geometry"]["coordinates"] = [
        [[127.5, 39.9], [127.6, 40.0], [127.6, 39.9], [127.5, 40.0], [127.5, 39.9]]
    ]
    f = write_geojson(tmp_path / "bad.geojson", bad)
    code = main(["aoi", "check", str(f)])
    out, err = capsys.readouterr()
    assert code == 2 and "FAIL" in out and "Self-intersection" in out
    assert err.count("\n") == 1


# --------------------------------------------------------------- validation


def _aoi(coords, **kw):
    return AOI.from_feature(
        {
            "type": "Feature",
            "properties": {"id": "t", **kw},
            "geometry": {"type": "Polygon", "coordinates": [coords]},
        }
    )


def test_invalid_polygon_is_refused():
    with pytest.raises(AOIError, match="Self-intersection"):
        _aoi([[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]])


def test_swapped_coordinates_are_named():
    with pytest.raises(AOIError, match="lat/lon swapped"):
        _aoi([[39.9, 127.6], [39.95, 127.6], [39.95, 127.65], [39.9, 127.65], [39.9, 127.6]])


def test_swap_caught_by_country_box():
    # Tikhoretsk written [lat, lon]: both in range, but outside Russia until swapped.
    ring = [[45.85, 40.1], [45.86, 40.1], [45.86, 40.11], [45.85, 40.11], [45.85, 40.1]]
    with pytest.raises(AOIError, match="swapped"):
        _aoi(ring, countries=["RU"])


def test_tiny_and_huge_areas_are_refused():
    with pytest.raises(AOIError, match="below"):
        _aoi([[10, 10], [10.0001, 10], [10.0001, 10.0001], [10, 10.0001], [10, 10]])
    with pytest.raises(AOIError, match="above"):
        _aoi([[10, 10], [12, 10], [12, 12], [10, 12], [10, 10]])


def test_point_geometry_is_refused(tmp_path):
    f = write_geojson(
        tmp_path / "p.geojson",
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [1, 2]}},
    )
    with pytest.raises(AOIError, match="Polygon"):
        load_aoi_file(f)


def test_not_json(tmp_path):
    f = tmp_path / "x.geojson"
    f.write_text("{not json")
    with pytest.raises(AOIError, match="not valid JSON"):
        load_aoi_file(f)


# --------------------------------------------------------------- matching


def _ids(text, catalog, *, weak=False):
    return [m.aoi_id for m in match_article(text, catalog) if weak or not m.weak]


def test_match_indonesian_phrases(catalog):
    text = (
        "Fasilitas itu berada di Kompleks Mesin Ryongsong di Hamhung. Pabrik itu dikenal "
        "sebagai pabrik 11 Februari. Kim bertemu Putin di Vostochny Cosmodrome."
    )
    ids = _ids(text, catalog)
    assert {"ryongsong-complex", "feb11-plant", "vostochny-cosmodrome"} <= set(ids)
    m = next(m for m in match_article(text, catalog) if m.aoi_id == "feb11-plant")
    assert text[m.start : m.start + len(m.phrase)] == m.phrase == "pabrik 11 Februari"


def test_match_is_case_and_diacritics_insensitive(catalog):
    assert "vostochny-cosmodrome" in _ids("at the VOSTOCHNY cosmodrome, officials said", catalog)
    assert "vostochny-cosmodrome" in _ids("Космодром Восточный", catalog)
    assert "feb11-plant" in _ids("the February-11 plant", catalog)


def test_match_needs_word_boundaries(catalog):
    assert "feb11-plant" not in _ids("pabrik 11 Februarian", catalog)
    assert _ids("Feb 11, 2024: nothing happened in Sohaengdong.", catalog) == []


def test_match_korean_with_particle(catalog):
    ko = catalog["ryongsong-complex"].aliases["ko"][0]
    assert "ryongsong-complex" in _ids(f"{ko}에서 새 건물이 보였다", catalog)


def test_weak_alias_is_reported_as_possible(catalog):
    ms = match_article("The Dunai river flooded.", catalog)
    assert [m.weak for m in ms if m.aoi_id == "dunay-port"] in ([True], [])


@needs_shared("seeds")
def test_seed_000_names_feb11(capsys):
    assert main(["aoi", "match", str(SHARED / "seeds" / "000_7817096d7709afe3.txt")]) == 0
    out = capsys.readouterr().out
    assert "feb11-plant" in out and "pabrik 11 Februari" in out
    assert "ryongsong-complex" in out and "Kompleks Mesin Ryongsong" in out


@needs_shared("seeds")
def test_seed_004_names_vostochny(capsys):
    assert main(["aoi", "match", "--json", str(SHARED / "seeds" / "004_603977d4a0c07907.txt")]) == 0
    found = {m["aoi_id"]: m for m in json.loads(capsys.readouterr().out)}
    assert not found["vostochny-cosmodrome"]["weak"]


def test_match_errors(tmp_path, capsys):
    assert main(["aoi", "match", str(tmp_path / "missing.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    b = tmp_path / "b.txt"
    b.write_bytes(b"\x00\x01binary")
    assert main(["aoi", "match", str(b)]) == 2
    assert "binary" in capsys.readouterr().err


@given(st.text(max_size=60))
def test_fold_is_idempotent(text):
    assert _fold(_fold(text)) == _fold(text)


@given(
    st.sampled_from(["pabrik 11 Februari", "Vostochny Cosmodrome", "Sohae"]),
    st.text(alphabet=" ,.;:!?()\n", max_size=5),
    st.booleans(),
)
def test_match_survives_case_and_punctuation(alias, pad, upper):
    cat = {"x": AOI(id="x", name="X", geometry=None, aliases={"en": (alias,)})}
    text = f"before{pad or ' '}{alias.upper() if upper else alias}{pad or ' '}after"
    assert [m.aoi_id for m in match_article(text, cat)] == ["x"]
