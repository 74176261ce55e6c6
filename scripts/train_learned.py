"""Train the model of ``--method learned`` on the labelled datasets of ../shared/data.

Usage (from the repository root)::

    python scripts/train_learned.py ../shared/data [--out src/sitewatch/data/learned.json]

Every dataset found under the folder (``sitewatch bench suite``'s layout) is sampled
with the engine's own views (:func:`sitewatch.bench.learn.sample_features`) and the
logistic model is fitted on all of them, each dataset weighted equally
(:func:`sitewatch.detect.learned.train`). Deterministic: the same data give the same
weights. Its figures are quoted only leave-one-dataset-out
(``sitewatch bench suite ROOT --method learned``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sitewatch.bench.learn import sample_features, train_model
from sitewatch.bench.suite import find_datasets
from sitewatch.detect.learned import FEATURES

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "sitewatch" / "data" / "learned.json"


def main(argv: list[str] | None = None) -> int:
    """Sample every dataset, fit, write the model, print its weights."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", help="folder holding the labelled datasets (../shared/data)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    datasets, notes = find_datasets(args.root)
    for n in notes:
        print(n, file=sys.stderr)
    samples = {}
    for d in datasets:
        samples[d.name] = sample_features(d)
        _, t, share = samples[d.name]
        print(
            f"{d.name}: {t.size} pixels sampled, {int(t.sum())} changed "
            f"({100 * share:.1f} % of its labelled pixels are)",
            file=sys.stderr,
        )
    model = train_model(samples)
    model.save(args.out)
    for name, w in zip(FEATURES, model.coef, strict=True):
        print(f"{name:>14s} {w:+.4f}")
    print(f"{'intercept':>14s} {model.intercept:+.4f}")
    print(f"{'cutoff':>14s} {model.cutoff:g} (probability of change)")
    print(
        f"trained on {', '.join(model.trained_on)} ({model.pixels} pixels) in "
        f"{time.perf_counter() - t0:.1f} s; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
