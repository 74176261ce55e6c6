"""GeoDataFrames of change polygons (optional ``geo`` extra: geopandas)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sitewatch.errors import InputError

__all__ = ["features_to_geodataframe"]

GEO_EXTRA_HINT = (
    "needs the 'geo' extra (geopandas), which is not installed: in the sitewatch folder run "
    ".venv/bin/pip install --only-binary=:all: '.[geo]'"
)


def features_to_geodataframe(features: Sequence[dict[str, Any]], *, lonlat: bool) -> Any:
    """One row per change polygon, its properties as columns, indexed by id.

    Parameters
    ----------
    features : sequence of dict
        GeoJSON Features as sitewatch writes them (``properties["id"]`` = ``c001`` …).
    lonlat : bool
        True when the coordinates are EPSG:4326 lon/lat; False for pixel coordinates
        of images without a CRS (the frame then has no CRS).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns: every property (``centroid`` and ``bbox`` split into
        ``centroid_lon``/``centroid_lat`` and ``bbox_*``) and ``geometry``.

    Raises
    ------
    InputError
        If geopandas is not installed.
    """
    try:
        import geopandas as gpd
    except ImportError:
        raise InputError(f"to_geodataframe() {GEO_EXTRA_HINT}") from None
    from shapely.geometry import shape

    rows = []
    for f in features:
        props = dict(f.get("properties") or {})
        centroid = props.pop("centroid", None) or [None, None]
        bbox = props.pop("bbox", None) or [None] * 4
        x, y = ("lon", "lat") if lonlat else ("col", "row")
        props[f"centroid_{x}"], props[f"centroid_{y}"] = centroid[0], centroid[1]
        for key, value in zip(("west", "south", "east", "north"), bbox, strict=True):
            props[f"bbox_{key}"] = value
        props["geometry"] = shape(f["geometry"]) if f.get("geometry") else None
        rows.append(props)
    columns = None if rows else ["id", "geometry"]
    gdf = gpd.GeoDataFrame(
        rows, columns=columns, geometry="geometry", crs="EPSG:4326" if lonlat else None
    )
    if "id" in gdf.columns:
        gdf = gdf.set_index("id", drop=False)
        gdf.index.name = None
    return gdf
