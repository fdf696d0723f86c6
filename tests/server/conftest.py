"""Fixtures for the scoring-server tests: a real scikit-learn model trained on the
diabetes data, bundle folders in tmp_path, started in-process apps."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from starlette.testclient import TestClient

from nbdeploy import compat
from nbdeploy.server import ServerOptions, create_app

from .bundles import wait_settled, write_bundle


@pytest.fixture(scope="session")
def diabetes() -> tuple[Ridge, pd.DataFrame]:
    """A Ridge regression trained on the diabetes data, and its feature frame."""
    data = load_diabetes(as_frame=True)
    features: pd.DataFrame = data.frame.drop(columns=["target"])
    # Fitted on an array: the scoring script predicts from np.asarray(data) whatever
    # the schema turned the request into.
    model = Ridge(alpha=0.1).fit(features.to_numpy(), data.frame["target"].to_numpy())
    return model, features


@pytest.fixture
def make_bundle(tmp_path: Path) -> Callable[..., Path]:
    """``make_bundle(score, **kwargs)``: a bundle folder in this test's tmp_path."""
    counter = iter(range(1000))

    def make(score: str, **kwargs: Any) -> Path:
        root = tmp_path / f"b{next(counter)}"
        root.mkdir()
        return write_bundle(root, score, **kwargs)

    return make


@pytest.fixture(autouse=True)
def _isolated_process_state() -> Iterator[None]:
    """The server exports model folders, extends sys.path and installs the compat
    finder; undo it after each test."""
    saved_env = {k: os.environ.get(k) for k in _SERVER_VARIABLES}
    saved_path = list(sys.path)
    try:
        yield
    finally:
        # The server puts the azureml/inference_schema stand-ins on sys.meta_path.
        compat.uninstall()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        sys.path[:] = saved_path


_SERVER_VARIABLES = ("NBDEPLOY_MODEL_DIR", "AZUREML_MODEL_DIR", "NBDEPLOY_BUNDLE_DIR")


@pytest.fixture
def serve_app() -> Iterator[Callable[..., TestClient]]:
    """``serve_app(bundle, settings=None, wait=True)``: a started TestClient."""
    stack: list[TestClient] = []

    def start(
        bundle: Path, settings: ServerOptions | None = None, *, wait: bool = True
    ) -> TestClient:
        app = create_app(bundle, settings)
        client = TestClient(app, base_url="http://localhost", raise_server_exceptions=False)
        client.__enter__()
        stack.append(client)
        if wait:
            wait_settled(app)
        return client

    try:
        yield start
    finally:
        for client in reversed(stack):
            client.__exit__(None, None, None)
