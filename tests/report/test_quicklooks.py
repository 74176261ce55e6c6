"""Quicklook PNGs and chips from a synthetic run with a planted red roof."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from matplotlib.colors import to_rgb
from matplotlib.image import imread
from pyproj import Transformer

from sitewatch.report.quicklooks import (
    OUTLINE_COLOR,
    render_chips,
    render_quicklooks,
    stretch_rgb,
)
from sitewatch.report.run import RunData

H, W = 120, 150
ROWS, COLS = slice(40, 60), slice(70, 95)  # planted 20 x 25 px roof
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _rgb_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # grey-green fields: a gradient plus noise shared by the bands, so no pixel is red
    yy, xx = np.mgrid[0:H, 0:W]
    grey = 0.05 + 0.05 * (xx / W) + 0.02 * (yy / H) + rng.normal(0, 0.004, size=(H, W))
    before = (grey * np.array([0.9, 1.0, 0.8])[:, None, None]).astype(np.float32)
    after = before + rng.normal(0, 0.001, size=before.shape).astype(np.float32)
    after[0, ROWS, COLS] = 0.40  # bright red roof: red high, green/blue dark
    after[1:, ROWS, COLS] = 0.01
    for im in (before, after):
        im[:, :6, :10] = np.nan  # an unobserved corner
    return before, after


def _score_mask() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    score = rng.gamma(2.0, 0.5, size=(H, W)).astype(np.float32)
    score[ROWS, COLS] = 12.0
    score[:6, :10] = np.nan
    mask = np.zeros((H, W), np.uint8)
    mask[ROWS, COLS] = 1
    mask[:6, :10] = 255
    return score, mask


def _feature(ring: list[list[float]], fid: str = "c001") -> dict:
    return {
        "type": "Feature",
        "id": fid,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"id": fid, "area_m2": 50000.0, "score_mean": 12.0, "centroid": ring[0]},
    }


def _meta() -> dict:
    return {
        "aoi": "test-site",
        "before": "2023-05-01",
        "after": "2024-05-03",
        "method": "irmad",
        "threshold": {"value": 4.0, "rule": "fixed", "why": "test"},
    }


@pytest.fixture(scope="module")
def utm_run(tmp_path_factory) -> RunData:
    transform = Affine(10, 0, 383000, 0, -10, 4422000)
    to_ll = Transformer.from_crs("EPSG:32652", "EPSG:4326", always_xy=True)
    corners = [(COLS.start, ROWS.start), (COLS.stop, ROWS.start), (COLS.stop, ROWS.stop)]
    corners += [(COLS.start, ROWS.stop), (COLS.start, ROWS.start)]
    ring = [list(to_ll.transform(*(transform @ c))) for c in corners]
    before, after = _rgb_pair(np.random.default_rng(0))
    score, mask = _score_mask()
    return RunData(
        path=tmp_path_factory.mktemp("run"),
        score=score,
        mask=mask,
        before_rgb=before,
        after_rgb=after,
        transform=transform,
        crs="EPSG:32652",
        pixel_size_m=10.0,
        features=[_feature(ring)],
        meta=_meta(),
    )


@pytest.fixture(scope="module")
def pixel_run(utm_run) -> RunData:
    ring = [[COLS.start, ROWS.start], [COLS.stop, ROWS.start], [COLS.stop, ROWS.stop]]
    ring += [[COLS.start, ROWS.stop], [COLS.start, ROWS.start]]
    return dataclasses.replace(
        utm_run, transform=Affine.identity(), crs=None, pixel_size_m=0.5, features=[_feature(ring)]
    )


@pytest.fixture(scope="module")
def utm_pngs(utm_run, tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    out = tmp_path_factory.mktemp("quicklooks")
    return out, render_quicklooks(utm_run, out)


def _read_png(path: Path) -> np.ndarray:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_MAGIC
    return imread(path)[..., :3]


def _near(img: np.ndarray, colour: str, tol: float = 0.12) -> np.ndarray:
    return (np.abs(img - np.asarray(to_rgb(colour))) < tol).all(axis=-1)


def test_stretch_is_shared_between_before_and_after():
    rng = np.random.default_rng(3)
    before = rng.uniform(0, 0.3, size=(3, 10, 12))
    after = rng.uniform(0.1, 0.5, size=(3, 10, 12))
    value = np.array([0.2, 0.15, 0.25])
    before[:, 2, 3] = value
    after[:, 7, 9] = value
    before[:, 0, 0] = np.nan
    sb, sa = stretch_rgb(before, after)
    assert sb.shape == sa.shape == (10, 12, 3)
    np.testing.assert_array_equal(sb[2, 3], sa[7, 9])
    np.testing.assert_allclose(sb[0, 0], 0.85)
    finite = np.isfinite(before).all(axis=0)
    assert sb[finite].min() >= 0 and sa.max() <= 1


def test_stretch_handles_none_and_constant_bands():
    const = np.full((3, 4, 5), 7.0)
    sa, sb = stretch_rgb(const, None)
    assert sb is None
    np.testing.assert_allclose(sa, 0.5)
    assert stretch_rgb(None, None) == (None, None)
    with pytest.raises(ValueError, match="percentiles"):
        stretch_rgb(const, const, percentiles=(50, 10))
    with pytest.raises(ValueError, match="shape"):
        stretch_rgb(const, np.zeros((3, 4, 6)))


def test_a_window_stretched_alone_equals_the_window_of_the_whole_stretch():
    # chips and thumbnails stretch only their window, with the whole pair's limits
    from sitewatch.report.quicklooks import _stretched

    before, after = _rgb_pair(np.random.default_rng(5))
    run = RunData(
        path=Path("."),
        score=np.zeros((H, W), np.float32),
        mask=np.zeros((H, W), np.uint8),
        before_rgb=before,
        after_rgb=after,
        transform=Affine.identity(),
        crs=None,
        pixel_size_m=1.0,
    )
    whole = dict(zip(("before", "after"), stretch_rgb(before, after), strict=True))
    lazy = dict(_stretched(run))
    assert set(lazy) == {"before", "after"}
    for name, image in lazy.items():
        assert image.shape == (H, W, 3)
        for rows, cols in ((ROWS, COLS), (slice(0, 9), slice(5, 30)), (slice(None), slice(None))):
            np.testing.assert_array_equal(image[rows, cols], whole[name][rows, cols])
    only_after = dataclasses.replace(run, before_rgb=None)
    assert [n for n, _ in _stretched(only_after)] == ["after"]
    assert _stretched(dataclasses.replace(only_after, after_rgb=None)) == []


def test_quicklooks_written_small_and_valid(utm_pngs):
    out, paths = utm_pngs
    assert set(paths) == {"before", "after", "score", "overlay"}
    for name, path in paths.items():
        assert path == out / f"{name}.png"
        img = _read_png(path)
        assert 300 <= img.shape[1] <= 800 and 200 <= img.shape[0] <= 800
        assert 5_000 < path.stat().st_size < 400_000


def test_overlay_outlines_the_planted_roof(utm_pngs):
    img = _read_png(utm_pngs[1]["overlay"])
    roof = _near(img, "#ff0000", tol=0.25)
    outline = _near(img, OUTLINE_COLOR)
    assert roof.sum() > 500 and outline.sum() > 100
    rr, rc = np.nonzero(roof)
    orow, ocol = np.nonzero(outline)
    # the outline surrounds the roof: its box contains the roof's box, give or take
    # the line width, and most outline pixels lie close to the roof
    assert orow.min() <= rr.min() + 2 and ocol.min() <= rc.min() + 2
    assert orow.max() >= rr.max() - 2 and ocol.max() >= rc.max() - 2
    near = (
        (orow > rr.min() - 6)
        & (orow < rr.max() + 6)
        & (ocol > rc.min() - 6)
        & (ocol < rc.max() + 6)
    )
    assert near.mean() > 0.6
    # before and after share a stretch: the roof is red only after
    assert _near(_read_png(utm_pngs[1]["before"]), "#ff0000", tol=0.25).sum() < 20


def test_chips_cover_the_feature(utm_run, tmp_path):
    chips = render_chips(utm_run, tmp_path)
    assert set(chips) == {"c001"}
    assert set(chips["c001"]) == {"before", "after"}
    for name, path in chips["c001"].items():
        assert path == tmp_path / "chips" / f"c001_{name}.png"
        img = _read_png(path)
        assert min(img.shape[:2]) >= 160
        assert _near(img, OUTLINE_COLOR).sum() > 100
    assert render_chips(utm_run, tmp_path / "none", max_chips=0) == {}


def test_score_colours_are_matplotlibs_magma():
    """The shipped colour table is matplotlib's magma: the same colour for every value,
    below and above the limits too; unobserved pixels grey."""
    from matplotlib import colormaps

    from sitewatch.report.canvas import colormap_rgb

    values = np.concatenate([np.linspace(-0.5, 1.5, 4001), [0.0, 1.0, 255.5 / 256]])
    want = np.round(colormaps["magma"](values)[:, :3] * 255).astype(np.uint8)
    assert np.array_equal(colormap_rgb(values * 10 + 2, 2.0, 12.0), want)
    assert colormap_rgb(np.array([np.nan, np.inf]), 0, 1, bad=0.85).tolist() == [[217] * 3] * 2


def test_score_page_marks_the_threshold_on_its_colour_bar(utm_run, tmp_path):
    from sitewatch.report.quicklooks import _score_limits, _threshold

    img = _read_png(render_quicklooks(utm_run, tmp_path)["score"])
    lo, hi = _score_limits(utm_run.score, _threshold(utm_run))
    mark = _near(img, OUTLINE_COLOR)
    rows, cols = np.nonzero(mark)
    assert rows.size > 5 and cols.min() > 0.75 * img.shape[1]  # on the bar, right of the map
    assert rows.max() - rows.min() <= 4  # one horizontal line
    # the colours just above and below the mark read back (through the colour table) as
    # values on either side of the threshold, close to it
    from sitewatch.report.canvas import colormap_rgb

    table = colormap_rgb(lo + (np.arange(256) + 0.5) / 256 * (hi - lo), lo, hi) / 255.0
    col = int(np.median(cols))

    def value(row: int) -> float:
        i = int(np.argmin(((table - img[row, col]) ** 2).sum(axis=1)))
        return lo + (i + 0.5) / 256 * (hi - lo)

    thr = _threshold(utm_run)
    above, below = value(rows.min() - 2), value(rows.max() + 2)
    assert below < thr < above
    assert above - below < 0.08 * (hi - lo)


def test_pixel_mode_says_image_up(pixel_run, utm_run, tmp_path, monkeypatch):
    from sitewatch.report.canvas import Figure

    arrows: list[bool] = []
    original = Figure.north_arrow

    def spy(self, *, georeferenced):
        arrows.append(georeferenced)
        return original(self, georeferenced=georeferenced)

    monkeypatch.setattr(Figure, "north_arrow", spy)
    paths = render_quicklooks(pixel_run, tmp_path)
    assert arrows == [False] * 4
    chips = render_chips(pixel_run, tmp_path)
    assert min(_read_png(chips["c001"]["after"]).shape[:2]) >= 160
    assert _near(_read_png(paths["overlay"]), OUTLINE_COLOR).sum() > 100
    arrows.clear()
    render_quicklooks(utm_run, tmp_path / "utm")
    assert arrows == [True] * 4


def test_without_rgb_falls_back_to_score(utm_run, tmp_path):
    run = dataclasses.replace(utm_run, before_rgb=None, after_rgb=None)
    paths = render_quicklooks(run, tmp_path)
    assert set(paths) == {"score", "overlay"}
    assert not (tmp_path / "before.png").exists()
    overlay = _read_png(paths["overlay"])
    assert _near(overlay, OUTLINE_COLOR).sum() > 100
    assert _near(overlay, "#ff0000", tol=0.25).sum() < 20  # no true colour roof
    chips = render_chips(run, tmp_path)
    assert set(chips["c001"]) == {"score"}
    assert min(_read_png(chips["c001"]["score"]).shape[:2]) >= 160


def test_all_unobserved_score_renders_without_warnings(utm_run, tmp_path):
    run = dataclasses.replace(
        utm_run, score=np.full((H, W), np.nan, np.float32), features=[], meta={}
    )
    paths = render_quicklooks(run, tmp_path)
    assert _read_png(paths["score"]).shape[1] <= 800


def test_bad_options_raise(utm_run, tmp_path):
    with pytest.raises(ValueError, match="dpi"):
        render_quicklooks(utm_run, tmp_path, dpi=0)
    with pytest.raises(ValueError, match="pad_px"):
        render_chips(utm_run, tmp_path, pad_px=-1)


def test_background_png_writes_the_same_files_and_raises_their_errors(tmp_path):
    """PNGs encoded on the second thread equal those encoded in line; an error is raised
    when the block ends, and every other PNG is on disk by then."""
    from sitewatch.report.canvas import Figure
    from sitewatch.report.quicklooks import _save, background_png

    def figure(seed: int) -> Figure:
        fig = Figure((40, 40), f"figure {seed}", dpi=50)
        fig.show(np.random.default_rng(seed).random((20, 20, 3)), upsampled=True)
        return fig

    for i in range(3):
        _save(figure(i), tmp_path / f"inline{i}.png")
    with background_png():
        for i in range(3):
            _save(figure(i), tmp_path / f"thread{i}.png")
    for i in range(3):
        assert (tmp_path / f"thread{i}.png").read_bytes() == (
            tmp_path / f"inline{i}.png"
        ).read_bytes()
    with pytest.raises(FileNotFoundError), background_png():
        _save(figure(0), tmp_path / "missing" / "x.png")
        _save(figure(1), tmp_path / "after_error.png")
    assert (tmp_path / "after_error.png").exists()


@pytest.mark.parametrize("decimated", [False, True])
def test_one_stretch_per_run_for_pages_chips_and_thumbnails(
    utm_run, tmp_path, monkeypatch, decimated
):
    """The shared stretch is computed once for a run's quicklooks, chips and thumbnails,
    also when the quicklooks draw a strided copy of a large run, and the pages' colours
    are :func:`stretch_rgb`'s."""
    import sitewatch.report.quicklooks as ql

    run = dataclasses.replace(utm_run, path=tmp_path)  # a new run: nothing remembered
    if decimated:
        monkeypatch.setattr(ql, "QUICKLOOK_MAX_PX", max(run.shape) // 2)
    calls = []
    real = ql._stretch_limits
    monkeypatch.setattr(ql, "_stretch_limits", lambda *a: calls.append(1) or real(*a))
    render_quicklooks(run, tmp_path / "q")
    ql.render_chips(run, tmp_path)
    ql.render_thumbs(run, tmp_path, run.features)
    assert len(calls) == 1
    want, _ = stretch_rgb(run.before_rgb, run.after_rgb)
    got = ql._apply_stretch(np.asarray(run.before_rgb, np.float32), ql._run_limits(run))
    assert np.array_equal(got, want)


def test_thumbnails_are_encoded_in_the_background_and_outlined(utm_run, tmp_path):
    """Compact cut-outs go through the report's PNG encoders: on disk when the block
    ends, opaque RGB, the polygon outlined; the same pixels as encoded in line."""
    import sitewatch.report.quicklooks as ql

    run = dataclasses.replace(utm_run, path=tmp_path)
    with ql.background_png():
        written = ql.render_thumbs(run, tmp_path / "bg", run.features)
    inline = ql.render_thumbs(run, tmp_path / "inline", run.features)
    assert written and set(written) == set(inline)
    for fid, paths in written.items():
        assert set(paths) == {"before", "after"}
        for name, path in paths.items():
            img = _read_png(path)
            assert img.ndim == 3 and img.shape[2] == 3 and max(img.shape[:2]) >= 60
            assert _near(img, OUTLINE_COLOR).sum() > 20
            assert np.array_equal(img, _read_png(inline[fid][name]))


@pytest.mark.parametrize("shape", [(1, 40), (40, 1), (2, 2), (3, 500)])
@pytest.mark.parametrize("dpi", [20, 110, 300])
def test_degenerate_grids_draw(utm_run, tmp_path, shape, dpi):
    """Pages and chips of one-pixel-wide, tiny and flat grids: every figure drawn (the
    panel, its scale bar, north arrow and colour bar), no error, no warning."""
    h, w = shape
    rng = np.random.default_rng(h * 1000 + w)
    rgb = rng.random((3, h, w)).astype(np.float32)
    score = rng.gamma(2.0, 1.0, (h, w)).astype(np.float32)
    run = dataclasses.replace(
        utm_run,
        score=score,
        mask=np.zeros((h, w), np.uint8),
        before_rgb=rgb,
        after_rgb=rgb[::-1].copy(),
        features=[],
    )
    paths = render_quicklooks(run, tmp_path, dpi=dpi)
    assert set(paths) == {"before", "after", "score", "overlay"}
    for path in paths.values():
        assert min(_read_png(path).shape[:2]) >= 1
