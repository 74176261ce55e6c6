"""Lazy package namespaces (PEP 562): names imported from their module on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from contextlib import suppress
from importlib import import_module
from typing import Any


def lazy_names(
    package: str, names: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose names live in its modules.

    Parameters
    ----------
    package : str
        The package's name, for the error message.
    names : mapping of str to str
        Name → the module that defines it.
    namespace : dict
        The package's ``globals()``; a name, once imported, is stored there.
    """

    def getattr_(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *names})

    return getattr_, dir_


def preload_module(*names: str) -> threading.Thread:
    """Start importing modules ``names`` on a second thread; join the thread before use.

    For overlapping a slow import (scipy, matplotlib) with work that frees the GIL (GDAL
    reads, numpy). An error is not raised there: the caller's own import raises it.
    """

    def load() -> None:
        for name in names:
            with suppress(BaseException):  # the caller's own import raises it again
                import_module(name)

    thread = threading.Thread(target=load, name=f"sitewatch-preload-{names[0]}", daemon=True)
    thread.start()
    return thread
