"""detect_change: two images (+ optional AOI) → scored, thresholded, vectorised change."""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio.features

from sitewatch._lazy import preload_module
from sitewatch.aoi import AOI, _swapped, load_aoi
from sitewatch.detect.chain import method_run
from sitewatch.detect.options import DEFAULT_MIN_AREA_M2, DetectOptions
from sitewatch.errors import (
    AOIError,
    BandsNotIdentifiedWarning,
    DataError,
    DateOrderWarning,
    InputError,
    PartialCoverageWarning,
    SameImageWarning,
    arg,
)
from sitewatch.grid import Grid, from_lonlat
from sitewatch.sources.local import ROLE_BANDS, S2_BANDS, LocalSource, open_local
from sitewatch.sources.products import check_products

if TYPE_CHECKING:
    from sitewatch.detect.threshold import Threshold

__all__ = ["DEFAULT_MIN_AREA_M2", "ChangeResult", "detect_change", "plan_detection"]

MIN_VALID_PIXELS = 64


@dataclass(frozen=True, eq=False)
class ChangeResult:
    """Everything a detection produced and everything needed to re-run it.

    Attributes
    ----------
    score : (H, W) float32 ndarray
    mask : (H, W) bool ndarray
        Change after threshold and clean-up.
    valid : (H, W) bool ndarray
        Pixels observed in both images (and inside the AOI).
    grid : Grid
    features : list of dict
        GeoJSON Features of the change polygons (EPSG:4326, or pixels if no CRS).
    threshold : Threshold
    diagnostics : dict
        Valid fraction, AOI coverage, pixel counts, regions removed, bands used.
    provenance : dict
        Inputs (paths, hashes, bands, dates), AOI, parameters.
    timings : dict
        Seconds per stage.
    before_rgb, after_rgb : (3, H, W) float32 ndarray or None
        Red, green, blue as analysed (after co-registration; NaN where unobserved),
        for quicklooks and chips; None without recognisable RGB bands.
    p_no_change : (H, W) float32 ndarray or None
        IR-MAD probability of no change on the change mask (NaN elsewhere: the
        polygons' ``p_no_change`` is its mean over each).
    """

    score: np.ndarray
    mask: np.ndarray
    valid: np.ndarray
    grid: Grid
    features: list[dict[str, Any]]
    threshold: Threshold
    diagnostics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    before_rgb: np.ndarray | None = None
    after_rgb: np.ndarray | None = None
    p_no_change: np.ndarray | None = None

    @property
    def total_area_m2(self) -> float:
        """Summed area of the change polygons."""
        return float(sum(f["properties"]["area_m2"] for f in self.features))

    def to_geodataframe(self) -> Any:
        """The change polygons as a ``geopandas.GeoDataFrame`` (the ``geo`` extra).

        One row per polygon (index ``c001`` …), its attributes as columns; EPSG:4326,
        or no CRS for images without one (pixel coordinates).

        Raises
        ------
        InputError
            If geopandas is not installed.
        """
        from sitewatch._geo import features_to_geodataframe

        return features_to_geodataframe(self.features, lonlat=self.grid.crs is not None)


def _common_bands(b: LocalSource, a: LocalSource) -> tuple[list[str], list[str]]:
    nb, na = list(b.band_names), list(a.band_names)
    if nb == na:
        return nb, na
    shared = [n for n in nb if n in na]
    known = all(n in S2_BANDS or n in ROLE_BANDS for n in nb + na)
    if shared and (known or len(shared) == len(nb) == len(na)):
        return shared, shared
    if not shared and any(n in ROLE_BANDS for n in nb + na):
        # e.g. B02 ... from a .SAFE folder and blue ... from another download: by role
        from sitewatch.detect.methods import band_roles

        rb, ra = band_roles(nb, 0), band_roles(na, 0)
        roles = [r for r in rb if r in ra]
        if len(roles) >= 2:
            return [nb[rb[r]] for r in roles], [na[ra[r]] for r in roles]
    if len(nb) == len(na):  # same count, different names: pair them by position
        return nb, na
    raise DataError(
        f"before has {len(nb)} bands {nb[:6]} and after has {len(na)} {na[:6]}; "
        "give two images with the same bands"
    )


def _native_resolution_m(src: LocalSource) -> float:
    return round(math.sqrt(src.grid.pixel_area_m2), 1)


def _overlap_grid(b: LocalSource, a: LocalSource, resolution: float | None = None) -> Grid:
    """The before grid cropped to the part the after image also covers.

    When the before grid is projected but its pixels are not metres on the ground (a
    projection such as Web Mercator that enlarges areas here), the overlap is resampled
    onto a north-up grid in its UTM zone instead, at the true ground size of a before
    pixel, so areas, the minimum mapping unit and smoothing mean what they say.
    Geographic grids (degrees) are kept: their pixel area is geodesic already.
    """
    g = b.grid
    if _distorted(g):
        overlap = g.footprint_lonlat.intersection(a.grid.footprint_lonlat)
        if overlap.is_empty or overlap.area == 0:
            raise DataError(
                f"the two rasters do not overlap: {b.path} covers lon/lat "
                f"{_fmt(g.footprint_lonlat.bounds)} and {a.path} covers "
                f"{_fmt(a.grid.footprint_lonlat.bounds)}; pick images of one place"
            )
        return Grid.for_aoi(overlap, resolution=resolution or _native_resolution_m(b))
    al, ab, ar, at = a.bounds_in(g.crs)  # type: ignore[arg-type]
    bl, bb, br, bt = g.bounds
    left, bottom, right, top = max(al, bl), max(ab, bb), min(ar, br), min(at, bt)
    if left >= right or bottom >= top:
        raise DataError(
            f"the two rasters do not overlap: {b.path} covers {_fmt(g.bounds)} and "
            f"{a.path} covers {_fmt(a.bounds_in(g.crs))} in {g.crs}; pick images of one place"
        )
    inv = ~g.transform
    c0, r0 = inv @ (left, top)
    c1, r1 = inv @ (right, bottom)
    c0, r0 = max(0, math.floor(c0 + 1e-6)), max(0, math.floor(r0 + 1e-6))
    c1, r1 = min(g.width, math.ceil(c1 - 1e-6)), min(g.height, math.ceil(r1 - 1e-6))
    if c1 - c0 < 2 or r1 - r0 < 2:
        raise DataError(f"the overlap of {b.path} and {a.path} is under 2 pixels wide")
    t = g.transform @ rasterio.Affine.translation(c0, r0)
    return Grid(g.crs, t, c1 - c0, r1 - r0)


def _distorted(g: Grid) -> bool:
    """A projected grid whose pixels are not true metres here (Web Mercator)."""
    return g.crs is not None and not g.is_geographic and not g.is_metric


def _fmt(bounds: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.5g}" for v in bounds) + ")"


def _aoi_grid(
    aoi: AOI, b: LocalSource, a: LocalSource, resolution: float | None
) -> tuple[Grid, np.ndarray, float]:
    aoi.require_located()  # unlocated: one line naming where to go instead
    fb, fa = b.grid.footprint_lonlat, a.grid.footprint_lonlat
    overlap = fb.intersection(fa)
    if overlap.is_empty:
        raise DataError(
            f"the two rasters do not overlap: {b.path} covers lon/lat {_fmt(fb.bounds)} and "
            f"{a.path} covers {_fmt(fa.bounds)}; pick images of one place"
        )
    inside = aoi.geometry.intersection(overlap)
    if inside.is_empty:
        if not _swapped(aoi.geometry).intersection(overlap).is_empty:
            raise AOIError(
                f"AOI {aoi.id!r} does not overlap the imagery but would with lat/lon swapped; "
                "GeoJSON order is [longitude, latitude]"
            )
        raise AOIError(
            f"AOI {aoi.id!r} {_fmt(aoi.geometry.bounds)} does not overlap the imagery "
            f"{_fmt(overlap.bounds)} (lon/lat); check the AOI or pick images that cover it"
        )
    coverage = float(inside.area / aoi.geometry.area)
    if coverage < 0.99:
        warnings.warn(
            f"imagery covers {coverage:.0%} of AOI {aoi.id!r}; the rest is reported unobserved",
            PartialCoverageWarning,
            stacklevel=3,
        )
    res = resolution or _native_resolution_m(b)
    grid = Grid.for_aoi(aoi.geometry, resolution=res)
    shape = from_lonlat(aoi.geometry, grid.crs)  # type: ignore[arg-type]
    inside_mask = rasterio.features.rasterize(
        [(shape, 1)], out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8"
    ).astype(bool)
    return grid, inside_mask, coverage


re_day = re.compile(r"\d{4}-\d{2}-\d{2}")


def _dated(src: Any, date: str | None, which: str) -> Any:
    """``src`` with the acquisition date the caller gave (a local image only)."""
    import datetime as dt

    if date is None:
        return src
    name = arg(f"{which}_date")
    if not isinstance(src, LocalSource):
        raise InputError(
            f"{name} dates a local image; the {which} image is a "
            f"{getattr(src, 'kind', 'scene')} dated {src.acquired} by its catalog"
        )
    if not re_day.fullmatch(date):
        raise InputError(f"{name} {date!r} is not a day (YYYY-MM-DD, e.g. 2024-10-05)")
    try:
        day = dt.date.fromisoformat(date).isoformat()
    except ValueError as err:
        raise InputError(f"{name} {date!r} is not a date ({err})") from None
    return replace(src, acquired=day, acquired_from=f"given ({name})")


def check_pair(bsrc: Any, asrc: Any) -> None:
    """Warn when before and after are the same image, or come in the wrong order.

    Warns
    -----
    SameImageWarning
        Both name the same file or folder (or the same catalog item).
    DateOrderWarning
        The before image is dated later than the after image.
    """
    same = False
    if isinstance(bsrc, LocalSource) and isinstance(asrc, LocalSource):
        same = bsrc.path.resolve() == asrc.path.resolve()
    elif getattr(bsrc, "path", None) is not None:
        same = getattr(bsrc, "path", None) == getattr(asrc, "path", None)
    if same:
        warnings.warn(
            f"before and after are the same image ({Path(str(bsrc.path)).name}): every "
            "difference found is noise; give two images of different dates",
            SameImageWarning,
            stacklevel=3,
        )
        return
    b_last = str(bsrc.acquired or "").split("/")[-1][:10]
    a_first = str(asrc.acquired or "").split("/")[0][:10]
    if b_last and a_first and b_last > a_first:
        warnings.warn(
            f"the before image ({bsrc.acquired}) is dated later than the after image "
            f"({asrc.acquired}); change is reported from before to after as given: swap "
            f"{arg('before')} and {arg('after')} if that is not what you meant",
            DateOrderWarning,
            stacklevel=3,
        )


def plan_detection(
    before: Any,
    after: Any,
    *,
    aoi: AOI | None = None,
    resolution: float | None = None,
    pixel_size: float | None = None,
    bands: str | Sequence[str] | None = None,
    before_date: str | None = None,
    after_date: str | None = None,
    method: str | None = None,
) -> tuple[Any, Any, list[str], list[str], Grid, np.ndarray | None, float]:
    """Open both images and choose the analysis grid, reading no pixels.

    ``bands`` names the bands of both local images (see
    :func:`~sitewatch.sources.local.open_local`); ``before_date`` and ``after_date``
    (``YYYY-MM-DD``) date local images whose files do not say, or correct them.
    Downloaded products are checked against each other and against the bands
    ``method`` needs (:func:`~sitewatch.sources.products.check_products`).

    Returns
    -------
    (before source, after source, before bands, after bands, grid, inside, coverage)
        ``inside`` is the AOI mask on the grid (None without an AOI).

    Raises
    ------
    InputError
        If ``bands`` is given for an image that is not a local path (a STAC scene
        names its own bands), or does not give one name per band.
    """
    if resolution is not None and resolution <= 0:
        raise DataError(f"--resolution {resolution} must be a positive number of metres")
    if bands is not None:
        for which, img in (("before", before), ("after", after)):
            if hasattr(img, "read"):
                raise InputError(
                    f"{arg('bands')} names the bands of local image files; the {which} "
                    f"image is a {getattr(img, 'kind', 'source object')} whose bands are named"
                )
    bsrc, asrc = (
        img if hasattr(img, "read") else open_local(img, pixel_size=pixel_size, bands=bands)
        for img in (before, after)
    )
    bsrc = _dated(bsrc, before_date, "before")
    asrc = _dated(asrc, after_date, "after")
    check_products([bsrc, asrc], method=method)
    if bsrc.georeferenced != asrc.georeferenced:
        which = bsrc if not bsrc.georeferenced else asrc
        raise DataError(f"{which.path} has no CRS but the other image has one; georeference it")
    bands_b, bands_a = _common_bands(bsrc, asrc)
    coverage = 1.0
    inside = None
    if not bsrc.georeferenced:
        if aoi is not None:
            raise AOIError("an AOI needs georeferenced images; these have no CRS")
        grid = bsrc.grid
        _same_size(bsrc, [asrc])
    elif aoi is not None:
        grid, inside, coverage = _aoi_grid(aoi, bsrc, asrc, resolution)
    else:
        grid = _overlap_grid(bsrc, asrc, resolution)
    return bsrc, asrc, bands_b, bands_a, grid, inside, coverage


def _same_size(first: Any, others: Sequence[Any]) -> None:
    """Images without a CRS are analysed on the first one's pixels: all the same size."""
    for src in others:
        if src.grid.shape != first.grid.shape:
            raise DataError(
                f"{src.path} is {src.grid.width}x{src.grid.height} px but {first.path} is "
                f"{first.grid.width}x{first.grid.height}; images without CRS must be the "
                "same size"
            )


def detect_change(
    before: str | Path,
    after: str | Path,
    *,
    aoi: AOI | str | None = None,
    options: DetectOptions | None = None,
    method: str | None = None,
    threshold: float | None = None,
    min_area_m2: float | None = None,
    resolution: float | None = None,
    pixel_size: float | None = None,
    bands: str | Sequence[str] | None = None,
    before_date: str | None = None,
    after_date: str | None = None,
    threads: int | None = None,
) -> ChangeResult:
    """Detect change between two local images, optionally inside an AOI.

    Parameters
    ----------
    before, after : str or Path
        A raster file or a folder of one-file-per-band rasters each.
    aoi : AOI or str, optional
        Area to analyse (an AOI, a catalog id such as ``"feb11-plant"`` or an AOI
        file path; see :func:`~sitewatch.aoi.load_aoi`); the images are resampled
        onto its UTM grid. Without one,
        the after image is resampled onto the part of the before grid both cover.
    options : DetectOptions, optional
        The numeric chain's options (method, threshold rule, smoothing,
        co-registration, normalisation, clean-up); defaults are the measured best.
    method, threshold, min_area_m2 : optional
        Shortcuts that override the matching field of ``options``.
    resolution : float, optional
        Pixel size in metres of the AOI grid; default the before image's native size.
    pixel_size : float, optional
        Ground pixel size in metres for images without CRS (pixel-coordinate output).
    bands : str or sequence of str, optional
        Names of the bands of both images in file order (a band folder: its files in
        sorted order), e.g. ``"blue,green,red,nir"``, for images whose files do not
        name them (see :func:`~sitewatch.sources.local.open_local`).
    before_date, after_date : str, optional
        ``YYYY-MM-DD`` acquisition dates of local images whose files do not say (they
        replace a date the files give; the manifest records that they were given).
    threads : int, optional
        Threads of the detection engine (default every core); the result does not
        depend on it.

    Returns
    -------
    ChangeResult

    Raises
    ------
    DataError
        Unreadable or non-overlapping images, no CRS, no valid pixels.
    AOIError
        Unlocated AOI, or an AOI outside the imagery.
    InputError
        ``bands`` without one name per band, or given for a non-local image.

    Warns
    -----
    BandsNotIdentifiedWarning
        When no band of the before image is recognised (so there is no true colour),
        once per call.
    SameImageWarning, DateOrderWarning
        Before and after are one image, or dated the wrong way round (see
        :func:`check_pair`).
    """
    if isinstance(aoi, str):
        aoi = load_aoi(aoi)
    overrides = {
        k: v
        for k, v in (("method", method), ("threshold", threshold), ("min_area_m2", min_area_m2))
        if v is not None
    }
    try:
        options = replace(options or DetectOptions(), **overrides)
    except ValueError as err:
        raise DataError(str(err)) from err
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    bsrc, asrc, bands_b, bands_a, grid, inside, coverage = plan_detection(
        before,
        after,
        aoi=aoi,
        resolution=resolution,
        pixel_size=pixel_size,
        bands=bands,
        before_date=before_date,
        after_date=after_date,
        method=options.method,
    )
    check_pair(bsrc, asrc)
    timings["open"] = time.perf_counter() - t0

    t = time.perf_counter()
    # The engine's modules (scipy's filters, FFTs and special functions: about a third
    # of a second) load on a second thread while this one reads (GDAL frees the GIL).
    preload = preload_module("sitewatch.detect.run")
    try:
        sb = bsrc.read(grid, bands=bands_b)
        sa = asrc.read(grid, bands=bands_a)
    finally:
        preload.join()
    from sitewatch.detect.run import detect_arrays

    valid = sb.valid & sa.valid
    if inside is not None:
        valid &= inside
    timings["read"] = time.perf_counter() - t
    n_valid = int(valid.sum())
    if n_valid < MIN_VALID_PIXELS:
        raise DataError(
            f"only {n_valid} pixels are observed in both images"
            f"{' inside the AOI' if aoi else ''}; the images may be nodata there"
        )

    t = time.perf_counter()
    try:
        det = detect_arrays(
            sb.data,
            sa.data,
            valid,
            band_names=bands_b,
            pixel_area_m2=grid.pixel_area_m2,
            options=options,
            grid=grid,
            evidence=True,
            threads=threads,
        )
    except ValueError as err:
        raise DataError(f"cannot score these images: {err}") from err
    score, mask, thr, valid = det.score, det.mask, det.threshold, det.valid
    n_valid = int(valid.sum())
    pixel_area = grid.pixel_area_m2
    timings["detect"] = time.perf_counter() - t

    # Polygons were traced by the engine, inside "detect"; only their dates and method here.
    aligned = det.aligned_after if det.aligned_after is not None else sa.data
    p_nc = det.p_no_change
    features = det.features or []
    annotate_features(features, bsrc.acquired, asrc.acquired, options, thr, det.diagnostics)
    if p_nc is None:
        for f in features:
            f["properties"]["p_no_change"] = None
    timings["total"] = time.perf_counter() - t0

    area_px = int(inside.sum()) if inside is not None else grid.width * grid.height
    diagnostics = {
        "bands": bands_b,
        "valid_pixels": n_valid,
        "valid_fraction": round(n_valid / max(area_px, 1), 4),
        "aoi_coverage": round(coverage, 4),
        "unobserved_m2": round((area_px - n_valid) * pixel_area, 1),
        "cloud_masked_m2": {
            "before": round(sb.provenance["cloud_masked_px"] * pixel_area, 1),
            "after": round(sa.provenance["cloud_masked_px"] * pixel_area, 1),
        },
        "saturated_px": {
            "before": sb.provenance["saturated_px"],
            "after": sa.provenance["saturated_px"],
        },
        **det.diagnostics,
        "n_polygons": len(features),
        "changed_area_m2": round(float(sum(f["properties"]["area_m2"] for f in features)), 1),
    }
    if note := grid_note(bsrc, grid, aoi=aoi):
        diagnostics["grid_note"] = note
    provenance = pair_provenance(
        bsrc, asrc, aoi=aoi, options=options, resolution=resolution, pixel_size=pixel_size
    )
    rgb = _rgb_indices(bands_b, sb.data.shape[0], source=bsrc.path)
    return ChangeResult(
        score,
        mask,
        valid,
        grid,
        features,
        thr,
        diagnostics,
        provenance,
        {k: round(v, 4) for k, v in timings.items()},
        before_rgb=_rgb(sb.data, valid, rgb),
        after_rgb=_rgb(aligned, valid, rgb),
        p_no_change=p_nc,
    )


def grid_note(bsrc: Any, grid: Grid, *, aoi: AOI | None) -> str | None:
    """Why the analysis grid is not the before image's own (None when it is, or an AOI)."""
    g = bsrc.grid
    if aoi is not None or not _distorted(g):
        return None
    return (
        f"the images' CRS ({g.crs}) enlarges areas {g.areal_scale:.2f}× here: resampled to "
        f"{grid.crs} (UTM) at "
        f"{math.sqrt(grid.pixel_area_m2):.1f} m, so areas are true"
    )


def pair_provenance(
    bsrc: Any,
    asrc: Any,
    *,
    aoi: AOI | None,
    options: DetectOptions,
    resolution: float | None,
    pixel_size: float | None,
    **parameters: Any,
) -> dict[str, Any]:
    """What a pair run read and how: the ``provenance`` of its result (and manifest)."""
    if aoi is not None:
        grid_rule = "aoi-utm"
    elif not bsrc.georeferenced:
        grid_rule = "pixels"
    else:
        grid_rule = "before-overlap-utm" if _distorted(bsrc.grid) else "before-grid-overlap"
    return {
        "before": {"source": bsrc, "acquired": bsrc.acquired},
        "after": {"source": asrc, "acquired": asrc.acquired},
        "aoi": aoi,
        "parameters": {
            **options.as_dict(),
            "resolution": resolution,
            "pixel_size": pixel_size,
            "grid_rule": grid_rule,
            **parameters,
        },
    }


def annotate_features(
    features: list[dict[str, Any]],
    before_date: str | None,
    after_date: str | None,
    options: DetectOptions,
    thr: Threshold,
    diagnostics: dict[str, Any],
) -> None:
    """Add the per-polygon evidence a pair run knows: dates, method, threshold, residual."""
    from sitewatch.prepare.coregister import coreg_residual

    residual = coreg_residual(diagnostics.get("coregistration"))
    for f in features:
        f["properties"].update(
            {
                "first_seen": after_date,
                "before_date": before_date,
                "after_date": after_date,
                "coreg_residual_px": None if residual is None else round(residual, 3),
                "method": method_run(options.method, diagnostics),
                "threshold": round(float(thr.value), 4),
            }
        )


def _rgb_indices(names: list[str], count: int, *, source: Any = None) -> list[int] | None:
    """Indices of red, green, blue in the analysed bands, or None.

    Warns (:class:`~sitewatch.errors.BandsNotIdentifiedWarning`) when no band of an
    image of 4 or more bands is recognised: naming them would give the true colour.
    Called once per run (detect, timeline), so the warning is given once.
    """
    from sitewatch.detect.methods import band_roles

    roles = band_roles(names, count)
    if {"red", "green", "blue"} <= roles.keys():
        return [roles["red"], roles["green"], roles["blue"]]
    if not roles and count >= 4:
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        example = "blue,green,red,nir" if count == 4 else "NAMES"
        how = f"--bands {example}" if arg("bands").startswith("--") else f'bands="{example}"'
        order = "in file order" if count == 4 else f"{count} names in file order such as blue,..."
        warnings.warn(
            f"bands of {source if source is not None else 'the images'} cannot be identified "
            f"({shown}); the report will have no true-colour images; name them with {how} "
            f"({order})",
            BandsNotIdentifiedWarning,
            stacklevel=3,
        )
    return None


def _rgb(stack: np.ndarray, valid: np.ndarray, idx: list[int] | None) -> np.ndarray | None:
    """The true-colour bands of ``stack`` (float32), NaN where not ``valid``.

    A view of ``stack`` when the bands are consecutive and every pixel is valid (the
    caller's stack is not written to; copying three 2048² bands took a tenth of a second).
    """
    if idx is None:
        return None
    if idx == list(range(idx[0], idx[0] + len(idx))):
        out = stack[idx[0] : idx[0] + len(idx)].astype(np.float32, copy=False)
    else:
        out = stack[idx].astype(np.float32, copy=False)
    if valid.all():
        return out
    return np.where(valid, out, np.float32(np.nan))


def chi2_log10_sf(x: np.ndarray, dof: int) -> np.ndarray:
    """log10 P(χ²_dof > x), finite where the survival function itself underflows.

    ``Q(a, y) = Γ(a, y)/Γ(a)`` with ``a = dof/2``, ``y = x/2`` (``scipy.special.gammaincc``);
    where it underflows (y beyond ~700) the asymptotic series
    ``Γ(a, y) ≈ y^(a−1) e^(−y) [1 + (a−1)/y + (a−1)(a−2)/y²]`` is exact to float precision.
    (``scipy.stats.chi2.logsf`` gives the same values, but importing ``scipy.stats``
    alone takes about a second.)

    Examples
    --------
    >>> [round(float(v), 3) for v in chi2_log10_sf(np.array([0.0, 3.0, 5000.0]), 3)]
    [0.0, -0.407, -1083.985]
    """
    from scipy import special

    a, y = dof / 2.0, np.asarray(x, dtype=np.float64) / 2.0
    with np.errstate(divide="ignore"):
        q = special.gammaincc(a, y)
        direct = np.log(q)
    tiny = q < 1e-280
    if tiny.any():
        yt = y[tiny]
        series = 1.0 + (a - 1.0) / yt + (a - 1.0) * (a - 2.0) / yt**2
        direct[tiny] = (a - 1.0) * np.log(yt) - yt - special.gammaln(a) + np.log(series)
    return direct / math.log(10)
