"""``sitewatch bench suite``: every labelled dataset under one folder, one table.

The suite runs the shipped detector (:func:`~sitewatch.bench.pairs.evaluate_pair`, so
exactly what ``sitewatch detect`` runs on arrays) and, on the same pixels in the same
run, the textbook baseline (:data:`~sitewatch.bench.pairs.BASELINE`, CVA + Otsu) on
every dataset it finds directly under ROOT, in the layout of ``../shared/data``:

``oscd/``
    The OSCD train cities (:mod:`sitewatch.bench.oscd`: 13 bands on the imgs_1 10 m
    grid, every pixel).
``sztaki_airchange/``, ``levir_cd_samples/``, ``dsifn_cd_samples/``, ``landsat_taizhou_nanjing/``
    Labelled pairs found by :func:`~sitewatch.bench.pairs.find_pairs`.
``spacenet7/``
    Crops of monthly Planet mosaics (``<crop>/images_masked/*YYYY_MM*.tif``, RGB +
    alpha, ``<crop>/labels_match_pix/<image stem>_Buildings.geojson`` with building
    polygons in pixel coordinates and a persistent ``Id``), used two ways:

    - **as a pair**, first month → last month: the reference is the buildings present
      in the last month's labels and absent (by ``Id``) from the first month's,
      rasterised at pixel centres on the image's own grid; pixels whose alpha is 0 in
      either image are not evaluated;
    - **as a timeline** (default options only, not part of macro-F1):
      :func:`sitewatch.series.detect_series` on all months, scored per building that
      appears after the first month (see :func:`score_buildings`).

Images without a CRS get the nominal pixel size of :data:`PIXEL_SIZE_M` (the minimum
mapping unit and any size-dependent default of the detector are counted at that
size); georeferenced datasets use their CRS (OSCD, Landsat, SpaceNet 7; SpaceNet 7's
Web Mercator pixels are given their true ground area, about 3.8 m at 38° N, not the
nominal 4.78 m).

Per dataset the table gives the evaluated pixels, pooled precision, recall, F1 and
AUC-PR of the detector, the baseline's pooled F1 and their ratio; macro-F1 is the mean
of the datasets' pooled F1.

Leave one dataset out
---------------------
Detector constants chosen by measurement are *tunables* (:data:`TUNABLES`): a
:class:`~sitewatch.detect.run.DetectOptions` field with a small candidate grid. With
``leave_one_out=True`` every configuration of the grid (the product of the
candidates, the defaults always included) runs once on every dataset; then, for each
dataset, the configuration with the best macro-F1 over the *other* datasets is chosen
and the dataset is scored with it. That figure, not the default's, is the one to
quote. Adding a tunable is one :func:`register_tunable` call.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import math
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.features
import rasterio.warp
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.errors import RasterioError
from scipy import ndimage

from sitewatch.bench.learn import fold_models
from sitewatch.bench.metrics import ObjectCounts, PixelCounts, average_precision, best_f1
from sitewatch.bench.oscd import oscd_cities, read_city
from sitewatch.bench.pairs import (
    BASELINE,
    BASELINE_NAME,
    LabelledPair,
    evaluate_pair,
    find_pairs,
    read_pair,
)
from sitewatch.detect.chain import resolve_options
from sitewatch.detect.options import STEP_FDR
from sitewatch.detect.run import DetectOptions
from sitewatch.errors import DataError, InputError
from sitewatch.grid import Grid

__all__ = [
    "DATASETS",
    "PIXEL_SIZE_M",
    "TUNABLES",
    "Building",
    "BuildingScores",
    "DatasetRun",
    "Scored",
    "SpaceNet7Crop",
    "SuiteDataset",
    "SuiteResult",
    "TimelineScore",
    "Tunable",
    "choose_leave_one_out",
    "find_datasets",
    "format_suite",
    "read_buildings",
    "read_spacenet7_pair",
    "register_tunable",
    "run_spacenet7_timeline",
    "run_suite",
    "score_buildings",
    "search_grid",
    "spacenet7_crops",
]

DATASETS: dict[str, str] = {
    "oscd": "oscd",
    "sztaki_airchange": "pairs",
    "levir_cd_samples": "pairs",
    "dsifn_cd_samples": "pairs",
    "landsat_taizhou_nanjing": "pairs",
    "spacenet7": "spacenet7",
}
"""Folder names looked for directly under ROOT, in table order, and their layout."""

PIXEL_SIZE_M: dict[str, float] = {
    "sztaki_airchange": 1.5,  # SOURCE.md: aerial photos, ~1.5 m/pixel
    "levir_cd_samples": 0.5,  # LEVIR-CD: 0.5 m Google Earth (1024 px ≈ 512 m)
    "dsifn_cd_samples": 1.0,  # DSIFN-CD: Google Earth; the usual figure is ~1-2 m
    "landsat_taizhou_nanjing": 30.0,  # georeferenced: the CRS's 30 m is used anyway
}
"""Nominal ground pixel size (m) of each pair dataset's images without a CRS."""

FOUND_SHARE = 0.30
"""A new building is found when this share of its footprint is flagged."""
TOLERANCE_PX = 1
"""The flagged mask is dilated by this many pixels before it is compared with footprints."""
DATED_MONTHS = 2
"""A found building is dated right when first seen within this many months of its label."""
NEAR_M = 15.0
"""Flagged area within this distance (m) of a new building counts as near one."""


# ---------------------------------------------------------------------------------------
# Tunables


@dataclass(frozen=True)
class Tunable:
    """A detector constant chosen by measurement, and the values to try for it.

    Attributes
    ----------
    name : str
        A field of :class:`~sitewatch.detect.run.DetectOptions`.
    candidates : tuple of float
        Values to try; the current default is always added.
    doc : str
        What the option does (printed with the choice).
    applies : callable, optional
        ``applies(options) -> bool``: whether the option has any effect under the
        default options (``k`` acts only under the precision rule). An inert tunable
        is not searched, so it costs no detector run.

    Raises
    ------
    ValueError
        If there is no candidate.
    """

    name: str
    candidates: tuple[float, ...]
    doc: str = ""
    applies: Callable[[DetectOptions], bool] | None = None

    def __post_init__(self) -> None:
        if not self.candidates:
            raise ValueError(f"tunable {self.name!r} has no candidate value")

    def values(self, base: DetectOptions) -> tuple[float, ...]:
        """Candidates plus the default of ``base``, sorted."""
        return tuple(sorted({*map(float, self.candidates), float(getattr(base, self.name))}))


TUNABLES: dict[str, Tunable] = {}
"""The registry of tunables, by name (see :func:`register_tunable`)."""


def register_tunable(tunable: Tunable) -> Tunable:
    """Add (or replace) a tunable in :data:`TUNABLES`.

    Examples
    --------
    >>> t = register_tunable(Tunable("edge", (0.0, 0.5, 0.75), "boundary rule"))
    >>> TUNABLES.pop("edge") is t
    True
    """
    TUNABLES[tunable.name] = tunable
    return tunable


register_tunable(
    Tunable(
        "k",
        (3.0, 4.5, 6.5),
        "robust-σ multiplier of the precision threshold rule",
        # "auto" picks the precision rule for multispectral input
        applies=lambda o: o.threshold is None and o.threshold_rule in ("precision", "auto"),
    )
)
register_tunable(Tunable("smooth", (1.0, 2.0, 3.0), "Gaussian σ (px) of the score smoothing"))

Config = tuple[tuple[str, float], ...]
"""One value per searched tunable, in search order; ``()`` is the default options."""


def config_label(config: Config) -> str:
    """``"k=4.5,smooth=2"`` (``"default"`` for the empty configuration).

    Examples
    --------
    >>> config_label((("k", 4.5), ("smooth", 2.0)))
    'k=4.5,smooth=2'
    """
    return ",".join(f"{n}={v:g}" for n, v in config) or "default"


def search_grid(
    names: Sequence[str] | None, base: DetectOptions
) -> tuple[list[Tunable], list[Config], list[str]]:
    """The tunables to search, every configuration of their grid, and notes.

    Parameters
    ----------
    names : sequence of str or None
        Tunables to search (None: every registered one).
    base : DetectOptions
        The default options; inert tunables and names that are no longer option
        fields are left out with a note.

    Returns
    -------
    tunables : list of Tunable
    configs : list of Config
        The product of the tunables' values; the default configuration is in it.
    notes : list of str

    Raises
    ------
    InputError
        If a name is not a registered tunable.
    """
    chosen = list(TUNABLES) if names is None else list(dict.fromkeys(names))
    bad = [n for n in chosen if n not in TUNABLES]
    if bad:
        raise InputError(
            f"unknown tunable {', '.join(map(repr, bad))}; choose from {', '.join(TUNABLES)}"
        )
    option_fields = {f.name for f in fields(DetectOptions)}
    used: list[Tunable] = []
    notes: list[str] = []
    for n in chosen:
        t = TUNABLES[n]
        if n not in option_fields:
            notes.append(f"tunable {n}: not an option of the detector any more; not searched")
        elif t.applies is not None and not t.applies(base):
            notes.append(f"tunable {n}: has no effect under the default options; not searched")
        else:
            used.append(t)
    grids = [[(t.name, v) for v in t.values(base)] for t in used]
    return used, [tuple(c) for c in itertools.product(*grids)], notes


def _options(base: DetectOptions, config: Config) -> DetectOptions:
    try:
        return replace(base, **dict(config))
    except ValueError as err:
        raise InputError(f"tunable values {config_label(config)}: {err}") from err


def choose_leave_one_out(
    f1: Mapping[str, Mapping[Config, float]], default: Config
) -> dict[str, Config]:
    """For each dataset, the configuration with the best macro-F1 over the others.

    Ties go to the configuration with fewer values changed from ``default``, then to
    the earlier one. A lone dataset (no other to choose on) gets ``default``.

    Parameters
    ----------
    f1 : mapping
        ``{dataset: {config: pooled F1}}``; every dataset has every configuration.
    default : Config

    Returns
    -------
    dict
        ``{dataset: chosen config}``.

    Examples
    --------
    >>> a, b = (("k", 3.0),), (("k", 6.5),)
    >>> choose_leave_one_out({"A": {a: 0.9, b: 0.1}, "B": {a: 0.2, b: 0.8}}, b)
    {'A': (('k', 6.5),), 'B': (('k', 3.0),)}
    """
    names = list(f1)
    configs = list(next(iter(f1.values()))) if names else []
    defaults = dict(default)

    def changed(c: Config) -> int:
        return sum(defaults.get(n) != v for n, v in c)

    out = {}
    for left in names:
        others = [n for n in names if n != left]
        if not others:
            out[left] = default
            continue

        def key(i_c: tuple[int, Config], others: list[str] = others) -> tuple[float, int, int]:
            i, c = i_c
            macro = sum(f1[o][c] for o in others) / len(others)
            return (round(macro, 12), -changed(c), -i)

        out[left] = max(enumerate(configs), key=key)[1]
    return out


# ---------------------------------------------------------------------------------------
# SpaceNet 7

_MONTH = re.compile(r"(?<!\d)((?:19|20)\d{2})[-_](0[1-9]|1[0-2])(?!\d)")


def _month(text: str) -> int | None:
    """Months since year 0 (``year * 12 + month - 1``) of the first YYYY_MM in text."""
    m = _MONTH.search(text)
    return int(m.group(1)) * 12 + int(m.group(2)) - 1 if m else None


def _month_text(n: int) -> str:
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


@dataclass(frozen=True)
class SpaceNet7Crop:
    """Files of one SpaceNet 7 crop.

    Attributes
    ----------
    name : str
        Folder name.
    images : tuple of Path
        Monthly mosaics, oldest first.
    months : tuple of int
        Month of each image (``year * 12 + month - 1``, from the file name).
    labels : tuple of Path
        The building label file of each image.
    first_seen_csv : Path or None
        ``buildings_first_seen.csv`` when present.
    """

    name: str
    images: tuple[Path, ...]
    months: tuple[int, ...]
    labels: tuple[Path, ...]
    first_seen_csv: Path | None = None


def spacenet7_crops(folder: str | Path) -> list[SpaceNet7Crop]:
    """List the crops of a SpaceNet 7 folder (sorted by name).

    A crop is a sub-folder holding ``images_masked/`` (or ``images/``) GeoTIFFs with
    ``YYYY_MM`` in their names and ``labels_match_pix/<image stem>_Buildings.geojson``.

    Raises
    ------
    DataError
        If no crop is found, an image has no month in its name or no label file, two
        images share a month, or a crop has fewer than two images.
    """
    root = Path(folder)
    crops = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images_dir = next((d / n for n in ("images_masked", "images") if (d / n).is_dir()), None)
        labels_dir = d / "labels_match_pix"
        if images_dir is None or not labels_dir.is_dir():
            continue
        dated = []
        for p in sorted(images_dir.iterdir()):
            if p.suffix.lower() not in (".tif", ".tiff") or p.name.startswith("."):
                continue
            month = _month(p.name)
            if month is None:
                raise DataError(f"{p} has no YYYY_MM month in its name; SpaceNet 7 names do")
            label = labels_dir / f"{p.stem}_Buildings.geojson"
            if not label.is_file():
                raise DataError(f"{p.name} has no label file {label}")
            dated.append((month, p, label))
        dated.sort()
        months = [m for m, _, _ in dated]
        if len(set(months)) != len(months):
            raise DataError(f"two images of {images_dir} are of the same month; keep one")
        if len(dated) < 2:
            raise DataError(f"{images_dir} holds {len(dated)} dated image(s); a crop needs two")
        table = d / "buildings_first_seen.csv"
        crops.append(
            SpaceNet7Crop(
                d.name,
                tuple(p for _, p, _ in dated),
                tuple(months),
                tuple(lab for _, _, lab in dated),
                table if table.is_file() else None,
            )
        )
    if not crops:
        raise DataError(
            f"no SpaceNet 7 crop under {root}; expected <crop>/images_masked/*.tif and "
            "<crop>/labels_match_pix/*_Buildings.geojson"
        )
    return crops


@dataclass(frozen=True)
class Building:
    """One labelled building of a crop.

    Attributes
    ----------
    id : int
        The persistent ``Id``.
    first : int
        Month it first appears (``year * 12 + month - 1``).
    geometry : dict
        GeoJSON geometry in pixel coordinates (x = column, y = row), from the last
        label file that holds the building.
    """

    id: int
    first: int
    geometry: dict[str, Any]


def _features(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        out = []
        for f in doc["features"]:
            props = f.get("properties") or {}
            ident = props.get("Id", props.get("id"))
            if ident is None or f.get("geometry") is None:
                continue
            out.append((int(ident), f["geometry"]))
        return out
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path} is not a SpaceNet 7 label GeoJSON ({err})") from err


def read_buildings(crop: SpaceNet7Crop) -> dict[int, Building]:
    """Every building of a crop: its first month and its latest footprint.

    The first month comes from ``buildings_first_seen.csv`` (column ``first_seen``,
    ``YYYY_MM``) when present, otherwise from the first label file holding the ``Id``.

    Raises
    ------
    DataError
        Unreadable label files or table.
    """
    first: dict[int, int] = {}
    geometry: dict[int, dict[str, Any]] = {}
    for month, path in zip(crop.months, crop.labels, strict=True):
        for ident, geom in _features(path):
            first.setdefault(ident, month)
            geometry[ident] = geom
    if crop.first_seen_csv is not None:
        try:
            with crop.first_seen_csv.open(encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f):
                    month = _month(row.get("first_seen") or "")
                    if month is not None and int(row["id"]) in first:
                        first[int(row["id"])] = month
        except (OSError, ValueError, KeyError) as err:
            raise DataError(f"cannot read {crop.first_seen_csv} ({err})") from err
    return {i: Building(i, first[i], geometry[i]) for i in sorted(first)}


def _burn(
    geometries: Iterable[dict[str, Any]],
    shape: tuple[int, int],
    transform: Affine | None = None,
    *,
    all_touched: bool = False,
) -> np.ndarray:
    shapes = [(g, 1) for g in geometries]
    if not shapes:
        return np.zeros(shape, dtype=bool)
    out = rasterio.features.rasterize(
        shapes,
        out_shape=shape,
        transform=transform or Affine.identity(),
        fill=0,
        dtype="uint8",
        all_touched=all_touched,
    )
    return out.astype(bool)


def _read_rgba(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], Grid]:
    """Colour bands (float32), valid = alpha > 0, band names, and the image's own grid."""
    try:
        with rasterio.open(path) as ds:
            data = ds.read()
            interp = list(ds.colorinterp)
            crs = ds.crs.to_string() if ds.crs else None
            grid = Grid(crs, ds.transform, ds.width, ds.height, None if crs else 1.0)
    except RasterioError as err:
        raise DataError(f"cannot read {path}: {err}") from err
    colour = [i for i, c in enumerate(interp) if c != ColorInterp.alpha]
    valid = np.ones(data.shape[1:], dtype=bool)
    for i, c in enumerate(interp):
        if c == ColorInterp.alpha:
            valid &= data[i] > 0
    names = tuple(
        interp[i].name if interp[i].name in ("red", "green", "blue") else f"b{i + 1}"
        for i in colour
    )
    return data[colour].astype(np.float32), valid, names, grid


def read_spacenet7_pair(crop: SpaceNet7Crop) -> LabelledPair:
    """The crop's first and last month as a labelled pair, on the images' own grid.

    Reference: buildings in the last month's labels whose ``Id`` is not in the first
    month's, rasterised at pixel centres. Evaluated: pixels with alpha > 0 in both.

    Raises
    ------
    DataError
        Unreadable images or labels, or images of different size or bands.
    """
    before, vb, names, grid = _read_rgba(crop.images[0])
    after, va, names_a, _ = _read_rgba(crop.images[-1])
    if before.shape != after.shape or names != names_a:
        raise DataError(
            f"{crop.images[0].name} and {crop.images[-1].name} differ in size or bands; the "
            "months of a crop share one grid"
        )
    old = {i for i, _ in _features(crop.labels[0])}
    new = [g for i, g in _features(crop.labels[-1]) if i not in old]
    truth = _burn(new, grid.shape)
    valid = vb & va
    return LabelledPair(
        crop.name, before, after, valid, truth, valid.copy(), grid.pixel_area_m2, names
    )


@dataclass(frozen=True)
class BuildingScores:
    """Outcome of :func:`score_buildings`.

    Attributes
    ----------
    n_new : int
        Buildings scored.
    found : tuple of bool
        Per building: at least :data:`FOUND_SHARE` of its footprint flagged.
    first_seen : tuple of int or None
        Per building: month its overlapping kept region was first seen (None if none).
    dated : tuple of bool
        Per building: found and first seen within :data:`DATED_MONTHS` of its label.
    flagged_px, flagged_near_px : int
        Flagged pixels, and those within :data:`NEAR_M` of a new building.
    """

    n_new: int
    found: tuple[bool, ...]
    first_seen: tuple[int | None, ...]
    dated: tuple[bool, ...]
    flagged_px: int
    flagged_near_px: int


def score_buildings(
    footprints: Sequence[np.ndarray],
    first_months: Sequence[int],
    flagged: np.ndarray,
    regions: np.ndarray,
    region_months: Mapping[int, int],
    *,
    pixel_size_m: float,
) -> BuildingScores:
    """Score a timeline's kept change against the buildings that appeared.

    Parameters
    ----------
    footprints : sequence of (H, W) bool ndarray
        One mask per new building, on the grid of ``flagged``.
    first_months : sequence of int
        Labelled first month of each building (any month count, e.g. ``y * 12 + m``).
    flagged : (H, W) bool ndarray
        Kept change of the timeline.
    regions : (H, W) int ndarray
        Region label of each flagged pixel (0 = none).
    region_months : mapping
        ``{region label: month it was first seen}`` (same month count).
    pixel_size_m : float
        Ground size of a pixel, for :data:`NEAR_M`.

    Returns
    -------
    BuildingScores
        A building is found when at least :data:`FOUND_SHARE` of its footprint lies in
        ``flagged`` dilated by :data:`TOLERANCE_PX` pixels. It is dated by the region
        that covers most of its footprint (dilated by the same tolerance); dated right
        when that month is within :data:`DATED_MONTHS` of its label.

    Examples
    --------
    >>> fp = np.zeros((8, 8), bool); fp[2:4, 2:4] = True
    >>> flagged = np.zeros((8, 8), bool); flagged[2:4, 1:3] = True
    >>> s = score_buildings([fp], [5], flagged, flagged.astype(int), {1: 6}, pixel_size_m=5)
    >>> s.found, s.first_seen, s.dated, s.flagged_near_px
    ((True,), (6,), (True,), 4)
    """
    if len(footprints) != len(first_months):
        raise ValueError(f"{len(footprints)} footprints but {len(first_months)} first months")
    square = np.ones((3, 3), dtype=bool)
    grown = ndimage.binary_dilation(flagged, square, iterations=TOLERANCE_PX)
    found, seen, dated = [], [], []
    union = np.zeros(flagged.shape, dtype=bool)
    for fp, month in zip(footprints, first_months, strict=True):
        if fp.shape != flagged.shape:
            raise ValueError(f"footprint shape {fp.shape} != flagged shape {flagged.shape}")
        union |= fp
        n = int(fp.sum())
        hit = n > 0 and int((grown & fp).sum()) >= FOUND_SHARE * n
        near = ndimage.binary_dilation(fp, square, iterations=TOLERANCE_PX)
        labels = regions[near & flagged]
        labels = labels[np.isin(labels, list(region_months))]
        when = None
        if labels.size:
            values, counts = np.unique(labels, return_counts=True)
            when = int(region_months[int(values[np.argmax(counts)])])
        found.append(bool(hit))
        seen.append(when)
        dated.append(bool(hit and when is not None and abs(when - month) <= DATED_MONTHS))
    n_flagged = int(flagged.sum())
    if union.any() and n_flagged:
        dist = ndimage.distance_transform_edt(~union, sampling=pixel_size_m)
        n_near = int((flagged & (dist <= NEAR_M)).sum())
    else:
        n_near = 0
    return BuildingScores(len(found), tuple(found), tuple(seen), tuple(dated), n_flagged, n_near)


@dataclass(frozen=True)
class TimelineScore:
    """Timeline figures of one crop, or pooled over crops (:meth:`pooled`).

    Attributes
    ----------
    name : str
    n_new, n_found, n_dated : int
        Buildings appearing after the first month; found; found and dated right.
    flagged_px, flagged_near_px : int
    seconds : float
    grid : str
        The result grid (CRS and ground pixel size).
    buildings : tuple of dict
        Per building: ``id``, ``labelled`` month, ``found``, ``first_seen`` month.
    """

    name: str
    n_new: int
    n_found: int
    n_dated: int
    flagged_px: int
    flagged_near_px: int
    seconds: float = 0.0
    grid: str = ""
    buildings: tuple[dict[str, Any], ...] = ()

    @property
    def found_share(self) -> float:
        """Found / new (0.0 without new buildings)."""
        return self.n_found / self.n_new if self.n_new else 0.0

    @property
    def dated_share(self) -> float:
        """Dated within :data:`DATED_MONTHS` / found."""
        return self.n_dated / self.n_found if self.n_found else 0.0

    @property
    def near_share(self) -> float:
        """Flagged area within :data:`NEAR_M` of a new building / flagged area."""
        return self.flagged_near_px / self.flagged_px if self.flagged_px else 0.0

    @classmethod
    def pooled(cls, crops: Sequence[TimelineScore]) -> TimelineScore:
        """Counts summed over crops."""
        return cls(
            "pooled",
            sum(c.n_new for c in crops),
            sum(c.n_found for c in crops),
            sum(c.n_dated for c in crops),
            sum(c.flagged_px for c in crops),
            sum(c.flagged_near_px for c in crops),
            sum(c.seconds for c in crops),
        )

    def as_dict(self, *, details: bool = True) -> dict[str, Any]:
        """JSON record."""
        doc: dict[str, Any] = {
            "new_buildings": self.n_new,
            "found": self.n_found,
            "found_share": round(self.found_share, 4),
            "dated_within_2_months": self.n_dated,
            "dated_share": round(self.dated_share, 4),
            "flagged_px": self.flagged_px,
            "flagged_near_share": round(self.near_share, 4),
            "seconds": round(self.seconds, 3),
        }
        if details:
            doc["grid"] = self.grid
            doc["buildings"] = list(self.buildings)
        return doc


def _to_grid(geom: dict[str, Any], src: Grid, dst: Grid) -> dict[str, Any]:
    """A pixel-coordinate geometry of ``src`` in the CRS coordinates of ``dst``."""
    t = src.transform

    def pt(xy: Sequence[float]) -> list[float]:
        return list(t @ (float(xy[0]), float(xy[1])))

    def ring(r: Sequence[Sequence[float]]) -> list[list[float]]:
        return [pt(xy) for xy in r]

    if geom["type"] == "Polygon":
        mapped = {"type": "Polygon", "coordinates": [ring(r) for r in geom["coordinates"]]}
    elif geom["type"] == "MultiPolygon":
        mapped = {
            "type": "MultiPolygon",
            "coordinates": [[ring(r) for r in poly] for poly in geom["coordinates"]],
        }
    else:
        raise DataError(f"building geometry of type {geom['type']} is not a polygon")
    if src.crs == dst.crs or src.crs is None or dst.crs is None:
        return mapped
    return dict(rasterio.warp.transform_geom(src.crs, dst.crs, mapped))


def run_spacenet7_timeline(
    crop: SpaceNet7Crop, *, options: DetectOptions | None = None, fdr: float = STEP_FDR
) -> TimelineScore:
    """Run :func:`sitewatch.series.detect_series` on a crop's months and score it.

    The series is run as a user would run ``sitewatch timeline --images``: no AOI (the
    images' overlap), dates and validity as the library reads them. Whatever grid the
    library chooses (a Web Mercator crop may be resampled onto UTM at its true ground
    pixel size), the building polygons are mapped onto *that* grid (pixel → image CRS
    → result CRS) and rasterised there, so the result is never resampled for scoring.
    Regions are dated by the month of their ``first_seen`` date label (``YYYY-MM`` or
    ``YYYY_MM``), or else by the position of that label in the series.

    Raises
    ------
    DataError
        Unreadable crop, or a first-seen date that matches no image.
    """
    from sitewatch.series import detect_series

    t0 = time.perf_counter()
    result, tl = detect_series(list(crop.images), aoi=None, options=options, fdr=fdr)
    grid = result.grid
    with rasterio.open(crop.images[0]) as ds:
        src = Grid(ds.crs.to_string() if ds.crs else None, ds.transform, ds.width, ds.height, 1.0)
    by_position = len(tl.dates) == len(crop.months)

    def month_of(label: str) -> int:
        m = _month(label)
        if m is None and by_position:
            m = crop.months[tl.dates.index(label)]
        if m is None:
            raise DataError(f"cannot tell the month of the series date {label!r}")
        return m

    region_months = {r.label: month_of(r.first_seen) for r in tl.kept if r.first_seen}
    flagged = np.asarray(result.mask, dtype=bool)
    regions = np.where(flagged, tl.labels, 0)
    first = crop.months[0]
    new = [b for b in read_buildings(crop).values() if b.first > first]
    footprints = []
    for b in new:
        g = _to_grid(b.geometry, src, grid)
        fp = _burn([g], grid.shape, grid.transform)
        if not fp.any():  # smaller than a pixel centre: take the pixels it touches
            fp = _burn([g], grid.shape, grid.transform, all_touched=True)
        footprints.append(fp)
    size_m = math.sqrt(grid.pixel_area_m2)
    s = score_buildings(
        footprints, [b.first for b in new], flagged, regions, region_months, pixel_size_m=size_m
    )
    details = tuple(
        {
            "id": b.id,
            "labelled": _month_text(b.first),
            "found": f,
            "first_seen": None if w is None else _month_text(w),
        }
        for b, f, w in zip(new, s.found, s.first_seen, strict=True)
    )
    return TimelineScore(
        crop.name,
        s.n_new,
        sum(s.found),
        sum(s.dated),
        s.flagged_px,
        s.flagged_near_px,
        time.perf_counter() - t0,
        f"{grid.crs} {size_m:.2f} m ({grid.width}x{grid.height} px)",
        details,
    )


# ---------------------------------------------------------------------------------------
# Datasets


@dataclass(frozen=True)
class SuiteDataset:
    """One dataset found under ROOT.

    Attributes
    ----------
    name : str
        Folder name (a key of :data:`DATASETS`).
    folder : Path
    kind : {"oscd", "pairs", "spacenet7"}
    entries : tuple
        Its cities, pairs or crops.
    pixel_size_m : float or None
        Nominal pixel size of images without a CRS.
    """

    name: str
    folder: Path
    kind: str
    entries: tuple[Any, ...]
    pixel_size_m: float | None = None

    @property
    def entry_key(self) -> str:
        """``cities``, ``pairs`` or ``crops``."""
        return {"oscd": "cities", "spacenet7": "crops"}.get(self.kind, "pairs")

    def read(self) -> Iterator[LabelledPair]:
        """Read the entries one at a time."""
        for e in self.entries:
            if self.kind == "oscd":
                yield read_city(e)
            elif self.kind == "spacenet7":
                yield read_spacenet7_pair(e)
            else:
                yield read_pair(e, pixel_size=self.pixel_size_m or 1.0)


def find_datasets(root: str | Path) -> tuple[list[SuiteDataset], list[str]]:
    """The datasets of :data:`DATASETS` found directly under ROOT, and notes on the others.

    Raises
    ------
    InputError
        If ROOT is not a folder or holds none of the datasets.
    DataError
        If a dataset folder is there but incomplete.
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise InputError(f"{base} is not a folder; give the folder that holds the datasets")
    found, notes = [], []
    for name, kind in DATASETS.items():
        folder = base / name
        if not folder.is_dir():
            notes.append(f"{name}: no {name}/ folder under {base}; skipped")
            continue
        entries: Sequence[Any]
        if kind == "oscd":
            entries = oscd_cities(folder, split="train")
        elif kind == "spacenet7":
            entries = spacenet7_crops(folder)
        else:
            entries = find_pairs(folder)
        found.append(SuiteDataset(name, folder, kind, tuple(entries), PIXEL_SIZE_M.get(name)))
    if not found:
        raise InputError(
            f"no labelled dataset under {base}; expected one of the folders "
            f"{', '.join(DATASETS)} (the layout of ../shared/data)"
        )
    return found, notes


# ---------------------------------------------------------------------------------------
# Running


@dataclass(frozen=True)
class Scored:
    """One detector configuration on one dataset.

    Attributes
    ----------
    counts : PixelCounts
        Pooled over the dataset's evaluated pixels.
    auc_pr : float
        Average precision of the pooled scores.
    entries : dict
        ``{entry name: PixelCounts}``.
    seconds : float
        Detection and scoring time (reading excluded).
    oracle : tuple of float
        ``(F1, flagged share)`` of the best single threshold on the pooled scores, the
        labels known (:func:`~sitewatch.bench.metrics.best_f1`): how well the score
        ranks change, in F1 terms. Not a bound on the detector, whose thresholds are
        per image and whose regions are cleaned after thresholding.
    objects : ObjectCounts
        Pooled over the dataset's entries: reference objects found, flagged regions on
        change, pieces per found object.
    """

    counts: PixelCounts
    auc_pr: float
    entries: dict[str, PixelCounts]
    seconds: float
    oracle: tuple[float, float] = (0.0, 0.0)
    objects: ObjectCounts = field(default_factory=ObjectCounts)

    @property
    def f1(self) -> float:
        """Pooled F1."""
        return self.counts.f1

    def pooled(self) -> dict[str, Any]:
        """``{"precision", "recall", "f1", "iou", "auc_pr", "counts", "objects"}``."""
        return {
            **{k: round(v, 6) for k, v in self.counts.metrics().items()},
            "auc_pr": round(self.auc_pr, 6),
            "counts": self.counts.as_dict(),
            "objects": self.objects.as_dict(),
        }


@dataclass(frozen=True)
class DatasetRun:
    """Every configuration and the baseline on one dataset.

    Attributes
    ----------
    dataset : SuiteDataset
    baseline : Scored
    configs : dict
        ``{Config: Scored}``.
    read_seconds : float
    chain : str
        The detector the default options chose for the dataset's first entry
        (``method + rule``), or the method named.
    """

    dataset: SuiteDataset
    baseline: Scored
    configs: dict[Config, Scored]
    read_seconds: float
    chain: str = ""

    @property
    def name(self) -> str:
        """The dataset's name."""
        return self.dataset.name

    @property
    def pixels(self) -> int:
        """Evaluated pixels."""
        return self.baseline.counts.total


def _run_dataset(
    ds: SuiteDataset,
    runs: Mapping[Config | None, DetectOptions],
    progress: Callable[[str], None],
) -> DatasetRun:
    """Read each entry once and run every configuration (None = the baseline) on it."""
    counts: dict[Config | None, dict[str, PixelCounts]] = {k: {} for k in runs}
    objects: dict[Config | None, list[ObjectCounts]] = {k: [] for k in runs}
    seconds = dict.fromkeys(runs, 0.0)
    store: list[np.ndarray] = []  # distinct score vectors (k leaves the score unchanged)
    picks: dict[Config | None, list[int]] = {k: [] for k in runs}
    truths: list[np.ndarray] = []
    first: LabelledPair | None = None
    read_s = 0.0
    it = ds.read()
    while True:
        t = time.perf_counter()
        pair = next(it, None)
        read_s += time.perf_counter() - t
        if pair is None:
            break
        first = pair if first is None else first
        truths.append(pair.truth.ravel() if pair.labelled is None else pair.truth[pair.labelled])
        mine: list[int] = []
        for key, opts in runs.items():
            t = time.perf_counter()
            c, score, objs = evaluate_pair(pair, opts)
            counts[key][pair.name] = c
            objects[key].append(objs)
            i = next((j for j in mine if np.array_equal(store[j], score)), None)
            if i is None:
                store.append(score)
                i = len(store) - 1
                mine.append(i)
            picks[key].append(i)
            seconds[key] += time.perf_counter() - t
    truth = np.concatenate(truths)
    chain = ""
    if first is not None:
        opts = next((o for k, o in runs.items() if k is not None), None)
        if opts is not None:
            chosen, _ = resolve_options(
                opts, first.band_names, first.before.shape[0], first.pixel_area_m2
            )
            chain = f"{chosen.method} + {chosen.threshold_rule}"
    scored = {}
    for key in runs:
        t = time.perf_counter()
        pooled = np.concatenate([store[i] for i in picks[key]])
        ap = average_precision(pooled, truth)
        oracle = best_f1(pooled, truth)
        seconds[key] += time.perf_counter() - t
        entries = counts[key]
        scored[key] = Scored(
            sum(entries.values(), PixelCounts()),
            ap,
            entries,
            seconds[key],
            oracle,
            sum(objects[key], ObjectCounts()),
        )
    base = scored.pop(None)
    total = read_s + sum(seconds.values())
    progress(f"{ds.name}: {len(ds.entries)} {ds.entry_key}, {len(runs)} runs, {total:.1f} s")
    return DatasetRun(ds, base, {k: v for k, v in scored.items() if k is not None}, read_s, chain)


@dataclass(frozen=True)
class SuiteResult:
    """A suite run.

    Attributes
    ----------
    root : Path
    runs : tuple of DatasetRun
    base : DetectOptions
        The default options.
    default : Config
        The default values of the searched tunables (``()`` without leave-one-out).
    tunables : tuple of Tunable
        Searched tunables (empty without leave-one-out).
    chosen : dict or None
        ``{dataset: Config}`` chosen on the other datasets (None without leave-one-out).
    timeline : tuple of TimelineScore
        SpaceNet 7 timeline figures per crop (empty without SpaceNet 7).
    notes : tuple of str
        Skipped datasets and tunables.
    seconds : float
        Wall time.
    fdr : float
        False-discovery share of the timelines' step model.
    """

    root: Path
    runs: tuple[DatasetRun, ...]
    base: DetectOptions
    default: Config
    tunables: tuple[Tunable, ...] = ()
    chosen: dict[str, Config] | None = None
    timeline: tuple[TimelineScore, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    fdr: float = STEP_FDR

    def reported(self, run: DatasetRun) -> Scored:
        """The figure quoted for a dataset: leave-one-out when run, else the default."""
        config = self.default if self.chosen is None else self.chosen[run.name]
        return run.configs[config]

    def ratio(self, run: DatasetRun) -> float | None:
        """Reported F1 / baseline F1 (None when the baseline's F1 is 0)."""
        b = run.baseline.f1
        return self.reported(run).f1 / b if b else None

    @property
    def macro_f1(self) -> float:
        """Mean of the reported pooled F1 over datasets."""
        return float(np.mean([self.reported(r).f1 for r in self.runs]))

    @property
    def macro_f1_default(self) -> float:
        """Mean of the default options' pooled F1 over datasets."""
        return float(np.mean([r.configs[self.default].f1 for r in self.runs]))

    @property
    def macro_f1_baseline(self) -> float:
        """Mean of the baseline's pooled F1 over datasets."""
        return float(np.mean([r.baseline.f1 for r in self.runs]))

    def as_dict(self) -> dict[str, Any]:
        """The JSON document (see :mod:`sitewatch.cli.bench_cmd`)."""
        datasets = {}
        for r in self.runs:
            rep = self.reported(r)
            ratio = self.ratio(r)
            doc: dict[str, Any] = {
                "pooled": rep.pooled(),
                "baseline": r.baseline.pooled(),
                "ratio": None if ratio is None else round(ratio, 4),
                "pixels": r.pixels,
                "detector": r.chain,
                "oracle_threshold": {
                    "f1": round(rep.oracle[0], 6),
                    "flagged_share": round(rep.oracle[1], 6),
                    "flag_all_f1": round(_flag_all_f1(rep.counts), 6),
                    "rule": "best single threshold on the pooled score, labels known",
                },
                r.dataset.entry_key: {
                    n: {**{k: round(v, 6) for k, v in c.metrics().items()}, "counts": c.as_dict()}
                    for n, c in rep.entries.items()
                },
                "pixel_size_m": r.dataset.pixel_size_m,
                "read_seconds": round(r.read_seconds, 3),
                "seconds": round(
                    r.read_seconds
                    + r.baseline.seconds
                    + sum(s.seconds for s in r.configs.values()),
                    3,
                ),
            }
            if self.chosen is not None:
                doc["chosen"] = dict(self.chosen[r.name])
                doc["default"] = r.configs[self.default].pooled()
                doc["f1_by_config"] = {
                    config_label(c): round(s.f1, 6) for c, s in r.configs.items()
                }
            datasets[r.name] = doc
        out: dict[str, Any] = {
            "datasets": datasets,
            "macro_f1": round(self.macro_f1, 6),
            "macro_f1_baseline": round(self.macro_f1_baseline, 6),
        }
        if self.chosen is not None:
            out["macro_f1_default"] = round(self.macro_f1_default, 6)
            out["leave_one_out"] = {
                "tunables": {t.name: list(t.values(self.base)) for t in self.tunables},
                "default": dict(self.default),
                "rule": "each dataset is scored with the configuration of best macro-F1 over "
                "the other datasets",
            }
        if self.timeline:
            pooled = TimelineScore.pooled(self.timeline)
            out["spacenet7_timeline"] = {
                **pooled.as_dict(details=False),
                "fdr": self.fdr,
                "crops": {c.name: c.as_dict() for c in self.timeline},
                "rules": {
                    "found": f">= {FOUND_SHARE:.0%} of the footprint flagged, flagged mask "
                    f"dilated by {TOLERANCE_PX} px",
                    "dated": f"first seen within {DATED_MONTHS} months of the labelled month",
                    "near": f"flagged area within {NEAR_M:g} m of a building new after the "
                    "first month",
                    "options": "default",
                },
            }
        out["options"] = self.base.as_dict()
        out["baseline_name"] = BASELINE_NAME
        out["root"] = str(self.root)
        out["skipped"] = list(self.notes)
        out["seconds"] = round(self.seconds, 3)
        return out


def _quiet(_: str) -> None:
    return None


def run_suite(
    root: str | Path,
    *,
    leave_one_out: bool = False,
    tunables: Sequence[str] | None = None,
    options: DetectOptions | None = None,
    timeline: bool = True,
    fdr: float = STEP_FDR,
    progress: Callable[[str], None] | None = None,
) -> SuiteResult:
    """Run the detector and the baseline on every dataset under ROOT.

    Parameters
    ----------
    root : str or Path
        Folder holding dataset folders named as in :data:`DATASETS`.
    leave_one_out : bool
        Run every configuration of the tunables' grid and report each dataset with the
        configuration chosen on the others (see the module docstring). Cost: one
        detector run per entry per configuration, plus the baseline once.
    tunables : sequence of str, optional
        Tunables to search (default: all of :data:`TUNABLES`); needs ``leave_one_out``.
    options : DetectOptions, optional
        The default options (default: the detector's).
    timeline : bool
        Also run the SpaceNet 7 timelines (default options).
    fdr : float
        False-discovery share of the timelines' step model (``timeline --fdr``).
    progress : callable, optional
        Called with one line per finished dataset.

    Returns
    -------
    SuiteResult

    Raises
    ------
    InputError
        ROOT without datasets, unknown tunable, or ``tunables`` without leave-one-out.
    DataError
        An incomplete or unreadable dataset.
    """
    t0 = time.perf_counter()
    say = progress or _quiet
    if tunables is not None and not leave_one_out:
        raise InputError("choosing tunables needs leave-one-out (--leave-one-out)")
    base = options or DetectOptions()
    datasets, notes = find_datasets(root)
    if base.method == "learned" and base.weights is None and len(datasets) < 2:
        raise InputError(
            "the learned method is scored leave-one-dataset-out, which needs at least two "
            f"datasets under {root} (found {datasets[0].name} only)"
        )
    used: list[Tunable] = []
    configs: list[Config] = [()]
    if leave_one_out:
        used, configs, more = search_grid(tunables, base)
        notes.extend(more)
    default: Config = tuple((t.name, float(getattr(base, t.name))) for t in used)
    runs: dict[Config | None, DetectOptions] = {None: BASELINE}
    runs.update({c: _options(base, c) for c in configs})
    say(
        f"{len(datasets)} datasets, {len(configs)} configuration(s) + baseline: "
        f"{', '.join(d.name for d in datasets)}"
    )
    with contextlib.ExitStack() as stack:
        folds: dict[str, Path] = {}
        if base.method == "learned" and base.weights is None:
            # never scored with a model that saw the dataset: one model per fold
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="sitewatch-learned-"))
            folds = fold_models(datasets, tmp, progress=say)
            notes.append(
                "learned: each dataset scored with a model trained on the other datasets "
                "(leave-one-dataset-out), not the shipped model"
            )

        def fold(o: DetectOptions, name: str) -> DetectOptions:
            return replace(o, weights=str(folds[name])) if name in folds else o

        results = tuple(
            _run_dataset(
                d, {k: (o if k is None else fold(o, d.name)) for k, o in runs.items()}, say
            )
            for d in datasets
        )
        scores: list[TimelineScore] = []
        if timeline:
            for d in datasets:
                if d.kind != "spacenet7":
                    continue
                for crop in d.entries:
                    scores.append(run_spacenet7_timeline(crop, options=fold(base, d.name), fdr=fdr))
                    say(f"spacenet7 timeline {crop.name}: {scores[-1].seconds:.1f} s")
    chosen = None
    if leave_one_out:
        f1 = {r.name: {c: s.f1 for c, s in r.configs.items()} for r in results}
        chosen = choose_leave_one_out(f1, default)
    return SuiteResult(
        Path(root).expanduser(),
        results,
        base,
        default,
        tuple(used),
        chosen,
        tuple(scores),
        tuple(notes),
        time.perf_counter() - t0,
        fdr,
    )


# ---------------------------------------------------------------------------------------
# Printing


def _flag_all_f1(counts: PixelCounts) -> float:
    """F1 of flagging every evaluated pixel."""
    positives = counts.tp + counts.fn
    return 2 * positives / (counts.total + positives) if counts.total else 0.0


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _object_lines(result: SuiteResult, w: int) -> list[str]:
    """The objects table: found objects, flagged regions on change, pieces per object."""
    lines = [
        "objects (8-connected; an object is found when a flagged pixel touches it, a region "
        "is on change when it touches an object; pieces: flagged regions per found object):",
        f"{'dataset':<{w}}{'objects':>8}{'found':>15}{'regions':>9}{'on change':>16}"
        f"{'pieces':>8}  | base:{'found':>10}{'regions':>9}{'on change':>10}{'pieces':>8}",
    ]
    for r in result.runs:
        o, b = result.reported(r).objects, r.baseline.objects
        lines.append(
            f"{r.name:<{w}}{o.labelled:>8,}{o.found:>7,}{_pct(o.found_share):>8}"
            f"{o.regions:>9,}{o.on_change:>8,}{_pct(o.on_change_share):>8}"
            f"{o.pieces_per_found:>8.2f}  |{b.found:>7,}{_pct(b.found_share):>8}"
            f"{b.regions:>9,}{_pct(b.on_change_share):>10}{b.pieces_per_found:>8.2f}"
        )
    return lines


def format_suite(result: SuiteResult) -> str:
    """The text table printed by ``sitewatch bench suite``."""
    loo = result.chosen is not None
    b = result.base
    what = (
        f"leave-one-dataset-out over {', '.join(t.name for t in result.tunables) or 'nothing'}"
        if loo
        else "default options"
    )
    lines = [
        f"sitewatch bench suite {result.root}: {len(result.runs)} datasets, {what} "
        f"(method {b.method}, rule {b.threshold_rule}, k {b.k:g}, smooth {b.smooth:g})"
    ]
    names = [r.name for r in result.runs]
    w = max(len("dataset"), len("macro"), *map(len, names)) + 2
    head = f"{'dataset':<{w}}{'pixels':>11}{'F1':>8}{'prec.':>8}{'recall':>8}{'AUC-PR':>8}"
    if loo:
        head += f"{'dflt F1':>9}"
    head += f"{'base F1':>9}{'ratio':>7}"
    if loo:
        head += "  chosen on the others"
    lines.append(head)
    for r in result.runs:
        rep = result.reported(r)
        c = rep.counts
        ratio = result.ratio(r)
        row = (
            f"{r.name:<{w}}{r.pixels:>11,}{c.f1:>8.4f}{c.precision:>8.4f}{c.recall:>8.4f}"
            f"{rep.auc_pr:>8.4f}"
        )
        if loo:
            row += f"{r.configs[result.default].f1:>9.4f}"
        row += f"{r.baseline.f1:>9.4f}" + (f"{ratio:>6.2f}x" if ratio is not None else f"{'-':>7}")
        if loo and result.chosen is not None:
            row += f"  {config_label(result.chosen[r.name])}"
        lines.append(row)
    lines.append("-" * len(head))
    macro = f"{'macro-F1':<{w}}{'':>11}{result.macro_f1:>8.4f}{'':>24}"
    if loo:
        macro += f"{result.macro_f1_default:>9.4f}"
    base_macro = result.macro_f1_baseline
    macro += f"{base_macro:>9.4f}"
    if base_macro:
        macro += f"{result.macro_f1 / base_macro:>6.2f}x"
    lines.append(macro)
    lines.append(f"baseline: {BASELINE_NAME}, same pixels and run")
    lines.append(
        "detector chosen by the default options: "
        + "; ".join(f"{r.name} {r.chain}" for r in result.runs if r.chain)
    )
    lines.append(
        "oracle threshold (best F1 of one threshold on the pooled score, labels known; F1 of "
        "flagging every pixel): "
        + "; ".join(
            f"{r.name} {result.reported(r).oracle[0]:.3f} at "
            f"{_pct(result.reported(r).oracle[1])} flagged, all "
            f"{_flag_all_f1(result.reported(r).counts):.3f}"
            for r in result.runs
        )
    )
    lines.extend(_object_lines(result, w))
    if loo:
        lines.append(
            "F1/prec./recall/AUC-PR: each dataset scored with the configuration of best "
            "macro-F1 over the other datasets; dflt F1: today's default options"
        )
        for t in result.tunables:
            grid = ", ".join(f"{v:g}" for v in t.values(result.base))
            lines.append(f"  {t.name} ({t.doc}): {grid}")
    if result.timeline:
        p = TimelineScore.pooled(result.timeline)
        lines.append("")
        lines.append(
            f"spacenet7 timeline (default options, fdr {result.fdr:g}, "
            f"{len(result.timeline)} crops, {p.seconds:.1f} s):"
        )
        for s in (*result.timeline, p):
            lines.append(
                f"  {s.name}: found {s.n_found}/{s.n_new} new buildings ({_pct(s.found_share)}), "
                f"dated within {DATED_MONTHS} months {s.n_dated}/{s.n_found} "
                f"({_pct(s.dated_share)}), flagged area within {NEAR_M:g} m of a new building "
                f"{_pct(s.near_share)} of {s.flagged_px} px"
                + (f"; grid {s.grid}" if s.grid else "")
            )
        lines.append(
            f"  targets: found >= 60 % (>= {FOUND_SHARE:.0%} of the footprint, "
            f"{TOLERANCE_PX} px tolerance), dated >= 60 %, near >= 50 %"
        )
    for n in result.notes:
        lines.append(f"note: {n}")
    lines.append(f"total {result.seconds:.1f} s")
    return "\n".join(lines)
