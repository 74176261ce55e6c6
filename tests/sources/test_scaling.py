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
