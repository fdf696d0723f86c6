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

The modules, each one job:

- :mod:`.fields` — :class:`FieldType`, :class:`Field`, JSON values (:func:`json_default`);
- :mod:`.schema` — the :class:`Schema` value and its dict round trip;
- :mod:`.infer` — :func:`infer_schema`, from a sample;
- :mod:`.validate` — validation and conversion of request data (:meth:`Schema.convert`);
- :mod:`.documents` — JSON Schema output (:meth:`Schema.to_json_schema`).
"""

from __future__ import annotations

from .fields import Dialect, Field, FieldType, SchemaKind, json_default
from .infer import infer_schema
from .schema import Schema

__all__ = [
    "Dialect",
    "Field",
    "FieldType",
    "Schema",
    "SchemaKind",
    "infer_schema",
    "json_default",
]
