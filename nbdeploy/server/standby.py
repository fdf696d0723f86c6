"""The stand-in that answers ``503 Initializing`` while ``init()`` runs.

The launcher runs the scoring script's ``init()`` on the main thread before the event
loop starts, so that ``init()`` and every ``run()`` share one thread and ``run()`` is
called right on the loop (see :mod:`nbdeploy.server.runtime`). Meanwhile nothing
would answer on a socket that already listens: connections would queue up
unanswered, and a health probe could not tell "starting" from "hung". A
:class:`Standby` thread fills that gap: it accepts on the listening socket and
answers every request with the server's own 503 JSON error
(``{"status_code": 503, "message": "Initializing: ..."}``,
:data:`INITIALIZING`)
with ``Connection: close`` (a kept-alive connection would outlive the stand-in), an
``x-request-id`` header (the caller's, when it is safe, as the server does), and no
caching. It serves one connection at a time with short timeouts — health probes are
small — reads the request head and body before answering (closing a socket with
unread data would reset the connection and lose the answer), and stops, once
``init()`` returned, before the real server takes the socket: every connection it
accepted is answered, every one it did not stays queued for the server.

It is plain blocking sockets on a daemon thread and costs nothing once stopped.
Not served: CORS headers and the ``/docs`` page (a browser retries after ``init()``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import selectors
import socket
import threading
import time

import orjson

__all__ = ["INITIALIZING", "Standby"]

logger = logging.getLogger("nbdeploy.server")

#: The message of the 503 answers (the app answers the same while ``init()`` runs).
INITIALIZING = "Initializing: the scoring script's init() has not finished yet"

_HEAD_LIMIT = 64 * 1024
_IO_TIMEOUT = 2.0  # seconds one client gets to send its request / take the answer
_DRAIN_LIMIT = 1024 * 1024  # body bytes read (and dropped) before answering anyway
_REQUEST_ID = re.compile(rb"^x-(?:ms-)?request-id:[ \t]*([A-Za-z0-9._:/+=-]{1,128})[ \t]*$", re.I)
_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*([0-9]{1,19})[ \t]*$", re.I)


def _answer(request_id: bytes) -> bytes:
    body = orjson.dumps({"status_code": 503, "message": INITIALIZING})
    return (
        b"HTTP/1.1 503 Service Unavailable\r\n"
        b"content-type: application/json\r\n"
        b"content-length: %d\r\n"
        b"x-request-id: %s\r\n"
        b"cache-control: no-store\r\n"
        b"retry-after: 1\r\n"
        b"connection: close\r\n\r\n%s" % (len(body), request_id, body)
    )


class Standby:
    """Answer ``503 Initializing`` on a listening socket until :meth:`stop`.

    Parameters
    ----------
    sock:
        The server's listening TCP socket (the stand-in neither closes it nor leaves
        it in another blocking mode than it found it).

    Examples
    --------
    >>> import socket, urllib.request, urllib.error
    >>> sock = socket.create_server(("127.0.0.1", 0))
    >>> standby = Standby(sock)
    >>> standby.start()
    >>> url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    >>> try:
    ...     urllib.request.urlopen(url, timeout=5)
    ... except urllib.error.HTTPError as exc:
    ...     exc.code
    503
    >>> standby.stop()
    >>> sock.close()
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="nbdeploy-standby", daemon=True)
        self._blocking = sock.getblocking()
        self._prefix = os.urandom(8).hex()
        self._count = 0
        self.answered = 0

    def start(self) -> None:
        """Start answering (on a daemon thread)."""
        self._sock.setblocking(False)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish the connection in hand, and return the socket.

        Connections not yet accepted stay queued on the socket for the real server.
        """
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(timeout)
        for end in (self._wake_r, self._wake_w):
            end.close()
        self._sock.setblocking(self._blocking)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                events = selector.select()
                if any(key.fileobj is self._wake_r for key, _ in events):
                    return
                try:
                    conn, _ = self._sock.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:  # e.g. out of file descriptors: do not spin
                    logger.warning("standby: accept failed: %s", exc)
                    time.sleep(0.05)
                    continue
                with conn:
                    try:
                        self._handle(conn)
                    except OSError:
                        pass  # the client went away; nothing to answer
                    except Exception as exc:  # never let the stand-in die before init ends
                        logger.warning("standby: %s: %s", type(exc).__name__, exc)

    def _new_id(self) -> bytes:
        self._count += 1
        return f"{self._prefix}{self._count:016x}".encode()

    def _handle(self, conn: socket.socket) -> None:
        conn.setblocking(True)
        conn.settimeout(_IO_TIMEOUT)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return  # closed before a whole request head: nothing to answer
            data += chunk
            if len(data) > _HEAD_LIMIT:
                break
        head, _, rest = data.partition(b"\r\n\r\n")
        request_id = None
        length = 0
        for line in head.split(b"\r\n")[1:]:
            match = _CONTENT_LENGTH.match(line)
            if match:
                length = int(match.group(1))
                continue
            match = _REQUEST_ID.match(line)
            if match and request_id is None:
                request_id = match.group(1)
        # Read the body (a little of it at most): closing a socket whose receive
        # buffer holds unread data resets the connection, and the answer is lost.
        remaining = min(length, _DRAIN_LIMIT) - len(rest)
        while remaining > 0:
            chunk = conn.recv(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
        conn.sendall(_answer(request_id or self._new_id()))
        self.answered += 1
        # Half-close and drain what the client still sends, so the close is a FIN.
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(0.2)
        with contextlib.suppress(OSError):
            while conn.recv(65536):
                pass
