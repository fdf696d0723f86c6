"""The traffic router of a local endpoint with several versions (controlled rollout).

When a second version is added to a local service, a small router process takes the
service's port and forwards every request to one of the versions' server processes
(each a normal ``python -m nbdeploy.server`` on its own loopback port), chosen at
random by weight per request. Each answer says who served it, in the response headers
``x-nbdeploy-version: <version>`` and ``azureml-model-deployment: <version>`` (the
header Azure ML's managed endpoints use). A request that sends one of these headers
itself goes to that version, whatever its weight (to test a version before it gets
traffic); an unknown name gets a 404 that lists the versions.

The weights live in a routes file (JSON, written atomically by the kernel)::

    {"generation": 3, "versions": [{"name": "v1", "host": "127.0.0.1", "port": 41234,
                                    "weight": 90}, ...]}

The router reads it at start, on ``SIGHUP`` and whenever its mtime changes (checked
every second), and after each (re)load writes the *applied* file
``{"generation", "pid", "versions"}``: the kernel waits for it, so when a traffic call
returns, every later request follows the new weights. A reload never drops a request:
requests in flight finish on the version they started on; idle pooled connections to a
version that is gone are closed.

HTTP: a minimal HTTP/1.1 reverse proxy on asyncio streams (uvloop when installed) —
keep-alive towards clients and a pool of keep-alive connections to each version,
bodies framed by ``Content-Length`` or chunked, ``Expect: 100-continue`` answered by
the router. Request bodies obey the endpoint's ``max_request_bytes``
(``--max-body-bytes``): an over-limit ``Content-Length`` gets ``413`` at once, before
any of the body is read (and no ``100 Continue``); bodies up to 1 MiB are read whole,
larger and chunked ones are streamed through as they arrive, counted, and cut off
with a 413 past the limit — the router never holds more than a chunk of one in
memory. If a pooled connection turns out closed before any byte of the answer came
back, the request is sent once more on a new connection (the server did not start on
it). ``SIGTERM`` stops accepting, lets requests in flight finish (idle client
connections are closed) and exits.

Health: every second the router sends ``GET /`` to each version; one that does not
answer 200 (or refuses a connection) gets no new traffic while another version can
take it, and gets it back once it answers again. A request whose version refuses the
connection goes to another version (it never started); a request pinned to a version
by its header is not moved.

Taking the port: with ``--take-over PATH`` (the single server's hand-over socket,
see :mod:`nbdeploy.server.handover`) the router serves on the single server's own
listening socket, so no connection is left queued on a socket that closes when that
server stops; without it (or when nothing is offered) it binds the port with
``SO_REUSEPORT`` next to the server.

This file imports only the standard library (and uvloop if present): the kernel runs
it by path so the router starts in a few tens of milliseconds and does not load
nbdeploy, numpy or pandas — detached, through the supervisor's launcher, itself run
by path (``python -I supervisor.py --log ... -- router.py ...``; see
:func:`nbdeploy.targets.process.supervisor.launch`), like every process of the
local target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "AZURE_VERSION_HEADER",
    "ROUTER_SCRIPT",
    "VERSION_HEADER",
    "Route",
    "Routes",
    "main",
    "read_applied",
]

#: Response (and optional request) header naming the version that served a request.
VERSION_HEADER = "x-nbdeploy-version"
#: The same, under the name Azure ML's managed online endpoints use.
AZURE_VERSION_HEADER = "azureml-model-deployment"

_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"expect",
        b"content-length",
    }
)
_PIN_HEADERS = (VERSION_HEADER.encode(), AZURE_VERSION_HEADER.encode())
#: Largest request head the router takes.
MAX_HEAD_BYTES = 64 * 1024
#: Largest request body by default (the servers' ``max_request_bytes``; the kernel
#: passes the endpoint's own with ``--max-body-bytes``).
MAX_BODY_BYTES = 100 * 1024 * 1024
#: Bodies up to this size are read whole (and can be sent again on a new connection
#: when a pooled one turns out closed); larger and chunked ones are streamed through.
BUFFERED_BODY_BYTES = 1024 * 1024
#: Seconds between health checks (``GET /``) of every version.
HEALTH_SECONDS = 1.0
#: Idle seconds after which a pooled upstream connection is not reused (uvicorn
#: closes idle keep-alive connections after 5 s).
POOL_IDLE_SECONDS = 3.0
#: Idle seconds a client keep-alive connection is kept open.
CLIENT_IDLE_SECONDS = 75.0
#: Seconds between checks of the routes file's mtime.
WATCH_SECONDS = 1.0
#: Seconds in-flight requests get to finish after SIGTERM.
STOP_SECONDS = 10.0
_COPY_CHUNK = 256 * 1024
#: This file: the kernel runs it by path (``python -I router.py``), see the docstring.
ROUTER_SCRIPT = Path(__file__).resolve()


@dataclass(frozen=True)
class Route:
    """One version behind the endpoint: its server's address and its weight.

    Examples
    --------
    >>> r = Route("v1", "127.0.0.1", 8001, 90)
    >>> Route.from_dict(r.to_dict()) == r
    True
    """

    name: str
    host: str
    port: int
    weight: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "host": self.host, "port": self.port, "weight": self.weight}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Route:
        return cls(str(data["name"]), str(data["host"]), int(data["port"]), int(data["weight"]))


@dataclass(frozen=True)
class Routes:
    """The routing table: versions with weights, and a generation counter.

    Examples
    --------
    >>> routes = Routes(2, (Route("v1", "h", 1, 100), Route("v2", "h", 2, 0)))
    >>> routes.pick(0.5).name
    'v1'
    >>> Routes.from_dict(routes.to_dict()) == routes
    True
    """

    generation: int
    versions: tuple[Route, ...]

    def __post_init__(self) -> None:
        if not self.versions:
            raise ValueError("a routing table needs at least one version")
        if any(r.weight < 0 for r in self.versions) or sum(r.weight for r in self.versions) <= 0:
            raise ValueError("weights must be >= 0 and not all 0")

    def pick(self, draw: float) -> Route:
        """The version for a uniform ``draw`` in [0, 1): version *i* gets weight *i*
        over the total of the draws."""
        total = sum(r.weight for r in self.versions)
        point = draw * total
        for route in self.versions:
            if point < route.weight:
                return route
            point -= route.weight
        return next(r for r in reversed(self.versions) if r.weight > 0)

    def get(self, name: str) -> Route | None:
        """The version called ``name``, if there is one."""
        return next((r for r in self.versions if r.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "versions": [r.to_dict() for r in self.versions]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Routes:
        return cls(int(data["generation"]), tuple(Route.from_dict(r) for r in data["versions"]))

    @classmethod
    def read(cls, path: Path) -> Routes:
        """Read a routes file (``ValueError``/``OSError`` when it is missing or bad)."""
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def write(self, path: Path) -> None:
        """Write the routes file atomically (a reader never sees half a file)."""
        _write_json(path, self.to_dict())


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def read_applied(path: Path) -> dict[str, Any] | None:
    """The applied file a router wrote (``{"generation", "pid", ...}``), or ``None``.

    Examples
    --------
    >>> read_applied(Path("/nonexistent")) is None
    True
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _UpstreamFailed(Exception):
    """The version's server failed before any byte of its answer arrived.

    ``unreached``: the connection could not even be made, so the request never
    started there and may go to another version.
    """

    def __init__(self, message: str, *, unreached: bool = False) -> None:
        super().__init__(message)
        self.unreached = unreached


def _parse_head(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The start line and ``(lower-case name, value)`` header pairs of a message head."""
    lines = head.split(b"\r\n")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise _BadRequest(400, f"malformed header line {line[:80]!r}")
        headers.append((name.strip().lower(), value.strip()))
    return lines[0], headers


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _tokens(value: bytes | None) -> set[bytes]:
    if value is None:
        return set()
    return {t.strip().lower() for t in value.split(b",")}


def _error(status: int, message: str, *, close: bool, extra: bytes = b"") -> bytes:
    reasons = {400: "Bad Request", 404: "Not Found", 413: "Payload Too Large", 502: "Bad Gateway"}
    body = json.dumps({"status_code": status, "message": message}).encode()
    return (
        f"HTTP/1.1 {status} {reasons.get(status, 'Error')}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n".encode()
        + extra
        + (b"connection: close\r\n" if close else b"")
        + b"\r\n"
        + body
    )


@dataclass(frozen=True)
class _Request:
    """A client's request as it goes upstream (``head``: head and a buffered body)."""

    head: bytes
    headers: list[tuple[bytes, bytes]]
    route: Route
    size: int
    chunked: bool
    streamed: bool
    close: bool
    head_only: bool


@dataclass
class _Pooled:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float


class Router:
    """Serves one endpoint: accepts client connections and forwards their requests."""

    def __init__(
        self, routes_file: Path, applied_file: Path, max_body: int = MAX_BODY_BYTES
    ) -> None:
        self.routes_file = routes_file
        self.applied_file = applied_file
        self.max_body = max_body
        self.routes = Routes.read(routes_file)
        #: Versions whose last health check (or connection) failed: no new traffic
        #: goes there while another version can take it.
        self.down: set[Route] = set()
        self._mtime = self._stat_mtime()
        self._pools: dict[tuple[str, int], list[_Pooled]] = {}
        self._idle_clients: set[asyncio.Task[Any]] = set()
        self._busy = 0
        self.stopping = False
        self._random = random.Random()

    def _stat_mtime(self) -> int | None:
        try:
            return os.stat(self.routes_file).st_mtime_ns
        except OSError:
            return None

    def reload(self) -> None:
        """Re-read the routes file; keep the old table if the file is bad."""
        self._mtime = self._stat_mtime()
        try:
            routes = Routes.read(self.routes_file)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _log(
                f"cannot read routes {self.routes_file}: {exc}; keeping generation "
                f"{self.routes.generation}"
            )
            return
        if routes != self.routes:
            _log(
                f"routes generation {routes.generation}: "
                + ", ".join(f"{r.name}={r.weight} ({r.host}:{r.port})" for r in routes.versions)
            )
        self.routes = routes
        live = {(r.host, r.port) for r in routes.versions}
        for key in [k for k in self._pools if k not in live]:
            for conn in self._pools.pop(key):
                conn.writer.close()
        self.write_applied()

    def write_applied(self) -> None:
        _write_json(
            self.applied_file,
            {"generation": self.routes.generation, "pid": os.getpid(), **self.routes.to_dict()},
        )

    async def watch(self) -> None:
        """Reload when the routes file's mtime changes (a kernel that died before its
        SIGHUP still gets its change applied)."""
        while not self.stopping:
            await asyncio.sleep(WATCH_SECONDS)
            if self._stat_mtime() != self._mtime:
                self.reload()

    async def check_health(self) -> None:
        """``GET /`` every version every :data:`HEALTH_SECONDS`; a version that does
        not answer 200 gets no traffic until it does again (failover)."""
        while not self.stopping:
            routes = self.routes.versions
            results = await asyncio.gather(*(_healthy(r) for r in routes))
            for route, healthy in zip(routes, results, strict=True):
                if healthy and route in self.down:
                    _log(f"version {route.name!r} answers again; it gets its traffic back")
                    self.down.discard(route)
                elif not healthy and route not in self.down:
                    _log(
                        f"version {route.name!r} ({route.host}:{route.port}) is not healthy; "
                        "its traffic goes to the other versions"
                    )
                    self.down.add(route)
            await asyncio.sleep(HEALTH_SECONDS)

    async def _connect(self, route: Route, *, fresh: bool = False) -> tuple[_Pooled, bool]:
        """A connection to ``route``: a pooled one (``True``) or, with ``fresh`` or an
        empty pool, a new one."""
        pool = self._pools.get((route.host, route.port))
        now = time.monotonic()
        while pool and not fresh:
            conn = pool.pop()
            alive = not conn.reader.at_eof() and conn.reader.exception() is None
            if alive and now - conn.idle_since < POOL_IDLE_SECONDS:
                return conn, True
            conn.writer.close()
        reader, writer = await asyncio.open_connection(route.host, route.port, limit=MAX_HEAD_BYTES)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Pooled(reader, writer, now), False

    def _release(self, route: Route, conn: _Pooled) -> None:
        if self.stopping or self.routes.get(route.name) != route:
            conn.writer.close()
            return
        conn.idle_since = time.monotonic()
        self._pools.setdefault((route.host, route.port), []).append(conn)

    def _choose(self, headers: Sequence[tuple[bytes, bytes]], avoid: Route | None = None) -> Route:
        for name in _PIN_HEADERS:
            pinned = _header(headers, name)
            if pinned is not None:
                route = self.routes.get(pinned.decode("latin-1"))
                if route is None:
                    known = ", ".join(r.name for r in self.routes.versions)
                    raise _BadRequest(
                        404, f"no version {pinned.decode('latin-1')!r} here; versions: {known}"
                    )
                return route
        down = self.down if avoid is None else {*self.down, avoid}
        usable = tuple(r for r in self.routes.versions if r not in down and r.weight > 0)
        if usable and len(usable) < len([r for r in self.routes.versions if r.weight > 0]):
            return Routes(self.routes.generation, usable).pick(self._random.random())
        return self.routes.pick(self._random.random())

    def _pinned(self, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        return any(_header(headers, name) is not None for name in _PIN_HEADERS)

    async def _exchange(
        self,
        route: Route,
        request: bytes,
        head_only: bool,
        client: asyncio.StreamWriter,
        close_client: bool,
    ) -> bool:
        """Send ``request`` to ``route`` and copy the answer to ``client``.

        Returns whether the client connection stays open. Raises
        :class:`_UpstreamFailed` when nothing of the answer arrived, after one retry
        on a new connection when a pooled one was found closed. The retry never takes
        another pooled connection: a version whose server restarted on its port
        leaves them all reset, so the pool is emptied.
        """
        for attempt in (0, 1):
            conn, reused = await self._connect_or_fail(route, fresh=attempt > 0)
            try:
                conn.writer.write(request)
                head = await conn.reader.readuntil(b"\r\n\r\n")
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                conn.writer.close()
                if reused and attempt == 0:
                    for stale in self._pools.pop((route.host, route.port), []):
                        stale.writer.close()
                    continue
                raise _UpstreamFailed(f"{type(exc).__name__}: {exc}") from None
            try:
                return await self._relay(route, conn, head, head_only, client, close_client)
            except BaseException:
                # Half an answer copied: neither connection can carry another message.
                conn.writer.close()
                raise
        raise AssertionError("unreachable")

    async def _connect_or_fail(self, route: Route, *, fresh: bool) -> tuple[_Pooled, bool]:
        try:
            return await self._connect(route, fresh=fresh)
        except OSError as exc:
            self.down.add(route)  # until its next health check says otherwise
            raise _UpstreamFailed(f"cannot connect: {exc}", unreached=True) from None

    async def _relay(
        self,
        route: Route,
        conn: _Pooled,
        head: bytes,
        head_only: bool,
        client: asyncio.StreamWriter,
        close_client: bool,
    ) -> bool:
        status_line, headers = _parse_head(head[:-4])
        parts = status_line.split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 502
        upstream_close = b"close" in _tokens(_header(headers, b"connection"))
        chunked = b"chunked" in _tokens(_header(headers, b"transfer-encoding"))
        length_value = _header(headers, b"content-length")
        no_body = head_only or status in (204, 304) or 100 <= status < 200
        until_eof = not no_body and not chunked and length_value is None
        keep_client = not close_client and not until_eof
        out = [status_line, b"\r\n"]
        for key, value in headers:
            if key in (b"connection", b"keep-alive"):
                continue
            out += [key, b": ", value, b"\r\n"]
        name = route.name.encode()
        out += [b"x-nbdeploy-version: ", name, b"\r\nazureml-model-deployment: ", name, b"\r\n"]
        if not keep_client:
            out.append(b"connection: close\r\n")
        out.append(b"\r\n")
        client.write(b"".join(out))
        reader = conn.reader
        if no_body:
            pass
        elif chunked:
            while True:
                line = await reader.readuntil(b"\r\n")
                client.write(line)
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:
                        trailer = await reader.readuntil(b"\r\n")
                        client.write(trailer)
                        if trailer == b"\r\n":
                            break
                    break
                await _copy(reader, client, size + 2)
        elif length_value is not None:
            await _copy(reader, client, int(length_value))
        else:
            while chunk := await reader.read(_COPY_CHUNK):
                client.write(chunk)
                await client.drain()
            upstream_close = True
        await client.drain()
        if upstream_close:
            conn.writer.close()
        else:
            self._release(route, conn)
        return keep_client

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve the requests of one client connection (keep-alive)."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = asyncio.current_task()
        try:
            while not self.stopping:
                assert task is not None
                self._idle_clients.add(task)
                try:
                    head = await asyncio.wait_for(
                        reader.readuntil(b"\r\n\r\n"), CLIENT_IDLE_SECONDS
                    )
                finally:
                    self._idle_clients.discard(task)
                self._busy += 1
                try:
                    if not await self._one_request(head, reader, writer):
                        break
                finally:
                    self._busy -= 1
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.TimeoutError,
            asyncio.CancelledError,
        ):
            pass
        except asyncio.LimitOverrunError:
            with contextlib.suppress(OSError):
                writer.write(_error(400, "request head too large", close=True))
        finally:
            writer.close()

    async def _one_request(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Forward one request to a version; whether the client connection stays open."""
        try:
            request = await self._read_request(head, reader, writer)
        except _BadRequest as exc:
            await _refuse(reader, writer, exc)
            return False
        route = request.route
        try:
            if request.streamed:
                return await self._stream(
                    route,
                    request.head,
                    reader,
                    request.size,
                    request.chunked,
                    writer,
                    request.close,
                )
            try:
                return await self._exchange(
                    route, request.head, request.head_only, writer, request.close
                )
            except _UpstreamFailed as exc:
                moved = self.routes.get(route.name) != route
                if not (moved or (exc.unreached and not self._pinned(request.headers))):
                    raise
                # The request never started there (the version is gone, moved, or
                # refuses connections): it goes to another version.
                route = self._choose(request.headers, avoid=route)
                return await self._exchange(
                    route, request.head, request.head_only, writer, request.close
                )
        except _BadRequest as exc:
            await _refuse(reader, writer, exc)
            return False
        except _UpstreamFailed as exc:
            await _bad_gateway(route, exc, writer)
            return False

    async def _read_request(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _Request:
        """Parse a request head, choose its version, read a small body whole (a large
        or chunked one is streamed later); what goes upstream."""
        request_line, headers = _parse_head(head[:-4])
        parts = request_line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise _BadRequest(400, f"malformed request line {request_line[:80]!r}")
        method, target, version = parts
        connection = _tokens(_header(headers, b"connection"))
        close = b"close" in connection or (
            version == b"HTTP/1.0" and b"keep-alive" not in connection
        )
        chunked = b"chunked" in _tokens(_header(headers, b"transfer-encoding"))
        size = 0 if chunked else self._declared_size(headers)
        route = self._choose(headers)
        # Checked before "100 Continue": an over-limit body is never invited.
        if b"100-continue" in _tokens(_header(headers, b"expect")):
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        streamed = chunked or size > BUFFERED_BODY_BYTES
        body = b"" if streamed or not size else await reader.readexactly(size)
        upstream = [method, b" ", target, b" HTTP/1.1\r\n"]
        for key, value in headers:
            if key not in _HOP_BY_HOP:
                upstream += [key, b": ", value, b"\r\n"]
        if chunked:
            upstream.append(b"transfer-encoding: chunked\r\n")
        elif size or method in (b"POST", b"PUT", b"PATCH"):
            upstream.append(b"content-length: %d\r\n" % size)
        upstream += [b"\r\n", body]
        return _Request(
            head=b"".join(upstream),
            headers=headers,
            route=route,
            size=size,
            chunked=chunked,
            streamed=streamed,
            close=close or self.stopping,
            head_only=method == b"HEAD",
        )

    def _declared_size(self, headers: Sequence[tuple[bytes, bytes]]) -> int:
        """The ``Content-Length`` of a request; a 413 at once when it is over the limit
        (nothing of the body is read or buffered)."""
        length = _header(headers, b"content-length")
        if length is None:
            return 0
        if not length.isdigit():
            raise _BadRequest(400, f"Content-Length {length[:40]!r} is not a number")
        size = int(length)
        if size > self.max_body:
            raise _BadRequest(
                413,
                f"request body of {size} bytes is over this service's limit of "
                f"{self.max_body} bytes",
            )
        return size

    async def _stream(
        self,
        route: Route,
        head: bytes,
        reader: asyncio.StreamReader,
        size: int,
        chunked: bool,
        client: asyncio.StreamWriter,
        close: bool,
    ) -> bool:
        """Send a large or chunked request body through as it arrives, counting it
        against the limit, on a new connection; then relay the answer."""
        try:
            up_reader, up_writer = await asyncio.open_connection(
                route.host, route.port, limit=MAX_HEAD_BYTES
            )
        except OSError as exc:
            self.down.add(route)
            raise _UpstreamFailed(f"cannot connect: {exc}", unreached=True) from None
        conn = _Pooled(up_reader, up_writer, time.monotonic())
        try:
            up_writer.write(head)
            try:
                if chunked:
                    await self._copy_chunked(reader, up_writer)
                else:
                    await _copy(reader, up_writer, size)
                await up_writer.drain()
            except OSError:
                pass  # the server answered early (a 413, a 401) and closed: relay that
            try:
                answer = await up_reader.readuntil(b"\r\n\r\n")
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                raise _UpstreamFailed(f"{type(exc).__name__}: {exc}") from None
            await self._relay(route, conn, answer, False, client, close)
            return False  # the client's connection may hold unread body: close it
        finally:
            up_writer.close()

    async def _copy_chunked(self, reader: asyncio.StreamReader, up: asyncio.StreamWriter) -> None:
        """Copy a chunked body, chunk by chunk (never a whole chunk in memory)."""
        total = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400, "malformed chunk size in the request body") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                up.write(b"0\r\n\r\n")
                return
            total += size
            if total > self.max_body:
                raise _BadRequest(
                    413,
                    f"request body of at least {total} bytes is over this service's limit "
                    f"of {self.max_body} bytes",
                )
            up.write(b"%x\r\n" % size)
            await _copy(reader, up, size)
            await reader.readexactly(2)
            up.write(b"\r\n")

    async def drain(self, timeout: float) -> None:
        """Close idle client connections and wait for requests in flight to finish."""
        self.stopping = True
        for task in list(self._idle_clients):
            task.cancel()
        deadline = time.monotonic() + timeout
        while self._busy and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for pool in self._pools.values():
            for conn in pool:
                conn.writer.close()
        self._pools.clear()


async def _refuse(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, exc: _BadRequest
) -> None:
    """Answer an error and close gracefully: half-close, then discard what the client
    still sends for a moment (closing with unread bytes would reset the connection,
    and the client might never see the answer — a 413 above all)."""
    writer.write(_error(exc.status, exc.message, close=True))
    with contextlib.suppress(Exception):
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        deadline = time.monotonic() + 1.0
        while (left := deadline - time.monotonic()) > 0:
            if not await asyncio.wait_for(reader.read(_COPY_CHUNK), left):
                break


async def _bad_gateway(route: Route, exc: _UpstreamFailed, writer: asyncio.StreamWriter) -> None:
    """Answer 502 for a version that failed before any byte of its answer came."""
    message = f"version {route.name!r} ({route.host}:{route.port}) did not answer: {exc}"
    _log(message)
    extra = b"x-nbdeploy-version: " + route.name.encode() + b"\r\n"
    writer.write(_error(502, message, close=True, extra=extra))
    await writer.drain()


async def _healthy(route: Route) -> bool:
    """Whether ``GET /`` of a version answers 200 within a second."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(route.host, route.port), HEALTH_SECONDS
        )
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        host = f"[{route.host}]" if ":" in route.host else route.host
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), HEALTH_SECONDS)
        return line.split(b" ", 2)[1:2] == [b"200"]
    except (OSError, asyncio.TimeoutError, IndexError):
        return False
    finally:
        writer.close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, size: int) -> None:
    remaining = size
    while remaining > 0:
        chunk = await reader.read(min(remaining, _COPY_CHUNK))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", remaining)
        writer.write(chunk)
        remaining -= len(chunk)
        if remaining > 0:
            await writer.drain()  # at most one chunk buffered: memory stays flat


def _log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} INFO    nbdeploy.router: {message}", flush=True)


_HANDOVER_MAGIC = b"NBDEPLOY-LISTENER-1"


def _take_over(path: str, host: str, port: int, timeout: float = 30.0) -> socket.socket | None:
    """The listening socket the single server offers at ``path`` (its
    ``--handover-socket``; the protocol of :mod:`nbdeploy.server.handover`, copied
    here because the router imports no nbdeploy), or None when there is none for
    ``host:port``.

    Serving on that very socket — not a second one bound with ``SO_REUSEPORT`` —
    means no connection is ever queued on a socket about to close when the single
    server stops.
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(path)
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            if int.from_bytes(creds[4:8], sys.byteorder) != os.geteuid():
                _log(f"the hand-over socket {path} belongs to another user; binding the port")
                return None
            message, fds, _, _ = socket.recv_fds(conn, len(_HANDOVER_MAGIC), 1)
    except OSError as exc:
        _log(f"no listening socket to take over at {path} ({exc}); binding the port")
        return None
    if message != _HANDOVER_MAGIC or not fds:
        for fd in fds:
            os.close(fd)
        _log(f"no listening socket came from {path}; binding the port")
        return None
    sock = socket.socket(fileno=fds[0])
    if sock.getsockname()[1] != port or not sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_ACCEPTCONN
    ):
        _log(f"the socket offered at {path} is not listening on {host}:{port}; binding the port")
        sock.close()
        return None
    sock.setblocking(False)
    _log("took over the listening socket of the single server")
    return sock


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # The endpoint's port is shared with the single server being replaced until that
    # one stops (the same hand-over as a local update).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve(
    routes_file: Path,
    applied_file: Path,
    host: str,
    port: int,
    take_over: str | None = None,
    max_body: int = MAX_BODY_BYTES,
) -> int:
    """Run the router on ``host:port`` until SIGTERM/SIGINT; the exit code.

    With ``take_over`` (the single server's hand-over socket), the router serves on
    that server's listening socket; otherwise, or if none is offered, it binds the
    port with ``SO_REUSEPORT``.
    """
    router = Router(routes_file, applied_file, max_body)
    loop = asyncio.get_running_loop()
    # Blocking, before anything else runs on this loop: the single server answers
    # as soon as its own loop is free.
    sock = _take_over(take_over, host, port) if take_over else None
    if sock is None:
        try:
            sock = _listen(host, port)
        except OSError as exc:
            _log(f"NBDEPLOY-BIND-FAILED: {host} {port}: {exc}")
            return 4
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, router.reload)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await asyncio.start_server(router.handle, sock=sock, limit=MAX_HEAD_BYTES)
    watcher = asyncio.create_task(router.watch())
    checker = asyncio.create_task(router.check_health())
    router.write_applied()
    _log(
        f"listening on {host}:{port} (pid {os.getpid()}), routes generation "
        f"{router.routes.generation}: "
        + ", ".join(f"{r.name}={r.weight}" for r in router.routes.versions)
    )
    await stop.wait()
    _log("stopping: finishing the requests in flight")
    server.close()
    await router.drain(STOP_SECONDS)
    for task in (watcher, checker):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return 0


def _run(args: argparse.Namespace) -> int:
    coroutine = serve(
        Path(args.routes),
        Path(args.applied),
        args.host,
        args.port,
        take_over=args.take_over,
        max_body=args.max_body_bytes,
    )
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    result: int = uvloop.run(coroutine)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="nbdeploy's traffic router")
    parser.add_argument("--routes", required=True, help="the routes file (JSON)")
    parser.add_argument("--applied", required=True, help="where to confirm applied routes")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=MAX_BODY_BYTES,
        help="largest request body; larger ones get 413 before any of it is read",
    )
    parser.add_argument(
        "--take-over",
        metavar="PATH",
        help="serve on the listening socket the single server offers at PATH (its "
        "--handover-socket) instead of binding the port next to it",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The router's command line (see the module docstring)."""
    return _run(_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
