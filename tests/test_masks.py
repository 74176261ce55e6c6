"""Cloud, shadow and saturation masks, end to end through detect_change."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import box, shape

from conftest import ORIGIN, write_raster
from sitewatch import detect_change
from sitewatch.prepare.masks import clear_from_qa_pixel, clear_from_scl, not_saturated
from sitewatch.sources.local import CLOUD_BUFFER_M, open_local

BANDS = ("B02", "B03", "B04", "B08")


def s2_folder(root, name, data, *, scl=None):
    d = root / name
    d.mkdir()
    for i, b in enumerate(BANDS):
        write_raster(d / f"T52SCK_20240601T020000_{b}.tif", data[i : i + 1])
    if scl is not None:  # 20 m grid, as in Sentinel-2 L2A
        t = Affine(20, 0, ORIGIN[0], 0, -20, ORIGIN[1])
        write_raster(d / "T52SCK_20240601T020000_SCL.tif", scl[None], transform=t)
    return d


@pytest.fixture
def cloudy_pair(tmp_path):
    rng = np.random.default_rng(11)
    before = rng.normal(1200, 150, (4, 200, 200))
    after = before + rng.normal(0, 30, before.shape)
    after[:, 40:70, 120:160] += 1800  # a new roof (30 x 40 px)
    cloud = (slice(120, 180), slice(20, 100))  # 60 x 80 px at 10 m
    after[:, cloud[0], cloud[1]] = 7000  # bright cloud
    scl = np.full((100, 100), 5, np.uint8)  # "not vegetated"
    scl[60:90, 10:50] = 9  # cloud, high probability, on the 20 m grid
    b = s2_folder(tmp_path, "before", before.clip(1, None).astype(np.uint16))
    a_masked = s2_folder(tmp_path, "after", after.clip(1, None).astype(np.uint16), scl=scl)
    a_plain = s2_folder(tmp_path, "after_noscl", after.clip(1, None).astype(np.uint16))
    return b, a_masked, a_plain


def _cloud_box():
    return box(ORIGIN[0] + 200, ORIGIN[1] - 1800, ORIGIN[0] + 1000, ORIGIN[1] - 1200)


def _polys_lonlat_to_utm(features):
    import shapely
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:4326", "EPSG:32652", always_xy=True)
    return [
        shapely.transform(shape(f["geometry"]), t.transform, interleaved=False) for f in features
    ]


def test_scl_band_is_found_and_not_treated_as_spectral(cloudy_pair):
    _, after, _ = cloudy_pair
    src = open_local(after)
    assert src.band_names == BANDS and src.mask_band.name == "SCL"


@pytest.mark.parametrize("method", ["construction", "cva"])
def test_no_change_polygon_under_a_masked_cloud(cloudy_pair, method):
    before, after, _ = cloudy_pair
    result = detect_change(before, after, method=method)
    polys = _polys_lonlat_to_utm(result.features)
    cloud = _cloud_box()
    assert all(p.intersection(cloud).area < 1.0 for p in polys)
    assert any(p.area > 100_000 for p in polys)  # the roof is still found
    d = result.diagnostics
    # The cloud and the CLOUD_BUFFER_M (20 m) ring the reader masks around it.
    expected = cloud.buffer(CLOUD_BUFFER_M).area
    assert d["cloud_masked_m2"]["after"] == pytest.approx(expected, rel=0.02)
    assert d["unobserved_m2"] >= d["cloud_masked_m2"]["after"]


def test_without_the_mask_the_cloud_is_flagged(cloudy_pair):
    # Control: plain CVA flags the unmasked cloud, so the test above is not vacuous.
    before, _, plain = cloudy_pair
    result = detect_change(before, plain, method="cva")
    polys = _polys_lonlat_to_utm(result.features)
    assert any(p.intersection(_cloud_box()).area > 0.5 * _cloud_box().area for p in polys)


def test_clear_from_scl_default_classes():
    scl = np.arange(12).reshape(3, 4)
    clear = clear_from_scl(scl)
    assert clear.ravel().tolist() == [
        False,
        False,
        True,
        False,
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]


def test_clear_from_qa_pixel_bits():
    qa = np.array([1 << 6, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 7])
    assert clear_from_qa_pixel(qa).tolist() == [True, False, False, False, False, False, True]
    assert clear_from_qa_pixel(qa, snow=False).tolist()[5]


def test_saturation():
    dn = np.ones((3, 2, 2), np.uint16)
    dn[1, 0, 0] = 65535
    assert not_saturated(dn, limit=65535).tolist() == [[False, True], [True, True]]
