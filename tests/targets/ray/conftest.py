"""Fixtures for the Ray target's tests: real Ray clusters, inside a private network
namespace (``make test-ray``).

Ray probes cloud-metadata addresses and DNS even with usage statistics off, so these
tests refuse to run where the machine's network is visible: every test marked
``ray`` fails (it is not skipped) unless the process sees only a loopback interface
and ``$HOME`` holds ``ray_bootstrap_config.yaml``. ``make test-ray`` provides both.

One workspace (and so one embedded cluster) is shared by the tests of a session;
each test deletes its services, and the cluster is stopped by its PIDs at the end.
"""

from __future__ import annotations

import socket
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nbdeploy.core.bundle import Bundle, InferenceConfig, build_bundle
from nbdeploy.core.workspace import Workspace

NAMESPACE_HINT = (
    "Ray tests run only inside a private network namespace: run `make test-ray` "
    "(unshare --net --pid --fork --mount-proc, loopback up, HOME holding "
    "ray_bootstrap_config.yaml = {})"
)

#: Answers the predictions and a tag telling bundles apart; ``init_extra`` runs in init().
SCORE = """
import os
import pickle

import numpy as np

model = None


def init():
    global model
    print("init of {tag}")
    {init_extra}
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"), "rb") as fh:
        model = pickle.load(fh)


def run(data):
    return {{"tag": {tag!r}, "predictions": model.predict(np.asarray(data, dtype=float))}}
"""


def namespace_problem() -> str | None:
    """Why this process is not in a Ray test namespace, or ``None`` when it is."""
    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        return f"this process sees the network interfaces {', '.join(interfaces)}"
    if not (Path.home() / "ray_bootstrap_config.yaml").is_file():
        return f"{Path.home()} has no ray_bootstrap_config.yaml"
    return None


@pytest.fixture(autouse=True)
def _private_network(request: pytest.FixtureRequest) -> None:
    """Fail every ``ray`` test outside its private network namespace (and import Ray
    quietly in it)."""
    if request.node.get_closest_marker("ray") is None:
        return
    problem = namespace_problem()
    if problem is not None:
        pytest.fail(f"{problem}. {NAMESPACE_HINT}", pytrace=False)
    _import_ray_quietly()


@pytest.fixture(scope="session")
def diabetes() -> tuple[Any, np.ndarray]:
    """A fitted ``Ridge`` on the diabetes data and a few input rows."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    return Ridge().fit(x, y), x[:3]


def _import_ray_quietly() -> None:
    """Import Ray Serve once with its import-time deprecation warnings silenced (they
    come from Ray's own pydantic models, not from nbdeploy, and warnings are errors
    in this test suite); later imports are cached and warn no more."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import ray.serve  # noqa: F401


@pytest.fixture(scope="session")
def ray_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """The session's workspace; its embedded cluster is stopped (by PID) at the end."""
    from nbdeploy.targets.ray import stop_cluster

    workspace = Workspace(tmp_path_factory.mktemp("ray-ws"))
    yield workspace
    stop_cluster(workspace)


BundleFactory = Callable[..., Bundle]


def bundle_factory(workspace: Workspace, model: Any, rows: np.ndarray) -> BundleFactory:
    """``make(tag=..., init_extra=..., service=...)``: a bundle of the diabetes model
    with the :data:`SCORE` script, under ``workspace``'s bundles folder."""
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


@pytest.fixture(scope="session")
def make_ray_bundle(ray_workspace: Workspace, diabetes: tuple[Any, np.ndarray]) -> BundleFactory:
    """Bundles for services of the session's workspace."""
    return bundle_factory(ray_workspace, *diabetes)
