"""Labelled image pairs: find them, read them, and score the shipped detector on them.

The detector is always :func:`sitewatch.detect.run.detect_arrays`, called exactly as
``sitewatch detect`` calls it; it never sees the labels and gets the same options for
every pair. Its change mask gives precision, recall, F1 and IoU; its continuous score
gives AUC-PR (see :mod:`sitewatch.bench.metrics`).

Folder layouts found under a benchmark folder (searched recursively):

``im1`` / ``im2`` / ``gt``
    A folder holding three images with those names (PNG, BMP or TIFF, any case), as
    in SZTAKI AirChange. ``gt > 127`` is change. The pair is named after the folder
    (``Szada/2``).
``A/`` / ``B/`` / ``label/``
    Three sibling folders of same-named images (the LEVIR-CD and DSIFN-CD layout).
    Each label image is one pair, named after its file stem; images without a label
    are not evaluated.
sparse
    A folder with two rasters (ENVI, GeoTIFF, ...; image previews such as JPEG/PNG
    are ignored) plus ``change`` and ``unchanged`` label images (BMP/PNG/TIFF), as in
    the Taizhou/Nanjing Landsat pairs. The earlier raster (by the date in its file
    name or header) is the before image. Only pixels in either label mask are
    evaluated; the detector still runs on the whole image.

Georeferenced pairs are read through :mod:`sitewatch.sources.local` onto the before
image's grid and use its real pixel area. Pairs without a CRS are read as they are
(both images must be the same size) with a pixel area of ``pixel_size ** 2``, so the
detector's minimum mapping unit (m²) is counted at that nominal pixel size.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError

from sitewatch.bench.metrics import ObjectCounts, PixelCounts, average_precision
from sitewatch.detect import methods as _methods
from sitewatch.detect.options import AUTO
from sitewatch.detect.run import Detection, DetectOptions, detect_arrays
from sitewatch.errors import DataError, InputError
from sitewatch.sources.local import open_local, read_scene

__all__ = [
    "BenchResult",
    "EntryResult",
    "LabelledPair",
    "MethodResult",
    "PairSource",
    "bench_pairs",
    "check_methods",
    "detect_pair",
    "evaluate_pair",
    "find_pairs",
    "read_label_mask",
    "read_pair",
    "run_benchmark",
]

IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff")
"""Suffixes of the label and ``im1``/``A/`` style images (matched case-insensitively)."""

_RASTER_SUFFIXES = (".tif", ".tiff", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw", ".vrt")
_SIDECARS = (".hdr", ".aux.xml", ".xml", ".ovr", ".prj", ".tfw", ".txt", ".md", ".json")
_LANDSAT_ID = re.compile(r"L[CEMOT][1-9]\d{6}((?:19|20)\d{2})(\d{3})")  # LT5 PPPRRR YYYY DDD
_YMD = re.compile(r"(?<!\d)((?:19|20)\d{2})[-_]?(0[1-9]|1[0-2])[-_]?(0[1-9]|[12]\d|3[01])(?!\d)")
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
_DATE_TAGS = ("acquisition_date", "acquisition_time", "date_acquired", "sensing_time")


# ---------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class PairSource:
    """Where one labelled pair lives on disk.

    Attributes
    ----------
    name : str
        Unique name in the benchmark (folder path relative to the root, or file stem).
    before, after : Path
        Earlier and later image.
    truth : Path
        Change label image (``> 127`` = change).
    unchanged : Path or None
        Sparse layout only: label image of reference no-change pixels. Pixels in
        neither mask are not evaluated.
    """

    name: str
    before: Path
    after: Path
    truth: Path
    unchanged: Path | None = None

    @property
    def sparse(self) -> bool:
        """True when only labelled pixels are evaluated."""
        return self.unchanged is not None


@dataclass(frozen=True, eq=False)
class LabelledPair:
    """Two co-gridded images and their reference, ready for the detector.

    Attributes
    ----------
    name : str
    before, after : (B, H, W) float32 ndarray
    valid : (H, W) bool ndarray
        Pixels observed in both images (what the detector is told).
    truth : (H, W) bool ndarray
        Reference change.
    labelled : (H, W) bool ndarray or None
        Pixels to evaluate; None = every pixel.
    pixel_area_m2 : float
        Ground area of a pixel, for the minimum mapping unit.
    band_names : tuple of str

    Raises
    ------
    ValueError
        If shapes disagree.
    """

    name: str
    before: np.ndarray
    after: np.ndarray
    valid: np.ndarray
    truth: np.ndarray
    labelled: np.ndarray | None
    pixel_area_m2: float
    band_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.before.ndim != 3 or self.before.shape != self.after.shape:
            raise ValueError(f"before {self.before.shape} and after {self.after.shape} differ")
        hw = self.before.shape[1:]
        for what in ("valid", "truth", "labelled"):
            arr = getattr(self, what)
            if arr is not None and arr.shape != hw:
                raise ValueError(f"{what} shape {arr.shape} != image shape {hw}")
        if len(self.band_names) != self.before.shape[0]:
            raise ValueError(f"{len(self.band_names)} band names for {self.before.shape[0]} bands")
        if not self.pixel_area_m2 > 0:
            raise ValueError(f"pixel_area_m2 {self.pixel_area_m2} is not positive")


@dataclass(frozen=True)
class EntryResult:
    """Scores of one method on one pair (or city).

    Attributes
    ----------
    name : str
    counts : PixelCounts
        Confusion counts of the detector's mask over the evaluated pixels.
    auc_pr : float
        Average precision of the detector's score over the same pixels.
    seconds : float
        Time spent detecting and scoring (reading excluded).
    """

    name: str
    counts: PixelCounts
    auc_pr: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """The per-entry JSON record."""
        return {
            **_rounded(self.counts.metrics()),
            "auc_pr": round(self.auc_pr, 6),
            "counts": self.counts.as_dict(),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class MethodResult:
    """Scores of one method on every entry, and pooled over all of them.

    Attributes
    ----------
    method : str
    entries : tuple of EntryResult
    auc_pr : float
        Average precision of the concatenated raw scores of every evaluated pixel
        (meaningful only when the method's scores share a scale across entries).
    seconds : float
        Time spent detecting and scoring with this method (reading excluded).
    """

    method: str
    entries: tuple[EntryResult, ...]
    auc_pr: float
    seconds: float

    @property
    def counts(self) -> PixelCounts:
        """Confusion counts summed over the entries (pooled over all pixels)."""
        return sum((e.counts for e in self.entries), PixelCounts())

    @property
    def auc_pr_mean(self) -> float:
        """Mean of per-entry AUC-PR over entries whose reference holds some change."""
        values = [e.auc_pr for e in self.entries if e.counts.tp + e.counts.fn > 0]
        return float(np.mean(values)) if values else 0.0

    def as_dict(self, entry_key: str) -> dict[str, Any]:
        """The issue's JSON shape: method, pooled, entries, seconds (+ auc_pr_mean)."""
        c = self.counts
        return {
            "method": self.method,
            "pooled": {
                **_rounded(c.metrics()),
                "auc_pr": round(self.auc_pr, 6),
                "counts": c.as_dict(),
            },
            "auc_pr_mean": round(self.auc_pr_mean, 6),
            entry_key: {e.name: e.as_dict() for e in self.entries},
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class BenchResult:
    """A benchmark run: one :class:`MethodResult` per method, plus what was run.

    Attributes
    ----------
    dataset : str
        ``"oscd"`` or ``"pairs"``.
    entry_key : {"cities", "pairs"}
        JSON key of the per-entry records.
    methods : tuple of MethodResult
    params : dict
        Root folder and detector options (the same for every entry).
    split : str or None
        OSCD split.
    read_seconds : float
        Time spent reading images and labels (once, whatever the method count).
    seconds : float
        Wall time of the whole run.
    """

    dataset: str
    entry_key: Literal["cities", "pairs"]
    methods: tuple[MethodResult, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    split: str | None = None
    read_seconds: float = 0.0
    seconds: float = 0.0
    baseline: MethodResult | None = None

    def f1_ratio(self, m: MethodResult) -> float | None:
        """F1 of ``m`` divided by the baseline's F1 (None without a baseline)."""
        if self.baseline is None or self.baseline.counts.f1 == 0:
            return None
        return m.counts.f1 / self.baseline.counts.f1

    def as_dict(self, *, grouped: bool | None = None) -> dict[str, Any]:
        """JSON-ready document.

        Parameters
        ----------
        grouped : bool, optional
            False: the issue's shape ``{"method", "pooled", "cities"|"pairs",
            "seconds", ...}`` for the single method run. True: ``{"methods": {name:
            <that shape>}, "seconds", ...}``, where each method's ``seconds`` is its own
            detection time and the top-level ``seconds`` the wall time including the
            shared reads. Default: grouped when more than one method ran.
        """
        if grouped is None:
            grouped = len(self.methods) > 1
        head: dict[str, Any] = {"dataset": self.dataset}
        if self.split is not None:
            head["split"] = self.split
        head["params"] = dict(self.params)
        if self.baseline is not None:
            head["baseline"] = {
                "name": BASELINE_NAME,
                "pooled": self.baseline.as_dict(self.entry_key)["pooled"],
                "seconds": round(self.baseline.seconds, 3),
            }

        def one(m: MethodResult) -> dict[str, Any]:
            doc = m.as_dict(self.entry_key)
            ratio = self.f1_ratio(m)
            if ratio is not None:
                doc["f1_vs_baseline"] = round(ratio, 3)
            return doc

        if not grouped:
            if len(self.methods) != 1:
                raise ValueError(f"{len(self.methods)} methods ran; use grouped=True")
            return {**one(self.methods[0]), **head, "seconds": round(self.seconds, 3)}
        return {
            **head,
            "methods": {m.method: one(m) for m in self.methods},
            "seconds": round(self.seconds, 3),
        }


def _rounded(d: Mapping[str, float]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in d.items()}


# ---------------------------------------------------------------------------------------
# Running the detector

BASELINE = DetectOptions(method="cva", threshold_rule="otsu", smooth=0.0, coregister=False)
"""The textbook unsupervised baseline: CVA on all bands + Otsu, no co-registration."""
BASELINE_NAME = "CVA (all bands) + Otsu, no smoothing, no co-registration"
_BASELINE_KEY = "\x00baseline"


def check_methods(methods: Sequence[str] | None) -> tuple[str, ...]:
    """Validate method names against the detector's current ``SCORERS``.

    None means the detector's default method.

    Raises
    ------
    InputError
        If a name is unknown or none is given.
    """
    if methods is None:
        return (DetectOptions().method,)
    names = tuple(dict.fromkeys(methods))
    known = [AUTO, *_methods.SCORERS]
    bad = [m for m in names if m not in known]
    if bad or not names:
        raise InputError(
            f"unknown method {', '.join(map(repr, bad)) or '(none)'}; "
            f"choose from {', '.join(known)}"
        )
    return names


def detect_pair(pair: LabelledPair, options: DetectOptions) -> Detection:
    """Run the detector on one labelled pair (its grid's pixel area and band names).

    Raises
    ------
    DataError
        If the detector rejects the pair.
    """
    try:
        return detect_arrays(
            pair.before,
            pair.after,
            pair.valid,
            band_names=pair.band_names,
            pixel_area_m2=pair.pixel_area_m2,
            options=options,
        )
    except ValueError as err:
        raise DataError(f"method {options.method} failed on {pair.name}: {err}") from err


def evaluate_pair(
    pair: LabelledPair, options: DetectOptions
) -> tuple[PixelCounts, np.ndarray, ObjectCounts]:
    """Run the detector on one pair and count its mask against the reference.

    Parameters
    ----------
    pair : LabelledPair
    options : DetectOptions

    Returns
    -------
    counts : PixelCounts
        Over the evaluated pixels (every pixel, or the labelled ones); unobserved
        pixels count as predicted no-change.
    scores : (N,) float32 ndarray
        The detector's score on the same pixels, in the same order as
        ``pair.truth`` (ravelled, or ``pair.truth[pair.labelled]``); unobserved pixels
        are ``-inf`` so they rank last.
    objects : ObjectCounts
        The mask's regions against the reference's objects.

    Raises
    ------
    DataError
        If the detector rejects the pair.
    """
    det = detect_pair(pair, options)
    pred = np.asarray(det.mask, dtype=bool) & pair.valid
    # Unobserved pixels are predicted no-change and rank last (lowest score).
    score = np.where(pair.valid, np.asarray(det.score, dtype=np.float32), -np.inf)
    counts = PixelCounts.from_masks(pred, pair.truth, where=pair.labelled)
    evaluated = score.ravel() if pair.labelled is None else score[pair.labelled]
    return counts, evaluated, ObjectCounts.from_masks(pred, pair.truth, where=pair.labelled)


def run_benchmark(
    pairs: Iterable[LabelledPair],
    *,
    methods: Sequence[str] | None = None,
    min_area_m2: float | None = None,
    options: DetectOptions | None = None,
    baseline: DetectOptions | None = None,
    dataset: str,
    entry_key: Literal["cities", "pairs"],
    split: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> BenchResult:
    """Run every method on every pair (each pair read once) and score them.

    Parameters
    ----------
    pairs : iterable of LabelledPair
        Read lazily, one at a time, so a generator keeps memory to one pair.
    methods : sequence of str, optional
        Names from :data:`sitewatch.detect.methods.SCORERS`; default the detector's
        default method.
    min_area_m2 : float, optional
        Minimum mapping unit for every pair (None = the detector's default).
    options : DetectOptions, optional
        Template of the detector options (threshold rule, smoothing, co-registration
        ...); its ``method`` is replaced by each name in ``methods``.
    baseline : DetectOptions, optional
        A reference configuration run on the same pixels in the same process (the
        textbook CVA + Otsu, :data:`BASELINE`); its pooled scores and each method's
        F1 ratio against it are reported.
    dataset, entry_key, split, params
        Recorded in the result.

    Returns
    -------
    BenchResult

    Raises
    ------
    InputError
        Unknown method or negative ``min_area_m2``.
    DataError
        No pairs, duplicate names, or the detector rejects a pair.
    """
    t0 = time.perf_counter()
    names = check_methods(methods)
    try:
        template = options or DetectOptions()
        if min_area_m2 is not None:
            template = replace(template, min_area_m2=min_area_m2)
        per_method = {m: replace(template, method=m) for m in names}
        if baseline is not None:
            per_method[_BASELINE_KEY] = baseline
    except ValueError as err:
        raise InputError(str(err)) from err
    runs = list(per_method)  # the methods, then the baseline if any
    entries: dict[str, list[EntryResult]] = {m: [] for m in runs}
    scores: dict[str, list[np.ndarray]] = {m: [] for m in runs}
    detect_s = dict.fromkeys(runs, 0.0)
    truths: list[np.ndarray] = []
    seen: set[str] = set()
    read_s = 0.0
    it = iter(pairs)
    while True:
        t = time.perf_counter()
        pair = next(it, None)
        read_s += time.perf_counter() - t
        if pair is None:
            break
        if pair.name in seen:
            raise DataError(f"two pairs are named {pair.name!r}; rename one")
        seen.add(pair.name)
        truths.append(pair.truth.ravel() if pair.labelled is None else pair.truth[pair.labelled])
        for m in runs:
            t = time.perf_counter()
            counts, evaluated, _ = evaluate_pair(pair, per_method[m])
            ap = average_precision(evaluated, truths[-1])
            dt_s = time.perf_counter() - t
            entries[m].append(EntryResult(pair.name, counts, ap, dt_s))
            scores[m].append(evaluated)
            detect_s[m] += dt_s
    if not seen:
        raise DataError(f"no {entry_key} to evaluate")
    truth_all = np.concatenate(truths)
    results = []
    base_result = None
    for m in runs:
        t = time.perf_counter()
        pooled_ap = average_precision(np.concatenate(scores[m]), truth_all)
        scores[m].clear()
        seconds = detect_s[m] + time.perf_counter() - t
        if m == _BASELINE_KEY:
            base_result = MethodResult(BASELINE.method, tuple(entries[m]), pooled_ap, seconds)
        else:
            results.append(MethodResult(m, tuple(entries[m]), pooled_ap, seconds))
    return BenchResult(
        dataset,
        entry_key,
        tuple(results),
        {
            **(params or {}),
            "detector": {k: v for k, v in template.as_dict().items() if k != "method"},
        },
        split,
        read_s,
        time.perf_counter() - t0,
        baseline=base_result,
    )


# ---------------------------------------------------------------------------------------
# Reading


def _open(path: Path) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioIOError as err:
        reason = str(err).splitlines()[0] if str(err) else "unreadable"
        raise DataError(f"{path} is not a readable image ({reason})") from err


def _read_plain(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of an image as they are: ((B, H, W) float32 without alpha, valid mask)."""
    with _open(path) as ds:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                data = ds.read()
                interp = list(ds.colorinterp)
                nodata = list(ds.nodatavals)
                if ds.count == 1 and interp[0] == ColorInterp.palette:
                    cmap = ds.colormap(1)
                    lut = np.zeros((max(256, max(cmap) + 1), 4), dtype=np.uint8)
                    for k, rgba in cmap.items():
                        lut[k] = rgba
                    data = np.moveaxis(lut[data[0]], -1, 0)
                    interp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
                    interp.append(ColorInterp.alpha)
                    nodata = [None] * 4
        except RasterioError as err:
            raise DataError(f"cannot read {path}: {err}") from err
    valid = np.ones(data.shape[1:], dtype=bool)
    keep = []
    for i, (ci, nd) in enumerate(zip(interp, nodata, strict=True)):
        if ci == ColorInterp.alpha:
            valid &= data[i] > 0
            continue
        if nd is not None and not math.isnan(nd):
            valid &= data[i] != nd
        keep.append(i)
    out = data[keep].astype(np.float32)
    valid &= np.isfinite(out).all(axis=0)
    return out, valid


def read_label_mask(path: str | Path) -> np.ndarray:
    """Read a label image as a bool change mask: grey level (mean of colour bands) > 127.

    Palette images are expanded through their colour table; alpha bands are ignored.

    Raises
    ------
    DataError
        If the file is missing or not a readable image.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"label {p} does not exist")
    data, _ = _read_plain(p)
    if data.shape[0] == 0:
        raise DataError(f"label {p} holds only an alpha band")
    return data.mean(axis=0) > 127


def _georeferenced(path: Path) -> bool:
    with _open(path) as ds:
        return ds.crs is not None


def _read_images(
    before: Path, after: Path, *, pixel_size: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...], float]:
    geo_b, geo_a = _georeferenced(before), _georeferenced(after)
    if geo_b != geo_a:
        plain = after if geo_b else before
        raise DataError(f"{plain} has no CRS but the other image of its pair has one")
    if geo_b:
        src_b, src_a = open_local(before), open_local(after)
        sb = read_scene(src_b, src_b.grid)
        sa = read_scene(src_a, src_b.grid)
        if sa.count != sb.count:
            raise DataError(f"{before} has {sb.count} bands but {after} has {sa.count}")
        return sb.data, sa.data, sb.valid & sa.valid, sb.band_names, src_b.grid.pixel_area_m2
    b, vb = _read_plain(before)
    a, va = _read_plain(after)
    if b.shape != a.shape:
        raise DataError(
            f"{before} is {b.shape[2]}x{b.shape[1]} px with {b.shape[0]} bands but {after} is "
            f"{a.shape[2]}x{a.shape[1]} px with {a.shape[0]}; images without CRS must match"
        )
    names = tuple(f"b{i + 1}" for i in range(b.shape[0]))
    return b, a, vb & va, names, float(pixel_size) ** 2


def _check_shape(mask: np.ndarray, path: Path, shape: tuple[int, ...], image: Path) -> None:
    if mask.shape != shape:
        raise DataError(
            f"label {path} is {mask.shape[1]}x{mask.shape[0]} px but {image} is "
            f"{shape[1]}x{shape[0]}; labels must be on the image's pixel grid"
        )


def read_pair(source: PairSource, *, pixel_size: float = 1.0) -> LabelledPair:
    """Read a pair's images and labels.

    Parameters
    ----------
    source : PairSource
    pixel_size : float
        Nominal ground pixel size (m) of images without CRS.

    Returns
    -------
    LabelledPair

    Raises
    ------
    DataError
        Unreadable images, band or size mismatch, a label off the image grid, or
        overlapping sparse masks.
    """
    before, after, valid, names, area = _read_images(
        source.before, source.after, pixel_size=pixel_size
    )
    shape = before.shape[1:]
    truth = read_label_mask(source.truth)
    _check_shape(truth, source.truth, shape, source.before)
    labelled = None
    if source.unchanged is not None:
        negative = read_label_mask(source.unchanged)
        _check_shape(negative, source.unchanged, shape, source.before)
        both = int(np.count_nonzero(truth & negative))
        if both:
            raise DataError(
                f"{both} pixels are in both {source.truth.name} and {source.unchanged.name} "
                f"in {source.truth.parent}; a pixel is either changed or unchanged"
            )
        labelled = truth | negative
    return LabelledPair(source.name, before, after, valid, truth, labelled, area, names)


# ---------------------------------------------------------------------------------------
# Finding pairs


def _images_by_stem(folder: Path, filenames: Iterable[str]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for f in sorted(filenames):
        p = Path(f)
        if not f.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES:
            out.setdefault(p.stem.lower(), []).append(folder / f)
    return out


def _one(found: dict[str, list[Path]], stem: str, folder: Path) -> Path | None:
    paths = found.get(stem, [])
    if len(paths) > 1:
        raise DataError(f"{folder} holds {len(paths)} {stem!r} images; keep one")
    return paths[0] if paths else None


def _name(prefix: str, leaf: str) -> str:
    return f"{prefix}/{leaf}" if prefix else leaf


def _im_pair(here: Path, filenames: list[str], name: str) -> PairSource | None:
    found = _images_by_stem(here, filenames)
    im1, im2, gt = (_one(found, k, here) for k in ("im1", "im2", "gt"))
    if im1 is None and im2 is None and gt is None:
        return None
    if im1 is None or im2 is None or gt is None:
        have = [k for k, v in (("im1", im1), ("im2", im2), ("gt", gt)) if v is not None]
        raise DataError(
            f"{here} holds {' and '.join(have)} but not all of im1, im2 and gt; "
            "a pair folder needs all three images"
        )
    return PairSource(name, im1, im2, gt)


def _ab_pairs(here: Path, subdirs: Mapping[str, str], prefix: str) -> list[PairSource]:
    folders = {k: here / subdirs[k] for k in ("a", "b", "label")}
    listing = {k: _images_by_stem(f, os.listdir(f)) for k, f in folders.items()}
    out = []
    for stem, labels in listing["label"].items():
        if len(labels) > 1:
            raise DataError(f"{folders['label']} holds {len(labels)} {stem!r} images; keep one")
        a = _one(listing["a"], stem, folders["a"])
        b = _one(listing["b"], stem, folders["b"])
        if a is None or b is None:
            where = folders["a"] if a is None else folders["b"]
            raise DataError(f"label {labels[0]} has no image of the same name in {where}")
        out.append(PairSource(_name(prefix, labels[0].stem), a, b, labels[0]))
    return out


def _is_raster(name: str, lower_names: set[str]) -> bool:
    low = name.lower()
    if any(low.endswith(s) for s in _SIDECARS):
        return False
    stem, suffix = os.path.splitext(low)
    if suffix in _RASTER_SUFFIXES:
        return True
    return f"{low}.hdr" in lower_names or (not suffix and f"{stem}.hdr" in lower_names)


def _date_of(text: str) -> dt.date | None:
    m = _LANDSAT_ID.search(text)
    if m and 1 <= int(m.group(2)) <= 366:
        return dt.date(int(m.group(1)), 1, 1) + dt.timedelta(days=int(m.group(2)) - 1)
    m = _YMD.search(text)
    if m:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    m = _YEAR.search(text)
    return dt.date(int(m.group(1)), 1, 1) if m else None


def _acquired(path: Path) -> dt.date | None:
    """Acquisition date from the file name, else from a date tag in the header."""
    found = _date_of(path.name)
    if found is not None:
        return found
    with _open(path) as ds:
        tags = {**ds.tags(), **ds.tags(ns="ENVI")}
    for key, value in tags.items():
        if key.lower().replace(" ", "_") in _DATE_TAGS:
            m = _YMD.search(value)
            if m:
                return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    return None


def _sparse_pair(here: Path, filenames: list[str], name: str) -> PairSource | None:
    found = _images_by_stem(here, filenames)
    change, unchanged = _one(found, "change", here), _one(found, "unchanged", here)
    if change is None or unchanged is None:
        return None
    lower = {f.lower() for f in filenames}
    labels = {change.name, unchanged.name}
    rasters = [
        here / f
        for f in sorted(filenames)
        if f not in labels and not f.startswith(".") and _is_raster(f, lower)
    ]
    if len(rasters) != 2:
        raise DataError(
            f"{here} holds change/unchanged labels and {len(rasters)} rasters "
            f"({', '.join(p.name for p in rasters) or 'none'}); a sparse pair needs exactly two"
        )
    dated = [(_acquired(p), p) for p in rasters]
    (d0, p0), (d1, p1) = dated
    if d0 is None or d1 is None or d0 == d1:
        raise DataError(
            f"cannot tell which of {p0.name} and {p1.name} in {here} is earlier; put the "
            "acquisition date (YYYYMMDD or year) in the file names"
        )
    before, after = (p0, p1) if d0 < d1 else (p1, p0)
    return PairSource(name, before, after, change, unchanged)


def find_pairs(folder: str | Path) -> list[PairSource]:
    """Find every labelled pair under a folder (see the module docstring for layouts).

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    list of PairSource
        Sorted by name.

    Raises
    ------
    DataError
        If the folder is missing or holds no pair, a pair is incomplete, or two pairs
        share a name.
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise DataError(f"{root} does not exist; give the folder that holds the pairs")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; give the folder that holds the pairs")
    pairs: list[PairSource] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        rel = here.relative_to(root).as_posix()
        prefix = "" if rel == "." else rel
        name = prefix or root.name
        for make in (_im_pair, _sparse_pair):
            found = make(here, filenames, name)
            if found is not None:
                pairs.append(found)
        subdirs = {d.lower(): d for d in dirnames}
        if {"a", "b", "label"} <= subdirs.keys():
            pairs.extend(_ab_pairs(here, subdirs, prefix))
            dirnames[:] = [d for d in dirnames if d.lower() not in {"a", "b", "label"}]
    if not pairs:
        raise DataError(
            f"no labelled pairs under {root}; expected folders holding im1/im2/gt images, "
            "A/ B/ label/ folders, or two rasters with change and unchanged masks"
        )
    names = [p.name for p in pairs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"several pairs under {root} are named {', '.join(dupes)}; rename them")
    return sorted(pairs, key=lambda p: p.name)


def _read_all(sources: Sequence[PairSource], pixel_size: float) -> Iterator[LabelledPair]:
    for s in sources:
        yield read_pair(s, pixel_size=pixel_size)


def bench_pairs(
    folder: str | Path,
    *,
    methods: Sequence[str] | None = None,
    min_area_m2: float | None = None,
    pixel_size: float = 1.0,
    options: DetectOptions | None = None,
    baseline: DetectOptions | None = None,
) -> BenchResult:
    """Score the detector on every labelled pair under a folder.

    Parameters
    ----------
    folder : str or Path
        Searched recursively for the layouts of the module docstring.
    methods : sequence of str, optional
        Names from :data:`sitewatch.detect.methods.SCORERS`; default the detector's.
    min_area_m2 : float, optional
        Minimum mapping unit (None = the detector's default, ``max(50 m², 5 px)``).
    options : DetectOptions, optional
        Detector options template (see :func:`run_benchmark`).
    pixel_size : float
        Nominal pixel size (m) of images without CRS; the minimum mapping unit is in m²
        at that size (the default 1.0 makes it a pixel count). Georeferenced pairs use
        their real pixel area.

    Returns
    -------
    BenchResult
        With ``entry_key="pairs"``.

    Raises
    ------
    DataError
        Missing folder, no pairs, unreadable or mismatched images and labels.
    InputError
        Unknown method or bad option.
    """
    if not pixel_size > 0:
        raise InputError(f"pixel size {pixel_size} must be a positive number of metres")
    names = check_methods(methods)
    sources = find_pairs(folder)
    return run_benchmark(
        _read_all(sources, pixel_size),
        methods=names,
        min_area_m2=min_area_m2,
        options=options,
        baseline=baseline,
        dataset="pairs",
        entry_key="pairs",
        params={"root": str(Path(folder).expanduser()), "pixel_size_m": pixel_size},
    )
