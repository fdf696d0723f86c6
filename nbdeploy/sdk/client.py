"""Calling a scoring endpoint from Python: encode what the user has, decode what comes back.

``service.run(x)`` accepts the objects a schema is inferred from — a DataFrame, a
Series, an ndarray, lists, a dict — and a ready JSON string, so what works in the
notebook works against the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from nbdeploy.exceptions import (
    AuthenticationError,
    BadRequestError,
    NbdeployError,
    NotFoundError,
    PayloadTooLargeError,
    SchemaMismatchError,
    ScoringError,
    TargetUnavailableError,
)

__all__ = ["decode_response", "encode_request", "error_for_status"]

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC


def _data_bytes(data: Any) -> bytes:
    """JSON for the ``data`` value: DataFrames go in the compact ``split`` layout."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data.to_json(
            orient="split", date_format="iso", index=False, double_precision=15
        ).encode()
    if isinstance(data, pd.Series):
        return data.to_json(orient="records", date_format="iso", double_precision=15).encode()
    return orjson.dumps(data, option=_JSON_OPTIONS, default=_default)


def _default(value: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(value, (pd.DataFrame, pd.Series)):
        return orjson.loads(_data_bytes(value))
    if isinstance(value, np.ndarray):  # orjson takes only C-contiguous arrays natively
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot send a {type(value).__name__} to a service: convert it to JSON first")


def encode_request(payload: Any) -> bytes:
    """Encode ``payload`` as a ``/score`` request body.

    A ``str`` or ``bytes`` is sent as it is (it must already be JSON); a mapping with a
    ``"data"`` key is sent as the whole body; anything else becomes ``{"data": ...}``.

    Examples
    --------
    >>> encode_request([[1, 2], [3, 4]])
    b'{"data":[[1,2],[3,4]]}'
    >>> encode_request('{"data": [1]}')
    b'{"data": [1]}'
    """
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    try:
        if isinstance(payload, Mapping) and "data" in payload:
            rest = {k: v for k, v in payload.items() if k != "data"}
            body = b'{"data":' + _data_bytes(payload["data"])
            if rest:
                body += b"," + orjson.dumps(rest, option=_JSON_OPTIONS, default=_default)[1:-1]
            return body + b"}"
        return b'{"data":' + _data_bytes(payload) + b"}"
    except TypeError as exc:
        raise BadRequestError(str(exc)) from None


_STATUS_ERRORS: dict[int, type[NbdeployError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    422: SchemaMismatchError,
    503: TargetUnavailableError,
}


def error_for_status(status: int, body: bytes, url: str) -> NbdeployError:
    """The nbdeploy exception for an error answer of a service."""
    try:
        message = str(orjson.loads(body).get("message", ""))
    except (orjson.JSONDecodeError, AttributeError):
        message = body[:500].decode(errors="replace")
    cls = _STATUS_ERRORS.get(status, ScoringError)
    return cls(f"{url} answered {status}: {message}")


def decode_response(body: bytes, content_type: str | None) -> Any:
    """Decode a service's answer: JSON when it says so (or looks like it), else bytes/text."""
    if content_type is None or "json" in content_type:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    if content_type and content_type.startswith("text/"):
        return body.decode(errors="replace")
    return body
