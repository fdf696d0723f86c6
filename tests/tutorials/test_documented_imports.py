"""Every ``nbdeploy`` import a reader is shown resolves.

The tutorials run under nbval near the end of ``make test`` and the README examples in
their own tests; a module that moves (``core/profiling.py`` became the ``profiling``
package) breaks them there, late and one at a time. This test reads the code cells of
every tutorial and the Python blocks and inline code of the README and ``docs/``, and
imports each ``from nbdeploy… import name`` / ``import nbdeploy…`` it finds, in
seconds.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]

#: ``from nbdeploy.x import a, b`` or ``import nbdeploy.x`` inside prose, shell strings
#: or comments (``python -c "from nbdeploy.core.auth import …"``).
IMPORT_TEXT = re.compile(
    r"\bfrom\s+(nbdeploy(?:\.\w+)*)\s+import\s+\(?\s*([\w\s,]+)|\bimport\s+(nbdeploy(?:\.\w+)*)"
)


def _sources() -> Iterator[tuple[str, str]]:
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for index, cell in enumerate(notebook.cells):
            yield f"{path.name} cell {index}", cell.source
            for output in cell.get("outputs", []):
                text = output.get("text") or output.get("data", {}).get("text/plain", "")
                if text:
                    yield f"{path.name} cell {index} output", str(text)
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        yield path.name, path.read_text(encoding="utf-8")


def _imports(text: str) -> Iterator[tuple[str, str | None]]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        tree = None
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "nbdeploy":
                for alias in node.names:
                    yield str(node.module), alias.name
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "nbdeploy":
                        yield alias.name, None
    for match in IMPORT_TEXT.finditer(text):
        if match.group(1):
            for name in match.group(2).replace("\n", " ").split(","):
                name = name.strip().split()[0] if name.strip() else ""
                if name.isidentifier() and name != "as":
                    yield match.group(1), name
        else:
            yield match.group(3), None


def _documented() -> list[tuple[str, str, str | None]]:
    found = {(where, module, name) for where, text in _sources() for module, name in _imports(text)}
    return sorted(found, key=lambda item: (item[0], item[1], item[2] or ""))


def test_the_scan_finds_the_imports_the_tutorials_show() -> None:
    modules = {module for _, module, _ in _documented()}
    assert {"nbdeploy", "nbdeploy.aml", "nbdeploy.profiling", "nbdeploy.targets"} <= modules


@pytest.mark.parametrize(("where", "module", "name"), _documented())
def test_documented_import_resolves(where: str, module: str, name: str | None) -> None:
    try:
        imported = importlib.import_module(module)
    except ImportError as error:
        pytest.fail(f"{where}: `import {module}` fails ({error}); point the text at its new home")
    if name is not None and name != "*":
        submodule = (
            importlib.util.find_spec(f"{module}.{name}") if hasattr(imported, "__path__") else None
        )
        assert hasattr(imported, name) or submodule is not None, (
            f"{where}: `from {module} import {name}` fails; {module} has no {name!r}"
        )
