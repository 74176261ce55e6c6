"""``sitewatch report RUN_DIR``: rebuild quicklooks, chips and report.html from a run folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sitewatch.errors import OutputError

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``report`` subcommand."""
    p = sub.add_parser(
        "report",
        help="rebuild report.html (and its images) from a run folder",
        description="Rebuild the quicklooks, the per-change chips and report.html of a "
        "folder written by 'sitewatch detect' or 'sitewatch demo', from its files alone "
        "(no inputs or network needed).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="the --out folder of a detect run")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=main)


def _check_replaceable(root: Path, manifest: dict[str, Any]) -> None:
    """Refuse when the files a rebuild replaces include one sitewatch did not write."""
    listed = set(manifest.get("outputs") or {})
    replaced = [
        root / "report.html",
        *(root / "quicklooks").rglob("*"),
        *(root / "chips").rglob("*"),
    ]
    for p in replaced:
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel not in listed:
            raise OutputError(
                f"{p} is not a file this run wrote (its manifest.json does not list it); "
                "a rebuild would replace it: move it out of the run folder first"
            )


def main(args: argparse.Namespace) -> int:
    """Run ``sitewatch report``."""
    import os

    from sitewatch.report import build_report, load_run
    from sitewatch.report.write import refresh_outputs

    run = load_run(args.run_dir)  # clear error for a non-run folder, before writing
    if not os.access(run.path, os.W_OK):
        raise OutputError(f"cannot write to {run.path}; copy the run folder somewhere writable")
    _check_replaceable(run.path, run.manifest)
    out = build_report(run.path)
    refresh_outputs(run.path)
    if not args.quiet:
        files = sorted(str(p.relative_to(run.path)) for p in Path(run.path).rglob("*.png"))
        more = " …" if len(files) > 6 else ""
        print(f"wrote {out} and {len(files)} images ({', '.join(files[:6])}{more})")
    return 0
