"""Who may call a service: its auth mode, keys and CORS policy, decided once for
every target.

:func:`access_settings` decides them for a deploy or an update and writes the
service's auth file; :func:`auth_headers` is the header a client of the service
sends (the profiler, the SDK's ``Webservice.run``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nbdeploy.core.auth import (
    AuthMode,
    CorsPolicy,
    ServiceAuth,
    auth_file_path,
    default_auth,
    normalize_auth,
    read_auth_file,
    sign_token,
    write_auth_file,
)
from nbdeploy.core.bundle import Bundle
from nbdeploy.core.serving import serving_settings
from nbdeploy.exceptions import NbdeployError

if TYPE_CHECKING:
    from nbdeploy.core.services import ServiceRecord
    from nbdeploy.core.workspace import Workspace

__all__ = ["access_settings", "auth_headers", "keep_access"]


def _config_auth(config: Any) -> AuthMode | bool | None:
    """The auth a deployment configuration asks for; ``False`` when it has no say."""
    if config is None or not hasattr(config, "auth_enabled"):
        return False
    if getattr(config, "token_auth_enabled", False):
        return "token"
    return "key" if config.auth_enabled else None


def _auth_mode(
    target: str, config: Any, auth: Any, current: Mapping[str, Any] | None
) -> AuthMode | None:
    from_config = _config_auth(config)
    if auth is not None:
        return normalize_auth(auth)
    if from_config is not False:
        return from_config if isinstance(from_config, str) else None
    if current is not None:
        if current.get("auth_enabled"):
            return "key"
        return "token" if current.get("token_auth_enabled") else None
    return default_auth(target)


def _cors_policy(config: Any, cors: Any, current: Mapping[str, Any] | None) -> CorsPolicy | None:
    if cors is False:
        return None
    if cors is not None:
        return CorsPolicy.from_value(cors)
    if config is not None and hasattr(config, "cors"):
        return CorsPolicy.from_value(config.cors)
    if current is not None:
        return CorsPolicy.from_value(current.get("cors"))
    return None


def _record_choices(
    config: Any, auth: Any, cors: Any, mode: AuthMode | None, policy: CorsPolicy | None
) -> Any:
    """``config`` with the explicit choices written into the fields it has."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        return config
    changes: dict[str, Any] = {}
    if auth is not None and hasattr(config, "auth_enabled"):
        changes["auth_enabled"] = mode == "key"
        changes["token_auth_enabled"] = mode == "token"
    if cors is not None and hasattr(config, "cors"):
        changes["cors"] = policy
    return dataclasses.replace(config, **changes) if changes else config


def _write_auth_file(
    workspace: Workspace, name: str, mode: AuthMode | None, *, fresh: bool
) -> dict[str, Any]:
    """Write (or remove) the service's auth file; the bundle settings that say so."""
    path = auth_file_path(workspace.services_dir, name)
    if mode is None:
        path.unlink(missing_ok=True)
        return {}
    existing = None if fresh else read_auth_file(path)
    secrets = ServiceAuth.generate(name, mode) if existing is None else existing
    write_auth_file(path, secrets.with_mode(mode))
    return {
        "auth_enabled": mode == "key",
        "token_auth_enabled": mode == "token",
        "auth_file": str(path),
    }


def access_settings(
    workspace: Workspace,
    name: str,
    target: str,
    config: Any,
    *,
    auth: Any = None,
    cors: Any = None,
    current: Mapping[str, Any] | None = None,
    fresh: bool,
) -> tuple[Any, dict[str, Any]]:
    """Decide a service's auth and CORS, write its auth file; (config, bundle settings).

    Auth: an explicit ``auth`` (``"key"``, ``"token"``, ``"none"``/``False``) wins, then
    the deployment configuration's ``auth_enabled`` / ``token_auth_enabled`` fields,
    then (updates) the running bundle's settings, then the target's default
    (:func:`~nbdeploy.core.auth.default_auth`: none locally, keys elsewhere). CORS
    likewise: ``cors`` (``False`` turns it off), the configuration's ``cors`` field,
    the running bundle's. Explicit choices are written into configurations that have
    those fields, so the service record tells the truth.

    With auth on, the service's auth file (``services/<name>/auth.json``, 0600) gets
    new keys on a fresh deploy and keeps its keys on an update; with auth off it is
    removed. Every target passes the returned settings through the bundle, so every
    server enforces the same thing.
    """
    mode = _auth_mode(target, config, auth, current)
    policy = _cors_policy(config, cors, current)
    config = _record_choices(config, auth, cors, mode, policy)
    settings: dict[str, Any] = {"service_name": name}
    settings.update(_write_auth_file(workspace, name, mode, fresh=fresh))
    if policy is not None:
        settings["cors"] = policy.to_dict()
    # Per-replica concurrency, queue wait and scoring timeout: from the configuration,
    # else kept from the running bundle; the server enforces them on every target.
    settings.update(serving_settings(config, current))
    return config, settings


def keep_access(record: ServiceRecord, auth: Any, cors: Any) -> tuple[Any, Any]:
    """``auth`` / ``cors`` as given, else what the running bundle of ``record`` has."""
    try:
        current = Bundle.load(record.bundle_path).settings if record.bundle_path else {}
    except (NbdeployError, OSError, ValueError):  # unreadable: the configuration decides
        return auth, cors
    if auth is None:
        if current.get("auth_enabled"):
            auth = "key"
        elif current.get("token_auth_enabled"):
            auth = "token"
        else:
            auth = "none"
    if cors is None:
        cors = current.get("cors") or False
    return auth, cors


def auth_headers(workspace: Workspace, name: str, *, now: float | None = None) -> dict[str, str]:
    """The ``Authorization`` header a client of service ``name`` sends (none without
    auth): its primary key, or a fresh token.

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> auth_headers(Workspace(tempfile.mkdtemp()), "no-auth")
    {}
    """
    auth = read_auth_file(auth_file_path(workspace.services_dir, name))
    if auth is None:
        return {}
    if auth.mode == "key":
        return {"Authorization": f"Bearer {auth.primary_key}"}
    token, _ = sign_token(auth, ttl=None, now=now)
    return {"Authorization": f"Bearer {token}"}
