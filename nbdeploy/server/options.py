"""The options one scoring server runs with.

A :class:`ServerOptions` is a frozen value object: the launcher
(``python -m nbdeploy.server``) builds it from its command line, the bundle's
``settings`` and the ``NBDEPLOY_*`` settings (:mod:`nbdeploy.config`), and hands it to
:func:`nbdeploy.server.create_app`. The app itself never reads the environment for
its options.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nbdeploy.core.auth import AuthMode, CorsPolicy
from nbdeploy.core.serving import DEFAULTS, check_serving_settings
from nbdeploy.exceptions import InvalidArgumentError

__all__ = ["LOG_LEVELS", "ServerOptions"]

#: Log levels the server accepts (uvicorn's names).
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

_DEFAULT_MAX_REQUEST_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class ServerOptions:
    """How one scoring server listens, limits and describes itself.

    Parameters
    ----------
    host:
        Interface to bind. ``127.0.0.1`` by default: a service is only reachable from
        other machines when a target asks for it (containers bind ``0.0.0.0``).
    port:
        TCP port; ``0`` lets the operating system pick a free one (the launcher then
        prints the port it got).
    max_request_bytes:
        Largest request body ``POST /score`` accepts; larger bodies get a 413.
    log_level:
        One of :data:`LOG_LEVELS`.
    service_name:
        Title of the OpenAPI documents and the Swagger UI page. ``None`` means the
        bundle's ``service_name`` setting, else its first model's name, else the
        bundle folder's name.
    auth_enabled:
        Key auth: ``POST /score`` requires ``Authorization: Bearer <key>`` (the primary
        or the secondary key of the auth file).
    token_auth_enabled:
        Token auth: ``POST /score`` requires ``Authorization: Bearer <token>``, a token
        signed with the auth file's secret (see :mod:`nbdeploy.core.auth`). Not
        together with ``auth_enabled``, as in the reference.
    auth_file:
        The auth file holding the keys and the token secret (read again whenever it
        changes). A relative path is relative to the bundle; ``None`` means
        ``<bundle>/auth.json``. Only read when auth is on.
    cors:
        The browser origins allowed to call the service, as a
        :class:`~nbdeploy.core.auth.CorsPolicy` (a dict or a list of origins is
        converted); ``None`` (the default) answers no CORS request.
    replica_max_concurrent_requests, max_request_wait_time, scoring_timeout_ms:
        How many ``run()`` calls at once, how long (ms) a request may wait for one
        (then ``503``), how long (ms) ``run()`` may take (then ``504``): see
        :mod:`nbdeploy.core.serving`.
    allowed_hosts:
        The host names (``Host`` header, without the port) the server answers; others
        get ``403``, which defeats DNS rebinding (a page whose domain was re-pointed at
        127.0.0.1). ``"*"`` allows any. ``None`` (the default): ``localhost``,
        ``*.localhost``, ``127.0.0.1`` and ``::1`` when the server binds a loopback
        address, any host otherwise (a container or a public interface is reached by
        names the server cannot know).

    Examples
    --------
    >>> s = ServerOptions(port=8080, max_request_bytes=1024)
    >>> ServerOptions.from_dict(s.to_dict()) == s
    True
    """

    host: str = "127.0.0.1"
    port: int = 0
    max_request_bytes: int = _DEFAULT_MAX_REQUEST_BYTES
    log_level: str = "info"
    service_name: str | None = None
    auth_enabled: bool = False
    token_auth_enabled: bool = False
    auth_file: str | None = None
    cors: CorsPolicy | None = None
    replica_max_concurrent_requests: int = DEFAULTS["replica_max_concurrent_requests"]
    max_request_wait_time: int = DEFAULTS["max_request_wait_time"]
    scoring_timeout_ms: int = DEFAULTS["scoring_timeout_ms"]
    allowed_hosts: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        check_serving_settings(self)
        self._normalize_allowed_hosts()
        self._check_auth()
        object.__setattr__(self, "cors", CorsPolicy.from_value(self.cors))
        self._check_address()
        self._check_limits_and_labels()

    def _normalize_allowed_hosts(self) -> None:
        if self.allowed_hosts is not None:
            given: Any = self.allowed_hosts  # a str or a list from bundle.json
            hosts = (given,) if isinstance(given, str) else tuple(given)
            if not hosts or not all(isinstance(h, str) and h and " " not in h for h in hosts):
                raise InvalidArgumentError(
                    f"bad allowed_hosts {self.allowed_hosts!r}",
                    hint="give host names such as ['localhost', 'model.example.com'], or '*'",
                )
            object.__setattr__(self, "allowed_hosts", tuple(h.lower() for h in hosts))

    def _check_auth(self) -> None:
        for flag in ("auth_enabled", "token_auth_enabled"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidArgumentError(
                    f"{flag} must be True or False, got {getattr(self, flag)!r}"
                )
        if self.auth_enabled and self.token_auth_enabled:
            raise InvalidArgumentError(
                "auth_enabled and token_auth_enabled cannot both be True",
                hint="choose key auth (auth_enabled) or token auth (token_auth_enabled)",
            )
        if self.auth_file is not None and (
            not isinstance(self.auth_file, str) or not self.auth_file
        ):
            raise InvalidArgumentError(
                f"bad auth_file {self.auth_file!r}", hint="give the path of the auth file"
            )

    def _check_address(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise InvalidArgumentError(
                f"bad server host {self.host!r}",
                hint="give an interface address such as '127.0.0.1' or '0.0.0.0'",
            )
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise InvalidArgumentError(f"bad server port {self.port!r}: not an integer")
        if not 0 <= self.port <= 65535:
            raise InvalidArgumentError(
                f"bad server port {self.port!r}",
                hint="use 1-65535, or 0 to let the system pick a free port",
            )

    def _check_limits_and_labels(self) -> None:
        if (
            isinstance(self.max_request_bytes, bool)
            or not isinstance(self.max_request_bytes, int)
            or self.max_request_bytes <= 0
        ):
            raise InvalidArgumentError(
                f"bad max_request_bytes {self.max_request_bytes!r}",
                hint="give a positive number of bytes, e.g. 104857600 for 100 MB",
            )
        if self.log_level not in LOG_LEVELS:
            raise InvalidArgumentError(
                f"bad log level {self.log_level!r}",
                hint=f"use one of {', '.join(LOG_LEVELS)}",
            )
        if self.service_name is not None and (
            not isinstance(self.service_name, str) or not self.service_name.strip()
        ):
            raise InvalidArgumentError(
                f"bad service name {self.service_name!r}",
                hint="give a non-empty string, or None to use the model's name",
            )

    @property
    def host_names(self) -> frozenset[str] | None:
        """The ``Host`` names to accept (lower case, no port), or ``None`` for any.

        Examples
        --------
        >>> sorted(ServerOptions().host_names)
        ['127.0.0.1', '::1', '[::1]', 'localhost']
        >>> ServerOptions(host="0.0.0.0").host_names is None
        True
        """
        if self.allowed_hosts is not None:
            return None if "*" in self.allowed_hosts else frozenset(self.allowed_hosts)
        if not _is_loopback(self.host):
            return None
        return frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

    @property
    def auth_mode(self) -> AuthMode | None:
        """``"key"``, ``"token"`` or ``None`` (no auth)."""
        if self.auth_enabled:
            return "key"
        return "token" if self.token_auth_enabled else None

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (the inverse of :meth:`from_dict`)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["cors"] = None if self.cors is None else self.cors.to_dict()
        if self.allowed_hosts is not None:
            values["allowed_hosts"] = list(self.allowed_hosts)
        return values

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerOptions:
        """Settings from a dict; unknown keys are an error, missing keys take defaults.

        Examples
        --------
        >>> ServerOptions.from_dict({"port": 5001}).port
        5001
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgumentError(
                f"unknown server settings {unknown}",
                hint=f"known settings: {', '.join(sorted(known))}",
            )
        return cls(**dict(data))

    @classmethod
    def from_bundle_settings(
        cls, bundle_settings: Mapping[str, Any] | None, **overrides: Any
    ) -> ServerOptions:
        """Settings from a bundle's ``settings`` section, with explicit overrides on top.

        Keys of ``bundle_settings`` that are not server settings (a bundle also carries
        target settings) are ignored; overrides whose value is ``None`` are skipped, so
        a launcher can pass its optional command-line values straight through.

        Examples
        --------
        >>> s = ServerOptions.from_bundle_settings({"port": 5001, "replicas": 3}, port=None)
        >>> s.port
        5001
        """
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in (bundle_settings or {}).items() if k in known}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
