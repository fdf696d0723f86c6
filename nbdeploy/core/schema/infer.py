"""Inference: a :class:`~nbdeploy.core.schema.Schema` from a sample.

Inference is table-driven (the approach of mlflow's ``types/utils.py``): a registry maps
the sample's type to one small function per input kind, and dtype tables map numpy dtype
kinds and pandas' own type inference to :class:`~nbdeploy.core.schema.FieldType`.
Python objects (dicts, lists, scalars) get an inferred JSON Schema whose records'
properties are merged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from nbdeploy.exceptions import InvalidArgumentError

from .fields import (
    KIND_TYPES,
    Field,
    FieldType,
    all_integral,
    null_mask,
    nullable_json,
    to_field_json,
    to_json_value,
    types_of,
)
from .schema import Schema

__all__ = ["infer_schema"]


# pandas' own inference on object columns (`infer_dtype(skipna=True)`, a C loop)
# -> FieldType; anything else ("mixed", "bytes" ...) is ANY.
_INFERRED_TYPES: dict[str, FieldType] = {
    "string": FieldType.STRING,
    "integer": FieldType.INTEGER,
    "floating": FieldType.NUMBER,
    "mixed-integer-float": FieldType.NUMBER,
    "decimal": FieldType.NUMBER,
    "boolean": FieldType.BOOLEAN,
    "datetime": FieldType.DATETIME,
    "datetime64": FieldType.DATETIME,
    "date": FieldType.DATETIME,
}

# pandas dtypes known by class before their `kind` is looked at.
_DTYPE_CLASSES: tuple[tuple[type, FieldType], ...] = (
    (pd.CategoricalDtype, FieldType.CATEGORY),
    (pd.StringDtype, FieldType.STRING),
)


def _field_type(column: pd.Series[Any]) -> FieldType:
    dtype = column.dtype
    for cls, field_type in _DTYPE_CLASSES:
        if isinstance(dtype, cls):
            return field_type
    if dtype.kind == "O":
        return _INFERRED_TYPES.get(pd.api.types.infer_dtype(column, skipna=True), FieldType.ANY)
    return KIND_TYPES.get(dtype.kind, FieldType.ANY)


def _column_field(name: Any, column: pd.Series[Any]) -> Field:
    field_type = _field_type(column)
    mask = null_mask(column)
    nullable = bool(mask is not None and mask.any())
    categories: tuple[Any, ...] | None = None
    if field_type is FieldType.NUMBER and nullable and column.dtype.kind == "f":
        # A float column of whole numbers with NaN is an integer column that allows
        # null: pandas stores such columns as float64 because int64 has no NaN.
        present = column.to_numpy()[~mask] if mask is not None else column.to_numpy()
        if present.size and all_integral(present):
            field_type = FieldType.INTEGER
    elif field_type is FieldType.CATEGORY:
        assert isinstance(column.dtype, pd.CategoricalDtype)
        levels = column.dtype.categories
        categories = tuple(to_json_value(v) for v in levels.tolist())
    return Field(
        name=str(name),
        type=field_type,
        nullable=nullable,
        categories=categories,
        dtype=str(column.dtype),
    )


def _frame_example(frame: pd.DataFrame, fields: Sequence[Field], rows: int) -> list[Any]:
    head = frame.head(rows)
    columns = [
        [to_field_json(f, v) for v in head.iloc[:, i].tolist()] for i, f in enumerate(fields)
    ]
    return [
        {f.name: col[r] for f, col in zip(fields, columns, strict=True)} for r in range(len(head))
    ]


def _infer_dataframe(sample: pd.DataFrame, example_rows: int) -> Schema:
    fields = tuple(_column_field(name, sample.iloc[:, i]) for i, name in enumerate(sample.columns))
    return Schema("dataframe", fields, example=_frame_example(sample, fields, example_rows))


def _infer_series(sample: pd.Series[Any], example_rows: int) -> Schema:
    field = _column_field("value" if sample.name is None else sample.name, sample)
    example = [to_field_json(field, v) for v in sample.head(example_rows).tolist()]
    return Schema("series", (field,), example=example)


def _array_dtype_name(dtype: np.dtype[Any]) -> str:
    # Fixed-width text dtypes ("<U5") would truncate longer request strings.
    return {"U": "str", "S": "bytes"}.get(dtype.kind, dtype.name)


def _infer_ndarray(sample: np.ndarray[Any, Any], example_rows: int) -> Schema:
    shape: tuple[int | None, ...] = (None, *sample.shape[1:]) if sample.ndim else ()
    example = to_json_value(sample[:example_rows] if sample.ndim else sample)
    return Schema("ndarray", dtype=_array_dtype_name(sample.dtype), shape=shape, example=example)


def _infer_python(sample: Any, example_rows: int) -> Schema:
    value = to_json_value(sample)
    example = value[:example_rows] if isinstance(value, list) else value
    return Schema("python", json=_open_nulls(_json_schema_of(value)), example=example)


def _infer_numpy_scalar(sample: np.generic, example_rows: int) -> Schema:
    return _infer_python(sample.item(), example_rows)


_InferFn = Callable[[Any, int], Schema]

# The registry: sample type -> inference function, looked up along the type's MRO.
# Lists of records, dicts and scalars all go to `_infer_python`, whose JSON Schema
# inference merges the records' properties.
_INFERRERS: dict[type, _InferFn] = {
    pd.DataFrame: _infer_dataframe,
    pd.Series: _infer_series,
    np.ndarray: _infer_ndarray,
    np.generic: _infer_numpy_scalar,
    list: _infer_python,
    tuple: _infer_python,
    dict: _infer_python,
    str: _infer_python,
    int: _infer_python,
    float: _infer_python,
    bool: _infer_python,
    type(None): _infer_python,
}


def infer_schema(sample: Any, *, example_rows: int = 3) -> Schema:
    """Infer the :class:`Schema` of a model input or output from a sample.

    Parameters
    ----------
    sample:
        A pandas DataFrame or Series, a numpy array, or standard Python objects (dict,
        list, str, int, float, bool, None — nested as JSON would be).
    example_rows:
        How many leading rows to keep as the OpenAPI example.

    Returns
    -------
    Schema
        ``dataframe``/``series`` with one :class:`Field` per column, ``ndarray`` with
        dtype and shape (batch dimension ``None``), or ``python`` with a JSON Schema.

    Raises
    ------
    InvalidArgumentError
        For samples of any other type.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> df = pd.DataFrame({"n": [1.0, np.nan], "c": pd.Categorical(["a", "b"])})
    >>> [(f.type.value, f.nullable, f.categories) for f in infer_schema(df).fields]
    [('integer', True, None), ('category', False, ('a', 'b'))]
    >>> infer_schema(np.zeros((10, 3), dtype="float32")).shape
    (None, 3)
    >>> infer_schema({"a": 1, "b": [1.5]}).json["properties"]["b"]
    {'type': 'array', 'items': {'type': 'number'}}
    """
    if isinstance(sample, Schema):
        return sample
    for cls in type(sample).__mro__:
        infer = _INFERRERS.get(cls)
        if infer is not None:
            return infer(sample, example_rows)
    raise InvalidArgumentError(
        f"cannot infer a schema from a sample of type {type(sample).__qualname__}",
        hint="pass a pandas DataFrame or Series, a numpy array, or JSON-like Python "
        "objects (dict, list, str, int, float, bool, None)",
    )


def _with_null(schema: dict[str, Any]) -> dict[str, Any]:
    return nullable_json(schema, "2020-12") if schema else schema


def _merge_json(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The narrowest schema (of the subset this module writes) accepting both."""
    if a == b:
        return a
    if not a or not b:
        return {}
    types_a, types_b = types_of(a), types_of(b)
    nullable = "null" in types_a or "null" in types_b
    core_a, core_b = types_a - {"null"}, types_b - {"null"}
    core: dict[str, Any]
    if not core_a or not core_b:
        core = _strip_null(a if core_a else b)
    elif core_a == core_b == {"object"}:
        props_a, props_b = a.get("properties", {}), b.get("properties", {})
        props = {
            k: _merge_json(props_a[k], props_b[k])
            if k in props_a and k in props_b
            else props_a.get(k, props_b.get(k))
            for k in {**props_a, **props_b}
        }
        required = [k for k in a.get("required", []) if k in set(b.get("required", []))]
        core = {"type": "object", "properties": props, "required": required}
    elif core_a == core_b == {"array"}:
        core = {"type": "array", "items": _merge_json(a.get("items", {}), b.get("items", {}))}
    elif core_a == core_b and len(core_a) == 1:
        core = {"type": next(iter(core_a))}
    elif core_a | core_b == {"integer", "number"}:
        core = {"type": "number"}
    else:
        return {}
    return _with_null(core) if nullable else core


def _strip_null(schema: dict[str, Any]) -> dict[str, Any]:
    types = types_of(schema) - {"null"}
    out = dict(schema)
    if len(types) == 1:
        out["type"] = types.pop()
    return out


def _open_nulls(schema: Any) -> Any:
    """Replace ``{"type": "null"}`` by ``{}`` (any value), recursively.

    A sample value that is always None says nothing about the type the model takes, so
    publishing ``null`` as the only allowed value would refuse every real request.
    """
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") == "null":
        return {}
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: _open_nulls(v) for k, v in out["properties"].items()}
    if "items" in out:
        out["items"] = _open_nulls(out["items"])
    return out


def _json_schema_of(value: Any) -> dict[str, Any]:
    """Infer the JSON Schema of a JSON-able value (see :func:`to_json_value`)."""
    for cls in type(value).__mro__:
        infer = _JSON_INFERRERS.get(cls)
        if infer is not None:
            return infer(value)
    return {}


def _json_schema_of_list(value: list[Any]) -> dict[str, Any]:
    items: dict[str, Any] | None = None
    for element in value:
        schema = _json_schema_of(element)
        items = schema if items is None else _merge_json(items, schema)
    return {"type": "array", "items": items if items is not None else {}}


def _json_schema_of_dict(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {k: _json_schema_of(v) for k, v in value.items()},
        "required": list(value),
    }


_JSON_INFERRERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    bool: lambda _: {"type": "boolean"},
    int: lambda _: {"type": "integer"},
    float: lambda _: {"type": "number"},
    str: lambda _: {"type": "string"},
    type(None): lambda _: {"type": "null"},
    list: _json_schema_of_list,
    dict: _json_schema_of_dict,
}
