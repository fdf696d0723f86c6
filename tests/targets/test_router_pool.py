"""The router's pool of keep-alive connections to the versions, in one event loop.

A version whose server restarts on the same port (the local target restarts a crashed
server) leaves the router holding pooled connections that were reset. A request must
then reach the new server on a fresh connection, however many stale ones are pooled;
before, the retry took the next pooled connection, found it reset too, and the client
got a 502 from a version that was serving.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

from nbdeploy.targets.process.router import Route, Router, Routes


class Upstream:
    """A keep-alive HTTP server answering ``ok`` once ``hold`` requests are waiting,
    so that that many connections are open (and pooled by the router) at once."""

    def __init__(self, hold: int) -> None:
        self.hold = hold
        self.waiting = 0
        self.release = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                self.waiting += 1
                if self.waiting >= self.hold:
                    self.release.set()
                await self.release.wait()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass

    def reset_all(self) -> None:
        """Drop every connection with a TCP reset, as a killed server's peer sees it
        when data was in flight (``SO_LINGER`` 0)."""
        for writer in self.writers:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        self.writers.clear()


async def _post(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /score HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    await writer.wait_closed()
    return head.split(b"\r\n", 1)[0]


async def _until(condition: object, seconds: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.01)


async def _stale_pool_scenario(tmp_path: Path, pooled: int) -> list[bytes]:
    upstream = Upstream(hold=pooled)
    port = await upstream.start()
    routes = tmp_path / "routes.json"
    Routes(1, (Route("v1", "127.0.0.1", port, 100),)).write(routes)
    router = Router(routes, tmp_path / "applied.json")
    front = await asyncio.start_server(router.handle, "127.0.0.1", 0)
    front_port = int(front.sockets[0].getsockname()[1])
    try:
        # ``pooled`` requests at once: the router opens that many upstream connections
        # and keeps them all when the answers come.
        first = await asyncio.gather(*(_post(front_port) for _ in range(pooled)))
        pool = router._pools[("127.0.0.1", port)]
        await _until(lambda: len(pool) == pooled)
        upstream.reset_all()
        await _until(lambda: all(c.reader.exception() is not None for c in pool))
        upstream.hold = 1
        after = [await _post(front_port) for _ in range(3)]
        return [*first, *after]
    finally:
        writers = [c.writer for pool in router._pools.values() for c in pool]
        writers += upstream.writers
        for writer in writers:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
        front.close()
        assert upstream.server is not None
        upstream.server.close()
        await asyncio.gather(front.wait_closed(), upstream.server.wait_closed())


def test_a_request_after_the_version_reset_its_pooled_connections_is_served(
    tmp_path: Path,
) -> None:
    statuses = asyncio.run(_stale_pool_scenario(tmp_path, pooled=3))
    assert statuses == [b"HTTP/1.1 200 OK"] * 6
