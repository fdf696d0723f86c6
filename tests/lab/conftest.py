"""Fixtures for the lab tests: an in-process Jupyter server with ``nbdeploy.lab``.

pytest-jupyter has no entry point: its fixtures (``jp_fetch``, ``jp_serverapp`` ...)
and its async-test hooks are brought in here, so they apply to ``tests/lab`` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403
from traitlets.config import Config


@pytest.fixture
def lab_home(tmp_path: Path) -> Path:
    """The workspace folder the server extension reads in this test."""
    return tmp_path / "nbdeploy-home"


@pytest.fixture  # type: ignore[no-redef]  # overrides pytest-jupyter's fixture
def jp_server_config(lab_home: Path) -> Any:
    """Enable the nbdeploy server extension, pointed at this test's workspace."""
    return Config(
        {
            "ServerApp": {"jpserver_extensions": {"nbdeploy.lab": True}},
            "NbdeployLab": {"home": str(lab_home)},
        }
    )
