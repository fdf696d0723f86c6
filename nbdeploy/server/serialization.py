"""JSON encoding of what a scoring script's ``run()`` returns.

``run()`` may return anything JSON-like, and numpy arrays and pandas objects must
serialize too. orjson encodes the common cases natively (with
``OPT_SERIALIZE_NUMPY``: contiguous arrays, numpy scalars, ``datetime64``) and calls
:func:`json_default` for the rest:

=========================  ===========================================
value                      JSON
=========================  ===========================================
``pandas.DataFrame``       list of records ``[{column: value}, ...]``
``pandas.Series`` / Index  list
``pandas.Timestamp``       ISO 8601 string; ``NaT`` / ``pd.NA`` → null
other numpy arrays         nested lists (object dtype, non-contiguous)
numpy scalars              their Python value
``datetime`` subclasses    ISO 8601 string
``timedelta``              number of seconds
``Decimal``                number
``set`` / ``frozenset``    list (sorted when the items allow it)
NaN / ±Infinity            null (JSON has no NaN)
=========================  ===========================================

A ``str`` result is sent as a JSON *string*: scoring scripts written for Azure ML
often ``return json.dumps(result)`` and their clients ``json.loads`` the answer, which
keeps working.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import sys
from typing import Any

import orjson

__all__ = ["dumps", "json_default"]

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
# Non-string keys (a DataFrame with integer column names, {1: ...}) need an option
# that makes every dict slower to encode, so it is only used on a second attempt.
_RETRY_OPTIONS = _OPTIONS | orjson.OPT_NON_STR_KEYS


def _pandas_default(obj: Any) -> tuple[bool, Any]:
    """Encode a pandas object; ``(False, None)`` when ``obj`` is not one."""
    # A script that never imports pandas cannot return a pandas object: do not pay for
    # importing it here (the same goes for numpy in json_default).
    pd = sys.modules.get("pandas")
    if pd is None:
        return False, None
    if obj is pd.NaT or obj is pd.NA:
        return True, None
    if isinstance(obj, pd.DataFrame):
        return True, obj.to_dict(orient="records")
    if isinstance(obj, (pd.Series, pd.Index, pd.Categorical)):
        return True, obj.tolist()
    if isinstance(obj, pd.Timestamp):
        return True, obj.isoformat()
    if isinstance(obj, pd.Timedelta):
        return True, obj.total_seconds()
    if isinstance(obj, (pd.Period, pd.Interval)):
        return True, str(obj)
    return False, None


def json_default(obj: Any) -> Any:
    """Turn a value orjson cannot encode into one it can (orjson's ``default=``).

    Raises
    ------
    TypeError
        When the value has no JSON form; the message names its type.

    Examples
    --------
    >>> import decimal
    >>> json_default({3, 1, 2})
    [1, 2, 3]
    >>> json_default(decimal.Decimal("1.5"))
    1.5
    """
    handled, value = _pandas_default(obj)
    if handled:
        return value
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, np.generic):
            return obj.item()
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, _dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    if isinstance(obj, (set, frozenset)):
        try:
            return sorted(obj)
        except TypeError:
            return list(obj)
    raise TypeError(f"an object of type {type(obj).__module__}.{type(obj).__qualname__}")


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
