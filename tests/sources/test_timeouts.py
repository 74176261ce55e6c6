"""Time limits on every network call: a dead or silent service ends in exit 3, quickly.

A loopback "black hole" (a socket that listens but never accepts or answers: the
kernel completes the TCP handshake, then nothing comes back) stands in for a hung
STAC API or Wayback service; ``nonexistent.invalid`` for a host that does not resolve.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import rasterio
import requests

import sitewatch.sources._http as http
from sitewatch.cli.main import main
from sitewatch.errors import InputError, SourceError

FAST_TIMEOUT_S = 1.0
FAST_BACKOFF_S = 0.05
STARTUP_SLACK_S = 12.0  # interpreter start and imports on a busy 2-core machine
DNS_FAIL = "http://nonexistent.invalid/v1"  # .invalid never resolves (RFC 6761)


@pytest.fixture
def black_hole() -> Iterator[str]:
    """URL of a loopback server that accepts TCP connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)  # the kernel queues up to 64 handshakes; nobody ever accepts
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def dns_fails_fast() -> None:
    """Skip unless looking up a .invalid host fails, and fails within 5 s, here."""
    start = time.monotonic()
    try:
        socket.getaddrinfo("nonexistent.invalid", 80)
    except socket.gaierror:
        if time.monotonic() - start < 5:
            return
        pytest.skip("DNS lookups are slow to fail on this machine")
    pytest.skip("this resolver answers for nonexistent.invalid")


def cli_env(cache: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: private cache, no inherited URL or limits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SITEWATCH_")}
    env["SITEWATCH_CACHE"] = str(cache)
    return {**env, **extra}


def commands(url: str, out: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """The three commands pointed at ``url``: argv, and extra environment."""
    return {
        "search": (
            [
                "search",
                "feb11-plant",
                "--from",
                "2020-06-01",
                "--to",
                "2020-06-30",
                "--stac-url",
                url,
            ],
            {},
        ),
        "detect": (
            [
                "detect",
                "feb11-plant",
                "--before",
                "2020-06",
                "--after",
                "2024-10",
                "--stac-url",
                url,
                "--out",
                str(out),
            ],
            {},
        ),
        # The Wayback config URL through its environment variable.
        "wayback": (
            ["wayback", "feb11-plant"],
            {"SITEWATCH_WAYBACK_CONFIG": f"{url}/waybackconfig.json"},
        ),
    }


SERVICE = {"search": "the STAC API", "detect": "the STAC API", "wayback": "Esri Wayback"}
OPTION = {"search": "--stac-url", "detect": "--stac-url", "wayback": "--wayback-config"}


def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sitewatch.cli.main", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def check_silent_service_failure(
    name: str, url: str, out: str, err: str, code: int, *, timeout_s: float
) -> None:
    """Exit 3, nothing on stdout, progress lines, then one error naming service and fix."""
    assert code == 3, err
    assert out == ""
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("sitewatch: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    error = errors[0]
    assert f"cannot read {SERVICE[name]} {url}" in error
    assert f"did not answer within {timeout_s:g} s" in error
    assert OPTION[name] in error and "HTTPS_PROXY" in error and "SITEWATCH_HTTP_TIMEOUT" in error
    assert "Traceback" not in err and "refused" not in err
    assert lines[:-1] == [
        f"sitewatch: {SERVICE[name]} {url}{'/waybackconfig.json' if name == 'wayback' else ''} "
        f"did not answer within {timeout_s:g} s; trying again ({n}/3)"
        for n in (2, 3)
    ]


@pytest.mark.parametrize("name", ["search", "detect", "wayback"])
def test_a_silent_service_ends_in_exit_3_within_the_time_limits(name, black_hole, tmp_path):
    out = tmp_path / "out"
    argv, extra = commands(black_hole, out)[name]
    env = cli_env(
        tmp_path / "cache",
        SITEWATCH_HTTP_TIMEOUT=f"{FAST_TIMEOUT_S:g}",
        SITEWATCH_BACKOFF_S=f"{FAST_BACKOFF_S:g}",
        **extra,
    )
    began = time.monotonic()
    proc = start(argv, env)
    stdout, stderr = proc.communicate(timeout=120)
    took = time.monotonic() - began
    check_silent_service_failure(
        name, black_hole, stdout, stderr, proc.returncode, timeout_s=FAST_TIMEOUT_S
    )
    assert not out.exists()
    waits = 3 * FAST_TIMEOUT_S
    assert waits <= took < waits + 3 * FAST_BACKOFF_S + STARTUP_SLACK_S, took


@pytest.mark.slow
def test_the_default_limits_end_all_three_commands_in_about_a_minute(black_hole, tmp_path):
    # Default time limits and backoff: 3 tries x 20 s read timeout + 0.5 s + 1 s.
    assert (http.READ_TIMEOUT_S, http.CONNECT_TIMEOUT_S, http.RETRIES) == (20.0, 10.0, 3)
    bound = 3 * http.READ_TIMEOUT_S + 0.5 + 1.0
    out = tmp_path / "out"
    began = time.monotonic()
    procs = {
        name: start(argv, cli_env(tmp_path / f"cache-{name}", **extra))
        for name, (argv, extra) in commands(black_hole, out).items()
    }
    results = {name: (*p.communicate(timeout=3 * bound), p.returncode) for name, p in procs.items()}
    took = time.monotonic() - began
    for name, (stdout, stderr, code) in results.items():
        check_silent_service_failure(
            name, black_hole, stdout, stderr, code, timeout_s=http.READ_TIMEOUT_S
        )
    assert not out.exists()
    assert 3 * http.READ_TIMEOUT_S <= took < bound + STARTUP_SLACK_S, took


def test_a_stalled_second_page_of_the_search_times_out_too(monkeypatch):
    """Pagination requests get the time limits, not only the first one."""
    import pystac
    from shapely.geometry import box, mapping

    from sitewatch.aoi import load_aoi
    from sitewatch.sources.stac import search_scenes

    release = threading.Event()
    page2_requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def answer(self, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            if self.path == "/page2":
                page2_requests.append(self.path)
                release.wait(30)  # never answers within the test's time limit
                return
            self.answer(
                {
                    "type": "Catalog",
                    "id": "stalling",
                    "stac_version": pystac.get_stac_version(),
                    "description": "answers the first page only",
                    "conformsTo": [
                        "https://api.stacspec.org/v1.0.0/core",
                        "https://api.stacspec.org/v1.0.0/item-search",
                    ],
                    "links": [
                        {"rel": "self", "href": base},
                        {"rel": "root", "href": base},
                        {
                            "rel": "search",
                            "href": f"{base}/search",
                            "type": "application/geo+json",
                            "method": "POST",
                        },
                    ],
                }
            )

        def do_POST(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            asked = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            geom = box(127.64, 39.90, 127.68, 39.94)
            items = [
                pystac.Item(
                    f"page1-item-{i}",
                    mapping(geom),
                    list(geom.bounds),
                    pystac.utils.str_to_datetime("2020-06-10T02:26:12Z"),
                    {},
                    collection="sentinel-2-c1-l2a",
                )
                for i in range(int(asked.get("limit") or 10))
            ]
            self.answer(
                {  # a full page, so the next link is followed
                    "type": "FeatureCollection",
                    "features": [item.to_dict() for item in items],
                    "links": [{"rel": "next", "href": f"{base}/page2", "method": "GET"}],
                }
            )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SITEWATCH_HTTP_TIMEOUT", f"{FAST_TIMEOUT_S:g}")
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        began = time.monotonic()
        with pytest.raises(SourceError, match=r"did not answer within 1 s") as info:
            search_scenes(load_aoi("feb11-plant"), "2020-06-01", "2020-06-30", url=url)
        took = time.monotonic() - began
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert f"cannot read the STAC API {url} after 3 tries" in str(info.value)
    assert len(page2_requests) == 3  # pystac-client's own retries are off: ours, 3 tries
    assert 3 * FAST_TIMEOUT_S <= took < 3 * FAST_TIMEOUT_S + 5, took


# ---------------------------------------------------------------------------
# DNS failures are named as such, never as a refused connection
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "service", "option"),
    [
        (
            ["search", "feb11-plant", "--from", "2020-06", "--to", "2020-07", "--stac-url"],
            "the STAC API",
            "--stac-url",
        ),
        (["wayback", "feb11-plant", "--wayback-config"], "Esri Wayback", "--wayback-config"),
    ],
)
def test_a_host_that_does_not_resolve_is_a_dns_failure(
    dns_fails_fast, capsys, argv, service, option
):
    url = DNS_FAIL if service == "the STAC API" else f"{DNS_FAIL}/config.json"
    began = time.monotonic()
    code = main([*argv, url])
    took = time.monotonic() - began
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 3 and len(lines) == 3, err
    assert lines[-1] == (
        f"sitewatch: error: cannot read {service} {url} after 3 tries: cannot resolve the host "
        "nonexistent.invalid (DNS lookup failed); check the network or proxy settings "
        f"(HTTPS_PROXY) or the URL ({option})"
    )
    assert all("(DNS lookup failed); trying again" in ln for ln in lines[:2])
    assert "refused" not in err
    assert took < 10


def test_a_cog_on_a_host_that_does_not_resolve_is_a_dns_failure(dns_fails_fast):
    href = f"{DNS_FAIL}/B04.tif"

    def read() -> None:
        with http.gdal_http(), rasterio.open(href):
            pass

    with pytest.raises(SourceError) as info:
        http.retry(href, read, option="--stac-url")
    msg = str(info.value)
    assert "cannot resolve the host nonexistent.invalid" in msg and "refused" not in msg


# ---------------------------------------------------------------------------
# The classifier, the wording and the limits themselves
# ---------------------------------------------------------------------------


def _requests_error(url: str) -> BaseException:
    try:
        requests.get(url, timeout=http.timeouts())
    except requests.RequestException as err:
        return err
    raise AssertionError(f"{url} answered")


def _urllib_error(url: str) -> BaseException:
    try:
        with http.urlopen(url):
            pass
    except OSError as err:
        return err
    raise AssertionError(f"{url} answered")


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        # DNS, in the words of glibc, macOS, curl (GDAL), urllib3 and requests
        ("[Errno -2] Name or service not known", "dns"),
        ("[Errno -3] Temporary failure in name resolution", "dns"),
        ("[Errno 8] nodename nor servname provided, or not known", "dns"),
        ("CURL error: Could not resolve host: nonexistent.invalid", "dns"),
        ("getaddrinfo failed", "dns"),
        ("Failed to resolve 'x.invalid' ([Errno -2] Name or service not known)", "dns"),
        # a DNS failure that also says "failed to connect" is still a DNS failure
        ("Failed to connect: Could not resolve host: x.invalid; connection refused", "dns"),
        (socket.gaierror(-2, "Name or service not known"), "dns"),
        (urllib.error.URLError(socket.gaierror(-3, "Temporary failure")), "dns"),
        # refused
        ("[Errno 111] Connection refused", "refused"),
        (
            "CURL error: Failed to connect to 127.0.0.1 port 9 after 0 ms: Could not connect",
            "refused",
        ),
        (ConnectionRefusedError(111, "Connection refused"), "refused"),
        # timeouts
        (
            "CURL error: Operation timed out after 2001 milliseconds with 0 bytes received",
            "timeout",
        ),
        ("HTTPConnectionPool(host='h', port=80): Read timed out. (read timeout=20)", "timeout"),
        ("timed out", "timeout"),
        (TimeoutError("timed out"), "timeout"),
        # anything else keeps its own message
        ("HTTP 503", "other"),
        ("HTTP response code: 500", "other"),
        (ValueError("invalid JSON"), "other"),
    ],
)
def test_classify_failure(failure, kind):
    assert http.classify_failure(failure) == kind


def test_classify_real_failures(dns_fails_fast, black_hole, monkeypatch):
    monkeypatch.setenv("SITEWATCH_HTTP_TIMEOUT", "0.5")
    for get in (_requests_error, _urllib_error):
        assert http.classify_failure(get(f"{DNS_FAIL}/x")) == "dns"
        assert http.classify_failure(get("http://127.0.0.1:9/x")) == "refused"
    assert http.classify_failure(_urllib_error(f"{black_hole}/x")) == "timeout"
    err = _requests_error(f"{black_hole}/x")
    assert http.classify_failure(err) == "timeout"
    assert http.describe_failure(f"{black_hole}/x", err)[1].endswith("within 0.5 s")


def test_describe_failure_names_the_server_and_the_time_limit():
    kind, problem, fix = http.describe_failure(
        "the STAC API http://10.0.0.1:8080/v1",
        "CURL error: Operation timed out after 20001 milliseconds with 0 bytes received",
        option="--stac-url",
    )
    assert kind == "timeout"
    assert problem == "the server 10.0.0.1:8080 did not answer within 20 s"
    assert "HTTPS_PROXY" in fix and "--stac-url" in fix
    kind, problem, fix = http.describe_failure("http://127.0.0.1:9/c.json", "Connection refused")
    assert (kind, problem) == ("refused", "the server 127.0.0.1:9 refused the connection")
    assert http.describe_failure("x", "HTTP 500") == ("other", "HTTP 500", "")


def test_default_limits_and_the_environment_override(monkeypatch):
    monkeypatch.delenv("SITEWATCH_HTTP_TIMEOUT", raising=False)
    assert http.timeouts() == (10.0, 20.0)
    opts = http.gdal_options()
    assert (opts["GDAL_HTTP_CONNECTTIMEOUT"], opts["GDAL_HTTP_TIMEOUT"]) == ("10", "20")
    monkeypatch.setenv("SITEWATCH_HTTP_TIMEOUT", "45")
    assert http.timeouts() == (10.0, 45.0)  # the connect limit does not grow
    monkeypatch.setenv("SITEWATCH_HTTP_TIMEOUT", "1.5")
    assert http.timeouts() == (1.5, 1.5)  # nor stay above a shorter read limit
    assert http.gdal_options()["GDAL_HTTP_CONNECTTIMEOUT"] == "1.5"


@pytest.mark.parametrize("bad", ["abc", "0", "-3", "inf", "nan"])
def test_a_bad_timeout_is_one_line_exit_2_before_any_request(bad, black_hole, capsys, monkeypatch):
    monkeypatch.setenv("SITEWATCH_HTTP_TIMEOUT", bad)
    with pytest.raises(InputError, match="not a positive number of seconds"):
        http.read_timeout()
    began = time.monotonic()
    argv = ["search", "feb11-plant", "--from", "2020-06", "--to", "2020-07"]
    code = main([*argv, "--stac-url", black_hole])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"SITEWATCH_HTTP_TIMEOUT={bad!r}" in err
    assert time.monotonic() - began < 5


def test_quiet_hides_the_progress_and_the_handler_goes_away(
    black_hole, tmp_path, capsys, monkeypatch
):
    import logging

    monkeypatch.setenv("SITEWATCH_HTTP_TIMEOUT", "0.3")
    logger = logging.getLogger("sitewatch")
    before = (list(logger.handlers), logger.level)
    out = tmp_path / "out"
    argv = commands(black_hole, out)["detect"][0]
    assert main([*argv, "--quiet"]) == 3
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sitewatch: error: cannot read the STAC API")
    assert (list(logger.handlers), logger.level) == before
    assert not out.exists()
