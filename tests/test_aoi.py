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
    assert rajin.located and rajin.confidence == "low"
    assert "LOW confidence" in rajin.properties["geometry_note"]
    assert len(rajin.properties["candidates"]) >= 2 and rajin.properties["conflicts"]


# Each newly located entry and the sourced point (lat, lon) from FACILITIES.md's update
# section that its polygon must contain.
UPDATE_POINTS = {
    "tikhoretsk-depot": [(45.888417, 40.042361)],
    "feb8-vinalon": [(39.852778, 127.5775)],
    "tumangang-khasan": [
        (42.415167, 130.641056),  # Friendship Bridge
        (42.430056, 130.644917),  # Khasan station, pl Wikipedia
        (42.428056, 130.645278),  # Khasan station, ru Wikipedia
        (42.4214, 130.6081),  # Tumangang station
    ],
    "tumangang-station": [(42.4214, 130.6081)],
    "khasan-station": [(42.430056, 130.644917), (42.428056, 130.645278)],
    "vostochny-port": [(42.7333, 133.0667)],
    "rajin-port": [(42.2450, 130.2700), (42.2550, 130.3300)],  # port limits (low)
    "dunay-port": [(42.880278, 132.3375)],
    "sohae": [(39.660, 124.705), (39.66008, 124.70531)],
    "vostochny-cosmodrome": [(51.884395, 128.333932)],
}


@pytest.mark.parametrize("aoi_id", sorted(UPDATE_POINTS))
def test_newly_located_polygon_contains_its_sourced_point(catalog, aoi_id):
    aoi = catalog[aoi_id]
    assert aoi.located and aoi.geometry_kind == "working_box"
    assert "working box" in aoi.properties["geometry_note"].lower()
    for lat, lon in UPDATE_POINTS[aoi_id]:
        assert aoi.geometry.covers(Point(lon, lat)), (aoi_id, lat, lon)
    stored = [(p["lat"], p["lon"]) for p in aoi.properties["points"]]
    assert set(UPDATE_POINTS[aoi_id]) <= {(round(a, 6), round(b, 6)) for a, b in stored}
    for pt in aoi.properties["points"]:
        assert pt["source"] and pt["confidence"] in ("high", "medium", "low")


def test_boxes_are_sized_to_the_facility_not_a_city(catalog):
    # Tikhoretsk ≈2.6 km² (CSIS), Vinalon ≈0.5 km² (Encykorea): boxes twice that.
    assert catalog["tikhoretsk-depot"].area_m2 / 1e6 == pytest.approx(5.2, rel=0.05)
    assert catalog["feb8-vinalon"].area_m2 / 1e6 == pytest.approx(1.0, rel=0.05)
    for a in catalog.values():
        if a.located:
            assert a.area_m2 < 40e6, a.id


def test_town_points_are_hints_not_locations(catalog):
    for aoi_id in (
        "egorlykskaya-airfield",
        "kanggye-tractor-plant",
        "chemical-material-institute",
        "no17-factory",
    ):
        aoi = catalog[aoi_id]
        assert not aoi.located and aoi.properties["reference_points"], aoi_id
        assert "not" in aoi.properties["reference_points"][0]["note"].lower()
    assert sum(a.located for a in catalog.values()) >= 11
    dunay = catalog["dunay-port"].properties
    assert "nine kilometres south" in dunay["geometry_note"]
    assert dunay["reference_points"][0]["name"].startswith("Fokino")


def test_ryongsong_points_to_feb11_with_the_conflict(catalog):
    ry = catalog["ryongsong-complex"]
    see = ry.properties["see_instead"]
    assert see["id"] == "feb11-plant" and catalog["feb11-plant"].located
    assert "Rakwon" in see["note"] and "part of the Ryongsong" in see["note"]
    conflicts = " ".join(ry.properties["conflicts"])
    assert "Rakwon" in conflicts and "Ryongsong-guyok" in conflicts
    with pytest.raises(AOIError, match="run this on feb11-plant") as info:
        ry.require_located()
    assert "\n" not in str(info.value)
    assert catalog["feb11-plant"].require_located() is catalog["feb11-plant"]


def test_cli_show_ryongsong_names_feb11(capsys):
    assert main(["aoi", "show", "ryongsong-complex"]) == 0
    out = capsys.readouterr().out
    assert "watch instead: February 11 Plant (feb11-plant)" in out
    assert "the one part of the complex with sourced coordinates" in out
    assert "39.920212, 127.657091" in out  # Building B, CNS
    assert "Rakwon" in out and "part of the Ryongsong Machine Complex" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["detect", "ryongsong-complex", "--before", "2020-06", "--after", "2024-10"],
        ["search", "ryongsong-complex", "--from", "2020-06-01", "--to", "2020-07-01"],
        ["timeline", "ryongsong-complex", "--from", "2020-06-01", "--to", "2020-09-01"],
        ["wayback", "ryongsong-complex"],
        ["detect", "Kompleks Mesin Ryongsong", "--before", "2020-06", "--after", "2024-10"],
    ],
    ids=["detect", "search", "timeline", "wayback", "detect-by-alias"],
)
def test_ryongsong_commands_hint_feb11(argv, tmp_path, capsys):
    if argv[0] in ("detect", "timeline"):
        argv = [*argv, "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert "feb11-plant" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_other_unlocated_gives_its_hint_point(tmp_path, capsys):
    argv = ["detect", "kanggye-tractor-plant", "--before", "2020-06", "--after", "2024-10"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "40.967, 126.6" in err and "not the facility" in err and "aoi new" in err


def test_cli_list_counts_located(capsys):
    assert main(["aoi", "list"]) == 0
    out = capsys.readouterr().out
    assert "(11 located, 6 unlocated)" in out
    assert "ryongsong-complex" in out and "→ use feb11-plant" in out


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


# A short news text per language that names catalog facilities, and what it must find
# (strong matches only: a "possible" match does not count).
NEWS = {
    "ru": (
        "Удар по складу боеприпасов в Тихорецке уничтожил десятки хранилищ. Контейнеры "
        "пришли через порт Восточный и бухту у посёлка Шкотово-22, а северокорейские "
        "военные находятся в Курской области.",
        {"tikhoretsk-depot", "vostochny-port", "dunay-port", "kursk-oblast"},
    ),
    "ko": (
        "북한은 룡성기계련합기업소에서 미사일을 생산하고, 나진항에서 컨테이너를 실었다. "
        "김정은은 보스토치니 우주기지에서 푸틴을 만났고, 서해위성발사장의 공사도 계속됐다. "
        "2·8비날론련합기업소에서도 새 건물이 보였다.",
        {"ryongsong-complex", "rajin-port", "vostochny-cosmodrome", "sohae", "feb8-vinalon"},
    ),
    "id": (
        "Dalam laporan Reuters, fasilitas tersebut berada di Kompleks Mesin Ryongsong di "
        "Hamhung. Pabrik itu dikenal sebagai pabrik 11 Februari. Banyak tentara ditempatkan "
        "di Oblast Kursk. Kim bertemu Putin di Vostochny Cosmodrome, dan kontainer dimuat di "
        "Pelabuhan Rajin.",
        {"ryongsong-complex", "feb11-plant", "kursk-oblast", "vostochny-cosmodrome", "rajin-port"},
    ),
    "en": (
        "Railcars crowded the Tumangang rail yard near the Korea-Russia Friendship Bridge, "
        "while ships unloaded at Vostochny Port and the Tikhoretsk ammunition depot expanded.",
        {"tumangang-khasan", "tumangang-station", "vostochny-port", "tikhoretsk-depot"},
    ),
}
UNRELATED = {
    "ru": "Центральный банк сохранил ключевую ставку, а курс рубля почти не изменился за неделю.",
    "ko": "한국은행은 기준금리를 동결했고, 서울의 아파트 가격은 지난달보다 조금 올랐다.",
    "id": "Bank Indonesia mempertahankan suku bunga acuan, sementara harga beras di Jakarta naik.",
    "en": "The European Central Bank left interest rates unchanged on Thursday, citing inflation.",
}


@pytest.mark.parametrize("lang", sorted(NEWS))
def test_news_text_in_each_language_finds_its_facilities(catalog, lang):
    text, expected = NEWS[lang]
    assert expected <= set(_ids(text, catalog)), match_article(text, catalog)


@pytest.mark.parametrize("lang", sorted(UNRELATED))
def test_unrelated_text_finds_nothing(catalog, lang):
    assert match_article(UNRELATED[lang], catalog) == []


@pytest.mark.parametrize(
    ("text", "aoi_id"),
    [
        ("взрывы под Тихорецком: горел Тихорецкий арсенал", "tikhoretsk-depot"),
        ("суда разгружались в порту Восточный", "vostochny-port"),
        ("в порту «Восточный» (Находка)", "vostochny-port"),
        ("военная база Шкотово-22", "dunay-port"),
        ("бои в Курской области", "kursk-oblast"),
        ("Тихорецк", "tikhoretsk-depot"),
    ],
)
def test_russian_case_forms_match(catalog, text, aoi_id):
    assert aoi_id in _ids(text, catalog, weak=True)


def test_cosmodrome_and_port_stay_apart(catalog):
    assert "vostochny-port" not in _ids("на космодроме Восточный", catalog)
    assert "vostochny-cosmodrome" not in _ids("в порту Восточный", catalog)
    assert "vostochny-port" not in _ids("Kosmodrom Vostochny", catalog)


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
