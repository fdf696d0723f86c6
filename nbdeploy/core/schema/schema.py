"""The :class:`Schema` value: what a model takes (or returns).

A Schema is inferred once (:mod:`.infer`), stored as a plain dict in the workspace
and the bundle, published as JSON Schema (:mod:`.documents`) and enforced on every
request (:mod:`.validate`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from nbdeploy.exceptions import InvalidArgumentError

from .documents import JSON_SCHEMA_WRITERS
from .fields import KINDS, Dialect, Field, SchemaKind, check_dialect
from .validate import CONVERTERS

__all__ = ["Schema"]


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
    >>> from nbdeploy.core.schema import infer_schema
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
        if self.kind not in KINDS:
            raise InvalidArgumentError(
                f"unknown schema kind {self.kind!r}", hint=f"use one of {list(KINDS)}"
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
        >>> from nbdeploy.core.schema import infer_schema
        >>> infer_schema(np.zeros((5, 2))).to_json_schema()["items"]["maxItems"]
        2
        """
        check_dialect(dialect)
        return JSON_SCHEMA_WRITERS[self.kind](self, dialect)

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
        >>> from nbdeploy.core.schema import infer_schema
        >>> s = infer_schema(pd.DataFrame({"x": [1, 2]}))
        >>> s.convert({"x": [5, 6, 7]})["x"].tolist()
        [5, 6, 7]
        >>> s.convert([{"x": "five"}])
        Traceback (most recent call last):
        ...
        nbdeploy.exceptions.SchemaMismatchError: column 'x', row 0: expected integer, got 'five'
        """
        return CONVERTERS[self.kind](self, data)
