"""Write the example notebooks (01_quickstart, 02_feb11_plant, 03_methods) without outputs.

The notebooks are generated so their code stays reviewable as plain Python here and
they are committed clean (no outputs, no execution counts, stable cell ids). Run::

    python notebooks/make_notebooks.py

and then ``ruff format notebooks`` if a cell was edited. ``tests/test_notebooks.py``
executes every notebook.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------
# 01_quickstart
# ---------------------------------------------------------------------------

QUICKSTART = [
    (
        "md",
        """# sitewatch quickstart: the bundled sample, end to end

**sitewatch** watches named facilities in public satellite imagery (Sentinel-2,
Landsat) and flags new construction with evidence you can re-run: for an area of
interest (AOI) and two images it scores change per pixel, picks a threshold it can
explain, turns the changed pixels into polygons with attributes, and writes a run
folder (GeoPackage, GeoJSON, COGs, quicklooks, chips, `report.html`, `manifest.json`
with hashes of every input and output).

This notebook runs the whole chain offline on the sample that ships with the
package: a 2.5 km crop of the OSCD *mumbai* city (Sentinel-2 L1C, 2015-11-30 →
2018-03-19). It uses only the public API, `import sitewatch as sw`; the command
line equivalent is `sitewatch demo`.""",
    ),
    (
        "code",
        """import tempfile
from pathlib import Path

from IPython.display import Image, display

import sitewatch as sw

print("sitewatch", sw.__version__)""",
    ),
    ("md", "## The bundled sample\n\nBand folders for both dates, an AOI and a provenance note."),
    (
        "code",
        """paths = sw.demo_paths()
for key, value in paths.items():
    print(f"{key:7s} {value}")
print()
print("\\n".join(paths["source"].read_text(encoding="utf-8").splitlines()[:12]))""",
    ),
    (
        "code",
        """aoi = sw.load_aoi_file(paths["aoi"])
print(aoi.id, "-", aoi.name)
print("geometry:", aoi.geometry_kind, f"({aoi.area_m2 / 1e6:.2f} km²)")
print(aoi.properties["geometry_note"])""",
    ),
    (
        "md",
        """## Detect change

`detect_change` resamples both dates onto the AOI's UTM grid, co-registers them,
scores change (default method `auto`: the `construction` score for Sentinel-2 with
its SWIR bands, IR-MAD for other images), thresholds, cleans up below the
minimum mapping unit and vectorises.""",
    ),
    (
        "code",
        """result = sw.detect_change(paths["before"], paths["after"], aoi=aoi)

diag = result.diagnostics
print(f"grid            {result.grid.width} x {result.grid.height} px, {result.grid.crs}")
print(f"valid pixels    {diag['valid_pixels']} ({diag['valid_fraction']:.1%} of the AOI)")
print(f"method          {result.provenance['parameters']['method']}")
print(f"threshold       {result.threshold.value:.3f} ({result.threshold.rule})")
print(f"                {result.threshold.why}")
print(f"polygons        {len(result.features)}")
print(f"changed area    {result.total_area_m2 / 1e4:.2f} ha")
print(f"time            {result.timings['total']:.2f} s")""",
    ),
    (
        "md",
        "## The change polygons\n\nLargest first; every polygon carries its evidence.",
    ),
    (
        "code",
        """columns = ("id", "area m²", "score", "P(no ch.)", "lon", "lat")
header = "{:5s} {:>9s} {:>6s} {:>9s} {:>10s} {:>9s}".format(*columns)
print(header)
print("-" * len(header))
largest = sorted(result.features, key=lambda f: -f["properties"]["area_m2"])
for feature in largest[:10]:
    p = feature["properties"]
    lon, lat = p["centroid"]
    print(
        f"{p['id']:5s} {p['area_m2']:9.0f} {p['score_mean']:6.2f} "
        f"{p['p_no_change']:9.3f} {lon:10.5f} {lat:9.5f}"
    )
print(f"... {len(result.features)} polygons in all")
print()
print("attributes:", ", ".join(largest[0]["properties"]))""",
    ),
    (
        "md",
        """## Write the run folder

Outputs go to a temporary directory (never into the repository).""",
    ),
    (
        "code",
        """out = Path(tempfile.mkdtemp(prefix="sitewatch-quickstart-"))
run_dir = sw.write_result(result, out / "mumbai-demo")
files = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*") if p.is_file())
for name in files:
    if name.parts[0] != "chips":
        print(name)
print(f"chips/  {sum(1 for n in files if n.parts[0] == 'chips')} before/after PNGs")""",
    ),
    (
        "code",
        """display(Image(filename=str(run_dir / "quicklooks" / "overlay.png")))""",
    ),
    (
        "md",
        """Open `report.html` in the run folder in a browser: it is self-contained (images
inlined) and shows the inputs, the method and threshold, every polygon with its
before/after chips, and the provenance. A run folder can be read back and its report
rebuilt without re-running the detection:""",
    ),
    (
        "code",
        """run = sw.load_run(run_dir)
print("reloaded", len(run.features), "polygons; grid", run.score.shape, run.crs)
print("report:", sw.build_report(run_dir))""",
    ),
]

# ---------------------------------------------------------------------------
# 02_feb11_plant
# ---------------------------------------------------------------------------

FEB11 = [
    (
        "md",
        """# The February 11 Plant: AOI, provenance, and an offline timeline

The February 11 Plant (near Hamhung, North Korea) was reported in late 2024 to be
expanding: a new final-assembly building and worker housing seen in October 2024
imagery. This notebook shows what sitewatch knows about the site and where each fact
comes from, the commands that fetch and analyse the real Sentinel-2 imagery (they
need internet, so they are **not** run here), and then the same analysis run offline.""",
    ),
    (
        "code",
        """import tempfile
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import rasterio.warp
from IPython.display import Image, display

import sitewatch as sw

aoi = sw.load_aoi("feb11-plant")
props = aoi.properties
print(aoi.id, "-", aoi.name, f"({aoi.kind})")
print("region:", props["region"], "| parent:", props["parent"])
names = [f"{alias} ({lang}{', weak' if weak else ''})" for lang, alias, weak in aoi.all_aliases()]
print(textwrap.fill("names: " + "; ".join(dict.fromkeys(names)), 100))""",
    ),
    (
        "md",
        """## The AOI is a working box, not a footprint

No source gives the plant's outline; the polygon is a box chosen to cover the
sourced building points. Read the note before trusting the box.""",
    ),
    (
        "code",
        """west, south, east, north = aoi.geometry.bounds
print(f"geometry: {aoi.geometry_kind}, lon {west}..{east}, lat {south}..{north}")
print(f"area: {aoi.area_m2 / 1e6:.1f} km², confidence: {aoi.confidence}")
print()
print(textwrap.fill(props["geometry_note"], 100))
print()
print("Sourced points:")
for point in props["points"]:
    print(f"  {point['name']}: {point['lat']:.6f} N, {point['lon']:.6f} E ({point['confidence']})")
    print(f"    source: {point['source']}")""",
    ),
    (
        "code",
        """fig, ax = plt.subplots(figsize=(5, 5))
ax.plot(*aoi.geometry.exterior.xy, color="tab:red", label="working box (not a footprint)")
for point in props["points"]:
    ax.plot(point["lon"], point["lat"], "o", label=point["name"])
ax.set_xlabel("longitude")
ax.set_ylabel("latitude")
ax.set_aspect(1 / np.cos(np.radians(aoi.geometry.centroid.y)))
ax.legend(fontsize=8, loc="lower left")
ax.set_title(aoi.name)
plt.show()""",
    ),
    ("md", "## Sources, events and conflicts\n\nEvery claim in the catalog names its source."),
    (
        "code",
        """print(f"{len(props['sources'])} sources:")
for src in props["sources"]:
    print(f"- {src['outlet']} ({src['date'] or 'n.d.'}): {src['title']}")
    if src.get("url"):
        print(f"    {src['url']}")
print()
print("Events (observable = should show in imagery):")
for event in props["events"]:
    flag = "observable" if event["observable"] else "          "
    print(f"  {event['date']:9s} {flag}  {event['event']}")""",
    ),
    (
        "code",
        """print(f"{len(props['conflicts'])} unresolved conflicts between sources:")
for conflict in props["conflicts"]:
    print(textwrap.fill(conflict, 100, initial_indent="- ", subsequent_indent="  "))""",
    ),
    (
        "md",
        """## Fetching the real imagery (needs internet; not run here)

With network access, these commands search the Sentinel-2 archive over the AOI,
compare autumn 2023 with autumn 2024 (median composites of the clearest scenes),
follow the site quarter by quarter through 2023–2024, and list the very-high-resolution
Esri Wayback vintages to check the flagged polygons against:

```bash
sitewatch search feb11-plant --from 2024-09-01 --to 2024-11-15
sitewatch detect feb11-plant --before 2023-09-01/2023-11-15 --after 2024-09-01/2024-11-15 \\
    --composite --out feb11-2023-2024
sitewatch timeline feb11-plant --from 2023-01 --to 2024-12 --every 3M --out feb11-timeline
sitewatch wayback feb11-plant
```

Each run folder holds `report.html`, `changes.gpkg` and a `manifest.json` with the
exact scenes used. The timeline takes the clearest scene in each of these steps:""",
    ),
    (
        "code",
        """for start, end in sw.time_steps("2023-01-01", "2024-12-31", "3M"):
    print(start, "→", end)""",
    ),
    (
        "md",
        """## Offline analysis on SYNTHETIC data

> ⚠️ **Everything below runs on SYNTHETIC imagery, not on real Sentinel-2 data.**
> `sw.synthetic_series` writes a Sentinel-2-like dated series on the AOI's 10 m grid
> (band files named like L2A tiles, every file tagged as synthetic) so the analysis
> can run without network. It plants a **new building** (12 × 8 px) at the first
> sourced point from a known date on, a **transient** bright patch on one date only
> (the kind of thing a missed cloud or a harvested field produces), and a cloud the
> scene classification does mask. The dates (2021) and the building are invented;
> nothing here is evidence about the real plant.""",
    ),
    (
        "code",
        """work = Path(tempfile.mkdtemp(prefix="sitewatch-feb11-"))
series = sw.synthetic_series(work / "series", aoi=aoi)
print("SYNTHETIC series:", ", ".join(series.dates))
print(f"building planted from {series.building_from} at {series.building_lonlat}")
print(f"transient on {series.transient_on} only, at {series.transient_lonlat}")
print(f"masked cloud on {series.cloud_on}")
first_files = sorted(p.name for p in series.folders[0].iterdir())
print("files of the first date:", ", ".join(first_files))""",
    ),
    (
        "md",
        """`detect_series` compares every date with the first, unites the flagged pixels
into regions and follows each region through the series: when it was first seen,
the last clear date before that, and whether it persisted. Regions that do not
persist are dropped as transient.""",
    ),
    (
        "code",
        """result, timeline = sw.detect_series(series.folders, aoi=aoi)

print(f"{len(timeline.regions)} regions, {timeline.n_transient} dropped as transient")
print(
    f"{'region':>6s} {'status':11s} {'first seen':10s} {'clear before':12s} "
    f"{'persist.':>8s} {'growth m²':>9s}"
)
for region in timeline.regions:
    persistence = "-" if region.persistence is None else f"{region.persistence:.2f}"
    print(
        f"{region.label:6d} {region.status:11s} {region.first_seen or '-':10s} "
        f"{region.last_clear_before or '-':12s} {persistence:>8s} {region.growth_m2:9.0f}"
    )""",
    ),
    (
        "code",
        """def region_at(lonlat):
    \"\"\"The timeline region under a lon/lat point (None if no region is there).\"\"\"
    grid = series.grid
    (x,), (y,) = rasterio.warp.transform("EPSG:4326", grid.crs, [lonlat[0]], [lonlat[1]])
    col, row = ~grid.transform @ (x, y)
    label = int(timeline.labels[int(row), int(col)])
    return next((r for r in timeline.regions if r.label == label), None)


building = region_at(series.building_lonlat)
transient = region_at(series.transient_lonlat)
print(
    f"building: first seen {building.first_seen}, planted {series.building_from}, "
    f"last clear before {building.last_clear_before}, status {building.status}"
)
print(
    f"transient: first seen {transient.first_seen}, planted {series.transient_on}, "
    f"status {transient.status}"
)
assert building.first_seen == series.building_from
assert building.status == "persistent"
assert transient.status == "transient"
kept = [f["properties"]["first_seen"] for f in result.features]
print(f"polygons kept in the result: {len(result.features)} (first seen: {kept})")""",
    ),
    (
        "md",
        "### Each region through the series\n\nMean change score of the region's "
        "pixels on each date (every date against the first).",
    ),
    (
        "code",
        """fig, ax = plt.subplots(figsize=(8, 4))
for region in timeline.regions:
    what = "building" if region is building else "transient" if region is transient else "other"
    scores = [d["score_mean"] for d in region.per_date]
    ax.plot(timeline.dates, scores, "o-", label=f"region {region.label}: {what}, {region.status}")
ax.axvline(timeline.dates.index(series.building_from), color="tab:blue", ls=":", lw=1)
ax.axvline(timeline.dates.index(series.transient_on), color="tab:orange", ls=":", lw=1)
ax.axhline(result.threshold.value, color="grey", ls="--", lw=1, label="threshold (last date)")
ax.set_yscale("symlog")
ax.set_ylim(bottom=0)
ax.set_ylabel("mean score vs first date")
ax.set_title("SYNTHETIC series: per-date score of each region")
ax.legend(fontsize=8)
plt.show()""",
    ),
    (
        "code",
        """fig, axes = plt.subplots(1, len(timeline.dates) - 1, figsize=(15, 3.2))
vmax = float(np.nanpercentile(timeline.scores[1:], 99.9))
for ax, date, score in zip(axes, timeline.dates[1:], timeline.scores[1:], strict=True):
    ax.imshow(score, cmap="magma", vmin=0, vmax=vmax)
    ax.set_title(f"{date} vs {timeline.dates[0]}", fontsize=9)
    ax.set_axis_off()
fig.suptitle("SYNTHETIC series: change score of each date against the first")
plt.show()""",
    ),
    (
        "md",
        """## The run folder

The series result is an ordinary `ChangeResult` (the kept regions, with their
timeline attributes), so it writes the same run folder as `detect`.""",
    ),
    (
        "code",
        """run_dir = sw.write_result(result, work / "feb11-synthetic-run")
print(run_dir)
print(", ".join(sorted(p.name for p in run_dir.iterdir())))
display(Image(filename=str(run_dir / "quicklooks" / "overlay.png")))""",
    ),
    (
        "md",
        """## The polygons as a table and on a map

`result.to_geodataframe()` (or `sw.load_run(run_dir).to_geodataframe()` for a run
folder) gives one row per polygon, its attributes as columns, in EPSG:4326. It needs
the optional `geo` extra (`pip install --only-binary=:all: "sitewatch[geo]"`); without
it the cell says so and the map below is drawn from the GeoJSON features instead.
`changes.csv` (a spreadsheet) and `changes.kml` (Google Earth) in the run folder hold
the same rows.""",
    ),
    (
        "code",
        """from shapely.geometry import shape

try:
    changes = result.to_geodataframe()
except sw.InputError as err:  # geopandas is the optional "geo" extra
    print(err)
    changes = None
if changes is not None:
    shown = ["area_m2", "first_seen", "last_clear_before", "status", "score_mean", "geometry"]
    display(changes[[c for c in shown if c in changes.columns]])""",
    ),
    (
        "code",
        """with rasterio.open(run_dir / "after.tif") as src:
    rgb, crs, bounds = src.read([1, 2, 3]), src.crs, src.bounds
lo, hi = np.nanpercentile(rgb, [2, 98])
picture = np.nan_to_num(np.clip((rgb - lo) / (hi - lo), 0, 1), nan=0.85).transpose(1, 2, 0)

fig, ax = plt.subplots(figsize=(7, 7))
ax.imshow(picture, extent=(bounds.left, bounds.right, bounds.bottom, bounds.top))
if changes is not None:
    outlines = changes.to_crs(crs)
    outlines.boundary.plot(ax=ax, color="cyan", linewidth=1.5)
    where = zip(outlines.index, outlines.geometry, strict=True)
else:
    where = [
        (f["id"], shape(rasterio.warp.transform_geom("EPSG:4326", crs, f["geometry"])))
        for f in result.features
    ]
for fid, geom in where:
    if changes is None:
        ax.plot(*geom.exterior.xy, color="cyan", linewidth=1.5)
    x, y = geom.bounds[2], geom.bounds[3]
    ax.annotate(fid, (x, y), color="cyan", fontsize=9, fontweight="bold")
ax.set_xlabel(f"easting (m, {crs})")
ax.set_ylabel("northing (m)")
n = len(result.features)
ax.set_title(f"SYNTHETIC: {n} change polygon{'s' if n != 1 else ''} on the after image")
plt.show()""",
    ),
]

# ---------------------------------------------------------------------------
# 03_methods
# ---------------------------------------------------------------------------

METHODS_NB = [
    (
        "md",
        """# Change-detection methods compared

sitewatch has nine unsupervised change scores (`method=`); each gets its own
data-driven threshold. This notebook compares them

1. on the bundled Mumbai sample (no labels: score distributions, thresholds, area
   flagged, agreement between methods),
2. on a SYNTHETIC pair with one planted building (a tiny ground truth),
3. on real labelled data, the OSCD train cities in `../shared/data/oscd`, **when that
   folder is present** (precision–recall curves, chosen vs best-F1 thresholds).

| method | score |
|---|---|
| `construction` (Sentinel-2 default) | structural change the whole spectrum (MAD) confirms |
| `structural` | change vector over the 10 m bands, water on both dates suppressed |
| `cva` | change-vector magnitude of the standardised bands |
| `diff` | mean absolute difference of the standardised bands |
| `ratio` | per-band log-ratio, robust-standardised, RMS over bands |
| `index` | change of NDVI, NDBI, NDWI, built-up index, brightness |
| `irmad` (default for other images) | IR-MAD χ² statistic (iteratively reweighted MAD) |
| `mad` | χ² of the plain MAD transformation (one step) |
| `edges` | IR-MAD χ² plus edges that appeared (for very-high-resolution photos) |

A tenth, `learned`, is a small logistic model over the engine's views trained on
`../shared/data`; it is not compared here, because its figures mean something only
leave-one-dataset-out: `sitewatch bench suite ../shared/data --method learned` (README,
*Benchmarks*).""",
    ),
    (
        "code",
        """import os
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import rasterio
import rasterio.warp
from rasterio.errors import NotGeoreferencedWarning

import sitewatch as sw

METHODS = [
    "construction",
    "structural",
    "cva",
    "diff",
    "ratio",
    "index",
    "irmad",
    "mad",
    "edges",
]


def pr_curve(score, truth, valid):
    \"\"\"Precision, recall and threshold at every distinct score, and average precision.

    Unobserved pixels count as predicted no-change (they rank last).
    \"\"\"
    s = np.where(valid, score, -np.inf).ravel()
    order = np.argsort(-s, kind="stable")
    s, y = s[order], truth.ravel()[order]
    tp, fp = np.cumsum(y), np.cumsum(~y)
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    tp, fp, thresholds = tp[last], fp[last], s[last]
    precision = tp / (tp + fp)
    recall = tp / max(int(truth.sum()), 1)
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return precision, recall, thresholds, ap


def prf(pred, truth):
    \"\"\"Precision, recall and F1 of a boolean prediction.\"\"\"
    tp = int((pred & truth).sum())
    p = tp / max(int(pred.sum()), 1)
    r = tp / max(int(truth.sum()), 1)
    return p, r, 2 * p * r / max(p + r, 1e-12)


def run_methods(before, after, methods=METHODS, **kwargs):
    \"\"\"detect_change with each method; returns {method: ChangeResult}.\"\"\"
    return {m: sw.detect_change(before, after, method=m, **kwargs) for m in methods}""",
    ),
    (
        "md",
        """## 1. The bundled sample (no labels)

Without labels we can still compare what each method flags: how its threshold was
chosen, how much of the AOI it marks, and how much its mask overlaps the default
method's (Jaccard index).""",
    ),
    (
        "code",
        """paths = sw.demo_paths()
demo_aoi = sw.load_aoi_file(paths["aoi"])
t0 = time.perf_counter()
demo = run_methods(paths["before"], paths["after"], aoi=demo_aoi)
print(f"8 methods on the demo pair in {time.perf_counter() - t0:.1f} s")
print()
ref = demo["construction"].mask
print(
    f"{'method':12s} {'rule':9s} {'threshold':>9s} {'% above':>7s} {'polygons':>8s} "
    f"{'area ha':>7s} {'Jaccard':>7s}"
)
for method, res in demo.items():
    above = (res.score > res.threshold.value) & res.valid
    jaccard = (res.mask & ref).sum() / max((res.mask | ref).sum(), 1)
    print(
        f"{method:12s} {res.threshold.rule:9s} {res.threshold.value:9.3f} "
        f"{above.sum() / res.valid.sum():7.2%} {len(res.features):8d} "
        f"{res.total_area_m2 / 1e4:7.2f} {jaccard:7.2f}"
    )
print()
print("construction threshold:", demo["construction"].threshold.why)""",
    ),
    (
        "code",
        """fig, axes = plt.subplots(3, 3, figsize=(12, 8))
for ax, (method, res) in zip(axes.ravel(), demo.items(), strict=True):
    values = res.score[res.valid]
    ax.hist(values, bins=80, color="tab:grey", log=True)
    ax.axvline(res.threshold.value, color="tab:red", lw=1.5)
    ax.set_title(f"{method} ({res.threshold.rule})", fontsize=10)
fig.suptitle("Demo pair: score distribution per method (red: chosen threshold)")
fig.tight_layout()
plt.show()

fig, axes = plt.subplots(3, 3, figsize=(12, 11))
for ax, (method, res) in zip(axes.ravel(), demo.items(), strict=True):
    ax.imshow(np.where(res.valid, res.mask, np.nan), cmap="Reds", vmin=0, vmax=1)
    ax.set_title(f"{method}: {len(res.features)} polygons", fontsize=10)
    ax.set_axis_off()
fig.suptitle("Demo pair: change mask per method")
fig.tight_layout()
plt.show()""",
    ),
    (
        "md",
        """## 2. A SYNTHETIC pair with one planted building

The first and last dates of `sw.synthetic_series` (SYNTHETIC data, see notebook 02):
between them the only real change is a new 12 × 8 px roof; the fields drift a little
with the season. The truth mask is rebuilt from the building's centre on the
series grid. A good method puts one polygon on the building and none elsewhere.""",
    ),
    (
        "code",
        """feb11 = sw.load_aoi("feb11-plant")
series = sw.synthetic_series(Path(tempfile.mkdtemp(prefix="sitewatch-methods-")), aoi=feb11)
grid = series.grid
lon, lat = series.building_lonlat
(x,), (y,) = rasterio.warp.transform("EPSG:4326", grid.crs, [lon], [lat])
col, row = ~grid.transform @ (x, y)
truth = np.zeros(grid.shape, dtype=bool)
truth[int(row) - 4 : int(row) + 4, int(col) - 6 : int(col) + 6] = True  # 8 rows x 12 cols

synthetic = run_methods(series.folders[0], series.folders[-1], aoi=feb11)
print(f"SYNTHETIC pair {series.dates[0]} → {series.dates[-1]}, building: {truth.sum()} px")
print(f"{'method':12s} {'on bldg':>7s} {'false':>5s} {'precision':>9s} {'recall':>6s} {'AP':>5s}")
synthetic_ap = {}
for method, res in synthetic.items():
    assert res.grid.shape == grid.shape
    hits = [
        f
        for f in res.features
        if f["properties"]["bbox"][0] <= lon <= f["properties"]["bbox"][2]
        and f["properties"]["bbox"][1] <= lat <= f["properties"]["bbox"][3]
    ]
    p, r, _ = prf(res.mask, truth)
    *_, ap = pr_curve(res.score, truth, res.valid)
    synthetic_ap[method] = ap
    print(
        f"{method:12s} {len(hits):7d} {len(res.features) - len(hits):5d} {p:9.2f} {r:6.2f} "
        f"{ap:5.2f}"
    )""",
    ),
    (
        "md",
        """## 3. OSCD: precision–recall on labelled cities

OSCD (Onera Satellite Change Detection; Caye Daudt et al., IGARSS 2018) gives
pixel labels of urban change for Sentinel-2 pairs. It is not shipped with sitewatch;
this section looks for it in `$SITEWATCH_SHARED/data/oscd`, else in a `shared/` folder
next to (or above) the working directory, and is skipped when it is absent. To keep
the notebook fast it uses the two smallest train cities, whole, on their own 10 m
grid (no AOI), and three of the methods at their default settings: the default
`construction`, its `structural` ingredient and the classic `cva`. Set
`OSCD_METHODS = METHODS` to compare all nine (about 1.5 s per city and method).""",
    ),
    (
        "code",
        """def find_shared():
    \"\"\"The shared data folder: $SITEWATCH_SHARED, else a shared/ above the cwd.\"\"\"
    if os.environ.get("SITEWATCH_SHARED"):
        return Path(os.environ["SITEWATCH_SHARED"])
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "shared" / "data" / "oscd").is_dir():
            return folder / "shared"
    return None


shared = find_shared()
oscd = shared / "data" / "oscd" if shared else None
images = oscd / "Onera Satellite Change Detection dataset - Images" if oscd else None
labels = oscd / "Onera Satellite Change Detection dataset - Train Labels" if oscd else None
HAVE_OSCD = bool(images and labels and images.is_dir() and labels.is_dir())
OSCD_METHODS = ["construction", "structural", "cva"]
if not HAVE_OSCD:
    print("shared data not found: skipping OSCD PR curves")
else:
    names = (images / "train.txt").read_text(encoding="utf-8").replace("\\n", ",").split(",")
    sizes = {}
    for name in filter(None, (n.strip() for n in names)):
        b02 = next((images / name / "imgs_1").glob("*_B02.tif"), None)
        if b02 is not None and (labels / name / "cm" / f"{name}-cm.tif").is_file():
            with rasterio.open(b02) as ds:
                sizes[name] = ds.width * ds.height
    cities = sorted(sizes, key=sizes.get)[:2]
    print("OSCD found at", oscd)
    print("cities used (smallest first):", ", ".join(f"{c} ({sizes[c]} px)" for c in cities))""",
    ),
    (
        "code",
        """def read_label(city):
    \"\"\"OSCD change label of a city (1 = no change, 2 = change) as a bool mask.\"\"\"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(labels / city / "cm" / f"{city}-cm.tif") as ds:
            return ds.read(1) == 2


oscd_rows = []
if HAVE_OSCD:
    fig, axes = plt.subplots(1, len(cities), figsize=(6 * len(cities), 5), squeeze=False)
    for ax, city in zip(axes[0], cities, strict=True):
        truth_city = read_label(city)
        t0 = time.perf_counter()
        results = run_methods(images / city / "imgs_1", images / city / "imgs_2", OSCD_METHODS)
        seconds = time.perf_counter() - t0
        for method, res in results.items():
            assert res.score.shape == truth_city.shape
            precision, recall, thresholds, ap = pr_curve(res.score, truth_city, res.valid)
            f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
            best = int(np.argmax(f1))
            above = (res.score > res.threshold.value) & res.valid
            p_thr, r_thr, f1_thr = prf(above, truth_city)
            p_mask, r_mask, f1_mask = prf(res.mask, truth_city)
            line = ax.plot(recall, precision, lw=1.2, label=f"{method} (AP {ap:.2f})")[0]
            ax.plot(r_thr, p_thr, "o", color=line.get_color(), ms=5)
            oscd_rows.append(
                {
                    "city": city,
                    "method": method,
                    "ap": ap,
                    "best_f1": f1[best],
                    "best_threshold": thresholds[best],
                    "threshold": res.threshold.value,
                    "f1_at_threshold": f1_thr,
                    "mask": (p_mask, r_mask, f1_mask),
                }
            )
        ax.set_title(f"OSCD {city}: {truth_city.mean():.2%} changed ({seconds:.0f} s)")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
    fig.suptitle("Pixel precision–recall per method (dots: the method's own threshold)")
    fig.tight_layout()
    plt.show()""",
    ),
    (
        "md",
        """### Thresholds: chosen vs best possible

For each city and method: average precision (AP), the best F1 any threshold reaches
on the curve and that threshold, the threshold the method chose without labels and
its F1, and precision/recall/F1 of the final mask (after removing regions below the
minimum mapping unit).""",
    ),
    (
        "code",
        """if HAVE_OSCD:
    print(
        f"{'city':8s} {'method':12s} {'AP':>5s} {'bestF1':>6s} {'at thr':>8s} "
        f"{'chosen':>8s} {'F1':>5s} | {'mask P':>6s} {'R':>5s} {'F1':>5s}"
    )
    for row in oscd_rows:
        pm, rm, f1m = row["mask"]
        print(
            f"{row['city']:8s} {row['method']:12s} {row['ap']:5.2f} {row['best_f1']:6.2f} "
            f"{row['best_threshold']:8.3f} {row['threshold']:8.3f} {row['f1_at_threshold']:5.2f}"
            f" | {pm:6.2f} {rm:5.2f} {f1m:5.2f}"
        )
    print()
    for method in OSCD_METHODS:
        aps = [row["ap"] for row in oscd_rows if row["method"] == method]
        f1s = [row["mask"][2] for row in oscd_rows if row["method"] == method]
        print(f"mean over cities  {method:12s} AP {np.mean(aps):.3f}  mask F1 {np.mean(f1s):.3f}")
else:
    print("shared data not found: no OSCD threshold table")""",
    ),
    (
        "md",
        """Two cities are a glimpse, not a benchmark: `sitewatch bench oscd ROOT` scores
every method on every OSCD city with one protocol (see the README's benchmark
section).""",
    ),
]


def _notebook(cells: list[tuple[str, str]], stem: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, (kind, source) in enumerate(cells):
        cell = (
            nbformat.v4.new_markdown_cell(source)
            if kind == "md"
            else nbformat.v4.new_code_cell(source)
        )
        cell["id"] = f"{stem.split('_')[0]}-{i:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


NOTEBOOKS = {
    "01_quickstart": QUICKSTART,
    "02_feb11_plant": FEB11,
    "03_methods": METHODS_NB,
}


def main() -> None:
    """Write every notebook next to this script."""
    for stem, cells in NOTEBOOKS.items():
        path = HERE / f"{stem}.ipynb"
        nbformat.write(_notebook(cells, stem), path)
        print("wrote", path)


if __name__ == "__main__":
    main()
