"""Serving speed: nbdeploy's local service against a minimal hand-written FastAPI app.

Both serve the same cloudpickled model on 127.0.0.1 in one worker; `wrk` (Debian
package `wrk`) sends the load from a separate process. Cases: a Ridge regressor and a
200-tree random forest; 1-row and 100-row requests; concurrency 1 and 16. Also the
cold start: deploy call → first 200 from /score.

The machine is small and shared, so one wrk run is noisy. Both servers run side by
side (each idle while the other is measured); after a warm-up, every case is
measured ``BENCH_ROUNDS`` times (default 3) for ``BENCH_DURATION`` seconds (default
5), nbdeploy and the baseline interleaved and in alternating order, and the best run
of each counts (noise only ever slows a run down). The load average is printed
before each model; figures taken on a busy machine say little.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cloudpickle
import numpy as np
import requests

from _common import Result

HERE = Path(__file__).parent
DURATION_S = int(os.environ.get("BENCH_DURATION", "5"))  # wrk takes whole seconds
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "3")))
CASES = [(rows, c) for rows in (1, 100) for c in (1, 16)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_200(url: str, body: bytes, deadline_s: float = 60.0) -> None:
    start = time.perf_counter()
    while True:
        try:
            r = requests.post(
                url, data=body, headers={"Content-Type": "application/json"}, timeout=5
            )
            if r.status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if time.perf_counter() - start > deadline_s:
            raise RuntimeError(f"{url} did not answer 200 within {deadline_s} s")
        time.sleep(0.005)


def _wrk(
    url: str, body_file: Path, concurrency: int, duration_s: int = DURATION_S
) -> dict[str, float]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk (make bench does this)")
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{concurrency}",
            f"-d{duration_s}s",
            "--timeout",
            "10s",
            "-s",
            str(HERE / "wrk_post.lua"),
            url,
        ],
        env={**os.environ, "BENCH_BODY": str(body_file)},
        capture_output=True,
        text=True,
        check=True,
        timeout=duration_s + 60,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("{"))
    stats = json.loads(line)
    if stats["errors"] or stats["non2xx"]:
        raise RuntimeError(f"wrk saw errors against {url}: {stats}")
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    return stats


def _models() -> dict[str, object]:
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True)
    return {
        "ridge": Ridge().fit(X, y),
        "forest200": RandomForestRegressor(n_estimators=200, random_state=0, n_jobs=1).fit(X, y),
    }


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the most requests per second (noise only slows runs down)."""
    return max(runs, key=lambda st: st["rps"])


def _compare(
    urls: dict[str, str], bodies: dict[int, Path]
) -> dict[str, dict[tuple[int, int], dict[str, float]]]:
    """Best-of-ROUNDS wrk figures per server and case, the servers interleaved."""
    for url in urls.values():  # warm-up: caches, allocator, branch predictors
        for rows in (1, 100):
            _wrk(url, bodies[rows], 4, duration_s=1)
    runs: dict[str, dict[tuple[int, int], list[dict[str, float]]]] = {
        who: {case: [] for case in CASES} for who in urls
    }
    order = list(urls)
    for rows, c in CASES:
        for round_ in range(ROUNDS):
            for who in order if round_ % 2 == 0 else reversed(order):
                runs[who][(rows, c)].append(_wrk(urls[who], bodies[rows], c))
    return {who: {case: _best(r) for case, r in cases.items()} for who, cases in runs.items()}


def run() -> list[Result]:
    import nbdeploy
    from nbdeploy.targets import shutdown_warm_server

    results: list[Result] = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="nbdeploy-bench-") as tmp:
        tmpdir = Path(tmp)
        ws = nbdeploy.Workspace(tmpdir / "ws")
        bodies = {}
        for rows in (1, 100):
            path = tmpdir / f"body{rows}.json"
            path.write_text(json.dumps({"data": rng.normal(size=(rows, 10)).round(4).tolist()}))
            bodies[rows] = path
        try:
            for model_name, model in _models().items():
                print(
                    f"  serving/{model_name}: load average {os.getloadavg()[0]:.2f} "
                    f"on {os.cpu_count()} CPUs",
                    file=sys.stderr,
                    flush=True,
                )
                model_file = tmpdir / f"{model_name}.pkl"
                model_file.write_bytes(cloudpickle.dumps(model))
                sample = rng.normal(size=(2, 10))
                registered = nbdeploy.register(model, model_name, sample_input=sample, workspace=ws)

                # baseline: plain uvicorn process
                port = _free_port()
                started = time.perf_counter()
                base = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "baseline_app:app",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--loop",
                        "uvloop",
                        "--http",
                        "httptools",
                        "--no-access-log",
                        "--log-level",
                        "warning",
                    ],
                    cwd=HERE,
                    env={**os.environ, "BASELINE_MODEL": str(model_file)},
                )
                svc = None
                try:
                    base_url = f"http://127.0.0.1:{port}/score"
                    _wait_200(base_url, bodies[1].read_bytes())
                    base_cold = time.perf_counter() - started

                    # nbdeploy: warm the fork server once (first deploy), then measure
                    # a deploy
                    first = nbdeploy.deploy(
                        registered,
                        name=f"{model_name}-warmup",
                        score=str(HERE / "score_bench.py"),
                        workspace=ws,
                    )
                    first.delete()
                    started = time.perf_counter()
                    svc = nbdeploy.deploy(
                        registered,
                        name=f"{model_name}-svc",
                        score=str(HERE / "score_bench.py"),
                        workspace=ws,
                    )
                    _wait_200(svc.scoring_uri, bodies[1].read_bytes())
                    cold = time.perf_counter() - started
                    stats = _compare({"nbdeploy": svc.scoring_uri, "baseline": base_url}, bodies)
                finally:
                    base.terminate()
                    base.wait(timeout=30)
                    if svc is not None:
                        svc.delete()
                nb_stats, base_stats = stats["nbdeploy"], stats["baseline"]

                group = f"serving/{model_name}"
                results.append(
                    Result(
                        group,
                        "cold start (deploy -> first 200)",
                        cold,
                        "s",
                        baseline=base_cold,
                        baseline_name="uvicorn app start",
                        goal="<= 0.3 s",
                    )
                )
                for (rows, c), st in nb_stats.items():
                    b = base_stats[(rows, c)]
                    case = f"{rows}-row, concurrency {c}"
                    results.append(
                        Result(
                            group,
                            f"{case}: req/s",
                            st["rps"],
                            "req/s",
                            baseline=b["rps"],
                            baseline_name="hand-written FastAPI",
                            higher_is_better=True,
                            goal=">= 1.0x baseline",
                        )
                    )
                    results.append(
                        Result(
                            group,
                            f"{case}: p50",
                            st["p50_us"] / 1000,
                            "ms",
                            baseline=b["p50_us"] / 1000,
                            baseline_name="hand-written FastAPI",
                        )
                    )
                    results.append(
                        Result(
                            group,
                            f"{case}: p99",
                            st["p99_us"] / 1000,
                            "ms",
                            baseline=b["p99_us"] / 1000,
                            baseline_name="hand-written FastAPI",
                        )
                    )
        finally:
            shutdown_warm_server(ws)
    return results
