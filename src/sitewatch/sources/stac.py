"""STAC search for Sentinel-2 L2A and Landsat C2 L2 scenes, ranked by AOI-local clear sky.

The scene-wide ``eo:cloud_cover`` says little about a 10 km² facility in a 110 km tile,
so every candidate's cloud mask (Sentinel-2 ``scl``, Landsat ``qa_pixel``) is read over
the AOI window only — a few COG tiles by HTTP range requests — and the share of clear
AOI pixels decides the ranking.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import numpy as np
import rasterio
import rasterio.features
from affine import Affine
from rasterio.errors import RasterioError
from rasterio.windows import Window

from sitewatch.aoi import AOI
from sitewatch.errors import AOIError, InputError, SourceError
from sitewatch.grid import from_lonlat
from sitewatch.prepare.masks import clear_from_qa_pixel, clear_from_scl

__all__ = [
    "COLLECTIONS",
    "DEFAULT_STAC_URL",
    "GDAL_HTTP_OPTIONS",
    "SceneCandidate",
    "clear_fraction",
    "parse_window",
    "search_scenes",
    "stac_url",
]

DEFAULT_STAC_URL = "https://earth-search.aws.element84.com/v1"
COLLECTIONS = {
    "s2": ("sentinel-2-c1-l2a", "scl"),
    "landsat": ("landsat-c2-l2", "qa_pixel"),
}
"""Source name → (STAC collection, cloud-mask asset key) on Earth Search v1."""

GDAL_HTTP_OPTIONS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no sidecar probing
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "VSI_CACHE": "TRUE",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
    "GDAL_HTTP_MAX_RETRY": "0",  # retries are ours, with backoff and a clear error
    "GDAL_HTTP_TIMEOUT": "30",
}
"""GDAL settings that keep a windowed COG read to the header and the touched tiles."""

RETRIES = 3
BACKOFF_S = 0.5

T = TypeVar("T")


def stac_url(url: str | None = None) -> str:
    """The STAC API root: ``url``, else ``$SITEWATCH_STAC_URL``, else Earth Search v1."""
    return url or os.environ.get("SITEWATCH_STAC_URL") or DEFAULT_STAC_URL


_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


def parse_window(text: str) -> tuple[str, str]:
    """A date, month or ``start/end`` window as inclusive ISO dates.

    Examples
    --------
    >>> parse_window("2024-10-05")
    ('2024-10-05', '2024-10-05')
    >>> parse_window("2020-02")
    ('2020-02-01', '2020-02-29')
    >>> parse_window("2020-05-01/2020-09-30")
    ('2020-05-01', '2020-09-30')
    """
    import calendar
    import datetime as dt

    parts = text.split("/")
    if len(parts) > 2 or not all(_DATE.match(p) for p in parts):
        raise InputError(
            f"date {text!r} is not YYYY-MM-DD, YYYY-MM or START/END (e.g. 2020-05-01/2020-09-30)"
        )

    def bounds(p: str) -> tuple[dt.date, dt.date]:
        try:
            if len(p) == 7:
                y, m = int(p[:4]), int(p[5:])
                return dt.date(y, m, 1), dt.date(y, m, calendar.monthrange(y, m)[1])
            d = dt.date.fromisoformat(p)
        except ValueError as err:
            raise InputError(f"date {p!r} does not exist ({err})") from None
        return d, d

    start = bounds(parts[0])[0]
    end = bounds(parts[-1])[1]
    if end < start:
        raise InputError(f"window {text!r} ends before it starts")
    return start.isoformat(), end.isoformat()


@dataclass(frozen=True)
class SceneCandidate:
    """One STAC item over the AOI, with its AOI-local clear fraction.

    Attributes
    ----------
    item_id, collection : str
    datetime : str
        Acquisition time (ISO 8601, UTC).
    platform, tile : str
    cloud_cover : float or None
        Scene-wide ``eo:cloud_cover`` (percent) as the catalog states it.
    clear_fraction : float or None
        Share of AOI pixels the cloud mask calls clear (None if not computed).
    aoi_pixels : int
        Mask pixels inside the AOI.
    mask_href : str or None
        The cloud-mask asset read.
    """

    item_id: str
    collection: str
    datetime: str
    platform: str
    tile: str
    cloud_cover: float | None
    clear_fraction: float | None
    aoi_pixels: int
    mask_href: str | None
    item: Any = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without the pystac item)."""
        d = asdict(self)
        d.pop("item", None)
        return d


def _retry(what: str, fn: Callable[[], T], *, retries: int = RETRIES) -> T:
    """Call ``fn``, retrying source failures with exponential backoff, then SourceError."""
    last: Exception | None = None
    for attempt in range(retries):
        try:
            return fn()
        except (RasterioError, OSError) as err:  # network, 5xx, truncated bodies
            last = err
            if attempt + 1 < retries:
                time.sleep(BACKOFF_S * 2**attempt)
    reason = str(last).splitlines()[0] if last else "unknown error"
    raise SourceError(
        f"cannot read {what} after {retries} tries ({reason}); check the network or the "
        "STAC URL (--stac-url) and try again"
    )


class _GDALComplaints(logging.Handler):
    """Collects what GDAL reports while reading (rasterio forwards it to logging)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _gdal_http() -> Iterator[None]:
    """GDAL HTTP settings, and strict reads: a failed range request raises.

    GDAL only *warns* when a tile request fails (HTTP 5xx, truncated body) and may
    hand back a block of fill values; a silently corrupted cloud mask would rank
    scenes wrongly, so any such complaint becomes an error (and a retry).
    """
    handler = _GDALComplaints()
    logger = logging.getLogger("rasterio._err")
    logger.addHandler(handler)
    try:
        with rasterio.Env(**GDAL_HTTP_OPTIONS):
            yield
    finally:
        logger.removeHandler(handler)
    bad = [m for m in handler.messages if re.search(r"fail|error|truncat|timeout", m, re.I)]
    if bad:
        raise OSError(bad[0])


def clear_fraction(aoi: AOI, href: str, *, kind: str = "scl") -> tuple[float, int]:
    """Read a cloud-mask COG over the AOI window only and return (clear share, pixels).

    Parameters
    ----------
    aoi : AOI
        Located AOI.
    href : str
        URL or path of the SCL (``kind="scl"``) or QA_PIXEL (``"qa_pixel"``) asset.

    Raises
    ------
    SourceError
        If the asset cannot be read after retries.
    AOIError
        If the AOI does not overlap the asset.
    """
    if aoi.geometry is None:
        raise AOIError(f"AOI {aoi.id!r} is unlocated; it has no window to read")

    def read() -> tuple[np.ndarray, Any, Any]:
        with _gdal_http(), rasterio.open(href) as ds:
            shape = from_lonlat(aoi.geometry, ds.crs.to_string())
            # Pixel window by hand: rasterio's window helpers still use affine's
            # deprecated `*` operator.
            inv = ~ds.transform
            left, bottom, right, top = shape.bounds
            corners = ((left, top), (right, top), (left, bottom), (right, bottom))
            cols, rows = zip(*(inv @ c for c in corners), strict=True)
            c0, r0 = max(0, math.floor(min(cols))), max(0, math.floor(min(rows)))
            c1, r1 = min(ds.width, math.ceil(max(cols))), min(ds.height, math.ceil(max(rows)))
            if c1 <= c0 or r1 <= r0:
                raise rasterio.errors.WindowError(f"AOI outside {href}")
            data = ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
            return data, ds.transform @ Affine.translation(c0, r0), shape

    try:
        data, transform, shape = _retry(href, read)
    except rasterio.errors.WindowError:
        raise AOIError(f"AOI {aoi.id!r} does not overlap {href}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        inside = rasterio.features.rasterize(
            [(shape, 1)],
            out_shape=data.shape,
            transform=transform,
            fill=0,
            dtype="uint8",
            all_touched=True,
        ).astype(bool)
    clear = clear_from_scl(data) if kind == "scl" else clear_from_qa_pixel(data)
    n = int(inside.sum())
    return (float((clear & inside).sum() / n) if n else 0.0), n


def _item_value(item: Any, *keys: str) -> Any:
    for k in keys:
        v = item.properties.get(k)
        if v is not None:
            return v
    return None


def search_scenes(
    aoi: AOI,
    start: str,
    end: str,
    *,
    source: str = "s2",
    url: str | None = None,
    max_cloud: float | None = None,
    limit: int = 200,
    local_clear: bool = True,
) -> list[SceneCandidate]:
    """Find scenes over an AOI between two dates, ranked by AOI-local clear fraction.

    Parameters
    ----------
    aoi : AOI
        Located AOI.
    start, end : str
        Inclusive ISO dates.
    source : {"s2", "landsat"}
    url : str, optional
        STAC API root (default: :func:`stac_url`).
    max_cloud : float, optional
        Drop items whose scene-wide ``eo:cloud_cover`` exceeds this percentage
        (applied here, not by the server, so it works with every API).
    limit : int
        Most items to consider.
    local_clear : bool
        Read each item's cloud mask over the AOI (a few kB per item).

    Returns
    -------
    list of SceneCandidate
        Clearest over the AOI first; ties go to the scene closest to the middle of
        the window.

    Raises
    ------
    AOIError, InputError, SourceError
    """
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    if aoi.geometry is None:
        raise AOIError(
            f"AOI {aoi.id!r} has no sourced location; draw a polygon and pass --aoi-file"
        )
    if source not in COLLECTIONS:
        raise InputError(f"unknown source {source!r}; choose one of {', '.join(COLLECTIONS)}")
    collection, mask_key = COLLECTIONS[source]
    api = stac_url(url)

    def query() -> list[Any]:
        client = Client.open(api)
        search = client.search(
            collections=[collection],
            bbox=list(aoi.geometry.bounds),
            datetime=f"{start}T00:00:00Z/{end}T23:59:59Z",
            max_items=limit,
        )
        return list(search.items())

    try:
        items = _retry(f"the STAC API {api}", query)
    except APIError as err:
        raise SourceError(f"the STAC API {api} refused the search: {err}") from err
    out: list[SceneCandidate] = []
    for item in items:
        cloud = _item_value(item, "eo:cloud_cover")
        if max_cloud is not None and cloud is not None and float(cloud) > max_cloud:
            continue
        asset = item.assets.get(mask_key)
        frac: float | None = None
        npx = 0
        if local_clear and asset is not None:
            frac, npx = clear_fraction(aoi, asset.href, kind=mask_key)
        tile = _item_value(item, "grid:code", "mgrs:grid_square", "landsat:wrs_path") or ""
        out.append(
            SceneCandidate(
                item_id=item.id,
                collection=item.collection_id or collection,
                datetime=item.datetime.isoformat() if item.datetime else "",
                platform=str(_item_value(item, "platform") or ""),
                tile=str(tile),
                cloud_cover=None if cloud is None else float(cloud),
                clear_fraction=frac,
                aoi_pixels=npx,
                mask_href=asset.href if asset is not None else None,
                item=item,
            )
        )
    centre = _centre(start, end)
    out.sort(
        key=lambda c: (
            -(c.clear_fraction if c.clear_fraction is not None else -1),
            _days_from(c.datetime, centre),
        )
    )
    return out


def _centre(start: str, end: str) -> float:
    import datetime as dt

    a, b = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    return (a.toordinal() + b.toordinal()) / 2


def _days_from(when: str, centre: float) -> float:
    import datetime as dt

    try:
        return abs(dt.date.fromisoformat(when[:10]).toordinal() - centre)
    except ValueError:
        return float("inf")


S2_ASSETS = {
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B08": "nir",
    "B11": "swir16",
    "B12": "swir22",
}
"""Sentinel-2 band → Earth Search asset key, for the bands the detector uses."""
LANDSAT_ASSETS = {
    "SR_B2": "blue",
    "SR_B3": "green",
    "SR_B4": "red",
    "SR_B5": "nir08",
    "SR_B6": "swir16",
    "SR_B7": "swir22",
}


class StacSource:
    """A STAC item read like a local source: windowed remote reads onto a Grid.

    Parameters
    ----------
    item : pystac.Item
        Earth Search style item (asset keys ``blue``, ``nir`` ..., ``raster:bands``
        scale/offset, ``proj:epsg``/``proj:transform``/``proj:shape``).
    mask_key : str
        ``"scl"`` or ``"qa_pixel"``.
    """

    kind = "stac-item"
    georeferenced = True

    def __init__(self, item: Any, *, mask_key: str = "scl") -> None:
        self.item = item
        self.mask_key = mask_key
        table = S2_ASSETS if mask_key == "scl" else LANDSAT_ASSETS
        self.assets = {b: k for b, k in table.items() if k in item.assets}
        if len(self.assets) < 3:
            raise SourceError(f"item {item.id} lacks the band assets {list(table.values())}")
        self.path = item.get_self_href() or item.id
        self.acquired = item.datetime.date().isoformat() if item.datetime else None
        self.grid = self._grid()

    @property
    def band_names(self) -> tuple[str, ...]:
        """Band names (Sentinel-2 or Landsat style)."""
        return tuple(self.assets)

    def _grid(self) -> Any:
        from sitewatch.grid import Grid

        ref = self.item.assets[self.assets[next(iter(self.assets))]]

        def prop(key: str) -> Any:
            return ref.extra_fields.get(key) or self.item.properties.get(key)

        # Projection extension v1 writes proj:epsg; v2 (STAC 1.1) writes proj:code.
        code = prop("proj:code") or (f"EPSG:{prop('proj:epsg')}" if prop("proj:epsg") else None)
        transform, shape = prop("proj:transform"), prop("proj:shape")
        if not (code and transform and shape):
            raise SourceError(f"item {self.item.id} lacks proj:code/epsg, transform, shape")
        return Grid(str(code), Affine(*transform[:6]), int(shape[1]), int(shape[0]))

    def bounds_in(self, crs: str) -> tuple[float, float, float, float]:
        """Item grid bounds in ``crs``."""
        from rasterio.warp import transform_bounds

        return transform_bounds(self.grid.crs, crs, *self.grid.bounds, densify_pts=21)

    def _scale(self, key: str) -> tuple[float, float]:
        bands = self.item.assets[key].extra_fields.get("raster:bands") or [{}]
        return float(bands[0].get("scale", 1.0)), float(bands[0].get("offset", 0.0))

    def describe(self) -> dict[str, Any]:
        """Manifest entry: item id, collection, asset hrefs, scale/offset used."""
        return {
            "kind": self.kind,
            "item_id": self.item.id,
            "collection": self.item.collection_id,
            "datetime": self.item.datetime.isoformat() if self.item.datetime else None,
            "acquired": self.acquired,
            "bands": list(self.band_names),
            "assets": {
                b: {
                    "key": k,
                    "href": self.item.assets[k].href,
                    "scale_offset": list(self._scale(k)),
                }
                for b, k in self.assets.items()
            },
            "mask_band": self.mask_key if self.mask_key in self.item.assets else None,
            "mask_href": (
                self.item.assets[self.mask_key].href if self.mask_key in self.item.assets else None
            ),
        }

    def read(self, grid: Any, *, bands: Sequence[str] | None = None) -> Any:
        """Read the AOI window of each band (and the cloud mask) onto ``grid``.

        Reflectance = DN × scale + offset from the asset's ``raster:bands`` (for
        Sentinel-2 C1 this includes the −0.1 offset of processing baseline ≥ 04.00).
        """
        from sitewatch.sources.local import BandRef, _read_band, _read_clear, assemble_scene

        names = list(bands) if bands is not None else list(self.band_names)
        out = np.full((len(names), grid.height, grid.width), np.nan, dtype=np.float32)
        nodata_any = np.zeros(grid.shape, dtype=bool)
        for i, name in enumerate(names):
            key = self.assets[name]
            href = self.item.assets[key].href

            def read_one(i: int = i, href: str = href) -> None:
                with _gdal_http(), rasterio.open(href) as ds:
                    _read_band(ds, 1, grid, out[i], ds.nodata)

            _retry(href, read_one)
            nodata_any |= ~np.isfinite(out[i])
            scale, offset = self._scale(key)
            out[i] = out[i] * np.float32(scale) + np.float32(offset)
        clear = None
        if self.mask_key in self.item.assets:
            href = self.item.assets[self.mask_key].href
            ref = BandRef("SCL" if self.mask_key == "scl" else "QA_PIXEL", href, 1)  # type: ignore[arg-type]

            def read_mask() -> np.ndarray:
                with _gdal_http(), rasterio.open(href) as ds:
                    return _read_clear(ds, ref, grid)

            clear = _retry(href, read_mask)
        return assemble_scene(
            out,
            ~nodata_any,
            grid,
            names=names,
            acquired=self.acquired,
            clear=clear,
            provenance={
                "path": self.path,
                "kind": self.kind,
                "item_id": self.item.id,
                "mask_band": self.mask_key,
            },
        )
