"""What the schema decorators on a scoring script's ``run`` say, from either package.

:func:`decorations` reads nbdeploy's stand-ins (attributes on ``run``) and the real
``inference_schema`` package alike, so a script behaves the same whichever is
installed: same conversion, same 422 messages, same API documents.

How the real package records a decorated function (``inference_schema`` 1.x, read
from its source): ``@input_schema(name, param_type)`` and ``@output_schema(type)``
wrap ``run`` in ``wrapt.FunctionWrapper`` objects, one per decorator, chained through
``__wrapped__``. Each wrapper's ``_self_wrapper`` is the decorator's inner function
(``input_schema.<locals>.decorator_input``), whose closure holds ``param_name`` and
``param_type`` — the parameter type object, with its sample in ``sample_input``. The
output decorator's inner function keeps no closure; its Swagger schema (with the
example) lives only in the package's registry, read with
``inference_schema.schema_util.get_output_schema(run)``.

The real parameter types become nbdeploy's (:mod:`nbdeploy.compat._schema`), built
from the same sample and options: the server converts and checks each parameter with
them before ``run`` is called (so the real decorator sees values it passes through
unchanged), and the documents describe them. A parameter type nbdeploy does not know
(a custom subclass of ``AbstractParameterType``, ``SparkParameterType``) is left to
the real decorator; what it raises is a 422 (:meth:`RunCall.request_error`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nbdeploy.core.schema import Schema
from nbdeploy.core.scoring import OUTPUT_SCHEMA_ATTR, PARAMETERS_ATTR, Decorations, ParameterSpec

__all__ = ["decorations", "from_real_type"]

logger = logging.getLogger("nbdeploy.server")

_REAL = "inference_schema"


class _Undescribed:
    """A parameter the real decorator converts by itself (nbdeploy does not know its
    type): undocumented, passed through unchanged."""

    schema: Schema | None = None
    optional: bool = False

    def convert(self, value: Any) -> Any:
        return value


def decorations(run: Callable[..., Any]) -> Decorations:
    """The schema decorations on ``run``: nbdeploy's stand-ins, the real package's, or
    none (``Decorations(decorated=False)``).

    Examples
    --------
    >>> decorations(lambda data: data).decorated
    False
    """
    if getattr(run, PARAMETERS_ATTR, None) is not None or hasattr(run, OUTPUT_SCHEMA_ATTR):
        return Decorations.from_attributes(run)
    util = sys.modules.get(f"{_REAL}.schema_util")
    if util is None or not _is_decorated(util, run):
        return Decorations()
    from nbdeploy.compat._schema import DescribedParameter

    parameters: dict[str, ParameterSpec] = {
        name: DescribedParameter(from_real_type(kind), optional=optional)
        for name, kind, optional in _real_inputs(run)
    }
    package = Path(util.__file__ or "").resolve().parent
    return Decorations(
        decorated=True,
        parameters=parameters,
        output_schema=_real_output(util, run),
        package_dirs=(str(package),),
    )


def _is_decorated(util: Any, run: Callable[..., Any]) -> bool:
    try:
        return bool(util.is_schema_decorated(run))
    except Exception:  # an older or newer package with another registry
        logger.warning("cannot ask inference_schema whether run() is decorated", exc_info=True)
        return False


def _real_inputs(run: Any) -> Iterator[tuple[str, Any, bool]]:
    """``(param_name, param_type, optional)`` of every ``@input_schema`` on ``run``,
    outermost first (the ``wrapt`` chain described in the module docstring)."""
    seen: set[str] = set()
    layer = run
    while hasattr(layer, "_self_wrapper") and hasattr(layer, "__wrapped__"):
        inner = layer._self_wrapper
        code = getattr(inner, "__code__", None)
        cells = getattr(inner, "__closure__", None) or ()
        if code is not None:
            bound = dict(zip(code.co_freevars, cells, strict=False))
            if "param_name" in bound and "param_type" in bound:
                name = bound["param_name"].cell_contents
                if isinstance(name, str) and name not in seen:
                    seen.add(name)
                    optional = bound["optional"].cell_contents if "optional" in bound else False
                    yield name, bound["param_type"].cell_contents, bool(optional)
        layer = layer.__wrapped__


def _real_output(util: Any, run: Any) -> Schema | None:
    """The output schema the real package recorded (its Swagger with example)."""
    try:
        swagger = dict(util.get_output_schema(run))
    except Exception:
        return None
    if "example" not in swagger:
        return None  # the default {"type": "object"}: no @output_schema
    example = swagger.pop("example")
    return Schema(kind="python", json=swagger, example=example)


def _class_names(value: Any) -> set[str]:
    return {cls.__name__ for cls in type(value).__mro__ if cls.__module__.startswith(f"{_REAL}.")}


def from_real_type(kind: Any) -> Any:
    """nbdeploy's parameter type for a real ``inference_schema`` one (same sample and
    options), or a pass-through for types nbdeploy does not know.

    Examples
    --------
    >>> from_real_type(object()).schema is None
    True
    """
    from nbdeploy.compat import _schema as standin

    names = _class_names(kind)
    sample = getattr(kind, "sample_input", None)
    try:
        if "NumpyParameterType" in names:
            return standin.NumpyParameterType(
                sample,
                enforce_column_type=getattr(kind, "enforce_column_type", True),
                enforce_shape=getattr(kind, "enforce_shape", True),
            )
        if "PandasParameterType" in names:
            return standin.PandasParameterType(
                sample,
                enforce_column_type=getattr(kind, "enforce_column_type", True),
                enforce_shape=getattr(kind, "enforce_shape", True),
                orient=getattr(kind, "orient", "records"),
            )
        if "StandardPythonParameterType" in names:
            return standin.StandardPythonParameterType(_standin_sample(sample))
    except Exception as exc:  # a sample nbdeploy cannot describe: the decorator decides
        logger.warning(
            "cannot describe %s(%r): %s; the decorator converts it",
            type(kind).__name__,
            type(sample).__name__,
            exc,
        )
    return _Undescribed()


def _standin_sample(sample: Any) -> Any:
    """A StandardPythonParameterType sample with nested real types made nbdeploy's."""
    if _class_names(sample) & {"AbstractParameterType"}:
        converted = from_real_type(sample)
        if isinstance(converted, _Undescribed):
            raise ValueError(f"nested {type(sample).__name__} is not supported")
        return converted
    if isinstance(sample, dict):
        return {key: _standin_sample(value) for key, value in sample.items()}
    if isinstance(sample, (list, tuple)):
        return type(sample)(_standin_sample(value) for value in sample)
    return sample
