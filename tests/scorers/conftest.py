"""Fixtures for the built-in scorer tests: bundles served in-process (TestClient) and
real local services, each in this test's own workspace."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from nbdeploy.core.bundle import Bundle, InferenceConfig, build_bundle
from nbdeploy.core.environment import Environment
from nbdeploy.core.registry import ModelVersion
from nbdeploy.core.workspace import Workspace
from nbdeploy.server import create_app

_SERVER_VARIABLES = ("NBDEPLOY_MODEL_DIR", "AZUREML_MODEL_DIR", "NBDEPLOY_BUNDLE_DIR")


@pytest.fixture(autouse=True)
def _isolated_process_state() -> Iterator[None]:
    """An in-process server exports model folders and extends sys.path; undo it."""
    saved_env = {k: os.environ.get(k) for k in _SERVER_VARIABLES}
    saved_path = list(sys.path)
    try:
        yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        sys.path[:] = saved_path


@pytest.fixture
def no_code_bundle(workspace: Workspace) -> Callable[[ModelVersion], Bundle]:
    """``no_code_bundle(model_version)``: a bundle built with no scoring script."""

    def build(mv: ModelVersion) -> Bundle:
        dest = Path(workspace.bundles_dir) / "test" / uuid.uuid4().hex[:8]
        # A fixed environment: capturing one from the kernel is not what is tested.
        config = InferenceConfig(environment=Environment("e", requirements=("numpy",)))
        return build_bundle([mv], config, dest)

    return build


@pytest.fixture
def serve() -> Iterator[Callable[[Bundle], TestClient]]:
    """``serve(bundle)``: a started in-process server whose init() has finished."""
    clients: list[TestClient] = []

    def start(bundle: Bundle) -> TestClient:
        app = create_app(bundle)
        client = TestClient(app, base_url="http://localhost", raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        runtime = app.runtime
        deadline = time.monotonic() + 60
        while not runtime.wait_settled(0.05):
            assert time.monotonic() < deadline, "init() did not finish"
        assert runtime.state == "ready", runtime.failure_reason
        return client

    try:
        yield start
    finally:
        for client in reversed(clients):
            client.__exit__(None, None, None)


@pytest.fixture
def home(workspace: Workspace) -> Iterator[Workspace]:
    """The test's workspace; every service deployed in it and its warm server are
    stopped (by PID) afterwards."""
    yield workspace
    from nbdeploy.sdk.webservice import Webservice
    from nbdeploy.targets import shutdown_warm_server

    for record in workspace.services.list():
        Webservice._from_record(workspace, record).delete()
    shutdown_warm_server(workspace)


def pickle_file(obj: Any, path: Path) -> Path:
    """Write ``obj`` to ``path`` with cloudpickle (how a user saves a ``.pkl``)."""
    import cloudpickle

    with path.open("wb") as fh:
        cloudpickle.dump(obj, fh)
    return path
