"""Key and token auth in the scoring app (TestClient): 401s, open routes, live key
changes, and documents that declare the Bearer scheme."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from nbdeploy.core.auth import (
    ServiceAuth,
    read_auth_file,
    sign_token,
    write_auth_file,
)
from nbdeploy.server import ServerOptions

Serve = Callable[..., TestClient]

ECHO = """
def init():
    pass

def run(data):
    return {"echo": data}
"""


def _service(
    make_bundle: Callable[..., Path],
    serve_app: Serve,
    tmp_path: Path,
    mode: str = "key",
    **settings: object,
) -> tuple[TestClient, ServiceAuth, Path]:
    auth = ServiceAuth.generate("svc", "key" if mode == "key" else "token")
    path = write_auth_file(tmp_path / "secrets" / "auth.json", auth)
    flag = "auth_enabled" if mode == "key" else "token_auth_enabled"
    bundle = make_bundle(ECHO, settings={flag: True, "auth_file": str(path), **settings})
    return serve_app(bundle), auth, path


@pytest.fixture
def key_service(
    make_bundle: Callable[..., Path], serve_app: Serve, tmp_path: Path
) -> tuple[TestClient, ServiceAuth, Path]:
    return _service(make_bundle, serve_app, tmp_path)


@pytest.fixture
def token_service(
    make_bundle: Callable[..., Path], serve_app: Serve, tmp_path: Path
) -> tuple[TestClient, ServiceAuth, Path]:
    return _service(make_bundle, serve_app, tmp_path, mode="token")


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


BODY = {"data": [1, 2]}


def test_missing_header_is_401_with_a_clear_message_and_a_challenge(
    key_service: tuple[TestClient, ServiceAuth, Path],
) -> None:
    client, _, _ = key_service
    r = client.post("/score", json=BODY)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    body = r.json()
    assert body["status_code"] == 401
    assert body["message"] == (
        "missing Authorization header: send 'Authorization: Bearer <key>' (service.get_keys())"
    )
    assert r.headers["x-request-id"]


def test_wrong_key_and_wrong_scheme_are_401(
    key_service: tuple[TestClient, ServiceAuth, Path],
) -> None:
    client, auth, _ = key_service
    r = client.post("/score", json=BODY, headers=_bearer("not-the-key"))
    assert r.status_code == 401
    assert r.json()["message"].startswith("invalid key")
    assert "not-the-key" not in r.text
    r = client.post("/score", json=BODY, headers={"Authorization": f"Basic {auth.primary_key}"})
    assert r.status_code == 401
    assert "Bearer scheme" in r.json()["message"]
    assert auth.primary_key not in r.text
    r = client.post("/score", json=BODY, headers={"Authorization": "Bearer "})
    assert r.status_code == 401


def test_primary_and_secondary_keys_both_work(
    key_service: tuple[TestClient, ServiceAuth, Path],
) -> None:
    client, auth, _ = key_service
    for key in (auth.primary_key, auth.secondary_key):
        r = client.post("/score", json=BODY, headers=_bearer(key))
        assert r.status_code == 200, r.text
        assert r.json() == {"echo": [1, 2]}


def test_health_documents_and_docs_stay_open(
    key_service: tuple[TestClient, ServiceAuth, Path],
) -> None:
    client, _, _ = key_service
    assert client.get("/").text == "Healthy"
    for path in ("/swagger.json", "/openapi.json", "/docs", "/docs/static/swagger-ui.css"):
        assert client.get(path).status_code == 200, path


def test_documents_declare_the_bearer_scheme(
    key_service: tuple[TestClient, ServiceAuth, Path],
) -> None:
    client, _, _ = key_service
    swagger = client.get("/swagger.json").json()
    assert swagger["securityDefinitions"]["Bearer"]["in"] == "header"
    assert swagger["paths"]["/score"]["post"]["security"] == [{"Bearer": []}]
    openapi = client.get("/openapi.json").json()
    assert openapi["components"]["securitySchemes"]["Bearer"]["scheme"] == "bearer"
    assert "401" in openapi["paths"]["/score"]["post"]["responses"]


def test_regenerated_key_applies_at_the_next_request_without_restart(
    key_service: tuple[TestClient, ServiceAuth, Path],
) -> None:
    client, auth, path = key_service
    assert client.post("/score", json=BODY, headers=_bearer(auth.primary_key)).status_code == 200
    new = auth.regenerate("Primary")
    write_auth_file(path, new)
    assert client.post("/score", json=BODY, headers=_bearer(auth.primary_key)).status_code == 401
    assert client.post("/score", json=BODY, headers=_bearer(new.primary_key)).status_code == 200
    # the other key was left alone
    assert client.post("/score", json=BODY, headers=_bearer(auth.secondary_key)).status_code == 200


def test_a_broken_or_vanished_auth_file_keeps_the_last_keys(
    key_service: tuple[TestClient, ServiceAuth, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, auth, path = key_service
    path.write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="nbdeploy.server"):
        assert client.post("/score", json=BODY).status_code == 401
        ok = client.post("/score", json=BODY, headers=_bearer(auth.primary_key))
    assert ok.status_code == 200
    assert "previous keys stay in force" in caplog.text
    path.unlink()
    assert client.post("/score", json=BODY, headers=_bearer(auth.primary_key)).status_code == 200


def test_authorization_headers_are_never_logged(
    make_bundle: Callable[..., Path],
    serve_app: Serve,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        client, auth, _ = _service(make_bundle, serve_app, tmp_path, log_level="debug")
        client.post("/score", json=BODY, headers=_bearer(auth.primary_key))
        client.post("/score", json=BODY, headers=_bearer(auth.secondary_key + "x"))
    assert "POST /score" in caplog.text  # the debug line is there ...
    assert auth.primary_key not in caplog.text  # ... without credentials
    assert auth.secondary_key not in caplog.text


def test_token_auth_accepts_fresh_tokens_only(
    token_service: tuple[TestClient, ServiceAuth, Path],
) -> None:
    client, auth, _ = token_service
    token, _ = sign_token(auth)
    r = client.post("/score", json=BODY, headers=_bearer(token))
    assert r.status_code == 200, r.text
    missing = client.post("/score", json=BODY)
    assert "Bearer <token>' (service.get_token())" in missing.json()["message"]
    # keys do not open a token service
    r = client.post("/score", json=BODY, headers=_bearer(auth.primary_key))
    assert r.status_code == 401
    assert r.json()["message"].startswith("invalid token")


def test_expired_token_is_401_saying_when(
    token_service: tuple[TestClient, ServiceAuth, Path],
) -> None:
    client, auth, _ = token_service
    token, expires = sign_token(auth, ttl=60, now=1_700_000_000)
    r = client.post("/score", json=BODY, headers=_bearer(token))
    assert r.status_code == 401
    assert r.json()["message"].startswith("token expired at 2023-11-14T22:14:20Z")
    assert expires.year == 2023
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_tampered_token_is_401(token_service: tuple[TestClient, ServiceAuth, Path]) -> None:
    import base64
    import json

    client, auth, _ = token_service
    token, _ = sign_token(auth)
    body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["exp"] += 86400  # a longer life, same signature
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    r = client.post("/score", json=BODY, headers=_bearer(f"{forged}.{signature}"))
    assert r.status_code == 401
    assert "signature does not match" in r.json()["message"]
    other = ServiceAuth.generate("svc", "token")
    foreign, _ = sign_token(other)
    assert client.post("/score", json=BODY, headers=_bearer(foreign)).status_code == 401


def test_auth_file_path_is_relative_to_the_bundle(
    make_bundle: Callable[..., Path], serve_app: Serve
) -> None:
    bundle = make_bundle(ECHO, settings={"auth_enabled": True})
    auth = ServiceAuth.generate("svc", "key")
    write_auth_file(bundle / "auth.json", auth)  # the default place
    client = serve_app(bundle)
    assert client.post("/score", json=BODY).status_code == 401
    assert client.post("/score", json=BODY, headers=_bearer(auth.primary_key)).status_code == 200


def test_settings_mode_wins_over_the_file_mode(
    make_bundle: Callable[..., Path], serve_app: Serve, tmp_path: Path
) -> None:
    auth = ServiceAuth.generate("svc", "key")
    path = write_auth_file(tmp_path / "auth.json", auth)
    bundle = make_bundle(ECHO)
    client = serve_app(bundle, ServerOptions(token_auth_enabled=True, auth_file=str(path)))
    assert client.post("/score", json=BODY, headers=_bearer(auth.primary_key)).status_code == 401
    token, _ = sign_token(auth)
    assert client.post("/score", json=BODY, headers=_bearer(token)).status_code == 200
    assert read_auth_file(path) == auth  # the server never writes the file


def test_auth_file_is_private(tmp_path: Path) -> None:
    path = write_auth_file(tmp_path / "a" / "auth.json", ServiceAuth.generate("svc", "key"))
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(os.listdir(path.parent)) == ["auth.json"]  # no temporary left over
