"""JSON Schema output: the ``data`` part of a request, per schema kind.

Written in two dialects: ``"2020-12"`` (OpenAPI 3.1) and ``"swagger2"`` (Swagger 2.0).
The service documents themselves are built by :mod:`nbdeploy.core.openapi`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .fields import FIELD_JSON, KIND_TYPES, Dialect, FieldType, SchemaLike, types_of

__all__ = ["JSON_SCHEMA_WRITERS"]


def _frame_json_schema(schema: SchemaLike, dialect: Dialect) -> dict[str, Any]:
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


def _series_json_schema(schema: SchemaLike, dialect: Dialect) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "items": schema.fields[0].to_json_schema(dialect)}


def _array_element_json(dtype_name: str) -> dict[str, Any]:
    if dtype_name in ("str", "bytes"):
        return {"type": "string"}
    kind = np.dtype(dtype_name).kind
    return dict(FIELD_JSON[KIND_TYPES.get(kind, FieldType.ANY)])


def _ndarray_json_schema(schema: SchemaLike, dialect: Dialect) -> dict[str, Any]:
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
    types = types_of(schema)
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


def _python_json_schema(schema: SchemaLike, dialect: Dialect) -> dict[str, Any]:
    body = schema.json or {}
    return _to_swagger2(body) if dialect == "swagger2" else body


JSON_SCHEMA_WRITERS: dict[str, Callable[[SchemaLike, Dialect], dict[str, Any]]] = {
    "dataframe": _frame_json_schema,
    "series": _series_json_schema,
    "ndarray": _ndarray_json_schema,
    "python": _python_json_schema,
}
