"""Entry point: parse, dispatch, and turn errors into one line and an exit code.

Exit codes: 0 ok, 1 internal error, 2 bad input, 3 source/network failure, 130 interrupted.

While a command runs, what the library logs on the ``sitewatch`` logger at INFO and
above (e.g. a network retry) is printed on stderr as ``sitewatch: <message>``; with
``--quiet``, only warnings and errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from sitewatch import __version__
from sitewatch._threads import defer_unused_numpy_modules
from sitewatch.cli import (
    aoi_cmd,
    batch_cmd,
    bench_cmd,
    demo_cmd,
    detect_cmd,
    report_cmd,
    search_cmd,
    timeline_cmd,
    wayback_cmd,
)
from sitewatch.errors import SitewatchError, cli_wording

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"sitewatch: error: {message}; see '{self.prog} --help'\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The full ``sitewatch`` argument parser."""
    parser = _Parser(
        prog="sitewatch",
        description="Watch named facilities in satellite imagery and flag new construction.",
    )
    parser.add_argument("--version", action="version", version=f"sitewatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    demo_cmd.register(sub)
    aoi_cmd.register(sub)
    search_cmd.register(sub)
    detect_cmd.register(sub)
    timeline_cmd.register(sub)
    batch_cmd.register(sub)
    report_cmd.register(sub)
    bench_cmd.register(sub)
    wayback_cmd.register(sub)
    return parser


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    sys.stderr.write(f"sitewatch: warning: {message}\n")


class _StderrHandler(logging.Handler):
    """Writes log records as ``sitewatch: <message>`` lines on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
            sys.stderr.write(f"sitewatch: {level}{record.getMessage()}\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


@contextmanager
def _progress_on_stderr(args: argparse.Namespace) -> Iterator[None]:
    """Show the ``sitewatch`` logger's INFO+ records (WARNING+ with ``--quiet``) on stderr."""
    level = logging.WARNING if getattr(args, "quiet", False) else logging.INFO
    logger = logging.getLogger("sitewatch")
    handler = _StderrHandler(level)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0)
    # Before scipy is first imported: see sitewatch._threads (after parsing, so --help and
    # usage errors stay free of numpy).
    defer_unused_numpy_modules()
    # The command line as the user typed it, for manifests (not the host's sys.argv when
    # main() is called from Python).
    args.command_line = ["sitewatch", *(sys.argv[1:] if argv is None else map(str, argv))]
    debug = bool(os.environ.get("SITEWATCH_DEBUG"))
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        with cli_wording(), _progress_on_stderr(args):
            return int(args.func(args) or 0)
    except SitewatchError as err:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"sitewatch: error: {err}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("sitewatch: interrupted; nothing was written\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:
        if debug:
            traceback.print_exc()
        first = str(err).splitlines()[0] if str(err) else ""
        sys.stderr.write(
            f"sitewatch: internal error: {type(err).__name__}: {first} "
            "(please report it; SITEWATCH_DEBUG=1 shows the traceback)\n"
        )
        return 1
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
