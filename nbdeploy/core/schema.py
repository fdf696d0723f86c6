"""Schemas: inferred from samples, published as JSON Schema, enforced on requests.

A :class:`Schema` says what a model takes (or returns). It is inferred once, from the
sample given at registration or to ``@input_schema``, stored as a plain dict in the
workspace and the bundle, published in the service's OpenAPI documents
(:mod:`nbdeploy.core.openapi`) and enforced on every request by :meth:`Schema.convert`.

Four kinds of schema exist, one per kind of sample:

``dataframe``
    A pandas DataFrame: one :class:`Field` per column with its type, nullability,
    category levels and original dtype. Requests may send records (the Power BI style),
    the ``split`` layout, columns, or positional rows; ``run()`` receives a DataFrame
    whose dtypes match the sample's.
``series``
    A pandas Series: one field; requests send a list of values.
``ndarray``
    A numpy array: dtype and shape, with the first (batch) dimension variable.
``python``
    Standard Python objects (dict, list, str, numbers, bool, None): an inferred JSON
    Schema; requests are validated and passed on unchanged.

Inference is table-driven (the approach of mlflow's ``types/utils.py``): a registry maps
the sample's type to one small function per input kind, and dtype tables map numpy dtype
kinds and pandas' own type inference to :class:`FieldType`. Every check is vectorized;
loops over rows happen only on the error path, to name the offending row.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import math
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any, Literal

import numpy as np
import pandas as pd

from nbdeploy.exceptions import InvalidArgumentError, SchemaMismatchError

__all__ = [
    "Dialect",
    "Field",
    "FieldType",
    "Schema",
    "SchemaKind",
    "infer_schema",
    "json_default",
]


class FieldType(str, Enum):
    """The type of one column (or property), independent of pandas and numpy."""

    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    STRING = "string"
    DATETIME = "datetime"
    CATEGORY = "category"
    OBJECT = "object"
    ARRAY = "array"
    ANY = "any"


#: The JSON Schema flavours :meth:`Schema.to_json_schema` writes: ``"2020-12"`` (JSON
#: Schema 2020-12, used by OpenAPI 3.1: nullable as ``"type": [t, "null"]``) and
#: ``"swagger2"`` (the Swagger 2.0 subset: one type per schema, ``"x-nullable": true``).
Dialect = Literal["2020-12", "swagger2"]
_DIALECTS = ("2020-12", "swagger2")

# FieldType -> its JSON Schema (without nullability).
_FIELD_JSON: dict[FieldType, dict[str, Any]] = {
    FieldType.INTEGER: {"type": "integer", "format": "int64"},
    FieldType.NUMBER: {"type": "number", "format": "double"},
    FieldType.BOOLEAN: {"type": "boolean"},
    FieldType.STRING: {"type": "string"},
    FieldType.DATETIME: {"type": "string", "format": "date-time"},
    FieldType.OBJECT: {"type": "object"},
    FieldType.ARRAY: {"type": "array", "items": {}},
    FieldType.ANY: {},
}

# What an error message says was expected, per FieldType.
_EXPECTED: dict[FieldType, str] = {
    FieldType.INTEGER: "integer",
    FieldType.NUMBER: "number",
    FieldType.BOOLEAN: "boolean",
    FieldType.STRING: "string",
    FieldType.DATETIME: "datetime (ISO 8601 string)",
    FieldType.OBJECT: "object",
    FieldType.ARRAY: "array",
    FieldType.ANY: "any value",
}


def _nullable_json(schema: dict[str, Any], dialect: str) -> dict[str, Any]:
    """Let ``schema`` also accept ``null``, in the given dialect."""
    out = dict(schema)
    if dialect == "swagger2":
        out["x-nullable"] = True
        return out
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        out["type"] = [*kind, "null"]
    return out


@dataclasses.dataclass(frozen=True)
class Field:
    """One column of a table (or one property of a record).

    Parameters
    ----------
    name:
        The column name (always a string; non-string labels are converted with ``str``).
    type:
        The column's :class:`FieldType` (a plain string such as ``"integer"`` is
        accepted and converted).
    nullable:
        Whether the column may hold nulls (NaN, NaT, None, ``pd.NA``).
    categories:
        The levels of a ``category`` column, as JSON-able values; ``None`` otherwise.
    dtype:
        The sample's dtype as text (``"int64"``, ``"Int64"``, ``"datetime64[ns]"`` ...),
        so requests are converted back to what the model saw.

    Examples
    --------
    >>> f = Field("age", FieldType.INTEGER, nullable=True, dtype="float64")
    >>> Field.from_dict(f.to_dict()) == f
    True
    >>> f.to_json_schema()
    {'type': ['integer', 'null'], 'format': 'int64'}
    """

    name: str
    type: FieldType
    nullable: bool = False
    categories: tuple[Any, ...] | None = None
    dtype: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise InvalidArgumentError(
                f"field name must be a string, got {self.name!r}",
                hint="convert column labels with str() before building a Field",
            )
        try:
            kind = FieldType(self.type)
        except ValueError:
            raise InvalidArgumentError(
                f"unknown field type {self.type!r} for field {self.name!r}",
                hint=f"use one of {[t.value for t in FieldType]}",
            ) from None
        object.__setattr__(self, "type", kind)
        if self.categories is not None:
            if kind is not FieldType.CATEGORY:
                raise InvalidArgumentError(
                    f"field {self.name!r} of type {kind.value!r} cannot have categories",
                    hint="only fields of type 'category' have levels",
                )
            object.__setattr__(self, "categories", tuple(self.categories))
        elif kind is FieldType.CATEGORY:
            raise InvalidArgumentError(
                f"category field {self.name!r} needs its levels in `categories`",
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` turns it back into an equal Field."""
        return {
            "name": self.name,
            "type": self.type.value,
            "nullable": self.nullable,
            "categories": None if self.categories is None else list(self.categories),
            "dtype": self.dtype,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Field:
        """Rebuild a Field from :meth:`to_dict` output."""
        try:
            categories = data.get("categories")
            return cls(
                name=data["name"],
                type=FieldType(data["type"]),
                nullable=bool(data.get("nullable", False)),
                categories=None if categories is None else tuple(categories),
                dtype=data.get("dtype"),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidArgumentError(
                f"not a field description: {dict(data)!r} ({exc})",
                hint="a field needs at least 'name' and 'type'",
            ) from None

    @property
    def expected(self) -> str:
        """What a value of this field must be, in words (used in error messages)."""
        if self.type is FieldType.CATEGORY:
            return f"one of {list(self.categories or ())!r}"
        return _EXPECTED[self.type]

    def to_json_schema(self, dialect: Dialect = "2020-12") -> dict[str, Any]:
        """The JSON Schema of one value of this field.

        Examples
        --------
        >>> Field("when", FieldType.DATETIME, nullable=True).to_json_schema("swagger2")
        {'type': 'string', 'format': 'date-time', 'x-nullable': True}
        """
        _check_dialect(dialect)
        if self.type is FieldType.CATEGORY:
            levels = list(self.categories or ())
            schema: dict[str, Any] = {"enum": levels}
            kinds = {_json_type_name(v) for v in levels}
            if len(kinds) == 1:
                # A type next to the enum helps Swagger UI and code generators.
                schema = {"type": kinds.pop(), "enum": levels}
        else:
            schema = dict(_FIELD_JSON[self.type])
            if "items" in schema:
                schema["items"] = {}
        if self.nullable and self.type is not FieldType.ANY:
            schema = _nullable_json(schema, dialect)
        return schema


def _json_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def _check_dialect(dialect: str) -> None:
    if dialect not in _DIALECTS:
        raise InvalidArgumentError(
            f"unknown JSON Schema dialect {dialect!r}", hint=f"use one of {list(_DIALECTS)}"
        )


SchemaKind = Literal["dataframe", "series", "ndarray", "python"]
_KINDS = ("dataframe", "series", "ndarray", "python")


@dataclasses.dataclass(frozen=True)
class Schema:
    """What a model takes (or returns), inferred from a sample.

    Parameters
    ----------
    kind:
        ``"dataframe"``, ``"series"``, ``"ndarray"`` or ``"python"``.
    fields:
        The columns (dataframe) or the single field (series).
    dtype:
        The array's dtype (ndarray): a numpy dtype name, or ``"str"`` / ``"bytes"``.
    shape:
        The array's shape (ndarray), ``None`` for a variable dimension (the batch).
    json:
        The inferred JSON Schema (python kind), in the 2020-12 dialect.
    example:
        The first rows of the sample as JSON-able data, for OpenAPI examples.

    Examples
    --------
    >>> import pandas as pd
    >>> s = infer_schema(pd.DataFrame({"x": [1, 2], "y": ["a", None]}))
    >>> [(f.name, f.type.value, f.nullable) for f in s.fields]
    [('x', 'integer', False), ('y', 'string', True)]
    >>> Schema.from_dict(s.to_dict()) == s
    True
    >>> s.convert([{"x": 3, "y": "b"}]).dtypes["x"]
    dtype('int64')
    """

    kind: SchemaKind
    fields: tuple[Field, ...] = ()
    dtype: str | None = None
    shape: tuple[int | None, ...] | None = None
    json: dict[str, Any] | None = dataclasses.field(default=None, hash=False)
    example: Any = dataclasses.field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidArgumentError(
                f"unknown schema kind {self.kind!r}", hint=f"use one of {list(_KINDS)}"
            )
        object.__setattr__(self, "fields", tuple(self.fields))
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(self.shape))
        if self.kind == "series" and len(self.fields) != 1:
            raise InvalidArgumentError(
                f"a series schema has exactly one field, got {len(self.fields)}"
            )
        if self.kind == "ndarray" and (self.dtype is None or self.shape is None):
            raise InvalidArgumentError("an ndarray schema needs both `dtype` and `shape`")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise InvalidArgumentError(
                f"duplicate field names {dupes}", hint="give every column a unique name"
            )

    # -- dict round trip ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` turns it back into an equal Schema."""
        return {
            "kind": self.kind,
            "fields": [f.to_dict() for f in self.fields],
            "dtype": self.dtype,
            "shape": None if self.shape is None else list(self.shape),
            "json": self.json,
            "example": self.example,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        """Rebuild a Schema from :meth:`to_dict` output."""
        if not isinstance(data, Mapping) or "kind" not in data:
            raise InvalidArgumentError(
                f"not a schema description: {data!r}", hint="expected a dict with a 'kind' key"
            )
        shape = data.get("shape")
        return cls(
            kind=data["kind"],
            fields=tuple(Field.from_dict(f) for f in data.get("fields") or ()),
            dtype=data.get("dtype"),
            shape=None if shape is None else tuple(shape),
            json=data.get("json"),
            example=data.get("example"),
        )

    @property
    def names(self) -> list[str]:
        """The field names, in order."""
        return [f.name for f in self.fields]

    # -- JSON Schema -------------------------------------------------------------------

    def to_json_schema(self, dialect: Dialect = "2020-12") -> dict[str, Any]:
        """The JSON Schema of the ``data`` value of a request.

        Parameters
        ----------
        dialect:
            ``"2020-12"`` (OpenAPI 3.1; nullable as type arrays) or ``"swagger2"``
            (Swagger 2.0; ``"x-nullable": true``, no ``null`` type).

        Examples
        --------
        >>> import numpy as np
        >>> infer_schema(np.zeros((5, 2))).to_json_schema()["items"]["maxItems"]
        2
        """
        _check_dialect(dialect)
        return _JSON_SCHEMA_WRITERS[self.kind](self, dialect)

    # -- request conversion ------------------------------------------------------------

    def convert(self, data: Any) -> Any:
        """Validate decoded request ``data`` and convert it into what ``run()`` receives.

        dataframe
            Accepts records ``[{col: value}, ...]``, the split layout ``{"columns": [...],
            "data": [[...]], "index": [...]}``, columns ``{col: [values]}``, a single
            record ``{col: value}`` and positional rows ``[[v1, v2, ...], ...]`` whose
            length equals the number of columns. Returns a DataFrame with the columns in
            schema order and the sample's dtypes. An integer column that allowed nulls
            keeps the sample's dtype: ``float64`` with NaN when the sample was a float
            column of whole numbers with NaN (what the model was trained on), pandas
            ``Int64`` when the sample was ``Int64``.
        series
            Accepts a list of values; returns a Series.
        ndarray
            Accepts nested lists; returns an array of the schema dtype whose non-batch
            dimensions match the schema's shape.
        python
            Validates types and required properties; returns ``data`` unchanged.

        Raises
        ------
        SchemaMismatchError
            Naming the offending field (column or JSON path), the 0-based row and the
            expected type.

        Examples
        --------
        >>> import pandas as pd
        >>> s = infer_schema(pd.DataFrame({"x": [1, 2]}))
        >>> s.convert({"x": [5, 6, 7]})["x"].tolist()
        [5, 6, 7]
        >>> s.convert([{"x": "five"}])
        Traceback (most recent call last):
        ...
        nbdeploy.exceptions.SchemaMismatchError: column 'x', row 0: expected integer, got 'five'
        """
        return _CONVERTERS[self.kind](self, data)


# ======================================================================================
# Inference
# ======================================================================================

# numpy dtype kind -> FieldType (pandas extension dtypes have a `kind` too:
# Int64 -> "i", boolean -> "b", datetime64[ns, tz] -> "M").
_KIND_TYPES: dict[str, FieldType] = {
    "i": FieldType.INTEGER,
    "u": FieldType.INTEGER,
    "f": FieldType.NUMBER,
    "b": FieldType.BOOLEAN,
    "M": FieldType.DATETIME,
    "U": FieldType.STRING,
    "S": FieldType.STRING,
}

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
    return _KIND_TYPES.get(dtype.kind, FieldType.ANY)


def _null_mask(column: pd.Series[Any]) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
    """The null mask of a column, or ``None`` when its dtype cannot hold nulls."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind in "iubUS":
            return None
        if dtype.kind == "f":
            mask: np.ndarray[Any, np.dtype[np.bool_]] = np.isnan(column.to_numpy())
            return mask
    if isinstance(dtype, pd.CategoricalDtype):
        codes: np.ndarray[Any, Any] = column.array.codes
        return codes < 0
    return column.isna().to_numpy()


def _all_integral(values: np.ndarray[Any, Any]) -> bool:
    """Whether every (non-NaN, finite) float is a whole number; vectorized."""
    with np.errstate(invalid="ignore"):
        return bool(np.isfinite(values).all() and np.equal(np.floor(values), values).all())


def _column_field(name: Any, column: pd.Series[Any]) -> Field:
    field_type = _field_type(column)
    mask = _null_mask(column)
    nullable = bool(mask is not None and mask.any())
    categories: tuple[Any, ...] | None = None
    if field_type is FieldType.NUMBER and nullable and column.dtype.kind == "f":
        # A float column of whole numbers with NaN is an integer column that allows
        # null: pandas stores such columns as float64 because int64 has no NaN.
        present = column.to_numpy()[~mask] if mask is not None else column.to_numpy()
        if present.size and _all_integral(present):
            field_type = FieldType.INTEGER
    elif field_type is FieldType.CATEGORY:
        assert isinstance(column.dtype, pd.CategoricalDtype)
        levels = column.dtype.categories
        categories = tuple(_to_json_value(v) for v in levels.tolist())
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
        [_to_field_json(f, v) for v in head.iloc[:, i].tolist()] for i, f in enumerate(fields)
    ]
    return [
        {f.name: col[r] for f, col in zip(fields, columns, strict=True)} for r in range(len(head))
    ]


def _infer_dataframe(sample: pd.DataFrame, example_rows: int) -> Schema:
    fields = tuple(_column_field(name, sample.iloc[:, i]) for i, name in enumerate(sample.columns))
    return Schema("dataframe", fields, example=_frame_example(sample, fields, example_rows))


def _infer_series(sample: pd.Series[Any], example_rows: int) -> Schema:
    field = _column_field("value" if sample.name is None else sample.name, sample)
    example = [_to_field_json(field, v) for v in sample.head(example_rows).tolist()]
    return Schema("series", (field,), example=example)


def _array_dtype_name(dtype: np.dtype[Any]) -> str:
    # Fixed-width text dtypes ("<U5") would truncate longer request strings.
    return {"U": "str", "S": "bytes"}.get(dtype.kind, dtype.name)


def _infer_ndarray(sample: np.ndarray[Any, Any], example_rows: int) -> Schema:
    shape: tuple[int | None, ...] = (None, *sample.shape[1:]) if sample.ndim else ()
    example = _to_json_value(sample[:example_rows] if sample.ndim else sample)
    return Schema("ndarray", dtype=_array_dtype_name(sample.dtype), shape=shape, example=example)


def _infer_python(sample: Any, example_rows: int) -> Schema:
    value = _to_json_value(sample)
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


# -- JSON-able values ------------------------------------------------------------------


def json_default(value: Any) -> Any:
    """The ``default=`` of :func:`json.dumps` for numpy and pandas values.

    A DataFrame becomes its records, anything with ``tolist()`` (arrays, Series) a
    list, anything with ``item()`` (numpy scalars) its Python value. The one encoder
    the core uses wherever it writes JSON a script or a user handed it (raw HTTP
    response bodies, profile requests).

    Raises
    ------
    TypeError
        The value has no JSON form; the message names its type (as :mod:`json` does).

    Examples
    --------
    >>> import json
    >>> json.dumps({"x": np.arange(3), "n": np.float32(0.5)}, default=json_default)
    '{"x": [0, 1, 2], "n": 0.5}'
    >>> json.dumps(pd.DataFrame({"a": [1]}), default=json_default)
    '[{"a": 1}]'
    """
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and hasattr(value, "columns"):  # a DataFrame
        return to_dict(orient="records")
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            return convert()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _to_json_value(value: Any) -> Any:
    """Turn a sample value into plain JSON data: numpy scalars into Python, datetimes
    into ISO strings, NaN/NaT/NA into None."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (list, tuple)):
        return [_to_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_json_value(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "M":
            return _to_json_value(value.astype(object).tolist())
        return _to_json_value(value.tolist())
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, np.timedelta64):
        return None if np.isnat(value) else str(pd.Timedelta(value))
    if isinstance(value, np.generic):
        return _to_json_value(value.item())
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _to_field_json(field: Field, value: Any) -> Any:
    out = _to_json_value(value)
    if field.type is FieldType.INTEGER and isinstance(out, float):
        return int(out)
    return out


# -- JSON Schema inference for Python objects ------------------------------------------


def _types_of(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    if kind is None:
        return set()
    return {kind} if isinstance(kind, str) else set(kind)


def _with_null(schema: dict[str, Any]) -> dict[str, Any]:
    return _nullable_json(schema, "2020-12") if schema else schema


def _merge_json(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The narrowest schema (of the subset this module writes) accepting both."""
    if a == b:
        return a
    if not a or not b:
        return {}
    types_a, types_b = _types_of(a), _types_of(b)
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
    types = _types_of(schema) - {"null"}
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
    """Infer the JSON Schema of a JSON-able value (see :func:`_to_json_value`)."""
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


# ======================================================================================
# JSON Schema output
# ======================================================================================


def _frame_json_schema(schema: Schema, dialect: Dialect) -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "properties": {f.name: f.to_json_schema(dialect) for f in schema.fields},
            "required": schema.names,
            "additionalProperties": False,
        },
    }


def _series_json_schema(schema: Schema, dialect: Dialect) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "items": schema.fields[0].to_json_schema(dialect)}


def _array_element_json(dtype_name: str) -> dict[str, Any]:
    if dtype_name in ("str", "bytes"):
        return {"type": "string"}
    kind = np.dtype(dtype_name).kind
    return dict(_FIELD_JSON[_KIND_TYPES.get(kind, FieldType.ANY)])


def _ndarray_json_schema(schema: Schema, dialect: Dialect) -> dict[str, Any]:
    out = _array_element_json(schema.dtype or "object")
    shape = schema.shape or ()
    for index, size in reversed(list(enumerate(shape))):
        out = {"type": "array", "items": out}
        if size is not None:
            out["minItems"] = out["maxItems"] = size
        elif index == 0:
            out["minItems"] = 1  # the batch: at least one row
    return out


def _to_swagger2(schema: Any) -> Any:
    """Rewrite a 2020-12 schema of this module's subset into Swagger 2.0 terms."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {k: _to_swagger2(v) for k, v in value.items()}
        elif key == "items":
            out[key] = _to_swagger2(value)
        elif key == "enum":
            out[key] = [v for v in value if v is not None]
        else:
            out[key] = value
    types = _types_of(schema)
    if "null" in types:
        rest = sorted(types - {"null"})
        if len(rest) == 1:
            out["type"] = rest[0]
        else:
            out.pop("type")
        out["x-nullable"] = True
    if out.get("required") == []:
        out.pop("required")  # Swagger 2.0 requires a non-empty list.
    return out


def _python_json_schema(schema: Schema, dialect: Dialect) -> dict[str, Any]:
    body = schema.json or {}
    return _to_swagger2(body) if dialect == "swagger2" else body


_JSON_SCHEMA_WRITERS: dict[str, Callable[[Schema, Dialect], dict[str, Any]]] = {
    "dataframe": _frame_json_schema,
    "series": _series_json_schema,
    "ndarray": _ndarray_json_schema,
    "python": _python_json_schema,
}


# ======================================================================================
# Conversion of request data
# ======================================================================================


class _BadColumn(Exception):
    """Raised by a column converter when the fast check fails; the caller then
    finds and reports the first offending row (unless the converter knows it)."""

    def __init__(self, row: int | None = None) -> None:
        super().__init__(row)
        self.row = row


def _mismatch(
    field: Field, row: int | None, value: Any, *, what: str | None = None
) -> SchemaMismatchError:
    got = "null" if _is_null(value) else repr(value)
    where = f"column {field.name!r}" if row is None else f"column {field.name!r}, row {row}"
    return SchemaMismatchError(
        f"{where}: expected {what or field.expected}, got {got}",
        field=field.name,
        row=row,
        expected=what or field.expected,
    )


class _Text(str):
    """A description shown as is in an error message (not quoted like a value)."""

    def __repr__(self) -> str:
        return str(self)


def _is_null(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


# Scalar checks, used only on the error path to find the first offending row.
def _ok_integer(v: Any) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, (int, np.integer)):
        return bool(-(2**63) <= int(v) < 2**64)
    return isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer()


def _ok_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_)
    )


def _ok_boolean(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_))


def _ok_string(v: Any) -> bool:
    return isinstance(v, str)


def _ok_datetime(v: Any) -> bool:
    if isinstance(v, (_dt.datetime, np.datetime64)):
        return True
    if not isinstance(v, str):
        return False
    try:
        pd.Timestamp(v)
    except (ValueError, TypeError):
        return False
    return True


_VALUE_CHECKS: dict[FieldType, Callable[[Any], bool]] = {
    FieldType.INTEGER: _ok_integer,
    FieldType.NUMBER: _ok_number,
    FieldType.BOOLEAN: _ok_boolean,
    FieldType.STRING: _ok_string,
    FieldType.DATETIME: _ok_datetime,
}


def _first_bad_row(field: Field, column: pd.Series[Any]) -> tuple[int | None, Any]:
    check = _VALUE_CHECKS.get(field.type, lambda _: True)
    for row, value in enumerate(column.tolist()):
        if not _is_null(value) and not check(value):
            return row, value
    # Every value passes alone but the column does not convert as a whole.
    return None, _Text(f"values of dtype {column.dtype}")


def _target_dtype(field: Field, default: str, allowed_kinds: str) -> Any:
    """The dtype to convert a column to: the sample's when it fits, else ``default``."""
    if field.dtype is not None:
        try:
            dtype = pd.api.types.pandas_dtype(field.dtype)
        except TypeError:
            return default
        if dtype.kind in allowed_kinds:
            return dtype
    return default


def _infer_kind(column: pd.Series[Any]) -> str:
    dtype = column.dtype
    if dtype.kind == "O" and not isinstance(dtype, (pd.StringDtype, pd.CategoricalDtype)):
        return pd.api.types.infer_dtype(column, skipna=True)
    if isinstance(dtype, pd.StringDtype):
        return "string"
    return {"i": "integer", "u": "integer", "f": "floating", "b": "boolean", "M": "datetime64"}.get(
        dtype.kind, "mixed"
    )


def _convert_integer(
    field: Field, column: pd.Series[Any], null: np.ndarray[Any, Any]
) -> pd.Series[Any]:
    kind = _infer_kind(column)
    if kind in ("floating", "mixed-integer-float"):
        values = column.to_numpy(dtype="float64", na_value=np.nan)[~null]
        if not _all_integral(values):
            raise _BadColumn
    elif kind not in ("integer", "empty"):
        raise _BadColumn
    has_null = bool(null.any())
    target = _target_dtype(field, "Int64" if has_null else "int64", "iufO")
    if has_null and isinstance(target, np.dtype) and target.kind in "iu":
        target = "Int64"  # numpy integers have no null; only for hand-written schemas
    try:
        return column.astype(target)
    except (OverflowError, ValueError, TypeError):
        raise _BadColumn from None


def _convert_number(
    field: Field, column: pd.Series[Any], null: np.ndarray[Any, Any]
) -> pd.Series[Any]:
    if _infer_kind(column) not in ("integer", "floating", "mixed-integer-float", "empty"):
        raise _BadColumn
    try:
        return column.astype(_target_dtype(field, "float64", "fO"))
    except (OverflowError, ValueError, TypeError):
        raise _BadColumn from None


def _convert_boolean(
    field: Field, column: pd.Series[Any], null: np.ndarray[Any, Any]
) -> pd.Series[Any]:
    if _infer_kind(column) not in ("boolean", "empty"):
        raise _BadColumn
    target = _target_dtype(field, "boolean" if null.any() else "bool", "bO")
    if null.any() and isinstance(target, np.dtype) and target.kind == "b":
        target = "boolean"
    return column.astype(target)


def _convert_string(
    field: Field, column: pd.Series[Any], null: np.ndarray[Any, Any]
) -> pd.Series[Any]:
    if _infer_kind(column) not in ("string", "empty"):
        raise _BadColumn
    target = _target_dtype(field, "object", "O")
    if not isinstance(target, pd.StringDtype):
        target = "object"  # e.g. "str" under pandas 2 means numpy '<U', which stringifies NaN
    return column.astype(target)


def _convert_datetime(
    field: Field, column: pd.Series[Any], null: np.ndarray[Any, Any]
) -> pd.Series[Any]:
    if _infer_kind(column) not in ("string", "empty", "datetime", "datetime64", "date"):
        raise _BadColumn
    target = _target_dtype(field, "datetime64[ns]", "M")
    # Parse as UTC, then convert to the sample's zone (or to naive wall-clock UTC):
    # naive strings keep their wall-clock time, offsets are honoured.
    parsed = pd.to_datetime(column, utc=True, format="ISO8601", errors="coerce")
    tz = getattr(target, "tz", None)
    parsed = parsed.dt.tz_convert(tz) if tz is not None else parsed.dt.tz_convert(None)
    failed = parsed.isna().to_numpy() & ~null
    if failed.any():
        raise _BadColumn(int(np.argmax(failed)))
    try:
        return parsed.astype(target)
    except (ValueError, TypeError):
        return parsed


def _convert_category(
    field: Field, column: pd.Series[Any], null: np.ndarray[Any, Any]
) -> pd.Series[Any]:
    # One hashing pass: values outside the levels get code -1, like nulls do.
    levels = pd.Index(list(field.categories or ()))
    codes = levels.get_indexer(column)
    outside = (codes < 0) & ~null
    if outside.any():
        raise _BadColumn(int(np.argmax(outside)))
    values = pd.Categorical.from_codes(codes, categories=levels)
    return pd.Series(values, index=column.index, name=column.name)


def _convert_any(
    field: Field, column: pd.Series[Any], null: np.ndarray[Any, Any]
) -> pd.Series[Any]:
    return column


_ColumnConverter = Callable[[Field, "pd.Series[Any]", "np.ndarray[Any, Any]"], "pd.Series[Any]"]

_COLUMN_CONVERTERS: dict[FieldType, _ColumnConverter] = {
    FieldType.INTEGER: _convert_integer,
    FieldType.NUMBER: _convert_number,
    FieldType.BOOLEAN: _convert_boolean,
    FieldType.STRING: _convert_string,
    FieldType.DATETIME: _convert_datetime,
    FieldType.CATEGORY: _convert_category,
    FieldType.OBJECT: _convert_any,
    FieldType.ARRAY: _convert_any,
    FieldType.ANY: _convert_any,
}


def _convert_column(field: Field, column: pd.Series[Any]) -> pd.Series[Any]:
    null = _null_mask(column)
    if null is None:
        null = np.zeros(len(column), dtype=bool)
    elif not field.nullable and null.any():
        row = int(np.argmax(null))
        raise SchemaMismatchError(
            f"column {field.name!r}, row {row}: null or missing value in a column that "
            f"does not allow null (expected {field.expected})",
            field=field.name,
            row=row,
            expected=field.expected,
            hint="send a value in every row for this column",
        )
    try:
        return _COLUMN_CONVERTERS[field.type](field, column, null)
    except _BadColumn as exc:
        known = exc.row
    if known is not None:
        raise _mismatch(field, known, column.iloc[known])
    bad_row, value = _first_bad_row(field, column)
    raise _mismatch(field, bad_row, value)


# -- reading the request layouts into one raw DataFrame --------------------------------


def _frame_error(schema: Schema, message: str, **kwargs: Any) -> SchemaMismatchError:
    return SchemaMismatchError(
        message,
        hint="send records [{column: value}, ...] with the columns "
        f"{schema.names}, or {{'columns': [...], 'data': [[...], ...]}}",
        **kwargs,
    )


def _read_records(schema: Schema, data: list[Any]) -> pd.DataFrame:
    for row, record in enumerate(data):
        if not isinstance(record, dict):
            raise _frame_error(
                schema,
                f"row {row}: expected a record {{column: value}}, got {_short(record)}",
                row=row,
                expected="object",
            )
    frame = pd.DataFrame.from_records(data)
    known = set(schema.names)
    extra = [c for c in frame.columns if c not in known]
    if extra:
        row = next(r for r, rec in enumerate(data) if extra[0] in rec)
        raise _frame_error(
            schema,
            f"row {row}: unexpected column {extra[0]!r}; the model takes {schema.names}",
            field=str(extra[0]),
            row=row,
            expected="no such column",
        )
    return frame


def _read_rows(schema: Schema, data: list[Any]) -> pd.DataFrame:
    width = len(schema.fields)
    for row, values in enumerate(data):
        if not isinstance(values, list) or len(values) != width:
            got = f"{len(values)} values" if isinstance(values, list) else _short(values)
            raise _frame_error(
                schema,
                f"row {row}: expected a record or a list of {width} values in the column "
                f"order {schema.names}, got {got}",
                row=row,
                expected=f"{width} values",
            )
    return pd.DataFrame(data, columns=schema.names)


def _read_list(schema: Schema, data: list[Any]) -> pd.DataFrame:
    if not data:
        return pd.DataFrame({name: pd.Series([], dtype=object) for name in schema.names})
    if isinstance(data[0], list):
        return _read_rows(schema, data)
    return _read_records(schema, data)


def _read_split(schema: Schema, data: dict[str, Any]) -> pd.DataFrame:
    columns, rows = data["columns"], data["data"]
    if not isinstance(columns, list) or not isinstance(rows, list):
        raise _frame_error(schema, "'columns' and 'data' must be lists", expected="split layout")
    for row, values in enumerate(rows):
        if not isinstance(values, list) or len(values) != len(columns):
            raise _frame_error(
                schema,
                f"row {row}: expected {len(columns)} values (one per entry of 'columns'), "
                f"got {_short(values)}",
                row=row,
                expected=f"{len(columns)} values",
            )
    index = data.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(rows)):
        raise _frame_error(
            schema, f"'index' must be a list of {len(rows)} labels", expected="index list"
        )
    frame = pd.DataFrame(rows, columns=columns, index=index)
    _check_columns(schema, [str(c) for c in columns])
    return frame


def _read_columns(schema: Schema, data: dict[str, Any]) -> pd.DataFrame:
    _check_columns(schema, list(data))
    if not any(isinstance(v, list) for v in data.values()):
        return pd.DataFrame.from_records([data])  # a single record
    lengths = {k: len(v) if isinstance(v, list) else None for k, v in data.items()}
    first = next(iter(lengths.values()))
    for name, length in lengths.items():
        if length is None or length != first:
            raise _frame_error(
                schema,
                f"column {name!r}: expected a list of {first} values like the other "
                f"columns, got {_short(data[name])}",
                field=name,
                expected=f"list of {first} values",
            )
    return pd.DataFrame(data)


def _read_dict(schema: Schema, data: dict[str, Any]) -> pd.DataFrame:
    if (
        "columns" in data
        and "data" in data
        and set(data) <= {"columns", "data", "index"}
        and set(schema.names) != set(data)
    ):
        return _read_split(schema, data)
    return _read_columns(schema, data)


def _check_columns(schema: Schema, names: Sequence[Any]) -> None:
    known = set(schema.names)
    for name in names:
        if name not in known:
            raise _frame_error(
                schema,
                f"unexpected column {name!r}; the model takes {schema.names}",
                field=str(name),
                expected="no such column",
            )


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_FRAME_READERS: dict[type, Callable[[Schema, Any], pd.DataFrame]] = {
    list: _read_list,
    dict: _read_dict,
}


def _no_rows(expected: str) -> SchemaMismatchError:
    """The error for an empty batch: a model has nothing to predict from (the schemas
    say ``minItems: 1``), and scripts should not have to guard against it."""
    return SchemaMismatchError(
        "the request data holds no rows; send at least one",
        expected=expected,
        hint='e.g. {"data": [<one row>]} (see the example in /swagger.json)',
    )


def _convert_dataframe(schema: Schema, data: Any) -> pd.DataFrame:
    if isinstance(data, list) and not data:
        raise _no_rows("array of records")
    if isinstance(data, pd.DataFrame):
        frame = data
        _check_columns(schema, list(data.columns))
    else:
        reader = _FRAME_READERS.get(type(data))
        if reader is None:
            raise _frame_error(
                schema,
                f"expected a table (a list of records), got {type(data).__name__} {_short(data)}",
                expected="array of records",
            )
        frame = reader(schema, data)
    present = set(frame.columns)
    for name in schema.names:
        if name not in present:
            raise _frame_error(
                schema,
                f"missing column {name!r}; the model takes {schema.names}",
                field=name,
                expected=next(f.expected for f in schema.fields if f.name == name),
            )
    if len(frame) == 0:
        raise _no_rows("array of records")
    columns = {f.name: _convert_column(f, frame[f.name]) for f in schema.fields}
    return pd.DataFrame(columns, index=frame.index, copy=False)


def _convert_series(schema: Schema, data: Any) -> pd.Series[Any]:
    field = schema.fields[0]
    if not isinstance(data, list):
        raise SchemaMismatchError(
            f"expected a list of values for {field.name!r}, got {_short(data)}",
            field=field.name,
            expected=f"array of {field.expected}",
        )
    if not data:
        raise _no_rows(f"array of {field.expected}")
    column = pd.Series(data, dtype=object if not data else None, name=field.name)
    return _convert_column(field, column)


def _shape_text(shape: Sequence[int | None]) -> str:
    return (
        "("
        + ", ".join("None" if s is None else str(s) for s in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def _convert_ndarray(schema: Schema, data: Any) -> np.ndarray[Any, Any]:
    shape = schema.shape or ()
    dtype_name = schema.dtype or "object"
    expected_shape = _shape_text(shape)
    if isinstance(data, list) and not data and shape:
        raise _no_rows(f"shape {expected_shape}")
    try:
        array = np.asarray(data)
    except ValueError:
        # Ragged nested lists: find the first row whose shape differs from row 0.
        rows = data if isinstance(data, list) else []
        first = np.shape(rows[0]) if rows else ()
        row = next((i for i, r in enumerate(rows) if _safe_shape(r) != first), 0)
        raise SchemaMismatchError(
            f"row {row}: rows have different lengths; expected shape {expected_shape}",
            row=row,
            expected=f"shape {expected_shape}",
        ) from None
    got_shape = array.shape
    if len(got_shape) != len(shape) or any(
        want is not None and want != got for want, got in zip(shape, got_shape, strict=False)
    ):
        hint = None
        if len(got_shape) == len(shape) - 1:
            hint = "wrap a single row in a list: the first dimension is the batch"
        raise SchemaMismatchError(
            f"expected shape {expected_shape}, got {_shape_text(got_shape)}",
            expected=f"shape {expected_shape}",
            hint=hint,
        )
    target = _array_target(dtype_name)
    kind = target.kind
    if kind in "iufb":
        # Booleans count as numbers here, as numpy has already coerced them.
        numeric = {"i": "iubf", "u": "iubf", "f": "iubf", "b": "b"}[kind]
        if array.dtype.kind not in numeric or (
            kind in "iu" and array.dtype.kind == "f" and not _all_integral(array)
        ):
            _raise_array_element(data, array, kind)
    try:
        return array.astype(target, copy=False)
    except (ValueError, TypeError, OverflowError):
        _raise_array_element(data, array, kind)
        raise  # pragma: no cover - _raise_array_element always raises


def _array_target(dtype_name: str) -> np.dtype[Any]:
    return np.dtype({"str": "U", "bytes": "S"}.get(dtype_name, dtype_name))


def _safe_shape(value: Any) -> tuple[int, ...]:
    try:
        return np.shape(value)
    except ValueError:
        return (-1,)


_ARRAY_EXPECTED = {"i": "integer", "u": "integer", "f": "number", "b": "boolean"}


def _raise_array_element(data: Any, array: np.ndarray[Any, Any], kind: str) -> None:
    """Find the first row holding an element of the wrong type (the error path)."""
    expected = _ARRAY_EXPECTED.get(kind, "string")
    check = _VALUE_CHECKS.get(FieldType(expected), lambda _: True)
    if expected == "number":
        check = _ok_number_or_bool
    rows = data if isinstance(data, list) else [data]
    for row, values in enumerate(rows):
        for value in _flatten(values):
            if not check(value):
                raise SchemaMismatchError(
                    f"row {row}: expected {expected} elements, got {_short(value)}",
                    row=row,
                    expected=expected,
                )
    raise SchemaMismatchError(
        f"expected {expected} elements, got array of {array.dtype}", expected=expected
    )


def _ok_number_or_bool(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating, np.bool_))


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [v for item in value for v in _flatten(item)]
    return [value]


# -- python kind: validation against the inferred JSON Schema subset -------------------

_JSON_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def _validate_json(schema: Mapping[str, Any], value: Any, path: str, row: int | None) -> None:
    types = _types_of(schema)
    if types and not any(_JSON_TYPE_CHECKS[t](value) for t in types if t in _JSON_TYPE_CHECKS):
        expected = " or ".join(sorted(types))
        raise SchemaMismatchError(
            f"{path}: expected {expected}, got {_short(value)}",
            field=path,
            row=row,
            expected=expected,
        )
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaMismatchError(
            f"{path}: expected one of {schema['enum']!r}, got {_short(value)}",
            field=path,
            row=row,
            expected=f"one of {schema['enum']!r}",
        )
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                raise SchemaMismatchError(
                    f"{path}.{key}: required property {key!r} is missing",
                    field=f"{path}.{key}",
                    row=row,
                    expected=_describe(schema.get("properties", {}).get(key, {})),
                )
        properties = schema.get("properties", {})
        for key, sub in properties.items():
            if key in value:
                _validate_json(sub, value[key], f"{path}.{key}", row)
    elif isinstance(value, list) and "items" in schema and schema["items"]:
        items = schema["items"]
        top = path == "data"
        for i, element in enumerate(value):
            _validate_json(items, element, f"{path}[{i}]", i if top else row)


def _describe(schema: Mapping[str, Any]) -> str:
    types = _types_of(schema)
    return " or ".join(sorted(types)) if types else "any value"


def _convert_python(schema: Schema, data: Any) -> Any:
    if schema.json:
        _validate_json(schema.json, data, "data", None)
    return data


_CONVERTERS: dict[str, Callable[[Schema, Any], Any]] = {
    "dataframe": _convert_dataframe,
    "series": _convert_series,
    "ndarray": _convert_ndarray,
    "python": _convert_python,
}
