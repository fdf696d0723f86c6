"""Profiling: how fast a scoring endpoint serves, and what CPU and memory it needs.

The reference (Azure ML's ``Model.profile``) sends a sample of requests to a
temporary service and answers with latencies and a recommended ``requestedCpu`` /
``requestedMemoryInGb``. This module is that measurement, done locally and in seconds:

- :func:`prepare_requests` turns what the user has (JSON strings, a DataFrame whose
  rows or batches become requests, an ndarray, a file with one request per line) into
  request bodies.
- :func:`run_profile` sends the bodies to a loopback ``/score`` endpoint at a chosen
  concurrency over raw HTTP/1.1 keep-alive connections (asyncio, one event loop in
  its own thread, so it also works inside a Jupyter kernel whose loop is running),
  bounded by a request count and a duration, cycling through the bodies. Meanwhile a
  sampler thread reads the CPU time and resident memory of the serving process and
  its children every ~100 ms (psutil), and the kernel's ``VmHWM`` (the resident
  high-water mark since the process started).
- :class:`ProfileResult` holds every figure (latency percentiles, throughput, errors
  by status, CPU and memory time series, the per-request latencies) and a
  :class:`Recommendation`; :func:`recommend` states the sizing rule, and
  :func:`replicas_for` is the reference's replica formula.

Only loopback endpoints are profiled: a profile is a load test, and nbdeploy sends
load to nothing but this machine.

Core module: standard library, numpy and pandas; psutil is imported where it is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from nbdeploy.core.schema import json_default
from nbdeploy.exceptions import InvalidArgumentError, TargetUnavailableError

if TYPE_CHECKING:
    import numpy.typing as npt
    import psutil

__all__ = [
    "CONNECTION_ERROR",
    "DEFAULT_DURATION_S",
    "GIB",
    "MAX_DURATION_S",
    "MAX_REQUESTS",
    "TIMEOUT_ERROR",
    "ProfileResult",
    "Recommendation",
    "check_loopback",
    "prepare_requests",
    "recommend",
    "replicas_for",
    "run_profile",
    "status_label",
]

#: Seconds a profile runs when neither ``duration`` nor ``count`` is given.
DEFAULT_DURATION_S = 10.0
#: A profile never sends load for longer than this (seconds), whatever was asked.
MAX_DURATION_S = 600.0
#: A profile never sends more requests than this.
MAX_REQUESTS = 1_000_000
#: Seconds between two samples of the serving processes' CPU time and memory.
SAMPLE_INTERVAL_S = 0.1
#: Bytes in the "GB" of ``requestedMemoryInGb`` (a GiB, as Docker's and Kubernetes' ``Gi``).
GIB = 2**30
#: Memory rule: peak resident memory x this headroom ...
MEMORY_HEADROOM = 1.25
#: ... plus this many GB for the allocator, buffers of large requests, log bursts.
MEMORY_BASE_GB = 0.1
#: The smallest CPU recommendation (cores); Kubernetes schedules in 0.1-core steps too.
MIN_CPU = 0.1
#: Status code recorded for a request whose connection failed (refused, reset, closed).
CONNECTION_ERROR = -1
#: Status code recorded for a request that got no answer within ``timeout``.
TIMEOUT_ERROR = -2
#: After this many connection errors in a row without any answer, the endpoint is down.
_DEAD_AFTER = 20


def status_label(status: int) -> str:
    """The name an error count is reported under: the HTTP status, or what went wrong.

    Examples
    --------
    >>> status_label(500), status_label(CONNECTION_ERROR), status_label(TIMEOUT_ERROR)
    ('500', 'connection', 'timeout')
    """
    if status == CONNECTION_ERROR:
        return "connection"
    if status == TIMEOUT_ERROR:
        return "timeout"
    return str(status)


def _ceil_tenth(value: float) -> float:
    """Round up to a multiple of 0.1 (tolerating float noise: 0.30000000004 -> 0.3)."""
    return math.ceil(round(value * 10, 6)) / 10


# -- sizing rules ------------------------------------------------------------------------
def replicas_for(
    target_rps: float,
    request_seconds: float,
    target_utilization: float = 0.7,
    max_concurrent_per_replica: int = 1,
) -> int:
    """How many replicas serve ``target_rps`` — the reference's autoscaling formula.

    ``ceil(target_rps * request_seconds / target_utilization / max_concurrent_per_replica)``:
    the requests in flight at the target rate (Little's law), inflated so each replica
    stays at ``target_utilization``, divided by what one replica handles at once.

    Parameters
    ----------
    target_rps:
        Requests per second the service must sustain (> 0).
    request_seconds:
        Time one request takes, in seconds (> 0) — e.g. a profile's mean latency.
    target_utilization:
        Fraction of its capacity a replica should run at, in (0, 1]; default 70 %.
    max_concurrent_per_replica:
        Requests one replica serves at the same time (>= 1).

    Examples
    --------
    The reference's example: 20 requests/s of 10 s each at 70 % utilization.

    >>> replicas_for(20, 10)
    286
    >>> replicas_for(100, 0.02)
    3
    >>> replicas_for(100, 0.02, target_utilization=1.0, max_concurrent_per_replica=2)
    1
    """
    for what, value in (("target_rps", target_rps), ("request_seconds", request_seconds)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise InvalidArgumentError(f"{what} must be a positive number, got {value!r}")
    if not (0 < target_utilization <= 1):
        raise InvalidArgumentError(
            f"target_utilization must be in (0, 1], got {target_utilization!r}",
            hint="write 70 % as 0.7",
        )
    if int(max_concurrent_per_replica) != max_concurrent_per_replica or (
        max_concurrent_per_replica < 1
    ):
        raise InvalidArgumentError(
            f"max_concurrent_per_replica must be an integer >= 1, "
            f"got {max_concurrent_per_replica!r}"
        )
    concurrent = target_rps * request_seconds / target_utilization
    return max(1, math.ceil(round(concurrent / max_concurrent_per_replica, 9)))


@dataclass(frozen=True)
class Recommendation:
    """The resources a service needs, with the rule that produced them.

    Parameters
    ----------
    cpu:
        ``requestedCpu``: cores (multiples of 0.1), or ``None`` when no serving process
        could be measured.
    memory_gb:
        ``requestedMemoryInGb``: GB of 2**30 bytes (multiples of 0.1), or ``None``.
    explanation:
        How the figures were derived, in words, with the measured inputs.

    Examples
    --------
    >>> r = Recommendation(cpu=1.0, memory_gb=0.5, explanation="measured")
    >>> Recommendation.from_dict(r.to_dict()) == r
    True
    """

    cpu: float | None
    memory_gb: float | None
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "memory_gb": self.memory_gb, "explanation": self.explanation}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recommendation:
        cpu, mem = data.get("cpu"), data.get("memory_gb")
        return cls(
            cpu=None if cpu is None else float(cpu),
            memory_gb=None if mem is None else float(mem),
            explanation=str(data.get("explanation", "")),
        )

    def as_tags(self) -> dict[str, str]:
        """The reference's model tags: ``{"requestedCpu": ..., "requestedMemoryInGb": ...}``."""
        tags: dict[str, str] = {}
        if self.cpu is not None:
            tags["requestedCpu"] = f"{self.cpu:g}"
        if self.memory_gb is not None:
            tags["requestedMemoryInGb"] = f"{self.memory_gb:g}"
        return tags


def recommend(
    *,
    peak_memory_bytes: int | None,
    load_cpu_cores: float | None,
    p95_cpu_cores: float | None,
    measured_rps: float,
    target_rps: float | None = None,
) -> Recommendation:
    """Size a service from what a profile measured.

    Memory
        ``requestedMemoryInGb = ceil_0.1(peak_gb x 1.25 + 0.1)`` where ``peak_gb`` is
        the larger of the peak resident memory sampled during the profile and the
        processes' resident high-water mark since they started (``VmHWM``), so the
        model's load at ``init()`` counts too. 25 % headroom covers requests larger
        than the sample and allocator fragmentation; the 0.1 GB floor covers small
        bursts (buffers, logging) that a short profile may not meet.
    CPU
        With ``target_rps``: ``requestedCpu = ceil_0.1(cores x target_rps / measured_rps)``
        — the CPU one successful request costs (the mean cores used during the load
        divided by the successful requests per second), times the rate to sustain.
        Without it: ``ceil_0.1(p95 of the sampled cores during the load)`` — enough for
        the load the profile applied (at saturation that is the most the service can
        use); a load shorter than one sample interval uses the mean cores instead.
        Never below 0.1 core.

    Examples
    --------
    >>> r = recommend(peak_memory_bytes=300 * 2**20, load_cpu_cores=1.0,
    ...               p95_cpu_cores=1.02, measured_rps=50.0)
    >>> r.cpu, r.memory_gb
    (1.1, 0.5)
    >>> recommend(peak_memory_bytes=300 * 2**20, load_cpu_cores=1.0, p95_cpu_cores=1.02,
    ...           measured_rps=50.0, target_rps=10).cpu
    0.2
    """
    parts: list[str] = []
    memory_gb: float | None = None
    if peak_memory_bytes is not None and peak_memory_bytes > 0:
        peak_gb = peak_memory_bytes / GIB
        memory_gb = _ceil_tenth(peak_gb * MEMORY_HEADROOM + MEMORY_BASE_GB)
        parts.append(
            f"memory: peak resident memory {peak_memory_bytes / 2**20:.0f} MiB "
            f"({peak_gb:.3f} GB; the larger of the peak sampled during the profile and "
            f"the processes' high-water mark since start) x {MEMORY_HEADROOM:g} headroom "
            f"+ {MEMORY_BASE_GB:g} GB, rounded up to 0.1 GB = {memory_gb:g} GB"
        )
    else:
        parts.append("memory: no serving process could be measured, so no memory figure")

    cpu: float | None = None
    if target_rps is not None and load_cpu_cores is not None and measured_rps > 0:
        raw = load_cpu_cores * target_rps / measured_rps
        cpu = max(MIN_CPU, _ceil_tenth(raw))
        parts.append(
            f"cpu: {load_cpu_cores:.2f} cores used while serving {measured_rps:.1f} "
            f"successful requests/s = {load_cpu_cores / measured_rps * 1000:.2f} ms of CPU "
            f"per request; x {target_rps:g} target requests/s = {raw:.2f} cores, "
            f"rounded up to 0.1 (at least {MIN_CPU:g}) = {cpu:g} cores"
        )
    elif p95_cpu_cores is not None:
        cpu = max(MIN_CPU, _ceil_tenth(p95_cpu_cores))
        parts.append(
            f"cpu: 95th percentile of the cores sampled every {SAMPLE_INTERVAL_S:g} s "
            f"during the load = {p95_cpu_cores:.2f}, rounded up to 0.1 "
            f"(at least {MIN_CPU:g}) = {cpu:g} cores; pass target_rps= to size for a "
            f"request rate instead"
        )
    elif load_cpu_cores is not None:
        cpu = max(MIN_CPU, _ceil_tenth(load_cpu_cores))
        parts.append(
            f"cpu: the load was too short for {SAMPLE_INTERVAL_S:g} s samples; mean cores "
            f"during the load = {load_cpu_cores:.2f}, rounded up to 0.1 "
            f"(at least {MIN_CPU:g}) = {cpu:g} cores; profile longer for a firmer figure"
        )
    else:
        parts.append("cpu: no serving process could be measured, so no CPU figure")
    return Recommendation(cpu=cpu, memory_gb=memory_gb, explanation="; ".join(parts) + ".")


# -- requests ------------------------------------------------------------------------------
def _default_encode(item: Any) -> bytes:
    if isinstance(item, Mapping) and "data" in item:
        return json.dumps(item, default=json_default).encode()
    return json.dumps({"data": item}, default=json_default).encode()


def _looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in {"{", "["}


def _read_request_file(path: Path) -> list[bytes]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(
            f"cannot read the request file {str(path)!r}: {exc.strerror or exc}",
            hint="pass a file with one JSON request per line, a list of JSON strings "
            "or a DataFrame",
        ) from None
    return [line.strip() for line in raw.splitlines() if line.strip()]


def prepare_requests(
    requests: Any,
    *,
    batch_size: int = 1,
    orient: str = "split",
    encode: Callable[[Any], bytes] | None = None,
) -> tuple[bytes, ...]:
    """Turn a sample of requests into the ``/score`` bodies a profile sends.

    Parameters
    ----------
    requests:
        - a list of JSON strings (or bytes): each is one request body, sent as it is;
        - a ``pathlib.Path`` (or a ``str`` naming an existing file): one request per
          line, as in the reference's dataset of request strings;
        - a pandas DataFrame: its rows, ``batch_size`` at a time, become
          ``{"data": ...}`` requests in the ``orient`` layout (``"split"`` — columns
          once, then rows — or ``"records"``, the Power BI style list of
          ``{column: value}``). A DataFrame of one string column holding JSON is the
          reference's dataset: each row is a request body;
        - a numpy array: its rows, ``batch_size`` at a time, as ``{"data": [...]}``;
        - a list of other objects (dicts, lists): each is one request, encoded with
          ``encode`` (default: a dict with a ``"data"`` key as it is, anything else
          wrapped as ``{"data": item}``).
    batch_size:
        Rows per request for DataFrames and arrays.
    orient:
        ``"split"`` or ``"records"``: the JSON layout of DataFrame batches.
    encode:
        Encoder for list items that are not strings or bytes.

    Returns
    -------
    tuple of bytes
        At least one request body.

    Examples
    --------
    >>> prepare_requests(['{"data": [1]}', '{"data": [2]}'])
    (b'{"data": [1]}', b'{"data": [2]}')
    >>> import pandas as pd
    >>> prepare_requests(pd.DataFrame({"x": [1, 2, 3]}), batch_size=2)
    (b'{"data":{"columns":["x"],"data":[[1],[2]]}}', b'{"data":{"columns":["x"],"data":[[3]]}}')
    >>> prepare_requests(pd.DataFrame({"x": [1]}), orient="records")
    (b'{"data":[{"x":1}]}',)
    """
    import pandas as pd

    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if orient not in {"split", "records"}:
        raise InvalidArgumentError(
            f"orient must be 'split' or 'records', got {orient!r}",
            hint="'split' sends columns once; 'records' sends a list of {column: value}",
        )
    bodies: list[bytes]
    if isinstance(requests, (str, os.PathLike)) and not (
        isinstance(requests, str) and _looks_like_json(requests)
    ):
        path = Path(requests)
        if not path.is_file():
            raise InvalidArgumentError(
                f"no request file at {str(requests)!r}",
                hint="pass a file with one JSON request per line, a list of JSON strings, "
                "or a DataFrame whose rows become requests",
            )
        bodies = _read_request_file(path)
    elif isinstance(requests, (str, bytes)):
        bodies = [requests.encode() if isinstance(requests, str) else requests]
    elif isinstance(requests, pd.DataFrame):
        bodies = _dataframe_bodies(requests, batch_size, orient)
    elif isinstance(requests, pd.Series):
        bodies = _dataframe_bodies(requests.to_frame(), batch_size, orient)
    elif isinstance(requests, np.ndarray):
        if requests.ndim == 0:
            raise InvalidArgumentError("a 0-dimensional array is not a sample of requests")
        bodies = [
            _default_encode(requests[i : i + batch_size].tolist())
            for i in range(0, len(requests), batch_size)
        ]
    elif isinstance(requests, Iterable) and not isinstance(requests, Mapping):
        enc = encode or _default_encode
        bodies = []
        for item in requests:
            if isinstance(item, bytes):
                bodies.append(item)
            elif isinstance(item, str):
                bodies.append(item.encode())
            else:
                try:
                    bodies.append(enc(item))
                except TypeError as exc:
                    raise InvalidArgumentError(
                        f"cannot send request {len(bodies)} ({type(item).__name__}): {exc}",
                        hint="pass JSON strings, or objects json.dumps can encode",
                    ) from None
    else:
        raise InvalidArgumentError(
            f"cannot make requests from a {type(requests).__name__}",
            hint="pass a list of JSON strings, a DataFrame, a numpy array or the path of a "
            "file with one request per line",
        )
    if not bodies:
        raise InvalidArgumentError(
            "the sample of requests is empty", hint="give at least one request to send"
        )
    return tuple(bodies)


def _dataframe_bodies(frame: Any, batch_size: int, orient: str) -> list[bytes]:
    if len(frame) == 0:
        return []
    column = frame.iloc[:, 0] if frame.shape[1] == 1 else None
    if column is not None and all(isinstance(v, str) and _looks_like_json(v) for v in column):
        # The reference's input dataset: one string column, one request body per row.
        return [str(v).encode() for v in column]
    bodies = []
    for start in range(0, len(frame), batch_size):
        chunk = frame.iloc[start : start + batch_size]
        data = chunk.to_json(orient=orient, date_format="iso", index=False)
        bodies.append(b'{"data":' + data.encode() + b"}")
    return bodies


# -- the endpoint ------------------------------------------------------------------------------
class _StaleConnection(ConnectionError):
    """A kept-alive connection turned out closed before any byte of the answer came."""


@dataclass(frozen=True)
class _Endpoint:
    host: str
    port: int
    path: str
    host_header: str


def check_loopback(uri: str) -> tuple[str, int, str]:
    """Check that ``uri`` is an ``http://`` URI on this machine; return (host, port, path).

    A profile is a load test: nbdeploy sends load only to loopback addresses
    (127.0.0.0/8, ``::1``, or a name such as ``localhost`` that resolves only to them).

    Examples
    --------
    >>> check_loopback("http://127.0.0.1:5001/score")
    ('127.0.0.1', 5001, '/score')
    >>> try:
    ...     check_loopback("http://10.1.2.3/score")
    ... except InvalidArgumentError as exc:
    ...     print(exc.message)
    refusing to profile http://10.1.2.3/score: 10.1.2.3 is not a loopback address
    """
    parts = urlsplit(uri)
    if parts.scheme != "http" or not parts.hostname:
        raise InvalidArgumentError(
            f"cannot profile {uri!r}: expected an http:// URI with a host",
            hint="profile a local service (its scoring_uri is http://127.0.0.1:PORT/score)",
        )
    host = parts.hostname
    hint = "profiling sends load; nbdeploy only sends it to 127.0.0.1 / ::1 / localhost"
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise InvalidArgumentError(
                f"cannot profile {uri}: cannot resolve {host!r} ({exc})", hint=hint
            ) from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses or not all(a.is_loopback for a in addresses):
        raise InvalidArgumentError(
            f"refusing to profile {uri}: {host} is not a loopback address", hint=hint
        )
    try:
        port = parts.port or 80
    except ValueError:
        raise InvalidArgumentError(f"cannot profile {uri!r}: bad port") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, port, path


# -- the load generator ------------------------------------------------------------------------
class _Load:
    """Shared state of the workers: which body comes next, the budget, the records."""

    def __init__(self, requests: Sequence[bytes], count: int, duration: float) -> None:
        self.requests = requests
        self.count = count
        self.duration = duration
        self.deadline = math.inf
        self.issued = 0
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.statuses: list[int] = []
        self.consecutive_connection_errors = 0
        self.successes = 0
        self.dead = False

    def begin(self, now: float) -> None:
        self.deadline = now + self.duration

    def claim(self) -> bytes | None:
        if self.dead or self.issued >= self.count or time.perf_counter() >= self.deadline:
            return None
        body = self.requests[self.issued % len(self.requests)]
        self.issued += 1
        return body

    def record(self, start: float, end: float, status: int) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.statuses.append(status)
        if status == CONNECTION_ERROR:
            self.consecutive_connection_errors += 1
            if self.successes == 0 and self.consecutive_connection_errors >= _DEAD_AFTER:
                self.dead = True
        else:
            self.consecutive_connection_errors = 0
            self.successes += 1


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; return (status, connection must close)."""
    try:
        line = await reader.readline()
    except ConnectionResetError:
        raise _StaleConnection("the server reset the connection") from None
    if not line:
        raise _StaleConnection("the server closed the connection")
    try:
        version, code = line.split(None, 2)[:2]
        status = int(code)
    except (IndexError, ValueError):
        raise ConnectionError(f"not an HTTP response: {line[:80]!r}") from None
    length: int | None = None
    chunked = False
    close = version == b"HTTP/1.0"  # 1.0 closes unless it says keep-alive
    while True:
        header = await reader.readline()
        if not header:
            raise ConnectionError("the server closed the connection in the headers")
        if header in (b"\r\n", b"\n"):
            break
        name, _, value = header.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower() or (
                version == b"HTTP/1.0" and b"keep-alive" not in value.lower()
            )
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                break
            await reader.readexactly(size + 2)
    elif length is not None:
        if length:
            await reader.readexactly(length)
    else:
        await reader.read()  # no framing: the body ends with the connection
        close = True
    return status, close


async def _worker(
    load: _Load,
    endpoint: _Endpoint,
    messages: dict[bytes, bytes],
    timeout: float,
    warmed: list[int],
    expected: int,
    all_warm: asyncio.Event,
    go: asyncio.Event,
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        nonlocal reader, writer
        reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def roundtrip(message: bytes) -> tuple[int, bool]:
        if reader is None or writer is None:
            r, w = await connect()
            w.write(message)
            return await _read_response(r)
        writer.write(message)
        try:
            return await _read_response(reader)
        except _StaleConnection:
            if expired:
                raise
            # The server closed the idle kept-alive connection (as HTTP allows): the
            # request was not served; send it again on a new connection, as browsers do.
            await close()
            r, w = await connect()
            w.write(message)
            return await _read_response(r)

    async def close() -> None:
        nonlocal reader, writer
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
        reader = writer = None

    # The per-request timeout is a timer that aborts the connection: cheaper than
    # asyncio.wait_for, which wraps every request in a task of its own.
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        if writer is not None:
            writer.transport.abort()  # the pending read fails at once
        elif task is not None:
            task.cancel()  # still connecting

    async def timed(message: bytes) -> tuple[int, bool]:
        nonlocal expired
        expired = False
        handle = loop.call_later(timeout, expire)
        try:
            return await roundtrip(message)
        except asyncio.CancelledError:
            if not expired:
                raise
            if sys.version_info >= (3, 11) and task is not None:
                task.uncancel()
            return TIMEOUT_ERROR, True
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            return (TIMEOUT_ERROR if expired else CONNECTION_ERROR), True
        finally:
            handle.cancel()

    try:
        # Warm-up: open the connection and send one request that is not measured.
        try:
            _, must_close = await timed(messages[load.requests[0]])
            if must_close:
                await close()
        finally:
            warmed.append(1)
            if len(warmed) == expected:
                all_warm.set()
        await go.wait()
        while True:
            body = load.claim()
            if body is None:
                return
            start = time.perf_counter()
            status, must_close = await timed(messages[body])
            load.record(start, time.perf_counter(), status)
            if must_close:
                await close()
    finally:
        await close()


async def _drive(
    load: _Load,
    endpoint: _Endpoint,
    messages: dict[bytes, bytes],
    concurrency: int,
    timeout: float,
    on_start: Callable[[], float],
    on_end: Callable[[], None],
) -> None:
    """Run the workers: all warm up, ``on_start`` starts the clock, ``on_end`` stops it."""
    all_warm = asyncio.Event()
    go = asyncio.Event()
    warmed: list[int] = []
    tasks = [
        asyncio.ensure_future(
            _worker(load, endpoint, messages, timeout, warmed, concurrency, all_warm, go)
        )
        for _ in range(concurrency)
    ]
    await all_warm.wait()
    load.begin(on_start())
    go.set()
    try:
        await asyncio.gather(*tasks)
    finally:
        on_end()


def _messages(
    requests: Sequence[bytes], endpoint: _Endpoint, headers: Mapping[str, str]
) -> dict[bytes, bytes]:
    extra = "".join(
        f"{k}: {v}\r\n"
        for k, v in headers.items()
        if k.lower() not in {"host", "content-length", "connection"}
    )
    if not any(k.lower() == "content-type" for k in headers):
        extra += "Content-Type: application/json\r\n"
    out: dict[bytes, bytes] = {}
    for body in requests:
        if body not in out:
            head = (
                f"POST {endpoint.path} HTTP/1.1\r\nHost: {endpoint.host_header}\r\n"
                f"{extra}Content-Length: {len(body)}\r\n\r\n"
            )
            out[body] = head.encode("latin-1") + body
    return out


# -- the process sampler ---------------------------------------------------------------------
class _ProcessSampler:
    """Samples the CPU time and resident memory of processes and their children.

    CPU is the sum of user + system time over the process tree; a child first seen
    after sampling began counts from zero (it was started during the profile), one seen
    at the start counts from then. Memory is the sum of RSS over the tree; the high-water
    mark is the sum over processes of the largest ``VmHWM`` each reported.
    """

    def __init__(self, pids: Sequence[int], interval: float) -> None:
        import psutil

        self._psutil = psutil
        self.interval = interval
        self.roots: list[psutil.Process] = []
        for pid in pids:
            try:
                self.roots.append(psutil.Process(pid))
            except psutil.Error:
                raise InvalidArgumentError(
                    f"no serving process with PID {pid}",
                    hint="is the service running? check service.state and service.get_logs()",
                ) from None
        self._known: dict[tuple[int, float], psutil.Process] = {}
        self._base: dict[tuple[int, float], float] = {}
        self._last_cpu: dict[tuple[int, float], float] = {}
        self._hwm: dict[tuple[int, float], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t: list[float] = []
        self.cpu: list[float] = []
        self.rss: list[int] = []
        self._first = True

    def _tree(self) -> list[psutil.Process]:
        procs: list[psutil.Process] = []
        for root in self.roots:
            try:
                procs.append(root)
                procs.extend(root.children(recursive=True))
            except self._psutil.Error:
                continue
        return procs

    def sample(self) -> tuple[float, float, int]:
        """Take one sample now: (perf_counter time, cumulative CPU seconds, RSS bytes)."""
        with self._lock:
            now = time.perf_counter()
            rss_total = 0
            for proc in self._tree():
                try:
                    with proc.oneshot():
                        times = proc.cpu_times()
                        rss = proc.memory_info().rss
                    key = (proc.pid, proc.create_time())
                except self._psutil.Error:
                    continue
                cpu = times.user + times.system
                if key not in self._base:
                    self._base[key] = cpu if self._first else 0.0
                self._last_cpu[key] = cpu
                rss_total += rss
                hwm = _vm_hwm(proc.pid)
                if hwm is not None:
                    self._hwm[key] = max(hwm, self._hwm.get(key, 0))
            self._first = False
            used = sum(self._last_cpu[k] - self._base[k] for k in self._last_cpu)
            self.t.append(now)
            self.cpu.append(used)
            self.rss.append(rss_total)
            return now, used, rss_total

    @property
    def hwm_bytes(self) -> int | None:
        return sum(self._hwm.values()) if self._hwm else None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> None:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="nbdeploy-profile", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


def _vm_hwm(pid: int) -> int | None:
    """The resident high-water mark of ``pid`` in bytes (Linux ``VmHWM``), if known."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


# -- the result -------------------------------------------------------------------------------
def _readonly(values: Any, dtype: Any) -> npt.NDArray[Any]:
    arr = np.array(values, dtype=dtype)
    arr.flags.writeable = False
    return arr


_ARRAYS = {
    "request_starts_s": np.float64,
    "latencies_s": np.float64,
    "statuses": np.int64,
    "sample_t_s": np.float64,
    "sample_cpu_cores": np.float64,
    "sample_rss_bytes": np.int64,
}


@dataclass(frozen=True, eq=False)
class ProfileResult:
    """What a profile measured, and the resources it recommends.

    The reference's ``ModelProfile``: :meth:`get_details` gives its keys
    (``requestedCpu``, ``requestedMemoryInGb``, ``latencyPercentile99InMs`` ...),
    :meth:`get_results` its short ``{"cpu": ..., "memoryInGB": ...}``. The core keeps
    to figures and text (:meth:`summary`, a cheap ``repr``); the notebook report
    (percentiles table, latency histogram, CPU and memory over time, the
    recommendation) is drawn by the front's ``nbdeploy.ProfileReport``, which is what
    ``nbdeploy.profile`` returns.

    Parameters
    ----------
    name:
        The profile's name.
    scoring_uri:
        The endpoint that was profiled.
    service:
        The service's name, if it was a recorded service.
    models:
        The ``name:version`` of the models served.
    concurrency:
        Requests in flight at once (one keep-alive connection each).
    started:
        When the load started (aware UTC).
    duration_s:
        Seconds from the load's start to its last answer.
    request_starts_s, latencies_s, statuses:
        Per request (in the order they completed): start offset from the load's start,
        latency in seconds, and HTTP status (``-1`` connection error, ``-2`` timeout).
    sample_t_s, sample_cpu_cores, sample_rss_bytes:
        The process samples: time from the load's start (negative during the warm-up),
        CPU in cores over the interval ending at that time (the first is 0), and the
        resident memory of the process tree.
    pids:
        The serving processes (roots) that were sampled; empty when none was known.
    load_cpu_cores:
        Mean cores used by the process tree from the load's start to its end.
    peak_rss_bytes:
        The largest resident memory sampled during the profile (warm-up included).
    hwm_bytes:
        The processes' resident high-water mark since they started (``VmHWM``).
    target_rps:
        The request rate the CPU recommendation is sized for, if given.
    recommendation:
        The :class:`Recommendation` (see :func:`recommend` for the rule).
    """

    name: str
    scoring_uri: str
    service: str | None
    models: tuple[str, ...]
    concurrency: int
    started: datetime
    duration_s: float
    request_starts_s: npt.NDArray[np.float64]
    latencies_s: npt.NDArray[np.float64]
    statuses: npt.NDArray[np.int64]
    sample_t_s: npt.NDArray[np.float64]
    sample_cpu_cores: npt.NDArray[np.float64]
    sample_rss_bytes: npt.NDArray[np.int64]
    pids: tuple[int, ...] = ()
    load_cpu_cores: float | None = None
    peak_rss_bytes: int | None = None
    hwm_bytes: int | None = None
    target_rps: float | None = None
    recommendation: Recommendation = field(
        default_factory=lambda: Recommendation(None, None, "not computed")
    )

    def __post_init__(self) -> None:
        for name, dtype in _ARRAYS.items():
            object.__setattr__(self, name, _readonly(getattr(self, name), dtype))
        n = len(self.latencies_s)
        if len(self.statuses) != n or len(self.request_starts_s) != n:
            raise InvalidArgumentError(
                "request_starts_s, latencies_s and statuses must have the same length, got "
                f"{len(self.request_starts_s)}, {n} and {len(self.statuses)}"
            )
        if not (len(self.sample_t_s) == len(self.sample_cpu_cores) == len(self.sample_rss_bytes)):
            raise InvalidArgumentError("the sample arrays must have the same length")
        if self.concurrency < 1:
            raise InvalidArgumentError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.started.tzinfo is None:
            raise InvalidArgumentError("started must be an aware datetime")
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "pids", tuple(int(p) for p in self.pids))

    # -- figures -------------------------------------------------------------------------
    @property
    def total(self) -> int:
        """Requests sent during the load (warm-up excluded)."""
        return len(self.statuses)

    @property
    def success_mask(self) -> npt.NDArray[np.bool_]:
        """Which requests got a 2xx answer."""
        return (self.statuses >= 200) & (self.statuses < 300)

    @property
    def success_count(self) -> int:
        return int(self.success_mask.sum())

    @property
    def success_rate(self) -> float:
        """Successful requests / requests sent (1.0 when nothing failed)."""
        return self.success_count / self.total if self.total else 0.0

    @property
    def error_counts(self) -> dict[str, int]:
        """Failed requests by HTTP status (``"500"``) or ``"connection"`` / ``"timeout"``."""
        failed = self.statuses[~self.success_mask]
        codes, counts = np.unique(failed, return_counts=True)
        return {status_label(int(c)): int(k) for c, k in zip(codes, counts, strict=True)}

    @property
    def status_counts(self) -> dict[str, int]:
        """Every request by status, successes included."""
        codes, counts = np.unique(self.statuses, return_counts=True)
        return {status_label(int(c)): int(k) for c, k in zip(codes, counts, strict=True)}

    @property
    def throughput_rps(self) -> float:
        """Answered requests per second (any status; connection errors and timeouts not)."""
        answered = int((self.statuses > 0).sum())
        return answered / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def success_rps(self) -> float:
        """Successful requests per second."""
        return self.success_count / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def success_latencies_ms(self) -> npt.NDArray[np.float64]:
        """Latencies of the successful requests, in ms (what the percentiles describe)."""
        return np.asarray(self.latencies_s[self.success_mask] * 1000.0)

    def latency_ms(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of successful requests' latency, in ms (NaN if none).

        Examples
        --------
        >>> r = ProfileResult.from_dict(_example_dict())
        >>> r.latency_ms(50)
        20.0
        """
        lat = self.success_latencies_ms
        return float(np.percentile(lat, q)) if len(lat) else math.nan

    @property
    def latency_summary_ms(self) -> dict[str, float]:
        """Mean, p50, p90, p95, p99, p99.9 and max latency of successful requests, in ms."""
        lat = self.success_latencies_ms
        if not len(lat):
            keys = ("mean", "p50", "p90", "p95", "p99", "p99.9", "max")
            return dict.fromkeys(keys, math.nan)
        p50, p90, p95, p99, p999 = np.percentile(lat, [50, 90, 95, 99, 99.9])
        return {
            "mean": float(lat.mean()),
            "p50": float(p50),
            "p90": float(p90),
            "p95": float(p95),
            "p99": float(p99),
            "p99.9": float(p999),
            "max": float(lat.max()),
        }

    def _load_window(self) -> npt.NDArray[np.bool_]:
        t = self.sample_t_s
        return (t > 0) & (t <= self.duration_s + 1e-9)

    @property
    def p95_cpu_cores(self) -> float | None:
        """95th percentile of the cores sampled during the load (``None`` without samples)."""
        window = self.sample_cpu_cores[self._load_window()]
        return float(np.percentile(window, 95)) if len(window) else None

    @property
    def max_cpu_cores(self) -> float | None:
        """The most cores any sample interval of the load used."""
        window = self.sample_cpu_cores[self._load_window()]
        return float(window.max()) if len(window) else None

    @property
    def peak_memory_bytes(self) -> int | None:
        """The larger of the sampled peak RSS and the high-water mark (what sizing uses)."""
        known = [v for v in (self.peak_rss_bytes, self.hwm_bytes) if v is not None]
        return max(known) if known else None

    @property
    def state(self) -> str:
        """``Succeeded`` when at least one request succeeded, else ``Failed`` (as the reference)."""
        return "Succeeded" if self.success_count else "Failed"

    def replicas(
        self,
        target_rps: float,
        target_utilization: float = 0.7,
        max_concurrent_per_replica: int = 1,
    ) -> int:
        """Replicas for ``target_rps`` at this profile's mean latency (:func:`replicas_for`)."""
        mean_s = self.latency_summary_ms["mean"] / 1000.0
        if not math.isfinite(mean_s) or mean_s <= 0:
            raise InvalidArgumentError(
                f"profile {self.name!r} has no successful request to size replicas from"
            )
        return replicas_for(target_rps, mean_s, target_utilization, max_concurrent_per_replica)

    # -- the reference's views -------------------------------------------------------------
    def get_details(self) -> dict[str, Any]:
        """The reference's ``ModelProfile.get_details()`` keys.

        Examples
        --------
        >>> d = ProfileResult.from_dict(_example_dict()).get_details()
        >>> d["requestedCpu"], d["requestedMemoryInGb"], d["successRate"]
        (1.1, 0.5, 0.75)
        >>> d["errors"]
        {'500': 1}
        """
        lat = self.latency_summary_ms

        def ms(key: str) -> float | None:
            value = lat[key]
            return None if math.isnan(value) else round(value, 3)

        peak = self.peak_memory_bytes
        return {
            "name": self.name,
            "state": self.state,
            "scoringUri": self.scoring_uri,
            "service": self.service,
            "models": list(self.models),
            "concurrency": self.concurrency,
            "durationInSeconds": round(self.duration_s, 3),
            "requestedCpu": self.recommendation.cpu,
            "requestedMemoryInGb": self.recommendation.memory_gb,
            "requestedQueriesPerSecond": self.target_rps,
            "maxUtilizedCpu": None if self.max_cpu_cores is None else round(self.max_cpu_cores, 3),
            "averageUtilizedCpu": (
                None if self.load_cpu_cores is None else round(self.load_cpu_cores, 3)
            ),
            "maxUtilizedMemoryInGB": None if peak is None else round(peak / GIB, 4),
            "totalQueries": self.total,
            "successQueries": self.success_count,
            "successRate": round(self.success_rate, 6),
            "averageLatencyInMs": ms("mean"),
            "latencyPercentile50InMs": ms("p50"),
            "latencyPercentile90InMs": ms("p90"),
            "latencyPercentile95InMs": ms("p95"),
            "latencyPercentile99InMs": ms("p99"),
            "latencyPercentile999InMs": ms("p99.9"),
            "maxLatencyInMs": ms("max"),
            "measuredQueriesPerSecond": round(self.throughput_rps, 3),
            "errors": self.error_counts,
            "recommendation": self.recommendation.explanation,
        }

    def get_results(self) -> dict[str, float | None]:
        """The reference's short result: ``{"cpu": ..., "memoryInGB": ...}``."""
        return {"cpu": self.recommendation.cpu, "memoryInGB": self.recommendation.memory_gb}

    def wait_for_completion(self, show_output: bool = False) -> str:
        """The reference waits for a cloud run; a local profile is already done.

        Returns the state; prints the summary when ``show_output``.
        """
        if show_output:
            print(self.summary())
        return self.state

    wait_for_profiling = wait_for_completion

    # -- tables -------------------------------------------------------------------------------
    @property
    def requests(self) -> Any:
        """Per request: ``start_s``, ``latency_ms``, ``status`` (a pandas DataFrame)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "start_s": self.request_starts_s,
                "latency_ms": self.latencies_s * 1000.0,
                "status": self.statuses,
            }
        )

    @property
    def timeseries(self) -> Any:
        """The process samples: ``t_s``, ``cpu_cores``, ``rss_bytes`` (a pandas DataFrame)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "t_s": self.sample_t_s,
                "cpu_cores": self.sample_cpu_cores,
                "rss_bytes": self.sample_rss_bytes,
            }
        )

    # -- text and rich display --------------------------------------------------------------
    def summary(self) -> str:
        """A plain-text report (what ``text/plain`` and the CLI show)."""
        lat = self.latency_summary_ms
        lines = [
            f"Profile {self.name!r} of {self.service or self.scoring_uri}: {self.state}",
            f"  {self.total} requests in {self.duration_s:.2f} s at concurrency "
            f"{self.concurrency}: {self.throughput_rps:.1f} requests/s, "
            f"success rate {self.success_rate:.1%}",
            "  latency ms: "
            + "  ".join(f"{k} {v:.2f}" for k, v in lat.items() if not math.isnan(v)),
        ]
        if self.error_counts:
            lines.append(
                "  errors: " + ", ".join(f"{k}: {v}" for k, v in self.error_counts.items())
            )
        if self.load_cpu_cores is not None:
            lines.append(f"  cpu: {self.load_cpu_cores:.2f} cores on average during the load")
        peak = self.peak_memory_bytes
        if peak is not None:
            lines.append(
                f"  memory: peak {_mib(self.peak_rss_bytes)} during the profile, "
                f"high-water mark {_mib(self.hwm_bytes)}"
            )
        rec = self.recommendation
        lines.append(
            f"  recommendation: requestedCpu={rec.cpu} requestedMemoryInGb={rec.memory_gb}"
        )
        lines.append(f"  ({rec.explanation})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        p50 = self.latency_ms(50)
        return (
            f"ProfileResult(name={self.name!r}, requests={self.total}, "
            f"p50_ms={p50:.2f}, rps={self.throughput_rps:.1f}, "
            f"success_rate={self.success_rate:.3f}, requestedCpu={self.recommendation.cpu}, "
            f"requestedMemoryInGb={self.recommendation.memory_gb})"
        )

    # -- comparison and round trip ----------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProfileResult):
            return NotImplemented
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name in _ARRAYS:
                if not np.array_equal(a, b):
                    return False
            elif a != b:
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (arrays as lists); :meth:`from_dict` reads it back."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _ARRAYS:
                out[f.name] = value.tolist()
            elif f.name == "started":
                out[f.name] = value.isoformat()
            elif f.name == "recommendation":
                out[f.name] = value.to_dict()
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProfileResult:
        """Rebuild a result from :meth:`to_dict` output."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidArgumentError(
                f"unknown ProfileResult fields: {', '.join(sorted(unknown))}"
            )
        kwargs = dict(data)
        started = kwargs.get("started")
        if isinstance(started, str):
            kwargs["started"] = datetime.fromisoformat(started)
        rec = kwargs.get("recommendation")
        if isinstance(rec, Mapping):
            kwargs["recommendation"] = Recommendation.from_dict(rec)
        for key in ("models", "pids"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f} MiB"


def _example_dict() -> dict[str, Any]:
    """A small, fixed result (for doctests and documentation)."""
    rec = recommend(
        peak_memory_bytes=300 * 2**20,
        load_cpu_cores=1.0,
        p95_cpu_cores=1.02,
        measured_rps=50.0,
    )
    return {
        "name": "example",
        "scoring_uri": "http://127.0.0.1:5001/score",
        "service": "example-svc",
        "models": ["example:1"],
        "concurrency": 1,
        "started": "2024-05-01T12:00:00+00:00",
        "duration_s": 0.08,
        "request_starts_s": [0.0, 0.02, 0.04, 0.06],
        "latencies_s": [0.02, 0.02, 0.02, 0.001],
        "statuses": [200, 200, 200, 500],
        "sample_t_s": [-0.01, 0.05, 0.08],
        "sample_cpu_cores": [0.0, 1.0, 1.02],
        "sample_rss_bytes": [300 * 2**20, 300 * 2**20, 300 * 2**20],
        "pids": [12345],
        "load_cpu_cores": 1.0,
        "peak_rss_bytes": 300 * 2**20,
        "hwm_bytes": 290 * 2**20,
        "recommendation": rec.to_dict(),
    }


# -- the whole measurement --------------------------------------------------------------------
def run_profile(
    scoring_uri: str,
    requests: Sequence[bytes],
    *,
    concurrency: int = 1,
    duration: float | None = None,
    count: int | None = None,
    pids: Sequence[int] = (),
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    target_rps: float | None = None,
    name: str = "profile",
    service: str | None = None,
    models: Sequence[str] = (),
    sample_interval: float = SAMPLE_INTERVAL_S,
) -> ProfileResult:
    """Send ``requests`` to ``scoring_uri`` and measure the serving processes.

    Each of ``concurrency`` workers opens one keep-alive HTTP/1.1 connection and sends
    one unmeasured warm-up request; then the clock starts and the workers send the
    bodies in turn (cycling) until ``count`` requests were sent or ``duration`` seconds
    passed (in-flight requests finish). Without either, the load runs
    :data:`DEFAULT_DURATION_S` seconds; it never runs longer than
    :data:`MAX_DURATION_S` or sends more than :data:`MAX_REQUESTS`.

    Parameters
    ----------
    scoring_uri:
        An ``http://`` URI on a loopback address (others are refused).
    requests:
        Request bodies (see :func:`prepare_requests`).
    concurrency:
        Requests in flight at once.
    duration, count:
        Bounds of the load: seconds, requests.
    pids:
        The serving processes; they and their children are sampled for CPU and memory.
    headers:
        Extra request headers (e.g. ``Authorization``).
    timeout:
        Seconds one request may take before it counts as a ``timeout`` error.
    target_rps:
        Size the CPU recommendation for this many requests per second.
    name, service, models:
        Labels carried into the result.
    sample_interval:
        Seconds between process samples.

    Returns
    -------
    ProfileResult

    Raises
    ------
    InvalidArgumentError
        A non-loopback URI, bad bounds, an empty sample, an unknown PID.
    TargetUnavailableError
        The endpoint refused every connection.

    Examples
    --------
    >>> result = run_profile(svc.scoring_uri, [b'{"data": [[1, 2]]}'], count=100,
    ...                      pids=[svc.record.config["pid"]])          # doctest: +SKIP
    >>> result.get_details()["latencyPercentile50InMs"]                 # doctest: +SKIP
    1.42
    """
    host, port, path = check_loopback(scoring_uri)
    bodies = tuple(requests)
    if not bodies or not all(isinstance(b, bytes) for b in bodies):
        raise InvalidArgumentError(
            "requests must be a non-empty sequence of bytes bodies",
            hint="build them with nbdeploy.core.profiling.prepare_requests(...)",
        )
    if not isinstance(concurrency, int) or not 1 <= concurrency <= 1024:
        raise InvalidArgumentError(
            f"concurrency must be an integer in 1..1024, got {concurrency!r}"
        )
    if count is not None and (not isinstance(count, int) or count < 1):
        raise InvalidArgumentError(f"count must be an integer >= 1, got {count!r}")
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise InvalidArgumentError(
            f"duration must be a positive number of seconds, got {duration!r}"
        )
    if target_rps is not None and not (math.isfinite(target_rps) and target_rps > 0):
        raise InvalidArgumentError(f"target_rps must be a positive number, got {target_rps!r}")
    if not timeout > 0:
        raise InvalidArgumentError(f"timeout must be positive, got {timeout!r}")
    if duration is None:
        duration = DEFAULT_DURATION_S if count is None else MAX_DURATION_S
    duration = min(float(duration), MAX_DURATION_S)
    count = min(count if count is not None else MAX_REQUESTS, MAX_REQUESTS)

    host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    endpoint = _Endpoint(host=host, port=port, path=path, host_header=host_header)
    messages = _messages(bodies, endpoint, headers or {})
    load = _Load(bodies, count, duration)

    sampler = _ProcessSampler(pids, sample_interval) if pids else None
    if sampler is not None:
        sampler.start()
    marks: dict[str, float] = {}

    def on_start() -> float:
        if sampler is not None:
            now, cpu, _ = sampler.sample()
            marks["cpu0"] = cpu
        else:
            now = time.perf_counter()
        marks["t0"] = now
        marks["wall0"] = time.time()
        return now

    def on_end() -> None:
        if sampler is not None:
            marks["t1"], marks["cpu1"], _ = sampler.sample()

    errors: list[BaseException] = []

    def drive() -> None:
        try:
            asyncio.run(_drive(load, endpoint, messages, concurrency, timeout, on_start, on_end))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    # Own thread, own event loop: a Jupyter kernel's loop is already running.
    thread = threading.Thread(target=drive, name="nbdeploy-profile-load", daemon=True)
    try:
        thread.start()
        thread.join()
    finally:
        if sampler is not None:
            sampler.stop()
    if errors:
        raise errors[0]
    if load.dead:
        raise TargetUnavailableError(
            f"{scoring_uri} refused every connection ({_DEAD_AFTER} in a row)",
            hint="is the service running? check service.state and service.get_logs()",
        )

    t0 = marks.get("t0", time.perf_counter())
    starts = np.array(load.starts) - t0
    ends = np.array(load.ends) - t0
    duration_s = float(ends.max()) if len(ends) else 0.0
    load_cpu = peak_rss = hwm = None
    sample_t = sample_cpu = np.zeros(0)
    sample_rss = np.zeros(0, dtype=np.int64)
    if sampler is not None:
        t_abs = np.array(sampler.t)
        cum = np.array(sampler.cpu)
        sample_t = t_abs - t0
        dt = np.diff(t_abs, prepend=t_abs[0])
        dcpu = np.diff(cum, prepend=cum[0])
        sample_cpu = np.divide(dcpu, dt, out=np.zeros_like(dcpu), where=dt > 0)
        sample_rss = np.array(sampler.rss, dtype=np.int64)
        peak_rss = int(sample_rss.max()) if len(sample_rss) else None
        hwm = sampler.hwm_bytes
        # CPU over the load, from the samples taken as it started and ended.
        if "cpu1" in marks and marks["t1"] > t0:
            load_cpu = float((marks["cpu1"] - marks["cpu0"]) / (marks["t1"] - t0))
    result_fields: dict[str, Any] = {
        "name": name,
        "scoring_uri": scoring_uri,
        "service": service,
        "models": tuple(models),
        "concurrency": concurrency,
        "started": datetime.fromtimestamp(marks.get("wall0", time.time()), timezone.utc),
        "duration_s": duration_s,
        "request_starts_s": starts,
        "latencies_s": ends - starts,
        "statuses": np.array(load.statuses, dtype=np.int64),
        "sample_t_s": sample_t,
        "sample_cpu_cores": sample_cpu,
        "sample_rss_bytes": sample_rss,
        "pids": tuple(pids),
        "load_cpu_cores": load_cpu,
        "peak_rss_bytes": peak_rss,
        "hwm_bytes": hwm,
        "target_rps": target_rps,
    }
    draft = ProfileResult(**result_fields)
    rec = recommend(
        peak_memory_bytes=draft.peak_memory_bytes,
        load_cpu_cores=load_cpu,
        p95_cpu_cores=draft.p95_cpu_cores,
        measured_rps=draft.success_rps,
        target_rps=target_rps,
    )
    return dataclasses.replace(draft, recommendation=rec)
