"""Memory sizes (``--max-memory 2GB``, a run's estimate), without the engine's imports.

:func:`parse_size` and :func:`estimate_memory` are public in :mod:`sitewatch.blocks`;
they live here so that a run decides in memory or block-wise before scipy is loaded.
"""

from __future__ import annotations

from sitewatch.errors import InputError

__all__ = ["estimate_memory", "parse_size"]


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


def estimate_memory(height: int, width: int, bands: int) -> int:
    """Bytes a whole in-memory ``detect`` of a (bands, height, width) pair needs, roughly.

    The two stacks as read and as shifted (float32), the co-registration's float64
    work images, the engine's sinks (scores, views, labels, mask) and the report's
    images: measured, the whole process on the 3-band 2048 px benchmark pair peaked at
    845 MB, which this gives as 805 MB (the interpreter and libraries, about 110 MB,
    are left out).
    """
    return int(height) * int(width) * (24 * bands + 120)
