"""Esri World Imagery Wayback: which very-high-resolution vintages exist over an AOI.

Wayback republishes the World Imagery basemap about monthly; most releases carry the
same picture of a given place as the release before. This module lists the *distinct*
pictures at the AOI's representative point, newest first, the way Esri's own
``wayback-core`` does: ask the tilemap endpoint of the newest release which release
actually carries the tile (``select``), record it, and continue from the release just
older than that one. Each distinct release then gets its capture metadata (date,
provider, sensor, resolution) from the release's metadata service, because the
*release* date says nothing about when the satellite took the picture.

:func:`snapshot` fetches the few tiles over an AOI from one release and writes a static
PNG view with the AOI outline, the attribution and a JSON sidecar. Tiles are held in
memory only: Esri's terms allow on-demand viewing with attribution, not storing,
caching or redistributing the imagery.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import math
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import rasterio
import rasterio.features
import shapely
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import MemoryFile
from shapely.geometry import MultiPolygon, Polygon

from sitewatch.aoi import AOI
from sitewatch.errors import AOIError, InputError, OutputError, SourceError
from sitewatch.sources._http import retry, urlopen

__all__ = [
    "ATTRIBUTION",
    "DEFAULT_ZOOM",
    "TERMS_NOTE",
    "WAYBACK_CONFIG_URL",
    "Release",
    "Snapshot",
    "Vintage",
    "aoi_point",
    "capture_metadata",
    "distinct_releases",
    "find_release",
    "list_vintages",
    "load_releases",
    "lonlat_to_mercator",
    "lonlat_to_tile",
    "metadata_layer_id",
    "snapshot",
    "tile_bounds",
    "tile_range",
    "tile_resolution",
    "wayback_config_url",
]

WAYBACK_CONFIG_URL = (
    "https://s3-us-west-2.amazonaws.com/config.maptiles.arcgis.com/waybackconfig.json"
)
"""Esri's list of every Wayback release (``$SITEWATCH_WAYBACK_CONFIG`` overrides)."""

ATTRIBUTION = "Esri, Maxar, Earthstar Geographics, and the GIS User Community"
"""Attribution Esri requires on any view of World Imagery."""

TERMS_NOTE = (
    "Esri World Imagery Wayback terms: on-demand viewing with attribution only; "
    "do not scrape, store, cache or redistribute the tiles"
)

DEFAULT_ZOOM = 17
"""Zoom of the vintage walk and the highest zoom :func:`snapshot` picks by itself."""
MAX_ZOOM = 23
TILE_PX = 256
EARTH_RADIUS_M = 6378137.0
HALF_WORLD_M = math.pi * EARTH_RADIUS_M
"""Half the width of the Web Mercator (EPSG:3857) world, 20 037 508.34 m."""
MAX_LAT = math.degrees(math.atan(math.sinh(math.pi)))
"""Latitude of the top edge of the Web Mercator world, about 85.0511°."""

OUTLINE_RGB = (255, 0, 255)
MISSING_TILE_GREY = 128
METADATA_FIELDS = ("SRC_DATE2", "NICE_DESC", "SRC_DESC", "SAMP_RES", "SRC_ACC")

_TITLE_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TILE_PATH = re.compile(r"/(?:WMTS/1\.0\.0/[^/]+/)?MapServer/tile/")

T = TypeVar("T")


# ---------------------------------------------------------------------------
# Web Mercator tile maths (XYZ scheme; Esri's level/row/col = z/y/x)
# ---------------------------------------------------------------------------


def lonlat_to_mercator(lon: float, lat: float) -> tuple[float, float]:
    """Project lon/lat degrees to Web Mercator metres (latitude clamped to ±85.0511°).

    Examples
    --------
    >>> lonlat_to_mercator(0.0, 0.0)
    (0.0, 0.0)
    >>> [round(v, 2) for v in lonlat_to_mercator(180.0, 90.0)]
    [20037508.34, 20037508.34]
    """
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    x = EARTH_RADIUS_M * math.radians(lon)
    y = EARTH_RADIUS_M * math.asinh(math.tan(math.radians(lat)))
    return x, y


def tile_resolution(zoom: int) -> float:
    """Ground size of one tile pixel at ``zoom``, in Web Mercator metres.

    Examples
    --------
    >>> round(tile_resolution(0), 4)
    156543.0339
    >>> round(tile_resolution(17), 4)
    1.1943
    """
    return 2 * HALF_WORLD_M / (TILE_PX * 2**zoom)


def _fractional_tile(lon: float, lat: float, zoom: int) -> tuple[float, float]:
    x, y = lonlat_to_mercator(lon, lat)
    n = 2**zoom
    return (x + HALF_WORLD_M) / (2 * HALF_WORLD_M) * n, (HALF_WORLD_M - y) / (2 * HALF_WORLD_M) * n


def lonlat_to_tile(lon: float, lat: float, zoom: int) -> tuple[int, int]:
    """The ``(col, row)`` of the XYZ tile holding a lon/lat point at ``zoom``.

    Examples
    --------
    >>> lonlat_to_tile(0.0, 0.0, 1)
    (1, 1)
    >>> lonlat_to_tile(-180.0, 85.0, 3)
    (0, 0)
    >>> lonlat_to_tile(180.0, -85.06, 2)  # the far edges stay inside the world
    (3, 3)
    >>> lonlat_to_tile(127.657, 39.920, 17)  # February 11 Plant
    (112014, 49659)
    """
    fx, fy = _fractional_tile(lon, lat, zoom)
    last = 2**zoom - 1
    return min(last, max(0, math.floor(fx))), min(last, max(0, math.floor(fy)))


def tile_range(bounds: Sequence[float], zoom: int) -> tuple[int, int, int, int]:
    """Inclusive ``(col0, row0, col1, row1)`` of the tiles covering a lon/lat bbox.

    A bbox edge lying exactly on a tile edge does not pull in the next tile.

    Examples
    --------
    >>> tile_range((-180.0, -85.0, 180.0, 85.0), 1)
    (0, 0, 1, 1)
    >>> tile_range((0.0, 0.0, 90.0, 40.0), 2)  # east edge on a tile edge
    (2, 1, 2, 1)
    """
    west, south, east, north = bounds
    last = 2**zoom - 1
    fx0, fy0 = _fractional_tile(west, north, zoom)
    fx1, fy1 = _fractional_tile(east, south, zoom)
    col0, row0 = min(last, max(0, math.floor(fx0))), min(last, max(0, math.floor(fy0)))
    col1 = min(last, max(col0, math.ceil(fx1) - 1))
    row1 = min(last, max(row0, math.ceil(fy1) - 1))
    return col0, row0, col1, row1


def tile_bounds(col: int, row: int, zoom: int) -> tuple[float, float, float, float]:
    """``(xmin, ymin, xmax, ymax)`` of an XYZ tile in Web Mercator metres.

    Examples
    --------
    >>> [round(v) for v in tile_bounds(0, 0, 0)]
    [-20037508, -20037508, 20037508, 20037508]
    >>> [round(v) for v in tile_bounds(1, 0, 1)]
    [0, 0, 20037508, 20037508]
    """
    size = 2 * HALF_WORLD_M / 2**zoom
    xmin = -HALF_WORLD_M + col * size
    ymax = HALF_WORLD_M - row * size
    return xmin, ymax - size, xmin + size, ymax


def metadata_layer_id(zoom: int) -> int:
    """Sub-layer of a Wayback metadata service for ``zoom`` (23 - zoom, in 0..13).

    Examples
    --------
    >>> metadata_layer_id(17), metadata_layer_id(23), metadata_layer_id(5)
    (6, 0, 13)
    """
    return min(13, max(0, MAX_ZOOM - zoom))


def _check_zoom(zoom: int) -> int:
    if isinstance(zoom, bool) or not isinstance(zoom, int) or not 0 <= zoom <= MAX_ZOOM:
        raise InputError(f"zoom {zoom!r} is not a whole number 0–{MAX_ZOOM}; try --zoom 17")
    return zoom


# ---------------------------------------------------------------------------
# HTTP: stdlib urllib with connect and read time limits (``_http.urlopen``: 10 s and
# 20 s, ``$SITEWATCH_HTTP_TIMEOUT``), retries with backoff, one-line SourceError at the end
# ---------------------------------------------------------------------------


class _Transient(Exception):
    """A failure worth another try (network, 5xx, truncated or invalid body)."""


def wayback_config_url(url: str | None = None) -> str:
    """The config URL: ``url``, else ``$SITEWATCH_WAYBACK_CONFIG``, else Esri's."""
    return url or os.environ.get("SITEWATCH_WAYBACK_CONFIG") or WAYBACK_CONFIG_URL


def _user_agent() -> str:
    from sitewatch import __version__

    return f"sitewatch/{__version__}"


def _with_query(url: str, params: Mapping[str, str] | None) -> str:
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode(params)}"


def _request(url: str) -> bytes | None:
    """One GET; ``None`` on 404, :class:`_Transient` on what a retry may fix."""
    req = urllib.request.Request(url, headers={"User-Agent": _user_agent()})
    try:
        with urlopen(req) as resp:
            return resp.read()
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 404:
            return None
        if err.code >= 500 or err.code in (408, 429):
            raise _Transient(f"HTTP {err.code}") from None
        raise SourceError(
            f"{url.split('?')[0]} answered HTTP {err.code}; check the network or --wayback-config"
        ) from None
    except (OSError, http.client.HTTPException) as err:  # URLError, timeout, reset, truncated
        reason = getattr(err, "reason", None) or err
        text = str(reason).splitlines()[0] if str(reason) else type(err).__name__
        raise _Transient(text) from err  # the cause tells retry a DNS failure from a timeout


def _with_retries(url: str, once: Callable[[], T]) -> T:
    """Call ``once`` with the package's retries, backoff and failure wording (``_http.retry``)."""
    return retry(
        f"Esri Wayback {url}",
        once,
        hint="check the network or --wayback-config",
        option="--wayback-config",
        transient=(_Transient,),
    )


def _get_json(url: str, params: Mapping[str, str] | None = None) -> Any:
    """GET a JSON document; an ArcGIS ``{"error": ...}`` body counts as a failure."""
    full = _with_query(url, params)

    def once() -> Any:
        body = _request(full)
        if body is None:
            raise SourceError(f"{url} was not found (HTTP 404); check --wayback-config")
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise _Transient(f"invalid JSON: {err}") from None
        if isinstance(doc, dict) and "error" in doc:
            info = doc["error"] if isinstance(doc["error"], dict) else {}
            code = info.get("code")
            what = f"ArcGIS error {code if code is not None else '?'}: "
            what += (str(info.get("message", doc["error"])).splitlines() or ["no message"])[0]
            if isinstance(code, int) and 400 <= code < 500 and code not in (408, 429):
                raise SourceError(f"{url} answered {what}; check --wayback-config")
            raise _Transient(what)
        return doc

    return _with_retries(url, once)


def _decode_tile(body: bytes) -> np.ndarray:
    """JPEG/PNG bytes → (3, 256, 256) uint8 RGB, decoded in memory only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(body) as mem, mem.open() as ds:
            data = ds.read()
    if data.dtype != np.uint8 or data.shape[1:] != (TILE_PX, TILE_PX):
        raise RasterioError(f"{data.dtype} {data.shape[2]}×{data.shape[1]} px, not 8-bit 256×256")
    alpha = None
    if data.shape[0] in (2, 4):
        alpha, data = data[-1], data[:-1]
    rgb = np.repeat(data, 3, axis=0) if data.shape[0] == 1 else data[:3].copy()
    if alpha is not None:
        rgb[:, alpha == 0] = MISSING_TILE_GREY
    return rgb


def _get_tile(url: str) -> np.ndarray | None:
    """One decoded tile, or ``None`` when the release has no tile there (HTTP 404)."""

    def once() -> np.ndarray | None:
        body = _request(url)
        if body is None:
            return None
        try:
            return _decode_tile(body)
        except RasterioError as err:
            raise _Transient(f"undecodable tile: {str(err).splitlines()[0]}") from None

    return _with_retries(url, once)


# ---------------------------------------------------------------------------
# Releases, the distinct-vintage walk, capture metadata
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """One World Imagery Wayback release (a republication of the basemap).

    Attributes
    ----------
    number : int
        Release number, the key of the config; **not** chronological.
    release_date : str
        ISO date Esri published the release (from the title), not a capture date.
    title : str
        E.g. ``"World Imagery (Wayback 2014-02-20)"``.
    item_url : str
        Tile URL template with ``{level}``, ``{row}``, ``{col}``.
    metadata_url : str
        The release's metadata MapServer (capture date, sensor, ... per area).
    layer_identifier : str
        WMTS layer identifier, e.g. ``"WB_2014_R01"``.
    """

    number: int
    release_date: str
    title: str
    item_url: str
    metadata_url: str
    layer_identifier: str

    def tile_url(self, col: int, row: int, zoom: int) -> str:
        """URL of one imagery tile of this release."""
        return (
            self.item_url.replace("{level}", str(zoom))
            .replace("{row}", str(row))
            .replace("{col}", str(col))
        )

    def tilemap_url(self, col: int, row: int, zoom: int) -> str:
        """URL of the tilemap answer: which release really carries this tile.

        Examples
        --------
        >>> r = Release(10, "2014-02-20", "", "https://wayback.maptiles.arcgis.com/arcgis/"
        ...     "rest/services/World_Imagery/WMTS/1.0.0/default028mm/MapServer/tile/10/"
        ...     "{level}/{row}/{col}", "", "")
        >>> r.tilemap_url(112014, 49659, 17)
        'https://wayback.maptiles.arcgis.com/arcgis/rest/services/World_Imagery/MapServer/tilemap/10/17/49659/112014'
        """
        if not _TILE_PATH.search(self.item_url):
            raise SourceError(
                f"release {self.number}: cannot derive a tilemap URL from {self.item_url} "
                "(no '/MapServer/tile/'); check --wayback-config"
            )
        template = _TILE_PATH.sub("/MapServer/tilemap/", self.item_url, count=1)
        return (
            template.replace("{level}", str(zoom))
            .replace("{row}", str(row))
            .replace("{col}", str(col))
        )

    def metadata_query_url(self, zoom: int) -> str:
        """URL of the metadata query for tiles at ``zoom``."""
        return f"{self.metadata_url.rstrip('/')}/{metadata_layer_id(zoom)}/query"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Vintage:
    """A distinct picture at a point: the release carrying it and when it was captured.

    Attributes
    ----------
    release : Release
    capture_date : str or None
        Acquisition date (UTC, ISO) from ``SRC_DATE2``; ``None`` if the metadata
        service has no record at the point.
    provider, sensor : str or None
        ``NICE_DESC`` (e.g. "Maxar") and ``SRC_DESC`` (e.g. "WV03").
    resolution_m, accuracy_m : float or None
        ``SAMP_RES`` ground sample distance and ``SRC_ACC`` positional accuracy.
    """

    release: Release
    capture_date: str | None
    provider: str | None = None
    sensor: str | None = None
    resolution_m: float | None = None
    accuracy_m: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready flat dict (release fields first)."""
        r = self.release
        return {
            "release": r.number,
            "release_date": r.release_date,
            "capture_date": self.capture_date,
            "provider": self.provider,
            "sensor": self.sensor,
            "resolution_m": self.resolution_m,
            "accuracy_m": self.accuracy_m,
            "title": r.title,
            "layer_identifier": r.layer_identifier,
        }


def _release_from(key: str, entry: Any) -> Release | None:
    if not isinstance(entry, Mapping):
        return None
    title = entry.get("itemTitle")
    url = entry.get("itemURL")
    match = _TITLE_DATE.search(title) if isinstance(title, str) else None
    if match is None or not isinstance(url, str):
        return None
    try:
        number = int(key)
        date = dt.date.fromisoformat(match.group(0))
    except ValueError:
        return None
    return Release(
        number=number,
        release_date=date.isoformat(),
        title=title,
        item_url=url,
        metadata_url=str(entry.get("metadataLayerUrl") or ""),
        layer_identifier=str(entry.get("layerIdentifier") or ""),
    )


def load_releases(config_url: str | None = None) -> list[Release]:
    """Every Wayback release, oldest first (by the date in the title, not the number).

    Entries without a dated title or a tile URL are skipped.

    Parameters
    ----------
    config_url : str, optional
        Config JSON (default: ``$SITEWATCH_WAYBACK_CONFIG`` or :data:`WAYBACK_CONFIG_URL`).

    Raises
    ------
    SourceError
        If the config cannot be read after retries or holds no usable release.
    """
    url = wayback_config_url(config_url)
    doc = _get_json(url)
    if not isinstance(doc, Mapping):
        raise SourceError(f"{url} is not a Wayback config (a JSON object keyed by release)")
    releases = [r for k, v in doc.items() if (r := _release_from(str(k), v)) is not None]
    if not releases:
        raise SourceError(f"{url} lists no usable Wayback release; check --wayback-config")
    return sorted(releases, key=lambda r: (r.release_date, r.number))


def find_release(releases: Sequence[Release], number: int) -> Release:
    """The release numbered ``number``, or InputError naming the newest ones."""
    for r in releases:
        if r.number == number:
            return r
    newest = ", ".join(str(r.number) for r in list(releases)[::-1][:3])
    raise InputError(
        f"release {number} is not in the Wayback config; use one listed by "
        f"'sitewatch wayback AOI_ID' (newest: {newest}) or 'latest'"
    )


def aoi_point(aoi: AOI | Polygon | MultiPolygon) -> tuple[float, float]:
    """``(lon, lat)`` of a point surely inside the AOI polygon (representative point)."""
    geom = _geometry(aoi)
    p = geom.representative_point()
    return float(p.x), float(p.y)


def _geometry(aoi: AOI | Polygon | MultiPolygon) -> Polygon | MultiPolygon:
    geom = aoi.geometry if isinstance(aoi, AOI) else aoi
    if geom is None:
        raise AOIError(
            f"AOI {aoi.id!r} has no location (geometry null); draw its polygon in the "
            "catalog or pass --aoi-file FILE"
        )
    if not isinstance(geom, Polygon | MultiPolygon) or geom.is_empty:
        raise AOIError("the AOI must be a lon/lat Polygon or MultiPolygon")
    return geom


def distinct_releases(
    lon: float, lat: float, *, zoom: int = DEFAULT_ZOOM, releases: Sequence[Release]
) -> list[Release]:
    """Releases carrying a distinct picture of the tile at a point, newest first.

    Walks newest → oldest: the tilemap answer of a release names (``select``) the
    release whose imagery it actually shows; that one is recorded and the walk goes
    on from the release just older than it, until a tilemap says there is no data.

    Parameters
    ----------
    lon, lat : float
        Point in degrees.
    zoom : int
        Tile level (default 17).
    releases : sequence of Release
        All releases, oldest first (:func:`load_releases`).

    Raises
    ------
    SourceError
        If a tilemap cannot be read after retries or is not a tilemap answer.
    """
    _check_zoom(zoom)
    col, row = lonlat_to_tile(lon, lat, zoom)
    ordered = sorted(releases, key=lambda r: (r.release_date, r.number))
    index = {r.number: i for i, r in enumerate(ordered)}
    out: list[Release] = []
    i = len(ordered) - 1
    while i >= 0:
        url = ordered[i].tilemap_url(col, row, zoom)
        doc = _get_json(url)
        data = doc.get("data") if isinstance(doc, Mapping) else None
        if not isinstance(data, list):
            raise SourceError(f"{url} is not a tilemap answer (no 'data' list)")
        if not data or not data[0]:
            break
        select = doc.get("select") or []
        chosen = index.get(int(select[0]), i) if select and select[0] else i
        chosen = min(chosen, i)  # a tilemap never points to a newer release; stay monotone
        out.append(ordered[chosen])
        i = chosen - 1
    return out


def _epoch_ms_to_date(value: Any) -> str | None:
    """``SRC_DATE2`` (epoch milliseconds, UTC) → ISO date.

    Examples
    --------
    >>> _epoch_ms_to_date(1633219200000)
    '2021-10-03'
    >>> _epoch_ms_to_date(None) is None
    True
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC).date().isoformat()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None


def capture_metadata(
    release: Release, lon: float, lat: float, *, zoom: int = DEFAULT_ZOOM
) -> Vintage:
    """When, by whom and how sharp the picture of ``release`` at a point was taken.

    Raises
    ------
    SourceError
        If the metadata service fails after retries or answers an ArcGIS error.
    """
    if not release.metadata_url:
        return Vintage(release, None)
    params = {
        "f": "json",
        "where": "1=1",
        "geometry": json.dumps({"spatialReference": {"wkid": 4326}, "x": lon, "y": lat}),
        "geometryType": "esriGeometryPoint",
        "spatialRel": "esriSpatialRelIntersects",
        "returnGeometry": "false",
        "outFields": ",".join(METADATA_FIELDS),
    }
    doc = _get_json(release.metadata_query_url(_check_zoom(zoom)), params)
    feats = doc.get("features") if isinstance(doc, Mapping) else None
    attrs = feats[0].get("attributes") if feats and isinstance(feats[0], Mapping) else None
    if not isinstance(attrs, Mapping):
        return Vintage(release, None)
    return Vintage(
        release=release,
        capture_date=_epoch_ms_to_date(attrs.get("SRC_DATE2")),
        provider=_text(attrs.get("NICE_DESC")),
        sensor=_text(attrs.get("SRC_DESC")),
        resolution_m=_number(attrs.get("SAMP_RES")),
        accuracy_m=_number(attrs.get("SRC_ACC")),
    )


def list_vintages(
    aoi: AOI | Polygon | MultiPolygon,
    *,
    zoom: int = DEFAULT_ZOOM,
    config_url: str | None = None,
    releases: Sequence[Release] | None = None,
) -> list[Vintage]:
    """Distinct Wayback pictures at the AOI's representative point, newest first.

    Parameters
    ----------
    aoi : AOI or shapely Polygon
        Located AOI (lon/lat).
    zoom : int
        Tile level of the walk and of the metadata layer (default 17).
    config_url : str, optional
        Wayback config (default: ``$SITEWATCH_WAYBACK_CONFIG`` or Esri's).
    releases : sequence of Release, optional
        Already loaded releases (skips reading the config).

    Returns
    -------
    list of Vintage
        One per distinct release, with its capture date (not its release date).

    Raises
    ------
    AOIError
        If the AOI has no polygon.
    SourceError
        If the service cannot be read after retries.
    """
    lon, lat = aoi_point(aoi)
    _check_zoom(zoom)
    if releases is None:
        releases = load_releases(config_url)
    return [
        capture_metadata(r, lon, lat, zoom=zoom)
        for r in distinct_releases(lon, lat, zoom=zoom, releases=releases)
    ]


# ---------------------------------------------------------------------------
# Snapshot: a static PNG view of one release over the AOI
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What :func:`snapshot` wrote.

    Attributes
    ----------
    png, sidecar : Path
        The PNG view and its ``<name>.json`` record.
    vintage : Vintage
        Release and capture metadata at the AOI's representative point.
    zoom : int
    size : tuple of int
        ``(width, height)`` in pixels.
    tiles : tuple of str
        Tile URLs fetched (held in memory only).
    missing_tiles : tuple of str
        Tiles the release does not have (HTTP 404), drawn grey.
    """

    png: Path
    sidecar: Path
    vintage: Vintage
    zoom: int
    size: tuple[int, int]
    tiles: tuple[str, ...]
    missing_tiles: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "png": str(self.png),
            "sidecar": str(self.sidecar),
            **self.vintage.as_dict(),
            "zoom": self.zoom,
            "size": list(self.size),
            "tiles": list(self.tiles),
            "missing_tiles": list(self.missing_tiles),
        }


def _tile_count(bounds: Sequence[float], zoom: int) -> int:
    c0, r0, c1, r1 = tile_range(bounds, zoom)
    return (c1 - c0 + 1) * (r1 - r0 + 1)


def _pick_zoom(bounds: Sequence[float], zoom: int | None, max_tiles: int) -> int:
    fits = [z for z in range(DEFAULT_ZOOM, -1, -1) if _tile_count(bounds, z) <= max_tiles]
    if zoom is None:
        return fits[0] if fits else 0
    _check_zoom(zoom)
    n = _tile_count(bounds, zoom)
    if n > max_tiles:
        lower = next((z for z in range(zoom, -1, -1) if _tile_count(bounds, z) <= max_tiles), 0)
        raise InputError(
            f"the AOI needs {n} tiles at zoom {zoom}, more than {max_tiles}; "
            f"use --zoom {lower} or lower"
        )
    return zoom


def _to_mercator(geom: Polygon | MultiPolygon) -> Polygon | MultiPolygon:
    def project(xy: np.ndarray) -> np.ndarray:
        lat = np.clip(xy[:, 1], -MAX_LAT, MAX_LAT)
        x = EARTH_RADIUS_M * np.radians(xy[:, 0])
        y = EARTH_RADIUS_M * np.arcsinh(np.tan(np.radians(lat)))
        return np.column_stack([x, y])

    return shapely.transform(geom, project)


def _remove(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def snapshot(
    aoi: AOI | Polygon | MultiPolygon,
    release: Release | int,
    *,
    out_png: str | os.PathLike[str],
    zoom: int | None = None,
    max_tiles: int = 16,
    config_url: str | None = None,
    outline: Polygon | MultiPolygon | None = None,
) -> Snapshot:
    """Write a static PNG view of one release over the AOI, with its outline.

    Only the tiles covering the AOI bbox are fetched, decoded in memory, mosaicked,
    cropped to the bbox, and the polygon outline is burned in. The PNG carries the
    attribution in its Copyright text chunk; ``<name>.json`` next to it records the
    release, the capture date, the tile URLs and the attribution. Tiles are never
    written to disk. Both files appear atomically, or not at all.

    Parameters
    ----------
    aoi : AOI or shapely Polygon
        Located AOI (lon/lat): the area shown.
    release : Release or int
        Release (or release number, looked up in the config).
    outline : shapely Polygon, optional
        Lon/lat shape outlined in the view (default: ``aoi``), e.g. a flagged
        change inside a wider view.
    out_png : path
        Output ``.png`` in an existing folder (replaced if present).
    zoom : int, optional
        Tile level; default the highest up to 17 needing at most ``max_tiles`` tiles.
    max_tiles : int
        Most tiles fetched (default 16).
    config_url : str, optional
        Wayback config, used only to look up a release number.

    Raises
    ------
    InputError
        If the AOI needs more than ``max_tiles`` tiles at ``zoom``, or the output path
        or release is wrong.
    SourceError
        If tiles or metadata cannot be read after retries, or no tile exists.
    """
    geom = _geometry(aoi)
    out = Path(out_png)
    if out.suffix.lower() != ".png":
        raise InputError(f"--out {out} must end in .png")
    if not out.parent.is_dir():
        raise OutputError(f"folder {out.parent} does not exist; create it or pick another --out")
    if max_tiles < 1:
        raise InputError(f"max_tiles {max_tiles} must be at least 1")
    if isinstance(release, int):
        release = find_release(load_releases(config_url), release)
    bounds = geom.bounds
    z = _pick_zoom(bounds, zoom, max_tiles)
    col0, row0, col1, row1 = tile_range(bounds, z)

    # Fetch and mosaic (memory only).
    ncols, nrows = col1 - col0 + 1, row1 - row0 + 1
    mosaic = np.full((3, nrows * TILE_PX, ncols * TILE_PX), MISSING_TILE_GREY, np.uint8)
    urls, missing = [], []
    for row in range(row0, row1 + 1):
        for col in range(col0, col1 + 1):
            url = release.tile_url(col, row, z)
            urls.append(url)
            tile = _get_tile(url)
            if tile is None:
                missing.append(url)
                continue
            y, x = (row - row0) * TILE_PX, (col - col0) * TILE_PX
            mosaic[:, y : y + TILE_PX, x : x + TILE_PX] = tile
    if len(missing) == len(urls):
        raise SourceError(
            f"release {release.number} has no tiles over the AOI at zoom {z}; "
            "try a lower --zoom or another release"
        )
    lon, lat = aoi_point(geom)
    vintage = capture_metadata(release, lon, lat, zoom=z)

    # Crop to the bbox and burn the outline.
    res = tile_resolution(z)
    left, _, _, top = tile_bounds(col0, row0, z)
    merc = _to_mercator(geom)
    xmin, ymin, xmax, ymax = merc.bounds
    px0 = max(0, math.floor((xmin - left) / res))
    px1 = min(mosaic.shape[2], max(px0 + 1, math.ceil((xmax - left) / res)))
    py0 = max(0, math.floor((top - ymax) / res))
    py1 = min(mosaic.shape[1], max(py0 + 1, math.ceil((top - ymin) / res)))
    image = mosaic[:, py0:py1, px0:px1].copy()
    transform = Affine(res, 0, left + px0 * res, 0, -res, top - py0 * res)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        drawn = merc if outline is None else _to_mercator(outline)
        line = rasterio.features.rasterize(
            [(drawn.boundary.buffer(res), 1)],
            out_shape=image.shape[1:],
            transform=transform,
            fill=0,
            all_touched=True,
            dtype="uint8",
        ).astype(bool)
    for band, value in enumerate(OUTLINE_RGB):
        image[band][line] = value

    # Write PNG + sidecar atomically.
    height, width = image.shape[1:]
    sidecar = out.with_suffix(".json")
    record = {
        "png": out.name,
        "aoi": aoi.id if isinstance(aoi, AOI) else None,
        "bbox_lonlat": [round(v, 7) for v in bounds],
        "point_lonlat": [round(lon, 7), round(lat, 7)],
        **vintage.as_dict(),
        "capture_date_note": "capture metadata at point_lonlat; other tiles may differ",
        "zoom": z,
        "size": [width, height],
        "outline_rgb": list(OUTLINE_RGB),
        "tiles": urls,
        "missing_tiles": missing,
        "attribution": ATTRIBUTION,
        "terms": TERMS_NOTE,
    }
    tmp_png = out.with_name(f".{out.name}.{os.getpid()}.part")
    tmp_json = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.part")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with (
                rasterio.Env(GDAL_PAM_ENABLED="NO"),
                rasterio.open(
                    tmp_png,
                    "w",
                    driver="PNG",
                    width=width,
                    height=height,
                    count=3,
                    dtype="uint8",
                    COPYRIGHT=f"Imagery: {ATTRIBUTION}",
                    DESCRIPTION=f"World Imagery Wayback release {release.number} "
                    f"({release.release_date}), captured {vintage.capture_date or 'unknown'}",
                ) as dst,
            ):
                dst.write(image)
        tmp_json.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", "utf-8")
        os.replace(tmp_png, out)
        os.replace(tmp_json, sidecar)
    except (OSError, RasterioError) as err:
        _remove(tmp_png, tmp_json)
        raise OutputError(f"cannot write {out} ({err}); check the folder is writable") from err
    except BaseException:
        _remove(tmp_png, tmp_json)
        raise
    return Snapshot(
        png=out,
        sidecar=sidecar,
        vintage=vintage,
        zoom=z,
        size=(width, height),
        tiles=tuple(urls),
        missing_tiles=tuple(missing),
    )
