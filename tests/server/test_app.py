"""The scoring app in-process (Starlette TestClient): routes, conversion, errors."""

from __future__ import annotations

import logging
import re
import sys
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from starlette.testclient import TestClient

from nbdeploy.exceptions import InvalidArgumentError
from nbdeploy.server import ServerOptions, create_app

from .bundles import DIABETES_SCORE, MODEL_NAME, poll, wait_settled

Serve = Callable[..., TestClient]


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """An event a test script's init() waits on, shared through sys.modules."""
    event = threading.Event()
    sys.modules["nbdeploy_test_gate"] = types.SimpleNamespace(event=event)  # type: ignore[assignment]
    try:
        yield event
    finally:
        event.set()
        sys.modules.pop("nbdeploy_test_gate", None)


GATED_SCORE = """
import nbdeploy_test_gate

def init():
    assert nbdeploy_test_gate.event.wait(30), "the test never opened the gate"

def run(data):
    return data
"""


def test_health_is_503_until_init_finished(
    make_bundle: Callable[..., Path], serve_app: Serve, gate: threading.Event
) -> None:
    client = serve_app(make_bundle(GATED_SCORE), wait=False)
    r = client.get("/")
    assert r.status_code == 503
    assert r.json()["status_code"] == 503
    assert r.json()["message"].startswith("Initializing")
    assert client.post("/score", json={"data": 1}).status_code == 503

    gate.set()
    poll(lambda: client.get("/").status_code == 200)
    r = client.get("/")
    assert r.text == "Healthy"
    assert r.headers["content-type"].startswith("text/plain")


def test_init_runs_once(
    make_bundle: Callable[..., Path], serve_app: Serve, diabetes: tuple[Ridge, pd.DataFrame]
) -> None:
    model, features = diabetes
    client = serve_app(make_bundle(DIABETES_SCORE, model=model))
    rows = features.head(2).to_numpy().tolist()
    for _ in range(3):
        r = client.post("/score", json={"data": rows})
        assert r.status_code == 200, r.text
        assert r.json()["init_calls"] == 1


def test_init_failure_is_reported_by_health(
    make_bundle: Callable[..., Path], serve_app: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    score = """
    def init():
        raise FileNotFoundError("model.pkl is missing from the model folder")

    def run(data):
        return data
    """
    client = serve_app(make_bundle(score))
    r = client.get("/")
    assert r.status_code == 503
    message = r.json()["message"]
    assert "init() failed" in message
    assert "FileNotFoundError: model.pkl is missing from the model folder" in message
    assert client.post("/score", json={"data": 1}).status_code == 503
    assert "Traceback" in caplog.text or any(rec.exc_info for rec in caplog.records)


def test_import_failure_is_reported_by_health(
    make_bundle: Callable[..., Path], serve_app: Serve
) -> None:
    client = serve_app(make_bundle("import not_a_module_anywhere_42\n"))
    r = client.get("/")
    assert r.status_code == 503
    assert "not_a_module_anywhere_42" in r.json()["message"]


def test_model_dir_variables_are_exported(
    make_bundle: Callable[..., Path], serve_app: Serve
) -> None:
    score = """
    import os

    seen = {}

    def init():
        for key in ("NBDEPLOY_MODEL_DIR", "AZUREML_MODEL_DIR", "NBDEPLOY_BUNDLE_DIR"):
            seen[key] = os.environ[key]

    def run(data):
        return seen
    """
    bundle = make_bundle(score)
    client = serve_app(bundle)
    seen = client.post("/score", json={"data": None}).json()
    model_dir = bundle / "models" / MODEL_NAME / "1"
    assert Path(seen["NBDEPLOY_MODEL_DIR"]).resolve() == model_dir.resolve()
    assert Path(seen["AZUREML_MODEL_DIR"]).resolve() == model_dir.resolve()
    assert Path(seen["NBDEPLOY_BUNDLE_DIR"]).resolve() == bundle.resolve()


def test_source_dir_is_importable(make_bundle: Callable[..., Path], serve_app: Serve) -> None:
    score = """
    import helpers_for_nbdeploy_test as helpers

    def init():
        pass

    def run(data):
        return helpers.double(data)
    """
    bundle = make_bundle(
        score,
        source_files={"helpers_for_nbdeploy_test.py": "def double(x):\n    return 2 * x\n"},
    )
    client = serve_app(bundle)
    assert client.post("/score", json={"data": 21}).json() == 42


def test_score_dataframe_schema(
    make_bundle: Callable[..., Path], serve_app: Serve, diabetes: tuple[Ridge, pd.DataFrame]
) -> None:
    model, features = diabetes
    bundle = make_bundle(DIABETES_SCORE, model=model, input_sample=features.head(5))
    client = serve_app(bundle)
    rows = features.head(3)
    r = client.post("/score", json={"data": rows.to_dict(orient="records")})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["kind"] == "DataFrame"
    assert body["columns"] == list(features.columns)
    assert set(body["dtypes"].values()) == {"float64"}
    np.testing.assert_allclose(body["predictions"], model.predict(np.asarray(rows)))


def test_dataframe_reaches_run_with_the_schema_dtypes(
    make_bundle: Callable[..., Path], serve_app: Serve
) -> None:
    sample = pd.DataFrame(
        {
            "age": np.array([31, 45], dtype="int64"),
            "income": [1200.5, 3400.0],
            "city": ["Oslo", "Turku"],
            "member": [True, False],
            "joined": pd.to_datetime(["2020-01-01", "2021-06-30"]),
        }
    )
    score = """
    def init():
        pass

    def run(data):
        return {str(c): str(t) for c, t in data.dtypes.items()}
    """
    client = serve_app(make_bundle(score, input_sample=sample))
    records = [{"age": 52, "income": 100, "city": "Bergen", "member": True, "joined": "2022-03-04"}]
    r = client.post("/score", json={"data": records})
    assert r.status_code == 200, r.text
    dtypes = r.json()
    assert dtypes["age"] == "int64"
    assert dtypes["income"] == "float64"
    assert dtypes["member"] == "bool"
    assert dtypes["joined"].startswith("datetime64")


def test_score_ndarray_schema(
    make_bundle: Callable[..., Path], serve_app: Serve, diabetes: tuple[Ridge, pd.DataFrame]
) -> None:
    model, features = diabetes
    sample = features.to_numpy()[:4]
    client = serve_app(make_bundle(DIABETES_SCORE, model=model, input_sample=sample))
    rows = features.to_numpy()[10:13]
    r = client.post("/score", json={"data": rows.tolist()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "ndarray"
    assert body["dtypes"] == {"array": "float64"}
    np.testing.assert_allclose(body["predictions"], model.predict(np.asarray(rows)))


def test_score_without_schema_passes_json_through(
    make_bundle: Callable[..., Path], serve_app: Serve
) -> None:
    score = """
    def init():
        pass

    def run(data):
        return {"type": type(data).__name__, "data": data}
    """
    client = serve_app(make_bundle(score))
    payload = {"rows": [[1, 2.5, None]], "flag": True, "name": "x"}
    r = client.post("/score", json={"data": payload, "method": "predict"})
    assert r.status_code == 200
    assert r.json() == {"type": "dict", "data": payload}


def test_str_result_is_sent_as_a_json_string(
    make_bundle: Callable[..., Path], serve_app: Serve
) -> None:
    score = """
    import json

    def init():
        pass

    def run(data):
        return json.dumps({"result": data})
    """
    client = serve_app(make_bundle(score))
    r = client.post("/score", json={"data": [1, 2]})
    assert r.status_code == 200
    assert r.json() == '{"result": [1, 2]}'


def test_numpy_and_pandas_results_serialize(
    make_bundle: Callable[..., Path], serve_app: Serve
) -> None:
    score = """
    import decimal

    import numpy as np
    import pandas as pd

    def init():
        pass

    def run(data):
        return {
            "frame": pd.DataFrame(
                {"y": [1.5, np.nan], "when": pd.to_datetime(["2024-01-02", None])}
            ),
            "series": pd.Series([1, 2, 3], dtype="int32"),
            "f32": np.float32(0.25),
            "i64": np.int64(7),
            "nan": float("nan"),
            "when": np.datetime64("2024-05-06T07:08:09"),
            "array": np.arange(6, dtype="float32").reshape(2, 3)[:, ::2],
            "decimal": decimal.Decimal("2.5"),
            "tags": {"b", "a"},
        }
    """
    client = serve_app(make_bundle(score))
    r = client.post("/score", json={"data": None})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "frame": [
            {"y": 1.5, "when": "2024-01-02T00:00:00"},
            {"y": None, "when": None},
        ],
        "series": [1, 2, 3],
        "f32": 0.25,
        "i64": 7,
        "nan": None,
        "when": "2024-05-06T07:08:09",
        "array": [[0.0, 2.0], [3.0, 5.0]],
        "decimal": 2.5,
        "tags": ["a", "b"],
    }


@pytest.fixture
def echo_client(make_bundle: Callable[..., Path], serve_app: Serve) -> TestClient:
    score = """
    def init():
        pass

    def run(data):
        return data
    """
    return serve_app(make_bundle(score), ServerOptions(max_request_bytes=100))


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b"{not json", "not valid JSON", id="malformed"),
        pytest.param(b"", "not valid JSON", id="empty"),
        pytest.param(b"[1, 2]", "not a JSON array", id="array"),
        pytest.param(
            b'{"input": [1]}', "lacks the \"data\" key (keys found: 'input')", id="no-data"
        ),
    ],
)
def test_bad_request_bodies_are_400(echo_client: TestClient, body: bytes, fragment: str) -> None:
    r = echo_client.post("/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    assert r.json()["status_code"] == 400
    assert fragment in r.json()["message"]
    assert r.headers["x-request-id"]


def test_oversized_body_is_413(echo_client: TestClient) -> None:
    r = echo_client.post("/score", json={"data": "x" * 200})
    assert r.status_code == 413
    assert r.json()["status_code"] == 413
    assert "limit of 100 bytes" in r.json()["message"]


def test_oversized_chunked_body_without_length_is_413(echo_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"data": "'
        for _ in range(10):
            yield b"x" * 20
        yield b'"}'

    r = echo_client.post("/score", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert "at least" in r.json()["message"]


def test_body_within_limit_is_accepted(echo_client: TestClient) -> None:
    r = echo_client.post("/score", json={"data": "x" * 50})
    assert r.status_code == 200
    assert r.json() == "x" * 50


def test_schema_mismatch_is_422_naming_field_row_and_type(
    make_bundle: Callable[..., Path], serve_app: Serve, diabetes: tuple[Ridge, pd.DataFrame]
) -> None:
    model, features = diabetes
    client = serve_app(make_bundle(DIABETES_SCORE, model=model, input_sample=features.head(5)))
    records = features.head(3).to_dict(orient="records")
    records[2]["bmi"] = "heavy"
    r = client.post("/score", json={"data": records})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["status_code"] == 422
    message = body["message"]
    assert "'bmi'" in message  # the field
    assert "row 2" in message  # the 0-based row
    assert re.search(r"number|float", message)  # the expected type


def test_run_exception_is_500_with_request_id_and_no_traceback(
    make_bundle: Callable[..., Path], serve_app: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    score = """
    def init():
        pass

    def run(data):
        return helper(data)

    def helper(data):
        raise RuntimeError("the model exploded on " + repr(data))
    """
    client = serve_app(make_bundle(score))
    with caplog.at_level(logging.ERROR, logger="nbdeploy.server"):
        r = client.post("/score", json={"data": 5})
    assert r.status_code == 500
    body = r.json()
    request_id = r.headers["x-request-id"]
    assert body["status_code"] == 500
    assert f"request id {request_id}" in body["message"]
    assert "RuntimeError: the model exploded on 5" in body["message"]
    assert "Traceback" not in r.text
    assert "helper" not in r.text
    logged = [rec for rec in caplog.records if request_id in rec.getMessage()]
    assert logged, "the failure is logged with its request id"
    assert logged[0].exc_info is not None
    assert "helper" in caplog.text  # the traceback, in the logs only


def test_unserializable_result_is_500(make_bundle: Callable[..., Path], serve_app: Serve) -> None:
    score = """
    class Opaque:
        pass

    def init():
        pass

    def run(data):
        return {"value": Opaque()}
    """
    client = serve_app(make_bundle(score))
    r = client.post("/score", json={"data": 1})
    assert r.status_code == 500
    assert "Opaque" in r.json()["message"]


def test_nbdeploy_errors_raised_by_run_keep_their_status(
    make_bundle: Callable[..., Path], serve_app: Serve
) -> None:
    score = """
    from nbdeploy.exceptions import BadRequestError

    def init():
        pass

    def run(data):
        raise BadRequestError("method 'explode' is not a prediction method")
    """
    client = serve_app(make_bundle(score))
    r = client.post("/score", json={"data": 1})
    assert r.status_code == 400
    assert r.json()["message"] == "method 'explode' is not a prediction method"


@pytest.mark.parametrize("header", ["x-request-id", "x-ms-request-id"])
def test_incoming_request_id_is_echoed(echo_client: TestClient, header: str) -> None:
    r = echo_client.post("/score", json={"data": 1}, headers={header: "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


def test_request_ids_are_unique_when_not_given(echo_client: TestClient) -> None:
    ids = {echo_client.post("/score", json={"data": 1}).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_unsafe_incoming_request_id_is_replaced(echo_client: TestClient) -> None:
    r = echo_client.post("/score", json={"data": 1}, headers={"x-request-id": "a b<c>"})
    assert r.headers["x-request-id"] != "a b<c>"
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("GET", "/nope", 404, id="unknown-route"),
        pytest.param("POST", "/score/extra", 404, id="unknown-subpath"),
        pytest.param("GET", "/score", 405, id="get-score"),
        pytest.param("PUT", "/score", 405, id="put-score"),
        pytest.param("DELETE", "/", 405, id="delete-health"),
        pytest.param("GET", "/docs/static/secrets.txt", 404, id="unknown-asset"),
        pytest.param("GET", "/docs/static/..%2F..%2F__init__.py", 404, id="traversal"),
    ],
)
def test_client_mistakes_get_json_errors(
    echo_client: TestClient, method: str, path: str, status: int
) -> None:
    r = echo_client.request(method, path)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert r.json()["status_code"] == status
    assert r.json()["message"]
    if status == 405:
        assert "allowed" in r.json()["message"]
        assert "allow" in r.headers


def test_framework_default_docs_routes_are_absent(echo_client: TestClient) -> None:
    assert echo_client.get("/redoc").status_code == 404
    assert echo_client.get("/docs/oauth2-redirect").status_code == 404


@pytest.mark.parametrize("path", ["/", "/docs", "/openapi.json", "/docs/static/swagger-ui.css"])
def test_get_routes_answer_head_too(echo_client: TestClient, path: str) -> None:
    assert echo_client.head(path).status_code == 200


@pytest.mark.parametrize(
    ("path", "allow"), [("/score", "GET, HEAD, POST"), ("/", "GET, HEAD"), ("/docs", "GET, HEAD")]
)
def test_wrong_method_names_the_allowed_ones(
    echo_client: TestClient, path: str, allow: str
) -> None:
    r = echo_client.put(path)
    assert r.status_code == 405
    assert sorted(r.headers["allow"].split(", ")) == allow.split(", ")
    assert r.json()["message"].endswith(f"allowed: {r.headers['allow']}")


@pytest.mark.parametrize("path", ["/docs/", "/score/", "/openapi.json//"])
def test_trailing_slash_redirects_to_the_route(echo_client: TestClient, path: str) -> None:
    r = echo_client.get(path, follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"] == "http://localhost" + path.rstrip("/")


def test_auth_without_an_auth_file_refuses_to_build_an_unprotected_app(
    make_bundle: Callable[..., Path],
) -> None:
    bundle = make_bundle("def init():\n    pass\n\ndef run(data):\n    return data\n")
    with pytest.raises(InvalidArgumentError, match=r"auth file .* does not exist"):
        create_app(bundle, ServerOptions(auth_enabled=True))


def test_bundle_settings_apply_when_no_settings_given(
    make_bundle: Callable[..., Path],
) -> None:
    bundle = make_bundle(
        "def init():\n    pass\n\ndef run(data):\n    return data\n",
        settings={"max_request_bytes": 64, "service_name": "tiny", "replicas": 2},
    )
    app = create_app(bundle)
    with TestClient(app, base_url="http://localhost") as client:
        wait_settled(app)
        assert client.post("/score", json={"data": "x" * 100}).status_code == 413
    assert app.runtime.options.service_name == "tiny"


def test_unexpected_conversion_error_is_still_a_422(
    make_bundle: Callable[..., Path],
    serve_app: Serve,
    monkeypatch: pytest.MonkeyPatch,
    diabetes: tuple[Ridge, pd.DataFrame],
) -> None:
    from nbdeploy.core.schema import Schema

    def broken_convert(self: Schema, data: object) -> object:
        raise TypeError("unhashable type: 'list'")

    model, features = diabetes
    client = serve_app(make_bundle(DIABETES_SCORE, model=model, input_sample=features.head(3)))
    monkeypatch.setattr(Schema, "convert", broken_convert)
    r = client.post("/score", json={"data": [[1]]})
    assert r.status_code == 422
    assert "TypeError: unhashable type: 'list'" in r.json()["message"]


def test_debug_level_logs_one_line_per_scored_request(
    echo_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="nbdeploy.server"):
        r = echo_client.post("/score", json={"data": 1}, headers={"x-request-id": "req-7"})
    assert r.status_code == 200
    lines = [rec.getMessage() for rec in caplog.records if "req-7" in rec.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith("POST /score req-7 -> 200 in ")
