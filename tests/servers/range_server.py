"""Range-capable static file server for offline tests (stdlib only).

Usage: ``python range_server.py ROOT_DIR PORT LOGFILE`` (PORT 0 = pick a free port).

* ``ThreadingHTTPServer`` on 127.0.0.1, HTTP/1.1 keep-alive, GET and HEAD.
* One ``Range: bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` -> 206 + Content-Range;
  anything else (no header, several ranges, malformed) -> 200 with the full body;
  unsatisfiable -> 416; missing file -> 404.
* Prints ``PORT <n>`` on stdout once listening.
* Appends ``<method> <path> <range-or-> <status> <bytes_sent>`` to LOGFILE per request.
  The line is written just *before* the last bytes of the response leave the server,
  so a client that has read a full response will always find its line in the log.
* Fault injection: ``ROOT_DIR/_faults.json`` (optional), read on every request::

      {"/a/B02.tif": {"status": 500, "times": 2}}     # answer 500 twice
      {"/a/B02.tif": {"truncate": 100, "times": 1}}   # full Content-Length, 100 bytes, close
      {"/a/B02.tif": {"delay": 5, "times": 1}}        # sleep 5 s, then answer normally

  ``times`` (default 1) is decremented by rewriting the file; spent entries are removed.
* Access rules: ``ROOT_DIR/_auth.json`` (optional), read on every request: path prefix ->
  what a request under it must carry, else 403 (as Azure Blob without a SAS token, a
  requester-pays S3 bucket without ``x-amz-request-payer``, or Planetary Computer's
  token endpoint without an account key)::

      {"/pc-blob/": {"query": "sig", "value": "loopback-sig"},
       "/usgs-landsat/": {"header": "x-amz-request-payer", "value": "requester"}}
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

CHUNK = 1 << 20
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path, port: int, logfile: Path) -> None:
        super().__init__(("127.0.0.1", port), RangeHandler)
        self.root = root.resolve()
        self.faults_path = self.root / "_faults.json"
        self.auth_path = self.root / "_auth.json"
        self.fault_lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.log_fh = open(logfile, "a", encoding="utf-8")  # noqa: SIM115 - lives with server

    def handle_error(self, request, client_address) -> None:
        pass  # stay quiet: stderr may be an unread pipe

    def log_line(self, method: str, path: str, rng: str, status: int, sent: int) -> None:
        rng = rng.replace(" ", "") or "-"
        with self.log_lock:
            self.log_fh.write(f"{method} {path} {rng} {status} {sent}\n")
            self.log_fh.flush()

    def allowed(self, path: str, query: dict[str, list[str]], headers) -> bool:
        """False when an access rule for ``path`` is not met."""
        try:
            rules = json.loads(self.auth_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return True
        for prefix, rule in rules.items():
            if not path.startswith(prefix):
                continue
            if "query" in rule and rule["value"] not in query.get(rule["query"], []):
                return False
            if "header" in rule and headers.get(rule["header"]) != rule["value"]:
                return False
        return True

    def take_fault(self, path: str) -> dict:
        """Return the active fault for ``path`` (or {}) and decrement its counter."""
        with self.fault_lock:
            try:
                faults = json.loads(self.faults_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
            if not isinstance(faults, dict):
                return {}
            fault = faults.get(path)
            if not isinstance(fault, dict):
                return {}
            times = int(fault.get("times", 1))
            if times <= 0:
                return {}
            if times == 1:
                del faults[path]
            else:
                faults[path] = {**fault, "times": times - 1}
            tmp = self.faults_path.with_name("_faults.json.tmp")
            tmp.write_text(json.dumps(faults), encoding="utf-8")
            os.replace(tmp, self.faults_path)
            return fault


class RangeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RangeServer

    def log_message(self, format, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    # -- helpers ---------------------------------------------------------------
    def _simple(self, status: int, rng: str, extra: dict | None = None, head: bool = False):
        body = b"" if head else f"{status}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(0 if head else len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.server.log_line(self.command, self.url_path, rng, status, len(body))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _resolve(self) -> Path | None:
        rel = self.url_path.lstrip("/")
        target = (self.server.root / rel).resolve()
        if target != self.server.root and self.server.root not in target.parents:
            return None
        return target if target.is_file() else None

    @staticmethod
    def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
        """(start, end) inclusive, None for 'serve full body', 'unsat' for 416."""
        m = RANGE_RE.match(header.strip().replace(" ", ""))
        if not m:
            return None
        a, b = m.groups()
        if a == "" and b == "":
            return None
        if a == "":  # suffix: last n bytes
            n = int(b)
            if n == 0 or size == 0:
                return "unsat"
            return max(size - n, 0), size - 1
        start = int(a)
        end = int(b) if b else size - 1
        if b and end < start:
            return None  # invalid range: ignore it
        if start >= size:
            return "unsat"
        return start, min(end, size - 1)

    def _serve(self, head: bool) -> None:
        parts = urlsplit(self.path)
        self.url_path = unquote(parts.path)
        rng = self.headers.get("Range", "") or ""
        if not self.server.allowed(self.url_path, parse_qs(parts.query), self.headers):
            self._simple(403, rng, head=head)
            return
        fault = self.server.take_fault(self.url_path)
        if fault.get("delay"):
            time.sleep(float(fault["delay"]))
        if fault.get("status"):
            self._simple(int(fault["status"]), rng, head=head)
            return
        target = self._resolve()
        if target is None:
            self._simple(404, rng, head=head)
            return
        size = target.stat().st_size
        parsed = self._parse_range(rng, size) if rng else None
        if parsed == "unsat":
            self._simple(416, rng, {"Content-Range": f"bytes */{size}"}, head=head)
            return
        if parsed is None:
            status, start, length = 200, 0, size
        else:
            start, end = parsed
            status, length = 206, end - start + 1
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{start + length - 1}/{size}")
        to_send = 0 if head else length
        if "truncate" in fault and not head:
            to_send = min(int(fault["truncate"]), length)
            self.close_connection = True
            self.send_header("Connection", "close")
        if to_send == 0:
            self.server.log_line(self.command, self.url_path, rng, status, 0)
            self.end_headers()
            return
        self.end_headers()
        sent = 0
        logged = False
        try:
            with open(target, "rb") as fh:
                fh.seek(start)
                while sent < to_send:
                    chunk = fh.read(min(CHUNK, to_send - sent))
                    if not chunk:
                        break
                    if sent + len(chunk) >= to_send:  # last piece: log first
                        logged = True
                        self.server.log_line(
                            self.command, self.url_path, rng, status, sent + len(chunk)
                        )
                    self.wfile.write(chunk)
                    sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        if not logged:  # client went away early, or the file shrank
            self.server.log_line(self.command, self.url_path, rng, status, sent)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    root, port, logfile = Path(argv[1]), int(argv[2]), Path(argv[3])
    server = RangeServer(root, port, logfile)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.log_fh.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
