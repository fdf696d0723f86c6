"""Sharing a listening socket between generations, and the stand-in during init()."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from nbdeploy.server.handover import ListenerHandover, receive_listener
from nbdeploy.server.standby import INITIALIZING, Standby


def _offer(tcp: socket.socket, path: str) -> tuple[threading.Thread, threading.Event]:
    """Serve ``tcp`` at ``path`` from an event loop on a thread until the event is set."""
    stop = threading.Event()
    ready = threading.Event()

    async def main() -> None:
        handover = ListenerHandover(path, tcp)
        handover.start(asyncio.get_running_loop())
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.005)
        handover.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    return thread, stop


def test_the_taken_socket_is_the_same_socket(tmp_path: Path) -> None:
    tcp = socket.create_server(("127.0.0.1", 0))
    path = str(tmp_path / "listener.sock")
    thread, stop = _offer(tcp, path)
    try:
        assert os.stat(path).st_mode & 0o077 == 0  # only the owner may connect
        taken = receive_listener(path)
    finally:
        stop.set()
        thread.join(10)
    assert not os.path.exists(path)  # removed when the offer stops
    try:
        assert taken.getsockname() == tcp.getsockname()
        # A connection queued before the first holder closes its descriptor is
        # accepted by the second: one socket, one accept queue.
        client = socket.create_connection(tcp.getsockname()[:2], timeout=10)
        tcp.close()
        taken.settimeout(10)
        accepted, _ = taken.accept()
        client.sendall(b"ping")
        assert accepted.recv(4) == b"ping"
        accepted.close()
        client.close()
    finally:
        taken.close()


def test_nothing_to_take_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        receive_listener(str(tmp_path / "nobody.sock"), timeout=1)


def _http(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_standby_answers_503_initializing_and_leaves_the_queue() -> None:
    tcp = socket.create_server(("127.0.0.1", 0))
    port = tcp.getsockname()[1]
    standby = Standby(tcp)
    standby.start()
    try:
        body = json.dumps({"data": [[1.0] * 10] * 50}).encode()
        answer = _http(
            port,
            b"POST /score HTTP/1.1\r\nHost: localhost\r\nx-request-id: req-1\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body),
        )
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 ")
        assert b"x-request-id: req-1" in head
        assert b"connection: close" in head
        assert json.loads(payload) == {"status_code": 503, "message": INITIALIZING}
        assert _http(port, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").startswith(
            b"HTTP/1.1 503 "
        )
    finally:
        standby.stop()
    assert standby.answered == 2
    # Stopped: a new connection waits in the queue for the real server.
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        tcp.settimeout(10)
        accepted, _ = tcp.accept()
        accepted.close()
    finally:
        client.close()
        tcp.close()
