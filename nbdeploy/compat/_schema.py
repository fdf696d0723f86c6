"""What the ``inference_schema`` shim modules provide (see :mod:`nbdeploy.compat`).

``@input_schema(name, ParameterType(sample))`` and ``@output_schema(ParameterType(
sample))`` infer nbdeploy :class:`~nbdeploy.core.schema.Schema` objects from the samples
and attach the parameter types to ``run`` (``__nbdeploy_parameters__``,
:data:`~nbdeploy.core.scoring.OUTPUT_SCHEMA_ATTR`), where the scoring server finds them
(:class:`~nbdeploy.core.scoring.Decorations`): they validate and convert requests and
fill the OpenAPI documents, in preference to the model's registered schema. When the
real ``inference_schema`` package is installed, :mod:`nbdeploy.compat._decorations`
turns its parameter types into these classes, so both behave the same.

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

import dataclasses
import functools
import inspect
import json
from collections.abc import Callable
from io import StringIO
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from nbdeploy.core.schema import Schema, infer_schema
from nbdeploy.core.scoring import INPUT_SCHEMA_ATTR, OUTPUT_SCHEMA_ATTR, PARAMETERS_ATTR
from nbdeploy.exceptions import InvalidArgumentError, SchemaMismatchError, ScoringScriptError

__all__ = [
    "AbstractParameterType",
    "DescribedParameter",
    "NumpyParameterType",
    "PandasParameterType",
    "StandardPythonParameterType",
    "input_schema",
    "output_schema",
]

F = TypeVar("F", bound=Callable[..., Any])


class AbstractParameterType:
    """A sample-defined parameter type (the base of the ``*ParameterType`` classes).

    Parameters
    ----------
    sample_input:
        The sample the schema is inferred from.
    enforce_column_type, enforce_shape:
        nbdeploy always checks types; the batch (first) dimension is always variable,
        and the others are checked unless ``enforce_shape=False`` (numpy arrays).
    **options:
        Other options of the original classes (``apply_column_names``, ``orient`` ...),
        accepted and kept in :attr:`options`.

    Attributes
    ----------
    schema:
        What the API documents say about the parameter (the JSON form clients send).
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
        self._converter: Schema = self._infer()
        self.schema: Schema = self._document(self._converter)

    def _check_sample(self, sample: Any) -> None:
        """Refuse a sample of the wrong kind (subclasses)."""

    def _schema_sample(self) -> Any:
        return self.sample_input

    def _infer(self) -> Schema:
        """The schema requests are converted with."""
        return infer_schema(self._schema_sample())

    def _document(self, converter: Schema) -> Schema:
        """The schema the API documents show (the JSON layout clients send)."""
        return converter

    def is_converted(self, value: Any) -> bool:
        """Whether ``value`` is already what ``run`` should receive."""
        return False

    def deserialize_input(self, input_data: Any) -> Any:
        """Validate decoded JSON and convert it (raises ``SchemaMismatchError``)."""
        return self._converter.convert(input_data)

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
    >>> NumpyParameterType(np.zeros((1, 3)), enforce_shape=False).schema.shape
    (None, None)
    """

    def _infer(self) -> Schema:
        schema = infer_schema(self.sample_input)
        if self.enforce_shape or schema.shape is None:
            return schema
        return dataclasses.replace(schema, shape=(None,) * len(schema.shape))

    def _check_sample(self, sample: Any) -> None:
        if not isinstance(sample, np.ndarray):
            raise InvalidArgumentError(
                f"NumpyParameterType needs a numpy array sample, got {type(sample).__name__}",
                hint="pass e.g. np.array([[1.0, 2.0, 3.0]])",
            )

    def is_converted(self, value: Any) -> bool:
        return isinstance(value, np.ndarray)


#: The layouts ``orient=`` may name (those of ``DataFrame.to_json``).
_ORIENTS = ("records", "split", "index", "columns", "values", "table")


class PandasParameterType(AbstractParameterType):
    """A DataFrame parameter: ``run`` receives a DataFrame with the sample's columns and
    dtypes.

    ``orient`` (default ``"records"``) is the JSON layout the documents show and the
    example uses, as in ``DataFrame.to_json(orient=...)``. Records and split are always
    accepted (with the other layouts :meth:`Schema.convert` reads); the other orients
    are read with ``pandas.read_json``.

    Examples
    --------
    >>> PandasParameterType(pd.DataFrame({"a": [1.5]})).schema.names
    ['a']
    >>> PandasParameterType(pd.DataFrame({"a": [1.5]}), orient="split").schema.example
    {'columns': ['a'], 'index': [0], 'data': [[1.5]]}
    """

    def __init__(
        self,
        sample_input: Any,
        enforce_column_type: bool = True,
        enforce_shape: bool = True,
        apply_column_names: bool = False,
        orient: str = "records",
    ) -> None:
        if orient not in _ORIENTS:
            raise InvalidArgumentError(
                f"PandasParameterType: unknown orient {orient!r}",
                hint=f"use one of {', '.join(_ORIENTS)}",
            )
        self.orient = orient
        super().__init__(
            sample_input,
            enforce_column_type,
            enforce_shape,
            apply_column_names=apply_column_names,
            orient=orient,
        )

    def _document(self, converter: Schema) -> Schema:
        if self.orient == "records":
            return converter
        if self.orient == "split":
            return _split_schema(converter, self.sample_input)
        layout = json.loads(self.sample_input.to_json(orient=self.orient, date_format="iso"))
        return infer_schema(layout)

    def deserialize_input(self, input_data: Any) -> Any:
        if self.orient in ("records", "split") or not isinstance(input_data, (dict, list)):
            return self._converter.convert(input_data)
        try:
            orient: Any = self.orient  # one of _ORIENTS, checked in __init__
            frame = pd.read_json(StringIO(json.dumps(input_data)), orient=orient, dtype=False)
        except ValueError as exc:
            raise SchemaMismatchError(
                f"the data is not a DataFrame in the {self.orient!r} layout: {exc}",
                hint="compare the request with the example in /swagger.json",
            ) from None
        return self._converter.convert(frame.to_dict(orient="records"))

    def _check_sample(self, sample: Any) -> None:
        if not isinstance(sample, pd.DataFrame):
            raise InvalidArgumentError(
                f"PandasParameterType needs a pandas DataFrame sample, got {type(sample).__name__}",
                hint="pass e.g. pd.DataFrame([{'a': 1.0, 'b': 'x'}])",
            )

    def is_converted(self, value: Any) -> bool:
        return isinstance(value, pd.DataFrame)


def _split_schema(frame: Schema, sample: pd.DataFrame) -> Schema:
    """The documents' schema of a DataFrame in the split layout ``{"columns", "index",
    "data"}``: the column names, and rows with one value per column."""
    cells = [f.to_json_schema() for f in frame.fields]
    same = all(cell == cells[0] for cell in cells)
    row: dict[str, Any] = {
        "type": "array",
        "items": cells[0] if cells and same else {},
        "minItems": len(cells),
        "maxItems": len(cells),
    }
    if cells and not same:
        row["description"] = "one value per column, in order: " + ", ".join(
            f"{f.name} ({f.type.value})" for f in frame.fields
        )
    body = {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "items": {"type": "string", "enum": frame.names}},
            "index": {"type": "array", "items": {}},
            "data": {"type": "array", "items": row},
        },
        "required": ["columns", "data"],
    }
    example = json.loads(sample.head(3).to_json(orient="split", date_format="iso"))
    return Schema(kind="python", json=body, example=example)


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
        value = self._converter.convert(input_data)
        return _convert_nested(self.sample_input, value)

    def is_converted(self, value: Any) -> bool:
        """True when the nested typed values are converted already (the server did it
        before calling ``run``); plain values are checked again, which changes nothing."""
        return _nested_converted(self.sample_input, value) is True


def _nested_converted(sample: Any, value: Any) -> bool | None:
    """Whether every nested typed value in ``value`` is converted; None: none nested."""
    if isinstance(sample, AbstractParameterType):
        return sample.is_converted(value)
    if isinstance(sample, dict) and isinstance(value, dict):
        found = [_nested_converted(sub, value[key]) for key, sub in sample.items() if key in value]
        nested = [f for f in found if f is not None]
        return all(nested) if nested else None
    if isinstance(sample, (list, tuple)) and isinstance(value, list) and value:
        first = next(iter(sample), None)
        if isinstance(first, AbstractParameterType):
            return all(first.is_converted(item) for item in value)
    return None


def _convert_nested(sample: Any, value: Any) -> Any:
    if isinstance(sample, AbstractParameterType):
        return sample.convert(value)
    if isinstance(sample, (list, tuple)) and isinstance(value, list):
        # As the reference does: items of a list are all of the first item's type.
        first = next(iter(sample), None)
        if isinstance(first, AbstractParameterType):
            return [first.convert(item) for item in value]
        return value
    if isinstance(sample, dict) and isinstance(value, dict):
        if not any(isinstance(v, (AbstractParameterType, dict)) for v in sample.values()):
            return value
        converted = dict(value)
        for key, sub in sample.items():
            if key in converted:
                converted[key] = _convert_nested(sub, converted[key])
        return converted
    return value


@dataclasses.dataclass(frozen=True)
class DescribedParameter:
    """A parameter as ``@input_schema`` describes it: its type and whether a request
    may leave it out (:class:`~nbdeploy.core.scoring.ParameterSpec`)."""

    kind: Any
    optional: bool = False

    @property
    def schema(self) -> Schema | None:
        schema: Schema | None = getattr(self.kind, "schema", None)
        return schema

    def convert(self, value: Any) -> Any:
        return self.kind.convert(value)


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
    input schema. A request must send every described parameter unless the decorator
    says ``optional=True``.

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
        described = {
            **getattr(func, PARAMETERS_ATTR, {}),
            param_name: DescribedParameter(checked, optional=optional),
        }

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if convert_to_provided_type:
                if param_name in kwargs:
                    kwargs[param_name] = checked.convert(kwargs[param_name])
                elif index is not None and index < len(args):
                    args = (*args[:index], checked.convert(args[index]), *args[index + 1 :])
            return func(*args, **kwargs)

        # functools.wraps copied the inner decorators' attributes; add this one's.
        setattr(wrapper, PARAMETERS_ATTR, described)
        if positional and positional[0].name == param_name:
            setattr(wrapper, INPUT_SCHEMA_ATTR, checked.schema)
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
