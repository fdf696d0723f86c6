"""What the scoring server checks before it answers: credentials, ``Host`` and body type.

``Authorization`` headers (:class:`AuthChecker`; the keys and tokens themselves are
:mod:`nbdeploy.core.auth`'s): the secrets live in the service's auth file. The server
reads it at start-up — a missing or unreadable file with auth on is a start-up failure,
never an open service — and again whenever its inode, size or modification time
changes: one ``os.stat`` per scored request, so ``service.regen_key(...)`` (which
replaces the file atomically) takes effect at the next request, without a restart.
If the file later disappears or cannot be read, the last secrets stay in force and a
warning is logged once.

Only ``/score`` is protected: ``GET /`` (health), the API documents, ``/docs`` and its
assets, and CORS preflights stay open. Authorization headers are never logged.

``Host`` (:func:`host_refusal`): a server bound to a loopback address answers only
loopback names, which defeats DNS rebinding. Body type (:func:`check_json_type`):
``POST /score`` parses only bodies declared as JSON, which a web page cannot send
without a CORS preflight.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from nbdeploy.core.auth import AUTH_FILE_NAME, AuthMode, ServiceAuth, authenticate, read_auth_file
from nbdeploy.exceptions import (
    HostNotAllowedError,
    InvalidArgumentError,
    UnsupportedMediaTypeError,
)

__all__ = [
    "AuthChecker",
    "auth_checker",
    "check_json_type",
    "host_refusal",
    "unauthorized_headers",
]

logger = logging.getLogger("nbdeploy.server")

_Stamp = tuple[int, int, int, int]


class AuthChecker:
    """Validates ``Authorization`` header values against a service's auth file.

    Parameters
    ----------
    path:
        The auth file.
    mode:
        ``"key"`` or ``"token"``: what the server was configured to accept (the
        file's secrets are used with this mode).

    Raises
    ------
    InvalidArgumentError
        The file is missing or invalid at start-up.

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.auth import write_auth_file
    >>> auth = ServiceAuth.generate("iris", "key")
    >>> path = write_auth_file(Path(tempfile.mkdtemp()) / "auth.json", auth)
    >>> checker = AuthChecker(path, "key")
    >>> checker.check(f"Bearer {auth.primary_key}")
    """

    def __init__(self, path: Path, mode: AuthMode) -> None:
        self.path = path
        self.mode: AuthMode = mode
        self._stamp: _Stamp | None = None
        self._warned = False
        stamp = self._stat()
        auth = self._read() if stamp is not None else None
        if auth is None:
            raise InvalidArgumentError(
                f"{mode} auth is on, but the auth file {str(path)!r} does not exist",
                hint="deploy through nbdeploy (it writes the file), or pass --auth-file "
                "with the path of the service's auth.json",
            )
        self._auth = auth.with_mode(mode)
        self._stamp = stamp

    @property
    def service(self) -> str:
        """The service name the auth file is for."""
        return self._auth.service

    def _stat(self) -> _Stamp | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def _read(self) -> ServiceAuth | None:
        try:
            return read_auth_file(self.path)
        except InvalidArgumentError as exc:
            if self._stamp is None:  # at start-up: fail closed
                raise
            self._warn(f"cannot use the changed auth file: {exc.message}")
            return None

    def _warn(self, message: str) -> None:
        if not self._warned:
            logger.warning("%s; the previous keys stay in force", message)
            self._warned = True

    def current(self) -> ServiceAuth:
        """The secrets in force, re-read when the file changed."""
        stamp = self._stat()
        if stamp is None:
            self._warn(f"the auth file {str(self.path)!r} is gone")
        elif stamp != self._stamp:
            auth = self._read()
            if auth is not None:
                self._auth = auth.with_mode(self.mode)
                self._stamp = stamp
                self._warned = False
                logger.info("auth file changed: keys reloaded")
        return self._auth

    def check(self, header: str | None) -> None:
        """Accept the header value or raise
        :class:`~nbdeploy.exceptions.AuthenticationError` (401)."""
        authenticate(header, self.current())


def unauthorized_headers(realm: str) -> dict[str, str]:
    """The ``WWW-Authenticate`` header of a 401 (RFC 6750).

    Examples
    --------
    >>> unauthorized_headers("iris")
    {'WWW-Authenticate': 'Bearer realm="iris"'}
    """
    safe = realm.replace("\\", "").replace('"', "")
    return {"WWW-Authenticate": f'Bearer realm="{safe}"'}


def auth_checker(
    bundle_dir: Path, mode: AuthMode | None, auth_file: str | None
) -> AuthChecker | None:
    """The checker of a service's ``Authorization`` headers, or None without auth.

    The auth file is ``auth_file`` (relative to the bundle folder), else
    ``<bundle>/auth.json``; a missing file with auth on fails the start-up.
    """
    if mode is None:
        return None
    path = Path(auth_file or AUTH_FILE_NAME)
    if not path.is_absolute():
        path = bundle_dir / path
    return AuthChecker(path, mode)


def check_json_type(content_type: bytes | None) -> None:
    """Refuse a ``POST /score`` body not declared as JSON (415).

    A web page can send ``text/plain``, ``application/x-www-form-urlencoded``,
    ``multipart/form-data`` — or no type at all — to any address without asking the
    browser first (no CORS preflight); ``application/json`` needs a preflight, which
    this server refuses unless a CORS policy allows the page. So parsing only bodies
    declared as JSON is what keeps a page from driving a local service.

    Examples
    --------
    >>> check_json_type(b"application/json; charset=utf-8")
    >>> check_json_type(b"application/problem+json")
    """
    media = b"" if content_type is None else content_type.split(b";", 1)[0].strip().lower()
    if media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    ):
        return
    shown = "none" if content_type is None else repr(content_type.decode("latin-1")[:60])
    raise UnsupportedMediaTypeError(
        f"POST /score takes a JSON body declared as such; the Content-Type was {shown}",
        hint="send the header 'Content-Type: application/json' (curl: -H "
        "'Content-Type: application/json'; requests: json=...)",
    )


def host_refusal(
    headers: list[tuple[bytes, bytes]], names: frozenset[str]
) -> HostNotAllowedError | None:
    """``None`` when the request's ``Host`` is one of ``names`` (any port), else the
    403 error to answer with.

    Examples
    --------
    >>> names = frozenset({"localhost", "127.0.0.1"})
    >>> host_refusal([(b"host", b"localhost:8080")], names) is None
    True
    >>> host_refusal([(b"host", b"evil.example")], names).status_code
    403
    """
    host = next((value for key, value in headers if key == b"host"), None)
    if host is None:
        sent = "(no Host header)"
    else:
        sent = host.decode("latin-1").strip().lower()
        if sent.startswith("["):  # [::1]:8080
            name = sent[: sent.find("]") + 1] if "]" in sent else sent
        elif sent.count(":") == 1:  # localhost:8080
            name = sent.split(":", 1)[0]
        else:  # localhost, or a bare IPv6 address
            name = sent
        if name in names or (name.endswith(".localhost") and "localhost" in names):
            return None
        sent = sent[:100]
    return HostNotAllowedError(
        f"this service does not answer requests for host {sent!r}",
        hint=f"call it as {', '.join(sorted(names))} (a page that points its own domain "
        "at this machine is refused), or deploy with allowed_hosts=[...]",
    )
