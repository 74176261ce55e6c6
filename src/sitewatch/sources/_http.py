"""Network access: time limits, retries, failure wording, and GDAL's /vsicurl/ settings.

Every network call of sitewatch has a connect and a read time limit, set here once
(:func:`connect_timeout`, :func:`read_timeout`): the STAC client (requests), the COG
reads (GDAL) and Esri Wayback (urllib, :func:`urlopen`). Every call goes through
:func:`retry`, which tries :data:`RETRIES` times with backoff, logs each retry at INFO
on the ``sitewatch`` logger (the CLI shows it on stderr), and ends in one
:class:`~sitewatch.errors.SourceError` that says what could not be reached and why
(:func:`classify_failure`: DNS, refused, timed out). With the defaults a service that
accepts connections but never answers fails after 3 × 20 s + 0.5 s + 1 s ≈ 62 s, one
that does not accept them after 3 × 10 s + 1.5 s ≈ 32 s, and a refused connection or a
failed DNS lookup in about 1.5 s.

Every remote COG read runs inside :func:`gdal_http`, which

* sets the GDAL options that keep a windowed read to the header and the touched
  tiles (no sidecar probing, merged consecutive ranges, no GDAL-side retries);
* turns GDAL's *warnings* about failed range requests into errors, so a 5xx or
  a truncated body is retried instead of silently becoming a block of fill;
* counts the HTTP requests and bytes GDAL makes, per URL, from its debug log
  (``VSICURL: Downloading a-b (url)``, ``S3: ...`` for /vsis3/) — the figures the
  run manifest reports.
"""

from __future__ import annotations

import functools
import http.client
import logging
import math
import os
import re
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import rasterio
from rasterio.errors import RasterioError

from sitewatch.errors import InputError, SourceError

__all__ = [
    "BACKOFF_S",
    "CONNECT_TIMEOUT_S",
    "READ_TIMEOUT_S",
    "RETRIES",
    "FailureKind",
    "NetStats",
    "classify_failure",
    "connect_timeout",
    "describe_failure",
    "gdal_http",
    "gdal_options",
    "public_href",
    "read_timeout",
    "retry",
    "timeouts",
    "urlopen",
]

RETRIES = 3
"""Attempts per network call, the first one included."""
BACKOFF_S = float(os.environ.get("SITEWATCH_BACKOFF_S", "0.5"))
"""First retry delay in seconds (doubling after); ``$SITEWATCH_BACKOFF_S`` overrides."""
CONNECT_TIMEOUT_S = 10.0
"""Seconds allowed to open a connection (TCP, and TLS for https), or the read timeout if shorter."""
READ_TIMEOUT_S = 20.0
"""Seconds allowed for an answer (``$SITEWATCH_HTTP_TIMEOUT`` overrides)."""

T = TypeVar("T")
FailureKind = Literal["dns", "refused", "timeout", "other"]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# Time limits
# ---------------------------------------------------------------------------


def read_timeout() -> float:
    """Seconds to wait for an answer: ``$SITEWATCH_HTTP_TIMEOUT``, else :data:`READ_TIMEOUT_S`.

    For requests and urllib this bounds each wait for data; for GDAL it bounds each
    whole range request.

    Raises
    ------
    InputError
        If ``$SITEWATCH_HTTP_TIMEOUT`` is not a positive, finite number of seconds.
    """
    raw = os.environ.get("SITEWATCH_HTTP_TIMEOUT", "").strip()
    if not raw:
        return READ_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):
        raise InputError(
            f"SITEWATCH_HTTP_TIMEOUT={raw!r} is not a positive number of seconds; "
            f"unset it (default {READ_TIMEOUT_S:g}) or set e.g. 60"
        )
    return value


def connect_timeout() -> float:
    """Seconds to wait for a connection: :data:`CONNECT_TIMEOUT_S`, or the read timeout if shorter.

    Raises
    ------
    InputError
        If ``$SITEWATCH_HTTP_TIMEOUT`` is invalid (see :func:`read_timeout`).
    """
    return min(CONNECT_TIMEOUT_S, read_timeout())


def timeouts() -> tuple[float, float]:
    """``(connect, read)`` seconds, the form ``requests`` (and so pystac-client) takes."""
    return connect_timeout(), read_timeout()


class _ReadTimeout:
    """Mixin for http.client connections: a connect limit, then a read limit.

    Connect within ``timeout`` (the connect limit), then read within ``read_timeout``.
    For https the TLS handshake counts as connecting.
    """

    timeout: Any
    sock: Any

    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.read_timeout = read_timeout

    def connect(self) -> None:
        try:
            super().connect()  # type: ignore[misc]
        except TimeoutError:
            raise TimeoutError(f"connect timed out after {self.timeout:g} s") from None
        if self.sock is not None:
            self.sock.settimeout(self.read_timeout)


class _TimedHTTPConnection(_ReadTimeout, http.client.HTTPConnection):
    """An HTTP connection with separate connect and read limits."""


class _TimedHTTPSConnection(_ReadTimeout, http.client.HTTPSConnection):
    """An HTTPS connection with separate connect and read limits."""


class _TimedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, read: float) -> None:
        super().__init__()
        self.read = read

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        conn = functools.partial(_TimedHTTPConnection, read_timeout=self.read)
        return self.do_open(conn, req)  # type: ignore[arg-type]


class _TimedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, read: float) -> None:
        super().__init__()
        self.read = read

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        conn = functools.partial(_TimedHTTPSConnection, read_timeout=self.read)
        return self.do_open(conn, req, context=self._context)  # type: ignore[arg-type,attr-defined]


def urlopen(req: urllib.request.Request | str) -> Any:
    """:func:`urllib.request.urlopen` with the connect and the read time limit.

    Proxies come from the environment (``HTTPS_PROXY`` ...) as with urllib's default.
    A connection not made in time raises ``TimeoutError("connect timed out after N s")``
    (wrapped in ``URLError``); an answer not coming in time raises ``TimeoutError``.
    """
    connect, read = timeouts()
    opener = urllib.request.build_opener(_TimedHTTPHandler(read), _TimedHTTPSHandler(read))
    return opener.open(req, timeout=connect)


# ---------------------------------------------------------------------------
# What went wrong, in words a user can act on
# ---------------------------------------------------------------------------

_DNS_TEXT = re.compile(
    r"name or service not known|temporary failure in name resolution|nodename nor servname"
    r"|could not resolve host|getaddrinfo|failed to resolve|no address associated with hostname"
    r"|resolving timed out|NameResolutionError",
    re.I,
)
_TIMEOUT_TEXT = re.compile(r"timed out|timeout", re.I)
_REFUSED_TEXT = re.compile(
    r"refused|could not connect to server|failed to connect to|ECONNREFUSED", re.I
)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"()<>]+", re.I)
_SECONDS = (
    (re.compile(r"after (\d+(?:\.\d+)?) ?(?:ms|milliseconds)\b", re.I), 0.001),
    (re.compile(r"(?:read|connect) timeout=(\d+(?:\.\d+)?)", re.I), 1.0),
    (re.compile(r"(?:after|within) (\d+(?:\.\d+)?) ?s\b", re.I), 1.0),
)


def _chain(err: BaseException | str) -> list[BaseException | str]:
    """The error, its causes, contexts and ``reason`` s (URLError), each once."""
    out: list[BaseException | str] = []
    todo: list[Any] = [err]
    while todo:
        e = todo.pop(0)
        if e is None or any(e is seen for seen in out):
            continue
        out.append(e)
        if isinstance(e, BaseException):
            todo += [e.__cause__, e.__context__, getattr(e, "reason", None)]
            todo += [a for a in e.args if isinstance(a, BaseException)]
    return out


def classify_failure(err: BaseException | str) -> FailureKind:
    """What kind of network failure ``err`` is: a DNS lookup, a refusal, a timeout, or other.

    Looks at the exception types along the cause/context chain (``socket.gaierror``,
    ``ConnectionRefusedError``, ``TimeoutError``) and at the messages of requests,
    urllib3, urllib and GDAL/curl. A failed DNS lookup wins over everything else, so it
    is never reported as a refused connection.

    Examples
    --------
    >>> classify_failure("CURL error: Could not resolve host: nonexistent.invalid")
    'dns'
    >>> classify_failure("<urlopen error [Errno -2] Name or service not known>")
    'dns'
    >>> classify_failure("[Errno 111] Connection refused")
    'refused'
    >>> classify_failure("CURL error: Operation timed out after 2001 milliseconds")
    'timeout'
    >>> classify_failure("HTTP 503")
    'other'
    """
    chain = _chain(err)
    texts = [str(e) for e in chain]
    if any(isinstance(e, socket.gaierror) for e in chain) or any(map(_DNS_TEXT.search, texts)):
        return "dns"
    if any(isinstance(e, TimeoutError) for e in chain) or any(map(_TIMEOUT_TEXT.search, texts)):
        return "timeout"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or any(
        map(_REFUSED_TEXT.search, texts)
    ):
        return "refused"
    return "other"


def _seconds(err: BaseException | str) -> float:
    """The time limit a timeout message names, else the read timeout."""
    for text in map(str, _chain(err)):
        for pattern, unit in _SECONDS:
            if m := pattern.search(text):
                return float(m.group(1)) * unit
    return read_timeout()


def _server(what: str, err: BaseException | str) -> tuple[str, str]:
    """(host, host[:port]) of the first URL in ``what`` (else in the error), or ("", "")."""
    for text in [what, *map(str, _chain(err))]:
        if m := _URL.search(text):
            parts = urllib.parse.urlsplit(m.group(0))
            if parts.hostname:
                return parts.hostname, parts.netloc.rpartition("@")[2]
    return "", ""


def describe_failure(
    what: str, err: BaseException | str, *, option: str = ""
) -> tuple[FailureKind, str, str]:
    """Classify a failed call of ``what`` and word it: ``(kind, problem, fix)``.

    Parameters
    ----------
    what : str
        What was being read, with its URL (e.g. ``"the STAC API https://..."``).
    err : exception or str
        The last failure.
    option : str
        The option that sets the URL, named in the fix (e.g. ``"--stac-url"``).

    Returns
    -------
    kind : {"dns", "refused", "timeout", "other"}
    problem : str
        E.g. ``"cannot resolve the host example.invalid (DNS lookup failed)"``;
        the first line of the error for ``"other"``.
    fix : str
        What to try (empty for ``"other"``: the caller's hint applies).

    Examples
    --------
    >>> describe_failure("http://nonexistent.invalid/x", "Could not resolve host")[1]
    'cannot resolve the host nonexistent.invalid (DNS lookup failed)'
    """
    kind = classify_failure(err)
    host, netloc = _server(what, err)
    the_url = f"the URL ({option})" if option else "the URL"
    proxy = "the network or proxy settings (HTTPS_PROXY)"
    if kind == "dns":
        return (
            kind,
            f"cannot resolve the host {host or '(unknown)'} (DNS lookup failed)",
            f"check {proxy} or {the_url}",
        )
    if kind == "refused":
        return (
            kind,
            f"the server {netloc or host or '(unknown)'} refused the connection",
            f"check {the_url}, that the service is up, and {proxy}",
        )
    if kind == "timeout":
        return (
            kind,
            f"the server {netloc or host or '(unknown)'} did not answer within "
            f"{_seconds(err):.3g} s",
            f"check {proxy}, try again later or another URL"
            + (f" ({option})" if option else "")
            + ", or allow more time with SITEWATCH_HTTP_TIMEOUT=SECONDS",
        )
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return kind, redact_tokens(text), ""


# ---------------------------------------------------------------------------
# GDAL
# ---------------------------------------------------------------------------


def gdal_options() -> dict[str, str]:
    """GDAL settings for remote COG reads.

    ``GDAL_HTTP_CONNECTTIMEOUT`` is :func:`connect_timeout` and ``GDAL_HTTP_TIMEOUT``
    (the limit on each whole request) :func:`read_timeout`; GDAL does not retry.
    """
    connect, read = timeouts()
    return {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no sidecar probing
        "GDAL_HTTP_MULTIPLEX": "YES",
        "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
        "VSI_CACHE": "TRUE",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
        "GDAL_HTTP_MAX_RETRY": "0",  # retries are ours, with backoff and a clear error
        "GDAL_HTTP_CONNECTTIMEOUT": f"{connect:g}",
        "GDAL_HTTP_TIMEOUT": f"{read:g}",
        "CPL_DEBUG": "ON",  # for the request log below; messages stay in `logging`
    }


_SIG = re.compile(r"([?&])sig=[^&\s'\"]+")


def redact_tokens(text: str) -> str:
    """``text`` with every SAS signature (``sig=...``) replaced, for messages and logs.

    Examples
    --------
    >>> redact_tokens("HTTP 403 for https://a/x.tif?se=2&sig=abc%3D")
    'HTTP 403 for https://a/x.tif?se=2&sig=REDACTED'
    """
    return _SIG.sub(r"\1sig=REDACTED", text)


def public_href(href: str) -> str:
    """``href`` without a SAS token (the query string of a signed URL), for records.

    Examples
    --------
    >>> public_href("https://a.blob.core.windows.net/c/x.tif?st=1&se=2&sig=abc")
    'https://a.blob.core.windows.net/c/x.tif'
    >>> public_href("https://example.com/x.tif")
    'https://example.com/x.tif'
    """
    base, sep, query = href.partition("?")
    return base if sep and "sig=" in query else href


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
        """Record one request of ``nbytes`` to ``url`` (without its SAS token, if signed)."""
        url = public_href(url)
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


# GDAL logs each network file system under its handler's debug key: ``VSICURL`` for
# /vsicurl/, ``S3`` for /vsis3/ (the URL is the https one it signs), ``GS``, ``AZURE``,
# ``ADLS``, ``OSS``, ``SWIFT``, ``WEBHDFS`` for the others (GetDebugKey() in
# port/cpl_vsil_*.cpp); the messages themselves are shared (cpl_vsil_curl.cpp).
_FS_KEYS = r"(?:VSICURL|S3|GS|AZURE|ADLS|OSS|SWIFT|WEBHDFS)"
_DOWNLOAD = re.compile(rf"\b{_FS_KEYS}: Downloading ([0-9,\-]+) \((\S+?)\)")
_SIZE = re.compile(rf"\b{_FS_KEYS}: GetFileSize\((\S+?)\)")
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
def gdal_http(stats: NetStats | None = None, **extra: str) -> Iterator[None]:
    """GDAL HTTP settings, strict reads, and request counting into ``stats``.

    ``extra`` adds GDAL options for this read (e.g. ``AWS_REQUEST_PAYER="requester"``).

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
        with rasterio.Env(**{**gdal_options(), **extra}):
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
    option: str = "",
    transient: tuple[type[BaseException], ...] = (RasterioError, OSError),
) -> T:
    """Call ``fn``, retrying network failures with exponential backoff.

    Each retry is announced at INFO level on the ``sitewatch`` logger (the CLI prints
    it on stderr), e.g. ``the STAC API https://... did not answer within 20 s; trying
    again (2/3)``. With the default 3 tries, 0.5 s backoff and 20 s read timeout, a
    silent service ends in a :class:`SourceError` after about a minute.

    Parameters
    ----------
    what : str
        What is being read, with its URL (named in the messages).
    fn : callable
        The read; it must apply the time limits (:func:`timeouts`, :func:`urlopen`,
        :func:`gdal_http`).
    retries : int
        Attempts in all.
    hint : str
        The fix to suggest when the last failure is neither a DNS failure, a refused
        connection nor a timeout (e.g. HTTP 500).
    option : str
        The option that sets the URL (``"--stac-url"``), named in the suggested fix.
    transient : tuple of exception types
        Failures worth another try (default: GDAL and OS/network errors).

    Raises
    ------
    SourceError
        After the last attempt (CLI exit code 3): ``cannot read WHAT after N tries``,
        then what went wrong (DNS lookup, refused, no answer within N s, or the error)
        and what to try.
    InputError
        If ``$SITEWATCH_HTTP_TIMEOUT`` is invalid (before any request).
    """
    read_timeout()  # a bad $SITEWATCH_HTTP_TIMEOUT fails here, before any request
    last: BaseException | None = None
    for attempt in range(retries):
        try:
            return fn()
        except SourceError:
            raise
        except transient as err:  # network, 5xx, truncated bodies, timeouts
            last = err
            if attempt + 1 < retries:
                log.info("%s; trying again (%d/%d)", _progress(what, err), attempt + 2, retries)
                time.sleep(BACKOFF_S * 2**attempt)
                if (clear := _vsicurl_clear_cache()) is not None:
                    clear()
    if last is None:
        raise SourceError(f"cannot read {what}: no attempt was made (retries={retries})")
    kind, problem, fix = describe_failure(what, last, option=option)
    if kind == "other":
        raise SourceError(
            f"cannot read {what} after {retries} tries ({problem}); "
            f"{hint or 'check the network and try again'}"
        ) from last
    raise SourceError(f"cannot read {what} after {retries} tries: {problem}; {fix}") from last


def _progress(what: str, err: BaseException) -> str:
    """One failed attempt of ``what``, in a few words."""
    kind, problem, _ = describe_failure(what, err)
    if kind == "timeout":
        return f"{what} did not answer within {_seconds(err):.3g} s"
    if kind == "refused":
        return f"{what} refused the connection"
    if kind == "dns":
        return f"{what}: {problem}"
    return f"{what} failed ({problem})"
