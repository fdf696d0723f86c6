"""Fixtures for the local-target tests: real server processes on 127.0.0.1.

Bundles are built through the real core (``registry.register`` + ``build_bundle``)
from a scikit-learn Ridge fitted on the diabetes data. Every fixture that starts a
process stops it in its finalizer: services are deleted (by PID, through the target)
and the workspace's warm-start server is shut down by PID.
"""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nbdeploy.core.bundle import Bundle, InferenceConfig, build_bundle
from nbdeploy.core.workspace import Workspace
from nbdeploy.targets.local import LocalTarget
from nbdeploy.targets.process.supervisor import ProcessId, terminate
from nbdeploy.targets.process.warm import shutdown_warm_server

#: A scoring script answering with the predictions and a tag telling generations apart.
SCORE = """
import os
import pickle

import numpy as np

model = None


def init():
    global model
    {init_extra}
    folder = os.environ["AZUREML_MODEL_DIR"]
    with open(os.path.join(folder, "model.pkl"), "rb") as fh:
        model = pickle.load(fh)


def run(data):
    return {{"tag": {tag!r}, "predictions": model.predict(np.asarray(data, dtype=float))}}
"""


@pytest.fixture(scope="session")
def diabetes() -> tuple[Any, np.ndarray]:
    """A fitted ``Ridge`` on the diabetes data and a few input rows."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    return Ridge().fit(x, y), x[:3]


BundleFactory = Callable[..., Bundle]


@pytest.fixture
def make_bundle(workspace: Workspace, diabetes: tuple[Any, np.ndarray]) -> BundleFactory:
    """Build a bundle for service ``svc`` under the workspace: ``make_bundle(tag=...,
    init_extra=...)``; the model is registered once per workspace."""
    model, rows = diabetes
    registered: list[Any] = []

    def make(tag: str = "v1", init_extra: str = "pass", service: str = "svc") -> Bundle:
        if not registered:
            registered.append(workspace.registry.register(model, "diabetes", sample_input=rows))
        scripts = workspace.path / "scripts"
        scripts.mkdir(parents=True, exist_ok=True)
        script = scripts / f"score-{tag}-{uuid.uuid4().hex[:6]}.py"
        script.write_text(
            textwrap.dedent(SCORE).format(tag=tag, init_extra=init_extra), encoding="utf-8"
        )
        dest = Path(workspace.bundles_dir) / service / uuid.uuid4().hex[:12]
        dest.parent.mkdir(parents=True, exist_ok=True)
        return build_bundle(registered, InferenceConfig(entry_script=str(script)), dest)

    return make


@pytest.fixture
def target(workspace: Workspace) -> Iterator[LocalTarget]:
    """The local target on this test's workspace; stops everything it started."""
    local = LocalTarget(workspace)
    yield local
    for record in workspace.services.list():
        for key in ("process", "next"):
            info = record.config.get(key)
            if isinstance(info, Mapping):
                terminate(ProcessId.from_dict(info), 5.0)
        local.delete(record.name)
    shutdown_warm_server(workspace)
