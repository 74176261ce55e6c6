"""The library API that runs a whole job: inputs → scenes → engine → output folder.

``sitewatch detect``, ``sitewatch timeline``, ``sitewatch demo``, :mod:`sitewatch.batch`
and the notebooks all call :func:`detect` or :func:`timeline` with a typed job spec; the
command line only parses arguments into a spec, calls these and prints. Data flows one
way: spec → AOI and scenes (:func:`resolve_scene`: a local path as is, a date window
searched in a STAC catalog) → detection engine (:mod:`sitewatch.pipeline`, or
:mod:`sitewatch.blocks` for a raster larger than the memory budget) → output folder
(:mod:`sitewatch.report`).

Examples
--------
>>> from sitewatch.run import DetectJob, SceneQuery
>>> job = DetectJob(before="2020-06", after="2024-10", out="f11", aoi="feb11-plant",
...                 scenes=SceneQuery(composite=True))
>>> job.scenes.source, job.options.method
('s2', 'auto')
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sitewatch.detect.options import STEP_FDR, TIMELINE_MODELS, DetectOptions
from sitewatch.detect.sar_options import RADAR_SOURCES, RadarOptions
from sitewatch.errors import DataError, InputError, arg

if TYPE_CHECKING:
    from sitewatch.aoi import AOI

__all__ = [
    "DetectJob",
    "Run",
    "SceneQuery",
    "TimelineJob",
    "detect",
    "image_window",
    "resolve_aoi",
    "resolve_scene",
    "stac_series",
    "timeline",
]


def _opt(cli: str, python: str) -> str:
    """An option as the user names it: ``--from`` on the command line, ``start=`` in Python."""
    return arg(cli) if arg(cli).startswith("--") else f"{python}="


Progress = Callable[[str], None]
"""Receives one line of progress (which scene was chosen, a fallback, a skipped step)."""


@dataclass(frozen=True)
class SceneQuery:
    """How a date window becomes a scene: catalog, collection, clouds, compositing, cache.

    Attributes
    ----------
    source : {"s2", "landsat", "s1", "s2,s1"}
        ``"s1"``: Sentinel-1 RTC radar, ``"s2,s1"``: optical and radar fused (timelines);
        both are run by :mod:`sitewatch.radar` with the job's ``radar`` options.
    stac_url : str, optional
        A service (``"earth-search"``, ``"planetary-computer"``) or a STAC API URL; see
        :func:`sitewatch.sources.profiles.resolve_profile`.
    requester_pays : bool
        Read requester-pays S3 assets with the configured AWS credentials.
    max_cloud : float, optional
        Ignore scenes whose scene-wide cloud cover exceeds this percentage.
    composite : bool
        A window becomes the per-pixel median of its clearest scenes.
    composite_max : int
        Most acquisitions in a composite.
    cache : str, bool or None
        A cache folder; True/None: the default (``$SITEWATCH_CACHE`` or
        ``~/.cache/sitewatch``); False: no cache.
    """

    source: str = "s2"
    stac_url: str | None = None
    requester_pays: bool = False
    max_cloud: float | None = None
    composite: bool = False
    composite_max: int = 5
    cache: str | bool | None = None

    def open_cache(self) -> Any:
        """The :class:`~sitewatch.sources.cache.Cache` this query asks for (or None)."""
        from sitewatch.sources.cache import open_cache

        folder = self.cache if isinstance(self.cache, str) else None
        return open_cache(folder, enabled=self.cache is not False)


@dataclass(frozen=True)
class DetectJob:
    """One before/after comparison written to an output folder.

    Attributes
    ----------
    before, after : str, path or source
        A raster file, band folder or downloaded product; a date, month or
        ``START/END`` window to search (needs ``aoi``); or an opened source.
    out : str or path
        Output folder (created; see :func:`sitewatch.report.check_output_dir`).
    aoi : str, AOI or None
        Catalog id, AOI file path, or an :class:`~sitewatch.aoi.AOI`.
    options : DetectOptions
    scenes : SceneQuery
        How date windows become scenes.
    resolution, pixel_size : float, optional
        AOI grid pixel size (m); ground pixel size of images without a CRS.
    bands : str or list of str, optional
        Band names of local images, in file order.
    before_date, after_date : str, optional
        Acquisition dates of local images whose files do not say.
    max_memory : int, optional
        Memory budget in bytes: a larger raster is read and written block by block
        (its scores go to temporary files beside the output, not to memory).
    threads : int, optional
        Threads the detection engine uses (default every core, or
        ``SITEWATCH_THREADS``); the result does not depend on it.
    report : bool
        Write quicklooks, chips and ``report.html``.
    redact_paths : bool
        Record inputs by file name and hash only.
    overwrite : bool
        Replace an earlier sitewatch run folder at ``out``.
    command : tuple of str, optional
        The command line recorded in the manifest (None: a Python call).
    radar : RadarOptions
        The radar tests' options, for ``scenes.source = "s1"`` (see :mod:`sitewatch.radar`).
    """

    before: Any
    after: Any
    out: str | Path
    aoi: str | AOI | None = None
    options: DetectOptions = field(default_factory=DetectOptions)
    scenes: SceneQuery = field(default_factory=SceneQuery)
    resolution: float | None = None
    pixel_size: float | None = None
    bands: str | Sequence[str] | None = None
    before_date: str | None = None
    after_date: str | None = None
    max_memory: int | None = None
    threads: int | None = None
    report: bool = True
    redact_paths: bool = False
    overwrite: bool = False
    command: tuple[str, ...] | None = None
    radar: RadarOptions = field(default_factory=RadarOptions)


@dataclass(frozen=True)
class TimelineJob:
    """A dated series followed through time, written to an output folder.

    Give either ``images`` (local images, band folders or products) or ``start``,
    ``end`` and ``every`` (one scene per step, searched over ``aoi``).

    Attributes
    ----------
    out : str or path
    aoi : str, AOI or None
        Required for a search; optional with ``images`` (their overlap).
    images : tuple
        Local images (paths or sources).
    start, end : str, optional
        Period searched (dates or months).
    every : str
        Step (``1M``, ``3M``, ``1Y`` ...).
    dates : str or list of str, optional
        Acquisition dates of the ``images``, one each.
    min_persistence : float
        Drop regions flagged on less than this share of the later clear dates.
    model : {"auto", "step", "pairs"}
        How the series decides (:func:`sitewatch.timeline.track_changes`): ``auto`` tests
        one lasting step per pixel over the whole series when it has at least 12 dates,
        and compares every date with the first otherwise.
    fdr : float
        False-discovery share of the step model's threshold.
    options, scenes, resolution, bands, redact_paths, overwrite, command, radar
        As for :class:`DetectJob`; ``scenes.source`` ``"s1"`` (radar) or ``"s2,s1"``
        (optical and radar, fused) runs :func:`sitewatch.radar.timeline_radar`.
    """

    out: str | Path
    aoi: str | AOI | None = None
    images: tuple[Any, ...] = ()
    start: str | None = None
    end: str | None = None
    every: str = "3M"
    dates: str | Sequence[str] | None = None
    min_persistence: float = 0.5
    model: str = "auto"
    fdr: float = STEP_FDR
    options: DetectOptions = field(default_factory=DetectOptions)
    scenes: SceneQuery = field(default_factory=SceneQuery)
    resolution: float | None = None
    bands: str | Sequence[str] | None = None
    redact_paths: bool = False
    overwrite: bool = False
    command: tuple[str, ...] | None = None
    radar: RadarOptions = field(default_factory=RadarOptions)


@dataclass(frozen=True)
class Run:
    """What a job produced.

    Attributes
    ----------
    result : ChangeResult
        Polygons, rasters, diagnostics and provenance.
    out : Path
        The output folder written.
    timeline : Timeline or None
        The tracked regions (timeline jobs).
    """

    result: Any
    out: Path
    timeline: Any = None

    def to_geodataframe(self) -> Any:
        """The change polygons as a ``geopandas.GeoDataFrame`` (the ``geo`` extra).

        Same as ``run.result.to_geodataframe()``: one row per polygon (index ``c001``
        …), its attributes as columns, EPSG:4326.

        Raises
        ------
        InputError
            If geopandas is not installed.
        """
        return self.result.to_geodataframe()


# --------------------------------------------------------------------------- inputs


def resolve_aoi(ref: str | AOI | None, aoi_file: str | None = None) -> AOI | None:
    """The AOI named by a catalog id or path, or by an AOI file (not both)."""
    from sitewatch.aoi import AOI, load_aoi, load_aoi_file

    if isinstance(ref, AOI):
        return ref.require_located()
    if ref and aoi_file:
        raise InputError(f"give either an AOI id or {arg('aoi_file')}, not both")
    if aoi_file:
        return load_aoi_file(aoi_file)
    # An unlocated catalog entry stops here with one line naming where to go instead.
    return load_aoi(ref).require_located() if ref else None


def _exists(ref: Any) -> bool:
    return not isinstance(ref, str | Path) or Path(ref).expanduser().exists()


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

    if not looks_like_date(str(ref)):
        raise DataError(f"{ref} does not exist; check the path")
    try:
        return parse_window(str(ref))
    except InputError as err:
        raise InputError(
            f"{arg(which)} {ref} is neither an existing file or folder nor a date: {err}"
        ) from None


def resolve_scene(
    ref: Any,
    aoi: AOI | None,
    which: str,
    *,
    scenes: SceneQuery,
    cache: Any = None,
    stats: Any = None,
    progress: Progress | None = None,
) -> Any:
    """A local path or source as is; a date or window → the clearest STAC scene over the AOI.

    With ``scenes.composite``, a window becomes a median composite of the clearest
    acquisitions.

    Raises
    ------
    DataError
        No scene, or none with a clear AOI pixel, in the window.
    """
    from sitewatch.sources.stac import (
        COLLECTIONS,
        CompositeSource,
        scene_source,
        search_scenes,
        stac_url,
    )

    if _exists(ref):
        return str(Path(ref).expanduser()) if isinstance(ref, str | Path) else ref
    start, end = image_window(ref, which)
    if aoi is None:
        raise InputError(
            f"{arg(which)} {ref} is a date: name an AOI (an AOI id or {arg('aoi_file')}) "
            "to search scenes over"
        )
    record: dict[str, Any] = {}
    found = search_scenes(
        aoi,
        start,
        end,
        source=scenes.source,
        url=scenes.stac_url,
        max_cloud=scenes.max_cloud,
        cache=cache,
        stats=stats,
        record=record,
        requester_pays=scenes.requester_pays,
    )
    fallback = record.get("fallback")
    if fallback and progress is not None:
        progress(f"{which}: {fallback['reason']}; using {fallback['collection']}")
    if not found:
        raise DataError(
            f"no {scenes.source} scene over {aoi.id} between {start} and {end}; "
            f"widen the window or raise {arg('max_cloud')}"
        )
    best = found[0]
    if best.clear_fraction is not None and best.clear_fraction <= 0:
        raise DataError(
            f"no scene between {start} and {end} has a clear pixel over {aoi.id}; widen the window"
        )
    search = {
        "stac_url": stac_url(scenes.stac_url, source=scenes.source),
        "service": record.get("profile"),
        "source": scenes.source,
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
            for s in found
        ],
    }
    mask_key = COLLECTIONS[scenes.source][1]
    opts: dict[str, Any] = {"mask_key": mask_key, "aoi": aoi, "cache": cache, "stats": stats}
    chosen = [s for s in found if s.clear_fraction is None or s.clear_fraction > 0]
    chosen = chosen[: max(1, scenes.composite_max)]
    if scenes.composite and len(chosen) > 1:
        source: Any = CompositeSource(
            [list(s.items) or [s.item] for s in chosen],  # one part per acquisition
            search=search,
            **opts,
        )
        what = f"median of {len(chosen)} acquisitions {source.acquired}"
    else:
        source = scene_source(list(best.items) or [best.item], search=search, **opts)
        clear = "" if best.clear_fraction is None else f", AOI {best.clear_fraction:.0%} clear"
        granules = f", {best.granules} granules" if best.granules > 1 else ""
        what = f"{best.datetime[:10]} {best.item_id} ({len(found)} candidates{clear}{granules})"
    if progress is not None:
        progress(f"{which}: {what}")
    return source


def stac_series(
    aoi: AOI,
    start: str,
    end: str,
    every: str,
    *,
    scenes: SceneQuery,
    cache: Any = None,
    stats: Any = None,
    progress: Progress | None = None,
) -> list[Any]:
    """One scene per step of ``every`` between ``start`` and ``end`` (steps without one skipped).

    Raises
    ------
    DataError
        If fewer than two steps have a clear scene over the AOI.
    """
    from sitewatch.sources.stac import parse_period
    from sitewatch.timeline import time_steps

    start, end = parse_period(start, end)
    time_steps(start, end, every)  # a bad step fails before any search
    sources = []
    for a, b in time_steps(start, end, every):
        try:
            sources.append(
                resolve_scene(
                    f"{a}/{b}",
                    aoi,
                    f"{a}/{b}",
                    scenes=scenes,
                    cache=cache,
                    stats=stats,
                    progress=progress,
                )
            )
        except DataError as err:  # no (clear) scene in this step: a gap, not a failure
            if progress is not None:
                progress(f"{a}/{b}: skipped ({err})")
    if len(sources) < 2:
        raise DataError(
            f"only {len(sources)} step(s) of {every} between {start} and {end} have a "
            f"clear scene over the AOI; widen the period or use a longer {arg('every')}"
        )
    return sources


# --------------------------------------------------------------------------- jobs


def _command(job: DetectJob | TimelineJob) -> list[str] | None:
    return list(job.command) if job.command is not None else None


def detect(job: DetectJob, *, progress: Progress | None = None) -> Run:
    """Run a before/after job and write its output folder.

    Dates are searched over the AOI (see :func:`resolve_scene`); a pair whose in-memory
    run would need more than ``job.max_memory`` is processed block-wise.

    Parameters
    ----------
    job : DetectJob
    progress : callable, optional
        Receives a line for each scene chosen (and each fallback).

    Returns
    -------
    Run

    Raises
    ------
    InputError, DataError, OutputError
        Bad input (exit code 2 on the command line).
    SourceError
        A catalog or image that cannot be read after retries (exit code 3).
    """
    from sitewatch.report import check_output_dir, input_paths
    from sitewatch.sources._http import NetStats

    if job.scenes.source in RADAR_SOURCES:  # Sentinel-1: sitewatch.radar runs it
        from sitewatch.radar import detect_radar

        return detect_radar(job, progress=progress)
    if job.threads is not None and job.threads < 1:
        raise InputError(f"{arg('threads')} {job.threads} must be 1 or more")
    aoi = resolve_aoi(job.aoi)
    for ref, which in ((job.before, "before"), (job.after, "after")):
        if not _exists(ref):
            image_window(ref, which)  # a bad date or a missing path fails before any work
            if getattr(job, f"{which}_date"):
                raise InputError(
                    f"{arg(which + '_date')} dates a local image; {arg(which)} {ref} is "
                    "searched by date, and each scene found carries its own"
                )
    check_output_dir(
        job.out,
        overwrite=job.overwrite,
        inputs=input_paths(job.before, job.after, aoi.path if aoi is not None else None),
    )
    cache, stats = job.scenes.open_cache(), NetStats()
    scene = {"scenes": job.scenes, "cache": cache, "stats": stats, "progress": progress}
    before = resolve_scene(job.before, aoi, "before", **scene)
    after = resolve_scene(job.after, aoi, "after", **scene)
    return _write_pair(replace(job, before=before, after=after), aoi, progress)


def _write_pair(job: DetectJob, aoi: AOI | None, progress: Progress | None = None) -> Run:
    import rasterio

    # GDAL decodes and encodes tiles on as many threads as the engine uses.
    with rasterio.Env(GDAL_NUM_THREADS=str(job.threads) if job.threads else "ALL_CPUS"):
        return _write_pair_now(job, aoi, progress)


def _write_pair_now(job: DetectJob, aoi: AOI | None, progress: Progress | None = None) -> Run:
    from sitewatch.pipeline import detect_change
    from sitewatch.report import check_output_dir, input_paths, write_result

    inputs = input_paths(job.before, job.after, aoi.path if aoi is not None else None)
    check_output_dir(job.out, overwrite=job.overwrite, inputs=inputs)
    command = _command(job)
    plan = {
        "aoi": aoi,
        "resolution": job.resolution,
        "pixel_size": job.pixel_size,
        "bands": job.bands,
        "before_date": job.before_date,
        "after_date": job.after_date,
    }
    if job.max_memory is not None:
        from sitewatch._units import estimate_memory
        from sitewatch.pipeline import plan_detection

        bsrc, asrc, names, _, grid, _, _ = plan_detection(
            job.before, job.after, method=job.options.method, **plan
        )
        need = estimate_memory(grid.height, grid.width, len(names))
        if need > job.max_memory:
            from sitewatch.pipeline import check_pair

            check_pair(bsrc, asrc)
            return _run_blockwise(
                job, bsrc, asrc, names, grid, aoi=aoi, need=need, inputs=inputs, progress=progress
            )
    result = detect_change(job.before, job.after, options=job.options, threads=job.threads, **plan)
    written = write_result(
        result,
        job.out,
        overwrite=job.overwrite,
        command=command,
        report=job.report,
        redact_paths=job.redact_paths,
    )
    return Run(result=result, out=written)


def _run_blockwise(
    job: DetectJob,
    bsrc: Any,
    asrc: Any,
    names: list[str],
    grid: Any,
    *,
    aoi: AOI | None,
    need: int,
    inputs: Sequence[Path],
    progress: Progress | None = None,
) -> Run:
    import rasterio

    from sitewatch.blocks import detect_blockwise, gdal_cache_mb
    from sitewatch.pipeline import annotate_features, pair_provenance
    from sitewatch.report import atomic_output_dir
    from sitewatch.report.write import finish_output

    assert job.max_memory is not None
    if progress is not None:
        progress(
            f"{grid.width:,}×{grid.height:,} px, {len(names)} bands: about "
            f"{need / 2**30:.1f} GB in memory, over {arg('max_memory')} "
            f"{job.max_memory / 2**30:.2g} GB, so read, scored and written block by block"
        )
    with (
        rasterio.Env(GDAL_CACHEMAX=gdal_cache_mb(job.max_memory)),
        atomic_output_dir(job.out, overwrite=job.overwrite, inputs=inputs) as tmp,
    ):
        res = detect_blockwise(
            bsrc,
            asrc,
            names,
            grid,
            tmp,
            aoi=aoi,
            options=job.options,
            max_memory=job.max_memory,
            threads=job.threads,
            progress=progress,
        )
        if progress is not None:
            what = "the polygons, the manifest and the report" if job.report else "the polygons"
            progress(f"writing {what} ({len(res.features):,} polygons)")
        annotate_features(
            res.features,
            bsrc.acquired,
            asrc.acquired,
            job.options,
            res.threshold,
            res.diagnostics,
        )
        res.diagnostics["memory"] = {
            "budget_bytes": job.max_memory,
            "in_memory_estimate": need,
        }
        res = replace(
            res,
            provenance=pair_provenance(
                bsrc,
                asrc,
                aoi=aoi,
                options=job.options,
                resolution=job.resolution,
                pixel_size=None,
                max_memory=job.max_memory,
                blockwise=True,
            ),
        )
        finish_output(
            res,
            tmp,
            command=_command(job),
            report=job.report,
            redact_paths=job.redact_paths,
        )
    return Run(result=res, out=Path(job.out).expanduser().absolute())


def timeline(job: TimelineJob, *, progress: Progress | None = None) -> Run:
    """Run a series job: track change regions through the dates, write the folder.

    Parameters
    ----------
    job : TimelineJob
    progress : callable, optional
        Receives a line per step searched (scene chosen, fallback, step skipped).

    Returns
    -------
    Run
        With ``timeline`` set.

    Raises
    ------
    InputError, DataError, OutputError, SourceError
        As for :func:`detect`.
    """
    from sitewatch.report import check_output_dir, input_paths, write_result
    from sitewatch.series import detect_series, timeline_files
    from sitewatch.sources._http import NetStats

    if job.scenes.source in RADAR_SOURCES:  # Sentinel-1 (alone or fused): sitewatch.radar
        from sitewatch.radar import timeline_radar

        return timeline_radar(job, progress=progress)
    aoi = resolve_aoi(job.aoi)
    if aoi is None and not job.images:
        raise InputError(
            f"name an AOI (an AOI id or {arg('aoi_file')}), or give local {arg('images')} "
            "(analysed where they all overlap)"
        )
    if not 0 < job.min_persistence <= 1:
        raise InputError(f"{arg('min_persistence')} must be in (0, 1]")
    if job.model not in TIMELINE_MODELS:
        raise InputError(f"{arg('model')} {job.model!r} is not one of {', '.join(TIMELINE_MODELS)}")
    if not 0 < job.fdr < 1:
        raise InputError(f"{arg('fdr')} must be between 0 and 1 (e.g. 0.05); got {job.fdr}")
    check_output_dir(
        job.out,
        overwrite=job.overwrite,
        inputs=input_paths(*job.images, aoi.path if aoi is not None else None),
    )
    cache, stats = job.scenes.open_cache(), NetStats()
    sources: list[Any]
    if job.images:
        if job.start or job.end:
            raise InputError(
                f"give either {arg('images')} or {_opt('from', 'start')}/{_opt('to', 'end')}, "
                "not both"
            )
        sources = list(job.images)
        if job.bands is not None:
            from sitewatch.sources.local import open_local

            sources = [open_local(p, bands=job.bands) for p in sources]
    elif job.bands is not None:
        raise InputError(
            f"{arg('bands')} names the bands of local {arg('images')}; STAC scenes name theirs"
        )
    elif job.dates is not None:
        raise InputError(
            f"{arg('dates')} dates local {arg('images')}; STAC scenes are dated by their catalog"
        )
    else:
        if not (job.start and job.end):
            raise InputError(
                f"give {_opt('from', 'start')} and {_opt('to', 'end')} (or {arg('images')})"
            )
        assert aoi is not None
        sources = stac_series(
            aoi,
            job.start,
            job.end,
            job.every,
            scenes=job.scenes,
            cache=cache,
            stats=stats,
            progress=progress,
        )
    result, tl = detect_series(
        sources,
        aoi=aoi,
        options=job.options,
        resolution=job.resolution,
        min_persistence=job.min_persistence,
        dates=job.dates,
        model=job.model,
        fdr=job.fdr,
    )
    out = write_result(
        result,
        job.out,
        overwrite=job.overwrite,
        command=_command(job),
        extra=lambda tmp: timeline_files(result, tl, tmp),
        redact_paths=job.redact_paths,
    )
    return Run(result=result, out=out, timeline=tl)


def stderr_progress(line: str) -> None:
    """A :data:`Progress` that prints each line on stderr (the command line's)."""
    print(line, file=sys.stderr)
