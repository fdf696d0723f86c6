"""Minimal ``azureml`` and ``inference_schema`` modules, for Azure ML entry scripts.

Scoring scripts written for Azure ML import a few names from packages nbdeploy does not
need (and that are heavy or gone from PyPI)::

    from azureml.core.model import Model                      # Model.get_model_path()
    from azureml.contrib.services.aml_request import AMLRequest, rawhttp
    from azureml.contrib.services.aml_response import AMLResponse
    from inference_schema.schema_decorators import input_schema, output_schema
    from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
    from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
    from inference_schema.parameter_types.standard_py_parameter_type import (
        StandardPythonParameterType,
    )

The scoring server calls :func:`install` before it imports a script: a meta-path finder
placed **last** on ``sys.meta_path`` then serves those modules from this folder
(``nbdeploy/compat/azureml/...``, ``nbdeploy/compat/inference_schema/...``). Being
last, it only answers when the real packages are not importable — installed real
packages always win. It is never installed in a notebook kernel: only the server
process (and tools that run a script the way the server does) call :func:`install`.

What the modules do (implemented in :mod:`nbdeploy.compat._schema` and
:mod:`nbdeploy.compat._aml`; :func:`decorations` reads the schema decorators of either
the stand-ins or the real ``inference_schema`` package, see
:mod:`nbdeploy.compat._decorations`):

- ``Model.get_model_path(model_name, version=None)`` is
  :func:`nbdeploy.get_model_path`;
- ``AMLRequest`` is :class:`nbdeploy.Request`, ``rawhttp`` is :func:`nbdeploy.rawhttp`,
  ``AMLResponse(message, status_code, response_headers=None, json_str=False)`` a
  :class:`nbdeploy.Response`;
- ``@input_schema(name, ParameterType(sample))`` infers a
  :class:`~nbdeploy.core.schema.Schema` from the sample: when ``name`` is ``run``'s
  first parameter it becomes the service's input schema (validation, conversion,
  OpenAPI document, example), preferred over the model's registered schema; the
  decorated ``run`` gets the converted value (an ndarray for ``NumpyParameterType``, a
  DataFrame for ``PandasParameterType``). Other parameters are filled from the
  request's other top-level keys and converted the same way.
  ``@output_schema(ParameterType(sample))`` sets the output schema.

Examples
--------
>>> import sys
>>> finder = install()
>>> from inference_schema.schema_decorators import input_schema  # doctest: +SKIP
>>> uninstall()
>>> "inference_schema" in sys.modules
False
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from ._decorations import decorations

__all__ = [
    "SHIMMED_PACKAGES",
    "ShimFinder",
    "decorations",
    "install",
    "installed",
    "schema_package",
    "uninstall",
]

#: The top-level packages this folder can stand in for.
SHIMMED_PACKAGES = ("azureml", "inference_schema")

_ROOT = Path(__file__).resolve().parent


class ShimFinder(importlib.abc.MetaPathFinder):
    """Finds ``azureml.*`` / ``inference_schema.*`` modules in this folder.

    Only names that exist here are found; anything else (``azureml.core.workspace``)
    is left to the normal import error, so a script using more of the SDK than the
    shim offers fails with ``No module named ...`` at import, not later.
    """

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        parts = fullname.split(".")
        if parts[0] not in SHIMMED_PACKAGES or not all(p.isidentifier() for p in parts):
            return None
        base = _ROOT.joinpath(*parts)
        package = base / "__init__.py"
        if package.is_file():
            return importlib.util.spec_from_file_location(
                fullname, package, submodule_search_locations=[str(base)]
            )
        module = base.with_suffix(".py")
        if module.is_file():
            return importlib.util.spec_from_file_location(fullname, module)
        return None


def installed() -> ShimFinder | None:
    """The finder on ``sys.meta_path``, or ``None``."""
    for finder in sys.meta_path:
        if isinstance(finder, ShimFinder):
            return finder
    return None


def install() -> ShimFinder:
    """Put the finder last on ``sys.meta_path`` (once); return it.

    Called by the scoring server before it imports a scoring script. Real
    ``azureml`` / ``inference_schema`` packages, when importable, are found first.
    """
    finder = installed()
    if finder is None:
        finder = ShimFinder()
        sys.meta_path.append(finder)
    return finder


def _is_shim(module: ModuleType) -> bool:
    origin = getattr(getattr(module, "__spec__", None), "origin", None)
    if not origin:
        return False
    try:
        return Path(origin).resolve().is_relative_to(_ROOT)
    except (OSError, ValueError):
        return False


def schema_package() -> str | None:
    """Which ``inference_schema`` this process imported: ``"nbdeploy's stand-in"``,
    ``"inference-schema <version> (<folder>)"``, or ``None`` (not imported)."""
    module = sys.modules.get("inference_schema")
    if module is None:
        return None
    if _is_shim(module):
        return "nbdeploy's stand-in"
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("inference-schema")
    except PackageNotFoundError:
        release = "?"
    return f"inference-schema {release} ({Path(module.__file__ or '').parent})"


def uninstall() -> None:
    """Remove the finder and forget the shim modules it loaded (tests use this to
    leave a process as they found it)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, ShimFinder)]
    for name in list(sys.modules):
        if name.split(".", 1)[0] in SHIMMED_PACKAGES and _is_shim(sys.modules[name]):
            del sys.modules[name]
