"""What every target's deployment configuration shares: dict and mapping input, the
auth mode, and the checks of settings several targets have (port, host, numbers)."""

from __future__ import annotations

import inspect
import ipaddress
import math
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from nbdeploy.exceptions import InvalidArgumentError

__all__ = [
    "TargetConfig",
    "auth_mode_for",
    "check_host",
    "check_port",
    "optional_positive",
    "positive",
]

C = TypeVar("C", bound="TargetConfig")


class TargetConfig:
    """What the targets' deployment configurations share: dict and mapping input.

    Subclasses are frozen dataclasses naming their ``target``, a ``label`` for
    messages and a ``coerce_hint`` saying how to make one.
    """

    target: ClassVar[str]
    label: ClassVar[str]
    coerce_hint: ClassVar[str]

    # Every target's configuration has these two settings (its own default).
    auth_enabled: bool
    token_auth_enabled: bool

    def __init__(self, **values: Any) -> None:  # replaced by each dataclass's own
        raise NotImplementedError

    def _set(self, name: str, value: Any) -> None:
        """Store a checked (converted) setting on the frozen dataclass."""
        object.__setattr__(self, name, value)

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Build a config from its ``to_dict()`` output (unknown keys are an error)."""
        values = dict(data)
        given = values.pop("target", cls.target)
        if given != cls.target:
            raise InvalidArgumentError(
                f"configuration for target {given!r} given to the {cls.target} target"
            )
        known = set(inspect.signature(cls).parameters)
        unknown = set(values) - known
        if unknown:
            raise InvalidArgumentError(
                f"unknown {cls.label} deployment setting(s): {', '.join(sorted(unknown))}",
                hint=f"known settings: {', '.join(sorted(known))}",
            )
        return cls(**values)

    @classmethod
    def coerce(cls: type[C], config: Any) -> C:
        """``config`` as this configuration (from ``None``, a mapping or itself)."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, Mapping):
            return cls.from_dict(config)
        raise InvalidArgumentError(
            f"expected a {cls.__name__} for the {cls.target} target, got {type(config).__name__}",
            hint=cls.coerce_hint,
        )

    @property
    def auth_mode(self) -> str | None:
        """``"key"``, ``"token"`` or ``None``."""
        if self.auth_enabled:
            return "key"
        return "token" if self.token_auth_enabled else None


def auth_mode_for(settings: Mapping[str, Any], config: TargetConfig) -> str | None:
    """A service's auth mode: the bundle's ``settings`` decide when they speak about
    auth (the deploy path writes them, see :func:`nbdeploy.workflows.access.access_settings`);
    otherwise the ``config`` does.

    Examples
    --------
    >>> from nbdeploy.targets.local.config import LocalConfig
    >>> auth_mode_for({"token_auth_enabled": True}, LocalConfig())
    'token'
    >>> auth_mode_for({}, LocalConfig(auth_enabled=True))
    'key'
    """
    if "auth_enabled" in settings or "token_auth_enabled" in settings:
        if settings.get("auth_enabled"):
            return "key"
        return "token" if settings.get("token_auth_enabled") else None
    return config.auth_mode


def check_port(port: Any, label: str) -> None:
    """Refuse a port a service cannot bind (``0`` is fine: a free one is picked).

    Examples
    --------
    >>> check_port(70000, "local")
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: invalid port 70000 for a local service
    Hint: use a port between 1 and 65535, or 0 to pick a free one
    """
    if isinstance(port, bool) or not isinstance(port, int) or not (0 <= port <= 65535):
        raise InvalidArgumentError(
            f"invalid port {port!r} for a {label} service",
            hint="use a port between 1 and 65535, or 0 to pick a free one",
        )


def check_host(host: Any, label: str, hint: str) -> None:
    """Refuse a bind address that is neither an IP address nor ``localhost``.

    Examples
    --------
    >>> check_host("example.org", "local", "use '127.0.0.1'")
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: invalid host 'example.org' for a local ...
    Hint: use '127.0.0.1'
    """
    if not isinstance(host, str) or not host:
        raise InvalidArgumentError(f"invalid host {host!r} for a {label} service", hint=hint)
    if host == "localhost":
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InvalidArgumentError(
            f"invalid host {host!r} for a {label} service: not an IP address", hint=hint
        ) from None


def positive(value: Any, what: str, *, integer: bool = False, zero: bool = False) -> Any:
    """``value`` as a finite positive ``float`` (``int`` with ``integer``; ``0`` allowed
    with ``zero``).

    Examples
    --------
    >>> positive(2, "replicas", integer=True), positive(0, "cpus", zero=True)
    (2, 0.0)
    """
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(value):
        kind = "a whole number" if integer else "a number"
        raise InvalidArgumentError(f"{what} must be {kind}, got {value!r}")
    if value < 0 or (value == 0 and not zero):
        raise InvalidArgumentError(f"{what} must be positive, got {value!r}")
    return int(value) if integer else float(value)


def optional_positive(value: Any, what: str, *, integer: bool = False) -> Any:
    """:func:`positive`, with ``None`` kept.

    Examples
    --------
    >>> optional_positive(None, "timeout") is None
    True
    """
    return None if value is None else positive(value, what, integer=integer)
