"""Who may call a service: keys, tokens and browser origins (CORS).

Every target serves the same bundle with the same server, so access control is decided
here once and enforced by the scoring server the same way everywhere:

Key auth (``auth="key"``)
    A primary and a secondary key per service, each ``secrets.token_urlsafe(32)``.
    Clients send ``Authorization: Bearer <key>``. Either key works, so one can be
    regenerated while clients still use the other.
Token auth (``auth="token"``)
    Short-lived tokens ``base64url(payload).base64url(signature)``: the payload is the
    JSON ``{"svc": <service>, "iat": <issued>, "exp": <expiry>, "nonce": <hex>}`` (Unix
    seconds), the signature its HMAC-SHA256 under the service's signing secret. The
    workspace signs (``service.get_token()``), the server verifies; an expired or
    tampered token is refused. Keys do not open a token service.

Both live in the service's **auth file**, ``<workspace>/services/<name>/auth.json``
(mode 0600, replaced atomically): the mode, the two keys, the token signing secret and
the default token lifetime. The server re-reads it when its inode, size or
modification time changes (one ``stat`` per scored request), so
``service.regen_key("Primary")`` takes effect at the next request without a restart.
A target whose server cannot see the workspace folder mounts the service folder (not
the file: an atomic replace gives the file a new inode) and passes ``--auth-file``.

Every comparison of a secret is constant-time (:func:`hmac.compare_digest`); nothing
here logs or prints a key or a token (:class:`ServiceAuth`'s ``repr`` masks them).

CORS (:class:`CorsPolicy`)
    The browser origins allowed to call a service, and the methods, request headers,
    exposed headers, credentials flag and preflight cache time the server answers
    with.

This module imports only the standard library.

Examples
--------
>>> auth = ServiceAuth.generate("diabetes", "token", token_ttl=600)
>>> token, expires = sign_token(auth, now=1_700_000_000)
>>> verify_token(token, auth, now=1_700_000_100)["svc"]
'diabetes'
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from nbdeploy.exceptions import AuthenticationError, InvalidArgumentError

__all__ = [
    "AUTH_FILE_NAME",
    "AUTH_MODES",
    "DEFAULT_TOKEN_TTL",
    "MAX_TOKEN_TTL",
    "AuthMode",
    "CorsPolicy",
    "ServiceAuth",
    "auth_file_path",
    "authenticate",
    "default_auth",
    "mask_secret",
    "normalize_auth",
    "read_auth_file",
    "sign_token",
    "verify_token",
    "write_auth_file",
]

AuthMode = Literal["key", "token"]
#: The auth modes a service can have (``None`` means no auth).
AUTH_MODES: tuple[AuthMode, ...] = ("key", "token")
#: Seconds a token is valid unless the service or the caller says otherwise.
DEFAULT_TOKEN_TTL = 3600.0
#: The longest token lifetime a service or :func:`sign_token` accepts (one year).
MAX_TOKEN_TTL = 366 * 24 * 3600.0
#: The auth file's name inside ``<workspace>/services/<name>/``.
AUTH_FILE_NAME = "auth.json"

_KEY_NAMES = {"primary": "primary_key", "secondary": "secondary_key"}


def mask_secret(secret: str) -> str:
    """The first 4 characters of a secret and an ellipsis (what may be shown).

    Examples
    --------
    >>> mask_secret("abcdefghijklmnop")
    'abcd…'
    >>> mask_secret("abc")
    '…'
    """
    return secret[:4] + "…" if len(secret) > 8 else "…"


def normalize_auth(value: Any) -> AuthMode | None:
    """An auth setting as ``"key"``, ``"token"`` or ``None`` (no auth).

    Accepts ``"key"``/``True``, ``"token"``, and ``None``/``False``/``"none"``/``""``
    (case-insensitive).

    Raises
    ------
    InvalidArgumentError
        For anything else.

    Examples
    --------
    >>> normalize_auth("KEY"), normalize_auth(True), normalize_auth("none")
    ('key', 'key', None)
    """
    if value is None or value is False:
        return None
    if value is True:
        return "key"
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("", "none", "off", "false"):
            return None
        if lowered == "key":
            return "key"
        if lowered == "token":
            return "token"
    raise InvalidArgumentError(
        f"unknown auth mode {value!r}",
        hint="use auth='key' (primary/secondary keys), auth='token' (short-lived tokens) "
        "or auth=None (no auth)",
    )


def default_auth(target: str) -> AuthMode | None:
    """The auth a target's services get when the caller does not choose.

    Local services run without auth (they listen on loopback only); every other target
    (Docker, Kubernetes, Ray: reachable from other machines) defaults to key auth, as
    in the reference.

    Examples
    --------
    >>> default_auth("local"), default_auth("docker")
    (None, 'key')
    """
    return None if target == "local" else "key"


def auth_file_path(services_dir: str | os.PathLike[str], service: str) -> Path:
    """Where service ``service``'s auth file lives: ``<services_dir>/<service>/auth.json``.

    Examples
    --------
    >>> auth_file_path("/ws/services", "iris").as_posix()
    '/ws/services/iris/auth.json'
    """
    return Path(services_dir) / service / AUTH_FILE_NAME


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, timezone.utc).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, repr=False)
class ServiceAuth:
    """The secrets of one service: its auth mode, two keys and the token signing secret.

    Parameters
    ----------
    service:
        The service name (tokens are issued for it).
    mode:
        ``"key"`` or ``"token"``.
    primary_key, secondary_key:
        The two keys (key auth).
    token_secret:
        The HMAC-SHA256 key tokens are signed with (token auth).
    token_ttl:
        Default lifetime of a token, in seconds.

    Examples
    --------
    >>> auth = ServiceAuth.generate("iris", "key")
    >>> ServiceAuth.from_dict(auth.to_dict()) == auth
    True
    >>> auth.primary_key in repr(auth)
    False
    """

    service: str
    mode: AuthMode
    primary_key: str
    secondary_key: str
    token_secret: str
    token_ttl: float = DEFAULT_TOKEN_TTL

    def __post_init__(self) -> None:
        if not isinstance(self.service, str) or not self.service:
            raise InvalidArgumentError(f"bad service name {self.service!r} in auth settings")
        if self.mode not in AUTH_MODES:
            raise InvalidArgumentError(
                f"unknown auth mode {self.mode!r}", hint="use 'key' or 'token'"
            )
        for name in ("primary_key", "secondary_key", "token_secret"):
            value = getattr(self, name)
            if not isinstance(value, str) or len(value) < 16 or not value.isascii():
                raise InvalidArgumentError(
                    f"the {name.replace('_', ' ')} of service {self.service!r} is too short "
                    "or not ASCII",
                    hint="use at least 16 ASCII characters, e.g. secrets.token_urlsafe(32)",
                )
        if (
            isinstance(self.token_ttl, bool)
            or not isinstance(self.token_ttl, (int, float))
            or not 0 < self.token_ttl <= MAX_TOKEN_TTL
        ):
            raise InvalidArgumentError(
                f"bad token lifetime {self.token_ttl!r}",
                hint="give a positive, finite number of seconds (at most one year), e.g. 3600",
            )
        object.__setattr__(self, "token_ttl", float(self.token_ttl))

    def __repr__(self) -> str:
        return (
            f"ServiceAuth(service={self.service!r}, mode={self.mode!r}, "
            f"primary_key={mask_secret(self.primary_key)!r}, "
            f"secondary_key={mask_secret(self.secondary_key)!r}, "
            f"token_ttl={self.token_ttl!r})"
        )

    @classmethod
    def generate(
        cls, service: str, mode: AuthMode, *, token_ttl: float = DEFAULT_TOKEN_TTL
    ) -> ServiceAuth:
        """Fresh secrets for ``service`` (``secrets.token_urlsafe(32)`` each).

        Examples
        --------
        >>> len(ServiceAuth.generate("iris", "key").primary_key)
        43
        """
        return cls(
            service=service,
            mode=mode,
            primary_key=secrets.token_urlsafe(32),
            secondary_key=secrets.token_urlsafe(32),
            token_secret=secrets.token_urlsafe(32),
            token_ttl=token_ttl,
        )

    def regenerate(self, key: str, set_key: str | None = None) -> ServiceAuth:
        """A copy with the ``"Primary"`` or ``"Secondary"`` key replaced.

        Parameters
        ----------
        key:
            ``"Primary"`` or ``"Secondary"`` (case-insensitive).
        set_key:
            The new value; default a fresh ``secrets.token_urlsafe(32)``.

        Raises
        ------
        InvalidArgumentError
            An unknown key name, or a ``set_key`` shorter than 16 characters.

        Examples
        --------
        >>> auth = ServiceAuth.generate("iris", "key")
        >>> new = auth.regenerate("Secondary")
        >>> new.primary_key == auth.primary_key, new.secondary_key == auth.secondary_key
        (True, False)
        """
        field = _KEY_NAMES.get(str(key).strip().lower())
        if field is None:
            raise InvalidArgumentError(
                f"unknown key {key!r}", hint="regenerate 'Primary' or 'Secondary'"
            )
        value = secrets.token_urlsafe(32) if set_key is None else set_key
        if field == "primary_key":
            return dataclasses.replace(self, primary_key=value)
        return dataclasses.replace(self, secondary_key=value)

    def with_mode(self, mode: AuthMode) -> ServiceAuth:
        """A copy with another auth mode (same secrets)."""
        return dataclasses.replace(self, mode=mode)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the auth file's content); :meth:`from_dict` reverses it."""
        return {
            "service": self.service,
            "mode": self.mode,
            "primary_key": self.primary_key,
            "secondary_key": self.secondary_key,
            "token_secret": self.token_secret,
            "token_ttl": self.token_ttl,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceAuth:
        """Rebuild from :meth:`to_dict` output.

        Raises
        ------
        InvalidArgumentError
            A key is missing or a value is bad (the message names which, never a secret).
        """
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(f"auth settings must be a JSON object, not {type(data)}")
        fields = ("service", "mode", "primary_key", "secondary_key", "token_secret")
        missing = [f for f in fields if f not in data]
        if missing:
            raise InvalidArgumentError(
                f"auth settings lack {', '.join(missing)}",
                hint="redeploy the service to write a new auth file",
            )
        return cls(
            service=data["service"],
            mode=data["mode"],
            primary_key=data["primary_key"],
            secondary_key=data["secondary_key"],
            token_secret=data["token_secret"],
            token_ttl=data.get("token_ttl", DEFAULT_TOKEN_TTL),
        )


def write_auth_file(path: str | os.PathLike[str], auth: ServiceAuth) -> Path:
    """Write ``auth`` to ``path`` atomically, readable by the owner only (0600).

    The file is written under a temporary name in the same folder and renamed over
    ``path``, so a server reading it sees the old or the new secrets, never half.

    Examples
    --------
    >>> import tempfile
    >>> p = write_auth_file(Path(tempfile.mkdtemp()) / "auth.json",
    ...                     ServiceAuth.generate("iris", "key"))
    >>> oct(p.stat().st_mode & 0o777)
    '0o600'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    data = json.dumps(auth.to_dict(), indent=2).encode("utf-8") + b"\n"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return target


def read_auth_file(path: str | os.PathLike[str]) -> ServiceAuth | None:
    """The secrets in the auth file at ``path``; ``None`` when there is no such file.

    Raises
    ------
    InvalidArgumentError
        The file exists but cannot be read or is not a valid auth file.

    Examples
    --------
    >>> read_auth_file("/nonexistent/auth.json") is None
    True
    """
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidArgumentError(
            f"cannot read the auth file {str(target)!r}: {exc.strerror or exc}",
            hint="check the file's owner and permissions (it should be 0600, yours)",
        ) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidArgumentError(
            f"the auth file {str(target)!r} is not valid JSON: {exc}",
            hint="redeploy the service to write a new auth file",
        ) from None
    return ServiceAuth.from_dict(data)


def sign_token(
    auth: ServiceAuth, *, ttl: float | None = None, now: float | None = None
) -> tuple[str, datetime]:
    """A new token for ``auth.service`` and the time it expires (aware UTC).

    Parameters
    ----------
    auth:
        The service's secrets (its ``token_secret`` signs).
    ttl:
        Lifetime in seconds; default ``auth.token_ttl``.
    now:
        Issue time as Unix seconds (default: now); for tests and clock-skew tools.

    Examples
    --------
    >>> auth = ServiceAuth.generate("iris", "token")
    >>> token, expires = sign_token(auth, ttl=60, now=0)
    >>> expires.isoformat()
    '1970-01-01T00:01:00+00:00'
    >>> token.count(".")
    1
    """
    lifetime = auth.token_ttl if ttl is None else ttl
    if (
        isinstance(lifetime, bool)
        or not isinstance(lifetime, (int, float))
        or not 0 < lifetime <= MAX_TOKEN_TTL  # also refuses NaN and infinity
    ):
        raise InvalidArgumentError(
            f"bad token lifetime {lifetime!r}",
            hint=f"give a positive, finite number of seconds, at most {MAX_TOKEN_TTL:.0f} "
            "(one year), e.g. ttl=3600",
        )
    issued = time.time() if now is None else float(now)
    expires = issued + float(lifetime)
    payload = {
        "svc": auth.service,
        "iat": round(issued, 3),
        "exp": round(expires, 3),
        "nonce": secrets.token_hex(8),
    }
    body = _b64encode(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
    return f"{body}.{_signature(auth, body)}", datetime.fromtimestamp(expires, timezone.utc)


def _signature(auth: ServiceAuth, body: str) -> str:
    digest = hmac.new(auth.token_secret.encode("ascii"), body.encode("ascii"), hashlib.sha256)
    return _b64encode(digest.digest())


_TOKEN_HINT = "get a new token with service.get_token()"


def verify_token(token: str, auth: ServiceAuth, *, now: float | None = None) -> dict[str, Any]:
    """Check a token's signature, service and expiry; its payload when valid.

    Raises
    ------
    AuthenticationError
        Malformed, signed with another secret or altered (``invalid token``), issued
        for another service, or expired (``token expired at <UTC time>``).

    Examples
    --------
    >>> auth = ServiceAuth.generate("iris", "token", token_ttl=60)
    >>> token, _ = sign_token(auth, now=0)
    >>> verify_token(token, auth, now=61)
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.AuthenticationError: token expired at 1970-01-01T00:01:00Z
    Hint: get a new token with service.get_token()
    """
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature or not token.isascii():
        raise AuthenticationError(
            "invalid token: expected '<payload>.<signature>'", hint=_TOKEN_HINT
        )
    if not hmac.compare_digest(_signature(auth, body).encode(), signature.encode()):
        raise AuthenticationError(
            "invalid token: its signature does not match (altered, or signed for another service)",
            hint=_TOKEN_HINT,
        )
    try:
        payload = json.loads(_b64decode(body))
        service, expires = payload["svc"], float(payload["exp"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise AuthenticationError("invalid token: unreadable payload", hint=_TOKEN_HINT) from None
    if service != auth.service:
        raise AuthenticationError(
            f"invalid token: issued for service {service!r}, not {auth.service!r}",
            hint=_TOKEN_HINT,
        )
    moment = time.time() if now is None else now
    if moment >= expires:
        raise AuthenticationError(f"token expired at {_iso(expires)}", hint=_TOKEN_HINT)
    return dict(payload)


#: Authorization schemes an answer may name (anything else may be a secret sent bare).
_KNOWN_SCHEMES = frozenset({"basic", "digest", "token", "negotiate", "ntlm", "hoba", "mutual"})


def _missing_message(mode: AuthMode) -> str:
    if mode == "token":
        return (
            "missing Authorization header: send 'Authorization: Bearer <token>' "
            "(service.get_token())"
        )
    return "missing Authorization header: send 'Authorization: Bearer <key>' (service.get_keys())"


def authenticate(header: str | None, auth: ServiceAuth, *, now: float | None = None) -> None:
    """Check an ``Authorization`` header value against a service's secrets.

    Key mode accepts either key, token mode a valid token; both compare in constant
    time. The messages never repeat the credential that was sent.

    Raises
    ------
    AuthenticationError
        With ``missing Authorization header: ...``, a wrong scheme, ``invalid key``,
        ``invalid token: ...`` or ``token expired at ...``.

    Examples
    --------
    >>> auth = ServiceAuth.generate("iris", "key")
    >>> authenticate(f"Bearer {auth.secondary_key}", auth)
    >>> authenticate("Bearer nope", auth)
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.AuthenticationError: invalid key
    Hint: send the primary or secondary key from service.get_keys() (regen_key() replaces one)
    """
    if header is None or not header.strip():
        raise AuthenticationError(_missing_message(auth.mode))
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    what = "token" if auth.mode == "token" else "key"
    if scheme.lower() != "bearer":
        # Name the scheme only when it is a well-known one: a client that sent its key
        # without "Bearer " would otherwise get (part of) the key back in the answer.
        known = scheme.lower() in _KNOWN_SCHEMES
        raise AuthenticationError(
            "the Authorization header must use the Bearer scheme"
            + (f", not {scheme!r}" if known else ""),
            hint=f"send 'Authorization: Bearer <{what}>'",
        )
    if not credential:
        raise AuthenticationError(
            f"the Authorization header has no {what} after 'Bearer'",
            hint=f"send 'Authorization: Bearer <{what}>'",
        )
    if auth.mode == "token":
        verify_token(credential, auth, now=now)
        return
    presented = credential.encode("utf-8", "surrogateescape")
    # Both comparisons always run: the time taken does not tell which key was close.
    primary = hmac.compare_digest(presented, auth.primary_key.encode("ascii"))
    secondary = hmac.compare_digest(presented, auth.secondary_key.encode("ascii"))
    if not (primary | secondary):
        raise AuthenticationError(
            "invalid key",
            hint="send the primary or secondary key from service.get_keys() "
            "(regen_key() replaces one)",
        )


_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s?#]+", re.IGNORECASE)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InvalidArgumentError(
        f"CORS {what} must be a list of strings, got {value!r}",
        hint=f"e.g. {what}=['...']",
    )


@dataclass(frozen=True)
class CorsPolicy:
    """Which browser origins may call a service, and how preflights are answered.

    Parameters
    ----------
    allow_origins:
        Origins (``scheme://host[:port]``, no path, no trailing slash) allowed to call
        the service, or ``"*"`` for any.
    allow_methods:
        Methods a cross-origin request may use (``GET``, ``POST`` by default).
    allow_headers:
        Request headers a cross-origin request may send (``Authorization`` and
        ``Content-Type`` by default; ``"*"`` allows any, ``Authorization`` included).
    expose_headers:
        Response headers the page's script may read (``x-request-id`` by default).
    allow_credentials:
        Whether the browser may send cookies / read the answer of a credentialed
        request; not allowed together with the ``"*"`` origin.
    max_age:
        Seconds a browser may cache a preflight answer.

    Examples
    --------
    >>> policy = CorsPolicy.from_value(["http://localhost:3000"])
    >>> policy.allows_origin("http://localhost:3000"), policy.allows_origin("http://evil")
    (True, False)
    >>> CorsPolicy.from_dict(policy.to_dict()) == policy
    True
    """

    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...] = ("GET", "POST")
    allow_headers: tuple[str, ...] = ("Authorization", "Content-Type")
    expose_headers: tuple[str, ...] = ("x-request-id",)
    allow_credentials: bool = False
    max_age: int = 600

    def __post_init__(self) -> None:
        origins = _strings(self.allow_origins, "allow_origins")
        if not origins:
            raise InvalidArgumentError(
                "CORS allow_origins is empty",
                hint="list the origins of the pages that call the service, e.g. "
                "['http://localhost:3000'], or pass cors=None to turn CORS off",
            )
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise InvalidArgumentError(
                    f"bad CORS origin {origin!r}",
                    hint="an origin is scheme://host[:port] with no path and no trailing "
                    "slash, e.g. 'https://app.example.com' or 'http://127.0.0.1:8080'",
                )
        object.__setattr__(self, "allow_origins", tuple(o.rstrip("/") for o in origins))
        methods = tuple(m.upper() for m in _strings(self.allow_methods, "allow_methods"))
        headers = _strings(self.allow_headers, "allow_headers")
        exposed = _strings(self.expose_headers, "expose_headers")
        for item in (*methods, *headers, *exposed):
            if item != "*" and not _TOKEN.fullmatch(item):
                raise InvalidArgumentError(
                    f"bad CORS method or header name {item!r}",
                    hint="use HTTP token names such as 'POST' or 'Content-Type'",
                )
        object.__setattr__(self, "allow_methods", methods)
        object.__setattr__(self, "allow_headers", headers)
        object.__setattr__(self, "expose_headers", exposed)
        if not isinstance(self.allow_credentials, bool):
            raise InvalidArgumentError(
                f"CORS allow_credentials must be True or False, got {self.allow_credentials!r}"
            )
        if self.allow_credentials and "*" in self.allow_origins:
            raise InvalidArgumentError(
                "CORS allow_credentials=True cannot be combined with the '*' origin "
                "(browsers refuse it)",
                hint="list the allowed origins explicitly",
            )
        if isinstance(self.max_age, bool) or not isinstance(self.max_age, int) or self.max_age < 0:
            raise InvalidArgumentError(
                f"bad CORS max_age {self.max_age!r}", hint="give whole seconds, e.g. 600"
            )

    @property
    def any_origin(self) -> bool:
        """Whether every origin is allowed (``"*"``)."""
        return "*" in self.allow_origins

    def allows_origin(self, origin: str) -> bool:
        """Whether a page from ``origin`` may call the service."""
        return self.any_origin or origin in self.allow_origins

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "allow_origins": list(self.allow_origins),
            "allow_methods": list(self.allow_methods),
            "allow_headers": list(self.allow_headers),
            "expose_headers": list(self.expose_headers),
            "allow_credentials": self.allow_credentials,
            "max_age": self.max_age,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CorsPolicy:
        """Build a policy from a dict with :meth:`to_dict`'s keys (only
        ``allow_origins`` is required; unknown keys are an error)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgumentError(
                f"unknown CORS setting(s) {unknown}", hint=f"known: {', '.join(sorted(known))}"
            )
        if "allow_origins" not in data:
            raise InvalidArgumentError(
                "CORS settings need allow_origins",
                hint="e.g. cors={'allow_origins': ['http://localhost:3000']}",
            )
        values = dict(data)
        for name in ("allow_origins", "allow_methods", "allow_headers", "expose_headers"):
            if name in values:
                values[name] = _strings(values[name], name)
        return cls(**values)

    @classmethod
    def from_value(cls, value: Any) -> CorsPolicy | None:
        """A policy from what a user passes as ``cors=``: ``None`` (no CORS), an
        origin string, a list of origins, a dict of settings, or a policy.

        Examples
        --------
        >>> CorsPolicy.from_value("http://a.test").allow_origins
        ('http://a.test',)
        """
        if value is None or isinstance(value, CorsPolicy):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        if isinstance(value, (str, list, tuple)):
            return cls(allow_origins=_strings(value, "allow_origins"))
        raise InvalidArgumentError(
            f"cannot use {type(value).__name__} as CORS settings",
            hint="pass a list of origins, or a dict such as "
            "{'allow_origins': ['http://localhost:3000'], 'max_age': 600}",
        )
