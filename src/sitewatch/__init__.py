"""sitewatch: watch named facilities in public satellite imagery and flag new construction.

Examples
--------
>>> import sitewatch as sw
>>> aoi = sw.load_aoi("feb11-plant")
>>> aoi.name
'February 11 Plant'

A whole job, as ``sitewatch detect`` runs it (see :mod:`sitewatch.run`)::

    from sitewatch import run
    done = run.detect(sw.DetectJob(before="2023-10", after="2024-10", out="f11",
                                   aoi="feb11-plant", scenes=sw.SceneQuery(composite=True)))
    done.result.features, done.out
"""

from importlib.metadata import PackageNotFoundError, version

from sitewatch.aoi import AOI, ArticleMatch, load_aoi, load_aoi_file, load_catalog, match_article
from sitewatch.data.synthetic import SyntheticSeries, synthetic_series
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
from sitewatch.report import RunData, build_report, load_run, write_result
from sitewatch.run import DetectJob, Run, SceneQuery, TimelineJob
from sitewatch.scene import Scene
from sitewatch.series import detect_series, timeline_files
from sitewatch.timeline import Timeline, time_steps, track_changes

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
    "DetectJob",
    "Grid",
    "InputError",
    "OutputError",
    "Run",
    "RunData",
    "Scene",
    "SceneQuery",
    "SitewatchError",
    "SitewatchWarning",
    "SourceError",
    "SyntheticSeries",
    "Timeline",
    "TimelineJob",
    "__version__",
    "build_report",
    "demo_paths",
    "detect_change",
    "detect_series",
    "load_aoi",
    "load_aoi_file",
    "load_catalog",
    "load_run",
    "match_article",
    "synthetic_series",
    "time_steps",
    "timeline_files",
    "track_changes",
    "write_result",
]


def demo_paths() -> dict:
    """Paths of the bundled demo sample: ``before``, ``after``, ``aoi``, ``source``."""
    from sitewatch.data import demo_paths as _paths

    return _paths()
