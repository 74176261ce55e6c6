"""Downloaded satellite products read in place: Sentinel-2 ``.SAFE`` and Landsat C2 L2.

What users download, taken as it comes:

* a Sentinel-2 L1C or L2A product from the Copernicus Data Space Browser: the
  ``.SAFE`` folder, its ``.zip`` (the ``.SAFE/`` folder is the zip's top entry) or the
  product's ``MTD_MSIL2A.xml`` / ``MTD_MSIL1C.xml``. Each band is taken at its finest
  resolution (L2A: ``GRANULE/*/IMG_DATA/R10m``, ``R20m``, ``R60m``), the scene
  classification ``SCL`` (L2A) is the cloud mask;
* a Landsat Collection 2 Level-2 product from USGS EarthExplorer: the ``.tar`` (flat:
  one GeoTIFF per band, ``QA_PIXEL``, the ``*_MTL.txt``) or the folder it unpacks to.
  ``QA_PIXEL`` is the cloud mask.

Archives are read through GDAL's ``/vsizip/`` and ``/vsitar/``: nothing is unpacked
to disk and nothing is written into the product. The date, platform, tile (path/row)
and processing baseline come from the product's metadata (``MTD_MSI*.xml``, ``MTL``),
and so does the DN → reflectance rule (:func:`s2_reflectance_rule`,
:func:`landsat_reflectance_rule`), which the manifest records with every band file read.
"""

from __future__ import annotations

import json
import re
import tarfile
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from sitewatch.errors import DataError, InputError, SameImageWarning, arg
from sitewatch.grid import Grid
from sitewatch.scene import Scene
from sitewatch.sources.local import BandRef, LocalSource, _grid_of, read_scene

__all__ = [
    "METHOD_NEEDS",
    "ProductInfo",
    "ProductSource",
    "check_products",
    "is_product",
    "landsat_reflectance_rule",
    "open_product",
    "s2_reflectance_rule",
]

Mission = Literal["sentinel-2", "landsat"]
Container = Literal["folder", "zip", "tar"]

S2_KEPT = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
"""Sentinel-2 bands read by default, in wavelength order."""
S2_LEFT_OUT = {
    "B01": "60 m coastal-aerosol band: it sees the atmosphere, not ground change",
    "B09": "60 m water-vapour band: it sees the atmosphere, not ground change",
    "B10": "60 m cirrus band (L1C only): it sees the atmosphere, not ground change",
}
"""Sentinel-2 bands left out by default, and why (recorded in the manifest)."""
OLI_LEFT_OUT = {
    "SR_B1": "coastal-aerosol band (OLI): it sees the atmosphere, not ground change",
}
"""Landsat 8/9 OLI surface-reflectance bands left out by default, and why."""
S2_BASELINE_OFFSET = "04.00"
"""From this processing baseline on, ESA's DN carry +1000 (``BOA_ADD_OFFSET`` −1000)."""
S2_OFFSET_DN = -1000.0
S2_QUANTIFICATION = 10000.0
LANDSAT_SR_SCALE = 2.75e-05
LANDSAT_SR_OFFSET = -0.2

_S2_ROLES = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir1": "B11"}
_OLI_ROLES = {"blue": "SR_B2", "green": "SR_B3", "red": "SR_B4", "nir": "SR_B5", "swir1": "SR_B6"}
_TM_ROLES = {"blue": "SR_B1", "green": "SR_B2", "red": "SR_B3", "nir": "SR_B4", "swir1": "SR_B5"}
METHOD_NEEDS: dict[str, tuple[str, ...]] = {
    "construction": ("blue", "green", "red", "nir"),
    "structural": ("blue", "green", "red", "nir"),
    "index": ("green", "red", "nir", "swir1"),
}
"""Bands (by role) each detection method needs from a product; the other methods
(``irmad``, ``cva``, ``diff``, ``ratio``, ``mad``) use whatever bands there are."""

# .SAFE band files: L2A GRANULE/<id>/IMG_DATA/R10m/T52SCK_20240105T022109_B02_10m.jp2,
# L1C GRANULE/<id>/IMG_DATA/T52SCK_20240105T022109_B02.jp2 (older: ..._OPER_..._B02.jp2).
_L2A_FILE = re.compile(
    r"(?:^|/)GRANULE/([^/]+)/IMG_DATA/R(10|20|60)m/[^/]*_(B0[1-9]|B1[0-2]|B8A|SCL)_(?:10|20|60)m"
    r"\.jp2$",
    re.IGNORECASE,
)
_L1C_FILE = re.compile(
    r"(?:^|/)GRANULE/([^/]+)/IMG_DATA/[^/]*_(B0[1-9]|B1[0-2]|B8A)\.jp2$", re.IGNORECASE
)
_S2_MTD = re.compile(r"^(?:([^/]+)/)?(MTD_MSIL(1C|2A)\.xml)$", re.IGNORECASE)
_S2_NATIVE_M = {
    **dict.fromkeys(("B02", "B03", "B04", "B08"), 10.0),
    **dict.fromkeys(("B05", "B06", "B07", "B8A", "B11", "B12"), 20.0),
    **dict.fromkeys(("B01", "B09", "B10"), 60.0),
}
_S2_BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10")
_S2_BAND_IDS += ("B11", "B12")  # band_id 0..12 in MTD_MSI*.xml, in this order
_S2_NAME = re.compile(
    r"^(S2[A-D])_MSIL(1C|2A)_(\d{8})T\d{6}_N(\d{2})(\d{2})_R(\d{3})_(T\d{2}[A-Z]{3})_", re.I
)
# Landsat C2 L2 files: LC09_L2SP_116032_20240110_20240111_02_T1_SR_B4.TIF, ..._QA_PIXEL.TIF
_LANDSAT_FILE = re.compile(
    r"(?:^|/)(L[COTEM]\d{2}_[^/]+?)_(SR_B\d|ST_B\d{1,2}|QA_PIXEL)\.TIF$", re.I
)
_MTL = re.compile(r"^(?:([^/]+)/)?([^/]+)_MTL\.(txt|json|xml)$", re.IGNORECASE)
_MTL_PREFERENCE = ("txt", "json", "xml")


@dataclass(frozen=True)
class ProductInfo:
    """What a downloaded product's own metadata says about it.

    Attributes
    ----------
    product_id : str
        ``S2B_MSIL2A_20240105T022109_N0510_R003_T52SCK_20240105T045502`` or
        ``LC09_L2SP_116032_20240110_20240111_02_T1``.
    mission : {"sentinel-2", "landsat"}
    level : str
        ``L2A`` or ``L1C`` (Sentinel-2); ``L2SP`` or ``L2SR`` (Landsat).
    platform : str
        ``Sentinel-2B``, ``LANDSAT_9`` ...
    acquired : str
        Acquisition day, ``YYYY-MM-DD`` (UTC).
    sensing_time : str or None
        ``PRODUCT_START_TIME`` (Sentinel-2) or date + ``SCENE_CENTER_TIME`` (Landsat).
    tile : str
        MGRS tile (``T52SCK``) or WRS-2 path/row (``116/032``).
    processing_baseline : str or None
        Sentinel-2 processing baseline (``05.10``); None for Landsat.
    container : {"folder", "zip", "tar"}
    root : Path
        The ``.SAFE`` folder, the ``.zip``, the Landsat folder or the ``.tar``.
    metadata_file : str
        The metadata file read, inside ``root``.
    reflectance_rule : str
        How DN became reflectance, in words.
    left_out : tuple of (str, str)
        Bands of the product not read, and why.
    """

    product_id: str
    mission: Mission
    level: str
    platform: str
    acquired: str
    sensing_time: str | None
    tile: str
    processing_baseline: str | None
    container: Container
    root: Path
    metadata_file: str
    reflectance_rule: str
    left_out: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.mission not in ("sentinel-2", "landsat"):
            raise ValueError(f"mission {self.mission!r} is not sentinel-2 or landsat")

    @property
    def label(self) -> str:
        """How errors name the product: its file or folder name."""
        return self.root.name

    @property
    def surface_reflectance(self) -> bool:
        """True for Level-2 (bottom of atmosphere) products, False for Sentinel-2 L1C."""
        return self.level != "L1C"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the manifest."""
        return {
            "product_id": self.product_id,
            "mission": self.mission,
            "level": self.level,
            "platform": self.platform,
            "acquired": self.acquired,
            "sensing_time": self.sensing_time,
            "tile" if self.mission == "sentinel-2" else "wrs_path_row": self.tile,
            "processing_baseline": self.processing_baseline,
            "container": self.container,
            "metadata_file": self.metadata_file,
            "reflectance_rule": self.reflectance_rule,
            "left_out": dict(self.left_out),
        }


@dataclass(frozen=True)
class ProductSource(LocalSource):
    """A downloaded product read like a band folder, with the product's own scaling.

    Bands are :class:`~sitewatch.sources.local.BandRef` whose ``path`` is a GDAL path
    (``/vsizip/…``, ``/vsitar/…`` or a file of the product folder); ``scaling`` maps
    each band to the ``(scale, offset)`` that turns its DN into reflectance.
    """

    product: ProductInfo | None = None
    scaling: tuple[tuple[str, float, float], ...] = ()
    band_files: tuple[tuple[str, str, float], ...] = field(default=())
    mask_file: str | None = None

    @property
    def files(self) -> tuple[Path, ...]:
        """Files on disk read: the archive, or the product folder's files used."""
        info = self._info
        if info.container != "folder":
            return (info.root,)
        used = [info.root / info.metadata_file, *(info.root / f for _, f, _ in self.band_files)]
        if self.mask_file:
            used.append(info.root / self.mask_file)
        return tuple(dict.fromkeys(used))

    @property
    def _info(self) -> ProductInfo:
        if self.product is None:  # pragma: no cover - open_product always sets it
            raise DataError(f"{self.path} was not opened as a product")
        return self.product

    def scale_offset(self, band: str) -> tuple[float, float]:
        """``(scale, offset)``: reflectance = DN × scale + offset for ``band``."""
        for name, scale, offset in self.scaling:
            if name == band:
                return scale, offset
        raise DataError(f"{self._info.label} has no band {band}")

    def read(self, grid: Grid, *, bands: Sequence[str] | None = None) -> Scene:
        """Read bands onto ``grid`` as reflectance (the product's rule), cloud-masked.

        DN 0 (no data) in every band, SCL no-data/defective/cloud/shadow/cirrus/snow
        and QA_PIXEL fill/cloud/shadow/cirrus/snow pixels are invalid.
        """
        with rasterio.Env(GDAL_PAM_ENABLED="NO"):  # never write .aux.xml into a product
            scene = read_scene(self, grid, bands=bands)
        data = scene.data
        for i, name in enumerate(scene.band_names):
            scale, offset = self.scale_offset(name)
            data[i] = np.where(scene.valid, data[i] * np.float32(scale) + np.float32(offset), 0)
        info = self._info
        provenance = {
            **scene.provenance,
            "kind": self.kind,
            "product_id": info.product_id,
            "reflectance_rule": info.reflectance_rule,
        }
        return replace(scene, provenance=provenance)

    def describe(self) -> dict[str, Any]:
        """Manifest entry: the product's metadata, each band file read, the rule applied."""
        d = super().describe()
        info = self._info
        d["product"] = info.as_dict()
        d["band_files"] = {
            name: {"file": f, "resolution_m": res} for name, f, res in self.band_files
        }
        d["mask_file"] = self.mask_file
        d["scale_offset"] = {name: [s, o] for name, s, o in self.scaling}
        d["reflectance_rule"] = info.reflectance_rule
        d["left_out"] = dict(info.left_out)
        return d


# ---------------------------------------------------------------------------
# Containers: a folder, a zip or a tar, listed without unpacking anything
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Listing:
    """Files of a product container, ``/``-separated and relative to it."""

    path: Path
    kind: Container
    names: tuple[str, ...]

    def gdal(self, name: str) -> str:
        """The path GDAL opens for member ``name``."""
        if self.kind == "folder":
            return str(self.path / name)
        return f"/vsi{self.kind}/{self.path.absolute()}/{name}"

    def read_text(self, name: str) -> str:
        """A (small, metadata) member as text, read into memory."""
        try:
            if self.kind == "folder":
                return (self.path / name).read_text(encoding="utf-8", errors="replace")
            if self.kind == "zip":
                with zipfile.ZipFile(self.path) as zf:
                    return zf.read(name).decode("utf-8", errors="replace")
            with tarfile.open(self.path, "r:") as tf:
                member = tf.extractfile(name)
                if member is None:
                    raise KeyError(name)
                return member.read().decode("utf-8", errors="replace")
        except (OSError, KeyError, zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
            raise DataError(
                f"{self.path.name}: cannot read {name} ({err}); the download may be "
                "incomplete: download the product again"
            ) from err


def _list_folder(path: Path) -> _Listing:
    names = tuple(sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()))
    return _Listing(path, "folder", names)


def _list_zip(path: Path) -> _Listing:
    try:
        with zipfile.ZipFile(path) as zf:
            names = tuple(i.filename for i in zf.infolist() if not i.is_dir())
    except zipfile.BadZipFile as err:
        raise DataError(
            f"{path.name} is truncated or not a zip ({err}); the download did not finish: "
            "download the product again"
        ) from err
    except OSError as err:
        raise DataError(f"{path.name} cannot be read ({err})") from err
    return _Listing(path, "zip", names)


def _list_tar(path: Path) -> _Listing:
    size = path.stat().st_size
    try:
        with tarfile.open(path, "r:") as tf:
            members = tf.getmembers()
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataError(
            f"{path.name} is truncated or not a tar ({err}); the download did not finish: "
            "download the product again"
        ) from err
    short = [m.name for m in members if m.isfile() and m.offset_data + m.size > size]
    if short:
        raise DataError(
            f"{path.name} is truncated ({short[0]} ends past the end of the file); the "
            "download did not finish: download the product again"
        )
    return _Listing(path, "tar", tuple(m.name for m in members if m.isfile()))


# ---------------------------------------------------------------------------
# Recognising a product
# ---------------------------------------------------------------------------


def is_product(path: str | Path) -> bool:
    """True when ``path`` names a product :func:`open_product` reads.

    A ``.SAFE`` folder (or a folder holding ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml``), one
    of those metadata files, a ``.zip``, a ``.tar``, or a folder holding a Landsat
    ``*_MTL.txt`` (``.json``, ``.xml``). Nothing is opened but the folder listing.

    Examples
    --------
    >>> is_product("no/such/S2B_MSIL2A_20240105T022109_N0510_R003_T52SCK_20240105T045502.zip")
    True
    >>> is_product("before.tif")
    False
    """
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".zip", ".tar")) or _S2_MTD.match(p.name):
        return True
    if p.is_dir():
        if name.endswith(".safe"):
            return True
        return any(
            _S2_MTD.match(c.name) or (_MTL.match(c.name) and c.is_file()) for c in p.iterdir()
        )
    return False


def open_product(path: str | Path, *, all_bands: bool = False) -> ProductSource:
    """Describe a downloaded Sentinel-2 or Landsat product without reading pixels.

    Parameters
    ----------
    path : str or Path
        A Sentinel-2 L1C/L2A ``.SAFE`` folder, its ``.zip`` or its
        ``MTD_MSIL2A.xml``/``MTD_MSIL1C.xml``; a Landsat Collection 2 Level-2 ``.tar``
        or the folder it unpacks to.
    all_bands : bool
        Also read the bands left out by default (Sentinel-2 B01, B09, B10; Landsat
        OLI SR_B1): they see the atmosphere, not ground change.

    Raises
    ------
    DataError
        A truncated archive; an archive or folder without a product in it; a
        Landsat product that is not Collection 2 Level-2; unreadable band files.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p} does not exist; check the path")
    if p.is_file() and _S2_MTD.match(p.name):
        return _open_s2(_list_folder(p.parent), "", given=p, all_bands=all_bands)
    if p.is_dir():
        listing = _list_folder(p)
    elif p.name.lower().endswith(".zip"):
        listing = _list_zip(p)
    elif p.name.lower().endswith(".tar"):
        listing = _list_tar(p)
    else:
        raise DataError(f"{p.name} is not a .SAFE folder, .zip or Landsat .tar")
    s2 = sorted({m.group(1) or "" for n in listing.names if (m := _S2_MTD.match(n))})
    if len(s2) > 1:
        raise DataError(
            f"{p.name} holds {len(s2)} Sentinel-2 products ({', '.join(s2[:3])}); "
            "give one product per image"
        )
    if s2:
        return _open_s2(listing, s2[0], given=p, all_bands=all_bands)
    if any(_MTL.match(n) for n in listing.names):
        return _open_landsat(listing, given=p, all_bands=all_bands)
    raise DataError(
        f"{p.name} holds no Sentinel-2 product (MTD_MSIL2A.xml or MTD_MSIL1C.xml) and no "
        "Landsat product (*_MTL.txt); give a .SAFE folder or its .zip, or a Landsat "
        "Collection 2 Level-2 .tar"
    )


# ---------------------------------------------------------------------------
# Sentinel-2
# ---------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_texts(root: ET.Element) -> dict[str, str]:
    """First text of each element, by local name (namespaces dropped)."""
    out: dict[str, str] = {}
    for el in root.iter():
        key = _local(el.tag)
        if key not in out and el.text and el.text.strip():
            out[key] = el.text.strip()
    return out


def _band_offsets(root: ET.Element, tag: str) -> dict[str, float]:
    """``BOA_ADD_OFFSET``/``RADIO_ADD_OFFSET`` per band, keyed B01..B12."""
    out = {}
    for el in root.iter():
        if _local(el.tag) == tag and el.text:
            i = int(el.get("band_id", "-1"))
            if 0 <= i < len(_S2_BAND_IDS):
                out[_S2_BAND_IDS[i]] = float(el.text)
    return out


def s2_reflectance_rule(
    level: str, baseline: str | None, *, quantification: float | None, offsets: Mapping[str, float]
) -> tuple[float, dict[str, float], str]:
    """DN → reflectance for a Sentinel-2 product: ``(DN + offset) / quantification``.

    The offset is the product's ``BOA_ADD_OFFSET`` (L2A) or ``RADIO_ADD_OFFSET`` (L1C)
    per band; a product that does not list it gets the baseline's: −1000 DN from
    processing baseline :data:`S2_BASELINE_OFFSET` on, 0 before.

    Returns
    -------
    (scale, offset per band in DN, why)

    Examples
    --------
    >>> s2_reflectance_rule("L2A", "05.10", quantification=None, offsets={})[2]
    'L2A BOA = (DN - 1000) / 10000: processing baseline 05.10 >= 04.00 (no offsets listed)'
    >>> s2_reflectance_rule("L2A", "03.01", quantification=10000.0, offsets={})[1]["B04"]
    0.0
    """
    q = quantification or S2_QUANTIFICATION
    what = "BOA" if level == "L2A" else "TOA"
    by_baseline = baseline is not None and baseline >= S2_BASELINE_OFFSET
    default = S2_OFFSET_DN if by_baseline else 0.0
    per_band = {b: float(offsets.get(b, default)) for b in _S2_BAND_IDS}
    listed = {offsets[b] for b in offsets}
    shown = next(iter(listed)) if len(listed) == 1 else (None if listed else default)
    formula = (
        f"(DN {'-' if (shown or 0) < 0 else '+'} {abs(shown or 0):g}) / {q:g}"
        if shown is not None
        else f"(DN + per-band offset) / {q:g}"
    )
    tag = "BOA_ADD_OFFSET" if level == "L2A" else "RADIO_ADD_OFFSET"
    if offsets:
        why = f"{tag} from the product metadata (processing baseline {baseline or '?'})"
    elif by_baseline:
        why = f"processing baseline {baseline} >= {S2_BASELINE_OFFSET} (no offsets listed)"
    else:
        why = f"processing baseline {baseline or '?'} < {S2_BASELINE_OFFSET}: no offset"
    return 1.0 / q, per_band, f"{level} {what} = {formula}: {why}"


def _open_s2(listing: _Listing, prefix: str, *, given: Path, all_bands: bool) -> ProductSource:
    base = f"{prefix}/" if prefix else ""
    names = [n[len(base) :] for n in listing.names if n.startswith(base)]
    mtd = next(n for n in names if _S2_MTD.match(n) and "/" not in n)
    level = "L2A" if mtd.upper().endswith("L2A.XML") else "L1C"
    try:
        root = ET.fromstring(listing.read_text(base + mtd))
    except ET.ParseError as err:
        raise DataError(
            f"{given.name}: {mtd} is not readable XML ({err}); download the product again"
        ) from err
    texts = _xml_texts(root)
    product_uri = texts.get("PRODUCT_URI", prefix or listing.path.name)
    product_id = re.sub(r"\.(SAFE|zip)$", "", product_uri, flags=re.IGNORECASE)
    label = listing.path.name if listing.kind != "folder" else (prefix or listing.path.name)
    start = texts.get("PRODUCT_START_TIME") or texts.get("DATATAKE_SENSING_START")
    named = _S2_NAME.match(product_id)
    if not start and named:
        start = f"{named.group(3)[:4]}-{named.group(3)[4:6]}-{named.group(3)[6:]}"
    if not start or not re.match(r"\d{4}-\d{2}-\d{2}", start):
        raise DataError(f"{label}: {mtd} gives no PRODUCT_START_TIME; download the product again")
    baseline = texts.get("PROCESSING_BASELINE") or (
        f"{named.group(4)}.{named.group(5)}" if named else None
    )
    platform = texts.get("SPACECRAFT_NAME") or (
        f"Sentinel-{named.group(1)[1:]}" if named else "Sentinel-2"
    )
    pattern = _L2A_FILE if level == "L2A" else _L1C_FILE
    # band -> (resolution m, file), the finest file of each band
    found: dict[str, tuple[float, str]] = {}
    granules: set[str] = set()
    for n in names:
        m = pattern.search(n)
        if not m:
            continue
        granules.add(m.group(1))
        if level == "L2A":
            band, res = m.group(3).upper(), float(m.group(2))
        else:
            band = m.group(2).upper()
            res = _S2_NATIVE_M[band]
        if band not in found or res < found[band][0]:
            found[band] = (res, n)
    if len(granules) > 1:
        raise DataError(
            f"{label} holds {len(granules)} granules (an old multi-tile product); "
            "download the single-tile product of the tile you need"
        )
    tile = named.group(7).upper() if named else ""
    if not tile and granules:
        tm = re.search(r"_(T\d{2}[A-Z]{3})_", next(iter(granules)))
        tile = tm.group(1) if tm else "?"
    quant_tag = "BOA_QUANTIFICATION_VALUE" if level == "L2A" else "QUANTIFICATION_VALUE"
    quant = float(texts[quant_tag]) if quant_tag in texts else None
    offset_tag = "BOA_ADD_OFFSET" if level == "L2A" else "RADIO_ADD_OFFSET"
    scale, offsets, rule = s2_reflectance_rule(
        level, baseline, quantification=quant, offsets=_band_offsets(root, offset_tag)
    )
    mask = found.pop("SCL", None)
    left_out = tuple((b, why) for b, why in S2_LEFT_OUT.items() if b in found and not all_bands)
    wanted = [b for b in (*S2_KEPT, *S2_LEFT_OUT) if b in found and b not in dict(left_out)]
    wanted.sort(key=_S2_BAND_IDS.index)
    info = ProductInfo(
        product_id=product_id,
        mission="sentinel-2",
        level=level,
        platform=platform,
        acquired=start[:10],
        sensing_time=start,
        tile=tile,
        processing_baseline=baseline,
        container=listing.kind,
        root=listing.path / prefix if listing.kind == "folder" and prefix else listing.path,
        metadata_file=(base + mtd) if listing.kind != "folder" else mtd,
        reflectance_rule=rule,
        left_out=left_out,
    )
    inner = (lambda n: base + n) if listing.kind != "folder" else (lambda n: n)
    bands = [(b, inner(found[b][1]), found[b][0]) for b in wanted]
    mask_ref = ("SCL", inner(mask[1])) if mask else None
    return _build(
        given,
        info,
        listing if listing.kind != "folder" or not prefix else _reroot(listing, prefix),
        bands,
        mask_ref,
        {b: (scale, offsets[b] * scale) for b in wanted},
        acquired_from=f"{mtd} PRODUCT_START_TIME",
    )


def _reroot(listing: _Listing, prefix: str) -> _Listing:
    base = f"{prefix}/"
    return _Listing(
        listing.path / prefix,
        "folder",
        tuple(n[len(base) :] for n in listing.names if n.startswith(base)),
    )


# ---------------------------------------------------------------------------
# Landsat Collection 2 Level-2
# ---------------------------------------------------------------------------


def _parse_mtl(text: str, kind: str) -> dict[str, dict[str, str]]:
    """MTL (ODL text, JSON or XML) → group → key → value (text)."""
    groups: dict[str, dict[str, str]] = {}
    if kind == "json":
        doc = json.loads(text).get("LANDSAT_METADATA_FILE", {})
        return {g: {k: str(v) for k, v in d.items()} for g, d in doc.items() if isinstance(d, dict)}
    if kind == "xml":
        root = ET.fromstring(text)
        for g in root:
            groups[_local(g.tag)] = {_local(e.tag): (e.text or "").strip() for e in g}
        return groups
    current = ""
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip().strip('"')
        if key == "GROUP":
            current = value
            groups.setdefault(current, {})
        elif key == "END_GROUP":
            current = ""
        elif current:
            groups[current][key] = value
    return groups


def landsat_reflectance_rule(
    sr: Mapping[str, str], bands: Iterable[str]
) -> tuple[dict[str, tuple[float, float]], str]:
    """Per band ``(scale, offset)`` from the MTL's ``LEVEL2_SURFACE_REFLECTANCE_PARAMETERS``.

    ``REFLECTANCE_MULT_BAND_n`` and ``REFLECTANCE_ADD_BAND_n``; a band the MTL does
    not list gets Collection 2's documented 2.75e-05 and −0.2.

    Examples
    --------
    >>> sr = {"REFLECTANCE_MULT_BAND_4": "2.75e-05", "REFLECTANCE_ADD_BAND_4": "-0.200000"}
    >>> scaling, why = landsat_reflectance_rule(sr, ["SR_B4"])
    >>> scaling
    {'SR_B4': (2.75e-05, -0.2)}
    >>> why
    'L2 SR = DN x 2.75e-05 - 0.2: REFLECTANCE_MULT/ADD_BAND_n from the MTL'
    """
    out: dict[str, tuple[float, float]] = {}
    fallback = []
    for b in bands:
        n = b.removeprefix("SR_B")
        mult, add = sr.get(f"REFLECTANCE_MULT_BAND_{n}"), sr.get(f"REFLECTANCE_ADD_BAND_{n}")
        if mult is None or add is None:
            fallback.append(b)
            out[b] = (LANDSAT_SR_SCALE, LANDSAT_SR_OFFSET)
        else:
            out[b] = (float(mult), float(add))
    pairs = set(out.values())
    shown = next(iter(pairs)) if len(pairs) == 1 else None
    formula = (
        f"DN x {shown[0]:g} {'-' if shown[1] < 0 else '+'} {abs(shown[1]):g}"
        if shown
        else "DN x REFLECTANCE_MULT_BAND_n + REFLECTANCE_ADD_BAND_n"
    )
    why = "REFLECTANCE_MULT/ADD_BAND_n from the MTL"
    if fallback:
        why += f"; Collection 2 rule for {', '.join(fallback)} (not in the MTL)"
    return out, f"L2 SR = {formula}: {why}"


def _open_landsat(listing: _Listing, *, given: Path, all_bands: bool) -> ProductSource:
    mtls = sorted(
        (m for n in listing.names if (m := _MTL.match(n))),
        key=lambda m: _MTL_PREFERENCE.index(m.group(3).lower()),
    )
    m = mtls[0]
    mtl_name = m.group(0)
    label = listing.path.name
    try:
        groups = _parse_mtl(listing.read_text(mtl_name), m.group(3).lower())
    except (ValueError, ET.ParseError) as err:
        raise DataError(f"{label}: {mtl_name} is not readable ({err})") from err
    contents = groups.get("PRODUCT_CONTENTS", {})
    attrs = groups.get("IMAGE_ATTRIBUTES", {})
    product_id = contents.get("LANDSAT_PRODUCT_ID") or m.group(2)
    level = contents.get("PROCESSING_LEVEL") or product_id.split("_")[1]
    collection = contents.get("COLLECTION_NUMBER", "02")
    if not level.upper().startswith("L2") or collection.lstrip("0") != "2":
        raise DataError(
            f"{label} is Landsat Collection {collection} {level}, not Collection 2 Level-2; "
            "download the Collection 2 Level-2 product (surface reflectance) from EarthExplorer"
        )
    date = attrs.get("DATE_ACQUIRED", "")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise DataError(f"{label}: {mtl_name} gives no DATE_ACQUIRED; download the product again")
    spacecraft = attrs.get("SPACECRAFT_ID", "LANDSAT_" + product_id[2:4].lstrip("0"))
    path_, row = attrs.get("WRS_PATH", product_id[10:13]), attrs.get("WRS_ROW", product_id[13:16])
    oli = spacecraft.upper() in ("LANDSAT_8", "LANDSAT_9")
    found: dict[str, str] = {}
    for n in listing.names:
        fm = _LANDSAT_FILE.search(n)
        if fm:
            found[fm.group(2).upper()] = n
    mask = found.pop("QA_PIXEL", None)
    sr = sorted((b for b in found if b.startswith("SR_B")), key=lambda b: int(b[4:]))
    thermal = sorted(b for b in found if b.startswith("ST_B"))
    left = {**(OLI_LEFT_OUT if oli else {})}
    left_out = tuple((b, why) for b, why in left.items() if b in sr and not all_bands)
    left_out += tuple((b, "surface temperature (kelvin), not reflectance") for b in thermal)
    wanted = [b for b in sr if b not in dict(left_out)]
    scaling, rule = landsat_reflectance_rule(
        groups.get("LEVEL2_SURFACE_REFLECTANCE_PARAMETERS", {}), wanted
    )
    center = attrs.get("SCENE_CENTER_TIME")
    info = ProductInfo(
        product_id=product_id,
        mission="landsat",
        level=level.upper(),
        platform=spacecraft,
        acquired=date,
        sensing_time=f"{date}T{center}" if center else None,
        tile=f"{int(path_):03d}/{int(row):03d}" if path_.isdigit() and row.isdigit() else "?",
        processing_baseline=None,
        container=listing.kind,
        root=listing.path,
        metadata_file=mtl_name,
        reflectance_rule=rule,
        left_out=left_out,
    )
    bands = [(b, found[b], 30.0) for b in wanted]
    return _build(
        given,
        info,
        listing,
        bands,
        ("QA_PIXEL", mask) if mask else None,
        scaling,
        acquired_from=f"{Path(mtl_name).name} DATE_ACQUIRED",
    )


# ---------------------------------------------------------------------------
# Shared
# ---------------------------------------------------------------------------


def _build(
    given: Path,
    info: ProductInfo,
    listing: _Listing,
    bands: Sequence[tuple[str, str, float]],
    mask: tuple[str, str] | None,
    scaling: Mapping[str, tuple[float, float]],
    *,
    acquired_from: str,
) -> ProductSource:
    """Open each band file's header (grid, CRS) and assemble the source."""
    if not bands:
        raise DataError(
            f"{info.label} holds no band files ({info.mission} {info.level}); "
            "the download may be incomplete: download the product again"
        )
    grids: dict[str, Grid] = {}
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):
        for name, f, _ in (*bands, *([(mask[0], mask[1], 0.0)] if mask else [])):
            try:
                with rasterio.open(listing.gdal(f)) as ds:
                    grids[name] = _grid_of(ds, pixel_size=None)
            except (RasterioIOError, DataError) as err:
                reason = str(err).split("\n")[0]
                raise DataError(
                    f"{info.label}: band file {Path(f).name} cannot be read ({reason}); "
                    "download the product again"
                ) from err
    crss = {g.crs for g in grids.values()}
    if len(crss) > 1:
        raise DataError(
            f"{info.label}: band files use different CRSs ({', '.join(map(str, crss))})"
        )
    refs = tuple(BandRef(name, listing.gdal(f), 1) for name, f, _ in bands)
    finest = min((grids[n] for n, _, _ in bands), key=lambda g: g.res[0])
    return ProductSource(
        path=given,
        kind="product",
        bands=refs,
        grid=finest,
        acquired=info.acquired,
        mask_band=BandRef(mask[0], listing.gdal(mask[1]), 1) if mask else None,
        acquired_from=acquired_from,
        product=info,
        scaling=tuple((n, *scaling[n]) for n, _, _ in bands),
        band_files=tuple(bands),
        mask_file=mask[1] if mask else None,
    )


def check_products(sources: Sequence[Any], *, method: str | None = None) -> None:
    """Refuse products that cannot be compared, or lack a band ``method`` needs.

    Only products (:class:`ProductSource`) are checked; other sources pass.

    Raises
    ------
    DataError
        A Sentinel-2 product with a Landsat one; a Sentinel-2 L1C product with an
        L2A one (top-of-atmosphere against surface reflectance); a product without a
        band the method needs (:data:`METHOD_NEEDS`).

    Warns
    -----
    SameImageWarning
        The same product twice (e.g. a ``.SAFE`` folder and its ``.zip``).
    """
    products = [s for s in sources if isinstance(s, ProductSource) and s.product is not None]
    missions = {s._info.mission: s._info for s in products}
    if len(missions) > 1:
        s2_, ls_ = missions["sentinel-2"], missions["landsat"]
        raise DataError(
            f"{s2_.label} is Sentinel-2 but {ls_.label} is Landsat: their bands, pixels and "
            "geolocation differ; compare products of one mission"
        )
    seen: dict[str, ProductInfo] = {}
    for s in products:
        info = s._info
        if info.product_id in seen and seen[info.product_id].root != info.root:
            warnings.warn(
                f"{seen[info.product_id].label} and {info.label} are the same product "
                f"({info.product_id}): every difference found is noise; give two acquisitions",
                SameImageWarning,
                stacklevel=3,
            )
        seen.setdefault(info.product_id, info)
    s2 = [s.product for s in products if s.product and s.product.mission == "sentinel-2"]
    levels = {p.level for p in s2}
    if len(levels) > 1:
        l1c = next(p for p in s2 if p.level == "L1C")
        l2a = next(p for p in s2 if p.level == "L2A")
        raise DataError(
            f"{l1c.label} is Sentinel-2 L1C (top-of-atmosphere) but {l2a.label} is L2A "
            "(surface reflectance): they cannot be compared; download L2A for both"
        )
    for s in products:
        info = s._info
        # The default (auto) is the construction score on Sentinel-2's 10-20 m bands.
        chosen = "construction" if method == "auto" and info.mission == "sentinel-2" else method
        needs = METHOD_NEEDS.get(chosen or "", ())
        if info.mission == "sentinel-2":
            table = _S2_ROLES
        else:
            table = _OLI_ROLES if info.platform.upper() in ("LANDSAT_8", "LANDSAT_9") else _TM_ROLES
        missing = [f"{table[r]} ({r})" for r in needs if table[r] not in s.band_names]
        if missing:
            raise DataError(
                f"{info.label} has no {', '.join(missing)}, which {arg('method')} {chosen} "
                "needs: the download is incomplete (download the product again) or choose "
                f"another {arg('method')} (irmad, cva)"
            )


def reject_bands_option(path: str | Path, bands: object) -> None:
    """Refuse ``bands=`` for a product: it names its own bands."""
    if bands is not None:
        raise InputError(
            f"{arg('bands')} names the bands of plain raster files; {Path(path).name} is a "
            "satellite product whose metadata names its bands: leave it out"
        )
