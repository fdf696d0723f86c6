"""Every nbdeploy setting, declared once.

Each setting has a name, a type, a default, a docstring and an ``NBDEPLOY_*``
environment variable. A value is resolved with a fixed precedence:

1. an explicit argument to the public function,
2. a session override (``%config Nbdeploy.<name> = ...`` / :func:`set_option`),
3. the environment variable ``NBDEPLOY_<NAME>``,
4. ``[tool.nbdeploy]`` in the ``pyproject.toml`` of the current folder,
5. the default below.

Only the fronts (public API, CLI, magics, server entrypoint) resolve settings; the
core takes explicit parameters and never reads ``os.environ`` itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exceptions import InvalidArgumentError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["SETTINGS", "Setting", "get_option", "reset_options", "resolve", "set_option"]


def _to_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r} (use true/false, 1/0, yes/no)")


def _to_path(text: str) -> Path:
    return Path(text).expanduser()


@dataclass(frozen=True)
class Setting:
    """One setting: its name, how to parse it from text, its default and meaning."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    doc: str

    @property
    def env_var(self) -> str:
        return f"NBDEPLOY_{self.name.upper()}"


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("home", _to_path, Path("~/.nbdeploy").expanduser(), "Workspace folder."),
        Setting("host", str, "127.0.0.1", "Interface local services bind to."),
        Setting("port", int, 0, "Port for a new local service; 0 picks a free one."),
        Setting("target", str, "local", "Default deployment target."),
        Setting(
            "warm_start",
            _to_bool,
            True,
            "Start local services by forking a pre-imported server process (fast); "
            "false starts a plain `python -m nbdeploy.server` process.",
        ),
        Setting("deploy_timeout", float, 120.0, "Seconds to wait for a service to be Healthy."),
        Setting(
            "max_request_bytes",
            int,
            100 * 1024 * 1024,
            "Largest request body a service accepts (413 beyond).",
        ),
        Setting("log_level", str, "info", "Log level of scoring servers."),
        Setting(
            "base_image",
            str,
            "",
            "Base image of built service images (Model.package, the docker target); "
            "empty: python:<the bundle's Python>-slim.",
        ),
        Setting(
            "offline_builds",
            _to_bool,
            False,
            "Package images with every wheel in the build context and build them with no "
            "network (Model.package / nbdeploy.package without offline=).",
        ),
    ]
}

_session: dict[str, Any] = {}


def _pyproject_values(cwd: Path | None = None) -> Mapping[str, Any]:
    path = (cwd or Path.cwd()) / "pyproject.toml"
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    section = data.get("tool", {}).get("nbdeploy", {})
    return section if isinstance(section, dict) else {}


def _setting(name: str) -> Setting:
    try:
        return SETTINGS[name]
    except KeyError:
        known = ", ".join(sorted(SETTINGS))
        raise InvalidArgumentError(
            f"unknown nbdeploy setting {name!r}", hint=f"known settings: {known}"
        ) from None


def _parse(setting: Setting, value: Any, source: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return setting.parse(value)
    except ValueError as exc:
        raise InvalidArgumentError(
            f"bad value {value!r} for setting {setting.name!r} from {source}: {exc}"
        ) from None


def resolve(
    name: str,
    argument: Any = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Any:
    """Resolve setting ``name`` with the documented precedence.

    Examples
    --------
    >>> resolve("host", environ={})
    '127.0.0.1'
    >>> resolve("port", 8080)
    8080
    """
    setting = _setting(name)
    if argument is not None:
        return _parse(setting, argument, "argument")
    if name in _session:
        return _session[name]
    env = os.environ if environ is None else environ
    if setting.env_var in env:
        return _parse(setting, env[setting.env_var], f"${setting.env_var}")
    project = _pyproject_values(cwd)
    if name in project:
        return _parse(setting, project[name], "pyproject.toml [tool.nbdeploy]")
    return setting.default


def set_option(name: str, value: Any) -> None:
    """Override a setting for this Python session (what ``%config`` sets)."""
    setting = _setting(name)
    _session[name] = _parse(setting, value, "set_option")


def get_option(name: str) -> Any:
    """The resolved value of a setting, without an explicit argument."""
    return resolve(name)


def reset_options() -> None:
    """Forget every session override."""
    _session.clear()
