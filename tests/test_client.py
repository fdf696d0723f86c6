"""Encoding what the user has into /score bodies, and decoding error answers."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from nbdeploy.exceptions import (
    AuthenticationError,
    BadRequestError,
    PayloadTooLargeError,
    SchemaMismatchError,
    ScoringError,
)
from nbdeploy.sdk.client import decode_response, encode_request, error_for_status


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param([[1, 2]], {"data": [[1, 2]]}, id="lists"),
        pytest.param(np.array([[1.5, 2.0]]), {"data": [[1.5, 2.0]]}, id="ndarray"),
        pytest.param(
            np.array([[1.0, 2.0], [3.0, 4.0]]).T,
            {"data": [[1.0, 3.0], [2.0, 4.0]]},
            id="fortran-order",
        ),
        pytest.param(
            {"data": [1], "method": "predict"},
            {"data": [1], "method": "predict"},
            id="dict-with-data",
        ),
        pytest.param({"a": 1}, {"data": {"a": 1}}, id="dict-without-data"),
        pytest.param('{"data": [3]}', {"data": [3]}, id="json-string"),
        pytest.param(pd.Series([1, 2]), {"data": [1, 2]}, id="series"),
        pytest.param({"data": np.float32(2.5)}, {"data": 2.5}, id="numpy-scalar"),
    ],
)
def test_encode_request(payload: object, expected: object) -> None:
    assert orjson.loads(encode_request(payload)) == expected


def test_dataframes_keep_full_precision_and_dates() -> None:
    frame = pd.DataFrame(
        {"x": [0.1234567890123456], "when": pd.to_datetime(["2024-01-02T03:04:05"])}
    )
    body = orjson.loads(encode_request(frame))
    assert body["data"]["columns"] == ["x", "when"]
    assert body["data"]["data"][0][0] == pytest.approx(0.1234567890123456, rel=1e-14)
    assert body["data"]["data"][0][1].startswith("2024-01-02T03:04:05")


def test_unserializable_input_is_a_bad_request() -> None:
    with pytest.raises(BadRequestError, match="not JSON serializable: object"):
        encode_request([object()])


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, BadRequestError), (401, AuthenticationError), (413, PayloadTooLargeError),
     (422, SchemaMismatchError), (500, ScoringError)],
)  # fmt: skip
def test_error_answers_map_to_exceptions(status: int, cls: type[Exception]) -> None:
    err = error_for_status(status, b'{"status_code": 1, "message": "column x"}', "http://h/score")
    assert isinstance(err, cls)
    assert "column x" in str(err)
    assert str(status) in str(err)


def test_decode_response() -> None:
    assert decode_response(b"[1, 2]", "application/json") == [1, 2]
    assert decode_response(b"hello", "text/plain") == "hello"
    assert decode_response(b"\x89PNG", "image/png") == b"\x89PNG"
