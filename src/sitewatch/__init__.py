"""sitewatch: watch named facilities in public satellite imagery and flag new construction.

Examples
--------
>>> import sitewatch as sw
>>> aoi = sw.load_aoi("feb11-plant")
>>> aoi.name
'February 11 Plant'
"""

from importlib.metadata import PackageNotFoundError, version

from sitewatch.aoi import AOI, ArticleMatch, load_aoi, load_aoi_file, load_catalog, match_article
from sitewatch.errors import (
    AOIError,
    DataError,
    InputError,
    OutputError,
    SitewatchError,
    SitewatchWarning,
    SourceError,
)
from sitewatch.grid import Grid
from sitewatch.pipeline import ChangeResult, detect_change
from sitewatch.report import write_result
from sitewatch.scene import Scene

try:
    __version__ = version("sitewatch")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "AOI",
    "AOIError",
    "ArticleMatch",
    "ChangeResult",
    "DataError",
    "Grid",
    "InputError",
    "OutputError",
    "Scene",
    "SitewatchError",
    "SitewatchWarning",
    "SourceError",
    "__version__",
    "detect_change",
    "load_aoi",
    "load_aoi_file",
    "load_catalog",
    "match_article",
    "write_result",
]
