"""Fields and JSON values: the building blocks of a schema.

:class:`FieldType` and :class:`Field` describe one column (or property);
:data:`Dialect` names the JSON Schema flavours nbdeploy writes; :func:`json_default`
and :func:`to_json_value` turn numpy and pandas values into plain JSON data.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import math
from collections.abc import Mapping
from enum import Enum
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from nbdeploy.exceptions import InvalidArgumentError

__all__ = [
    "Dialect",
    "Field",
    "FieldType",
    "SchemaKind",
    "SchemaLike",
    "json_default",
    "to_json_value",
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
FIELD_JSON: dict[FieldType, dict[str, Any]] = {
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
EXPECTED: dict[FieldType, str] = {
    FieldType.INTEGER: "integer",
    FieldType.NUMBER: "number",
    FieldType.BOOLEAN: "boolean",
    FieldType.STRING: "string",
    FieldType.DATETIME: "datetime (ISO 8601 string)",
    FieldType.OBJECT: "object",
    FieldType.ARRAY: "array",
    FieldType.ANY: "any value",
}


def nullable_json(schema: dict[str, Any], dialect: str) -> dict[str, Any]:
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
        return EXPECTED[self.type]

    def to_json_schema(self, dialect: Dialect = "2020-12") -> dict[str, Any]:
        """The JSON Schema of one value of this field.

        Examples
        --------
        >>> Field("when", FieldType.DATETIME, nullable=True).to_json_schema("swagger2")
        {'type': 'string', 'format': 'date-time', 'x-nullable': True}
        """
        check_dialect(dialect)
        if self.type is FieldType.CATEGORY:
            levels = list(self.categories or ())
            schema: dict[str, Any] = {"enum": levels}
            kinds = {json_type_name(v) for v in levels}
            if len(kinds) == 1:
                # A type next to the enum helps Swagger UI and code generators.
                schema = {"type": kinds.pop(), "enum": levels}
        else:
            schema = dict(FIELD_JSON[self.type])
            if "items" in schema:
                schema["items"] = {}
        if self.nullable and self.type is not FieldType.ANY:
            schema = nullable_json(schema, dialect)
        return schema


def json_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def check_dialect(dialect: str) -> None:
    if dialect not in _DIALECTS:
        raise InvalidArgumentError(
            f"unknown JSON Schema dialect {dialect!r}", hint=f"use one of {list(_DIALECTS)}"
        )


SchemaKind = Literal["dataframe", "series", "ndarray", "python"]
KINDS = ("dataframe", "series", "ndarray", "python")


class SchemaLike(Protocol):
    """What validation and document building read of a :class:`~nbdeploy.core.schema.Schema`.

    Those modules take this instead of the class, so the class (whose methods call
    them) and they do not import each other.
    """

    @property
    def kind(self) -> SchemaKind: ...

    @property
    def fields(self) -> tuple[Field, ...]: ...

    @property
    def dtype(self) -> str | None: ...

    @property
    def shape(self) -> tuple[int | None, ...] | None: ...

    @property
    def json(self) -> dict[str, Any] | None: ...

    @property
    def names(self) -> list[str]: ...


def json_default(value: Any) -> Any:
    """The ``default=`` of :func:`json.dumps` and ``orjson.dumps``: a value they cannot
    encode themselves, turned into one they can.

    The one encoder for values a scoring script or a user hands nbdeploy (``run()``
    results, raw HTTP response bodies, profile requests):

    =========================  ===========================================
    value                      JSON
    =========================  ===========================================
    ``pandas.DataFrame``       list of records ``[{column: value}, ...]``
    ``pandas.Series`` / Index  list
    ``pandas.Timestamp``       ISO 8601 string; ``NaT`` / ``pd.NA`` → null
    numpy arrays               nested lists
    numpy scalars              their Python value
    ``datetime`` and friends   ISO 8601 string
    ``timedelta``              number of seconds
    ``Decimal``                number
    ``set`` / ``frozenset``    list (sorted when the items allow it)
    other array-likes          ``tolist()`` or ``item()`` (torch tensors ...)
    =========================  ===========================================

    Raises
    ------
    TypeError
        The value has no JSON form; the message names its type.

    Examples
    --------
    >>> import json
    >>> json.dumps({"x": np.arange(3), "n": np.float32(0.5)}, default=json_default)
    '{"x": [0, 1, 2], "n": 0.5}'
    >>> json.dumps(pd.DataFrame({"a": [1]}), default=json_default)
    '[{"a": 1}]'
    >>> json_default({3, 1, 2}), json_default(decimal.Decimal("1.5"))
    ([1, 2, 3], 1.5)
    """
    handled, converted = _pandas_json(value)
    if handled:
        return converted
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    return _duck_json(value)


def _pandas_json(value: Any) -> tuple[bool, Any]:
    """Encode a pandas value; ``(False, None)`` when ``value`` is not one."""
    if value is pd.NaT or value is pd.NA:
        return True, None
    if isinstance(value, pd.DataFrame):
        return True, value.to_dict(orient="records")
    if isinstance(value, (pd.Series, pd.Index, pd.Categorical)):
        return True, value.tolist()
    if isinstance(value, pd.Timestamp):
        return True, value.isoformat()
    if isinstance(value, pd.Timedelta):
        return True, value.total_seconds()
    if isinstance(value, (pd.Period, pd.Interval)):
        return True, str(value)
    return False, None


def _duck_json(value: Any) -> Any:
    """Other libraries' frames and arrays, by their methods; else :class:`TypeError`."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and hasattr(value, "columns"):
        return to_dict(orient="records")
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            return convert()
    kind = type(value)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    raise TypeError(f"{name} is not JSON serializable")


def to_json_value(value: Any) -> Any:
    """Turn a sample value into plain JSON data: numpy scalars into Python, datetimes
    into ISO strings, NaN/NaT/NA into None."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "M":
            return to_json_value(value.astype(object).tolist())
        return to_json_value(value.tolist())
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, np.timedelta64):
        return None if np.isnat(value) else str(pd.Timedelta(value))
    if isinstance(value, np.generic):
        return to_json_value(value.item())
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def to_field_json(field: Field, value: Any) -> Any:
    out = to_json_value(value)
    if field.type is FieldType.INTEGER and isinstance(out, float):
        return int(out)
    return out


def types_of(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    if kind is None:
        return set()
    return {kind} if isinstance(kind, str) else set(kind)


# numpy dtype kind -> FieldType (pandas extension dtypes have a `kind` too:
# Int64 -> "i", boolean -> "b", datetime64[ns, tz] -> "M").
KIND_TYPES: dict[str, FieldType] = {
    "i": FieldType.INTEGER,
    "u": FieldType.INTEGER,
    "f": FieldType.NUMBER,
    "b": FieldType.BOOLEAN,
    "M": FieldType.DATETIME,
    "U": FieldType.STRING,
    "S": FieldType.STRING,
}


def null_mask(column: pd.Series[Any]) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
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


def all_integral(values: np.ndarray[Any, Any]) -> bool:
    """Whether every (non-NaN, finite) float is a whole number; vectorized."""
    with np.errstate(invalid="ignore"):
        return bool(np.isfinite(values).all() and np.equal(np.floor(values), values).all())
