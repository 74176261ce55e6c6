"""``sitewatch batch``: run the AOI × date-pair jobs of a watch list on dask.distributed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from sitewatch.cli._common import add_json, emit_json

__all__ = ["format_table", "register"]

EPILOG = """\
watch list (TOML; paths are relative to it):
  out = "runs"
  [defaults]                    # any job option: method, threshold_rule, k, smooth,
  max_cloud = 40                # min_area_m2, resolution, source, stac_url, max_cloud,
                                # composite, cache, min_persistence ...
  [[job]]
  aoi = "feb11-plant"           # catalog id or a .geojson path
  before = "2020-06"            # a file / band folder / .SAFE / .zip / Landsat .tar,
                                # or a date, month or START/END
  after = "2024-10"
  [[job]]
  name = "feb11-series"         # default: <aoi>_<before>_<after>
  aoi = "feb11-plant"
  from = "2020-01"              # a timeline job (or images = ["a", "b", ...])
  to = "2024-12"
  every = "6M"

Writes <out>/<name>/ per job (as 'sitewatch detect' / 'timeline') and
<out>/batch_summary.json. Jobs whose folder holds a manifest.json are skipped, so
re-running resumes; --rerun runs them again. A failing job does not stop the others.

exit status: 0 every job succeeded or was skipped; 3 a job failed reading a source
(network, STAC, scheduler); 2 a job failed on bad input or data (or the watch list
is invalid: nothing runs); 1 only internal errors."""


def positive_int(text: str) -> int:
    """Argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def register(sub: Any) -> None:
    """Add the ``batch`` subcommand."""
    p = sub.add_parser(
        "batch",
        help="run the AOI × date-pair jobs of a watch list on dask.distributed",
        description="Run every job of a watch list (AOIs × before/after pairs or timelines)\n"
        "on a dask.distributed cluster: a new local one by default, or an existing one\n"
        "with --scheduler. Shows progress, writes one result folder per job and a\n"
        "summary table.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("watchlist", metavar="WATCHLIST.toml", help="the watch list")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="use an existing cluster (tcp://host:8786); its workers need sitewatch and "
        "the watch list's paths",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="worker processes of the local cluster (default 2)",
    )
    p.add_argument(
        "--job",
        action="append",
        dest="jobs",
        metavar="NAME",
        help="run only this job (repeatable)",
    )
    p.add_argument("--out", metavar="DIR", help="results folder (default: the watch list's out)")
    p.add_argument(
        "--rerun", action="store_true", help="run finished jobs again, replacing their folders"
    )
    p.add_argument("--quiet", action="store_true", help="print only failures")
    add_json(p)
    p.set_defaults(func=main)


def _area(value: Any) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _line(summary: dict[str, Any], n: int, total: int) -> str:
    """One progress line for a finished (or skipped) job."""
    head = f"[{n}/{total}]"
    name, status = summary["name"], summary["status"]
    if status == "failed":
        return f"{head} FAILED {name} (exit {summary['exit_code']}): {summary['error']}"
    polygons = summary.get("n_polygons")
    what = (
        f"{polygons} polygon{'s' if polygons != 1 else ''}, "
        f"{_area(summary.get('changed_area_m2'))} m²"
        if polygons is not None
        else "no summary"
    )
    if status == "skipped":
        return f"{head} skipped (done) {name} ({what})"
    return f"{head} ok {name} ({what}, {summary['seconds']:.1f} s)"


def format_table(jobs: list[dict[str, Any]]) -> str:
    """The summary table: name, status, polygons, area, seconds, error."""
    header = ("name", "status", "polygons", "area m²", "seconds", "error")
    rows = []
    for j in jobs:
        status = j["status"]
        status = {"skipped": "skipped (done)", "failed": f"failed (exit {j.get('exit_code')})"}.get(
            status, status
        )
        seconds = j.get("seconds")
        rows.append(
            (
                j["name"],
                status,
                "–" if j.get("n_polygons") is None else str(j["n_polygons"]),
                _area(j.get("changed_area_m2")),
                "–" if seconds is None or j["status"] == "skipped" else f"{seconds:.1f}",
                j.get("error", ""),
            )
        )
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    right = (False, False, True, True, True)

    def fmt(row: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row[:-1], widths, right, strict=True)
        ]
        return "  ".join([*cells, row[-1]]).rstrip()

    return "\n".join([fmt(header), *(fmt(r) for r in rows)])


@contextmanager
def _progress(*, quiet: bool) -> Iterator[Callable[[dict[str, Any], int, int], None]]:
    """A per-job callback: a rich bar plus lines on a terminal, plain lines otherwise."""
    if quiet:

        def failures(summary: dict[str, Any], n: int, total: int) -> None:
            if summary["status"] == "failed":
                print(_line(summary, n, total), file=sys.stderr, flush=True)

        yield failures
        return
    if not sys.stderr.isatty():

        def plain(summary: dict[str, Any], n: int, total: int) -> None:
            print(_line(summary, n, total), file=sys.stderr, flush=True)
            for w in summary.get("warnings", []):
                print(f"    warning: {w}", file=sys.stderr, flush=True)

        yield plain
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True, highlight=False)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = None

        def rich_line(summary: dict[str, Any], n: int, total: int) -> None:
            nonlocal task
            if task is None:
                task = bar.add_task("batch", total=total)
            bar.console.print(_line(summary, n, total), markup=False)
            for w in summary.get("warnings", []):
                bar.console.print(f"    warning: {w}", markup=False)
            bar.update(task, completed=n)

        yield rich_line


def main(args: argparse.Namespace) -> int:
    """Run ``sitewatch batch``."""
    from sitewatch.batch import SUMMARY_FILE, load_watchlist, run_batch
    from sitewatch.errors import InputError

    watchlist = load_watchlist(args.watchlist)
    if args.out:
        watchlist = replace(watchlist, out=Path(args.out).expanduser().absolute())
    if args.scheduler and args.workers:
        raise InputError("--workers sizes the local cluster; an existing --scheduler has its own")
    with _progress(quiet=args.quiet or args.json) as on_done:
        summary = run_batch(
            watchlist,
            scheduler=args.scheduler,
            workers=args.workers or 2,
            rerun=args.rerun,
            only=args.jobs,
            on_done=on_done,
        )
    if args.json:
        emit_json(summary)
    elif not args.quiet:
        c = summary["counts"]
        print(format_table(summary["jobs"]))
        print(
            f"{len(summary['jobs'])} jobs: {c['ok']} ok, {c['skipped']} skipped, "
            f"{c['failed']} failed in {summary['seconds']:.1f} s; "
            f"summary in {Path(summary['out']) / SUMMARY_FILE}"
        )
    return int(summary["exit_code"])
