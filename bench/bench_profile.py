"""Is the profiler's load client fast enough? nbdeploy's profile against ``wrk``.

A profile must measure the service, not its own client. Both load generators hit the
same local nbdeploy service (a Ridge regressor, 1-row requests: well under a
millisecond of work) at concurrency 1 and 8; the table compares the requests per
second and the median latency each one sees. A third row measures the client alone
against a minimal asyncio server that answers at once: the most requests per second
the profiler can send from one core.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from _common import Result

HERE = Path(__file__).parent
DURATION_S = float(os.environ.get("BENCH_DURATION", "3"))
SCORE = """\
import pickle

from nbdeploy.core.modelpath import get_model_path

model = None


def init():
    global model
    with open(get_model_path("ridge"), "rb") as fh:
        model = pickle.load(fh)


def run(data):
    return model.predict(data).tolist()
"""


def _wrk(url: str, body_file: Path, concurrency: int) -> dict[str, float]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk (make bench does this)")
    seconds = max(1, round(DURATION_S))  # wrk wants whole seconds: "-d3s", not "-d3.0s"
    script = str(HERE / "wrk_post.lua")
    out = subprocess.run(
        [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "-s", script, url],
        env={**os.environ, "BENCH_BODY": str(body_file)},
        capture_output=True,
        text=True,
        check=True,
        timeout=DURATION_S + 60,
    ).stdout
    stats = dict(json.loads(next(ln for ln in out.splitlines() if ln.startswith("{"))))
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    return stats


def _client_ceiling() -> float:
    """Requests/s of the profiler against a server that answers at once."""
    from nbdeploy.profiling import run_profile

    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n[]"
    ready = threading.Event()
    box: dict[str, object] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                writer.write(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        box["port"] = server.sockets[0].getsockname()[1]
        box["loop"] = asyncio.get_running_loop()
        stop = asyncio.Event()
        box["stop"] = stop
        ready.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    ready.wait()
    try:
        # The server runs in this process too, so this is a lower bound of the ceiling.
        uri = f"http://127.0.0.1:{box['port']}/score"
        result = run_profile(uri, [b'{"data": [1]}'], duration=DURATION_S, concurrency=8)
        return result.throughput_rps
    finally:
        loop = box["loop"]
        stop = box["stop"]
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert isinstance(stop, asyncio.Event)
        loop.call_soon_threadsafe(stop.set)
        thread.join()


def run() -> list[Result]:
    import numpy as np
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from nbdeploy.api import deploy, register
    from nbdeploy.profiling import run_profile
    from nbdeploy.sdk.workspace import get_workspace
    from nbdeploy.targets import shutdown_warm_server

    results: list[Result] = []
    X, y = load_diabetes(return_X_y=True)
    body = json.dumps({"data": np.round(X[:1], 6).tolist()}).encode()
    with tempfile.TemporaryDirectory(prefix="nbdeploy-bench-profile-") as tmp:
        root = Path(tmp)
        ws = get_workspace(root / "ws")
        (root / "score.py").write_text(SCORE)
        (root / "body.json").write_bytes(body)
        model = register(Ridge().fit(X, y), "ridge", workspace=ws)
        service = deploy(model, name="ridge-bench", score=str(root / "score.py"), workspace=ws)
        try:
            uri = str(service.scoring_uri)
            for concurrency in (1, 8):
                baseline = _wrk(uri, root / "body.json", concurrency)
                ours = run_profile(uri, [body], duration=DURATION_S, concurrency=concurrency)
                results.append(
                    Result(
                        "profile",
                        f"ridge 1 row, c={concurrency}: requests/s seen",
                        ours.throughput_rps,
                        "req/s",
                        baseline=baseline["rps"],
                        baseline_name="wrk",
                        higher_is_better=True,
                        goal=">= 0.8x baseline",
                    )
                )
                results.append(
                    Result(
                        "profile",
                        f"ridge 1 row, c={concurrency}: median latency seen",
                        ours.latency_ms(50),
                        "ms",
                        baseline=baseline["p50_us"] / 1000,
                        baseline_name="wrk",
                    )
                )
        finally:
            service.delete()
            shutdown_warm_server(ws)
    results.append(
        Result(
            "profile",
            "client alone, c=8 (immediate answers)",
            _client_ceiling(),
            "req/s",
            higher_is_better=True,
            goal="> 2000 req/s",
        )
    )
    return results


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    from _common import print_table

    print_table(run(), [])
