"""AOI × date-pair jobs from a watch list, run on a dask.distributed cluster.

A watch list is a TOML file::

    out = "runs"                      # result folders, relative to this file

    [defaults]                        # options of every job (each job may override)
    method = "auto"                   # chosen from the input (construction for Sentinel-2)
    max_cloud = 40

    [[job]]                           # a pair: before/after paths or date windows
    aoi = "feb11-plant"               # catalog id, or a .geojson path (relative)
    before = "2020-06"
    after = "2024-10"

    [[job]]                           # a timeline: from/to/every (or images = [...])
    name = "feb11-series"
    aoi = "feb11-plant"
    from = "2020-01"
    to = "2024-12"
    every = "6M"

:func:`load_watchlist` checks the whole file before any work starts.
:func:`run_batch` runs every job in a worker as :func:`run_job`, which calls the
same code as ``sitewatch detect`` / ``sitewatch timeline`` and writes one result
folder per job, atomically. A job whose ``<out>/<name>/manifest.json`` exists is
skipped, so re-running a batch resumes it. A failing job is reported with its error
and does not stop the others. dask is an optional dependency (``sitewatch[dask]``);
only :func:`run_batch` needs it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import tempfile
import time
import tomllib
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sitewatch.detect.options import STEP_FDR, TIMELINE_MODELS
from sitewatch.errors import InputError, SitewatchError, SitewatchWarning, SourceError

__all__ = [
    "JOB_OPTIONS",
    "Job",
    "WatchList",
    "batch_exit_code",
    "load_watchlist",
    "run_batch",
    "run_job",
]

JobKind = Literal["pair", "timeline"]

_NUMBER = (int, float)
JOB_OPTIONS: dict[str, tuple[type, ...]] = {
    # numeric chain (sitewatch.detect.run.DetectOptions)
    "method": (str,),
    "threshold_rule": (str,),
    "threshold": _NUMBER,
    "k": _NUMBER,
    "chi2_p": _NUMBER,
    "smooth": _NUMBER,
    "min_area_m2": _NUMBER,
    "opening": (int,),
    "coregister": (bool,),
    "normalize": (bool,),
    "weights": (str,),  # the learned method's model file (relative to the watch list)
    # grid
    "resolution": _NUMBER,
    "pixel_size": _NUMBER,
    # names of the bands of local images, in file order (["blue", "green", "red", "nir"])
    "bands": (list, str),
    # scene search (date windows)
    "source": (str,),
    "stac_url": (str,),
    "requester_pays": (bool,),
    "max_cloud": _NUMBER,
    "composite": (bool,),
    "composite_max": (int,),
    "cache": (str, bool),
    # timeline jobs
    "min_persistence": _NUMBER,
    "timeline_model": (str,),  # "auto", "step" or "pairs"
    "fdr": _NUMBER,
    # radar (source = "s1" or "s2,s1", see sitewatch.radar)
    "alpha": _NUMBER,
    "enl": _NUMBER,
    "orbit": (str,),
    "scenes": (int,),
    # outputs
    "redact_paths": (bool,),
}
"""Options a ``[defaults]`` table or a ``[[job]]`` may set, with their TOML types."""

_DETECT_KEYS = (
    "method",
    "threshold_rule",
    "threshold",
    "k",
    "chi2_p",
    "smooth",
    "min_area_m2",
    "opening",
    "coregister",
    "normalize",
    "weights",
)
_JOB_KEYS = ("name", "kind", "aoi", "before", "after", "from", "to", "every", "images")
_TOP_KEYS = ("out", "defaults", "job")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
SUMMARY_FILE = "batch_summary.json"


@dataclass(frozen=True)
class Job:
    """One job of a watch list, with paths made absolute and options merged.

    Attributes
    ----------
    name : str
        Result folder name, unique in the watch list.
    kind : {"pair", "timeline"}
    aoi : str
        Catalog id or absolute path of a GeoJSON file.
    before, after : str or None
        Pair jobs: absolute paths, or date / month / ``START/END`` windows.
    start, end, every : str or None
        Timeline jobs over a STAC search: the period and its step.
    images : tuple of str
        Timeline jobs over local images: absolute paths, oldest first.
    options : dict
        ``[defaults]`` updated with the job's own options (keys of :data:`JOB_OPTIONS`).
    """

    name: str
    kind: JobKind
    aoi: str
    before: str | None = None
    after: str | None = None
    start: str | None = None
    end: str | None = None
    every: str | None = None
    images: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)

    def spec(self, out: Path, *, overwrite: bool = False, command: list[str] | None = None) -> dict:
        """The JSON-able dict :func:`run_job` takes, writing into ``out / name``."""
        return {
            "name": self.name,
            "kind": self.kind,
            "aoi": self.aoi,
            "before": self.before,
            "after": self.after,
            "start": self.start,
            "end": self.end,
            "every": self.every,
            "images": list(self.images),
            "options": dict(self.options),
            "out": str(out / self.name),
            "overwrite": overwrite,
            "command": command,
        }


@dataclass(frozen=True)
class WatchList:
    """A parsed, validated watch list.

    Attributes
    ----------
    path : Path
        The TOML file.
    out : Path
        Folder holding one result folder per job and ``batch_summary.json``.
    jobs : tuple of Job
    """

    path: Path
    out: Path
    jobs: tuple[Job, ...]

    def __post_init__(self) -> None:
        names = [j.name for j in self.jobs]
        if len(set(names)) != len(names):
            raise InputError(f"{self.path.name}: job names are not unique: {names}")


def _type_names(types: tuple[type, ...]) -> str:
    names = {
        bool: "true/false",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list of strings",
    }
    return " or ".join(dict.fromkeys(names[t] for t in types if t is not int or float not in types))


def _check_options(table: Mapping[str, Any], where: str, allowed: Iterable[str]) -> dict[str, Any]:
    allowed = tuple(allowed)
    for key, value in table.items():
        if key not in allowed:
            raise InputError(f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(allowed))}")
        if key in JOB_OPTIONS:
            types = JOB_OPTIONS[key]
            if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
                raise InputError(f"{where}: {key} = {value!r} must be {_type_names(types)}")
    return {k: v for k, v in table.items() if k in JOB_OPTIONS}


def _detect_options(options: Mapping[str, Any]) -> Any:
    """:class:`~sitewatch.detect.run.DetectOptions` from watch-list options."""
    from sitewatch.detect.run import DetectOptions

    return DetectOptions(**{k: options[k] for k in _DETECT_KEYS if k in options})


def _radar_options(options: Mapping[str, Any]) -> Any:
    """:class:`~sitewatch.detect.sar_options.RadarOptions` from watch-list options."""
    from sitewatch.detect.sar_options import RadarOptions

    return RadarOptions(
        **{k: options[k] for k in ("alpha", "enl", "orbit", "scenes") if k in options}
    )


def _check_values(options: Mapping[str, Any], where: str) -> None:
    try:
        _detect_options(options)
        _radar_options(options)
    except ValueError as err:
        raise InputError(f"{where}: {err}") from None
    if options.get("source", "s2") not in ("s2", "landsat", "s1", "s2,s1"):
        raise InputError(
            f"{where}: source = {options['source']!r} must be 's2', 'landsat', 's1' or 's2,s1'"
        )
    for key in ("resolution", "pixel_size", "composite_max"):
        if key in options and not options[key] > 0:
            raise InputError(f"{where}: {key} = {options[key]!r} must be > 0")
    if "min_persistence" in options and not 0 < options["min_persistence"] <= 1:
        raise InputError(f"{where}: min_persistence must be in (0, 1]")
    if "timeline_model" in options and options["timeline_model"] not in TIMELINE_MODELS:
        raise InputError(
            f"{where}: timeline_model = {options['timeline_model']!r} must be one of "
            f"{', '.join(TIMELINE_MODELS)}"
        )
    if "fdr" in options and not 0 < options["fdr"] < 1:
        raise InputError(f"{where}: fdr = {options['fdr']!r} must be between 0 and 1")
    if "bands" in options:
        from sitewatch.sources.local import parse_band_names

        try:
            parse_band_names(options["bands"])
        except InputError as err:
            raise InputError(f"{where}: {err}") from None


def _is_window(text: str) -> bool:
    from sitewatch.sources.stac import parse_window

    try:
        parse_window(text)
    except InputError:
        return False
    return True


def _image_ref(text: str, base: Path) -> str:
    """An existing path (relative to the watch list) as an absolute path; a date as is."""
    path = base / Path(text).expanduser()
    if path.exists() or not _is_window(text):
        return str(path)  # a missing path fails in its job, naming the full path
    return text


def _token(ref: str) -> str:
    """Short name part for a date window or a path."""
    return ref if _is_window(ref) else Path(ref).stem or ref


def _default_name(parts: Iterable[str]) -> str:
    text = "_".join(parts)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._") or "job"


def _parse_job(
    raw: Any, number: int, *, base: Path, defaults: Mapping[str, Any], source: str
) -> Job:
    where = f"{source}: job {number}"
    if not isinstance(raw, dict):
        raise InputError(f"{where}: must be a [[job]] table")
    if isinstance(raw.get("name"), str):
        where = f"{where} ({raw['name']})"
    own = _check_options(raw, where, (*_JOB_KEYS, *JOB_OPTIONS))
    for key in ("name", "kind", "aoi", "before", "after", "from", "to", "every"):
        if key in raw and not isinstance(raw[key], str):
            raise InputError(f"{where}: {key} = {raw[key]!r} must be a string")
    if "aoi" not in raw:
        raise InputError(f"{where}: missing key 'aoi' (catalog id or .geojson path)")
    aoi_text = raw["aoi"]
    is_file = aoi_text.lower().endswith((".geojson", ".json")) or "/" in aoi_text
    aoi = str(base / Path(aoi_text).expanduser()) if is_file else aoi_text
    aoi_token = Path(aoi_text).stem if is_file else aoi_text
    series_keys = [k for k in ("from", "to", "every", "images") if k in raw]
    pair_keys = [k for k in ("before", "after") if k in raw]
    kind = raw.get("kind", "timeline" if series_keys else "pair")
    if kind not in ("pair", "timeline"):
        raise InputError(f"{where}: kind = {kind!r} must be 'pair' or 'timeline'")
    options = {**defaults, **own}
    for key in ("cache", "weights"):  # paths, relative to the watch list like the images
        if isinstance(options.get(key), str):
            options[key] = str(base / Path(options[key]).expanduser())
    fields: dict[str, Any] = {}
    if kind == "pair":
        if series_keys:
            raise InputError(
                f"{where}: key {series_keys[0]!r} is for timeline jobs; a pair job has before/after"
            )
        for key in ("min_persistence", "timeline_model", "fdr"):
            if key in own:
                raise InputError(f"{where}: key {key!r} is for timeline jobs")
        for key in ("before", "after"):
            if key not in raw:
                raise InputError(
                    f"{where}: missing key {key!r} (a path, or a date / month / START/END)"
                )
        fields = {
            "before": _image_ref(raw["before"], base),
            "after": _image_ref(raw["after"], base),
        }
        parts = [aoi_token, _token(raw["before"]), _token(raw["after"])]
    else:
        if pair_keys:
            raise InputError(
                f"{where}: key {pair_keys[0]!r} is for pair jobs; a timeline has from/to/every"
            )
        if "images" in raw:
            images = raw["images"]
            if not (
                isinstance(images, list)
                and len(images) >= 2
                and all(isinstance(i, str) for i in images)
            ):
                raise InputError(f"{where}: images must be a list of at least two paths")
            if any(k in raw for k in ("from", "to", "every")):
                raise InputError(f"{where}: give either images or from/to/every, not both")
            fields = {"images": tuple(str(base / Path(i).expanduser()) for i in images)}
            parts = [aoi_token, Path(images[0]).name, Path(images[-1]).name]
        else:
            from sitewatch.sources.stac import parse_window
            from sitewatch.timeline import time_steps

            for key in ("from", "to"):
                if key not in raw:
                    raise InputError(f"{where}: missing key {key!r} (YYYY-MM[-DD])")
            every = raw.get("every", "3M")
            try:
                start, end = parse_window(raw["from"])[0], parse_window(raw["to"])[1]
                time_steps(start, end, every)
            except InputError as err:
                raise InputError(f"{where}: {err}") from None
            fields = {"start": raw["from"], "end": raw["to"], "every": every}
            parts = [aoi_token, raw["from"], raw["to"]]
    _check_values(options, where)
    name = raw.get("name") or _default_name(parts)
    if not _NAME.fullmatch(name):
        raise InputError(
            f"{where}: name {name!r} must be a folder name of letters, digits, '.', '_', '-'"
        )
    return Job(name=name, kind=kind, aoi=aoi, options=options, **fields)


def load_watchlist(path: str | os.PathLike[str]) -> WatchList:
    """Read and check a watch list (TOML); relative paths are relative to the file.

    Parameters
    ----------
    path : path
        The TOML file (see the module docs for its format).

    Returns
    -------
    WatchList

    Raises
    ------
    InputError
        If the file is missing or not TOML, or any job has an unknown key, a missing
        field, a bad value or a duplicate name; the message names the job and the key.
    """
    p = Path(path).expanduser().absolute()
    try:
        with p.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise InputError(f"watch list {p} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"watch list {p} is a folder; give a .toml file") from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{p.name}: not valid TOML: {err}") from None
    except OSError as err:
        raise InputError(f"cannot read watch list {p} ({err.strerror})") from None
    base = p.parent
    _check_options(raw, p.name, _TOP_KEYS)
    out = raw.get("out", "runs")
    if not isinstance(out, str) or not out:
        raise InputError(f"{p.name}: out = {out!r} must be a folder path")
    defaults_raw = raw.get("defaults", {})
    if not isinstance(defaults_raw, dict):
        raise InputError(f"{p.name}: defaults must be a [defaults] table")
    defaults = _check_options(defaults_raw, f"{p.name}: [defaults]", JOB_OPTIONS)
    _check_values(defaults, f"{p.name}: [defaults]")
    jobs_raw = raw.get("job", [])
    if not isinstance(jobs_raw, list) or not jobs_raw:
        raise InputError(f"{p.name}: no jobs; add [[job]] tables with aoi and before/after")
    jobs: list[Job] = []
    seen: dict[str, int] = {}
    for number, job_raw in enumerate(jobs_raw, start=1):
        job = _parse_job(job_raw, number, base=base, defaults=defaults, source=p.name)
        if job.name in seen:
            raise InputError(
                f"{p.name}: job {number} ({job.name}): duplicate name (job {seen[job.name]} "
                "has it); set a distinct name"
            )
        seen[job.name] = number
        jobs.append(job)
    return WatchList(path=p, out=base / Path(out).expanduser(), jobs=tuple(jobs))


# --- one job, in a worker -------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


def _scene_query(opts: Mapping[str, Any]) -> Any:
    """The :class:`~sitewatch.run.SceneQuery` of a job's options."""
    from sitewatch.run import SceneQuery

    return SceneQuery(
        source=opts.get("source", "s2"),
        stac_url=opts.get("stac_url"),
        requester_pays=opts.get("requester_pays", False),
        max_cloud=opts.get("max_cloud"),
        composite=opts.get("composite", False),
        composite_max=opts.get("composite_max", 5),
        cache=opts.get("cache", True),
    )


def job_spec(spec: Mapping[str, Any]) -> Any:
    """The :class:`~sitewatch.run.DetectJob` or :class:`~sitewatch.run.TimelineJob` of a job.

    No argument parser is involved: a watch-list job maps onto the library's job specs
    field by field.
    """
    from sitewatch.run import DetectJob, TimelineJob

    opts = spec["options"]
    command = tuple(spec["command"]) if spec.get("command") is not None else None
    common: dict[str, Any] = {
        "out": spec["out"],
        "aoi": spec["aoi"],
        "options": _detect_options(opts),
        "scenes": _scene_query(opts),
        "resolution": opts.get("resolution"),
        "bands": opts.get("bands"),
        "redact_paths": bool(opts.get("redact_paths", False)),
        "overwrite": spec["overwrite"],
        "command": command,
        "radar": _radar_options(opts),
    }
    if spec["kind"] == "pair":
        return DetectJob(
            before=spec["before"],
            after=spec["after"],
            pixel_size=opts.get("pixel_size"),
            **common,
        )
    if opts.get("bands") is not None and not spec["images"]:
        raise InputError(f"job {spec['name']}: bands names the bands of local images (images =)")
    return TimelineJob(
        images=tuple(spec.get("images") or ()),
        start=spec.get("start"),
        end=spec.get("end"),
        every=spec.get("every") or "3M",
        min_persistence=opts.get("min_persistence", 0.5),
        model=opts.get("timeline_model", "auto"),
        fdr=opts.get("fdr", STEP_FDR),
        **common,
    )


def _run(spec: Mapping[str, Any]) -> Any:
    """Run one job through :mod:`sitewatch.run` and write its folder; return the ChangeResult."""
    from sitewatch import run

    job = job_spec(spec)
    done = run.detect(job) if spec["kind"] == "pair" else run.timeline(job)
    return done.result


def run_job(spec: dict) -> dict:
    """Run one watch-list job (a :meth:`Job.spec` dict) and summarise it; never raises.

    Parameters
    ----------
    spec : dict
        From :meth:`Job.spec`.

    Returns
    -------
    dict
        JSON-able: ``name``, ``kind``, ``out``, ``status`` (``"ok"`` or ``"failed"``),
        ``seconds``, ``warnings`` and either ``n_polygons`` and ``changed_area_m2`` or
        ``error`` (one line) and ``exit_code`` (2 bad input or data, 3 source or
        network failure, 1 internal error).
    """
    t0 = time.perf_counter()
    summary: dict[str, Any] = {"name": spec["name"], "kind": spec["kind"], "out": spec["out"]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", category=SitewatchWarning)
        try:
            result = _run(spec)
        except SitewatchError as err:
            summary.update(status="failed", error=_one_line(str(err)), exit_code=err.exit_code)
        except Exception as err:
            summary.update(
                status="failed",
                error=_one_line(f"internal error: {type(err).__name__}: {err}"),
                exit_code=1,
            )
        else:
            d = result.diagnostics
            summary.update(
                status="ok",
                n_polygons=int(d["n_polygons"]),
                changed_area_m2=float(d["changed_area_m2"]),
            )
    summary["warnings"] = list(dict.fromkeys(_one_line(str(w.message)) for w in caught))
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary


# --- the batch, on a cluster ----------------------------------------------------------------


def batch_exit_code(jobs: Iterable[Mapping[str, Any]]) -> int:
    """0 if every job succeeded or was skipped, else 3 / 2 / 1 (worst failure first).

    A source or network failure (3) outranks bad input or data (2), which outranks an
    internal error (1).
    """
    codes = {int(j.get("exit_code", 1)) for j in jobs if j["status"] == "failed"}
    for code in (3, 2, 1):
        if code in codes:
            return code
    return 0


def _done_summary(job: Job, out: Path) -> dict[str, Any]:
    """The summary of a job whose folder is already written (read from its manifest)."""
    summary: dict[str, Any] = {
        "name": job.name,
        "kind": job.kind,
        "out": str(out),
        "status": "skipped",
        "reason": "done",
    }
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        d = manifest["diagnostics"]
        summary.update(n_polygons=int(d["n_polygons"]), changed_area_m2=float(d["changed_area_m2"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    summary["seconds"] = 0.0
    return summary


def _write_json_atomic(path: Path, obj: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the summary is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def require_dask() -> None:
    """Check that the ``dask`` extra is installed; one-line InputError naming it if not."""
    try:
        import distributed  # noqa: F401
    except ImportError as err:
        raise InputError(
            "sitewatch batch needs the 'dask' extra (dask.distributed), which is not installed: "
            "in the sitewatch folder run .venv/bin/pip install --only-binary=:all: '.[dask]'"
        ) from err


@contextmanager
def _client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """Yield a Client on ``scheduler``, or on a new LocalCluster closed at the end."""
    require_dask()
    from distributed import Client, LocalCluster

    with ExitStack() as stack:
        try:
            if scheduler:
                client = stack.enter_context(Client(scheduler, timeout="10s"))
            else:
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address="127.0.0.1:0",  # no fixed port (8787 may be taken)
                        silence_logs=logging.ERROR,
                    )
                )
                client = stack.enter_context(Client(cluster))
        except OSError as err:  # includes TimeoutError
            where = f"scheduler {scheduler}" if scheduler else "a local cluster"
            raise SourceError(
                f"cannot start or reach {where} ({_one_line(str(err))}); "
                "check the address and that the scheduler is running"
            ) from err
        except ValueError as err:
            raise InputError(f"--scheduler {scheduler!r}: {_one_line(str(err))}") from err
        yield client


def run_batch(
    watchlist: WatchList,
    *,
    scheduler: str | None = None,
    workers: int = 2,
    rerun: bool = False,
    only: Iterable[str] | None = None,
    on_done: Callable[[dict[str, Any], int, int], None] | None = None,
) -> dict[str, Any]:
    """Run the jobs of a watch list on a dask.distributed cluster.

    Parameters
    ----------
    watchlist : WatchList
        From :func:`load_watchlist`.
    scheduler : str, optional
        Address of an existing scheduler (``tcp://host:8786``); its workers need
        sitewatch installed and the watch list's paths. Default: a new
        ``LocalCluster`` of ``workers`` processes, closed at the end.
    workers : int
        Worker processes of the local cluster (one thread each).
    rerun : bool
        Run finished jobs again (replacing their folders) instead of skipping them.
    only : iterable of str, optional
        Names of the jobs to run (default: all).
    on_done : callable, optional
        Called as ``on_done(summary, n_done, n_total)`` as each job finishes or is skipped.

    Returns
    -------
    dict
        Also written atomically to ``<out>/batch_summary.json``: the watch list,
        ``seconds``, ``exit_code`` (see :func:`batch_exit_code`) and ``jobs``, one
        summary per job in watch-list order (see :func:`run_job`; a finished job
        found on disk has status ``"skipped"``).

    Raises
    ------
    InputError
        If ``only`` names an unknown job or ``out`` cannot be created.
    SourceError
        If the scheduler cannot be reached.
    """
    from sitewatch.report.output import check_output_root

    if workers < 1:
        raise InputError(f"workers = {workers} must be >= 1")
    require_dask()
    jobs = list(watchlist.jobs)
    if only is not None:
        wanted = list(only)
        unknown = [n for n in wanted if n not in {j.name for j in jobs}]
        if unknown:
            raise InputError(
                f"no job named {unknown[0]!r} in {watchlist.path.name}; "
                f"jobs: {', '.join(j.name for j in jobs)}"
            )
        jobs = [j for j in jobs if j.name in wanted]
    t0 = time.perf_counter()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out = check_output_root(watchlist.out)
    results: dict[str, dict[str, Any]] = {}
    total = len(jobs)

    def done(summary: dict[str, Any]) -> None:
        results[summary["name"]] = summary
        if on_done is not None:
            on_done(summary, len(results), total)

    from sitewatch.report.output import sweep_stale

    todo: list[Job] = []
    for job in jobs:
        sweep_stale(out / job.name)  # what a killed worker left of this job
        finished = (out / job.name / "manifest.json").is_file()
        if finished and not rerun:
            done(_done_summary(job, out / job.name))
        else:
            todo.append(job)
    if todo:
        from distributed import as_completed

        with _client(scheduler, workers) as client:
            out.mkdir(parents=True, exist_ok=True)
            futures = {}
            for job in todo:
                command = ["sitewatch", "batch", str(watchlist.path), "--job", job.name, "--rerun"]
                spec = job.spec(
                    out, overwrite=(out / job.name / "manifest.json").is_file(), command=command
                )
                key = f"sitewatch-job-{job.name}-{uuid.uuid4().hex[:8]}"
                futures[client.submit(run_job, spec, key=key, pure=False)] = job
            for future in as_completed(futures):
                job = futures[future]
                try:
                    summary = future.result()
                except Exception as err:  # the worker died (memory, crash) or was lost
                    summary = {
                        "name": job.name,
                        "kind": job.kind,
                        "out": str(out / job.name),
                        "status": "failed",
                        "error": _one_line(f"worker failure: {type(err).__name__}: {err}"),
                        "exit_code": 1,
                        "seconds": None,
                    }
                future.release()
                done(summary)
    ordered = [results[j.name] for j in jobs]
    summary = {
        "sitewatch_batch": 1,
        "watchlist": str(watchlist.path),
        "out": str(out),
        "started_utc": started,
        "cluster": scheduler or f"LocalCluster({workers} workers)",
        "seconds": round(time.perf_counter() - t0, 2),
        "exit_code": batch_exit_code(ordered),
        "counts": {
            s: sum(1 for j in ordered if j["status"] == s) for s in ("ok", "skipped", "failed")
        },
        "jobs": ordered,
    }
    out.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(out / SUMMARY_FILE, summary)
    return summary
