"""Writing results: change polygons, score rasters and the manifest, atomically."""

from sitewatch.report.output import atomic_output_dir, check_output_dir
from sitewatch.report.write import write_result

__all__ = ["atomic_output_dir", "check_output_dir", "write_result"]
