"""Cold start of a local service: from the deploy call to the first 200 on ``/score``.

A scikit-learn ``Ridge`` (diabetes) registered in a fresh workspace, deployed with the
local target:

- **warm start** (the default): the workspace's warm-start server is already up (as
  after ``%load_ext nbdeploy``), so the service is a fork of a process that has
  imported FastAPI, uvicorn, pandas and scikit-learn. Goal <= 0.3 s.
- **baseline**: the plain ``python -m nbdeploy.server`` process (``warm_start=False``),
  measured in the same run: a fresh interpreter pays every import.

Each figure is the median of ``RUNS`` deployments; every service is deleted (and the
warm server shut down) before the next case. A third row reports how long the warm
server itself takes to start, the price paid once per workspace, ahead of time.
"""

from __future__ import annotations

import statistics
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from nbdeploy.core.bundle import Bundle, InferenceConfig, build_bundle
from nbdeploy.core.workspace import Workspace
from nbdeploy.targets.local import LocalConfig, LocalTarget
from nbdeploy.targets.process.warm import ensure_warm_server, shutdown_warm_server

from _common import Result

RUNS = 5

SCORE = """
import os
import pickle

import numpy as np

model = None


def init():
    global model
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"), "rb") as fh:
        model = pickle.load(fh)


def run(data):
    return model.predict(np.asarray(data, dtype=float))
"""


def _setup(root: Path) -> tuple[Workspace, Any, list[list[float]], Path]:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    workspace = Workspace(root / "ws")
    version = workspace.registry.register(Ridge().fit(x, y), "diabetes", sample_input=x[:2])
    script = root / "score.py"
    script.write_text(textwrap.dedent(SCORE), encoding="utf-8")
    return workspace, version, x[:2].tolist(), script


def _bundle(workspace: Workspace, version: Any, script: Path) -> Bundle:
    dest = Path(workspace.bundles_dir) / "bench" / uuid.uuid4().hex[:12]
    dest.parent.mkdir(parents=True, exist_ok=True)
    return build_bundle([version], InferenceConfig(entry_script=str(script)), dest)


def _cold_starts(
    target: LocalTarget, version: Any, script: Path, rows: list[list[float]], warm: bool
) -> list[float]:
    times: list[float] = []
    for _ in range(RUNS):
        bundle = _bundle(target.workspace, version, script)
        started = time.perf_counter()
        record = target.deploy("bench", bundle, LocalConfig(warm_start=warm))
        assert record.scoring_uri is not None
        response = requests.post(record.scoring_uri, json={"data": rows}, timeout=30)
        elapsed = time.perf_counter() - started
        target.delete("bench")
        if response.status_code != 200:
            raise RuntimeError(f"scoring failed: {response.status_code} {response.text}")
        times.append(elapsed)
    return times


def run() -> list[Result]:
    """Median cold start with warm start vs the plain process."""
    with tempfile.TemporaryDirectory(prefix="nbd-cold-") as tmp:
        workspace, version, rows, script = _setup(Path(tmp))
        target = LocalTarget(workspace)
        try:
            started = time.perf_counter()
            ensure_warm_server(workspace, wait=True)
            warm_server_start = time.perf_counter() - started
            warm = _cold_starts(target, version, script, rows, warm=True)
            shutdown_warm_server(workspace)
            plain = _cold_starts(target, version, script, rows, warm=False)
        finally:
            target.delete("bench")
            shutdown_warm_server(workspace)
    return [
        Result(
            "coldstart",
            f"sklearn Ridge: deploy -> first 200 (warm start, median of {RUNS})",
            statistics.median(warm),
            "s",
            baseline=statistics.median(plain),
            baseline_name="python -m nbdeploy.server",
            goal="<= 0.3 s",
        ),
        Result(
            "coldstart",
            "warm-start server start-up (once per workspace, ahead of time)",
            warm_server_start,
            "s",
        ),
    ]


if __name__ == "__main__":
    for result in run():
        print(result)
