"""Request bodies for a profile: :func:`prepare_requests`.

Turns what the user has (JSON strings, a DataFrame whose rows or batches become
requests, an ndarray, a file with one request per line) into ``/score`` bodies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nbdeploy.core.schema import json_default
from nbdeploy.exceptions import InvalidArgumentError

__all__ = ["prepare_requests"]


def _default_encode(item: Any) -> bytes:
    if isinstance(item, Mapping) and "data" in item:
        return json.dumps(item, default=json_default).encode()
    return json.dumps({"data": item}, default=json_default).encode()


def _looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in {"{", "["}


def _read_request_file(path: Path) -> list[bytes]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(
            f"cannot read the request file {str(path)!r}: {exc.strerror or exc}",
            hint="pass a file with one JSON request per line, a list of JSON strings "
            "or a DataFrame",
        ) from None
    return [line.strip() for line in raw.splitlines() if line.strip()]


def prepare_requests(
    requests: Any,
    *,
    batch_size: int = 1,
    orient: str = "split",
    encode: Callable[[Any], bytes] | None = None,
) -> tuple[bytes, ...]:
    """Turn a sample of requests into the ``/score`` bodies a profile sends.

    Parameters
    ----------
    requests:
        - a list of JSON strings (or bytes): each is one request body, sent as it is;
        - a ``pathlib.Path`` (or a ``str`` naming an existing file): one request per
          line, as in the reference's dataset of request strings;
        - a pandas DataFrame: its rows, ``batch_size`` at a time, become
          ``{"data": ...}`` requests in the ``orient`` layout (``"split"`` — columns
          once, then rows — or ``"records"``, the Power BI style list of
          ``{column: value}``). A DataFrame of one string column holding JSON is the
          reference's dataset: each row is a request body;
        - a numpy array: its rows, ``batch_size`` at a time, as ``{"data": [...]}``;
        - a list of other objects (dicts, lists): each is one request, encoded with
          ``encode`` (default: a dict with a ``"data"`` key as it is, anything else
          wrapped as ``{"data": item}``).
    batch_size:
        Rows per request for DataFrames and arrays.
    orient:
        ``"split"`` or ``"records"``: the JSON layout of DataFrame batches.
    encode:
        Encoder for list items that are not strings or bytes.

    Returns
    -------
    tuple of bytes
        At least one request body.

    Examples
    --------
    >>> prepare_requests(['{"data": [1]}', '{"data": [2]}'])
    (b'{"data": [1]}', b'{"data": [2]}')
    >>> import pandas as pd
    >>> prepare_requests(pd.DataFrame({"x": [1, 2, 3]}), batch_size=2)
    (b'{"data":{"columns":["x"],"data":[[1],[2]]}}', b'{"data":{"columns":["x"],"data":[[3]]}}')
    >>> prepare_requests(pd.DataFrame({"x": [1]}), orient="records")
    (b'{"data":[{"x":1}]}',)
    """
    _check_layout(batch_size, orient)
    bodies = _bodies(requests, batch_size, orient, encode or _default_encode)
    if not bodies:
        raise InvalidArgumentError(
            "the sample of requests is empty", hint="give at least one request to send"
        )
    return tuple(bodies)


def _check_layout(batch_size: int, orient: str) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if orient not in {"split", "records"}:
        raise InvalidArgumentError(
            f"orient must be 'split' or 'records', got {orient!r}",
            hint="'split' sends columns once; 'records' sends a list of {column: value}",
        )


def _bodies(
    requests: Any, batch_size: int, orient: str, encode: Callable[[Any], bytes]
) -> list[bytes]:
    """The request bodies for each kind of sample :func:`prepare_requests` accepts."""
    import pandas as pd

    if isinstance(requests, (str, os.PathLike)) and not (
        isinstance(requests, str) and _looks_like_json(requests)
    ):
        return _file_bodies(requests)
    if isinstance(requests, (str, bytes)):
        return [requests.encode() if isinstance(requests, str) else requests]
    if isinstance(requests, pd.DataFrame):
        return _dataframe_bodies(requests, batch_size, orient)
    if isinstance(requests, pd.Series):
        return _dataframe_bodies(requests.to_frame(), batch_size, orient)
    if isinstance(requests, np.ndarray):
        return _array_bodies(requests, batch_size)
    if isinstance(requests, Iterable) and not isinstance(requests, Mapping):
        return _item_bodies(requests, encode)
    raise InvalidArgumentError(
        f"cannot make requests from a {type(requests).__name__}",
        hint="pass a list of JSON strings, a DataFrame, a numpy array or the path of a "
        "file with one request per line",
    )


def _file_bodies(requests: str | os.PathLike[str]) -> list[bytes]:
    path = Path(requests)
    if not path.is_file():
        raise InvalidArgumentError(
            f"no request file at {str(requests)!r}",
            hint="pass a file with one JSON request per line, a list of JSON strings, "
            "or a DataFrame whose rows become requests",
        )
    return _read_request_file(path)


def _array_bodies(array: np.ndarray[Any, Any], batch_size: int) -> list[bytes]:
    if array.ndim == 0:
        raise InvalidArgumentError("a 0-dimensional array is not a sample of requests")
    return [
        _default_encode(array[i : i + batch_size].tolist())
        for i in range(0, len(array), batch_size)
    ]


def _item_bodies(requests: Iterable[Any], encode: Callable[[Any], bytes]) -> list[bytes]:
    """Strings and bytes as they are; other items through ``encode``."""
    bodies: list[bytes] = []
    for item in requests:
        if isinstance(item, bytes):
            bodies.append(item)
        elif isinstance(item, str):
            bodies.append(item.encode())
        else:
            try:
                bodies.append(encode(item))
            except TypeError as exc:
                raise InvalidArgumentError(
                    f"cannot send request {len(bodies)} ({type(item).__name__}): {exc}",
                    hint="pass JSON strings, or objects json.dumps can encode",
                ) from None
    return bodies


def _dataframe_bodies(frame: Any, batch_size: int, orient: str) -> list[bytes]:
    if len(frame) == 0:
        return []
    column = frame.iloc[:, 0] if frame.shape[1] == 1 else None
    if column is not None and all(isinstance(v, str) and _looks_like_json(v) for v in column):
        # The reference's input dataset: one string column, one request body per row.
        return [str(v).encode() for v in column]
    bodies = []
    for start in range(0, len(frame), batch_size):
        chunk = frame.iloc[start : start + batch_size]
        data = chunk.to_json(orient=orient, date_format="iso", index=False)
        bodies.append(b'{"data":' + data.encode() + b"}")
    return bodies
