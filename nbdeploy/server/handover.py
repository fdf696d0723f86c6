"""Passing a service's listening socket from one server generation to the next.

An update must not drop a request. Two generations that each *bind* the port with
``SO_REUSEPORT`` do not get that: the kernel spreads new connections over both
sockets' accept queues, and when the old generation closes its socket, the
connections still queued on it are reset — a client sees ``Connection reset by
peer`` (measured: about one update in four under steady load lost a request).

So the generations share **one** socket instead. Each server started with a
*hand-over path* (``--handover-socket PATH``) listens on that unix socket (mode
0600, and the peer must run as the same user) and answers every connection with
its listening TCP socket, as ``SCM_RIGHTS`` ancillary data. The next generation
(``--take-over PATH``; the local target's warm-start server does the same before
it forks) receives it, runs ``init()``, and then accepts on the very same socket
— the same accept queue — next to the old generation. When the old one stops, it
only closes its own descriptor: the socket and every connection queued on it stay
with the new generation. Nothing is ever queued on a socket that is about to close.

The old generation also answers every connection it had already accepted, the
ones whose request had not arrived yet included (see
:meth:`nbdeploy.server.launcher` ``_Server.shutdown``).

This module is stdlib only; the router (:mod:`nbdeploy.targets.process.router`, which must
not import nbdeploy) carries its own copy of :func:`receive_listener`.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import os
import socket
import struct

from nbdeploy.exceptions import InvalidArgumentError

__all__ = ["ListenerHandover", "receive_listener"]

logger = logging.getLogger("nbdeploy.server")

_MAGIC = b"NBDEPLOY-LISTENER-1"


def _peer_uid(conn: socket.socket) -> int | None:
    """The uid of a unix-socket peer (Linux ``SO_PEERCRED``), or None when unknown."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class ListenerHandover:
    """Offer a listening socket to the next generation over a unix socket at ``path``.

    Runs on the server's event loop (one accept and one ``sendmsg`` per request, no
    thread). :meth:`close` stops offering and removes ``path``.

    Parameters
    ----------
    path:
        Where to listen (an existing file there is replaced).
    listener:
        The listening TCP socket to hand over.

    Raises
    ------
    InvalidArgumentError
        ``path`` is longer than a unix socket path may be.

    Examples
    --------
    >>> import asyncio, socket, tempfile
    >>> tcp = socket.create_server(("127.0.0.1", 0))
    >>> path = tempfile.mkdtemp() + "/listener.sock"
    >>> async def main():
    ...     handover = ListenerHandover(path, tcp)
    ...     handover.start(asyncio.get_running_loop())
    ...     loop = asyncio.get_running_loop()
    ...     taken = await loop.run_in_executor(None, receive_listener, path)
    ...     handover.close()
    ...     with taken:
    ...         return taken.getsockname() == tcp.getsockname()
    >>> asyncio.run(main())
    True
    >>> tcp.close()
    """

    def __init__(self, path: str, listener: socket.socket) -> None:
        if len(os.fsencode(path)) > 107:
            raise InvalidArgumentError(
                f"hand-over socket path {path!r} is too long for a unix socket",
                hint="use a path of at most 107 bytes",
            )
        self.path = path
        self._listener = listener
        self._unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inode: int | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind ``path`` and answer requests on ``loop``."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        old_umask = os.umask(0o077)
        try:
            self._unix.bind(self.path)
        finally:
            os.umask(old_umask)
        self._inode = os.stat(self.path).st_ino
        self._unix.listen(16)
        self._unix.setblocking(False)
        loop.add_reader(self._unix.fileno(), self._accept)
        self._loop = loop

    def _accept(self) -> None:
        try:
            conn, _ = self._unix.accept()
        except (BlockingIOError, InterruptedError):
            return
        with conn:
            try:
                uid = _peer_uid(conn)
                if uid is not None and uid not in (os.geteuid(), 0):
                    logger.warning("hand-over refused to a process of uid %d", uid)
                    return
                conn.setblocking(True)
                conn.settimeout(2.0)
                fds = array.array("i", [self._listener.fileno()])
                conn.sendmsg([_MAGIC], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
                logger.info("listening socket handed over to the next generation")
            except OSError as exc:
                logger.warning("hand-over of the listening socket failed: %s", exc)

    def close(self) -> None:
        """Stop offering the socket; remove ``path`` (if it is still ours)."""
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._unix.fileno())
            self._loop = None
        self._unix.close()
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)


def receive_listener(path: str, timeout: float = 5.0) -> socket.socket:
    """Take the listening socket a running server offers at ``path``.

    The returned socket is the *same* socket as the old server's (same accept
    queue), already bound and listening, inheritable, in blocking mode.

    Raises
    ------
    OSError
        Nothing answers at ``path``, or the answer holds no socket; the caller then
        binds the port itself.

    Examples
    --------
    >>> receive_listener("/nonexistent/listener.sock")
    Traceback (most recent call last):
    ...
    FileNotFoundError: [Errno 2] No such file or directory
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(path)
        uid = _peer_uid(conn)
        if uid is not None and uid != os.geteuid():
            # Another user's process bound the path first: take nothing from it.
            raise ConnectionError(f"the socket at {path!r} belongs to uid {uid}, not this user")
        message, fds, _, _ = socket.recv_fds(conn, len(_MAGIC), 1)
    if message != _MAGIC or not fds:
        for fd in fds:
            os.close(fd)
        raise ConnectionError(f"no listening socket came from {path!r}")
    sock = socket.socket(fileno=fds[0])
    for extra in fds[1:]:
        os.close(extra)
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_ACCEPTCONN
    ):
        sock.close()
        raise ConnectionError(f"the socket from {path!r} is not a listening TCP socket")
    sock.setblocking(True)
    sock.set_inheritable(True)
    return sock
