"""The examples in the docstrings of every ``nbdeploy.core`` module run and hold."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import nbdeploy.core

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(nbdeploy.core.__path__, "nbdeploy.core.")
)


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name: str) -> None:
    module = importlib.import_module(name)
    results = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert results.failed == 0


def test_core_has_doctests() -> None:
    attempted = 0
    for name in MODULES:
        finder = doctest.DocTestFinder()
        attempted += sum(len(t.examples) for t in finder.find(importlib.import_module(name)))
    assert attempted > 100
