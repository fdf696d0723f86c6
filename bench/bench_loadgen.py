"""Does the profiler need its own load generator? nbdeploy's against httpx and aiohttp.

Issue 15 keeps the hand-written generator (:mod:`nbdeploy.profiling.loadgen`) only if
no kept library drives the load the profiler needs with its accuracy. The profiler's
load is closed-loop: ``concurrency`` keep-alive connections, each sending its next
request as soon as the previous answer came, bounded by a count or a duration. So
the candidates are the two asyncio HTTP clients already in the environment, driven the
same way (one event loop, ``concurrency`` workers, one pooled connection each):
``httpx.AsyncClient`` and ``aiohttp.ClientSession``. (``locust`` is not installed
and is a framework with its own runner and gevent, not a library to call from a
kernel.)

The server is a separate process (its own interpreter, so it does not share the
client's GIL): an asyncio server that answers every request after a fixed delay
(``asyncio.sleep``, so concurrent requests overlap). With delay ``d`` and
concurrency ``c`` the ideal closed-loop rate is ``c / d``; what a client achieves
below that, and the latency it sees above ``d``, is its own overhead. A delay of 0
measures the most requests per second each client can send.

Measured on the 2-core development machine, shared with other jobs (load average
around 8, so absolute figures are noisy; the ratios are what matter), 2026-12-05,
``python bench/run.py loadgen``:

=====================================  ============  ===========  ===========
case                                   nbdeploy      httpx        aiohttp
=====================================  ============  ===========  ===========
c=1, 10 ms answers: achieved / ideal   0.91          0.73         0.84
c=1, 10 ms answers: latency added      0.38 ms       2.4 ms       0.64 ms
c=8, 10 ms answers: achieved / ideal   0.87          0.31         0.63
c=8, 10 ms answers: latency added      0.79 ms       6.9 ms       1.6 ms
c=8, immediate answers: most req/s     13,526        508          5,768
=====================================  ============  ===========  ===========

(The ideal is ``c / delay``; even the server's own ``asyncio.sleep`` overshoots by
about a millisecond, so no client reaches 1.0.)

Why the hand-written generator stays: it comes closest to the ideal rate and adds
the least latency of the three (2-9x less than httpx, 1.7-2x less than aiohttp), and
it can send 2.3x (aiohttp) to 27x (httpx) more requests per second from one core. The
libraries spend more CPU per request (request and header objects, cookie jars,
connection-pool bookkeeping); at the rates a profile drives, that cost would show up
in the profile as the service's latency and would cap the throughput it can observe.
It also adds no dependency to the kernel.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from _common import Result

HERE = Path(__file__).parent
SCALE = float(os.environ.get("BENCH_DURATION", "3")) / 3
BODY = b'{"data": [[1.0, 2.0, 3.0, 4.0]]}'

SERVER = r"""
import asyncio, sys

delay = float(sys.argv[1])
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"


async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if delay:
                await asyncio.sleep(delay)
            writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
"""

#: (concurrency, server delay in seconds, requests): the ideal rate is c / delay.
CASES = ((1, 0.010, 200), (8, 0.010, 1600), (8, 0.0, 4000))


class _Server:
    """The answering server, in its own process (stopped by PID)."""

    def __init__(self, delay: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(delay)], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.uri = f"http://127.0.0.1:{int(self.proc.stdout.readline())}/score"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _figures(latencies: list[float], elapsed: float) -> tuple[float, float]:
    """(requests per second, median latency in ms)."""
    return len(latencies) / elapsed, float(np.median(latencies)) * 1000


async def _closed_loop(
    send: Callable[[], Awaitable[None]], concurrency: int, count: int
) -> tuple[float, float]:
    """``concurrency`` workers send ``count`` requests in all, each right after its last."""
    left = [count]
    latencies: list[float] = []

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            start = time.perf_counter()
            await send()
            latencies.append(time.perf_counter() - start)

    for _ in range(concurrency):  # warm up one connection per worker
        await send()
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return _figures(latencies, time.perf_counter() - began)


def _nbdeploy(uri: str, concurrency: int, count: int) -> tuple[float, float]:
    from nbdeploy.profiling import run_profile

    result = run_profile(uri, [BODY], concurrency=concurrency, count=count)
    return result.throughput_rps, result.latency_ms(50)


def _httpx(uri: str, concurrency: int, count: int) -> tuple[float, float]:
    import httpx

    async def main() -> tuple[float, float]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        headers = {"Content-Type": "application/json"}
        async with httpx.AsyncClient(limits=limits, headers=headers) as client:

            async def send() -> None:
                response = await client.post(uri, content=BODY)
                response.raise_for_status()

            return await _closed_loop(send, concurrency, count)

    return asyncio.run(main())


def _aiohttp(uri: str, concurrency: int, count: int) -> tuple[float, float]:
    import aiohttp

    async def main() -> tuple[float, float]:
        connector = aiohttp.TCPConnector(limit=concurrency)
        headers = {"Content-Type": "application/json"}
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def send() -> None:
                async with session.post(uri, data=BODY) as response:
                    await response.read()
                    response.raise_for_status()

            return await _closed_loop(send, concurrency, count)

    return asyncio.run(main())


CLIENTS: dict[str, Callable[[str, int, int], tuple[float, float]]] = {
    "httpx": _httpx,
    "aiohttp": _aiohttp,
}


def run() -> list[Result]:
    results: list[Result] = []
    for concurrency, delay, count in CASES:
        count = max(concurrency, round(count * SCALE))
        server = _Server(delay)
        try:
            ours = _nbdeploy(server.uri, concurrency, count)
            theirs = {
                name: client(server.uri, concurrency, count) for name, client in CLIENTS.items()
            }
        finally:
            server.stop()
        if delay:
            ideal = concurrency / delay
            label = f"c={concurrency}, {delay * 1000:g} ms answers"
            for name, (rps, p50) in theirs.items():
                results.append(
                    Result(
                        "loadgen",
                        f"{label}: achieved / ideal {ideal:g} req/s",
                        ours[0] / ideal,
                        "x",
                        baseline=rps / ideal,
                        baseline_name=name,
                        higher_is_better=True,
                        goal=">= 1.0x baseline",
                    )
                )
                results.append(
                    Result(
                        "loadgen",
                        f"{label}: median latency added",
                        max(ours[1] - delay * 1000, 1e-3),
                        "ms",
                        baseline=max(p50 - delay * 1000, 1e-3),
                        baseline_name=name,
                        goal=">= 1.0x baseline",
                    )
                )
        else:
            for name, (rps, _) in theirs.items():
                results.append(
                    Result(
                        "loadgen",
                        f"c={concurrency}, immediate answers: most req/s",
                        ours[0],
                        "req/s",
                        baseline=rps,
                        baseline_name=name,
                        higher_is_better=True,
                        goal=">= 1.0x baseline",
                    )
                )
    return results


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    from _common import print_table

    print_table(run(), [])
