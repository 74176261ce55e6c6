"""Sentinel-1 RTC scenes (Planetary Computer ``sentinel-1-rtc``) read onto an AOI grid.

Each item is one slice of a pass: γ⁰ VV and VH, linear intensity, float32 COGs on a
10 m UTM grid, nodata −32768 (0 also marks no data: outside the swath, shadow). The
slices of one pass over the AOI are one acquisition (see
:func:`~sitewatch.sources.stac.group_acquisitions`). Backscatter depends on the viewing
geometry, so acquisitions are grouped by pass direction and relative orbit
(:func:`group_by_geometry`) and only one geometry is ever compared.

Reads are the optical ones: the AOI window of each asset by HTTP range requests
(:func:`~sitewatch.sources.stac.read_asset_window`), cached, counted in the manifest.
Resampling onto the analysis grid is nearest-neighbour, which keeps each pixel's
speckle law (gamma with the scene's looks) that the tests rely on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sitewatch.errors import AOIError, DataError, InputError
from sitewatch.sources._http import NetStats
from sitewatch.sources.cache import Cache
from sitewatch.sources.profiles import public_href
from sitewatch.sources.stac import AssetWindowRead, SceneCandidate, read_asset_window

__all__ = [
    "S1_BANDS",
    "OrbitGeometry",
    "S1Scene",
    "S1Stack",
    "group_by_geometry",
    "orbit_geometry",
    "pick_geometry",
]

S1_BANDS = ("vv", "vh")
"""Asset keys read, in band order."""
S1_NODATA = -32768.0


@dataclass(frozen=True, order=True)
class OrbitGeometry:
    """Pass direction and relative orbit: scenes of one geometry see the ground alike."""

    orbit_state: str
    relative_orbit: int

    @property
    def label(self) -> str:
        """``"ascending 127"``."""
        return f"{self.orbit_state} {self.relative_orbit}"


def orbit_geometry(item: Any) -> OrbitGeometry:
    """The item's :class:`OrbitGeometry` (``sat:orbit_state``, ``sat:relative_orbit``).

    Raises
    ------
    DataError
        If the item does not say.
    """
    props = item.properties
    state, orbit = props.get("sat:orbit_state"), props.get("sat:relative_orbit")
    if state is None or orbit is None:
        raise DataError(
            f"Sentinel-1 item {item.id} has no sat:orbit_state / sat:relative_orbit; "
            "scenes of unknown geometry cannot be compared"
        )
    return OrbitGeometry(str(state).lower(), int(orbit))


def parse_orbit(text: str) -> tuple[str | None, int | None]:
    """``--orbit`` → (direction or None, relative orbit or None).

    Examples
    --------
    >>> parse_orbit("ascending-127"), parse_orbit("127"), parse_orbit("desc")
    (('ascending', 127), (None, 127), ('descending', None))
    """
    state: str | None = None
    number: int | None = None
    for part in text.replace("-", " ").replace(",", " ").lower().split():
        if part.isdigit():
            number = int(part)
        elif "ascending".startswith(part):
            state = "ascending"
        elif "descending".startswith(part):
            state = "descending"
        else:
            raise InputError(
                f"--orbit {text!r} is not a relative orbit and/or direction; "
                "e.g. --orbit ascending-127, --orbit 127 or --orbit descending"
            )
    return state, number


def group_by_geometry(
    scenes: Sequence[SceneCandidate],
) -> dict[OrbitGeometry, list[SceneCandidate]]:
    """Acquisitions by orbit geometry, each list in date order."""
    out: dict[OrbitGeometry, list[SceneCandidate]] = {}
    for s in scenes:
        out.setdefault(orbit_geometry(s.item), []).append(s)
    return {g: sorted(v, key=lambda s: s.datetime) for g, v in sorted(out.items())}


def pick_geometry(
    windows: Sequence[Sequence[SceneCandidate]], *, orbit: str | None = None
) -> OrbitGeometry:
    """The geometry to compare: seen in every window, most scenes in the poorest one.

    Parameters
    ----------
    windows : sequence of sequence of SceneCandidate
        The acquisitions of each window (before, after; or the one period of a series).
    orbit : str, optional
        ``--orbit``: restrict to a direction and/or relative orbit.

    Raises
    ------
    DataError
        If no geometry has a scene in every window.
    """
    want_state, want_orbit = parse_orbit(orbit) if orbit else (None, None)
    counts: dict[OrbitGeometry, list[int]] = {}
    for i, scenes in enumerate(windows):
        for g, group in group_by_geometry(scenes).items():
            counts.setdefault(g, [0] * len(windows))[i] = len(group)
    ok = {
        g: c
        for g, c in counts.items()
        if min(c) > 0
        and (want_state is None or g.orbit_state == want_state)
        and (want_orbit is None or g.relative_orbit == want_orbit)
    }
    if not ok:
        seen = ", ".join(f"{g.label} ({'/'.join(map(str, c))})" for g, c in counts.items())
        raise DataError(
            f"no orbit geometry{f' matching --orbit {orbit}' if orbit else ''} has a "
            f"Sentinel-1 scene in every window (scenes per window: {seen or 'none'}); "
            "widen the windows"
        )
    return max(ok, key=lambda g: (min(ok[g]), sum(ok[g]), g))


class S1Scene:
    """One Sentinel-1 acquisition (the slices of one pass) read onto a grid.

    Parameters
    ----------
    items : sequence of pystac.Item
        Slices of one pass (one orbit geometry).
    aoi : AOI, optional
        Area whose window is read (default: the grid's footprint).
    cache, stats : optional
        Window cache and request counter, as for optical scenes.
    """

    kind = "stac-s1"
    georeferenced = True

    def __init__(
        self,
        items: Sequence[Any],
        *,
        aoi: Any = None,
        cache: Cache | None = None,
        stats: NetStats | None = None,
    ) -> None:
        if not items:
            raise ValueError("an acquisition needs at least one item")
        geoms = {orbit_geometry(it) for it in items}
        if len(geoms) != 1:
            raise DataError(f"one acquisition spans orbit geometries {sorted(geoms)}")
        self.items = list(items)
        self.geometry = geoms.pop()
        self.aoi = aoi
        self.cache = cache
        self.stats = stats
        first = self.items[0]
        self.path = first.get_self_href() or first.id
        self.acquired = first.datetime.date().isoformat() if first.datetime else None
        self.reads: list[AssetWindowRead] = []
        looks = first.properties.get("sar:looks_equivalent_number")
        self.enl: float | None = float(looks) if isinstance(looks, int | float) else None

    @property
    def band_names(self) -> tuple[str, ...]:
        """``("vv", "vh")``."""
        return S1_BANDS

    def read(self, grid: Any) -> tuple[np.ndarray, np.ndarray]:
        """γ⁰ VV and VH (linear, float32, NaN where no data) and the observed mask.

        Raises
        ------
        DataError
            If an item lacks a ``vv``/``vh`` asset.
        AOIError
            If no slice covers the grid.
        """
        from affine import Affine
        from rasterio.enums import Resampling
        from rasterio.warp import reproject

        out = np.full((len(S1_BANDS), grid.height, grid.width), np.nan, np.float32)
        area = self.aoi.geometry if self.aoi is not None else grid.footprint_lonlat
        overlapped = False
        for item in self.items:
            missing = [k for k in S1_BANDS if k not in item.assets]
            if missing:
                raise DataError(
                    f"Sentinel-1 item {item.id} has no {', '.join(missing)} asset; "
                    "sitewatch compares dual-polarisation (VV+VH) scenes"
                )
            for b, key in enumerate(S1_BANDS):
                try:
                    entry, record = read_asset_window(
                        item,
                        key,
                        area,
                        cache=self.cache,
                        stats=self.stats,
                        cover=(grid.crs, grid.bounds),
                    )
                except AOIError:
                    break  # this slice of the pass lies elsewhere
                overlapped = True
                self.reads.append(record)
                data = entry.data.astype(np.float32)
                bad = ~np.isfinite(data) | (data <= 0)
                if entry.nodata is not None:
                    bad |= data == np.float32(entry.nodata)
                data[bad] = S1_NODATA
                buf = np.full(grid.shape, np.nan, np.float32)
                reproject(
                    data,
                    buf,
                    src_transform=Affine(*entry.transform),
                    src_crs=entry.crs,
                    src_nodata=S1_NODATA,
                    dst_transform=grid.transform,
                    dst_crs=grid.crs,
                    dst_nodata=np.nan,
                    resampling=Resampling.nearest,
                )
                fill = np.isnan(out[b]) & np.isfinite(buf)
                out[b][fill] = buf[fill]
        if not overlapped:
            raise AOIError(f"no slice of {self.items[0].id} covers the AOI")
        valid = np.all(np.isfinite(out) & (out > 0), axis=0)
        out[:, ~valid] = np.nan
        return out, valid

    def describe(self) -> dict[str, Any]:
        """Manifest entry: items, orbit, asset hrefs (unsigned), windows and bytes read."""
        return {
            "kind": self.kind,
            "item_ids": [it.id for it in self.items],
            "collection": self.items[0].collection_id,
            "datetime": self.items[0].datetime.isoformat() if self.items[0].datetime else None,
            "acquired": self.acquired,
            "orbit": self.geometry.label,
            "platform": self.items[0].properties.get("platform"),
            "enl_declared": self.enl,
            "assets": {
                key: [public_href(it.assets[key].href) for it in self.items if key in it.assets]
                for key in S1_BANDS
            },
            "reads": [r.as_dict() for r in self.reads],
            "requests": sum(r.requests for r in self.reads),
            "bytes_read": sum(r.bytes for r in self.reads),
            "from_cache": sum(r.cached for r in self.reads),
        }


class S1Stack:
    """Several acquisitions of one geometry: one side of a pair, or a whole series."""

    kind = "stac-s1-stack"
    georeferenced = True

    def __init__(self, scenes: Sequence[S1Scene]) -> None:
        if not scenes:
            raise ValueError("a stack needs at least one scene")
        geoms = {s.geometry for s in scenes}
        if len(geoms) != 1:
            raise DataError(
                "scenes of different orbit geometries cannot be compared: "
                + ", ".join(sorted(g.label for g in geoms))
            )
        self.parts = list(scenes)
        self.geometry = geoms.pop()
        self.path = self.parts[0].path
        self.acquired = self.parts[-1].acquired
        self.dates = [s.acquired or "" for s in self.parts]

    @property
    def band_names(self) -> tuple[str, ...]:
        """``("vv", "vh")``."""
        return S1_BANDS

    def read(self, grid: Any) -> tuple[np.ndarray, np.ndarray]:
        """(k, 2, H, W) float32 linear γ⁰ and the pixels observed in *every* scene."""
        stack = np.empty((len(self.parts), len(S1_BANDS), grid.height, grid.width), np.float32)
        valid = np.ones(grid.shape, bool)
        for i, scene in enumerate(self.parts):
            stack[i], v = scene.read(grid)
            valid &= v
        return stack, valid

    def describe(self) -> dict[str, Any]:
        """Manifest entry: the orbit and every scene."""
        return {
            "kind": self.kind,
            "orbit": self.geometry.label,
            "acquired": self.dates,
            "scenes": [s.describe() for s in self.parts],
            "requests": sum(s.describe()["requests"] for s in self.parts),
            "bytes_read": sum(s.describe()["bytes_read"] for s in self.parts),
        }
