"""Replicas: throughput of one local service with 1, 2 and ``auto`` server processes.

Same model, script and load for every case, measured in one run: a 200-tree random
forest (CPU-bound, ~10 ms per 100-row request, so the work — not the HTTP — is what
a replica adds), ``wrk`` at concurrency 16 from a separate process. Each count is
compared with one replica (goal: at least 0.85 x N on N free cores) and with the
hand-written FastAPI server of ``bench_serving`` (one process). Cases are measured
``BENCH_ROUNDS`` times, interleaved, and the best run counts (noise only slows a run
down); the load average is printed first, since figures taken on a busy machine say
little. ``auto`` is the usable cores of this process (``os.sched_getaffinity``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cloudpickle
import numpy as np
from bench_serving import DURATION_S, HERE, ROUNDS, _best, _free_port, _wait_200, _wrk

from _common import Result

CONCURRENCY = 16
ROWS = 100


def _forest() -> object:
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import RandomForestRegressor

    x, y = load_diabetes(return_X_y=True)
    return RandomForestRegressor(n_estimators=200, random_state=0, n_jobs=1).fit(x, y)


def _baseline(model_file: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
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
    return proc, f"http://127.0.0.1:{port}/score"


def run() -> list[Result]:
    import nbdeploy
    from nbdeploy.core.serving import usable_cores
    from nbdeploy.targets import LocalConfig, shutdown_warm_server

    cores = usable_cores()
    counts = {"1": 1, "2": 2, f"auto ({cores})": "auto"}
    print(
        f"  replicas: load average {os.getloadavg()[0]:.2f} on {cores} usable cores",
        file=sys.stderr,
        flush=True,
    )
    rng = np.random.default_rng(0)
    model = _forest()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="nbdeploy-bench-") as tmp:
        tmpdir = Path(tmp)
        ws = nbdeploy.Workspace(tmpdir / "ws")
        body = tmpdir / "body.json"
        body.write_text(json.dumps({"data": rng.normal(size=(ROWS, 10)).round(4).tolist()}))
        model_file = tmpdir / "forest.pkl"
        model_file.write_bytes(cloudpickle.dumps(model))
        registered = nbdeploy.register(
            model, "forest", sample_input=rng.normal(size=(2, 10)), workspace=ws
        )
        base, base_url = _baseline(model_file)
        services = {}
        try:
            _wait_200(base_url, body.read_bytes())
            for label, replicas in counts.items():
                services[label] = nbdeploy.deploy(
                    registered,
                    name=f"forest-{len(services)}",
                    score=str(HERE / "score_bench.py"),
                    config=LocalConfig(replicas=replicas),
                    workspace=ws,
                )
            urls = {"hand-written": base_url}
            urls.update({label: svc.scoring_uri for label, svc in services.items()})
            for url in urls.values():  # warm-up
                _wrk(url, body, 4, duration_s=1)
            runs: dict[str, list[dict[str, float]]] = {who: [] for who in urls}
            order = list(urls)
            for round_ in range(ROUNDS):
                for who in order if round_ % 2 == 0 else reversed(order):
                    runs[who].append(_wrk(urls[who], body, CONCURRENCY, DURATION_S))
        finally:
            base.terminate()
            base.wait(timeout=30)
            for svc in services.values():
                svc.delete()
            shutdown_warm_server(ws)
    best = {who: _best(r)["rps"] for who, r in runs.items()}
    one = best["1"]
    for label, replicas in counts.items():
        n = cores if replicas == "auto" else int(replicas)
        case = f"replicas={label}, {ROWS}-row forest, concurrency {CONCURRENCY}: req/s"
        free = min(n, cores)
        results.append(
            Result(
                "replicas",
                case + " vs 1 replica",
                best[label],
                "req/s",
                baseline=one,
                baseline_name="1 replica",
                higher_is_better=True,
                goal=f">= {0.85 * free:.2f}x baseline" if n > 1 else None,
            )
        )
        results.append(
            Result(
                "replicas",
                case + " vs hand-written",
                best[label],
                "req/s",
                baseline=best["hand-written"],
                baseline_name="hand-written FastAPI, 1 process",
                higher_is_better=True,
            )
        )
    return results
