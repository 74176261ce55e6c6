"""Benchmark harness: score the shipped detector on labelled change-detection data.

Names are imported on first use, so building the command line stays light.
"""

from sitewatch._lazy import lazy_names

__all__ = [
    "BenchResult",
    "EntryResult",
    "LabelledPair",
    "MethodResult",
    "ObjectCounts",
    "PairSource",
    "PixelCounts",
    "average_precision",
    "bench_oscd",
    "bench_pairs",
    "find_pairs",
    "oscd_cities",
    "run_benchmark",
    "scores_to_metrics",
]

_LAZY = {
    "BenchResult": "sitewatch.bench.pairs",
    "EntryResult": "sitewatch.bench.pairs",
    "LabelledPair": "sitewatch.bench.pairs",
    "MethodResult": "sitewatch.bench.pairs",
    "ObjectCounts": "sitewatch.bench.metrics",
    "PairSource": "sitewatch.bench.pairs",
    "PixelCounts": "sitewatch.bench.metrics",
    "average_precision": "sitewatch.bench.metrics",
    "bench_oscd": "sitewatch.bench.oscd",
    "bench_pairs": "sitewatch.bench.pairs",
    "find_pairs": "sitewatch.bench.pairs",
    "oscd_cities": "sitewatch.bench.oscd",
    "run_benchmark": "sitewatch.bench.pairs",
    "scores_to_metrics": "sitewatch.bench.metrics",
}


__getattr__, __dir__ = lazy_names("sitewatch.bench", _LAZY, globals())
