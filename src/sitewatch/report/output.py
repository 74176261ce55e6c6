"""Output folders that never cost the user a file.

A run writes into a hidden temporary folder beside ``out`` and renames it into place at
the end, so a reader never sees a half-written result. An existing ``out`` is replaced
only when sitewatch wrote it: it holds a sitewatch ``manifest.json`` and nothing the
manifest does not list, or it is empty. The current folder, its parents, the home
folder and any folder that is or holds an input are never replaced.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sitewatch.errors import OutputError, SitewatchError, arg

__all__ = [
    "PARTIAL_MARKER",
    "atomic_output_dir",
    "check_output_dir",
    "check_output_root",
    "input_paths",
    "is_sitewatch_run",
    "sweep_stale",
]

log = logging.getLogger(__name__)

PARTIAL_MARKER = ".sitewatch-partial"
"""File in a run's temporary folder naming the process writing it (host, pid, start)."""


def _resolved(path: str | os.PathLike[str]) -> Path:
    return Path(path).expanduser().resolve()


def is_sitewatch_run(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` holds a sitewatch ``manifest.json`` and only files it lists.

    A run folder's manifest lists every other file it wrote (``outputs``); a file the
    user added (notes, a copied image) makes the folder no longer sitewatch's alone.
    """
    root = Path(folder)
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or "sitewatch_manifest" not in manifest:
        return False
    listed = set(manifest.get("outputs") or {})
    for p in root.rglob("*"):
        if p.is_dir():
            continue
        rel = p.relative_to(root).as_posix()
        if rel != "manifest.json" and rel not in listed:
            return False
    return True


def input_paths(*sources: object) -> list[Path]:
    """Local paths a run reads: paths as given, and the ``path``/``files`` of sources.

    Remote sources (STAC items) have no local path and are skipped.

    Examples
    --------
    >>> import sitewatch
    >>> [p.name for p in input_paths(sitewatch.__file__, None, "2024-10", "no/such.tif")]
    ['__init__.py']
    """
    out: list[Path] = []
    for src in sources:
        if src is None:
            continue
        if isinstance(src, str | os.PathLike):
            if Path(src).exists():
                out.append(Path(src))
            continue
        for part in getattr(src, "parts", [src]):
            for p in (getattr(part, "path", None), *getattr(part, "files", ())):
                if isinstance(p, str | os.PathLike) and Path(p).exists():
                    out.append(Path(p))
    return out


def _protected(path: Path) -> str | None:
    """Why ``path`` may never be replaced (None if it may)."""
    cwd = Path.cwd().resolve()
    if path == cwd:
        return "is the current folder"
    if cwd.is_relative_to(path):
        return "holds the current folder"
    if path == Path.home().resolve():
        return "is the home folder"
    if path.parent == path:
        return "is the root of the file system"
    return None


def _input_clash(path: Path, inputs: Iterable[str | os.PathLike[str]]) -> str | None:
    for item in inputs:
        try:
            p = _resolved(item)
        except (OSError, RuntimeError):
            continue
        if p == path:
            return f"is an input ({Path(item).name})"
        if p.is_relative_to(path):
            return f"holds an input ({Path(item).name})"
    return None


def check_output_dir(
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """Check early that ``out`` can be created or replaced; return its absolute path.

    Parameters
    ----------
    out : path
        The output folder.
    overwrite : bool
        Replace an existing non-empty folder, if sitewatch wrote it.
    inputs : iterable of paths
        Files and folders the run reads; ``out`` may not be or hold any of them.

    Raises
    ------
    OutputError
        If ``out`` is a file; is the current folder, a parent of it, the home folder or
        the file-system root; is or holds an input; is non-empty and ``overwrite`` is
        false, or non-empty and not a sitewatch run folder; or its parent cannot be
        created or written.
    """
    path = _resolved(out)
    opt = arg("out")
    if path.exists() and not path.is_dir():
        raise OutputError(f"output {path} exists and is a file; choose a folder for {opt}")
    if why := _protected(path):
        raise OutputError(
            f"output folder {path} {why}; sitewatch writes a whole folder of its own: "
            f"choose a new one for {opt} (e.g. {path / 'sitewatch-run'})"
        )
    if why := _input_clash(path, inputs):
        raise OutputError(
            f"output folder {path} {why}; sitewatch writes a whole folder of its own: "
            f"choose a new one for {opt}, away from the inputs (e.g. "
            f"{path.parent / (path.name + '-sitewatch')})"
        )
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise OutputError(
                f"output folder {path} exists and is not empty; add {arg('overwrite', flag=True)}"
                f" to replace an earlier sitewatch run there, or choose another {opt}"
            )
        if not is_sitewatch_run(path):
            raise OutputError(
                f"output folder {path} holds files sitewatch did not write (no sitewatch "
                f"manifest.json lists them); {arg('overwrite', flag=True)} replaces only an "
                f"earlier sitewatch run folder: choose another {opt}"
            )
    return _check_parent(path)


def check_output_root(out: str | os.PathLike[str]) -> Path:
    """Check that ``out`` can hold run folders (batch); it is never replaced itself.

    Raises
    ------
    OutputError
        If ``out`` is a file or it (or its parent) cannot be created or written.
    """
    path = _resolved(out)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output {path} exists and is a file; choose a folder")
    _check_parent(path)
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {path} is not writable; choose a writable folder")
    return path


def _check_parent(path: Path) -> Path:
    opt = arg("out")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        raise OutputError(
            f"cannot create output folder {path}: a parent path is a file ({err.filename}); "
            f"choose a writable {opt}"
        ) from err
    except OSError as err:
        raise OutputError(
            f"cannot create output folder {path} ({err.strerror}); choose a writable {opt}"
        ) from err
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {parent} is not writable; choose a writable {opt}")
    return path


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks after boot; Linux), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, start: str | None) -> bool:
    """True if ``pid`` runs and is the same process (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _process_start(pid)
    return start is None or now is None or now == start


def _write_marker(tmp: Path) -> None:
    pid = os.getpid()
    (tmp / PARTIAL_MARKER).write_text(
        json.dumps({"host": socket.gethostname(), "pid": pid, "start": _process_start(pid)}),
        encoding="utf-8",
    )


def _stale(folder: Path) -> bool:
    """True when ``folder`` is a temporary run folder whose writer died on this host."""
    try:
        owner = json.loads((folder / PARTIAL_MARKER).read_text(encoding="utf-8"))
        host, pid, start = owner["host"], int(owner["pid"]), owner.get("start")
    except (OSError, ValueError, KeyError, TypeError):
        return False  # not ours (no marker), or unreadable: leave it
    return host == socket.gethostname() and not _alive(pid, start)


def sweep_stale(out: str | os.PathLike[str]) -> list[Path]:
    """Remove what a killed run left beside ``out``; return the folders removed.

    A run killed while writing (SIGKILL, a lost dask worker, a power cut) leaves its
    hidden temporary folder ``.<name>.tmp-*`` beside ``out``, or the previous result
    renamed to ``.<name>.old-<pid>`` mid-swap. Only folders sitewatch made are removed:
    a temporary folder whose marker (:data:`PARTIAL_MARKER`) names a process of this
    host that no longer runs, and an ``.old-<pid>`` folder that is a complete sitewatch
    run (:func:`is_sitewatch_run`) of a process that no longer runs. Anything else,
    including a run still writing elsewhere, is left alone.
    """
    path = Path(out).expanduser().absolute()
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    for cand in path.parent.glob(f".{path.name}.*"):
        if not cand.is_dir() or cand.is_symlink():
            continue
        kind, _, tag = cand.name[len(path.name) + 2 :].partition("-")
        ours = (kind == "tmp" and _stale(cand)) or (
            kind == "old"
            and tag.isdigit()
            and not _alive(int(tag), None)
            and is_sitewatch_run(cand)
        )
        if not ours:
            continue
        shutil.rmtree(cand, ignore_errors=True)
        if not cand.exists():
            log.info("removed %s, left by a run that was killed", cand)
            removed.append(cand)
    return removed


@contextmanager
def atomic_output_dir(
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``out`` only if the block succeeds.

    On any error the temporary folder is removed and ``out`` is left as it was, so a
    reader never sees a half-written result. The rules of :func:`check_output_dir`
    are checked again just before the swap, so a folder that changed meanwhile is not
    replaced.
    """
    path = check_output_dir(out, overwrite=overwrite, inputs=inputs)
    sweep_stale(path)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    except OSError as err:
        raise OutputError(
            f"cannot write in {path.parent} ({err.strerror}); choose a writable {arg('out')}"
        ) from err
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes 0700; results are meant to be shared
    try:
        _write_marker(tmp)  # a killed run's folder can be told from a running one's
        yield tmp
        check_output_dir(path, overwrite=overwrite, inputs=inputs)
        (tmp / PARTIAL_MARKER).unlink(missing_ok=True)
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            path.rename(old)
        tmp.rename(path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OutputError | SitewatchError):
            raise
        raise OutputError(
            f"writing {path} failed ({err.strerror or err}); nothing was written there"
        ) from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
