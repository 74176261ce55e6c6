"""Benchmark defaults the command line shows at start-up (no numeric imports here)."""

DEFAULT_SIZES = (1024, 2048, 4096, 8192)
"""Image sides of ``bench speed``'s scaling rows."""
BIG_SIZE = 12_000
"""Side of ``bench speed``'s block-mode row."""
