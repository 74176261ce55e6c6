"""Atomic output folders: write into a hidden temp folder, rename into place at the end."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sitewatch.errors import OutputError, SitewatchError

__all__ = ["atomic_output_dir", "check_output_dir"]


def check_output_dir(out: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Check early that ``out`` can be created or replaced; return its absolute path.

    Raises
    ------
    OutputError
        If ``out`` is a file, is a non-empty folder and ``overwrite`` is false, or its
        parent cannot be created or written.
    """
    path = Path(out).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise OutputError(f"output {path} exists and is a file; choose a folder for --out")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputError(
            f"output folder {path} exists and is not empty; add --overwrite or choose another --out"
        )
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        raise OutputError(
            f"cannot create output folder {path}: a parent path is a file ({err.filename}); "
            "choose a writable --out"
        ) from err
    except OSError as err:
        raise OutputError(
            f"cannot create output folder {path} ({err.strerror}); choose a writable --out"
        ) from err
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {parent} is not writable; choose a writable --out")
    return path


@contextmanager
def atomic_output_dir(out: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``out`` only if the block succeeds.

    On any error the temporary folder is removed and ``out`` is left as it was, so a
    reader never sees a half-written result.
    """
    path = check_output_dir(out, overwrite=overwrite)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    except OSError as err:
        raise OutputError(
            f"cannot write in {path.parent} ({err.strerror}); choose a writable --out"
        ) from err
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes 0700; results are meant to be shared
    try:
        yield tmp
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
