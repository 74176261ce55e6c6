"""Writing results: polygons, rasters, quicklooks, the HTML report and the manifest."""

from sitewatch.report.html import build_report
from sitewatch.report.output import atomic_output_dir, check_output_dir, input_paths
from sitewatch.report.run import RunData, load_run
from sitewatch.report.write import write_result

__all__ = [
    "RunData",
    "atomic_output_dir",
    "build_report",
    "check_output_dir",
    "input_paths",
    "load_run",
    "write_result",
]
