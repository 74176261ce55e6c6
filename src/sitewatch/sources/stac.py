"""STAC search for Sentinel-2 L2A and Landsat C2 L2 scenes, ranked by AOI-local clear sky.

The scene-wide ``eo:cloud_cover`` says little about a 10 km² facility in a 110 km tile,
so every candidate's cloud mask (Sentinel-2 ``scl``, Landsat ``qa_pixel``) is read over
the AOI window only — a few COG tiles by HTTP range requests — and the share of clear
AOI pixels decides the ranking.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import rasterio
import rasterio.features
from affine import Affine
from rasterio.windows import Window

from sitewatch.aoi import AOI
from sitewatch.errors import AOIError, InputError, SourceError
from sitewatch.grid import from_lonlat
from sitewatch.prepare.masks import clear_from_qa_pixel, clear_from_scl
from sitewatch.sources._http import NetStats, classify_failure, gdal_http, retry, timeouts
from sitewatch.sources.cache import Cache, CachedWindow, array_sha256, cache_key
from sitewatch.sources.profiles import (
    EARTH_SEARCH_URL,
    aws_credentials,
    check_s1_access,
    needs_requester_pays,
    normalise_item,
    public_href,
    requester_pays_error,
    resolve_profile,
    sign_items,
)

log = logging.getLogger(__name__)

__all__ = [
    "COLLECTIONS",
    "DEFAULT_STAC_URL",
    "SAME_ACQUISITION_S",
    "AssetWindowRead",
    "MosaicSource",
    "SceneCandidate",
    "StacSource",
    "clear_fraction",
    "group_acquisitions",
    "items_from_dicts",
    "looks_like_date",
    "parse_period",
    "parse_window",
    "scene_source",
    "search_scenes",
    "stac_url",
]

DEFAULT_STAC_URL = EARTH_SEARCH_URL
"""Earth Search v1, the default service for Sentinel-2 (see :mod:`.profiles`)."""
COLLECTIONS = {
    "s2": ("sentinel-2-c1-l2a", "scl"),
    "landsat": ("landsat-c2-l2", "qa_pixel"),
    "s1": ("sentinel-1-rtc", ""),
}
"""Source name → (STAC collection, cloud-mask asset key; none for radar)."""

MARGIN_PX = 4
"""Source pixels read around the AOI (resampling support, grid snapping)."""


def stac_url(url: str | None = None, *, source: str = "s2") -> str:
    """The STAC API root for ``--stac-url`` (a service name or a URL) and a source.

    See :func:`sitewatch.sources.profiles.resolve_profile`: ``$SITEWATCH_STAC_URL``,
    else Earth Search for Sentinel-2 and Planetary Computer for Landsat.
    """
    return resolve_profile(url, source=source).url


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


_FETCHED = frozenset({"root", "parent", "collection", "child", "item", "items"})
"""Link relations pystac resolves by reading their target."""


def items_from_dicts(docs: Sequence[dict[str, Any]]) -> list[Any]:
    """Items (pystac) from STAC item documents, as the catalog wrote them.

    Without ``migrate=False`` pystac "migrates" the ``storage`` extension of real Earth
    Search collection-1 items (``storage:platform`` with https hrefs) and warns
    "Could not parse bucket/account from href" for every item; sitewatch reads the
    documents as they are, so nothing needs migrating.

    Links that pystac would resolve by fetching them (``root``, ``parent``,
    ``collection``, ...) are dropped: search results link to the live API, and
    ``to_dict()``, ``get_root()`` or ``get_collection()`` on an item (cached, or read
    offline) would otherwise make a request, or fail. ``self`` and the other links stay;
    the documents themselves are not changed.
    """
    import pystac

    return [
        pystac.Item.from_dict(
            {**d, "links": [k for k in d.get("links") or [] if k.get("rel") not in _FETCHED]},
            migrate=False,
        )
        for d in docs
    ]


def parse_period(start: str, end: str) -> tuple[str, str]:
    """A period from two dates/months (``--from``, ``--to``) as inclusive ISO dates.

    Raises
    ------
    InputError
        If either is not a date or the period ends before it starts.

    Examples
    --------
    >>> parse_period("2023-10", "2024-02-15")
    ('2023-10-01', '2024-02-15')
    """
    a, b = parse_window(start)[0], parse_window(end)[1]
    if b < a:
        raise InputError(f"the period {start} → {end} ends before it starts; swap the two dates")
    return a, b


def looks_like_date(text: str) -> bool:
    """True when ``text`` starts like a date (``2023-…``) rather than a path.

    Examples
    --------
    >>> looks_like_date("2023-10..2023-11"), looks_like_date("S2_2023/")
    (True, False)
    """
    return re.match(r"^\d{4}-\d", text) is not None


@dataclass(frozen=True)
class SceneCandidate:
    """One acquisition over the AOI (one or more granules), with its AOI-local clear fraction.

    An acquisition split across granules (datastrips, overlapping MGRS tiles) is one
    candidate: its clear fraction is over the union of its granules.

    Attributes
    ----------
    item_id : str
        The first granule's item (the one with the most clear AOI pixels).
    collection : str
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
        The cloud-mask asset read (first granule).
    item_ids : tuple of str
        Every granule of the acquisition, ``item_id`` first.
    items : tuple of pystac.Item
        Their items, in the same order.
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
    item_ids: tuple[str, ...] = ()
    items: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    @property
    def granules(self) -> int:
        """Items (granules) this acquisition is made of."""
        return max(1, len(self.item_ids))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without the pystac items)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("item", "items")}
        d["item_ids"] = list(self.item_ids or (self.item_id,))
        d["granules"] = self.granules
        return d


@dataclass(frozen=True)
class AssetWindowRead:
    """What one windowed asset read fetched, for the manifest.

    Attributes
    ----------
    href : str
    window : tuple of 4 int
        ``(col_off, row_off, width, height)`` in the asset's pixels.
    sha256 : str
        Of the window's pixel values (DN).
    cached : bool
        Served from the cache (no request made).
    requests, bytes : int
        HTTP requests and bytes GDAL asked for (0 when cached, or when GDAL's
        in-process cache already held the data).
    """

    href: str
    window: tuple[int, int, int, int]
    sha256: str
    cached: bool
    requests: int
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _pixel_window(
    inv: Affine, bounds: tuple[float, float, float, float], width: int, height: int, margin: int
) -> tuple[int, int, int, int] | None:
    left, bottom, right, top = bounds
    corners = ((left, top), (right, top), (left, bottom), (right, bottom))
    cols, rows = zip(*(inv @ c for c in corners), strict=True)
    c0 = max(0, math.floor(min(cols)) - margin)
    r0 = max(0, math.floor(min(rows)) - margin)
    c1 = min(width, math.ceil(max(cols)) + margin)
    r1 = min(height, math.ceil(max(rows)) + margin)
    if c1 <= c0 or r1 <= r0:
        return None
    return c0, r0, c1 - c0, r1 - r0


def _asset_grid(item: Any, key: str) -> tuple[str, Affine, int, int] | None:
    """(crs, transform, width, height) of an asset from the item's ``proj:*`` fields."""
    asset = item.assets[key]

    def prop(name: str) -> Any:
        v = asset.extra_fields.get(name)
        return v if v is not None else item.properties.get(name)

    code = prop("proj:code") or (f"EPSG:{prop('proj:epsg')}" if prop("proj:epsg") else None)
    transform, shape = prop("proj:transform"), prop("proj:shape")
    if not (code and transform and shape):
        return None
    return str(code), Affine(*transform[:6]), int(shape[1]), int(shape[0])


def declared_nodata(item: Any, key: str) -> float | None:
    """The nodata value the item declares for an asset (``raster:bands``), or None.

    The item's declaration wins over the COG's tag: Landsat ``qa_pixel`` declares
    nodata 1 (its fill bit), which the file does not tag.

    Examples
    --------
    >>> import pystac, datetime
    >>> it = pystac.Item("x", None, None, datetime.datetime(2023, 1, 1), {})
    >>> it.add_asset("qa_pixel", pystac.Asset("qa.tif", extra_fields={
    ...     "raster:bands": [{"nodata": 1, "data_type": "uint16"}]}))
    >>> declared_nodata(it, "qa_pixel")
    1.0
    """
    bands = item.assets[key].extra_fields.get("raster:bands") or [{}]
    first = bands[0] if isinstance(bands[0], dict) else {}
    value = first.get("nodata")
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)  # "nan", "inf" are allowed by the extension
    except (TypeError, ValueError):
        return None


def read_asset_window(
    item: Any,
    key: str,
    area: Any,
    *,
    cache: Cache | None = None,
    stats: NetStats | None = None,
    cover: tuple[str, tuple[float, float, float, float]] | None = None,
) -> tuple[CachedWindow, AssetWindowRead]:
    """Read the window of one asset that covers ``area`` (plus a small margin).

    The window is worked out from the item's ``proj:*`` metadata, so a cached
    window is found without any request. The pixels come back as stored (DN); the
    nodata value is the one the item declares in ``raster:bands``, else the COG's tag.

    Parameters
    ----------
    item : pystac.Item
    key : str
        Asset key (``"red"``, ``"scl"`` ...).
    area : shapely Polygon
        Lon/lat area to cover (the AOI).
    cache : Cache, optional
    stats : NetStats, optional
        Receives the requests made.
    cover : (crs, bounds), optional
        Bounds that must also lie inside the window (the analysis grid).

    Raises
    ------
    AOIError
        If the area is outside the asset.
    SourceError
        If the asset cannot be read after retries.
    """
    asset = item.assets[key]
    href = asset.href
    shown = public_href(href)  # never a SAS token in a record or a message
    meta = _asset_grid(item, key)
    extra: dict[str, str] = {}
    if href.startswith("s3://"):
        if needs_requester_pays(asset):
            if aws_credentials() is None:
                raise requester_pays_error(item.collection_id or "these", flag_given=True)
            extra["AWS_REQUEST_PAYER"] = "requester"
        elif aws_credentials() is None:
            extra["AWS_NO_SIGN_REQUEST"] = "YES"  # a public bucket, read anonymously

    def window_for(crs: str, transform: Affine, width: int, height: int) -> tuple[int, ...]:
        bounds = from_lonlat(area, crs).bounds
        if cover is not None:
            from rasterio.warp import transform_bounds

            gb = transform_bounds(cover[0], crs, *cover[1], densify_pts=21)
            bounds = (
                min(bounds[0], gb[0]),
                min(bounds[1], gb[1]),
                max(bounds[2], gb[2]),
                max(bounds[3], gb[3]),
            )
        win = _pixel_window(~transform, bounds, width, height, MARGIN_PX)
        if win is None:
            raise AOIError(f"the AOI does not overlap {shown}; pick scenes that cover it")
        return win

    window = window_for(*meta) if meta is not None else None
    ckey = cache_key(
        kind="asset-window",
        item=item.id,
        collection=item.collection_id,
        asset=key,
        href=shown.split("?")[0],
        window=window,
        area=None if window is not None else area.wkt,
    )
    declared = declared_nodata(item, key)
    if cache is not None and (hit := cache.get_window(ckey)) is not None:
        if declared is not None:
            hit = replace(hit, nodata=declared)
        return hit, AssetWindowRead(shown, hit.window, hit.sha256, True, 0, 0)

    local = NetStats()

    def read() -> CachedWindow:
        with gdal_http(local, **extra), rasterio.open(href) as ds:
            crs = ds.crs.to_string()
            win = window
            if meta is None or (crs, ds.transform, ds.width, ds.height) != meta:
                win = window_for(crs, ds.transform, ds.width, ds.height)  # metadata was off
            c0, r0, w, h = win
            data = ds.read(1, window=Window(c0, r0, w, h))
            t = ds.transform @ Affine.translation(c0, r0)
            return CachedWindow(
                data=data,
                transform=tuple(t)[:6],
                crs=crs,
                nodata=ds.nodata if declared is None else declared,
                window=(c0, r0, w, h),
                sha256=array_sha256(data),
            )

    entry = retry(
        shown,
        read,
        hint="check the network or the STAC URL (--stac-url) and try again",
        option="--stac-url",
    )
    if cache is not None:
        cache.put_window(ckey, entry)
    if stats is not None:
        stats.merge(local)
    record = AssetWindowRead(
        shown, entry.window, entry.sha256, False, local.total_requests(), local.total_bytes()
    )
    return entry, record


@contextmanager
def window_dataset(entry: CachedWindow) -> Iterator[Any]:
    """An in-memory rasterio dataset holding a window, for resampling onto a grid."""
    from rasterio.io import MemoryFile

    h, w = entry.data.shape
    with MemoryFile() as mem:
        with mem.open(
            driver="GTiff",
            width=w,
            height=h,
            count=1,
            dtype=entry.data.dtype.name,
            crs=entry.crs,
            transform=Affine(*entry.transform),
            nodata=entry.nodata,
        ) as dst:
            dst.write(entry.data, 1)
        with mem.open() as ds:
            yield ds


def clear_fraction(
    aoi: AOI,
    item: Any,
    *,
    kind: str = "scl",
    cache: Cache | None = None,
    stats: NetStats | None = None,
) -> tuple[float, int]:
    """Read an item's cloud mask over the AOI window only: (clear share, AOI pixels).

    Parameters
    ----------
    aoi : AOI
        Located AOI.
    item : pystac.Item
        With an SCL (``kind="scl"``) or QA_PIXEL (``"qa_pixel"``) asset.
    cache : Cache, optional
        The window is shared with the later band read of ``detect``.

    Raises
    ------
    SourceError
        If the asset cannot be read after retries.
    AOIError
        If the AOI does not overlap the asset.
    """
    _, clear, inside = _clear_window(aoi, item, kind=kind, cache=cache, stats=stats)
    n = int(inside.sum())
    return (float((clear & inside).sum() / n) if n else 0.0), n


def _clear_window(
    aoi: AOI,
    item: Any,
    *,
    kind: str,
    cache: Cache | None,
    stats: NetStats | None,
) -> tuple[CachedWindow, np.ndarray, np.ndarray]:
    """The cloud-mask window over the AOI: (window, clear and not nodata, inside the AOI)."""
    aoi.require_located()  # an unlocated catalog entry says where to go instead
    entry, _ = read_asset_window(item, kind, aoi.geometry, cache=cache, stats=stats)
    shape = from_lonlat(aoi.geometry, entry.crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        inside = rasterio.features.rasterize(
            [(shape, 1)],
            out_shape=entry.data.shape,
            transform=Affine(*entry.transform),
            fill=0,
            dtype="uint8",
            all_touched=True,
        ).astype(bool)
    data = entry.data
    known = data != entry.nodata if entry.nodata is not None else np.ones(data.shape, bool)
    clear = clear_from_scl(data) if kind == "scl" else clear_from_qa_pixel(data)
    return entry, clear & known, inside


def group_clear_fraction(
    aoi: AOI,
    items: Sequence[Any],
    *,
    kind: str = "scl",
    cache: Cache | None = None,
    stats: NetStats | None = None,
) -> tuple[float, int, list[int]]:
    """AOI clear fraction over the union of one acquisition's granules.

    A pixel is clear if any granule has it clear and not nodata. Every granule's
    mask is resampled (nearest) onto the first granule's window.

    Returns
    -------
    fraction : float
    aoi_pixels : int
        Mask pixels inside the AOI (first granule's window).
    clear_pixels : list of int
        Clear AOI pixels of each granule on its own, to order them.
    """
    from rasterio.warp import Resampling, reproject

    first, union, inside = _clear_window(aoi, items[0], kind=kind, cache=cache, stats=stats)
    union = union.copy()
    own = [int((union & inside).sum())]
    for item in items[1:]:
        entry, clear, inside_i = _clear_window(aoi, item, kind=kind, cache=cache, stats=stats)
        own.append(int((clear & inside_i).sum()))
        on_first = np.zeros(union.shape, dtype="uint8")
        reproject(
            clear.astype("uint8"),
            on_first,
            src_transform=Affine(*entry.transform),
            src_crs=entry.crs,
            dst_transform=Affine(*first.transform),
            dst_crs=first.crs,
            resampling=Resampling.nearest,
        )
        union |= on_first.astype(bool)
    n = int(inside.sum())
    return (float((union & inside).sum() / n) if n else 0.0), n, own


def _item_value(item: Any, *keys: str) -> Any:
    for k in keys:
        v = item.properties.get(k)
        if v is not None:
            return v
    return None


MAX_PAGE = 100
"""Items asked for per search page (Earth Search allows more; 100 keeps a page small)."""


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
    cache: Cache | None = None,
    stats: NetStats | None = None,
    record: dict[str, Any] | None = None,
    requester_pays: bool = False,
) -> list[SceneCandidate]:
    """Find scenes over an AOI between two dates, ranked by AOI-local clear fraction.

    Sentinel-2 collection 1 (``sentinel-2-c1-l2a``) has gaps: Earth Search lacks
    Nov 2016 - Nov 2019 and 2022, and some of its items lack band assets. An item
    without every band in :data:`S2_ASSETS` and its cloud mask is dropped (noted on
    the ``sitewatch`` logger); when no usable item is left, the legacy collection
    :data:`LEGACY_S2` is searched on the same API for the window instead.

    Parameters
    ----------
    aoi : AOI
        Located AOI.
    start, end : str
        Inclusive ISO dates.
    source : {"s2", "landsat"}
    url : str, optional
        A service (``"earth-search"``, ``"planetary-computer"``) or a STAC API root;
        default: ``$SITEWATCH_STAC_URL``, else Earth Search for Sentinel-2 and
        Planetary Computer for Landsat (see :mod:`sitewatch.sources.profiles`).
        Planetary Computer asset URLs are signed with a SAS token from its token
        endpoint; its asset keys are renamed to Earth Search's.
    max_cloud : float, optional
        Drop items whose scene-wide ``eo:cloud_cover`` exceeds this percentage
        (applied here, not by the server, so it works with every API).
    limit : int
        Most items to consider. The API is asked for pages of ``min(limit, 100)``
        items, so a search is one or two requests.
    local_clear : bool
        Read each item's cloud mask over the AOI (a few kB per item).
    cache : Cache, optional
        Reuse (and store) the search result and the cloud-mask windows.
    stats : NetStats, optional
        Receives the HTTP requests made (API and COG reads).
    record : dict, optional
        Filled with what the search did: ``profile`` (the service, see
        :meth:`Profile.describe`), ``collection`` (the one asked for), ``dropped``
        (items lacking needed assets: ``item_id``, ``collection``, ``missing``),
        ``skipped`` (acquisitions whose cloud mask could not be read: ``item_ids``,
        ``reason``) and ``fallback`` (None, or ``collection`` and ``reason`` when the
        legacy collection was searched instead).
    requester_pays : bool
        Read assets in requester-pays S3 buckets (Earth Search ``landsat-c2-l2``) with
        the AWS credentials configured, billed to their account.

    Returns
    -------
    list of SceneCandidate
        Clearest over the AOI first; ties go to the scene closest to the middle of
        the window.

    Raises
    ------
    AOIError, InputError
        Unlocated AOI, unknown source or service, bad ``$SITEWATCH_HTTP_TIMEOUT``;
        requester-pays assets without ``requester_pays`` or without AWS credentials.
    SourceError
        If the API cannot be read after 3 tries: its host does not resolve, it refuses
        the connection, it does not answer within the time limits (connect 10 s, read
        20 s per request, first page and every later one alike; see
        :mod:`sitewatch.sources._http`), or it answers 5xx; or if it rejects the search;
        or if no candidate's cloud mask can be read. One candidate whose mask cannot be
        read (HTTP 403/404, a broken file) is skipped with a note on the ``sitewatch``
        logger; a network failure (DNS, refused, timed out) stops the search.
    """
    import requests.exceptions
    from pystac_client import Client
    from pystac_client.exceptions import APIError
    from pystac_client.stac_api_io import StacApiIO

    aoi.require_located()  # an unlocated catalog entry says where to go instead
    if source not in COLLECTIONS:
        raise InputError(f"unknown source {source!r}; choose one of {', '.join(COLLECTIONS)}")
    mask_key = COLLECTIONS[source][1]
    profile = resolve_profile(url, source=source)
    if source == "s1":
        check_s1_access(profile)  # before any request
    collection = profile.collections.get(source) or COLLECTIONS[source][0]
    api = profile.url

    bbox = [round(v, 7) for v in aoi.geometry.bounds]
    when = f"{start}T00:00:00Z/{end}T23:59:59Z"

    def count(request: Any) -> None:
        if stats is not None:
            stats.add(request.url, 0)

    network = (
        requests.exceptions.ConnectionError,  # DNS, refused, reset (and connect timeouts)
        requests.exceptions.Timeout,
        requests.exceptions.ChunkedEncodingError,  # truncated body
    )

    page_size = max(1, min(limit, MAX_PAGE))

    def query(collection: str) -> list[dict[str, Any]]:
        # Every request (the root, then each page of the search, which reuses the
        # client's StacApiIO) gets the (connect, read) time limits. pystac-client's own
        # retries (5 by default, in urllib3) are off: ours log progress and back off.
        # Client.open re-applies its arguments to stac_io, so they are passed there.
        io = StacApiIO(max_retries=None)
        try:
            client = Client.open(api, stac_io=io, request_modifier=count, timeout=timeouts())
            search = client.search(
                collections=[collection],
                bbox=bbox,
                datetime=when,
                max_items=limit,
                limit=page_size,
            )
            # Plain dicts: building pystac Items here would run pystac's extension
            # migration, which warns on every real Earth Search C1 item (see items_from_dicts).
            # Pages are fetched one at a time as the loop asks: a page shorter than asked
            # is the last, whatever its links say (Earth Search puts a ``next`` link on
            # every page, and pystac-client would follow it to an empty page).
            docs: list[dict[str, Any]] = []
            for page in search.pages_as_dicts():
                features = page.get("features") or []
                docs.extend(features)
                if len(features) < page_size or len(docs) >= limit:
                    break
            return docs[:limit]
        except APIError as err:
            if isinstance(err.__context__, network):  # pystac-client wraps it as APIError
                raise OSError(str(err)) from err.__context__
            if (getattr(err, "status_code", None) or 0) >= 500:
                raise OSError(f"HTTP {err.status_code} from the STAC API") from err
            raise

    def fetch(collection: str) -> list[Any]:
        skey = cache_key(
            kind="stac-search",
            api=api,
            collection=collection,
            bbox=bbox,
            datetime=when,
            limit=limit,
        )
        found = cache.get_search(skey, window_end=end) if cache is not None else None
        if found is None:
            try:
                found = retry(
                    f"the STAC API {api}",
                    lambda: query(collection),
                    hint="check the network or the STAC URL (--stac-url) and try again",
                    option="--stac-url",
                )
            except APIError as err:
                raise SourceError(f"the STAC API {api} refused the search: {err}") from err
            if cache is not None:
                cache.put_search(skey, found)  # as the service sent them: unsigned
        docs = [normalise_item(d, profile) for d in found]
        return items_from_dicts(sign_items(docs, profile, stats=stats))

    dropped: list[dict[str, Any]] = []
    fallback: dict[str, Any] | None = None

    def usable(found: list[Any]) -> list[Any]:
        if mask_key != "scl":
            return found
        need = [*S2_ASSETS.values(), mask_key]
        ok = []
        for item in found:
            missing = [k for k in need if item.assets.get(k) is None]
            if missing:
                log.info(
                    "dropped %s (%s): no %s asset(s)",
                    item.id,
                    item.collection_id,
                    ", ".join(missing),
                )
                dropped.append(
                    {"item_id": item.id, "collection": item.collection_id, "missing": missing}
                )
            else:
                ok.append(item)
        return ok

    items = usable(fetch(collection))
    legacy = profile.fallback.get(source)
    if not items and legacy and collection != legacy:
        reason = f"no usable {collection} item between {start} and {end}" + (
            f" ({len(dropped)} lacking band assets)" if dropped else ""
        )
        fallback = {"collection": legacy, "reason": reason}
        items = usable(fetch(legacy))
    skipped: list[dict[str, Any]] = []
    if record is not None:
        record.update(
            profile=profile.describe(),
            collection=collection,
            dropped=dropped,
            fallback=fallback,
            skipped=skipped,
        )
    kept = []
    for item in items:
        cloud = _item_value(item, "eo:cloud_cover")
        if max_cloud is not None and cloud is not None and float(cloud) > max_cloud:
            continue
        kept.append(item)
    _check_requester_pays(kept, mask_key, requester_pays=requester_pays)
    out: list[SceneCandidate] = []
    failed: SourceError | None = None
    for group in group_acquisitions(kept):
        frac: float | None = None
        npx = 0
        with_mask = [it for it in group if it.assets.get(mask_key) is not None]
        if local_clear and with_mask:
            try:
                frac, npx, own = group_clear_fraction(
                    aoi, with_mask, kind=mask_key, cache=cache, stats=stats
                )
            except SourceError as err:
                cause = err.__cause__ or err
                if classify_failure(cause) != "other":
                    raise  # the service is unreachable, not this item
                failed = err
                ids = [it.id for it in group]
                log.info("skipped %s: %s", ", ".join(ids), err)
                skipped.append({"item_ids": ids, "reason": str(err)})
                continue
            order = sorted(range(len(with_mask)), key=lambda i: -own[i])
            group = [with_mask[i] for i in order] + [it for it in group if it not in with_mask]
        first = group[0]
        asset = first.assets.get(mask_key)
        tiles = dict.fromkeys(_tile(it) for it in group)
        clouds = [float(c) for it in group if (c := _item_value(it, "eo:cloud_cover")) is not None]
        out.append(
            SceneCandidate(
                item_id=first.id,
                collection=first.collection_id or collection,
                datetime=first.datetime.isoformat() if first.datetime else "",
                platform=str(_item_value(first, "platform") or ""),
                tile="+".join(t for t in tiles if t),
                cloud_cover=round(sum(clouds) / len(clouds), 3) if clouds else None,
                clear_fraction=frac,
                aoi_pixels=npx,
                mask_href=public_href(asset.href) if asset is not None else None,
                item=first,
                item_ids=tuple(it.id for it in group),
                items=tuple(group),
            )
        )
    if failed is not None and not out:
        raise failed  # every candidate unreadable: say why, not "no scene"
    centre = _centre(start, end)
    out.sort(
        key=lambda c: (
            -(c.clear_fraction if c.clear_fraction is not None else -1),
            _days_from(c.datetime, centre),
        )
    )
    if source == "s1":  # radar sees through cloud: by orbit geometry, then date
        out.sort(key=lambda c: (c.tile, c.datetime))
    return out


def _tile(item: Any) -> str:
    """The item's tile: MGRS grid code, Landsat WRS path/row, or Sentinel-1 orbit geometry."""
    orbit = _item_value(item, "sat:relative_orbit")
    if orbit is not None:
        return f"{_item_value(item, 'sat:orbit_state') or '?'} {orbit}"
    code = _item_value(item, "grid:code", "mgrs:grid_square")
    if code:
        return str(code)
    path, row = _item_value(item, "landsat:wrs_path"), _item_value(item, "landsat:wrs_row")
    return f"{path}/{row}" if path and row else str(path or "")


def _check_requester_pays(items: Sequence[Any], mask_key: str, *, requester_pays: bool) -> None:
    """Stop before any read when items need requester-pays S3 and the user cannot pay."""
    for item in items:
        asset = item.assets.get(mask_key)
        if asset is not None and needs_requester_pays(asset):
            if not requester_pays:
                raise requester_pays_error(item.collection_id or "these", flag_given=False)
            if aws_credentials() is None:
                raise requester_pays_error(item.collection_id or "these", flag_given=True)
            return


SAME_ACQUISITION_S = 60.0
"""Items of one platform sensed less than this apart are one acquisition (datatake)."""


def group_acquisitions(items: Sequence[Any]) -> list[list[Any]]:
    """Items grouped by acquisition: one datatake split across granules is one group.

    Items with the same ``s2:datatake_id`` are one acquisition; items without one
    are grouped by collection, platform and sensing time (within
    :data:`SAME_ACQUISITION_S`). Groups keep the order of their first item.

    Examples
    --------
    >>> import pystac, datetime as dt
    >>> t = dt.datetime(2021, 7, 10, 2, 26, 12)
    >>> def it(i, s, p="sentinel-2a"):
    ...     return pystac.Item(i, None, None, t + dt.timedelta(seconds=s), {"platform": p})
    >>> [[i.id for i in g] for g in group_acquisitions(
    ...     [it("a", 0), it("b", 3), it("c", 0, "sentinel-2b"), it("d", 600)])]
    [['a', 'b'], ['c'], ['d']]
    """
    groups: list[list[Any]] = []
    by_datatake: dict[str, list[Any]] = {}
    for item in items:
        datatake = item.properties.get("s2:datatake_id")
        if datatake:
            key = f"{item.collection_id}|{datatake}"
            if key in by_datatake:
                by_datatake[key].append(item)
                continue
            by_datatake[key] = [item]
            groups.append(by_datatake[key])
            continue
        platform = str(item.properties.get("platform") or "").lower()
        for group in groups:
            other = group[0]
            if (
                not other.properties.get("s2:datatake_id")
                and other.collection_id == item.collection_id
                and str(other.properties.get("platform") or "").lower() == platform
                and item.datetime is not None
                and other.datetime is not None
                and abs((item.datetime - other.datetime).total_seconds()) <= SAME_ACQUISITION_S
            ):
                group.append(item)
                break
        else:
            groups.append([item])
    return groups


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


LEGACY_S2 = "sentinel-2-l2a"
_BOA_FLAGS = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")
BOA_ADD_OFFSET_DN = 1000
"""DN that Sentinel-2 L2A carries from processing baseline 04.00 on (BOA_ADD_OFFSET −1000)."""
LOW_DN_SHARE = 0.01
"""Share of valid DN below :data:`BOA_ADD_OFFSET_DN` above which the offset was removed.

With the +1000 DN offset still in the data, a DN below 1000 is a negative reflectance,
which L2A only has on a few dark pixels; a larger share says the offset is gone.
"""


def low_dn_share(windows: Sequence[CachedWindow]) -> float | None:
    """Share of the valid DN of some band windows that lie below 1000 (None if none valid).

    Examples
    --------
    >>> import numpy as np
    >>> w = CachedWindow(np.array([[0, 400, 1500, 2500]], "uint16"), (1, 0, 0, 0, -1, 0),
    ...                  "EPSG:32613", 0, (0, 0, 4, 1), "")
    >>> round(low_dn_share([w]), 3)
    0.333
    """
    low = valid = 0
    for w in windows:
        ok = np.isfinite(w.data) if w.data.dtype.kind == "f" else np.ones(w.data.shape, bool)
        if w.nodata is not None:
            ok &= w.data != w.nodata
        valid += int(ok.sum())
        low += int((ok & (w.data < BOA_ADD_OFFSET_DN)).sum())
    return low / valid if valid else None


def _legacy_rule(
    props: dict[str, Any], declared: dict[str, Any], low: float | None
) -> tuple[float, float, str]:
    baseline = str(props.get("s2:processing_baseline") or "")
    where = f"legacy sentinel-2-l2a, baseline {baseline or 'unknown'}"
    if not baseline or baseline < "04.00":
        return 0.0001, 0.0, f"{where} < 04.00: the DN carry no offset"
    if "offset" in declared and not declared["offset"]:
        return 0.0001, 0.0, f"{where}: raster:bands declares offset 0"
    offset = float(declared.get("offset", -0.1))  # none declared: ESA's BOA_ADD_OFFSET
    flag = next((props[f] for f in _BOA_FLAGS if f in props), None)
    if flag is True:
        return 0.0001, 0.0, f"{where}: boa_offset_applied true, Earth Search removed the +1000 DN"
    if low is not None and low > LOW_DN_SHARE:
        return (
            0.0001,
            0.0,
            f"{where}: {low:.0%} of valid DN below 1000, so the +1000 DN offset was already "
            f"removed (boa_offset_applied {flag}, not trusted: earth-search #66, #71)",
        )
    checked = "not checked" if low is None else "all valid DN ≥ 1000"
    return (
        0.0001,
        offset,
        f"{where} ≥ 04.00: the DN carry the +1000 offset, raster:bands offset {offset:g} "
        f"({checked}; boa_offset_applied {flag})",
    )


def reflectance_rule(
    item: Any, key: str, *, low_dn_share: float | None = None
) -> tuple[float, float, str]:
    """(scale, offset, why) turning an asset's DN into surface reflectance.

    * Earth Search's legacy ``sentinel-2-l2a`` declares ``offset: -0.1`` on every
      item. Before processing baseline 04.00 the DN carry no offset (0). From 04.00
      on ESA's DN carry +1000, which Earth Search removed from many COGs: its
      ``earthsearch:boa_offset_applied`` is trusted when true, but it is false on
      items whose offset was removed too (earth-search issues #66, #71), so a false
      flag is checked against the DN: more than :data:`LOW_DN_SHARE` of the valid DN
      below 1000 means the offset is gone. Otherwise the declared offset applies.
    * Otherwise the asset's ``raster:bands`` scale and offset, when declared (C1
      ``sentinel-2-c1-l2a``, ``landsat-c2-l2``).
    * Otherwise the collection's documented rule: Sentinel-2 L2A DN / 10000, minus
      0.1 from processing baseline 04.00 on; Landsat C2 L2 DN × 2.75e-5 − 0.2.

    Parameters
    ----------
    item : pystac.Item
    key : str
        Asset key.
    low_dn_share : float, optional
        :func:`low_dn_share` of the item's band windows, once read (legacy
        ``sentinel-2-l2a`` only).

    Examples
    --------
    >>> import pystac, datetime
    >>> it = pystac.Item("x", None, None, datetime.datetime(2023, 1, 1),
    ...                  {"s2:processing_baseline": "05.09"}, collection="other")
    >>> it.add_asset("red", pystac.Asset("red.tif"))
    >>> reflectance_rule(it, "red")
    (0.0001, -0.1, 'Sentinel-2 L2A rule for processing baseline 05.09')
    """
    props = item.properties
    baseline = str(props.get("s2:processing_baseline") or "")
    is_s2 = bool(baseline) or str(props.get("constellation", "")).lower() == "sentinel-2"
    is_s2 = is_s2 or str(props.get("platform", "")).lower().startswith("sentinel-2")
    bands = item.assets[key].extra_fields.get("raster:bands") or [{}]
    declared = bands[0] if isinstance(bands[0], dict) else {}
    esa_dn = props.get("sitewatch:dn_rule") == "esa"  # Planetary Computer: DN as ESA made them
    if item.collection_id == LEGACY_S2 and key != "scl" and not esa_dn:
        return _legacy_rule(props, declared, low_dn_share)
    if "scale" in declared or "offset" in declared:
        return (
            float(declared.get("scale", 1.0)),
            float(declared.get("offset", 0.0)),
            "raster:bands scale/offset",
        )
    if key in ("scl", "qa_pixel"):
        return 1.0, 0.0, "class/bit codes"
    if is_s2:
        offset = -0.1 if baseline and baseline >= "04.00" else 0.0
        where = " (Planetary Computer keeps ESA's DN)" if esa_dn else ""
        return (
            0.0001,
            offset,
            f"Sentinel-2 L2A rule for processing baseline {baseline or '?'}{where}",
        )
    if item.collection_id == "landsat-c2-l2" or "landsat:collection_number" in props:
        return 2.75e-05, -0.2, "Landsat C2 L2 surface reflectance rule"
    return 1.0, 0.0, "none declared: values used as stored"


class StacSource:
    """A STAC item read like a local source: windowed remote reads onto a Grid.

    Parameters
    ----------
    item : pystac.Item
        Earth Search style item (asset keys ``blue``, ``nir`` ..., ``raster:bands``
        scale/offset, ``proj:epsg``/``proj:transform``/``proj:shape``).
    mask_key : str
        ``"scl"`` or ``"qa_pixel"``.
    aoi : AOI, optional
        The area whose window is read (default: the whole analysis grid).
    cache : Cache, optional
        Cache of asset windows.
    stats : NetStats, optional
        Receives the HTTP requests made.
    """

    kind = "stac-item"
    georeferenced = True

    def __init__(
        self,
        item: Any,
        *,
        mask_key: str = "scl",
        aoi: AOI | None = None,
        cache: Cache | None = None,
        stats: NetStats | None = None,
        search: dict[str, Any] | None = None,
    ) -> None:
        self.item = item
        self.mask_key = mask_key
        self.aoi = aoi
        self.cache = cache
        self.stats = stats
        self.search = search
        table = S2_ASSETS if mask_key == "scl" else LANDSAT_ASSETS
        self.assets = {b: k for b, k in table.items() if k in item.assets}
        if len(self.assets) < 3:
            raise SourceError(f"item {item.id} lacks the band assets {list(table.values())}")
        self.path = item.get_self_href() or item.id
        self.acquired = item.datetime.date().isoformat() if item.datetime else None
        self.grid = self._grid()
        self.reads: dict[str, AssetWindowRead] = {}
        self.low_dn: float | None = None  # legacy sentinel-2-l2a offset evidence, once read

    @property
    def band_names(self) -> tuple[str, ...]:
        """Band names (Sentinel-2 or Landsat style)."""
        return tuple(self.assets)

    def _grid(self) -> Any:
        from sitewatch.grid import Grid

        meta = _asset_grid(self.item, self.assets[next(iter(self.assets))])
        if meta is None:
            raise SourceError(f"item {self.item.id} lacks proj:code/epsg, transform, shape")
        crs, transform, width, height = meta
        return Grid(crs, transform, width, height)

    def bounds_in(self, crs: str) -> tuple[float, float, float, float]:
        """Item grid bounds in ``crs``."""
        from rasterio.warp import transform_bounds

        return transform_bounds(self.grid.crs, crs, *self.grid.bounds, densify_pts=21)

    def _scale(self, key: str) -> tuple[float, float]:
        return reflectance_rule(self.item, key, low_dn_share=self.low_dn)[:2]  # type: ignore[return-value]

    def describe(self) -> dict[str, Any]:
        """Manifest entry: item, asset hrefs, windows, bytes read, hashes, scale/offset."""
        mask = self.mask_key if self.mask_key in self.item.assets else None

        def entry(key: str) -> dict[str, Any]:
            d: dict[str, Any] = {"key": key, "href": public_href(self.item.assets[key].href)}
            if key in self.reads:
                d.update(self.reads[key].as_dict())
            return d

        def band(key: str) -> dict[str, Any]:
            scale, offset, why = reflectance_rule(self.item, key, low_dn_share=self.low_dn)
            return {**entry(key), "scale_offset": [scale, offset], "scale_rule": why}

        reads = list(self.reads.values())
        return {
            "kind": self.kind,
            "item_id": self.item.id,
            "collection": self.item.collection_id,
            "datetime": self.item.datetime.isoformat() if self.item.datetime else None,
            "acquired": self.acquired,
            "cloud_cover": self.item.properties.get("eo:cloud_cover"),
            "bands": list(self.band_names),
            "assets": {b: band(k) for b, k in self.assets.items()},
            "mask_band": mask,
            "mask_href": public_href(self.item.assets[mask].href) if mask else None,
            "mask": entry(mask) if mask else None,
            "requests": sum(r.requests for r in reads),
            "bytes_read": sum(r.bytes for r in reads),
            "from_cache": sum(r.cached for r in reads),
            "search": self.search,
        }

    def _window(self, key: str, grid: Any) -> CachedWindow:
        area = self.aoi.geometry if self.aoi is not None else None
        if area is None:
            area = grid.footprint_lonlat
        entry, record = read_asset_window(
            self.item,
            key,
            area,
            cache=self.cache,
            stats=self.stats,
            cover=(grid.crs, grid.bounds),
        )
        self.reads[key] = record
        return entry

    def read_raw(
        self, grid: Any, names: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Reflectance (NaN where no data), observed mask and clear-sky mask on ``grid``."""
        from sitewatch.sources.local import BandRef, _read_band, _read_clear

        out = np.full((len(names), grid.height, grid.width), np.nan, dtype=np.float32)
        nodata_any = np.zeros(grid.shape, dtype=bool)
        windows = [self._window(self.assets[name], grid) for name in names]
        if self.item.collection_id == LEGACY_S2:
            self.low_dn = low_dn_share(windows)  # one offset for all bands of the item
        for i, name in enumerate(names):
            key = self.assets[name]
            entry = windows[i]
            with window_dataset(entry) as ds:
                _read_band(ds, 1, grid, out[i], ds.nodata)
            nodata_any |= ~np.isfinite(out[i])
            scale, offset = self._scale(key)
            out[i] = out[i] * np.float32(scale) + np.float32(offset)
        clear = None
        if self.mask_key in self.item.assets:
            entry = self._window(self.mask_key, grid)
            ref = BandRef(
                "SCL" if self.mask_key == "scl" else "QA_PIXEL",  # type: ignore[arg-type]
                public_href(self.item.assets[self.mask_key].href),
                1,
            )
            with window_dataset(entry) as ds:
                clear = _read_clear(ds, ref, grid)
        return out, ~nodata_any, clear

    def read(self, grid: Any, *, bands: Sequence[str] | None = None) -> Any:
        """Read the AOI window of each band (and the cloud mask) onto ``grid``.

        Reflectance = DN × scale + offset from the asset's ``raster:bands`` (for
        Sentinel-2 C1 this includes the −0.1 offset of processing baseline ≥ 04.00).
        """
        from sitewatch.sources.local import assemble_scene

        names = list(bands) if bands is not None else list(self.band_names)
        out, observed, clear = self.read_raw(grid, names)
        return assemble_scene(
            out,
            observed,
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


class MosaicSource:
    """One acquisition split across granules, mosaicked onto the analysis grid.

    Each granule (a :class:`StacSource`) is read onto the grid in turn; a pixel takes
    the first granule that observes it, unless a later one sees it clear where the
    earlier saw cloud. Nodata of one granule is thus filled from the next, and the
    acquisition covers the AOI as one scene.

    Parameters
    ----------
    items : sequence of pystac.Item
        Granules of one acquisition, best first.
    mask_key, aoi, cache, stats, search
        As for :class:`StacSource`.
    """

    kind = "stac-mosaic"
    georeferenced = True

    def __init__(
        self,
        items: Sequence[Any],
        *,
        mask_key: str = "scl",
        aoi: AOI | None = None,
        cache: Cache | None = None,
        stats: NetStats | None = None,
        search: dict[str, Any] | None = None,
    ) -> None:
        if not items:
            raise InputError("a mosaic needs at least one granule")
        self.parts = [
            StacSource(it, mask_key=mask_key, aoi=aoi, cache=cache, stats=stats) for it in items
        ]
        first = self.parts[0]
        self.item = first.item
        self.mask_key = mask_key
        self.grid = first.grid
        self.search = search
        self.acquired = first.acquired
        self.path = f"mosaic of {len(items)} granules of {first.path}"
        self.item_ids = [p.item.id for p in self.parts]
        self._bands = tuple(
            b for b in first.band_names if all(b in p.band_names for p in self.parts)
        )

    @property
    def band_names(self) -> tuple[str, ...]:
        """Bands every granule has."""
        return self._bands

    def bounds_in(self, crs: str) -> tuple[float, float, float, float]:
        """Bounds covered by any granule, in ``crs``."""
        boxes = [p.bounds_in(crs) for p in self.parts]
        return (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )

    def describe(self) -> dict[str, Any]:
        """Manifest entry: the acquisition's granules (item ids) with their reads."""
        parts = [p.describe() for p in self.parts]
        first = parts[0]
        return {
            **{k: first[k] for k in ("collection", "datetime", "acquired", "bands")},
            "kind": self.kind,
            "method": "mosaic of one acquisition's granules: first observed pixel, clear wins",
            "item_id": first["item_id"],
            "item_ids": [p["item_id"] for p in parts],
            "granules": len(parts),
            "bands": list(self.band_names),
            "requests": sum(p["requests"] for p in parts),
            "bytes_read": sum(p["bytes_read"] for p in parts),
            "from_cache": sum(p["from_cache"] for p in parts),
            "items": parts,
            "search": self.search,
        }

    def read_raw(
        self, grid: Any, names: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Reflectance, observed and clear-sky masks of the mosaic on ``grid``."""
        out = np.full((len(names), *grid.shape), np.nan, dtype=np.float32)
        observed = np.zeros(grid.shape, dtype=bool)
        clear: np.ndarray | None = None
        for part in self.parts:
            data, seen, clear_i = part.read_raw(grid, names)
            take = seen & ~observed
            if clear_i is not None:
                if clear is None:
                    clear = np.zeros(grid.shape, dtype=bool)
                take |= seen & clear_i & ~clear  # a clear look replaces a cloudy one
                clear[take] = clear_i[take]
            elif clear is not None:
                clear[take] = True
            out[:, take] = data[:, take]
            observed |= seen
        return out, observed, clear

    def read(self, grid: Any, *, bands: Sequence[str] | None = None) -> Any:
        """Read every granule onto ``grid`` and mosaic them."""
        from sitewatch.sources.local import assemble_scene

        names = list(bands) if bands is not None else list(self.band_names)
        out, observed, clear = self.read_raw(grid, names)
        return assemble_scene(
            out,
            observed,
            grid,
            names=names,
            acquired=self.acquired,
            clear=clear,
            provenance={
                "path": self.path,
                "kind": self.kind,
                "item_id": self.item.id,
                "item_ids": [p.item.id for p in self.parts],
                "mask_band": self.mask_key,
            },
        )


def scene_source(
    items: Any | Sequence[Any],
    *,
    mask_key: str = "scl",
    aoi: AOI | None = None,
    cache: Cache | None = None,
    stats: NetStats | None = None,
    search: dict[str, Any] | None = None,
) -> StacSource | MosaicSource:
    """The source of one acquisition: a :class:`StacSource`, or a mosaic of its granules.

    Parameters
    ----------
    items : pystac.Item or sequence of pystac.Item
        An item, or the granules of one acquisition (best first).
    mask_key, aoi, cache, stats, search
        As for :class:`StacSource`.
    """
    group = list(items) if isinstance(items, (list, tuple)) else [items]
    opts: dict[str, Any] = {"mask_key": mask_key, "aoi": aoi, "cache": cache, "stats": stats}
    if len(group) == 1:
        return StacSource(group[0], search=search, **opts)
    return MosaicSource(group, search=search, **opts)


class CompositeSource:
    """Per-pixel median of the clear pixels of several acquisitions (one date window).

    Each item is read onto the analysis grid with its own cloud mask; a pixel's
    value is the median over the items that see it clear, and it is valid if at
    least one does. Compositing fills cloud gaps and damps one-off glints, at the
    cost of a date *range* instead of a date.

    Each element of ``items`` is one acquisition: an item, or the granules of one
    acquisition (mosaicked first, see :class:`MosaicSource`), so an acquisition split
    across granules counts once in the median.

    Parameters
    ----------
    items : sequence of pystac.Item or of sequences of pystac.Item
        Acquisitions, clearest first.
    mask_key, aoi, cache, stats, search
        As for :class:`StacSource`.
    """

    kind = "stac-composite"
    georeferenced = True

    def __init__(
        self,
        items: Sequence[Any],
        *,
        mask_key: str = "scl",
        aoi: AOI | None = None,
        cache: Cache | None = None,
        stats: NetStats | None = None,
        search: dict[str, Any] | None = None,
    ) -> None:
        if not items:
            raise InputError("a composite needs at least one scene")
        self.parts = [
            scene_source(it, mask_key=mask_key, aoi=aoi, cache=cache, stats=stats) for it in items
        ]
        first = self.parts[0]
        self.grid = first.grid
        self.path = f"composite of {len(items)} acquisitions"
        self.search = search
        self._bands = tuple(
            b for b in first.band_names if all(b in p.band_names for p in self.parts)
        )
        dates = sorted(p.acquired for p in self.parts if p.acquired)
        self.dates = dates
        self.acquired = (
            None if not dates else dates[0] if dates[0] == dates[-1] else f"{dates[0]}/{dates[-1]}"
        )
        self.scenes_per_pixel: float | None = None

    @property
    def band_names(self) -> tuple[str, ...]:
        """Bands every item has."""
        return self._bands

    def bounds_in(self, crs: str) -> tuple[float, float, float, float]:
        """Bounds covered by all items, in ``crs``."""
        boxes = [p.bounds_in(crs) for p in self.parts]
        return (
            max(b[0] for b in boxes),
            max(b[1] for b in boxes),
            min(b[2] for b in boxes),
            min(b[3] for b in boxes),
        )

    def describe(self) -> dict[str, Any]:
        """Manifest entry: the items composited, with their reads."""
        parts = [p.describe() for p in self.parts]
        return {
            "kind": self.kind,
            "method": "per-pixel median of clear pixels",
            "acquired": self.acquired,
            "dates": self.dates,
            "acquisitions": len(parts),
            "item_ids": [i for p in parts for i in p.get("item_ids", [p["item_id"]])],
            "bands": list(self.band_names),
            "scenes_per_pixel_mean": self.scenes_per_pixel,
            "requests": sum(p["requests"] for p in parts),
            "bytes_read": sum(p["bytes_read"] for p in parts),
            "items": parts,
            "search": self.search,
        }

    def read(self, grid: Any, *, bands: Sequence[str] | None = None) -> Any:
        """Read every item onto ``grid`` and take the median of its clear pixels."""
        from sitewatch.sources.local import assemble_scene

        names = list(bands) if bands is not None else list(self.band_names)
        stack = np.full((len(self.parts), len(names), *grid.shape), np.nan, dtype=np.float32)
        observed = np.zeros(grid.shape, dtype=bool)
        for i, part in enumerate(self.parts):
            data, seen, clear_i = part.read_raw(grid, names)
            ok = seen if clear_i is None else seen & clear_i
            stack[i][:, ok] = data[:, ok]
            observed |= seen
        count = np.isfinite(stack[:, 0]).sum(axis=0)
        clear = count > 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
            data = np.nanmedian(stack, axis=0).astype(np.float32)
        data[:, ~clear] = np.nan
        self.scenes_per_pixel = round(float(count[clear].mean()), 3) if clear.any() else 0.0
        return assemble_scene(
            np.nan_to_num(data, nan=0.0),
            observed | clear,
            grid,
            names=names,
            acquired=self.acquired,
            clear=clear,
            provenance={
                "path": self.path,
                "kind": self.kind,
                "item_ids": [i for p in self.parts for i in getattr(p, "item_ids", [p.item.id])],
                "mask_band": self.parts[0].mask_key,
            },
        )
