"""CORS in the scoring app (TestClient): preflights, allowed and refused origins, and
the headers on real answers (also 401s and raw scripts' own headers)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from nbdeploy.core.auth import CorsPolicy, ServiceAuth, write_auth_file
from nbdeploy.exceptions import InvalidArgumentError
from nbdeploy.server import ServerOptions

Serve = Callable[..., TestClient]

ECHO = """
def init():
    pass

def run(data):
    return data
"""

APP = "http://127.0.0.1:8123"
EVIL = "http://evil.example"


def _client(
    make_bundle: Callable[..., Path], serve_app: Serve, cors: Any, score: str = ECHO, **extra: Any
) -> TestClient:
    return serve_app(make_bundle(score, settings={"cors": cors, **extra}))


def _preflight(
    client: TestClient, origin: str, method: str = "POST", headers: str = "content-type"
) -> Any:
    return client.options(
        "/score",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


@pytest.fixture
def cors_client(make_bundle: Callable[..., Path], serve_app: Serve) -> TestClient:
    return _client(make_bundle, serve_app, {"allow_origins": [APP], "max_age": 120})


def test_preflight_from_an_allowed_origin_is_204(cors_client: TestClient) -> None:
    r = _preflight(cors_client, APP, headers="authorization,content-type")
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == APP
    assert set(r.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert r.headers["access-control-max-age"] == "120"
    assert "Origin" in r.headers["vary"]
    assert r.content == b""


@pytest.mark.parametrize(
    ("origin", "method", "headers", "fragment"),
    [
        pytest.param(EVIL, "POST", "content-type", "origin 'http://evil.example'", id="origin"),
        pytest.param(APP, "DELETE", "content-type", "method 'DELETE'", id="method"),
        pytest.param(APP, "POST", "x-secret-header", "x-secret-header", id="header"),
    ],
)
def test_refused_preflight_is_403_without_cors_headers(
    cors_client: TestClient, origin: str, method: str, headers: str, fragment: str
) -> None:
    r = _preflight(cors_client, origin, method, headers)
    assert r.status_code == 403
    assert r.json()["status_code"] == 403
    assert r.json()["message"].startswith("CORS preflight refused")
    assert fragment in r.json()["message"]
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]


def test_actual_request_from_an_allowed_origin_gets_the_headers(cors_client: TestClient) -> None:
    r = cors_client.post("/score", json={"data": [1]}, headers={"Origin": APP})
    assert r.status_code == 200
    assert r.json() == [1]
    assert r.headers["access-control-allow-origin"] == APP
    assert r.headers["access-control-expose-headers"] == "x-request-id"
    assert r.headers["vary"] == "Origin"


def test_other_origins_and_plain_clients_get_no_cors_headers(cors_client: TestClient) -> None:
    for headers in ({"Origin": EVIL}, {}):
        r = cors_client.post("/score", json={"data": [1]}, headers=headers)
        assert r.status_code == 200  # the server answers; the browser hides it from the page
        assert "access-control-allow-origin" not in r.headers


def test_preflight_needs_no_auth_and_401s_are_readable_by_the_page(
    make_bundle: Callable[..., Path], serve_app: Serve, tmp_path: Path
) -> None:
    auth = ServiceAuth.generate("svc", "key")
    path = write_auth_file(tmp_path / "auth.json", auth)
    client = _client(make_bundle, serve_app, [APP], auth_enabled=True, auth_file=str(path))
    r = _preflight(client, APP, headers="authorization,content-type")
    assert r.status_code == 204
    r = client.post("/score", json={"data": [1]}, headers={"Origin": APP})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == APP
    ok = client.post(
        "/score",
        json={"data": [1]},
        headers={"Origin": APP, "Authorization": f"Bearer {auth.primary_key}"},
    )
    assert ok.status_code == 200


def test_any_origin_and_credentials(make_bundle: Callable[..., Path], serve_app: Serve) -> None:
    client = _client(make_bundle, serve_app, {"allow_origins": "*", "allow_headers": ["*"]})
    r = _preflight(client, EVIL, headers="x-anything,authorization")
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-headers"] == "x-anything, authorization"
    assert (
        client.post("/score", json={"data": 1}, headers={"Origin": EVIL}).headers[
            "access-control-allow-origin"
        ]
        == "*"
    )

    client = _client(make_bundle, serve_app, {"allow_origins": [APP], "allow_credentials": True})
    r = client.post("/score", json={"data": 1}, headers={"Origin": APP})
    assert r.headers["access-control-allow-origin"] == APP
    assert r.headers["access-control-allow-credentials"] == "true"


RAW_WITH_OWN_CORS = """
from nbdeploy.core.rawhttp import Response, rawhttp

def init():
    pass

@rawhttp
def run(request):
    response = Response(b"ok", headers={"Vary": "Accept"})
    response.headers["Access-Control-Allow-Origin"] = "http://www.example.com"
    return response
"""


def test_a_raw_scripts_own_allow_origin_is_replaced_not_doubled(
    make_bundle: Callable[..., Path], serve_app: Serve
) -> None:
    client = _client(make_bundle, serve_app, [APP], score=RAW_WITH_OWN_CORS)
    r = client.get("/score", headers={"Origin": APP})
    assert r.status_code == 200
    assert r.headers.get_list("access-control-allow-origin") == [APP]
    assert r.headers.get_list("vary") == ["Accept, Origin"]


def test_without_cors_settings_nothing_answers_preflights(
    make_bundle: Callable[..., Path], serve_app: Serve
) -> None:
    client = serve_app(make_bundle(ECHO))
    r = _preflight(client, APP)
    assert r.status_code == 405
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param(["http://a.test/"], "bad CORS origin", id="trailing-slash"),
        pytest.param(["a.test"], "bad CORS origin", id="no-scheme"),
        pytest.param([], "empty", id="empty"),
        pytest.param({"allow_origins": "*", "allow_credentials": True}, "credentials", id="cred"),
        pytest.param({"origins": ["http://a.test"]}, "unknown CORS setting", id="unknown"),
        pytest.param(42, "cannot use int", id="type"),
    ],
)
def test_bad_cors_settings_are_refused(value: Any, fragment: str) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment):
        ServerOptions(cors=value)


def test_cors_settings_round_trip() -> None:
    settings = ServerOptions(cors={"allow_origins": [APP], "max_age": 5})
    assert isinstance(settings.cors, CorsPolicy)
    assert ServerOptions.from_dict(settings.to_dict()) == settings
