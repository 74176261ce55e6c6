"""``sitewatch detect``: change between two local images, optionally inside an AOI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sitewatch.aoi import AOI, load_aoi, load_aoi_file
from sitewatch.cli._common import (
    AOI_FILE_HELP,
    add_detector_options,
    add_json,
    add_redact_option,
    add_scene_options,
    cache_from_args,
    detector_options,
    emit_json,
    positive_float,
    summarise_result,
)
from sitewatch.detect.run import DetectOptions
from sitewatch.errors import DataError, InputError
from sitewatch.pipeline import ChangeResult, detect_change
from sitewatch.report import check_output_dir, input_paths, write_result

__all__ = ["register", "run_detection"]


def register(sub: Any) -> None:
    """Add the ``detect`` subcommand."""
    p = sub.add_parser(
        "detect",
        help="flag change between two images (files or band folders)",
        description="Flag change between a before and an after image. Each is a raster "
        "file (GeoTIFF/COG, any band count) or a folder of one-file-per-band rasters "
        "(e.g. Sentinel-2 *_B02.tif ...), or a downloaded product: a Sentinel-2 .SAFE folder, "
        "its .zip or MTD_MSIL2A.xml, a Landsat Collection 2 Level-2 .tar or folder. With an "
        "AOI the images are resampled onto the AOI's UTM grid; without one, onto the part of "
        "the before grid both cover.",
    )
    p.add_argument(
        "aoi",
        nargs="?",
        metavar="AOI_ID",
        help="catalog id (see 'sitewatch aoi list') or a .geojson path",
    )
    p.add_argument("--aoi-file", metavar="FILE", help=AOI_FILE_HELP)
    p.add_argument(
        "--before",
        required=True,
        metavar="PATH|DATE",
        help="earlier image: a file or band folder, a Sentinel-2 .SAFE folder or .zip "
        "(or its MTD_MSIL2A.xml), a Landsat C2 L2 .tar or folder, or a date / month / "
        "START/END window to search (needs an AOI)",
    )
    p.add_argument("--after", required=True, metavar="PATH|DATE", help="later image, likewise")
    add_scene_options(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--threshold", type=float, metavar="T", help="fixed score threshold (overrides the rule)"
    )
    add_detector_options(p)
    p.add_argument(
        "--resolution",
        type=positive_float,
        metavar="M",
        help="AOI grid pixel size in metres (default: native)",
    )
    p.add_argument(
        "--pixel-size",
        type=positive_float,
        metavar="M",
        dest="pixel_size",
        help="ground pixel size for images without CRS (output in pixel coords)",
    )
    p.add_argument(
        "--before-date",
        metavar="YYYY-MM-DD",
        dest="before_date",
        help="acquisition date of a local before image whose files do not say it",
    )
    p.add_argument(
        "--after-date",
        metavar="YYYY-MM-DD",
        dest="after_date",
        help="acquisition date of a local after image, likewise",
    )
    p.add_argument(
        "--bands",
        metavar="NAMES",
        help="comma-separated names of the bands of both images, in file order (a band "
        "folder: its files sorted by name), e.g. blue,green,red,nir; for images whose file "
        "names or band descriptions do not say (B02..., SR_B4..., red/green/blue/nir... are "
        "recognised)",
    )
    p.add_argument(
        "--max-memory",
        default=DEFAULT_MAX_MEMORY,
        metavar="SIZE",
        dest="max_memory",
        help="memory budget, e.g. 800MB or 4GB (default %(default)s); larger rasters are "
        "processed block-wise in strips (IR-MAD only)",
    )
    p.add_argument(
        "--no-report",
        dest="report",
        action="store_false",
        help="skip quicklooks, chips and report.html (polygons, rasters and manifest only; "
        "'sitewatch report DIR' adds them later)",
    )
    add_redact_option(p)
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    add_json(p)
    p.set_defaults(func=main)


DEFAULT_MAX_MEMORY = "2GB"


def resolve_aoi(ref: str | None, aoi_file: str | None) -> AOI | None:
    """The AOI named by a positional id/path or ``--aoi-file`` (not both)."""
    if ref and aoi_file:
        raise InputError("give either AOI_ID or --aoi-file, not both")
    if aoi_file:
        return load_aoi_file(aoi_file)
    return load_aoi(ref) if ref else None


def image_window(ref: str, which: str) -> tuple[str, str]:
    """The date window an image argument that is not an existing path names.

    Raises
    ------
    DataError
        If ``ref`` looks like a path that does not exist.
    InputError
        If ``ref`` starts like a date but is not one (``2023-10..2023-11``).
    """
    from sitewatch.sources.stac import looks_like_date, parse_window

    if not looks_like_date(ref):
        raise DataError(f"{ref} does not exist; check the path")
    try:
        return parse_window(ref)
    except InputError as err:
        raise InputError(
            f"--{which} {ref} is neither an existing file or folder nor a date: {err}"
        ) from None


def resolve_image(
    ref: str,
    aoi: AOI | None,
    args: argparse.Namespace,
    which: str,
    *,
    cache: Any = None,
    stats: Any = None,
) -> Any:
    """A local path as is; a date or window → the clearest STAC scene over the AOI.

    With ``--composite``, a window becomes a median composite of the clearest scenes.
    """
    from sitewatch.sources.stac import (
        COLLECTIONS,
        CompositeSource,
        scene_source,
        search_scenes,
        stac_url,
    )

    if Path(ref).expanduser().exists():
        return str(Path(ref).expanduser())
    start, end = image_window(ref, which)
    if aoi is None:
        raise InputError(
            f"--{which} {ref} is a date: name an AOI (AOI_ID or --aoi-file) to search scenes over"
        )
    record: dict[str, Any] = {}
    scenes = search_scenes(
        aoi,
        start,
        end,
        source=args.source,
        url=args.stac_url,
        max_cloud=args.max_cloud,
        cache=cache,
        stats=stats,
        record=record,
        requester_pays=getattr(args, "requester_pays", False),
    )
    fallback = record.get("fallback")
    if fallback and not (args.quiet or args.json):
        print(f"{which}: {fallback['reason']}; using {fallback['collection']}", file=sys.stderr)
    if not scenes:
        raise DataError(
            f"no {args.source} scene over {aoi.id} between {start} and {end}; "
            "widen the window or raise --max-cloud"
        )
    best = scenes[0]
    if best.clear_fraction is not None and best.clear_fraction <= 0:
        raise DataError(
            f"no scene between {start} and {end} has a clear pixel over {aoi.id}; widen the window"
        )
    search = {
        "stac_url": stac_url(args.stac_url, source=args.source),
        "service": record.get("profile"),
        "source": args.source,
        "window": [start, end],
        "collection": record.get("collection"),
        "fallback": fallback,
        "dropped": record.get("dropped", []),
        "skipped": record.get("skipped", []),
        "candidates": [
            {
                "item_id": s.item_id,
                "collection": s.collection,
                "item_ids": list(s.item_ids or (s.item_id,)),
                "clear_fraction": s.clear_fraction,
                "cloud_cover": s.cloud_cover,
            }
            for s in scenes
        ],
    }
    mask_key = COLLECTIONS[args.source][1]
    chosen = [s for s in scenes if s.clear_fraction is None or s.clear_fraction > 0]
    chosen = chosen[: max(1, args.composite_max)]
    if args.composite and len(chosen) > 1:
        source: Any = CompositeSource(
            [list(s.items) or [s.item] for s in chosen],  # one part per acquisition
            mask_key=mask_key,
            aoi=aoi,
            cache=cache,
            stats=stats,
            search=search,
        )
        what = f"median of {len(chosen)} acquisitions {source.acquired}"
    else:
        source = scene_source(
            list(best.items) or [best.item],
            mask_key=mask_key,
            aoi=aoi,
            cache=cache,
            stats=stats,
            search=search,
        )
        clear = "" if best.clear_fraction is None else f", AOI {best.clear_fraction:.0%} clear"
        granules = f", {best.granules} granules" if best.granules > 1 else ""
        what = f"{best.datetime[:10]} {best.item_id} ({len(scenes)} candidates{clear}{granules})"
    if not (args.quiet or args.json):
        print(f"{which}: {what}", file=sys.stderr)
    return source


def run_detection(
    before: Any,
    after: Any,
    out: str,
    *,
    aoi: AOI | None,
    options: DetectOptions,
    overwrite: bool,
    resolution: float | None = None,
    pixel_size: float | None = None,
    bands: str | list[str] | None = None,
    before_date: str | None = None,
    after_date: str | None = None,
    command: list[str] | None = None,
    max_memory: int | None = None,
    report: bool = True,
    redact_paths: bool = False,
) -> tuple[Any, Path]:
    """Detect and write; shared by ``detect`` and ``demo``.

    With ``max_memory``, a pair whose in-memory run would need more is processed
    block-wise (:mod:`sitewatch.blocks`).
    """
    inputs = input_paths(before, after, aoi.path if aoi is not None else None)
    check_output_dir(out, overwrite=overwrite, inputs=inputs)
    command = command if command is not None else ["sitewatch", *sys.argv[1:]]
    if max_memory is not None:
        from sitewatch.blocks import estimate_memory
        from sitewatch.pipeline import plan_detection

        bsrc, asrc, names, _, grid, _, _ = plan_detection(
            before,
            after,
            aoi=aoi,
            resolution=resolution,
            pixel_size=pixel_size,
            bands=bands,
            before_date=before_date,
            after_date=after_date,
            method=options.method,
        )
        need = estimate_memory(grid.height, grid.width, len(names))
        if need > max_memory:
            from sitewatch.pipeline import check_pair

            check_pair(bsrc, asrc)
            return _run_blockwise(
                bsrc,
                asrc,
                names,
                grid,
                out,
                aoi=aoi,
                options=options,
                overwrite=overwrite,
                resolution=resolution,
                command=command,
                max_memory=max_memory,
                need=need,
                report=report,
                inputs=inputs,
                redact_paths=redact_paths,
            )
    result = detect_change(
        before,
        after,
        aoi=aoi,
        options=options,
        resolution=resolution,
        pixel_size=pixel_size,
        bands=bands,
        before_date=before_date,
        after_date=after_date,
    )
    written = write_result(
        result,
        out,
        overwrite=overwrite,
        command=command,
        report=report,
        redact_paths=redact_paths,
    )
    return result, written


def _run_blockwise(
    bsrc: Any,
    asrc: Any,
    names: list[str],
    grid: Any,
    out: str,
    *,
    aoi: AOI | None,
    options: DetectOptions,
    overwrite: bool,
    resolution: float | None,
    command: list[str],
    max_memory: int,
    need: int,
    report: bool = True,
    inputs: list[Path] | None = None,
    redact_paths: bool = False,
) -> tuple[Any, Path]:
    from dataclasses import replace

    import rasterio

    from sitewatch.blocks import detect_blockwise, gdal_cache_mb
    from sitewatch.pipeline import annotate_features, pair_provenance
    from sitewatch.report import atomic_output_dir
    from sitewatch.report.write import finish_output

    with (
        rasterio.Env(GDAL_CACHEMAX=gdal_cache_mb(max_memory)),
        atomic_output_dir(out, overwrite=overwrite, inputs=inputs or ()) as tmp,
    ):
        res = detect_blockwise(
            bsrc, asrc, names, grid, tmp, aoi=aoi, options=options, max_memory=max_memory
        )
        annotate_features(
            res.features, bsrc.acquired, asrc.acquired, options, res.threshold, res.diagnostics
        )
        res.diagnostics["memory"] = {"budget_bytes": max_memory, "in_memory_estimate": need}
        res = replace(
            res,
            provenance=pair_provenance(
                bsrc,
                asrc,
                aoi=aoi,
                options=options,
                resolution=resolution,
                pixel_size=None,
                max_memory=max_memory,
                blockwise=True,
            ),
        )
        finish_output(res, tmp, command=command, report=report, redact_paths=redact_paths)
    return res, Path(out).expanduser().absolute()


def report(result: ChangeResult, out: Path, args: argparse.Namespace) -> None:
    """Print the summary (text or JSON) unless ``--quiet``."""
    if args.json:
        emit_json(
            {
                "out": str(out),
                "files": sorted(p.name for p in out.iterdir()),
                "diagnostics": result.diagnostics,
                "timings_s": result.timings,
                "changes": [f["properties"] for f in result.features],
            }
        )
    elif not args.quiet:
        print(summarise_result(result, out))


def main(args: argparse.Namespace) -> int:
    """Run ``sitewatch detect``."""
    from sitewatch.blocks import parse_size
    from sitewatch.sources._http import NetStats

    max_memory = parse_size(args.max_memory)
    for ref, which in ((args.before, "before"), (args.after, "after")):
        if not Path(ref).expanduser().exists():
            image_window(ref, which)  # a bad date or a missing path fails before any work
            if getattr(args, f"{which}_date"):
                raise InputError(
                    f"--{which}-date dates a local image; --{which} {ref} is searched by date, "
                    "and each scene found carries its own"
                )
    aoi = resolve_aoi(args.aoi, args.aoi_file)
    check_output_dir(
        args.out,
        overwrite=args.overwrite,
        inputs=input_paths(args.before, args.after, aoi.path if aoi is not None else None),
    )
    cache, stats = cache_from_args(args), NetStats()
    result, out = run_detection(
        resolve_image(args.before, aoi, args, "before", cache=cache, stats=stats),
        resolve_image(args.after, aoi, args, "after", cache=cache, stats=stats),
        args.out,
        aoi=aoi,
        options=detector_options(args),
        overwrite=args.overwrite,
        resolution=args.resolution,
        pixel_size=args.pixel_size,
        bands=args.bands,
        before_date=args.before_date,
        after_date=args.after_date,
        max_memory=max_memory,
        report=args.report,
        redact_paths=args.redact_paths,
        command=args.command_line,
    )
    report(result, out, args)
    return 0
