"""The pixel grid every Scene of a run shares."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import shapely
from affine import Affine
from pyproj import CRS, Geod, Transformer
from shapely.geometry import MultiPolygon, Polygon, box

from sitewatch.types import BBox

__all__ = ["Grid", "from_lonlat", "to_lonlat", "utm_crs_for"]

_GEOD = Geod(ellps="WGS84")


def utm_crs_for(lon: float, lat: float) -> str:
    """EPSG code string of the WGS84 UTM zone holding a lon/lat point.

    Examples
    --------
    >>> utm_crs_for(127.657, 39.92)
    'EPSG:32652'
    """
    zone = min(60, max(1, math.floor((lon + 180.0) / 6.0) + 1))
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


@dataclass(frozen=True)
class Grid:
    """CRS, affine transform and size of a north-up pixel grid.

    Parameters
    ----------
    crs : str or None
        CRS as EPSG code or WKT; ``None`` for images without georeferencing, whose
        transform then maps pixels to pixel coordinates.
    transform : Affine
        Pixel-to-CRS transform (north-up: no rotation terms).
    width, height : int
        Size in pixels.
    pixel_size_m : float, optional
        Ground size of a pixel, required when ``crs`` is None.

    Raises
    ------
    ValueError
        If the size is not positive, the grid is rotated, or a CRS-less grid lacks
        ``pixel_size_m``.
    """

    crs: str | None
    transform: Affine
    width: int
    height: int
    pixel_size_m: float | None = None

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"Grid size {self.width}x{self.height} is not positive")
        if self.transform.b != 0 or self.transform.d != 0:
            raise ValueError("rotated grids are not supported; warp to a north-up grid first")
        if self.crs is None and not self.pixel_size_m:
            raise ValueError("a grid without CRS needs pixel_size_m")

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """(x, y) pixel size in CRS units, both positive."""
        return (abs(self.transform.a), abs(self.transform.e))

    @cached_property
    def bounds(self) -> BBox:
        """(left, bottom, right, top) in CRS units."""
        left, top = self.transform.c, self.transform.f
        right = left + self.transform.a * self.width
        bottom = top + self.transform.e * self.height
        return (min(left, right), min(top, bottom), max(left, right), max(top, bottom))

    @cached_property
    def is_geographic(self) -> bool:
        """True when the CRS units are degrees."""
        return self.crs is not None and CRS.from_user_input(self.crs).is_geographic

    @cached_property
    def pixel_area_m2(self) -> float:
        """Ground area of one pixel at the grid centre, in m²."""
        if self.crs is None:
            return float(self.pixel_size_m) ** 2  # type: ignore[arg-type]
        if self.is_geographic:
            left, bottom, right, top = self.bounds
            cx, cy = (left + right) / 2, (bottom + top) / 2
            dx, dy = self.res
            area, _ = _GEOD.polygon_area_perimeter(
                [cx, cx + dx, cx + dx, cx], [cy, cy, cy + dy, cy + dy]
            )
            return abs(float(area))
        crs = CRS.from_user_input(self.crs)
        unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
        nominal = self.res[0] * self.res[1] * unit * unit
        # Metric grids (UTM: within 0.2 %) keep their nominal area, as GIS tools report
        # it; a projection that distorts area here (Web Mercator) gets the true one.
        return nominal if self.is_metric else nominal / self.areal_scale

    @cached_property
    def areal_scale(self) -> float:
        """How much the projection enlarges areas at the grid centre (1 = true area).

        Web Mercator at 40° N enlarges areas 1.70×, UTM at most 1.002× inside its zone.
        1.0 without a CRS and for geographic grids (their pixel area is geodesic).

        Examples
        --------
        >>> g = Grid("EPSG:3857", Affine(10, 0, 14_210_000, 0, -10, 4_852_000), 10, 10)
        >>> round(g.areal_scale, 2), round(g.pixel_area_m2, 1)
        (1.7, 58.8)
        """
        if self.crs is None or self.is_geographic:
            return 1.0
        from pyproj import Proj

        left, bottom, right, top = self.bounds
        cx, cy = (left + right) / 2, (bottom + top) / 2
        lon, lat = _transformer(self.crs, "EPSG:4326").transform(cx, cy)
        try:
            scale = float(Proj(self.crs).get_factors(lon, lat).areal_scale)
        except Exception:  # a CRS pyproj cannot evaluate factors for: take it as true
            return 1.0
        return scale if math.isfinite(scale) and scale > 0 else 1.0

    @cached_property
    def is_metric(self) -> bool:
        """True when pixels are metres on the ground within 1 % in area (UTM, national grids).

        False for geographic grids (degrees) and for projections that distort area at
        the grid, such as Web Mercator away from the equator.
        """
        return self.crs is not None and not self.is_geographic and abs(self.areal_scale - 1) <= 0.01

    @cached_property
    def footprint_lonlat(self) -> Polygon:
        """The grid's outline in EPSG:4326 (densified edges)."""
        if self.crs is None:
            raise ValueError("a grid without CRS has no geographic footprint")
        return to_lonlat(box(*self.bounds), self.crs, densify=self.width // 8 + 2)

    @classmethod
    def for_bounds(cls, bounds: BBox, crs: str, resolution: float) -> Grid:
        """Grid covering ``bounds`` with square pixels snapped to multiples of ``resolution``."""
        if resolution <= 0:
            raise ValueError(f"resolution {resolution} is not positive")
        left, bottom, right, top = bounds
        left = math.floor(left / resolution) * resolution
        top = math.ceil(top / resolution) * resolution
        width = max(1, math.ceil((right - left) / resolution))
        height = max(1, math.ceil((top - bottom) / resolution))
        return cls(crs, Affine(resolution, 0.0, left, 0.0, -resolution, top), width, height)

    @classmethod
    def for_aoi(
        cls, geometry: Polygon | MultiPolygon, *, resolution: float = 10.0, crs: str | None = None
    ) -> Grid:
        """UTM grid (auto zone from the centroid) covering a lon/lat polygon.

        Examples
        --------
        >>> from shapely.geometry import box
        >>> g = Grid.for_aoi(box(127.640, 39.905, 127.675, 39.935), resolution=10)
        >>> g.crs, g.width > 290, g.height > 330
        ('EPSG:32652', True, True)
        """
        c = geometry.centroid
        crs = crs or utm_crs_for(c.x, c.y)
        projected = from_lonlat(geometry, crs)
        return cls.for_bounds(projected.bounds, crs, resolution)

    def window_of(self, other: Grid) -> tuple[slice, slice] | None:
        """Row/col slices of ``self`` that ``other`` covers, when both share CRS and pixels."""
        if other.crs != self.crs or other.res != self.res:
            return None
        col = (other.transform.c - self.transform.c) / self.transform.a
        row = (other.transform.f - self.transform.f) / self.transform.e
        if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
            return None
        r, c = round(row), round(col)
        return slice(r, r + other.height), slice(c, c + other.width)


@lru_cache(maxsize=16)
def _transformer(src: str, dst: str) -> Transformer:
    """One transformer per pair of CRSs, made once.

    Making one takes about 0.4 ms (a report of 800 polygons made one per ring: 1.2 s).
    pyproj's transformers may be shared between threads (pyproj >= 3.1).
    """
    return Transformer.from_crs(src, dst, always_xy=True)


def to_lonlat(geom: Polygon | MultiPolygon, crs: str, *, densify: int = 0) -> Polygon:
    """Reproject a geometry from ``crs`` to EPSG:4326 (lon, lat)."""
    if densify and isinstance(geom, Polygon) and geom.exterior is not None:
        seg = geom.exterior.length / max(densify * 4, 4)
        geom = geom.segmentize(seg) if seg > 0 else geom
    t = _transformer(crs, "EPSG:4326")
    return shapely.transform(geom, t.transform, interleaved=False)


def from_lonlat(geom: Polygon | MultiPolygon, crs: str) -> Polygon:
    """Reproject a lon/lat geometry into ``crs``."""
    t = _transformer("EPSG:4326", crs)
    return shapely.transform(geom, t.transform, interleaved=False)
