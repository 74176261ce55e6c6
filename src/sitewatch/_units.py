"""Sizes as users write them (``--max-memory 2GB``), without the engine's imports.

:func:`parse_size` is public as :func:`sitewatch.blocks.parse_size`; it lives here so
that the command line can read its options before scipy is loaded.
"""

from __future__ import annotations

from sitewatch.errors import InputError

__all__ = ["parse_size"]


def parse_size(text: str) -> int:
    """Bytes in ``"1.5GB"``, ``"800MB"``, ``"512M"`` or a plain number.

    Examples
    --------
    >>> parse_size("1.5GB"), parse_size("800MB"), parse_size("1024")
    (1610612736, 838860800, 1024)
    """
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if t and t[-1] in mult:
            return int(float(t[:-1]) * mult[t[-1]])
        return int(float(t))
    except ValueError:
        raise InputError(f"size {text!r} is not like 800MB or 2GB") from None
