"""Synthetic scene factory and shared fixtures (no network, no ../shared needed)."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

SHARED = Path(os.environ.get("SITEWATCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
UTM = "EPSG:32652"  # Hamhung's zone
ORIGIN = (375_000.0, 4_420_000.0)  # UTM 52N, near the February 11 Plant
RES = 10.0


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = UTM,
    transform: Affine | None = None,
    nodata: float | None = None,
    driver: str = "GTiff",
) -> Path:
    """Write a (B, H, W) array as a raster file."""
    if data.ndim == 2:
        data = data[None]
    transform = transform or Affine(RES, 0, ORIGIN[0], 0, -RES, ORIGIN[1])
    profile = {
        "driver": driver,
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "nodata": nodata,
    }
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
    return path


SceneFactory = Callable[..., tuple[Path, Path, np.ndarray]]


@pytest.fixture(autouse=True)
def private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets an empty remote-read cache (never ~/.cache) and fast retries."""
    root = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("SITEWATCH_CACHE", str(root))
    monkeypatch.setenv("SITEWATCH_BACKOFF_S", "0.01")
    import sitewatch.sources._http as http

    monkeypatch.setattr(http, "BACKOFF_S", 0.01)
    if (clear := http._vsicurl_clear_cache()) is not None:
        clear()  # and GDAL forgets what earlier tests fetched over HTTP
    return root


@pytest.fixture(autouse=True)
def private_user_catalog(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets an empty user AOI catalog (never ~/.config/sitewatch/aoi)."""
    root = tmp_path_factory.mktemp("user-aoi")
    monkeypatch.setenv("SITEWATCH_AOI_PATH", str(root))
    return root


@pytest.fixture
def planted_pair(tmp_path: Path) -> SceneFactory:
    """Factory: before/after GeoTIFFs with a planted 40 x 30 px new roof; returns truth."""

    def make(
        *,
        bands: int = 4,
        size: tuple[int, int] = (200, 200),
        roof: tuple[slice, slice] = (slice(80, 110), slice(60, 100)),
        dtype: str = "uint16",
        seed: int = 7,
        crs: str | None = UTM,
        folder: bool = False,
    ) -> tuple[Path, Path, np.ndarray]:
        rng = np.random.default_rng(seed)
        h, w = size
        # Smooth "landscape" + per-pixel texture, reflectance-like values.
        base = rng.normal(0.12, 0.02, size=(bands, h, w))
        base += np.linspace(0, 0.05, w)[None, None, :]
        before = base
        after = base + rng.normal(0, 0.004, size=base.shape)
        truth = np.zeros((h, w), dtype=bool)
        truth[roof] = True
        after[:, truth] += np.linspace(0.12, 0.2, bands)[:, None]  # bright new roof
        scale = 10000 if dtype == "uint16" else 255 / 0.6
        b = np.clip(before * scale, 1, np.iinfo(dtype).max).astype(dtype)
        a = np.clip(after * scale, 1, np.iinfo(dtype).max).astype(dtype)
        if folder:
            paths = []
            for name, arr in (("before", b), ("after", a)):
                d = tmp_path / name
                d.mkdir()
                for i in range(bands):
                    write_raster(
                        d / f"T52SCK_20240601T020000_B{i + 2:02d}.tif", arr[i : i + 1], crs=crs
                    )
                paths.append(d)
            return paths[0], paths[1], truth
        return (
            write_raster(tmp_path / "before.tif", b, crs=crs),
            write_raster(tmp_path / "after.tif", a, crs=crs),
            truth,
        )

    return make


def lonlat_box(west: float, south: float, east: float, north: float) -> dict:
    """A GeoJSON Feature with a rectangle polygon."""
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {
        "type": "Feature",
        "properties": {"id": "test-aoi", "name": "Test AOI"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def write_geojson(path: Path, obj: dict) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def needs_shared(*parts: str) -> pytest.MarkDecorator:
    """Skip unless ../shared/<parts> exists (development data, absent on fresh machines)."""
    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not present")


# ---------------------------------------------------------------------------
# Loopback infrastructure: range-capable COG server + rustac STAC API (subprocesses)
# ---------------------------------------------------------------------------
import selectors  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402


def _stop(proc: subprocess.Popen) -> None:
    """Terminate a child, wait, kill if needed, and close its pipes."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RangeServerHandle:
    url: str
    root: Path
    log: Path
    proc: subprocess.Popen = field(repr=False)

    def requests(self) -> list[dict]:
        """Parsed log lines: method, path, range (None for '-'), status, bytes."""
        out = []
        for line in self.log.read_text(encoding="utf-8").splitlines():
            method, path, rng, status, sent = line.split(" ")
            out.append(
                {
                    "method": method,
                    "path": path,
                    "range": None if rng == "-" else rng,
                    "status": int(status),
                    "bytes": int(sent),
                }
            )
        return out

    def bytes_sent(self, path: str | None = None) -> int:
        return sum(r["bytes"] for r in self.requests() if path is None or r["path"] == path)

    def paths(self, prefix: str = "/") -> list[str]:
        """Requested paths under ``prefix``, in order."""
        return [r["path"] for r in self.requests() if r["path"].startswith(prefix)]

    def reset(self) -> None:
        """Clear the log and every fault."""
        self.reset_log()
        self.set_faults({})

    def reset_log(self) -> None:
        self.log.write_text("", encoding="utf-8")  # server appends (O_APPEND): safe

    def set_faults(self, faults: dict) -> None:
        """Write ROOT/_faults.json ({} clears all faults)."""
        target = self.root / "_faults.json"
        if not faults:
            target.unlink(missing_ok=True)
            return
        tmp = self.root / "_faults.json.fixture-tmp"
        tmp.write_text(json.dumps(faults), encoding="utf-8")
        os.replace(tmp, target)


@contextmanager
def serve_range(root: Path, log: Path) -> Iterator[RangeServerHandle]:
    """Run ``servers/range_server.py`` over ``root`` on a free loopback port."""
    log.touch()
    script = Path(__file__).parent / "servers" / "range_server.py"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(root), "0", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = ""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if sel.select(timeout=10):
                line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"range_server did not start (got {line!r})")
        port = int(line.split()[1])
        yield RangeServerHandle(f"http://127.0.0.1:{port}", root, log, proc)
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def range_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RangeServerHandle]:
    """Range-capable HTTP file server (subprocess) serving a session temp dir."""
    root = tmp_path_factory.mktemp("range_root")
    log = tmp_path_factory.mktemp("range_log") / "requests.log"
    with serve_range(root, log) as server:
        yield server


@dataclass
class StacApiHandle:
    url: str
    fixture: dict
    proc: subprocess.Popen | None = field(repr=False)


@pytest.fixture(scope="session")
def s2_fixture(range_server: RangeServerHandle) -> dict:
    """Synthetic S2 C1 L2A items + COGs, built into (and served from) range_server.root."""
    from stac_fixtures import build_s2_fixture

    return build_s2_fixture(range_server.root, range_server.url)


@pytest.fixture(scope="session")
def landsat_fixture(range_server: RangeServerHandle) -> dict:
    """Synthetic Landsat C2 L2 items + COGs, served from range_server.root."""
    from stac_fixtures import build_landsat_fixture

    return build_landsat_fixture(range_server.root, range_server.url)


@contextmanager
def serve_stac(files: list[Path], logdir: Path) -> Iterator[str]:
    """``rustac serve`` (in-memory backend) over collection/items JSON files; yields its URL."""
    exe = Path(sys.executable).parent / "rustac"
    if not exe.exists():
        found = shutil.which("rustac")
        if found is None:
            pytest.skip("rustac not installed")
        exe = Path(found)
    port = _free_port()
    cmd = [
        str(exe),
        "serve",
        "--addr",
        f"127.0.0.1:{port}",
        "--use-duckdb",
        "false",
        *map(str, files),
    ]
    errlog = logdir / "rustac.log"
    url = f"http://127.0.0.1:{port}"
    with open(errlog, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"rustac exited {proc.returncode}: {errlog.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/collections", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except urllib.error.HTTPError as exc:
                exc.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"rustac not ready after 15 s: {errlog.read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        _stop(proc)


def stac_files(*fixtures: dict) -> list[Path]:
    """The collection and items files of built fixtures, for :func:`serve_stac`."""
    return [p for f in fixtures for p in (f["collection"], f["items"])]


@pytest.fixture(scope="session")
def stac_api(
    range_server: RangeServerHandle,
    s2_fixture: dict,
    landsat_fixture: dict,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StacApiHandle]:
    """A STAC API on loopback over the Sentinel-2 and Landsat fixtures."""
    with serve_stac(
        stac_files(s2_fixture, landsat_fixture), tmp_path_factory.mktemp("rustac")
    ) as url:
        yield StacApiHandle(url, s2_fixture, None)  # type: ignore[arg-type]
