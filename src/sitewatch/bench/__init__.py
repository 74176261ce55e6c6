"""Benchmark harness: score the shipped detector on labelled change-detection data."""

from sitewatch.bench.metrics import PixelCounts, average_precision, scores_to_metrics
from sitewatch.bench.oscd import bench_oscd, oscd_cities
from sitewatch.bench.pairs import (
    BenchResult,
    EntryResult,
    LabelledPair,
    MethodResult,
    PairSource,
    bench_pairs,
    find_pairs,
    run_benchmark,
)

__all__ = [
    "BenchResult",
    "EntryResult",
    "LabelledPair",
    "MethodResult",
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
