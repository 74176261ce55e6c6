"""Change through time: when a region first appeared, and whether it stayed.

Construction is abrupt and persistent; clouds the mask missed, crops, snow and parked
ships are not. :func:`track_changes` decides with one of two models:

* **step** (series of at least :data:`~sitewatch.detect.steps.MIN_DATES` dates): every
  pixel is tested for one lasting step at every split of the series, with at least
  :data:`~sitewatch.detect.steps.MIN_AFTER` clear dates after it, and the step size a
  pixel must reach is the one time-shuffled copies of the series seldom reach
  (:mod:`sitewatch.detect.steps`). Every clear date is evidence, so a building too
  faint to stand out of one pair of monthly mosaics stands out of twenty. Flagged
  pixels are cut into one region per peak, outlined at half of it, and a region that
  is an edge moved by a pixel is dropped (:func:`_step_regions`).
* **pairs** (shorter series, or ``model="pairs"``): every date is compared with the
  first (the baseline) by the pair detector.

The flagged pixels are united into regions, and each region is followed through the
series:

* **first seen**: the first date on which at least a minimum mapping unit, and a
  quarter of the region's largest flagged extent, is flagged;
* **last clear before**: the last date before that on which the region was observed
  (at least half its pixels clear) and not flagged, so the change happened between
  the two;
* **persistence**: of the dates after it was first seen on which the region was
  observed, the share on which it is still flagged;
* **growth**: flagged area on the last date it was seen, minus on the first.

A region whose persistence is below ``min_persistence`` is *transient* and dropped
(counted); one first seen on the last observed date is *unconfirmed* (kept, flagged).
Under the step model a lasting region whose outline gained no edges is *flat* and dropped
(counted, listed with its dates): its new level stands out from its surroundings no more
than the old one did, as after clearing, grading, a harvest or a demolition, where a new
roof adds an outline (:func:`edge_gain`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from sitewatch.detect.cleanup import label_regions, remove_small_regions
from sitewatch.detect.options import STEP_FDR, TIMELINE_MODELS
from sitewatch.detect.run import DetectOptions, align_after, detect_arrays
from sitewatch.detect.steps import (
    DISPLACED,
    MIN_AFTER,
    MIN_DATES,
    displacement_ratio,
    prepare_series,
    step_scores,
    threshold_steps,
)
from sitewatch.errors import InputError

__all__ = [
    "DROPPED",
    "TIMELINE_MODELS",
    "RegionTrack",
    "Timeline",
    "edge_gain",
    "time_steps",
    "track_changes",
]

DROPPED = frozenset({"transient", "flat"})
"""Statuses of the regions a timeline lists but does not keep."""

OBSERVED_SHARE = 0.5
"""A region is observed on a date when at least this share of its pixels is clear."""
SEEN_SHARE = 0.25
"""A region is seen on a date when the flagged part is at least this share of the
largest flagged part on any date (and at least a minimum mapping unit), so a speck
next to a later change does not date it early."""


def time_steps(start: str, end: str, every: str) -> list[tuple[str, str]]:
    """Split ``[start, end]`` into consecutive windows of ``every`` (``1M``, ``3M``, ``1Y``).

    Examples
    --------
    >>> time_steps("2024-01-01", "2024-06-30", "3M")
    [('2024-01-01', '2024-03-31'), ('2024-04-01', '2024-06-30')]
    >>> time_steps("2020-01-15", "2021-12-31", "1Y")
    [('2020-01-15', '2021-01-14'), ('2021-01-15', '2021-12-31')]
    """
    text = every.strip().upper()
    if len(text) < 2 or not text[:-1].isdigit() or text[-1] not in "MY" or int(text[:-1]) < 1:
        raise InputError(f"--every {every!r} is not like 1M, 3M or 1Y (months or years)")
    months = int(text[:-1]) * (12 if text[-1] == "Y" else 1)
    a, b = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    if b < a:
        raise InputError(f"the period {start}/{end} ends before it starts")
    out = []
    cur = a
    while cur <= b:
        y, m = divmod(cur.month - 1 + months, 12)
        year, month = cur.year + y, m + 1
        nxt = dt.date(year, month, min(cur.day, calendar.monthrange(year, month)[1]))
        last = min(b, nxt - dt.timedelta(days=1))
        out.append((cur.isoformat(), last.isoformat()))
        cur = nxt
    if len(out) > 240:
        raise InputError(f"{len(out)} steps of {every} is too many; use a longer --every")
    return out


@dataclass(frozen=True)
class RegionTrack:
    """One change region followed through the series.

    Attributes
    ----------
    label : int
        Label in :attr:`Timeline.labels`.
    first_seen, last_clear_before : str or None
        Dates (labels of the series).
    persistence : float or None
        None when no later date observed the region.
    n_later_observed : int
    growth_m2, area_first_m2, area_last_m2 : float
    status : {"persistent", "unconfirmed", "transient", "flat"}
    per_date : list of dict
        ``date``, ``observed`` (share clear), ``changed_m2``, ``score_mean``.
    """

    label: int
    first_seen: str | None
    last_clear_before: str | None
    persistence: float | None
    n_later_observed: int
    growth_m2: float
    area_first_m2: float
    area_last_m2: float
    status: str
    per_date: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Timeline:
    """Outcome of :func:`track_changes`.

    Attributes
    ----------
    dates : list of str
    regions : list of RegionTrack
        Every region, transient ones included (see :attr:`kept`).
    labels : (H, W) int ndarray
        Region labels (0 = none).
    scores : (T, H, W) float32 ndarray
        Score of each date against the baseline (date 0 is zeros).
    valid : (T, H, W) bool ndarray
        Pixels compared on each date (date 0: the baseline's clear pixels).
    diagnostics : list of dict
        :func:`~sitewatch.detect.run.detect_arrays` diagnostics per date (None for 0).
    """

    dates: list[str]
    regions: list[RegionTrack]
    labels: np.ndarray
    scores: np.ndarray
    valid: np.ndarray
    diagnostics: list[dict[str, Any] | None]

    @property
    def kept(self) -> list[RegionTrack]:
        """Persistent and unconfirmed regions."""
        return [r for r in self.regions if r.status not in DROPPED]

    @property
    def n_transient(self) -> int:
        """Regions dropped as transient."""
        return sum(r.status == "transient" for r in self.regions)

    @property
    def n_flat(self) -> int:
        """Lasting regions dropped because their outline gained no edges."""
        return sum(r.status == "flat" for r in self.regions)

    def kept_mask(self) -> np.ndarray:
        """Pixels of the kept regions."""
        keep = [r.label for r in self.kept]
        return np.isin(self.labels, keep) if keep else np.zeros(self.labels.shape, bool)


def _pair_evidence(
    stacks: Sequence[np.ndarray],
    valids: Sequence[np.ndarray],
    band_names: Sequence[str] | None,
    pixel_area_m2: float,
    opts: DetectOptions,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any] | None], np.ndarray]:
    """Every date against the first with the pair detector."""
    base, base_valid = stacks[0], valids[0]
    shape = base_valid.shape
    n = len(stacks)
    scores = np.zeros((n, *shape), dtype=np.float32)
    masks = np.zeros((n, *shape), dtype=bool)
    valid = np.zeros((n, *shape), dtype=bool)
    valid[0] = base_valid
    diags: list[dict[str, Any] | None] = [None]
    for t in range(1, n):
        both = base_valid & valids[t]
        try:
            det = detect_arrays(
                base,
                stacks[t],
                both,
                band_names=band_names,
                pixel_area_m2=pixel_area_m2,
                options=opts,
            )
        except ValueError as err:  # nothing (or too little) to compare on this date
            diags.append({"skipped": str(err)})
            continue
        scores[t] = np.where(det.valid, det.score, 0.0)
        masks[t] = det.mask
        valid[t] = det.valid
        diags.append(det.diagnostics)
    return scores, masks, valid, diags, masks[1:].any(axis=0)


def _step_regions(
    flagged: np.ndarray, stat: np.ndarray, displaced: np.ndarray, min_px: int
) -> tuple[np.ndarray, int]:
    """Cut flagged pixels into one region per step peak, trimmed to half that peak.

    * **One basin per peak.** Neighbouring changes join into one connected blob, so the
      blob is split by a watershed of the step size from its local maxima (no closer
      than the radius of a minimum mapping unit), and each basin is trimmed on its own:
      a faint new house beside a strong change keeps its outline.
    * **Half the peak.** Pixels on a change's edge are partly the new roof and partly
      the old ground, so their step is a fraction of the inside's; half the peak is
      where the roof covers about half the pixel, the outline a pair of images gives.
    * **Displacements dropped.** A basin most of whose pixels took a level a neighbour
      already had before the step (``displaced`` below
      :data:`~sitewatch.detect.steps.DISPLACED`, see
      :func:`~sitewatch.detect.steps.displacement_ratio`) is an edge or a shadow that
      moved, not new material.

    Returns
    -------
    kept : bool ndarray
    n_displaced : int
        Basins dropped as displacements.
    """
    if not flagged.any():
        return flagged, 0
    from skimage.segmentation import watershed

    radius = max(1, math.ceil(math.sqrt(min_px / math.pi)))
    where = np.where(flagged, stat, 0.0)
    peaks = flagged & (where >= ndimage.maximum_filter(where, size=2 * radius + 1))
    markers, _ = ndimage.label(peaks)
    basins = watershed(-where, markers, mask=flagged)
    index = np.arange(1, int(basins.max()) + 1)
    peak = np.r_[0.0, np.asarray(ndimage.maximum(stat, basins, index), dtype=np.float64)]
    kept = flagged & (stat >= 0.5 * peak[basins])
    trimmed = np.where(kept, basins, 0)
    share = np.asarray(ndimage.mean(displaced < DISPLACED, trimmed, index), dtype=np.float64)
    moved = np.r_[False, np.nan_to_num(share) > 0.5]
    return kept & ~moved[trimmed], int(moved.sum())


def edge_gain(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Gain of edge strength per pixel: ``|∇ after| - |∇ before|`` (Gaussian, σ 1 px).

    ``before`` and ``after`` are (B, H, W) levels of each pixel before and after its
    step (:class:`~sitewatch.detect.steps.StepScores`); their band mean is compared. A
    region's mean gain over it and a one-pixel ring is above 0 when its new level
    contrasts with its surroundings more than the old one did.

    Examples
    --------
    A roof on uniform ground gains an outline; the same ground cleared to the level of
    its surroundings loses one:

    >>> old = np.zeros((1, 20, 20)); new = old.copy(); new[0, 6:14, 6:14] = 1.0
    >>> bool(edge_gain(old, new)[5:15, 5:15].mean() > 0)
    True
    >>> bool(edge_gain(new, old)[5:15, 5:15].mean() < 0)
    True
    """
    from sitewatch.detect.methods import EDGE_SIGMA

    lb = np.asarray(before, dtype=np.float64).mean(axis=0)
    la = np.asarray(after, dtype=np.float64).mean(axis=0)
    return ndimage.gaussian_gradient_magnitude(
        la, EDGE_SIGMA
    ) - ndimage.gaussian_gradient_magnitude(lb, EDGE_SIGMA)


def _step_evidence(
    stacks: Sequence[np.ndarray],
    valids: Sequence[np.ndarray],
    band_names: Sequence[str] | None,
    pixel_area_m2: float,
    opts: DetectOptions,
    fdr: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any] | None], np.ndarray, np.ndarray]:
    """One lasting step per pixel over the whole series (:mod:`sitewatch.detect.steps`).

    A pixel is flagged on date t when its step is at or before t, its step size passes
    the threshold, and on t it is nearer its level after the step than before.
    """
    n = len(stacks)
    shape = valids[0].shape
    stacks = list(stacks)
    valid = np.stack([np.asarray(v, dtype=bool) for v in valids])
    shifts: list[list[float] | None] = [None] * n
    if opts.coregister:  # every date onto the first, as the pairs model does
        for t in range(1, n):
            both = valid[0] & valid[t]
            if both.sum() < 64:
                continue
            stacks[t], ok, info = align_after(
                stacks[0], stacks[t], both, band_names, pixel_area_m2=pixel_area_m2
            )
            valid[t] &= ok | ~both
            shifts[t] = info.get("shift") if info.get("applied") else None
    x = prepare_series(stacks, valid).reshape(n, stacks[0].shape[0], -1)
    v = valid.reshape(n, -1)
    steps = step_scores(x, v)
    testable = v[0] & (v[1:].sum(axis=0) >= MIN_AFTER + 1) & (steps.split > 0)
    thr = threshold_steps(x, v, steps.stat, testable, fdr=fdr)
    flagged = (steps.stat > thr.value) & testable
    min_px = opts.min_pixels(pixel_area_m2)
    stat = steps.stat.reshape(shape)
    displaced = displacement_ratio(steps, shape)
    flagged, n_displaced = _step_regions(flagged.reshape(shape), stat, displaced, min_px)
    flagged, removed = remove_small_regions(flagged, min_px)
    split = steps.split.reshape(shape)
    scores = np.zeros((n, *shape), dtype=np.float32)
    masks = np.zeros((n, *shape), dtype=bool)
    for t in range(1, n):
        after = (split > 0) & (split <= t)
        scores[t] = np.where(after & valid[t], stat, 0.0)
        xt = x[t]
        nearer = ((xt - steps.after) ** 2).sum(axis=0) < ((xt - steps.before) ** 2).sum(axis=0)
        masks[t] = flagged & after & valid[t] & nearer.reshape(shape)
    n_test = int(testable.sum())
    diag = {
        "threshold": thr.as_dict(),
        "timeline_model": "step",
        "changed_pixels": int(flagged.sum()),
        "regions_removed_below_mmu": removed,
        "regions_dropped_as_displacements": n_displaced,
        "min_area_m2": round(min_px * pixel_area_m2, 1),
        "min_area_px": min_px,
        "valid_pixels": n_test,
        "shifts_px": shifts,
    }
    b_n = steps.before.shape[0]
    gain = edge_gain(steps.before.reshape(b_n, *shape), steps.after.reshape(b_n, *shape))
    return scores, masks, valid, [None] + [diag] * (n - 1), flagged, gain


def track_changes(
    stacks: Sequence[np.ndarray],
    valids: Sequence[np.ndarray],
    dates: Sequence[str],
    *,
    band_names: Sequence[str] | None = None,
    pixel_area_m2: float = 100.0,
    options: DetectOptions | None = None,
    min_persistence: float = 0.5,
    model: str = "auto",
    fdr: float = STEP_FDR,
) -> Timeline:
    """Follow change regions through a series of images on one grid.

    Parameters
    ----------
    stacks : sequence of (B, H, W) ndarray
        The images, oldest first; the first is the baseline.
    valids : sequence of (H, W) bool ndarray
        Clear, observed pixels of each image.
    dates : sequence of str
        A label per image (ISO date or date range).
    band_names : sequence of str, optional
    pixel_area_m2 : float
    options : DetectOptions, optional
        The pair detector (``pairs`` model) and the minimum mapping unit (both).
    min_persistence : float
        Regions flagged on a smaller share of the later clear dates are transient.
    model : {"auto", "step", "pairs"}
        ``auto``: the step model for at least :data:`~sitewatch.detect.steps.MIN_DATES`
        dates (and no fixed threshold in ``options``), pairs otherwise.
    fdr : float
        False-discovery share of the step model's threshold
        (:func:`~sitewatch.detect.steps.threshold_steps`).

    Returns
    -------
    Timeline
    """
    if not (len(stacks) == len(valids) == len(dates)) or len(stacks) < 2:
        raise InputError("a timeline needs at least two dated images (one per step)")
    if model not in TIMELINE_MODELS:
        raise InputError(f"timeline model {model!r} is not one of {', '.join(TIMELINE_MODELS)}")
    opts = options or DetectOptions()
    n = len(stacks)
    if model == "step" and n < 3:
        raise InputError("the step model needs at least three dated images")
    step = model == "step" or (model == "auto" and n >= MIN_DATES and opts.threshold is None)
    gain: np.ndarray | None = None
    if step:
        *evidence, gain = _step_evidence(stacks, valids, band_names, pixel_area_m2, opts, fdr)
    else:
        evidence = list(_pair_evidence(stacks, valids, band_names, pixel_area_m2, opts))
    scores, masks, valid, diags, flagged = evidence
    shape = flagged.shape
    labels, n_regions = label_regions(flagged)
    flat = np.zeros(n_regions + 1, dtype=bool)
    if gain is not None and n_regions:
        # each region with a one-pixel ring (where a ring touches two regions, the
        # larger label takes it: regions are apart by at least a pixel)
        ring = ndimage.grey_dilation(labels, footprint=np.ones((3, 3), bool))
        mean_gain = ndimage.mean(gain, ring, np.arange(1, n_regions + 1))
        flat[1:] = np.asarray(mean_gain, dtype=np.float64) <= 0.0
    min_px = opts.min_pixels(pixel_area_m2)
    regions = []
    index = np.arange(1, n_regions + 1)
    size = ndimage.sum_labels(np.ones(shape), labels, index) if n_regions else []
    observed = [ndimage.sum_labels(valid[t], labels, index) for t in range(n)] if n_regions else []
    changed = [ndimage.sum_labels(masks[t], labels, index) for t in range(n)] if n_regions else []
    score_sum = (
        [ndimage.sum_labels(np.where(valid[t], scores[t], 0), labels, index) for t in range(n)]
        if n_regions
        else []
    )
    for k in range(n_regions):
        peak = max(float(changed[t][k]) for t in range(1, n))
        per_date = []
        seen: list[int] = []
        obs: list[int] = []
        for t in range(n):
            share = float(observed[t][k] / size[k])
            is_obs = share >= OBSERVED_SHARE
            is_seen = (
                is_obs and t > 0 and changed[t][k] >= min_px and changed[t][k] >= SEEN_SHARE * peak
            )
            if is_obs:
                obs.append(t)
            if is_seen:
                seen.append(t)
            per_date.append(
                {
                    "date": dates[t],
                    "observed": round(share, 3),
                    "changed_m2": round(float(changed[t][k]) * pixel_area_m2, 1),
                    "score_mean": (
                        round(float(score_sum[t][k] / observed[t][k]), 3)
                        if observed[t][k]
                        else None
                    ),
                }
            )
        if not seen:  # flagged only in specks below the MMU on every date
            first = last_clear = persistence = None
            later: list[int] = []
            status = "transient"
            a_first = a_last = 0.0
        else:
            t0 = seen[0]
            first = dates[t0]
            before = [t for t in obs if t < t0 and t not in seen]
            last_clear = dates[before[-1]] if before else None
            later = [t for t in obs if t > t0]
            persistence = round(sum(t in seen for t in later) / len(later), 3) if later else None
            if persistence is not None and persistence < min_persistence:
                status = "transient"
            elif flat[k + 1]:
                status = "flat"
            elif persistence is None:
                status = "unconfirmed"
            else:
                status = "persistent"
            a_first = float(changed[t0][k]) * pixel_area_m2
            a_last = float(changed[seen[-1]][k]) * pixel_area_m2
        regions.append(
            RegionTrack(
                label=k + 1,
                first_seen=first,
                last_clear_before=last_clear,
                persistence=persistence,
                n_later_observed=len(later),
                growth_m2=round(a_last - a_first, 1),
                area_first_m2=round(a_first, 1),
                area_last_m2=round(a_last, 1),
                status=status,
                per_date=per_date,
            )
        )
    return Timeline(list(dates), regions, labels, scores, valid, diags)
