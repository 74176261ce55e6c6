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

from sitewatch._lazy import lazy_names

# Names are imported on first use (PEP 562), so ``import sitewatch`` and the command
# line's start-up do not pay for numpy, scipy, shapely and rasterio until they are needed.
_LAZY = {
    "AOI": "sitewatch.aoi",
    "ArticleMatch": "sitewatch.aoi",
    "load_aoi": "sitewatch.aoi",
    "load_aoi_file": "sitewatch.aoi",
    "load_catalog": "sitewatch.aoi",
    "match_article": "sitewatch.aoi",
    "SyntheticSeries": "sitewatch.data.synthetic",
    "RadarOptions": "sitewatch.detect.sar_options",
    "log_ratio_test": "sitewatch.detect.sar",
    "sequential_omnibus": "sitewatch.detect.sar",
    "synthetic_series": "sitewatch.data.synthetic",
    "AOIError": "sitewatch.errors",
    "DataError": "sitewatch.errors",
    "InputError": "sitewatch.errors",
    "OutputError": "sitewatch.errors",
    "SitewatchError": "sitewatch.errors",
    "SitewatchWarning": "sitewatch.errors",
    "SourceError": "sitewatch.errors",
    "Grid": "sitewatch.grid",
    "ChangeResult": "sitewatch.pipeline",
    "detect_change": "sitewatch.pipeline",
    "radar_pair": "sitewatch.radar",
    "radar_series": "sitewatch.radar",
    "RunData": "sitewatch.report",
    "build_report": "sitewatch.report",
    "load_run": "sitewatch.report",
    "write_result": "sitewatch.report",
    "DetectJob": "sitewatch.run",
    "Run": "sitewatch.run",
    "SceneQuery": "sitewatch.run",
    "TimelineJob": "sitewatch.run",
    "Scene": "sitewatch.scene",
    "detect_series": "sitewatch.series",
    "timeline_files": "sitewatch.series",
    "Timeline": "sitewatch.timeline",
    "time_steps": "sitewatch.timeline",
    "track_changes": "sitewatch.timeline",
}


__getattr__, __dir__ = lazy_names("sitewatch", _LAZY, globals())


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
    "RadarOptions",
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
    "log_ratio_test",
    "match_article",
    "radar_pair",
    "radar_series",
    "sequential_omnibus",
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
