"""The Examples sections of every docstring run as doctests."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import sitewatch

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(sitewatch.__path__, "sitewatch.")
    if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
