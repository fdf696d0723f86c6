"""Who may call a Docker service: its auth mode, its auth file, its CORS policy.

Key or token auth is on by default: the service's auth file
(``<workspace>/services/<name>/auth.json``, see :mod:`nbdeploy.core.auth`) is copied
into the container — never into the image — and
:meth:`~nbdeploy.targets.docker.target.DockerTarget.sync_auth` copies it again after a
key is regenerated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbdeploy.core.auth import ServiceAuth, auth_file_path, read_auth_file, write_auth_file
from nbdeploy.core.bundle import Bundle
from nbdeploy.targets.config import auth_mode_for

from .config import DockerConfig
from .containers import AUTH_FILE_IN_CONTAINER

__all__ = ["access", "server_settings"]


def access(
    services_dir: Path, name: str, bundle: Bundle, cfg: DockerConfig
) -> tuple[str | None, Path | None]:
    """The service's auth mode and auth file.

    The mode is :func:`~nbdeploy.targets.config.auth_mode_for` the bundle's settings;
    the service's auth file is written with fresh secrets when missing or of another
    mode.
    """
    settings = bundle.settings
    mode = auth_mode_for(settings, cfg)
    if mode is None:
        return None, None
    given = settings.get("auth_file")
    path = (
        Path(given)
        if isinstance(given, str) and Path(given).is_absolute()
        else auth_file_path(services_dir, name)
    )
    current = read_auth_file(path)
    if current is None:
        write_auth_file(path, ServiceAuth.generate(name, mode))  # type: ignore[arg-type]
    elif current.mode != mode:
        write_auth_file(path, current.with_mode(mode))  # type: ignore[arg-type]
    return mode, path


def server_settings(
    mode: str | None, bundle: Bundle | None = None, cfg: DockerConfig | None = None
) -> dict[str, Any]:
    """Settings written into the image's bundle.json: auth as decided, the auth file
    being the copy inside the container; the configuration's CORS policy when the
    bundle has none."""
    settings: dict[str, Any] = {
        "auth_enabled": mode == "key",
        "token_auth_enabled": mode == "token",
    }
    if mode is not None:
        settings["auth_file"] = AUTH_FILE_IN_CONTAINER
    else:
        settings["auth_file"] = None
    has_cors = bundle is not None and bool(bundle.settings.get("cors"))
    if cfg is not None and cfg.cors is not None and not has_cors:
        settings["cors"] = cfg.cors.to_dict()
    return settings
