"""DN → reflectance rules, including the Sentinel-2 processing-baseline offset pitfall."""

from __future__ import annotations

import datetime as dt

import pystac
import pytest

from sitewatch.sources.stac import reflectance_rule


def item(collection: str, props: dict, raster_bands: list | None = None) -> pystac.Item:
    it = pystac.Item("x", None, None, dt.datetime(2023, 1, 1), props, collection=collection)
    extra = {} if raster_bands is None else {"raster:bands": raster_bands}
    it.add_asset("red", pystac.Asset("red.tif", extra_fields=extra))
    return it


DECLARED = [{"scale": 0.0001, "offset": -0.1}]


@pytest.mark.parametrize(
    ("collection", "props", "bands", "expected"),
    [
        # C1: data as ESA delivered it, raster:bands is right
        ("sentinel-2-c1-l2a", {"s2:processing_baseline": "05.10"}, DECLARED, (0.0001, -0.1)),
        # legacy, offset already removed from the COG: the declared -0.1 is wrong
        (
            "sentinel-2-l2a",
            {"s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": True},
            DECLARED,
            (0.0001, 0.0),
        ),
        # legacy, baseline >= 04.00 and not applied
        (
            "sentinel-2-l2a",
            {"s2:processing_baseline": "04.00", "earthsearch:boa_offset_applied": False},
            DECLARED,
            (0.0001, -0.1),
        ),
        # legacy, baseline before 04.00: there was no offset to remove
        ("sentinel-2-l2a", {"s2:processing_baseline": "02.14"}, DECLARED, (0.0001, 0.0)),
        # another API without raster:bands: the documented rule, keyed on the baseline
        ("s2-elsewhere", {"s2:processing_baseline": "05.00"}, None, (0.0001, -0.1)),
        ("s2-elsewhere", {"s2:processing_baseline": "03.01"}, None, (0.0001, 0.0)),
        ("landsat-c2-l2", {"platform": "landsat-8"}, None, (2.75e-05, -0.2)),
        ("landsat-c2-l2", {}, [{"scale": 2.75e-05, "offset": -0.2}], (2.75e-05, -0.2)),
        ("unknown", {}, None, (1.0, 0.0)),
    ],
)
def test_reflectance_rule(collection, props, bands, expected):
    scale, offset, why = reflectance_rule(item(collection, props, bands), "red")
    assert (scale, offset) == expected and why


LEGACY_04 = {"s2:processing_baseline": "04.00", "earthsearch:boa_offset_applied": False}


@pytest.mark.parametrize(
    ("props", "low", "offset", "evidence"),
    [
        # earth-search #66/#71: flag false, but the DN show the offset already removed
        (LEGACY_04, 0.3, 0.0, "DN below 1000"),
        # flag false and the DN carry the +1000: the declared -0.1 is right
        (LEGACY_04, 0.0, -0.1, "all valid DN ≥ 1000"),
        (LEGACY_04, None, -0.1, "not checked"),
        # a true flag is trusted whatever the DN
        ({**LEGACY_04, "earthsearch:boa_offset_applied": True}, 0.0, 0.0, "applied true"),
        ({"s2:processing_baseline": "03.01"}, 0.0, 0.0, "< 04.00"),
        # the item's own raster:bands: an explicit 0, or nothing (ESA's offset then)
        (LEGACY_04, 0.0, 0.0, "declares offset 0"),
        (LEGACY_04, 0.0, -0.1, "offset -0.1"),
    ],
)
def test_legacy_offset_is_decided_by_baseline_and_dn_not_the_flag(props, low, offset, evidence):
    bands = {"declares offset 0": [{"scale": 0.0001, "offset": 0}], "offset -0.1": None}
    raster_bands = bands.get(evidence, DECLARED)
    scale, got, why = reflectance_rule(
        item("sentinel-2-l2a", props, raster_bands), "red", low_dn_share=low
    )
    assert (scale, got) == (0.0001, offset)
    assert evidence in why


def test_legacy_item_with_a_wrong_flag_is_not_offset_twice(tmp_path):
    """A real legacy Earth Search item (tests/data/stac), flag false, offset already removed."""
    import json
    from pathlib import Path

    import numpy as np
    import rasterio
    from affine import Affine

    from sitewatch.grid import Grid
    from sitewatch.sources.stac import StacSource, items_from_dicts

    doc = json.loads(
        (
            Path(__file__).parent.parent / "data/stac/S2A_13TDE_20231008_0_L2A.trimmed.json"
        ).read_text()
    )
    doc["properties"].update(LEGACY_04)
    transform = Affine(10, 0, 500000, 0, -10, 4450000)
    rng = np.random.default_rng(4)
    refl = rng.uniform(0.02, 0.3, size=(30, 30))  # dark to bright land
    dn = np.round(refl * 10000).astype("uint16")  # +1000 already removed by Earth Search
    for key in ("blue", "green", "red", "nir", "swir16", "swir22"):
        path = tmp_path / f"{key}.tif"
        profile = {"driver": "GTiff", "width": 30, "height": 30, "count": 1, "dtype": "uint16"}
        with rasterio.open(
            path, "w", crs="EPSG:32613", transform=transform, nodata=0, **profile
        ) as d:
            d.write(dn, 1)
        asset = doc["assets"][key]
        asset.update(
            href=str(path), **{"proj:shape": [30, 30], "proj:transform": list(transform)[:6]}
        )
    del doc["assets"]["scl"]
    source = StacSource(items_from_dicts([doc])[0], mask_key="scl")
    grid = Grid("EPSG:32613", transform, 30, 30)
    out, observed, _ = source.read_raw(grid, ["B04"])
    assert observed.all()
    np.testing.assert_allclose(out[0], refl, atol=1e-4)
    rule = source.describe()["assets"]["B04"]["scale_rule"]
    assert "DN below 1000" in rule and "#66" in rule
