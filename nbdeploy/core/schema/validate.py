"""Validation and conversion of request data (:meth:`Schema.convert`).

Each schema kind has a converter that checks decoded request data and turns it into
what ``run()`` receives. Every check is vectorized; loops over rows happen only on the
error path, to name the offending row.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from nbdeploy.exceptions import SchemaMismatchError

from .fields import Field, FieldType, SchemaLike, all_integral, null_mask, types_of

__all__ = ["CONVERTERS"]


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
        if not all_integral(values):
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
    null = null_mask(column)
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


def _frame_error(schema: SchemaLike, message: str, **kwargs: Any) -> SchemaMismatchError:
    return SchemaMismatchError(
        message,
        hint="send records [{column: value}, ...] with the columns "
        f"{schema.names}, or {{'columns': [...], 'data': [[...], ...]}}",
        **kwargs,
    )


def _read_records(schema: SchemaLike, data: list[Any]) -> pd.DataFrame:
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


def _read_rows(schema: SchemaLike, data: list[Any]) -> pd.DataFrame:
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


def _read_list(schema: SchemaLike, data: list[Any]) -> pd.DataFrame:
    if not data:
        return pd.DataFrame({name: pd.Series([], dtype=object) for name in schema.names})
    if isinstance(data[0], list):
        return _read_rows(schema, data)
    return _read_records(schema, data)


def _read_split(schema: SchemaLike, data: dict[str, Any]) -> pd.DataFrame:
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


def _read_columns(schema: SchemaLike, data: dict[str, Any]) -> pd.DataFrame:
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


def _read_dict(schema: SchemaLike, data: dict[str, Any]) -> pd.DataFrame:
    if (
        "columns" in data
        and "data" in data
        and set(data) <= {"columns", "data", "index"}
        and set(schema.names) != set(data)
    ):
        return _read_split(schema, data)
    return _read_columns(schema, data)


def _check_columns(schema: SchemaLike, names: Sequence[Any]) -> None:
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


_FRAME_READERS: dict[type, Callable[[SchemaLike, Any], pd.DataFrame]] = {
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


def _convert_dataframe(schema: SchemaLike, data: Any) -> pd.DataFrame:
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


def _convert_series(schema: SchemaLike, data: Any) -> pd.Series[Any]:
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


def _convert_ndarray(schema: SchemaLike, data: Any) -> np.ndarray[Any, Any]:
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
            kind in "iu" and array.dtype.kind == "f" and not all_integral(array)
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


# python kind: validation against the inferred JSON Schema subset

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
    types = types_of(schema)
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
    types = types_of(schema)
    return " or ".join(sorted(types)) if types else "any value"


def _convert_python(schema: SchemaLike, data: Any) -> Any:
    if schema.json:
        _validate_json(schema.json, data, "data", None)
    return data


CONVERTERS: dict[str, Callable[[SchemaLike, Any], Any]] = {
    "dataframe": _convert_dataframe,
    "series": _convert_series,
    "ndarray": _convert_ndarray,
    "python": _convert_python,
}
