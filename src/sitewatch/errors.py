"""One exception tree and one warnings tree for sitewatch.

Every error a user can cause or meet derives from :class:`SitewatchError`; each
subclass also inherits the matching builtin, so ``except ValueError`` keeps working.
The CLI maps :class:`InputError` subclasses to exit code 2 and :class:`SourceError`
to exit code 3, printing only the message, which names the problem and the fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class SitewatchError(Exception):
    """Base of every sitewatch error."""

    exit_code: int = 2


class InputError(SitewatchError, ValueError):
    """Bad input the user can fix: a wrong path, option or file (exit code 2)."""


class AOIError(InputError):
    """Invalid, empty, swapped, oversized or unknown AOI."""


class DataError(InputError):
    """A raster that cannot be used: not a raster, no CRS, no overlap, no valid pixels."""


class OutputError(InputError):
    """The output folder cannot be written, or exists and ``overwrite`` was not given."""


class SourceError(SitewatchError, OSError):
    """A scene cannot be found or read from its source after retries (exit code 3)."""

    exit_code = 3


class RegistrationError(SitewatchError):
    """Residual misregistration is above tolerance."""


class SitewatchWarning(UserWarning):
    """Base of every sitewatch warning: a degraded but usable result."""


class PartialCoverageWarning(SitewatchWarning):
    """The imagery covers only part of the AOI."""


class DateOrderWarning(SitewatchWarning):
    """The before image is dated later than the after image."""


class SameImageWarning(SitewatchWarning):
    """Before and after are the same image: every difference is noise."""


class NotGeoreferencedWarning(SitewatchWarning):
    """Images are processed in pixel coordinates because they carry no CRS."""


class BandsNotIdentifiedWarning(SitewatchWarning):
    """No band of the images is recognised (not Sentinel-2, Landsat or a colour word).

    The change is still scored over all bands, but there is no true colour (no
    ``before.tif``/``after.tif``, chips without imagery) and no index of a named band;
    name the bands (``--bands`` / ``bands=``) to get them.
    """


_CLI_WORDING: ContextVar[bool] = ContextVar("sitewatch_cli_wording", default=False)


@contextmanager
def cli_wording() -> Iterator[None]:
    """Within this block, error messages name command-line options (``--out``).

    Outside it they name Python arguments (``out=``), so a notebook user is not told to
    add a flag they cannot pass.
    """
    token = _CLI_WORDING.set(True)
    try:
        yield
    finally:
        _CLI_WORDING.reset(token)


def arg(name: str, *, flag: bool = False) -> str:
    """How the user names the option ``name``: ``--out`` on the command line, ``out=`` in Python.

    Examples
    --------
    >>> arg("out"), arg("overwrite", flag=True)
    ('out=', 'overwrite=True')
    >>> with cli_wording():
    ...     arg("out"), arg("overwrite", flag=True)
    ('--out', '--overwrite')
    """
    if _CLI_WORDING.get():
        return "--" + name.replace("_", "-")
    return f"{name}=True" if flag else f"{name}="
