"""Service auth: key generation, token signing/verification and CORS policies (unit),
and key/token auth and CORS on real local services through the public API."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

import nbdeploy
from nbdeploy.core.auth import (
    CorsPolicy,
    ServiceAuth,
    auth_file_path,
    authenticate,
    default_auth,
    mask_secret,
    normalize_auth,
    read_auth_file,
    sign_token,
    verify_token,
    write_auth_file,
)
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import AuthenticationError, InvalidArgumentError
from nbdeploy.sdk.webservice import Webservice
from nbdeploy.sdk.workspace import get_workspace

# --------------------------------------------------------------------------- unit


def test_generated_keys_are_long_random_and_distinct() -> None:
    a, b = ServiceAuth.generate("svc", "key"), ServiceAuth.generate("svc", "key")
    keys = {a.primary_key, a.secondary_key, a.token_secret, b.primary_key}
    assert len(keys) == 4
    assert all(len(k) == 43 for k in keys)  # secrets.token_urlsafe(32)


def test_service_auth_round_trip_and_masked_repr() -> None:
    auth = ServiceAuth.generate("svc", "token", token_ttl=90)
    assert ServiceAuth.from_dict(auth.to_dict()) == auth
    text = repr(auth)
    assert auth.primary_key not in text
    assert auth.secondary_key not in text
    assert auth.token_secret not in text
    assert auth.primary_key[:4] + "…" in text


def test_regenerate_and_set_key() -> None:
    auth = ServiceAuth.generate("svc", "key")
    new = auth.regenerate("primary")
    assert new.primary_key != auth.primary_key
    assert new.secondary_key == auth.secondary_key
    chosen = "my-own-key-of-sufficient-length"
    assert auth.regenerate("Secondary", set_key=chosen).secondary_key == chosen
    with pytest.raises(InvalidArgumentError, match="unknown key 'Tertiary'"):
        auth.regenerate("Tertiary")
    with pytest.raises(InvalidArgumentError, match="too short"):
        auth.regenerate("Primary", set_key="short")


def test_auth_file_is_0600_atomic_and_round_trips(tmp_path: Path) -> None:
    auth = ServiceAuth.generate("svc", "key")
    path = write_auth_file(tmp_path / "services" / "svc" / "auth.json", auth)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_auth_file(path) == auth
    inode = path.stat().st_ino
    write_auth_file(path, auth.regenerate("Primary"))
    assert path.stat().st_ino != inode  # replaced, never rewritten in place
    assert [p.name for p in path.parent.iterdir()] == ["auth.json"]
    assert read_auth_file(tmp_path / "missing.json") is None
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match="must be a JSON object"):
        read_auth_file(path)
    path.write_text("{", encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match="not valid JSON"):
        read_auth_file(path)


def test_token_round_trip_and_expiry() -> None:
    auth = ServiceAuth.generate("svc", "token", token_ttl=100)
    token, expires = sign_token(auth, now=1000)
    assert expires == datetime.fromtimestamp(1100, timezone.utc)
    payload = verify_token(token, auth, now=1099.9)
    assert payload["svc"] == "svc"
    assert payload["exp"] == 1100
    with pytest.raises(AuthenticationError, match=r"token expired at 1970-01-01T00:18:20Z"):
        verify_token(token, auth, now=1100)
    # two tokens issued at the same moment differ (nonce)
    assert sign_token(auth, now=1000)[0] != token


def _reencode(token: str, **changes: Any) -> str:
    body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    raw = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{raw}.{signature}"


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        pytest.param(lambda t: _reencode(t, exp=10**12), "signature does not match", id="exp"),
        pytest.param(lambda t: _reencode(t, svc="other"), "signature does not match", id="svc"),
        pytest.param(lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"), "signature", id="sig"),
        pytest.param(lambda t: t.replace(".", ""), "expected '<payload>.<signature>'", id="form"),
        pytest.param(lambda t: "é" + t, "expected", id="non-ascii"),
    ],
)
def test_tampered_tokens_are_refused(mutate: Any, fragment: str) -> None:
    auth = ServiceAuth.generate("svc", "token")
    token, _ = sign_token(auth)
    with pytest.raises(AuthenticationError, match=fragment):
        verify_token(mutate(token), auth)


def test_token_of_another_service_or_secret_is_refused() -> None:
    auth = ServiceAuth.generate("svc", "token")
    other_secret = ServiceAuth.generate("svc", "token")
    with pytest.raises(AuthenticationError, match="signature does not match"):
        verify_token(sign_token(other_secret)[0], auth)
    same_secret_other_name = ServiceAuth.from_dict({**auth.to_dict(), "service": "other"})
    with pytest.raises(AuthenticationError, match="issued for service 'other'"):
        verify_token(sign_token(same_secret_other_name)[0], auth)


def test_authenticate_messages() -> None:
    auth = ServiceAuth.generate("svc", "key")
    authenticate(f"Bearer {auth.primary_key}", auth)
    authenticate(f"bearer   {auth.secondary_key} ", auth)
    cases = {
        None: "missing Authorization header: send 'Authorization: Bearer <key>'",
        "": "missing Authorization header",
        f"Basic {auth.primary_key}": "must use the Bearer scheme, not 'Basic'",
        "Bearer": "no key after 'Bearer'",
        "Bearer wrong": "invalid key",
        "Bearer ünïcode": "invalid key",
        # A key sent without the scheme: nothing of it comes back in the answer.
        auth.primary_key: "must use the Bearer scheme\nHint",
    }
    for header, fragment in cases.items():
        with pytest.raises(AuthenticationError, match=fragment) as info:
            authenticate(header, auth)
        assert auth.primary_key[:8] not in str(info.value)
        assert info.value.status_code == 401


def test_mode_helpers() -> None:
    assert [normalize_auth(v) for v in ("key", "TOKEN", "none", None, False, True, "")] == [
        "key",
        "token",
        None,
        None,
        None,
        "key",
        None,
    ]
    with pytest.raises(InvalidArgumentError, match="unknown auth mode 'basic'"):
        normalize_auth("basic")
    assert default_auth("local") is None
    assert default_auth("docker") == default_auth("kubernetes") == "key"
    assert mask_secret("abcdefghijkl") == "abcd…"
    assert auth_file_path("/ws/services", "svc") == Path("/ws/services/svc/auth.json")


def test_cors_policy_forms() -> None:
    assert CorsPolicy.from_value(None) is None
    one = CorsPolicy.from_value("http://localhost:3000")
    assert one is not None
    assert one.allow_origins == ("http://localhost:3000",)
    full = CorsPolicy.from_value(
        {"allow_origins": ["https://a.test"], "allow_methods": ["post"], "max_age": 0}
    )
    assert full is not None
    assert full.allow_methods == ("POST",)
    assert CorsPolicy.from_dict(full.to_dict()) == full
    with pytest.raises(InvalidArgumentError, match="bad CORS method or header name"):
        CorsPolicy(("https://a.test",), allow_headers=("bad header",))
    with pytest.raises(InvalidArgumentError, match="max_age"):
        CorsPolicy(("https://a.test",), max_age=-1)


# --------------------------------------------------------------------------- real services

SCORE = """
import cloudpickle

import nbdeploy

factor = None


def init():
    global factor
    with open(nbdeploy.get_model_path("doubler"), "rb") as fh:
        factor = cloudpickle.load(fh)["factor"]


def run(data):
    return [factor * x for x in data]
"""


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace with the "doubler" model and a scoring script; services stopped after."""
    from nbdeploy.targets import shutdown_warm_server

    workspace = get_workspace(tmp_path / "ws")
    (tmp_path / "score.py").write_text(SCORE, encoding="utf-8")
    nbdeploy.register({"factor": 2}, "doubler", workspace=workspace)
    yield workspace
    for record in workspace.services.list():
        Webservice._from_record(workspace, record).delete()
    shutdown_warm_server(workspace)


def _deploy(ws: Workspace, name: str = "dbl", **kwargs: Any) -> Webservice:
    score = ws.path.parent / "score.py"
    return nbdeploy.deploy("doubler", name=name, score=str(score), workspace=ws, **kwargs)


def _post(service: Webservice, headers: dict[str, str] | None = None) -> requests.Response:
    assert service.scoring_uri
    return requests.post(service.scoring_uri, json={"data": [1, 2]}, headers=headers, timeout=30)


def _pid(service: Webservice) -> int:
    return int(service.refresh().config["process"]["pid"])


@pytest.mark.integration
def test_key_auth_on_a_real_local_service(ws: Workspace) -> None:
    service = _deploy(ws, auth="key")
    assert service.record.config["auth_enabled"] is True
    assert service.auth_enabled
    assert not service.token_auth_enabled
    primary, secondary = service.get_keys()
    path = auth_file_path(ws.services_dir, "dbl")
    assert path.stat().st_mode & 0o777 == 0o600
    assert primary not in json.dumps(service.serialize())

    r = _post(service)
    assert r.status_code == 401
    assert r.json()["message"].startswith("missing Authorization header")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert _post(service, {"Authorization": f"Bearer {secondary}"}).json() == [2, 4]
    assert service.run([1, 2, 3]) == [2, 4, 6]  # run() sends the key itself
    assert requests.get(service.swagger_uri or "", timeout=30).json()["securityDefinitions"]

    pid = _pid(service)
    service.regen_key("Primary")
    new_primary, same_secondary = service.get_keys()
    assert new_primary != primary
    assert same_secondary == secondary
    assert _post(service, {"Authorization": f"Bearer {primary}"}).status_code == 401
    assert _post(service, {"Authorization": f"Bearer {new_primary}"}).status_code == 200
    assert _pid(service) == pid  # no restart
    assert service.run([5]) == [10]

    logs = service.get_logs()
    assert primary not in logs
    assert new_primary not in logs
    assert secondary not in logs


@pytest.mark.integration
def test_keys_survive_an_update_and_the_card_masks_them(ws: Workspace) -> None:
    from nbdeploy.display.cards import service_card

    service = _deploy(ws, auth="key")
    keys = service.get_keys()
    updated = _deploy(ws)  # same name: an update, auth as it was
    assert updated.get_keys() == keys
    assert _post(updated).status_code == 401
    card = service_card(updated)
    for key in keys:
        assert key not in card["text/plain"]
        assert key not in card["text/html"]
    assert keys[0][:4] in card["text/plain"]
    assert "Authorization" in card["text/html"]
    updated.delete()
    assert not auth_file_path(ws.services_dir, "dbl").exists()


@pytest.mark.integration
def test_token_auth_on_a_real_local_service(ws: Workspace) -> None:
    cfg = nbdeploy.LocalWebservice.deploy_configuration(token_auth_enabled=True)
    service = _deploy(ws, config=cfg)
    assert service.token_auth_enabled
    from nbdeploy.display.cards import service_card

    assert "Bearer <token from service.get_token()>" in service_card(service)["text/plain"]
    token, refresh_by = service.get_token()
    now = datetime.now(timezone.utc)
    assert now < refresh_by <= now.replace(microsecond=0) + (refresh_by - now) * 2
    assert _post(service, {"Authorization": f"Bearer {token}"}).json() == [2, 4]
    assert service.run([4]) == [8]
    with pytest.raises(InvalidArgumentError, match="has token auth; get_keys"):
        service.get_keys()
    auth = read_auth_file(auth_file_path(ws.services_dir, "dbl"))
    assert auth is not None
    old, _ = sign_token(auth, ttl=60, now=now.timestamp() - 3600)
    r = _post(service, {"Authorization": f"Bearer {old}"})
    assert r.status_code == 401
    assert r.json()["message"].startswith("token expired at ")
    _, expires_in_ten = sign_token(auth, ttl=10, now=now.timestamp())
    assert service.get_token(ttl=10)[1] < expires_in_ten  # refresh before it expires


@pytest.mark.integration
def test_local_services_default_to_no_auth_and_cors_is_served(ws: Workspace) -> None:
    origin = "http://127.0.0.1:9"
    service = _deploy(ws, cors=[origin])
    assert not service.auth_enabled
    with pytest.raises(InvalidArgumentError, match="has no auth"):
        service.get_keys()
    assert not auth_file_path(ws.services_dir, "dbl").exists()
    assert _post(service).json() == [2, 4]
    assert service.scoring_uri
    r = requests.options(
        service.scoring_uri,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=30,
    )
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert service.record.config["cors"]["allow_origins"] == [origin]
