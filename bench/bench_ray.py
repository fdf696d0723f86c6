"""Ray target: throughput and latency of a service on Ray Serve with 1 and 2 replicas,
against a hand-written Ray Serve deployment of the same model on the same cluster, and
deploy -> Healthy time on a running cluster.

The hand-written deployment is what a careful engineer writes by hand: one class that
loads the cloudpickled model once and answers ``{"data": ...}`` with orjson, the same
0.1 CPU per replica as nbdeploy's default. Both go through Serve's HTTP proxy; ``wrk``
loads them at concurrency 16, interleaved, best of ``BENCH_ROUNDS``. Goal: >= 0.9x the
hand-written requests/s. Ray runs only inside a private network namespace, so this
module refuses to run elsewhere (``make bench`` runs every benchmark in one).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
from bench_serving import DURATION_S, HERE, ROUNDS, _best, _wait_200, _wrk

from _common import Result

CONCURRENCY = 16
ROWS = 10


def _check_namespace() -> None:
    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        raise RuntimeError(
            f"the Ray bench runs only in a private network namespace (this process sees "
            f"{', '.join(interfaces)}): run `make bench`"
        )


def _hand_written(model_file: Path, replicas: int) -> Any:
    """The baseline deployment (a class made here, so Ray pickles it by value)."""
    from ray import serve

    @serve.deployment(num_replicas=replicas, ray_actor_options={"num_cpus": 0.1})
    class Baseline:
        def __init__(self) -> None:
            with open(model_file, "rb") as fh:
                self.model = cloudpickle.load(fh)

        async def __call__(self, request: Any) -> Any:
            import orjson
            from starlette.responses import Response

            data = orjson.loads(await request.body())["data"]
            result = self.model.predict(np.asarray(data, dtype=np.float64))
            return Response(
                orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY),
                media_type="application/json",
            )

    return Baseline.bind()


def _measure(urls: dict[str, str], body: Path) -> dict[str, dict[str, float]]:
    for url in urls.values():
        _wait_200(url, body.read_bytes())
        _wrk(url, body, 4, duration_s=1)
    runs: dict[str, list[dict[str, float]]] = {who: [] for who in urls}
    order = list(urls)
    for round_ in range(ROUNDS):
        for who in order if round_ % 2 == 0 else reversed(order):
            runs[who].append(_wrk(urls[who], body, CONCURRENCY, DURATION_S))
    return {who: _best(r) for who, r in runs.items()}


def _results(best: dict[str, dict[str, float]], times: dict[str, float]) -> list[Result]:
    results = []
    for n in (1, 2):
        ours, theirs = best[f"nbdeploy-{n}"], best[f"hand-{n}"]
        case = f"{n} replica(s), {ROWS}-row ridge, concurrency {CONCURRENCY}"
        results.append(
            Result("ray", f"{case}: req/s", ours["rps"], "req/s", theirs["rps"],
                   "hand-written Serve", higher_is_better=True, goal=">= 0.9x baseline")
        )  # fmt: skip
        for p in ("p50", "p99"):
            results.append(
                Result("ray", f"{case}: {p}", ours[f"{p}_us"] / 1000, "ms",
                       theirs[f"{p}_us"] / 1000, "hand-written Serve")
            )  # fmt: skip
    results.append(
        Result("ray", "deploy -> Healthy on a running cluster", times["nbdeploy"], "s",
               times["hand"], "serve.run of the hand-written deployment")
    )  # fmt: skip
    return results


def run() -> list[Result]:
    _check_namespace()
    import nbdeploy
    from nbdeploy.targets.ray import RayConfig, stop_cluster

    rng = np.random.default_rng(0)
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    model = Ridge().fit(x, y)
    print(f"  ray: load average {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="nbdeploy-bench-") as tmp:
        tmpdir = Path(tmp)
        ws = nbdeploy.Workspace(tmpdir / "ws")
        body = tmpdir / "body.json"
        body.write_text(json.dumps({"data": rng.normal(size=(ROWS, 10)).round(4).tolist()}))
        model_file = tmpdir / "ridge.pkl"
        model_file.write_bytes(cloudpickle.dumps(model))
        registered = nbdeploy.register(model, "ridge", sample_input=x[:2], workspace=ws)
        try:
            urls, times = _deploy_all(ws, registered, model_file, RayConfig)
            best = _measure(urls, body)
        finally:
            stop_cluster(ws)
    return _results(best, times)


def _deploy_all(
    ws: Any, registered: Any, model_file: Path, config: Any
) -> tuple[dict[str, str], dict[str, float]]:
    import nbdeploy

    urls: dict[str, str] = {}
    times: dict[str, float] = {}
    for n in (1, 2):
        start = time.perf_counter()
        svc = nbdeploy.deploy(
            registered, name=f"ridge-{n}", score=str(HERE / "score_bench.py"),
            config=config(num_replicas=n, auth_enabled=False), workspace=ws,
        )  # fmt: skip
        times["nbdeploy"] = time.perf_counter() - start  # the second: cluster running
        urls[f"nbdeploy-{n}"] = str(svc.scoring_uri)
    from ray import serve

    base = urls["nbdeploy-1"].split("/ridge-1/")[0]
    for n in (1, 2):
        start = time.perf_counter()
        serve.run(_hand_written(model_file, n), name=f"hand-{n}", route_prefix=f"/hand-{n}")
        times["hand"] = time.perf_counter() - start
        urls[f"hand-{n}"] = f"{base}/hand-{n}"
    return urls, times
