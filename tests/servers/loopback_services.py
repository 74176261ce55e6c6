"""Stand up the loopback services of the tests, for trying commands by hand.

Usage: ``python tests/servers/loopback_services.py WORKDIR`` (Ctrl-C to stop).

Builds the synthetic scenes near the February 11 Plant as real-shaped STAC items (only
ids, times, footprints and hrefs differ from the real documents in ``tests/data/stac``)
and serves them on 127.0.0.1:

* an Earth-Search-shaped STAC API (rustac): ``sentinel-2-c1-l2a`` (2020-06-10, 2020-06-20,
  2024-10-05) and a legacy ``sentinel-2-l2a`` item on 2019-06-15, where collection 1 has
  a gap;
* a Planetary-Computer-shaped STAC API with ``landsat-c2-l2`` (2020-06-15, 2024-10-10)
  and ``sentinel-1-rtc`` (ascending 127: 12 scenes 2020-07 → 2024-12 with a +6 dB hall
  from 2023-04-29; descending 32: 4 scenes) whose COGs answer 403 without a SAS token,
  and its token endpoint ``/api/sas/v1/token/{collection}`` (``sentinel-1-rtc``: 403
  without the header ``Ocp-Apim-Subscription-Key: loopback-account-key``);
* a range-capable file server for all the COGs, logging every request
  (``WORKDIR/requests.log``: method, path, range, status, bytes).

It prints the environment to export and the URL of the Earth-Search-shaped API.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from conftest import serve_range, serve_stac, stac_files  # noqa: E402
from s1_fixtures import BLOB, build_s1_fixture  # noqa: E402
from stac_fixtures import build_landsat_fixture, build_s2_fixture, real_shaped  # noqa: E402

DATA = HERE.parent / "data" / "stac"
LEGACY = DATA / "S2A_13TDE_20231008_0_L2A.trimmed.json"
PC_LANDSAT = DATA / "LC09_L2SR_089113_20231008_02_T2.pc.trimmed.json"
SIG = "loopback-signature"
KEY = "loopback-account-key"


def main(workdir: str) -> None:
    """Build the fixtures under ``workdir`` and serve them until interrupted."""
    work = Path(workdir).resolve()
    root = work / "www"
    root.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        files = stack.enter_context(serve_range(root, work / "requests.log"))
        base = files.url
        s2 = build_s2_fixture(root, base)
        landsat = build_landsat_fixture(root, base)
        s1 = build_s1_fixture(root, base)
        c1 = json.loads(Path(s2["items"]).read_text(encoding="utf-8"))["features"]

        # A legacy item in 2019 (collection 1 lacks Nov 2016 - Nov 2019).
        src = next(f for f in c1 if f["id"].startswith("S2B_T52SCK_20200620"))
        synthetic = json.loads(json.dumps(src))
        synthetic.update(id="S2B_52SCK_20190615_0_L2A", collection="sentinel-2-l2a")
        synthetic["properties"] = {
            k: src["properties"][k]
            for k in ("platform", "proj:epsg", "mgrs:utm_zone", "mgrs:latitude_band")
        } | {
            "datetime": "2019-06-15T02:26:11.000000Z",
            "mgrs:grid_square": "CK",
            "grid:code": "MGRS-52SCK",
            "eo:cloud_cover": 1.0,
            "s2:processing_baseline": "05.10",
            # The COGs keep the +1000 DN offset, as some legacy items' do with this flag
            # false (earth-search #66, #71); the DN check decides.
            "earthsearch:boa_offset_applied": False,
        }
        legacy = real_shaped(LEGACY, synthetic)
        legacy_collection = work / "legacy-collection.json"
        doc = json.loads(Path(s2["collection"]).read_text(encoding="utf-8"))
        doc.update(id="sentinel-2-l2a", title="Sentinel-2 L2A (legacy; synthetic)")
        legacy_collection.write_text(json.dumps(doc), encoding="utf-8")
        legacy_items = work / "legacy-items.json"
        legacy_items.write_text(
            json.dumps({"type": "FeatureCollection", "features": [legacy]}), encoding="utf-8"
        )

        # Planetary Computer: COGs behind a SAS rule, and the token endpoint.
        for item_id in landsat["item_ids"]:
            shutil.copytree(root / item_id, root / "pc-blob" / item_id, dirs_exist_ok=True)
        pc_items = []
        for f in json.loads(Path(landsat["items"]).read_text(encoding="utf-8"))["features"]:
            moved = json.loads(json.dumps(f).replace(f"{base}/", f"{base}/pc-blob/"))
            pc_items.append(real_shaped(PC_LANDSAT, moved))
        token = {"msft:expiry": "2099-01-01T00:00:00Z", "token": f"se=2099-01-01&sig={SIG}"}
        token_dir = root / "api" / "sas" / "v1" / "token"
        token_dir.mkdir(parents=True, exist_ok=True)
        (token_dir / "landsat-c2-l2").write_text(json.dumps(token), encoding="utf-8")
        (token_dir / "sentinel-1-rtc").write_text(json.dumps(token), encoding="utf-8")
        (root / "_auth.json").write_text(
            json.dumps(
                {
                    "/pc-blob/": {"query": "sig", "value": SIG},
                    f"/{BLOB}/": {"query": "sig", "value": SIG},
                    "/api/sas/v1/token/sentinel-1-rtc": {
                        "header": "Ocp-Apim-Subscription-Key",
                        "value": KEY,
                    },
                }
            ),
            encoding="utf-8",
        )
        pc_collection = work / "pc-collection.json"
        doc = json.loads(PC_LANDSAT.read_text(encoding="utf-8"))
        doc["id"] = "landsat-c2-l2"
        pc_collection.write_text(json.dumps(doc), encoding="utf-8")
        pc_items_path = work / "pc-items.json"
        pc_items_path.write_text(
            json.dumps({"type": "FeatureCollection", "features": pc_items}), encoding="utf-8"
        )

        es_url = stack.enter_context(
            serve_stac([*stac_files(s2), legacy_collection, legacy_items], work)
        )
        pc_url = stack.enter_context(
            serve_stac([pc_collection, pc_items_path, *stac_files(s1)], work)
        )
        print(f"export SITEWATCH_PC_STAC_URL={pc_url}")
        print(f"export SITEWATCH_PC_TOKEN_URL={base}/api/sas/v1/token")
        print(f"export ES={es_url}")
        print(f"# Sentinel-1 RTC needs: export PC_SDK_SUBSCRIPTION_KEY={KEY}")
        print(f"# request log: {work / 'requests.log'}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
