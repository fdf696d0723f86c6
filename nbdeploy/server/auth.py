"""Checking ``Authorization`` headers in the scoring server.

The secrets live in the service's auth file (:mod:`nbdeploy.core.auth`). The server
reads it at start-up — a missing or unreadable file with auth on is a start-up failure,
never an open service — and again whenever its inode, size or modification time
changes: one ``os.stat`` per scored request, so ``service.regen_key(...)`` (which
replaces the file atomically) takes effect at the next request, without a restart.
If the file later disappears or cannot be read, the last secrets stay in force and a
warning is logged once.

Only ``/score`` is protected: ``GET /`` (health), the API documents, ``/docs`` and its
assets, and CORS preflights stay open. Authorization headers are never logged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from nbdeploy.core.auth import AuthMode, ServiceAuth, authenticate, read_auth_file
from nbdeploy.exceptions import InvalidArgumentError

__all__ = ["AuthChecker", "unauthorized_headers"]

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
