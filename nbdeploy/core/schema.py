"""Schemas: inferred from samples, published as JSON Schema, enforced on requests.

CONTRACT STUB — the schema helper replaces the bodies; signatures are fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

__all__ = ["Field", "FieldType", "Schema", "infer_schema"]


class FieldType(str, Enum):
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    STRING = "string"
    DATETIME = "datetime"
    CATEGORY = "category"
    OBJECT = "object"
    ARRAY = "array"
    ANY = "any"


@dataclass(frozen=True)
class Field:
    """One column of a table (or one property of a record)."""

    name: str
    type: FieldType
    nullable: bool = False
    categories: tuple[Any, ...] | None = None
    dtype: str | None = None

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Field:
        raise NotImplementedError


SchemaKind = Literal["dataframe", "series", "ndarray", "python"]


@dataclass(frozen=True)
class Schema:
    """What a model takes (or returns), inferred from a sample."""

    kind: SchemaKind
    fields: tuple[Field, ...] = ()
    dtype: str | None = None
    shape: tuple[int | None, ...] | None = None
    json: dict[str, Any] | None = None
    example: Any = None

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        raise NotImplementedError

    def to_json_schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def convert(self, data: Any) -> Any:
        raise NotImplementedError


def infer_schema(sample: Any, *, example_rows: int = 3) -> Schema:
    raise NotImplementedError
