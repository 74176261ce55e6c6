"""Search paging and item links, against an Earth-Search-shaped API on loopback.

Earth Search answers a search with ``limit`` items a page (10 unless asked) and
puts a ``next`` link on every page, the last one included. Its items link to the
live API (``root``, ``parent``, ``collection``, ``self``). The fake API here serves
copies of a real Earth Search item (tests/data/stac/) with only ids, times and link
hosts replaced, and records every request.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from shapely.geometry import shape

from sitewatch.aoi import AOI
from sitewatch.sources._http import NetStats
from sitewatch.sources.stac import StacSource, items_from_dicts, search_scenes

REAL_ITEM = Path(__file__).parent.parent / "data" / "stac" / "S2A_13TDE_20231008_0_L2A.trimmed.json"
LIVE = "https://earth-search.aws.element84.com"


class Recorder:
    """A loopback HTTP server that records requests; ``answer`` makes the reply."""

    def __init__(self, answer) -> None:
        self.log: list[tuple[str, str, dict]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}") if n else {}
                recorder.log.append((method, self.path, body))
                status, doc = answer(method, self.path, body)
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply("GET")

            def do_POST(self) -> None:
                self._reply("POST")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def searches(self) -> list[dict]:
        return [body for method, path, body in self.log if path.startswith("/v1/search")]


def real_items(n: int, link_host: str) -> list[dict]:
    base = json.loads(REAL_ITEM.read_text())
    t0 = dt.datetime(2023, 10, 1, 17, 55, 2, tzinfo=dt.UTC)
    out = []
    for i in range(n):
        doc = copy.deepcopy(base)
        doc["id"] = f"S2A_13TDE_202310{i:04d}_0_L2A"
        doc["properties"]["datetime"] = (t0 + dt.timedelta(days=i)).isoformat()
        doc["properties"]["s2:datatake_id"] = f"GS2A_{i}"
        for link in doc["links"]:
            link["href"] = link["href"].replace(LIVE, link_host).replace(base["id"], doc["id"])
        out.append(doc)
    return out


def earth_search_like(items: list[dict]):
    """Answers like Earth Search v1: default limit 10, a ``next`` link on every page."""

    def answer(method: str, path: str, body: dict) -> tuple[int, dict]:
        if path.rstrip("/") in ("", "/v1"):
            return 200, {
                "type": "Catalog",
                "id": "earth-search-aws",
                "stac_version": "1.0.0",
                "description": "loopback",
                "conformsTo": [
                    "https://api.stacspec.org/v1.0.0/core",
                    "https://api.stacspec.org/v1.0.0/item-search",
                ],
                "links": [
                    {"rel": "self", "href": f"{api.url}/v1", "type": "application/json"},
                    {"rel": "root", "href": f"{api.url}/v1", "type": "application/json"},
                    {
                        "rel": "search",
                        "href": f"{api.url}/v1/search",
                        "type": "application/geo+json",
                        "method": "POST",
                    },
                ],
            }
        if path.startswith("/v1/search"):
            limit = int(body.get("limit") or 10)
            start = int(body.get("next") or 0)
            page = items[start : start + limit]
            nxt = {"limit": limit, "next": str(start + limit)}
            return 200, {
                "type": "FeatureCollection",
                "features": page,
                "numberReturned": len(page),
                "links": [
                    {
                        "rel": "next",
                        "href": f"{api.url}/v1/search",
                        "method": "POST",
                        "merge": True,
                        "body": nxt,
                    }
                ],
            }
        return 404, {"code": "NotFound"}

    api = Recorder(answer)
    return api


@pytest.fixture
def trap() -> Iterator[Recorder]:
    """Where the items' links point: any request to it is a link being resolved."""
    rec = Recorder(lambda *a: (200, {}))
    rec.thread.start()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def serve(items: list[dict]) -> Recorder:
    api = earth_search_like(items)
    api.thread.start()
    return api


def aoi_of(doc: dict) -> AOI:
    return AOI(id="t", name="t", geometry=shape(doc["geometry"]).centroid.buffer(0.01))


@pytest.mark.parametrize(
    ("n_items", "limit", "pages", "page_limit", "found"),
    [
        (25, 200, 1, 100, 25),  # a short page is the last: Earth Search's next is not followed
        (150, 200, 2, 100, 150),
        (150, 30, 1, 30, 30),  # max_items reached on the first page
        (0, 200, 1, 100, 0),
    ],
)
def test_search_asks_for_big_pages_and_stops_on_a_short_one(
    trap, n_items, limit, pages, page_limit, found
):
    items = real_items(max(n_items, 1), trap.url)[:n_items]
    api = serve(items)
    try:
        aoi = aoi_of(real_items(1, trap.url)[0])
        stats = NetStats()
        got = search_scenes(
            aoi,
            "2023-01-01",
            "2024-12-31",
            url=f"{api.url}/v1",
            limit=limit,
            local_clear=False,
            stats=stats,
        )
    finally:
        api.server.shutdown()
        api.server.server_close()
    searches = api.searches()
    # An empty C1 window is searched again in legacy sentinel-2-l2a (collection-1 gaps).
    c1 = [b for b in searches if b.get("collections") == ["sentinel-2-c1-l2a"]]
    assert len(c1) == pages
    assert len(searches) == pages + (found == 0)
    assert all(body.get("limit") == page_limit for body in searches)
    assert sum(len(getattr(c, "item_ids", ()) or (c.item_id,)) for c in got) == found
    assert trap.log == []


def test_item_links_to_the_live_api_are_never_resolved(trap):
    docs = real_items(2, trap.url)
    api = serve(docs)
    try:
        found = search_scenes(
            aoi_of(docs[0]), "2023-01-01", "2024-12-31", url=f"{api.url}/v1", local_clear=False
        )
    finally:
        api.server.shutdown()
        api.server.server_close()
    item = found[0].item
    source = StacSource(item, mask_key="scl")
    json.dumps(source.describe())
    d = item.to_dict()  # pystac resolves the root link here unless it is gone
    assert item.get_root() is None and item.get_collection() is None
    assert d["collection"] == "sentinel-2-l2a"
    assert source.path == f"{trap.url}/v1/collections/sentinel-2-l2a/items/{item.id}"
    assert {link["rel"] for link in d["links"]} >= {"self", "license", "derived_from"}
    assert trap.log == []


def test_items_from_dicts_leaves_the_documents_alone(trap):
    docs = real_items(1, trap.url)
    before = copy.deepcopy(docs)
    items_from_dicts(docs)[0].to_dict()
    assert docs == before and trap.log == []
