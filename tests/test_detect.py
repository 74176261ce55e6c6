"""Detection on synthetic rasters with planted answers, and the pure numeric core."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import rasterio.features
import shapely
from pyproj import Transformer
from shapely.geometry import shape

from conftest import lonlat_box, write_geojson
from sitewatch import detect_change, load_aoi_file
from sitewatch.detect import remove_small_regions, score_cva, threshold_otsu
from sitewatch.detect.run import DetectOptions
from sitewatch.errors import BandsNotIdentifiedWarning, SameImageWarning
from sitewatch.grid import Grid


def unnamed() -> pytest.WarningsRecorder:
    """planted_pair's bands are unnamed (b1, b2 ...): 4 or more cannot be shown in true
    colour, which the run says with a warning."""
    return pytest.warns(BandsNotIdentifiedWarning, match="cannot be identified")


PLANTED_AREA_M2 = 40 * 30 * 100.0


def _iou_with_truth(feature: dict, grid: Grid, truth: np.ndarray) -> float:
    to_grid = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
    geom = shapely.transform(shape(feature["geometry"]), to_grid.transform, interleaved=False)
    # Rasterize onto the truth's grid (the image grid: origin of the synthetic image).
    img = rasterio.features.rasterize(
        [(geom, 1)], out_shape=truth.shape, transform=grid.transform, dtype="uint8"
    ).astype(bool)
    return float((img & truth).sum() / (img | truth).sum())


@pytest.mark.parametrize("bands,dtype", [(4, "uint16"), (13, "uint16"), (3, "uint8")])
def test_planted_building_is_one_polygon(planted_pair, bands, dtype):
    before, after, truth = planted_pair(bands=bands, dtype=dtype)
    with pytest.warns(BandsNotIdentifiedWarning) if bands > 3 else nullcontext() as caught:
        result = detect_change(before, after)
    assert bands == 3 or len(caught) == 1
    assert (result.before_rgb is None) == (bands > 3)
    assert len(result.features) == 1
    feat = result.features[0]
    assert _iou_with_truth(feat, result.grid, truth) >= 0.8
    area = feat["properties"]["area_m2"]
    assert abs(area - PLANTED_AREA_M2) / PLANTED_AREA_M2 <= 0.10
    assert feat["properties"]["score_max"] >= feat["properties"]["score_mean"] > 0
    # Unnamed bands, 10 m, no SWIR: the default chain is IR-MAD with the Kittler rule.
    chain = result.diagnostics["chain"]
    assert (chain["method"], chain["threshold_rule"]) == ("irmad", "kittler")
    assert result.diagnostics["threshold"]["rule"] == chain["threshold_rule"]
    assert DetectOptions().threshold_rule == "auto"


def test_planted_building_band_folder(planted_pair):
    before, after, truth = planted_pair(folder=True)
    result = detect_change(before, after)
    assert result.diagnostics["bands"] == ["B02", "B03", "B04", "B05"]
    assert result.provenance["before"]["acquired"] == "2024-06-01"
    assert len(result.features) == 1
    assert _iou_with_truth(result.features[0], result.grid, truth) >= 0.8


def test_planted_building_inside_aoi_grid(planted_pair, tmp_path):
    before, after, _truth = planted_pair()
    # AOI covering most of the image: detection runs on the AOI's own UTM grid.
    with rasterio.open(before) as ds:
        west, south, east, north = rasterio.warp.transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    dx, dy = (east - west) * 0.05, (north - south) * 0.05
    aoi = load_aoi_file(
        write_geojson(
            tmp_path / "aoi.geojson", lonlat_box(west + dx, south + dy, east - dx, north - dy)
        )
    )
    with unnamed():
        result = detect_change(before, after, aoi=aoi)
    assert result.grid.crs == "EPSG:32652"
    assert len(result.features) == 1
    area = result.features[0]["properties"]["area_m2"]
    assert abs(area - PLANTED_AREA_M2) / PLANTED_AREA_M2 <= 0.10
    assert 0.7 < result.diagnostics["valid_fraction"] <= 1.0


def test_no_change_gives_few_polygons(planted_pair):
    before, _, _ = planted_pair()
    with unnamed(), pytest.warns(SameImageWarning, match="same image"):
        result = detect_change(before, before)
    # Identical images: every score is 0, nothing may be flagged.
    assert result.features == []
    assert result.diagnostics["changed_pixels"] == 0


def test_min_area_drops_small_regions(planted_pair):
    before, after, _ = planted_pair()
    with unnamed():
        result = detect_change(before, after, min_area_m2=PLANTED_AREA_M2 * 2)
    assert result.features == []
    assert result.diagnostics["regions_removed_below_mmu"] >= 1


def test_pixel_mode_for_images_without_crs(planted_pair):
    before, after, truth = planted_pair(crs=None, dtype="uint8", bands=3)
    result = detect_change(before, after, pixel_size=1.5)
    assert result.grid.crs is None
    assert len(result.features) == 1
    p = result.features[0]["properties"]
    assert p["area_px"] == pytest.approx(truth.sum(), rel=0.1)
    assert p["area_m2"] == pytest.approx(truth.sum() * 2.25, rel=0.1)


def test_cva_scores_change_higher_than_background():
    rng = np.random.default_rng(0)
    before = rng.normal(0, 1, size=(3, 50, 50))
    after = before + rng.normal(0, 0.05, size=before.shape)
    after[:, 10:20, 10:20] += 3
    valid = np.ones((50, 50), bool)
    s = score_cva(before, after, valid)
    assert s[10:20, 10:20].min() > np.percentile(s, 90)
    t = threshold_otsu(s[valid])
    assert ((s > t.value)[10:20, 10:20]).all()


def test_cva_ignores_global_gain_and_offset():
    rng = np.random.default_rng(1)
    before = rng.normal(0.2, 0.05, size=(4, 40, 40))
    after = before * 1.3 + 0.05  # sensor/season gain+offset only, no real change
    s = score_cva(before, after, np.ones((40, 40), bool))
    assert float(s.max()) < 1e-4


def test_invalid_pixels_score_zero_and_are_excluded():
    before = np.ones((2, 10, 10))
    after = before.copy()
    after[:, :5] = 5
    valid = np.ones((10, 10), bool)
    valid[:, :3] = False
    s = score_cva(before, after, valid)
    assert (s[:, :3] == 0).all()


def test_remove_small_regions_uses_8_connectivity():
    m = np.zeros((6, 6), bool)
    m[0, 0] = m[1, 1] = m[2, 2] = True  # diagonal: one 8-connected region of 3
    out, removed = remove_small_regions(m, 3)
    assert out.sum() == 3 and removed == 0
