"""How the precision rule holds when much of a scene has changed (OSCD, default scores).

The Sentinel-2 default thresholds the construction score at median + k robust σ,
capped by the spread of the pixels outside dense clusters above the floor
(:func:`sitewatch.detect.threshold.threshold_precision_first`). Held-out Sentinel-2 cities
with more change than the OSCD train cities showed high precision and low recall: the
whole scene's spread grows with the changed share. This script makes that share larger
on real scores: it runs the default detector on every OSCD train city under ROOT, then
keeps every changed pixel and 1/m of the unchanged ones (m = 1, 2, 4, 8; fixed seed)
and thresholds what is left with the rule with and without its cap. Pooled over the
cities; pixel level (the rule alone: no opening, no minimum mapping unit). Then the cap's
ratio (``CAP_RATIO``) leave-one-city-out: for each city, the ratio whose worst pooled F1
over the four shares on the other 13 cities is highest, and the left-out city scored with it.

Usage::

    .venv/bin/python benchmarks/change_share.py ../shared/data

About 1 minute on 2 cores.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from sitewatch.bench.pairs import detect_pair
from sitewatch.bench.suite import find_datasets
from sitewatch.detect.options import DEFAULT_K, SCORE_FLOOR, DetectOptions
from sitewatch.detect.threshold import quiet_pixels, threshold_precision_first

THINNING = (1, 2, 4, 8)
CAP_SIGMAS = (8, 10, 12, 13, 14, 16, 18, 20)  # cap candidates, in robust σ (k = DEFAULT_K)


def _f1(c: np.ndarray) -> float:
    return float(2 * c[0] / (c[1] + c[2]))


def _counts(
    s: np.ndarray, t: np.ndarray, q: np.ndarray | None, cap_ratio: float | None = None
) -> np.ndarray:
    thr = threshold_precision_first(s, k=DEFAULT_K, floor=SCORE_FLOOR, quiet=q, cap_ratio=cap_ratio)
    f = s > thr.value
    return np.array([(f & t).sum(), f.sum(), t.sum(), s.size], dtype=np.float64)


def leave_one_city_out(thinned: dict[str, list]) -> None:
    """Print the cap's ratio chosen on the other cities, per city, and the pooled result."""
    table: dict[tuple[float, str, int], np.ndarray] = {}
    for sig in CAP_SIGMAS:
        for city, rows in thinned.items():
            for m, s, t, q in rows:
                table[(sig, city, m)] = _counts(s, t, q, sig / DEFAULT_K)
    cities = list(thinned)

    def pooled(sig: float, names: list[str], m: int) -> float:
        return _f1(sum(table[(sig, c, m)] for c in names))

    print("cap (robust σ)    " + "".join(f"{'F1 m=' + str(m):>12}" for m in THINNING))
    for sig in CAP_SIGMAS:
        print(f"{sig:<18}" + "".join(f"{pooled(sig, cities, m):>12.3f}" for m in THINNING))
    chosen = {}
    for city in cities:
        others = [c for c in cities if c != city]
        chosen[city] = max(CAP_SIGMAS, key=lambda g: min(pooled(g, others, m) for m in THINNING))
    print("leave-one-city-out choice: " + ", ".join(f"{c} {g}" for c, g in chosen.items()))
    loo = [_f1(sum(table[(chosen[c], c, m)] for c in cities)) for m in THINNING]
    print("pooled F1 of the left-out cities: " + " / ".join(f"{f:.3f}" for f in loo))


def main(root: str) -> None:
    """Print pooled F1 and recall per thinning, with and without the cap."""
    t0 = time.perf_counter()
    datasets, _ = find_datasets(root)
    oscd = next((d for d in datasets if d.kind == "oscd"), None)
    if oscd is None:
        sys.exit(f"no OSCD train cities under {root}")
    rng = np.random.default_rng(0)
    tot: dict[tuple[str, int], np.ndarray] = {}
    thinned: dict[str, list] = {}
    for pair in oscd.read():
        det = detect_pair(pair, DetectOptions())
        assert det.threshold.rule == "precision", det.threshold.rule
        score = np.asarray(det.score, dtype=np.float64)
        ev = pair.valid if pair.labelled is None else pair.valid & pair.labelled
        quiet = quiet_pixels(score, pair.valid, SCORE_FLOOR)[ev]
        s, t = score[ev], pair.truth[ev]
        for m in THINNING:
            keep = t | (rng.random(s.size) < 1 / m)
            thinned.setdefault(pair.name, []).append((m, s[keep], t[keep], quiet[keep]))
            for rule, q in (("uncapped", None), ("capped (default)", quiet[keep])):
                row = _counts(s[keep], t[keep], q)
                tot[(rule, m)] = tot.get((rule, m), 0) + row
    print(f"OSCD train, {len(oscd.entries)} cities: unchanged pixels thinned to 1/m (pixel level)")
    print(f"{'rule':<18}" + "".join(f"{'m=' + str(m):>26}" for m in THINNING))
    shares = "".join(
        f"{'changed ' + format(tot[('uncapped', m)][2] / tot[('uncapped', m)][3], '.1%'):>26}"
        for m in THINNING
    )
    print(f"{'':<18}{shares}")
    for rule in ("uncapped", "capped (default)"):
        cells = []
        for m in THINNING:
            tp, flagged, true, _ = tot[(rule, m)]
            cells.append(f"F1 {2 * tp / (flagged + true):.3f} rec. {tp / true:.3f}")
        print(f"{rule:<18}" + "".join(f"{c:>26}" for c in cells))
    print()
    leave_one_city_out(thinned)
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
