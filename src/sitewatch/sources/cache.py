"""On-disk cache of remote reads: AOI windows of COG assets and STAC search results.

An entry's address is the SHA-256 of what was asked for (item, asset, href,
window), and the entry stores the SHA-256 of what came back; a read checks it, so a
truncated or corrupted entry is detected, deleted and read again from the source.
Entries are written to a temporary file in the same folder and renamed into place,
so a crash or a failed read never leaves a partial entry behind.

The folder is ``$SITEWATCH_CACHE``, else ``$XDG_CACHE_HOME/sitewatch``, else
``~/.cache/sitewatch``. Only the AOI windows of public Sentinel-2/Landsat assets go
here (kilobytes to a few MB per scene); Wayback tiles are never cached.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sitewatch.errors import OutputError

__all__ = ["Cache", "CachedWindow", "cache_key", "default_cache_dir", "open_cache"]

SEARCH_TTL_S = 3600.0
"""How long a search over a still-open date window is reused (seconds)."""
SETTLED_DAYS = 7
"""A window that ended this many days before the search was made is final."""


def default_cache_dir() -> Path:
    """``$SITEWATCH_CACHE``, else ``$XDG_CACHE_HOME/sitewatch``, else ``~/.cache/sitewatch``."""
    env = os.environ.get("SITEWATCH_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "sitewatch"


def cache_key(**parts: Any) -> str:
    """SHA-256 of the canonical JSON of ``parts``.

    Examples
    --------
    >>> cache_key(a=1, b="x") == cache_key(b="x", a=1)
    True
    """
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def array_sha256(arr: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes."""
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class CachedWindow:
    """A window of one raster asset as read from the source.

    Attributes
    ----------
    data : (H, W) ndarray
        Pixel values as stored in the file (DN), native dtype.
    transform : tuple of 6 float
        Affine of the window's upper-left pixel.
    crs : str
    nodata : float or None
    window : tuple of 4 int
        ``(col_off, row_off, width, height)`` in the asset's pixel grid.
    sha256 : str
        :func:`array_sha256` of ``data``.
    """

    data: np.ndarray
    transform: tuple[float, ...]
    crs: str
    nodata: float | None
    window: tuple[int, int, int, int]
    sha256: str

    def meta(self) -> dict[str, Any]:
        """Everything but the pixels, JSON-ready."""
        return {
            "transform": list(self.transform),
            "crs": self.crs,
            "nodata": self.nodata,
            "window": list(self.window),
            "sha256": self.sha256,
            "dtype": self.data.dtype.str,
            "shape": list(self.data.shape),
        }


class Cache:
    """A cache folder (see the module docstring).

    Parameters
    ----------
    root : path
        Folder; created on first write.

    Attributes
    ----------
    hits, misses, corrupt : int
        Counters for this process.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0
        self.corrupt = 0

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def _write_atomic(self, path: Path, write: Any) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        except OSError as err:
            raise OutputError(
                f"cannot write to the cache folder {self.root} ({err.strerror or err}); "
                "set SITEWATCH_CACHE to a writable folder or pass --no-cache"
            ) from None
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as err:
            Path(tmp).unlink(missing_ok=True)
            raise OutputError(
                f"cannot write to the cache folder {self.root} ({err.strerror or err}); "
                "free some space, set SITEWATCH_CACHE elsewhere or pass --no-cache"
            ) from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- raster windows -------------------------------------------------------
    def get_window(self, key: str) -> CachedWindow | None:
        """The entry for ``key``, or None (a bad entry is deleted and counted)."""
        path = self._path("windows", key, ".npz")
        if not path.is_file():
            self.misses += 1
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                data = z["data"]
                meta = json.loads(str(z["meta"]))
            if array_sha256(data) != meta["sha256"]:
                raise ValueError("checksum mismatch")
            entry = CachedWindow(
                data=data,
                transform=tuple(float(v) for v in meta["transform"]),
                crs=str(meta["crs"]),
                nodata=meta["nodata"],
                window=tuple(int(v) for v in meta["window"]),  # type: ignore[arg-type]
                sha256=meta["sha256"],
            )
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)
            self.corrupt += 1
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def put_window(self, key: str, entry: CachedWindow) -> None:
        """Store ``entry`` under ``key`` (atomically)."""
        meta = np.array(json.dumps(entry.meta()))
        self._write_atomic(
            self._path("windows", key, ".npz"),
            lambda fh: np.savez(fh, data=entry.data, meta=meta),
        )

    # -- STAC searches --------------------------------------------------------
    def get_search(self, key: str, *, window_end: str) -> list[dict[str, Any]] | None:
        """Cached search result (item dicts), if still valid.

        A search over a window that had ended :data:`SETTLED_DAYS` before it was made
        is reused for good; one over a still-open window for :data:`SEARCH_TTL_S`.
        """
        path = self._path("searches", key, ".json")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            made = dt.datetime.fromisoformat(doc["made_utc"])
            items = doc["items"]
            if not isinstance(items, list):
                raise ValueError("items is not a list")
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            self.corrupt += 1
            self.misses += 1
            return None
        settled = dt.date.fromisoformat(window_end) + dt.timedelta(days=SETTLED_DAYS)
        age = (dt.datetime.now(dt.UTC) - made).total_seconds()
        if made.date() < settled and age > SEARCH_TTL_S:
            self.misses += 1
            return None
        self.hits += 1
        return items

    def put_search(self, key: str, items: list[dict[str, Any]]) -> None:
        """Store a search result (atomically)."""
        doc = {"made_utc": dt.datetime.now(dt.UTC).isoformat(), "items": items}
        payload = json.dumps(doc).encode()
        self._write_atomic(self._path("searches", key, ".json"), lambda fh: fh.write(payload))


def open_cache(root: str | Path | None = None, *, enabled: bool = True) -> Cache | None:
    """The cache at ``root`` (default :func:`default_cache_dir`), or None if disabled."""
    if not enabled:
        return None
    return Cache(root if root is not None else default_cache_dir())
