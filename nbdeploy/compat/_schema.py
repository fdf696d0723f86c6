"""What the ``inference_schema`` shim modules provide (see :mod:`nbdeploy.compat`).

``@input_schema(name, ParameterType(sample))`` and ``@output_schema(ParameterType(
sample))`` infer nbdeploy :class:`~nbdeploy.core.schema.Schema` objects from the samples
and attach them to ``run`` (:data:`~nbdeploy.core.scoring.INPUT_SCHEMA_ATTR`,
:data:`~nbdeploy.core.scoring.OUTPUT_SCHEMA_ATTR`), where the scoring server finds them:
they validate and convert requests and fill the OpenAPI documents, in preference to the
model's registered schema.

The decorated ``run`` receives the converted value in the named parameter: an ndarray
for :class:`NumpyParameterType`, a DataFrame for :class:`PandasParameterType`, the
validated value for :class:`StandardPythonParameterType` (whose sample may nest other
parameter types, converted in place). The server converts before calling ``run``; the
wrapper converts only values that are not converted yet, so calling the decorated
``run`` by hand with plain lists works too.

Examples
--------
>>> import numpy as np
>>> @input_schema("data", NumpyParameterType(np.array([[1.0, 2.0]])))
... def run(data):
...     return data.sum(axis=1)
>>> run([[1, 2], [3, 4]]).tolist()
[3.0, 7.0]
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from nbdeploy.core.schema import Schema, infer_schema
from nbdeploy.core.scoring import INPUT_SCHEMA_ATTR, OUTPUT_SCHEMA_ATTR
from nbdeploy.exceptions import InvalidArgumentError, ScoringScriptError

__all__ = [
    "DATA_PARAM_ATTR",
    "AbstractParameterType",
    "NumpyParameterType",
    "PandasParameterType",
    "StandardPythonParameterType",
    "input_schema",
    "output_schema",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Attribute naming ``run``'s first parameter when ``@input_schema`` describes it; the
#: server also accepts the request's data under that key (Azure ML clients send
#: ``{"<name>": ...}``).
DATA_PARAM_ATTR = "__nbdeploy_data_param__"


class AbstractParameterType:
    """A sample-defined parameter type (the base of the ``*ParameterType`` classes).

    Parameters
    ----------
    sample_input:
        The sample the schema is inferred from.
    enforce_column_type, enforce_shape:
        Accepted for compatibility. nbdeploy always checks types; the batch (first)
        dimension is always variable and the others are checked.
    **options:
        Other options of the original classes (``apply_column_names``, ``orient`` ...),
        accepted and kept in :attr:`options`.
    """

    def __init__(
        self,
        sample_input: Any,
        enforce_column_type: bool = True,
        enforce_shape: bool = True,
        **options: Any,
    ) -> None:
        self._check_sample(sample_input)
        self.sample_input = sample_input
        self.enforce_column_type = enforce_column_type
        self.enforce_shape = enforce_shape
        self.options = options
        self.schema: Schema = infer_schema(self._schema_sample())

    def _check_sample(self, sample: Any) -> None:
        """Refuse a sample of the wrong kind (subclasses)."""

    def _schema_sample(self) -> Any:
        return self.sample_input

    def is_converted(self, value: Any) -> bool:
        """Whether ``value`` is already what ``run`` should receive."""
        return False

    def deserialize_input(self, input_data: Any) -> Any:
        """Validate decoded JSON and convert it (raises ``SchemaMismatchError``)."""
        return self.schema.convert(input_data)

    def convert(self, value: Any) -> Any:
        """``value`` converted, unless it already is."""
        return value if self.is_converted(value) else self.deserialize_input(value)

    def input_to_swagger(self) -> dict[str, Any]:
        """The Swagger 2.0 schema of the parameter."""
        return self.schema.to_json_schema("swagger2")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.schema.kind} schema)"


class NumpyParameterType(AbstractParameterType):
    """A numpy array parameter: ``run`` receives an ndarray of the sample's dtype.

    Examples
    --------
    >>> NumpyParameterType(np.zeros((1, 3))).schema.shape
    (None, 3)
    """

    def _check_sample(self, sample: Any) -> None:
        if not isinstance(sample, np.ndarray):
            raise InvalidArgumentError(
                f"NumpyParameterType needs a numpy array sample, got {type(sample).__name__}",
                hint="pass e.g. np.array([[1.0, 2.0, 3.0]])",
            )

    def is_converted(self, value: Any) -> bool:
        return isinstance(value, np.ndarray)


class PandasParameterType(AbstractParameterType):
    """A DataFrame parameter: ``run`` receives a DataFrame with the sample's columns and
    dtypes (records, split or columns JSON layouts are accepted).

    Examples
    --------
    >>> PandasParameterType(pd.DataFrame({"a": [1.5]})).schema.names
    ['a']
    """

    def _check_sample(self, sample: Any) -> None:
        if not isinstance(sample, pd.DataFrame):
            raise InvalidArgumentError(
                f"PandasParameterType needs a pandas DataFrame sample, got {type(sample).__name__}",
                hint="pass e.g. pd.DataFrame([{'a': 1.0, 'b': 'x'}])",
            )

    def is_converted(self, value: Any) -> bool:
        return isinstance(value, pd.DataFrame)


def _plain_sample(sample: Any) -> Any:
    """``sample`` with nested parameter types replaced by their JSON examples."""
    if isinstance(sample, AbstractParameterType):
        return sample.schema.example
    if isinstance(sample, dict):
        return {key: _plain_sample(value) for key, value in sample.items()}
    if isinstance(sample, (list, tuple)):
        return [_plain_sample(value) for value in sample]
    return sample


class StandardPythonParameterType(AbstractParameterType):
    """A plain Python parameter (dict, list, str, number, bool), validated against the
    sample's inferred JSON Schema. A dict sample may nest other parameter types
    (``{"frame": PandasParameterType(df)}``); those keys are converted in place.

    Examples
    --------
    >>> t = StandardPythonParameterType({"a": NumpyParameterType(np.zeros((1, 2)))})
    >>> type(t.convert({"a": [[1, 2]]})["a"]).__name__
    'ndarray'
    """

    def _schema_sample(self) -> Any:
        return _plain_sample(self.sample_input)

    def deserialize_input(self, input_data: Any) -> Any:
        value = self.schema.convert(input_data)
        return _convert_nested(self.sample_input, value)


def _convert_nested(sample: Any, value: Any) -> Any:
    if isinstance(sample, AbstractParameterType):
        return sample.convert(value)
    if isinstance(sample, dict) and isinstance(value, dict):
        if not any(isinstance(v, (AbstractParameterType, dict)) for v in sample.values()):
            return value
        converted = dict(value)
        for key, sub in sample.items():
            if key in converted:
                converted[key] = _convert_nested(sub, converted[key])
        return converted
    return value


def _check_type(param_type: Any, decorator: str) -> AbstractParameterType:
    if not isinstance(param_type, AbstractParameterType):
        raise ScoringScriptError(
            f"{decorator} needs a parameter type such as NumpyParameterType(sample), got "
            f"{type(param_type).__name__}",
            hint="wrap the sample: NumpyParameterType(np.array(...)), "
            "PandasParameterType(df) or StandardPythonParameterType(obj)",
        )
    return param_type


def input_schema(
    param_name: str,
    param_type: AbstractParameterType,
    convert_to_provided_type: bool = True,
    optional: bool = False,
) -> Callable[[F], F]:
    """Describe ``run``'s parameter ``param_name`` by a sample (Azure ML's decorator).

    When ``param_name`` is ``run``'s first parameter its schema becomes the service's
    input schema. ``optional`` is accepted for compatibility.

    Raises
    ------
    ScoringScriptError
        ``run`` has no such parameter, or ``param_type`` is not a parameter type.

    Examples
    --------
    >>> @input_schema("data", PandasParameterType(pd.DataFrame({"x": [1]})))
    ... def run(data):
    ...     return type(data).__name__
    >>> run([{"x": 2}])
    'DataFrame'
    """
    checked = _check_type(param_type, f"@input_schema({param_name!r}, ...)")
    del optional

    def decorate(func: F) -> F:
        signature = inspect.signature(func)
        parameters = list(signature.parameters.values())
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        positional = [p for p in parameters if p.kind in kinds]
        takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        if param_name not in signature.parameters and not takes_kwargs:
            name = getattr(func, "__name__", "run")
            raise ScoringScriptError(
                f"@input_schema({param_name!r}, ...): {name}() has no parameter "
                f"{param_name!r} (it takes {', '.join(signature.parameters) or 'nothing'})",
                hint="name the decorator's parameter like the function's, e.g. "
                "@input_schema('data', ...) on def run(data)",
            )
        index = next((i for i, p in enumerate(positional) if p.name == param_name), None)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if convert_to_provided_type:
                if param_name in kwargs:
                    kwargs[param_name] = checked.convert(kwargs[param_name])
                elif index is not None and index < len(args):
                    args = (*args[:index], checked.convert(args[index]), *args[index + 1 :])
            return func(*args, **kwargs)

        if positional and positional[0].name == param_name:
            setattr(wrapper, INPUT_SCHEMA_ATTR, checked.schema)
            setattr(wrapper, DATA_PARAM_ATTR, param_name)
        return wrapper  # type: ignore[return-value]

    return decorate


def output_schema(output_type: AbstractParameterType) -> Callable[[F], F]:
    """Describe what ``run`` returns by a sample (Azure ML's decorator); the service's
    output schema and its OpenAPI response example.

    Examples
    --------
    >>> @output_schema(NumpyParameterType(np.array([1.5])))
    ... def run(data):
    ...     return data
    >>> from nbdeploy.core.scoring import OUTPUT_SCHEMA_ATTR
    >>> getattr(run, OUTPUT_SCHEMA_ATTR).kind
    'ndarray'
    """
    checked = _check_type(output_type, "@output_schema(...)")

    def decorate(func: F) -> F:
        setattr(func, OUTPUT_SCHEMA_ATTR, checked.schema)
        return func

    return decorate
