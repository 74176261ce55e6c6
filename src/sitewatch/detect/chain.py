"""Which detector fits the input: the default method and threshold rule, chosen from it.

The construction score (:func:`sitewatch.detect.methods.score_construction`) was built
for decametric multispectral images: its structural view looks for building-sized
change in the 10 m bands and its second view needs the whole spectrum, short-wave
infrared included, to tell a new roof from a field that greened. Its threshold is the
precision rule, in the score's robust-σ units. Elsewhere it does not apply:

* in **very-high-resolution** photos (aerial, Planet; pixels under 5 m, or no CRS)
  and other images **without SWIR** there is no second view, and a building is many
  pixels;
* at **30 m and coarser** (Landsat) a building is smaller than a pixel, and what
  changes is land cover over many pixels.

There the default is IR-MAD (:func:`sitewatch.detect.irmad.irmad`), whose canonical
variates absorb the linear differences between the dates (gain, offset, much of the
season), thresholded by Kittler-Illingworth's minimum-error split of the image's own
score histogram (:func:`~sitewatch.detect.threshold.threshold_kittler`), so the flagged
share follows the change in front of it rather than a constant.

Measured with ``sitewatch bench suite ../shared/data`` (pooled F1; see the README): this
chain against the construction score with the precision rule on SZTAKI 0.341 vs 0.187,
DSIFN 0.337 vs 0.041, LEVIR 0.023 vs 0.004, Taizhou/Nanjing Landsat 0.901 vs 0.571, and
SpaceNet 7 (first to last month) 0.131 vs 0.146, the one dataset where it is worse; on
the Sentinel-2 OSCD cities the construction score is 0.463 and IR-MAD 0.265.

``edges`` (IR-MAD χ² plus new edges) ranks change better than IR-MAD on the
very-high-resolution datasets but is not chosen here: picked leave-one-dataset-out
against IR-MAD, its F1 is no better (0.205 against 0.208 on average; see the README).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sitewatch.detect.options import AUTO, DetectOptions

__all__ = ["CONSTRUCTION_PIXEL_M", "choose_method", "method_run", "resolve_options"]

CONSTRUCTION_PIXEL_M = (5.0, 20.0)
"""Pixel sizes (m) at which the construction score is the default, with SWIR bands."""


def choose_method(
    band_names: Sequence[str] | None, count: int, pixel_area_m2: float | None
) -> tuple[str, str]:
    """The default method for an input, and one sentence saying why.

    Parameters
    ----------
    band_names : sequence of str or None
    count : int
        Number of bands.
    pixel_area_m2 : float or None
        Ground area of a pixel (None: unknown, e.g. an image without CRS).

    Examples
    --------
    >>> s2 = ["B02", "B03", "B04", "B08", "B11", "B12"]
    >>> choose_method(s2, 6, 100.0)[0], choose_method(s2, 6, 900.0)[0]
    ('construction', 'irmad')
    >>> choose_method(["red", "green", "blue"], 3, 0.25)[0]
    'irmad'
    """
    from sitewatch.detect.methods import band_roles

    roles = band_roles(band_names, count)
    swir = "swir1" in roles or "swir2" in roles
    size = math.sqrt(pixel_area_m2) if pixel_area_m2 else None
    lo, hi = CONSTRUCTION_PIXEL_M
    at = f"{size:.2g} m pixels" if size is not None else "pixels of unknown size"
    if swir and size is not None and lo <= size <= hi:
        return "construction", (
            f"{count} bands with short-wave infrared at {at}: decametric multispectral, "
            "so the construction score (structural change the whole spectrum confirms)"
        )
    if not swir:
        kind = "no short-wave infrared band"
    elif size is None:
        kind = "pixels of unknown size"
    else:
        kind = f"{at}, outside {lo:g}-{hi:g} m"
    return "irmad", (
        f"{count} bands, {kind}: the construction score does not apply, so IR-MAD "
        "with a threshold from the image's own score histogram"
    )


def resolve_options(
    options: DetectOptions,
    band_names: Sequence[str] | None,
    count: int,
    pixel_area_m2: float | None,
) -> tuple[DetectOptions, dict[str, Any] | None]:
    """Replace ``"auto"`` method and rule by concrete ones; the record of the choice.

    Returns
    -------
    options : DetectOptions
        With a concrete ``method`` and ``threshold_rule``.
    chain : dict or None
        ``{"method", "threshold_rule", "why"}`` when anything was chosen, for the
        manifest; None when the options named both.
    """
    if options.method != AUTO and options.threshold_rule != AUTO:
        return options, None
    why = "method given"
    method = options.method
    if method == AUTO:
        method, why = choose_method(band_names, count, pixel_area_m2)
    rule = options.threshold_rule
    if rule == AUTO:
        rule = {"construction": "precision", "learned": "model"}.get(method, "kittler")
        why += f"; threshold rule {rule}"
    resolved = replace(options, method=method, threshold_rule=rule)
    return resolved, {"method": method, "threshold_rule": rule, "why": why}


def method_run(method: str, diagnostics: Mapping[str, Any]) -> str:
    """The method a run scored with.

    The one chosen for ``"auto"`` (``diagnostics["chain"]``), else ``method`` as given.

    Examples
    --------
    >>> method_run("auto", {"chain": {"method": "irmad"}}), method_run("cva", {})
    ('irmad', 'cva')
    """
    return str((diagnostics.get("chain") or {}).get("method", method))
