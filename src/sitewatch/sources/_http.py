"""Remote reads through GDAL's /vsicurl/: settings, strict errors, retries, byte counts.

Every remote COG read in sitewatch runs inside :func:`gdal_http`, which

* sets the GDAL options that keep a windowed read to the header and the touched
  tiles (no sidecar probing, merged consecutive ranges, no GDAL-side retries);
* turns GDAL's *warnings* about failed range requests into errors, so a 5xx or
  a truncated body is retried instead of silently becoming a block of fill;
* counts the HTTP requests and bytes GDAL makes, per URL, from its debug log
  (``VSICURL: Downloading a-b (url)``) — the figures the run manifest reports.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import rasterio
from rasterio.errors import RasterioError

from sitewatch.errors import SourceError

__all__ = ["BACKOFF_S", "RETRIES", "NetStats", "gdal_http", "gdal_options", "retry"]

RETRIES = 3
BACKOFF_S = float(os.environ.get("SITEWATCH_BACKOFF_S", "0.5"))
"""First retry delay in seconds (doubling after); ``$SITEWATCH_BACKOFF_S`` overrides."""

T = TypeVar("T")


def gdal_options() -> dict[str, str]:
    """GDAL settings for remote COG reads (timeout from ``$SITEWATCH_HTTP_TIMEOUT``)."""
    return {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no sidecar probing
        "GDAL_HTTP_MULTIPLEX": "YES",
        "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
        "VSI_CACHE": "TRUE",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
        "GDAL_HTTP_MAX_RETRY": "0",  # retries are ours, with backoff and a clear error
        "GDAL_HTTP_TIMEOUT": os.environ.get("SITEWATCH_HTTP_TIMEOUT", "30"),
        "CPL_DEBUG": "ON",  # for the request log below; messages stay in `logging`
    }


@dataclass
class NetStats:
    """HTTP requests and bytes asked of each URL (ranges as GDAL requested them).

    Attributes
    ----------
    requests, bytes : dict of str to int
        Per URL.
    """

    requests: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)

    def add(self, url: str, nbytes: int) -> None:
        """Record one request of ``nbytes`` to ``url``."""
        self.requests[url] = self.requests.get(url, 0) + 1
        self.bytes[url] = self.bytes.get(url, 0) + nbytes

    def merge(self, other: NetStats) -> None:
        """Add the requests and bytes counted in ``other``."""
        for url, n in other.requests.items():
            self.requests[url] = self.requests.get(url, 0) + n
            self.bytes[url] = self.bytes.get(url, 0) + other.bytes.get(url, 0)

    def total_requests(self) -> int:
        """All requests counted."""
        return sum(self.requests.values())

    def total_bytes(self) -> int:
        """All bytes requested."""
        return sum(self.bytes.values())


_DOWNLOAD = re.compile(r"VSICURL: Downloading ([0-9,\-]+) \((\S+?)\)")
_SIZE = re.compile(r"VSICURL: GetFileSize\((\S+?)\)")
_FAILURE = re.compile(r"fail|error|truncat|timeout|timed out|HTTP response code", re.I)


class _GDALLog(logging.Handler):
    """Collects what GDAL reports while reading (rasterio forwards it to logging)."""

    def __init__(self, stats: NetStats | None) -> None:
        super().__init__(level=logging.DEBUG)
        self.stats = stats
        self.complaints: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            if _FAILURE.search(msg):
                self.complaints.append(msg)
            return
        if self.stats is None:
            return
        if m := _DOWNLOAD.search(msg):
            for part in m.group(1).split(","):
                a, _, b = part.partition("-")
                if a.isdigit() and b.isdigit():
                    self.stats.add(m.group(2), int(b) - int(a) + 1)
        elif m := _SIZE.search(msg):
            self.stats.add(m.group(1), 0)  # the HEAD request for the file size


@contextmanager
def gdal_http(stats: NetStats | None = None) -> Iterator[None]:
    """GDAL HTTP settings, strict reads, and request counting into ``stats``.

    GDAL only *warns* when a tile request fails (HTTP 5xx, truncated body) and may
    hand back a block of fill values; a silently corrupted band or cloud mask would
    be analysed as if it were real, so any such complaint raises ``OSError`` (which
    :func:`retry` retries).
    """
    handler = _GDALLog(stats)
    logger = logging.getLogger("rasterio")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with rasterio.Env(**gdal_options()):
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    if handler.complaints:
        raise OSError(handler.complaints[0])


@functools.cache
def _vsicurl_clear_cache() -> Callable[[], None] | None:
    """GDAL's ``VSICurlClearCache`` from the libgdal rasterio loaded (None if not found).

    GDAL remembers a URL that failed (a timed-out HEAD becomes "does not exist") for
    the life of the process, so a retry would fail without asking the server again;
    the C function forgets it. rasterio does not wrap it, hence ctypes.
    """
    import ctypes
    import glob

    candidates: list[str] = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            candidates += [ln.split()[-1] for ln in fh if "libgdal" in ln and "/" in ln]
    except OSError:
        pass
    candidates += glob.glob(os.path.join(os.path.dirname(rasterio.__file__) + ".libs", "libgdal*"))
    for path in dict.fromkeys(candidates):
        try:
            fn = ctypes.CDLL(path).VSICurlClearCache
        except (OSError, AttributeError):
            continue
        fn.restype = None
        return fn  # type: ignore[no-any-return]
    return None


def retry(
    what: str,
    fn: Callable[[], T],
    *,
    retries: int = RETRIES,
    hint: str = "",
    transient: tuple[type[BaseException], ...] = (RasterioError, OSError),
) -> T:
    """Call ``fn``, retrying network failures with exponential backoff.

    Parameters
    ----------
    what : str
        What is being read (named in the error).
    fn : callable
        The read.
    retries : int
        Attempts in all.
    hint : str
        The fix to suggest after the last attempt.
    transient : tuple of exception types
        Failures worth another try (default: GDAL and OS/network errors).

    Raises
    ------
    SourceError
        After the last attempt (CLI exit code 3).
    """
    last: Exception | None = None
    for attempt in range(retries):
        try:
            return fn()
        except SourceError:
            raise
        except transient as err:  # network, 5xx, truncated bodies, timeouts
            last = err
            if attempt + 1 < retries:
                time.sleep(BACKOFF_S * 2**attempt)
                if (clear := _vsicurl_clear_cache()) is not None:
                    clear()
    reason = str(last).splitlines()[0] if last else "unknown error"
    raise SourceError(
        f"cannot read {what} after {retries} tries ({reason}); "
        f"{hint or 'check the network and try again'}"
    )
