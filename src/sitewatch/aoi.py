"""Areas of interest: the facility catalog, AOI validation and article matching.

An :class:`AOI` is a frozen value built from one GeoJSON Feature. The catalog is the
folder of such files at the top of the repository (``aoi/``), shipped inside the package
as ``sitewatch.catalog``; ``SITEWATCH_AOI_DIR`` points elsewhere. A user's own entries
live in the user catalog folder (:func:`user_catalog_dir`: ``$SITEWATCH_AOI_PATH``, else
``$XDG_CONFIG_HOME/sitewatch/aoi``, else ``~/.config/sitewatch/aoi``) and override
built-in entries with the same id. A user's AOI file may
also be GeoJSON in a projected CRS, a GeoPackage or a (zipped) Shapefile
(:func:`load_aoi_file`); each is reprojected to lon/lat and validated the same way.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, Polygon, mapping, shape
from shapely.validation import explain_validity

from sitewatch import _vector
from sitewatch.errors import AOIError

__all__ = [
    "AOI",
    "AOI_FILE_SUFFIXES",
    "MAX_AOI_AREA_M2",
    "MIN_AOI_AREA_M2",
    "ArticleMatch",
    "catalog_dir",
    "check_aoi",
    "geodesic_area_m2",
    "load_aoi",
    "load_aoi_file",
    "load_catalog",
    "match_article",
    "user_catalog_dir",
]

MIN_AOI_AREA_M2 = 1_000.0
"""Smaller than this (about 30 m x 30 m) is not a facility AOI; likely a typo in degrees."""
MAX_AOI_AREA_M2 = 1_000_000_000.0
"""1,000 km²: larger AOIs belong to a tiling job, not one detection."""

CONFIDENCE_LEVELS = ("high", "medium", "low")
GEOMETRY_KINDS = ("working_box", "sourced_footprint")
LANGUAGES = ("en", "ko", "id", "ru")

# Generous (west, south, east, north) boxes per ISO country code, used only to catch a
# lat/lon swap or a sign error in catalog entries. Unknown codes are not checked.
COUNTRY_BOXES: dict[str, tuple[float, float, float, float]] = {
    "KP": (124.0, 37.5, 131.0, 43.1),
    "KR": (124.5, 33.0, 131.0, 38.7),
    "RU": (19.5, 41.1, 180.0, 82.0),
    "CN": (73.4, 18.1, 135.1, 53.6),
    "FR": (-5.3, 41.3, 9.7, 51.2),
    "IT": (6.6, 36.6, 18.6, 47.1),
    "AE": (51.5, 22.6, 56.4, 26.1),
    "BR": (-74.0, -33.8, -34.7, 5.3),
    "LB": (35.1, 33.0, 36.7, 34.7),
    "IN": (68.1, 6.7, 97.4, 35.7),
    "US": (-125.0, 24.5, -66.9, 49.4),
    "HK": (113.8, 22.1, 114.5, 22.6),
    "HU": (16.1, 45.7, 22.9, 48.6),
    "UA": (22.1, 44.3, 40.3, 52.4),
}

_GEOD = Geod(ellps="WGS84")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_DATE_RANGE = re.compile(rf"{_DATE.pattern}(/{_DATE.pattern})?")
_GPKG_LAYER = re.compile(r"^(?P<file>.+\.gpkg):(?P<layer>[^:/\\]+)$", re.IGNORECASE)
AOI_FILE_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip")
"""File extensions :func:`load_aoi_file` reads."""
_ACCEPTED = (
    "use .geojson/.json (GeoJSON), .gpkg (GeoPackage), .shp (Shapefile) "
    "or .zip (a zipped Shapefile)"
)
_INVALID_FIX = (
    "fix the ring order so edges do not cross (shapely.make_valid or QGIS 'Fix geometries')"
)


def geodesic_area_m2(geom: Polygon | MultiPolygon) -> float:
    """Area on the WGS84 ellipsoid of a lon/lat geometry, in m².

    Parameters
    ----------
    geom : shapely Polygon or MultiPolygon
        Geometry in EPSG:4326 (lon, lat).

    Returns
    -------
    float
        Absolute geodesic area in square metres.
    """
    area, _ = _GEOD.geometry_area_perimeter(geom)
    return abs(float(area))


def _swapped(geom: Polygon | MultiPolygon) -> Polygon | MultiPolygon:
    return shapely.transform(geom, lambda x, y: (y, x), interleaved=False)


def _geometry_problems(geom: Any, *, countries: Iterable[str] = ()) -> list[str]:
    """Return the reasons a lon/lat geometry cannot be an AOI (empty list if fine)."""
    if not isinstance(geom, Polygon | MultiPolygon):
        return [f"geometry is a {geom.geom_type}; an AOI must be a Polygon or MultiPolygon"]
    if geom.is_empty:
        return ["geometry is empty; draw a polygon around the site"]
    west, south, east, north = geom.bounds
    in_range = -180 <= west <= east <= 180 and -90 <= south <= north <= 90
    swapped_in_range = -180 <= south <= north <= 180 and -90 <= west <= east <= 90
    if not in_range:
        if swapped_in_range:
            return [
                "coordinates look lat/lon swapped (a latitude beyond ±90°); "
                "GeoJSON order is [longitude, latitude]"
            ]
        return [f"coordinates out of range: bounds {geom.bounds} are not lon/lat degrees"]
    if not geom.is_valid:
        return [f"polygon is invalid ({explain_validity(geom)}); {_INVALID_FIX}"]
    problems = []
    for code in countries:
        box = COUNTRY_BOXES.get(code)
        if box is None:
            continue
        c = geom.representative_point()
        inside = box[0] <= c.x <= box[2] and box[1] <= c.y <= box[3]
        if not inside:
            s = _swapped(geom).representative_point()
            if box[0] <= s.x <= box[2] and box[1] <= s.y <= box[3]:
                problems.append(
                    f"coordinates look lat/lon swapped: the polygon lies outside {code} "
                    "but inside it once swapped; GeoJSON order is [longitude, latitude]"
                )
            else:
                problems.append(f"polygon centre ({c.x:.4f}, {c.y:.4f}) lies outside {code}")
    area = geodesic_area_m2(geom)
    if area < MIN_AOI_AREA_M2:
        problems.append(
            f"area {area:.0f} m² is below {MIN_AOI_AREA_M2:.0f} m²; check the coordinates"
        )
    elif area > MAX_AOI_AREA_M2:
        problems.append(
            f"area {area / 1e6:.0f} km² is above {MAX_AOI_AREA_M2 / 1e6:.0f} km²; "
            "split it into smaller AOIs"
        )
    return problems


@dataclass(frozen=True)
class AOI:
    """A facility or area to watch, with where it is and how we know.

    Parameters
    ----------
    id : str
        Slug (``[a-z0-9-]``), the catalog key and file stem.
    name : str
        Canonical English name.
    geometry : shapely Polygon or MultiPolygon or None
        Lon/lat outline; ``None`` for a facility with no sourced location (kept for
        article matching only).
    kind, countries, confidence, geometry_kind
        Facility type, ISO 3166 codes, sourcing confidence (high/medium/low), and
        ``"working_box"`` or ``"sourced_footprint"`` for located AOIs.
    aliases, weak_aliases : mapping of language code to names
        Names that identify the facility in text; weak ones are ambiguous on their own.
    properties : mapping
        The full GeoJSON properties (sources, events, conflicts, points, ...).

    Raises
    ------
    AOIError
        If the id is not a slug or the geometry is not a usable lon/lat polygon.
    """

    id: str
    name: str
    geometry: Polygon | MultiPolygon | None
    kind: str = "site"
    countries: tuple[str, ...] = ()
    confidence: str = "low"
    geometry_kind: str | None = None
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    weak_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    path: Path | None = field(default=None, compare=False, repr=False)
    origin: str = field(default="file", compare=False, repr=False)
    """Where the entry came from: ``"builtin"``, ``"user"`` (user catalog) or ``"file"``."""

    def __post_init__(self) -> None:
        if not _SLUG.match(self.id):
            raise AOIError(f"AOI id {self.id!r} is not a slug; use lowercase letters, digits, '-'")
        if self.geometry is not None:
            problems = _geometry_problems(self.geometry, countries=self.countries)
            if problems:
                where = f" ({self.path})" if self.path else ""
                raise AOIError(f"AOI {self.id!r}{where}: {problems[0]}")

    @property
    def located(self) -> bool:
        """True when the AOI has a polygon to watch."""
        return self.geometry is not None

    def require_located(self) -> AOI:
        """Return the AOI itself if it has a polygon, else raise with where to go instead.

        Every command that needs a polygon calls this, so an unlocated catalog entry
        stops with one line that says what to do: run the command on the entry's
        ``see_instead`` AOI (e.g. the Ryongsong Machine Complex → ``feb11-plant``), or
        draw a box, with the entry's nearest sourced reference point as a hint.

        Returns
        -------
        AOI
            ``self``, when located.

        Raises
        ------
        AOIError
            If the AOI has no geometry.
        """
        if self.geometry is not None:
            return self
        raise AOIError(unlocated_message(self))

    @cached_property
    def area_m2(self) -> float:
        """Geodesic area of the polygon in m² (0 for unlocated AOIs)."""
        return 0.0 if self.geometry is None else geodesic_area_m2(self.geometry)

    @cached_property
    def centroid(self) -> tuple[float, float] | None:
        """(lon, lat) of the polygon centroid, or ``None`` when unlocated."""
        if self.geometry is None:
            return None
        c = self.geometry.centroid
        return (float(c.x), float(c.y))

    def all_aliases(self) -> list[tuple[str, str, bool]]:
        """Every name as ``(language, alias, weak)``, the canonical name first."""
        out = [("en", self.name, False)]
        for weak, table in ((False, self.aliases), (True, self.weak_aliases)):
            for lang, names in table.items():
                out.extend((lang, n, weak) for n in names)
        return out

    def to_feature(self) -> dict[str, Any]:
        """The AOI as a GeoJSON Feature (lon/lat)."""
        props = dict(self.properties)
        props.setdefault("id", self.id)
        props.setdefault("name", self.name)
        return {
            "type": "Feature",
            "id": self.id,
            "geometry": None if self.geometry is None else mapping(self.geometry),
            "properties": props,
        }

    @classmethod
    def from_feature(
        cls, feature: Mapping[str, Any], *, path: Path | None = None, default_id: str | None = None
    ) -> AOI:
        """Build an AOI from a GeoJSON Feature, FeatureCollection, or geometry.

        A FeatureCollection of several polygon features becomes one AOI: the union of
        their polygons, with the collection's own ``id``/``properties`` (if any) and a
        ``geometry_note`` saying so.

        Parameters
        ----------
        feature : mapping
            Parsed GeoJSON, in lon/lat.
        path : Path, optional
            File it came from, quoted in errors.
        default_id : str, optional
            Id to use when the Feature carries none (e.g. the file stem).
        """
        where = f" in {path}" if path else ""
        kind = feature.get("type") if isinstance(feature, Mapping) else None
        if kind == "FeatureCollection":
            feats = feature.get("features") or []
            if not feats:
                raise AOIError(
                    f"FeatureCollection{where} holds no features; draw a polygon around the site"
                )
            feature = _merge_collection(feature, feats, path=path) if len(feats) > 1 else feats[0]
            kind = feature.get("type") if isinstance(feature, Mapping) else None
        if kind in ("Polygon", "MultiPolygon"):
            feature = {"type": "Feature", "geometry": feature, "properties": {}}
            kind = "Feature"
        if kind != "Feature":
            raise AOIError(f"not a GeoJSON Feature{where} (type {kind!r})")
        props = dict(feature.get("properties") or {})
        aoi_id = props.get("id") or feature.get("id") or default_id
        if not aoi_id:
            raise AOIError(f"AOI{where} has no id; add properties.id")
        aoi_id = _slugify(str(aoi_id))
        raw_geom = feature.get("geometry")
        try:
            geom = None if raw_geom is None else shape(raw_geom)
        except (
            ValueError,
            TypeError,
            AttributeError,
            KeyError,
            shapely.errors.GEOSException,
        ) as err:
            raise AOIError(f"AOI {aoi_id!r}{where}: unreadable geometry ({err})") from err
        if geom is not None and not isinstance(geom, Polygon | MultiPolygon):
            raise AOIError(
                f"AOI {aoi_id!r}{where}: geometry is a {geom.geom_type}; "
                "draw a Polygon around the facility"
            )
        return cls(
            id=aoi_id,
            name=str(props.get("name") or aoi_id),
            geometry=geom,
            kind=str(props.get("kind") or "site"),
            countries=tuple(props.get("countries") or ()),
            confidence=str(props.get("confidence") or "low"),
            geometry_kind=props.get("geometry_kind"),
            aliases=_alias_table(props.get("aliases")),
            weak_aliases=_alias_table(props.get("weak_aliases")),
            properties=props,
            path=path,
        )


def unlocated_message(aoi: AOI) -> str:
    """One line saying that ``aoi`` has no polygon, and what to run instead.

    Parameters
    ----------
    aoi : AOI
        An unlocated AOI.

    Returns
    -------
    str
        The message, naming the ``see_instead`` AOI when the catalog gives one, else the
        first reference point as a hint and how to draw a box.
    """
    head = f"AOI {aoi.id!r} has no sourced location (unlocated in the catalog)"
    see = aoi.properties.get("see_instead")
    if isinstance(see, Mapping) and see.get("id"):
        target = see["id"]
        return (
            f"{head}; run this on {target} instead, its one part with sourced coordinates "
            f"(attribution disputed: see 'sitewatch aoi show {aoi.id}')"
        )
    refs = [r for r in aoi.properties.get("reference_points") or [] if r.get("lat") is not None]
    if refs:
        r = refs[0]
        hint = (
            f"; hint: {r.get('name')} is at {r['lat']}, {r['lon']} ({r.get('confidence')}), "
            "which is not the facility"
        )
    else:
        hint = ""
    return (
        f"{head}{hint}; once you have a sourced point, add it with 'sitewatch aoi new' "
        "(see --override-builtin) or pass --aoi-file FILE.geojson"
    )


def _union_parts(parts: Sequence[Any], *, label: str, part: str) -> Polygon | MultiPolygon:
    """Union of lon/lat polygons, each checked for type and validity first."""
    live: list[Polygon | MultiPolygon] = []
    for i, g in enumerate(parts, 1):
        if g is None:
            raise AOIError(f"{label}: {part} {i} has no geometry; draw a polygon or remove it")
        if not isinstance(g, Polygon | MultiPolygon):
            raise AOIError(
                f"{label}: {part} {i} is a {g.geom_type}; an AOI is drawn with polygons only"
            )
        if g.is_empty:
            continue
        if not g.is_valid:
            raise AOIError(
                f"{label}: the polygon of {part} {i} is invalid ({explain_validity(g)}); "
                f"{_INVALID_FIX}"
            )
        live.append(g)
    if not live:
        raise AOIError(f"{label}: geometry is empty; draw a polygon around the site")
    merged = live[0] if len(live) == 1 else shapely.union_all(live)
    if not isinstance(merged, Polygon | MultiPolygon):  # pragma: no cover - GEOS guarantee
        raise AOIError(f"{label}: the union of the polygons is a {merged.geom_type}")
    return merged


def _merge_collection(
    collection: Mapping[str, Any], feats: Sequence[Any], *, path: Path | None
) -> dict[str, Any]:
    """One Feature whose polygon is the union of a FeatureCollection's polygons."""
    label = f"FeatureCollection in {path}" if path else "FeatureCollection"
    geoms: list[Any] = []
    crs_labels: set[str] = set()
    for i, feat in enumerate(feats, 1):
        if not isinstance(feat, Mapping) or feat.get("type") != "Feature":
            raise AOIError(f"{label}: feature {i} is not a GeoJSON Feature")
        raw = feat.get("geometry")
        try:
            geoms.append(None if raw is None else shape(raw))
        except (
            ValueError,
            TypeError,
            AttributeError,
            KeyError,
            shapely.errors.GEOSException,
        ) as err:
            raise AOIError(f"{label}: feature {i} has unreadable geometry ({err})") from err
        props = feat.get("properties")
        if isinstance(props, Mapping) and props.get("source_crs"):
            crs_labels.add(str(props["source_crs"]))
    merged = _union_parts(geoms, label=label, part="feature")
    props = dict(collection.get("properties") or {})
    origin = f" of {path.name}" if path else ""
    props.setdefault(
        "geometry_note", f"union of the {len(feats)} polygon features{origin}, as one AOI"
    )
    if len(crs_labels) == 1:
        props.setdefault("source_crs", crs_labels.pop())
    return {
        "type": "Feature",
        "id": collection.get("id"),
        "geometry": mapping(merged),
        "properties": props,
    }


def _alias_table(raw: Any) -> dict[str, tuple[str, ...]]:
    if not raw:
        return {}
    if isinstance(raw, list):
        return {"en": tuple(str(a) for a in raw)}
    return {str(k): tuple(str(a) for a in v) for k, v in dict(raw).items()}


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", _fold(text)).strip("-") or "aoi"


def catalog_dir() -> Path:
    """Folder holding the facility catalog (``SITEWATCH_AOI_DIR`` overrides)."""
    env = os.environ.get("SITEWATCH_AOI_DIR")
    if env:
        return Path(env)
    return Path(str(resources.files("sitewatch.catalog")))


def user_catalog_dir() -> Path:
    """Folder of the user's own catalog entries (written by ``sitewatch aoi new``).

    ``$SITEWATCH_AOI_PATH`` if set, else ``$XDG_CONFIG_HOME/sitewatch/aoi``, else
    ``~/.config/sitewatch/aoi``. The folder need not exist yet.

    Returns
    -------
    Path
        The folder.
    """
    env = os.environ.get("SITEWATCH_AOI_PATH")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "sitewatch" / "aoi"


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise AOIError(f"AOI file {path} does not exist; check the path") from err
    except (OSError, UnicodeDecodeError) as err:
        raise AOIError(f"cannot read AOI file {path} ({err}); it must be UTF-8 GeoJSON") from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise AOIError(
            f"AOI file {path} is not valid JSON (line {err.lineno}: {err.msg}); it must be GeoJSON"
        ) from err


def _split_layer(path: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """``FILE.gpkg:LAYER`` → (FILE.gpkg, LAYER) unless the whole string is a file."""
    p = Path(path)
    m = _GPKG_LAYER.match(str(path))
    if m and not p.exists():
        return Path(m["file"]), m["layer"]
    return p, None


def _missing(p: Path) -> AOIError:
    parts = _vector.shapefile_parts(p) if p.suffix.lower() == ".shp" else []
    if parts:
        beside = " and ".join(q.name for q in parts[:2])
        verb = "is" if len(parts) == 1 else "are"
        return AOIError(
            f"AOI file {p} does not exist, though {beside} {verb} beside it; copy the .shp "
            "too (a shapefile is several files: .shp, .shx, .dbf, .prj)"
        )
    return AOIError(f"AOI file {p} does not exist; check the path")


def load_aoi_file(path: str | os.PathLike[str], *, layer: str | None = None) -> AOI:
    """Load one AOI from a polygon file: GeoJSON, GeoPackage or Shapefile.

    Accepted files, chosen by extension:

    - ``.geojson``/``.json``: a Feature, FeatureCollection or Polygon geometry, in lon/lat
      (RFC 7946) or in the CRS a legacy ``crs`` member names (e.g.
      ``urn:ogc:def:crs:EPSG::32652``);
    - ``.gpkg``: the first feature table holding polygons, or ``layer`` (also written
      ``FILE.gpkg:LAYER``), in the CRS of ``gpkg_spatial_ref_sys``;
    - ``.shp``: a Polygon/PolygonZ/PolygonM shapefile, in the CRS of the ``.prj`` beside
      it (without one, coordinates must be lon/lat);
    - ``.zip``: an archive holding exactly one such shapefile.

    Several polygons (features, rows or records) are merged into one AOI, their union.
    The AOI id is the Feature's ``id`` for GeoJSON, else the file stem.

    Parameters
    ----------
    path : path
        The file.
    layer : str, optional
        GeoPackage table to read.

    Returns
    -------
    AOI
        Validated like every AOI (lon/lat range, validity, size).

    Raises
    ------
    AOIError
        With a one-line message naming the file, the problem and the fix, if the file is
        missing, of an unknown kind, corrupt, holds no polygon, declares no CRS while its
        coordinates look projected, or the polygon is unusable.
    """
    p, named_layer = _split_layer(path)
    layer = layer or named_layer
    if not p.exists():
        raise _missing(p)
    if p.is_dir():
        raise AOIError(f"AOI file {p} is a folder; pass the polygon file itself ({_ACCEPTED})")
    suffix = p.suffix.lower()
    if layer is not None and suffix != ".gpkg":
        raise AOIError(f"AOI file {p}: layer {layer!r} given, but only a .gpkg has layers")
    if suffix in (".geojson", ".json"):
        feature = _vector.geojson_to_lonlat(_read_json(p), path=p)
        return AOI.from_feature(feature, path=p, default_id=p.stem)
    if suffix == ".gpkg":
        read = _vector.read_gpkg_polygons(p, layer=layer)
        part, source = "row", f"layer {read.layer!r} of {p.name}"
    elif suffix == ".shp":
        read = _vector.read_shapefile_polygons(p)
        part, source = "record", p.name
    elif suffix == ".zip":
        read = _vector.read_zip_polygons(p)
        part, source = "record", f"the shapefile in {p.name}"
    elif suffix in _vector.SHAPEFILE_PARTS:
        shp = p.with_suffix(".shp")
        if shp.exists() or p.with_suffix(".SHP").exists():
            raise AOIError(f"AOI file {p} is one part of a shapefile; pass {shp.name} instead")
        raise AOIError(
            f"AOI file {p} is one part of a shapefile whose {shp.name} is missing; copy the "
            ".shp beside it and pass that"
        )
    else:
        what = f"extension {p.suffix!r}" if p.suffix else "no extension"
        raise AOIError(f"AOI file {p} has {what}, which sitewatch does not read; {_ACCEPTED}")
    geoms = _vector.to_lonlat(read.polygons, read.crs, path=p, fix=read.no_crs_fix)
    merged = _union_parts(geoms, label=f"AOI file {p}", part=part)
    n = len(geoms)
    crs = _vector.crs_label(read.crs) if read.crs is not None else None
    note = f"read from {source}" + (f" (union of {n} polygons)" if n > 1 else "")
    note += f", reprojected from {crs}" if crs and crs != "EPSG:4326" else ""
    props: dict[str, Any] = {"geometry_note": note}
    props["source_crs"] = crs or "none declared (lon/lat assumed)"
    feature = {"type": "Feature", "geometry": mapping(merged), "properties": props}
    return AOI.from_feature(feature, path=p, default_id=p.stem)


def _load_folder(root: Path, origin: str) -> dict[str, AOI]:
    out: dict[str, AOI] = {}
    for p in sorted(root.glob("*.geojson")):
        aoi = dataclasses.replace(load_aoi_file(p), origin=origin)
        if aoi.id in out:
            raise AOIError(f"AOI id {aoi.id!r} appears in {out[aoi.id].path} and {p}")
        out[aoi.id] = aoi
    return out


def load_catalog(
    directory: str | os.PathLike[str] | None = None, *, user: bool | None = None
) -> dict[str, AOI]:
    """Load every ``*.geojson`` in the catalog folder, keyed by id.

    Parameters
    ----------
    directory : path, optional
        Catalog folder; default the built-in catalog (:func:`catalog_dir`).
    user : bool, optional
        Also load the user catalog (:func:`user_catalog_dir`), whose entries override
        built-in ones with the same id (their ``origin`` is ``"user"``). Default: only
        when ``directory`` is not given.

    Returns
    -------
    dict of str to AOI
        In id order, built-in entries first.

    Raises
    ------
    AOIError
        If the folder is missing, a file is invalid, or two files of one folder share
        an id.
    """
    root = Path(directory) if directory is not None else catalog_dir()
    if not root.is_dir():
        raise AOIError(f"AOI catalog folder {root} not found; set SITEWATCH_AOI_DIR")
    out = _load_folder(root, "builtin")
    if directory is None if user is None else user:
        mine = user_catalog_dir()
        if mine.is_dir() and mine.resolve() != root.resolve():
            out.update(_load_folder(mine, "user"))
    return out


def builtin_ids() -> set[str]:
    """Ids of the built-in catalog (without the user's entries).

    Returns
    -------
    set of str
        The ids.
    """
    return set(load_catalog(catalog_dir(), user=False))


def load_aoi(ref: str, *, catalog: Mapping[str, AOI] | None = None) -> AOI:
    """Resolve a catalog id, a catalog alias, or a path to an AOI file.

    A ref is a file when it ends in one of :data:`AOI_FILE_SUFFIXES` (or
    ``.gpkg:LAYER``), contains a path separator, or names an existing file with an
    extension; see :func:`load_aoi_file` for the formats.

    Raises
    ------
    AOIError
        If nothing matches; the message lists close catalog ids.
    """
    if (
        ref.lower().endswith(AOI_FILE_SUFFIXES)
        or os.sep in ref
        or _GPKG_LAYER.match(ref)
        or (Path(ref).suffix and Path(ref).is_file())
    ):
        return load_aoi_file(ref)
    cat = load_catalog() if catalog is None else catalog
    if ref in cat:
        return cat[ref]
    folded = _fold(ref)
    # A strong alias wins over a weak one ("Kompleks Mesin Ryongsong" names the complex,
    # and is only a weak alias of the February 11 Plant).
    for want_weak in (False, True):
        for aoi in cat.values():
            if any(_fold(a) == folded for _, a, w in aoi.all_aliases() if w == want_weak):
                return aoi
    close = [k for k in cat if folded[:3] in k] or sorted(cat)
    raise AOIError(
        f"no AOI {ref!r} in the catalog; try one of: {', '.join(close[:8])} "
        "(see 'sitewatch aoi list'), or pass --aoi-file FILE (.geojson, .gpkg, .shp, .zip)"
    )


def check_aoi(aoi: AOI) -> list[str]:
    """Provenance and geometry problems of a catalog AOI (empty list if it passes).

    Geometry was already validated when the AOI was built; this adds what a catalog
    entry must carry: sources, confidence, geometry kind, countries, aliases.
    """
    p = aoi.properties
    problems: list[str] = []
    if aoi.path is not None and aoi.path.stem != aoi.id:
        problems.append(f"file name {aoi.path.name} does not match id {aoi.id!r}")
    if aoi.confidence not in CONFIDENCE_LEVELS:
        problems.append(f"confidence {aoi.confidence!r} is not one of {CONFIDENCE_LEVELS}")
    if not aoi.countries:
        problems.append("no countries (ISO 3166 alpha-2 list)")
    sources = p.get("sources") or []
    if not sources:
        problems.append("no sources: every entry needs at least one (outlet, date, supports)")
    for i, s in enumerate(sources):
        missing = [k for k in ("outlet", "supports") if not s.get(k)]
        if missing:
            problems.append(f"source {i + 1} lacks {', '.join(missing)}")
        # Undated reference works (encyclopedias, registries) carry date null.
        if s.get("date") is not None and not _DATE.fullmatch(str(s["date"])):
            problems.append(f"source {i + 1} date {s['date']!r} is not YYYY[-MM[-DD]]")
    if aoi.located:
        if aoi.geometry_kind not in GEOMETRY_KINDS:
            problems.append(f"geometry_kind {aoi.geometry_kind!r} must be one of {GEOMETRY_KINDS}")
        if not p.get("geometry_note"):
            problems.append("located AOI without geometry_note (who drew the polygon and why)")
        for pt in p.get("points") or []:
            if pt.get("lat") is None or pt.get("lon") is None:
                continue
            if not aoi.geometry.covers(Point(pt["lon"], pt["lat"])):  # type: ignore[union-attr]
                problems.append(f"sourced point {pt.get('name')!r} lies outside the polygon")
    elif not p.get("geometry_note"):
        problems.append("unlocated AOI without geometry_note saying why there is no polygon")
    for key in ("points", "candidates", "reference_points"):
        for pt in p.get(key) or []:
            problems.extend(_point_problems(pt, key))
    see = p.get("see_instead")
    if see is not None and (
        not isinstance(see, Mapping) or not see.get("id") or not see.get("note")
    ):
        problems.append("see_instead must be null or {id, note}")
    if aoi.origin == "user" and aoi.id in _builtin_ids_quiet() and not p.get("overrides"):
        problems.append(
            f"user entry {aoi.id!r} shadows the built-in entry without an 'overrides' note; "
            "say why in properties.overrides (sitewatch aoi new --override-builtin writes it)"
        )
    if not aoi.aliases:
        problems.append("no aliases")
    for ev in p.get("events") or []:
        if not ev.get("event") or not _DATE_RANGE.fullmatch(str(ev.get("date"))):
            problems.append(f"event needs text and a YYYY[-MM[-DD]][/...] date: {ev}")
    return problems


def _point_problems(pt: Any, key: str) -> list[str]:
    """Shape problems of one ``points``/``candidates``/``reference_points`` entry."""
    if not isinstance(pt, Mapping):
        return [f"{key} entry {pt!r} is not an object"]
    name = pt.get("name")
    out = [
        f"{key} entry {name!r} lacks {k}" for k in ("name", "source", "confidence") if not pt.get(k)
    ]
    lat, lon = pt.get("lat"), pt.get("lon")
    if key != "candidates" or lat is not None:
        ok = isinstance(lat, int | float) and isinstance(lon, int | float)
        if not ok or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            out.append(f"{key} entry {name!r} has no valid lat/lon ({lat!r}, {lon!r})")
    conf = pt.get("confidence")
    if conf and conf not in CONFIDENCE_LEVELS:
        out.append(f"{key} entry {name!r} confidence {conf!r} is not one of {CONFIDENCE_LEVELS}")
    return out


def _builtin_ids_quiet() -> set[str]:
    try:
        return builtin_ids()
    except AOIError:
        return set()


# --------------------------------------------------------------------------- matching


def _fold_char(c: str) -> str:
    if not (c.isalnum()):
        return " "
    decomposed = unicodedata.normalize("NFKD", c)
    kept = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    folded = unicodedata.normalize("NFC", kept).casefold()
    return "".join(ch if ch.isalnum() else " " for ch in folded)


def _fold(text: str) -> str:
    """Case-, diacritics- and punctuation-insensitive form with single spaces."""
    return " ".join("".join(_fold_char(c) for c in text).split())


def _fold_with_map(text: str) -> tuple[str, list[int]]:
    """Fold ``text`` and map each folded character back to its source index."""
    chars: list[str] = []
    index: list[int] = []
    for i, c in enumerate(text):
        for f in _fold_char(c):
            if f == " " and (not chars or chars[-1] == " "):
                continue
            chars.append(f)
            index.append(i)
    return "".join(chars), index


_HANGUL = "\uac00-\ud7a3"
_CYRILLIC_WORD = re.compile(r"^[\u0430-\u044f]+$")
# Russian case endings after folding (й → и, ё → е), longest first. A Cyrillic alias word
# is matched as its stem plus any one of these, so "порт Восточный" also finds "в порту
# Восточном" and "Тихорецк" finds "под Тихорецком".
_RU_ENDINGS_TEXT = (
    "а я у ю е и ы о ь ом ем ои еи ою ею ам ям ами ями ах ях ов ев ого его ому ему ым им "
    "ыми ими ых их ую юю ая яя ое ее ые ие ыи ии ью"
)
_RU_ENDINGS = sorted(_RU_ENDINGS_TEXT.split(), key=len, reverse=True)
_RU_STEM_STRIP = set("аеиоуыэюяь")


def _word_pattern(word: str) -> str:
    """Regex for one folded alias word; Cyrillic words accept Russian case endings."""
    if len(word) < 4 or not _CYRILLIC_WORD.match(word):
        return re.escape(word)
    stem = word
    for _ in range(2):
        if len(stem) > 3 and stem[-1] in _RU_STEM_STRIP:
            stem = stem[:-1]
    return re.escape(stem) + "(?:" + "|".join(_RU_ENDINGS) + ")?"


def _alias_pattern(alias: str) -> re.Pattern[str] | None:
    folded = _fold(alias)
    if not folded:
        return None
    body = " ".join(_word_pattern(w) for w in folded.split(" "))
    # Korean particles attach to the noun (룡성기계련합기업소에서), so a Hangul-final
    # alias may be followed by more Hangul; everything else needs a word boundary.
    tail = rf"(?=$| |[{_HANGUL}])" if re.search(f"[{_HANGUL}]$", folded) else "(?=$| )"
    return re.compile(rf"(?:^|(?<= )){body}{tail}")


@dataclass(frozen=True)
class ArticleMatch:
    """A catalog facility named in a text.

    Attributes
    ----------
    aoi_id, name : str
        The facility.
    alias : str
        The catalog alias that matched.
    language : str
        Language code of that alias.
    phrase : str
        The text exactly as written in the article.
    start : int
        Character offset of the first occurrence.
    count : int
        How many times any alias of this facility occurs.
    weak : bool
        True when only ambiguous aliases matched.
    located : bool
        Whether the facility has a polygon to watch.
    """

    aoi_id: str
    name: str
    alias: str
    language: str
    phrase: str
    start: int
    count: int
    weak: bool
    located: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(self.__dict__)


def match_article(text: str, catalog: Mapping[str, AOI]) -> list[ArticleMatch]:
    """Find which catalog facilities a text names, in order of first mention.

    Matching folds case, diacritics and punctuation and requires word boundaries
    (Hangul aliases may carry attached particles; Cyrillic alias words also match their
    Russian case forms). A facility matched only through a
    weak alias is reported with ``weak=True``.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> cat = {"x": AOI(id="x", name="February 11 Plant", geometry=None,
    ...                 aliases={"id": ("pabrik 11 Februari",)})}
    >>> [m.phrase for m in match_article("dikenal sebagai Pabrik 11 Februari.", cat)]
    ['Pabrik 11 Februari']
    """
    folded, index = _fold_with_map(text)
    found: list[ArticleMatch] = []
    for aoi in catalog.values():
        hits: list[tuple[int, int, str, str, bool]] = []
        for lang, alias, weak in aoi.all_aliases():
            pat = _alias_pattern(alias)
            if pat is None:
                continue
            hits.extend((m.start(), m.end(), alias, lang, weak) for m in pat.finditer(folded))
        if not hits:
            continue
        # Prefer a strong alias; among those the earliest and then the longest.
        strong = [h for h in hits if not h[4]]
        pool = strong or hits
        s, e, alias, lang, weak = min(pool, key=lambda h: (h[0], -(h[1] - h[0])))
        spans = {(h[0], h[1]) for h in pool}
        phrase = text[index[s] : index[e - 1] + 1]
        found.append(
            ArticleMatch(
                aoi.id,
                aoi.name,
                alias,
                lang,
                phrase,
                index[s],
                len(spans),
                weak=not strong,
                located=aoi.located,
            )
        )
    return sorted(found, key=lambda m: (m.weak, m.start))
