"""JSON encoding of what a scoring script's ``run()`` returns.

``run()`` may return anything JSON-like, and numpy arrays and pandas objects must
serialize too. orjson encodes the common cases natively (with
``OPT_SERIALIZE_NUMPY``: contiguous arrays, numpy scalars, ``datetime64``) and calls
:func:`nbdeploy.core.schema.json_default` for the rest (DataFrames as records,
timestamps as ISO strings, sets, ``Decimal`` ...: the table is in its docstring).
NaN and ±Infinity become null (JSON has no NaN).

A ``str`` result is sent as a JSON *string*: scoring scripts written for Azure ML
often ``return json.dumps(result)`` and their clients ``json.loads`` the answer, which
keeps working.
"""

from __future__ import annotations

from typing import Any

import orjson

from nbdeploy.core.schema import json_default

__all__ = ["dumps"]

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
# Non-string keys (a DataFrame with integer column names, {1: ...}) need an option
# that makes every dict slower to encode, so it is only used on a second attempt.
_RETRY_OPTIONS = _OPTIONS | orjson.OPT_NON_STR_KEYS


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as JSON bytes, with numpy/pandas support and NaN as null.

    Raises
    ------
    TypeError
        When some value inside ``obj`` has no JSON form (orjson's
        ``JSONEncodeError`` is a ``TypeError``).

    Examples
    --------
    >>> import numpy as np
    >>> dumps({"y": np.array([1.5, np.nan])})
    b'{"y":[1.5,null]}'
    """
    try:
        return orjson.dumps(obj, default=json_default, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        if "Dict key must be str" not in str(exc):
            raise
    return orjson.dumps(obj, default=json_default, option=_RETRY_OPTIONS)
