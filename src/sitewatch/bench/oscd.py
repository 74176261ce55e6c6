"""The OSCD benchmark (Onera Satellite Change Detection, Sentinel-2, 13 bands).

Protocol
--------
- Every city of the split list (``Images/train.txt`` or ``test.txt``), every pixel.
- All 13 bands of ``imgs_1`` and ``imgs_2`` are resampled (bilinear) onto the 10 m
  B02 grid of ``imgs_1``; in some cities ``imgs_2`` is a few pixels smaller and is
  reprojected onto that grid using the geotransforms.
- Labels: ``<city>-cm.tif`` (1 = no change, 2 = change) or, when only ``cm.png``
  exists, grey level > 127. They must be on the ``imgs_1`` 10 m grid.
- The detector never sees the labels and gets the same options for every city. It is
  told the pixels observed in both dates; the others count as predicted no-change
  (and rank last for AUC-PR), but still count.

Labels are looked for only under ROOT (``... - Train Labels`` or ``... - Test
Labels``); a split whose labels are not there is an error, never searched elsewhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from sitewatch.bench.pairs import (
    BenchResult,
    LabelledPair,
    check_methods,
    read_label_mask,
    run_benchmark,
)
from sitewatch.detect.run import DetectOptions
from sitewatch.errors import DataError, InputError
from sitewatch.sources.local import S2_BANDS, open_local, read_scene

__all__ = ["IMAGES_DIR", "LABELS_DIRS", "OscdCity", "bench_oscd", "oscd_cities", "read_city"]

IMAGES_DIR = "Onera Satellite Change Detection dataset - Images"
LABELS_DIRS = {
    "train": "Onera Satellite Change Detection dataset - Train Labels",
    "test": "Onera Satellite Change Detection dataset - Test Labels",
}


@dataclass(frozen=True)
class OscdCity:
    """Files of one OSCD city.

    Attributes
    ----------
    name : str
    imgs_1, imgs_2 : Path
        Band folders of the first and second date.
    label : Path
        ``<city>-cm.tif`` or ``cm.png``.
    """

    name: str
    imgs_1: Path
    imgs_2: Path
    label: Path


def _split_names(images: Path, split: str) -> list[str]:
    listing = images / f"{split}.txt"
    if not listing.is_file():
        raise DataError(f"OSCD split list {listing} is missing; it comes with the OSCD images")
    text = listing.read_text(encoding="utf-8", errors="replace")
    names = [n.strip() for n in text.replace("\n", ",").split(",") if n.strip()]
    if not names:
        raise DataError(f"OSCD split list {listing} names no city")
    return names


def oscd_cities(root: str | Path, *, split: str = "train") -> list[OscdCity]:
    """Check an OSCD tree and list the cities of a split (sorted by name).

    Parameters
    ----------
    root : str or Path
        Folder holding ``Onera Satellite Change Detection dataset - Images`` and the
        split's labels folder (``... - Train Labels`` / ``... - Test Labels``).
    split : {"train", "test"}

    Returns
    -------
    list of OscdCity

    Raises
    ------
    DataError
        If ROOT, the images, the split list, the split's labels folder, or any city's
        images or label are missing.
    InputError
        If ``split`` is unknown.
    """
    if split not in LABELS_DIRS:
        raise InputError(f"unknown OSCD split {split!r}; choose from {', '.join(LABELS_DIRS)}")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"OSCD root {base} does not exist; give the folder holding {IMAGES_DIR!r}")
    if not (base / IMAGES_DIR).is_dir() and base.name == IMAGES_DIR:
        base = base.parent
    images = base / IMAGES_DIR
    if not images.is_dir():
        raise DataError(f"{base} holds no {IMAGES_DIR!r} folder; give the OSCD root folder")
    labels = base / LABELS_DIRS[split]
    if not labels.is_dir():
        raise DataError(
            f"no OSCD {split} labels: {labels} does not exist; put the {split}-label folder "
            f"of the OSCD release in {base}"
            + ("" if split == "train" else " (test labels are distributed separately)")
        )
    cities = []
    problems = []
    for name in sorted(_split_names(images, split)):
        cm = labels / name / "cm"
        label = next((p for p in (cm / f"{name}-cm.tif", cm / "cm.png") if p.is_file()), None)
        folders = [images / name / "imgs_1", images / name / "imgs_2"]
        missing = [str(f.relative_to(base)) for f in folders if not f.is_dir()]
        if label is None:
            missing.append(f"{(cm / f'{name}-cm.tif').relative_to(base)} (or cm.png)")
        if missing or label is None:
            problems.extend(missing)
            continue
        cities.append(OscdCity(name, folders[0], folders[1], label))
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise DataError(
            f"OSCD {split} split is incomplete under {base}: missing {', '.join(problems[:3])}"
            f"{more}; restore the OSCD release layout"
        )
    return cities


def _read_cm_tif(path: Path) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                cm = ds.read(1)
    except RasterioError as err:
        raise DataError(f"cannot read OSCD label {path}: {err}") from err
    values = np.unique(cm)
    if not set(values.tolist()) <= {1, 2}:
        raise DataError(
            f"OSCD label {path} holds values {values[:8].tolist()}; expected 1 = no change, "
            "2 = change"
        )
    return cm == 2


def read_city(city: OscdCity) -> LabelledPair:
    """Read a city's 13 bands of both dates on the imgs_1 10 m grid, and its label.

    Raises
    ------
    DataError
        Unreadable or missing bands, or a label whose shape is not the grid's.
    """
    s1 = open_local(city.imgs_1)
    s2 = open_local(city.imgs_2)
    grid = s1.grid
    scene1 = read_scene(s1, grid, bands=S2_BANDS)
    scene2 = read_scene(s2, grid, bands=S2_BANDS)
    if city.label.suffix.lower() == ".tif":
        truth = _read_cm_tif(city.label)
    else:
        truth = read_label_mask(city.label)
    if truth.shape != grid.shape:
        raise DataError(
            f"OSCD label {city.label} is {truth.shape[1]}x{truth.shape[0]} px but the imgs_1 "
            f"10 m grid of {city.name} is {grid.width}x{grid.height}; use the label of that city"
        )
    return LabelledPair(
        city.name,
        scene1.data,
        scene2.data,
        scene1.valid & scene2.valid,
        truth,
        None,
        grid.pixel_area_m2,
        scene1.band_names,
    )


def _read_all(cities: Sequence[OscdCity]) -> Iterator[LabelledPair]:
    for c in cities:
        yield read_city(c)


def bench_oscd(
    root: str | Path,
    *,
    split: str = "train",
    methods: Sequence[str] | None = None,
    min_area_m2: float | None = None,
    options: DetectOptions | None = None,
    baseline: DetectOptions | None = None,
) -> BenchResult:
    """Score the detector on every city of an OSCD split (see the module protocol).

    Parameters
    ----------
    root : str or Path
        OSCD root folder.
    split : {"train", "test"}
    methods : sequence of str, optional
        Names from :data:`sitewatch.detect.methods.SCORERS`; default the detector's.
        Each city is read once whatever the number of methods.
    min_area_m2 : float, optional
        Minimum mapping unit (None = the detector's default).
    options : DetectOptions, optional
        Detector options template (threshold rule, smoothing, co-registration ...).
    baseline : DetectOptions, optional
        Reference configuration run on the same pixels (see
        :func:`~sitewatch.bench.pairs.run_benchmark`).

    Returns
    -------
    BenchResult
        With ``entry_key="cities"``.

    Raises
    ------
    DataError
        Missing or incomplete data (checked for every city before any is run).
    InputError
        Unknown split or method.
    """
    names = check_methods(methods)
    cities = oscd_cities(root, split=split)
    return run_benchmark(
        _read_all(cities),
        methods=names,
        min_area_m2=min_area_m2,
        options=options,
        baseline=baseline,
        dataset="oscd",
        entry_key="cities",
        split=split,
        params={"root": str(Path(root).expanduser()), "grid": "imgs_1 B02 (10 m)"},
    )
