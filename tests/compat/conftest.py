"""Fixtures for the Azure ML compatibility tests.

In-process apps whose stand-in modules are removed again after each test (the kernel
process must never keep them), and ``schema_package``: every test that uses it runs
twice, once with the real ``inference-schema`` package (a test dependency in
``pyproject.toml``) and once with it hidden, so nbdeploy's stand-in serves the
``inference_schema`` imports.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbdeploy import compat
from tests.server.conftest import _isolated_process_state, diabetes, make_bundle, serve_app

__all__ = [
    "_isolated_process_state",
    "diabetes",
    "hide_real_package_env",
    "make_bundle",
    "real_inference_schema",
    "schema_package",
    "serve_app",
    "server_schema_package",
]

#: A ``sitecustomize`` for child processes that puts nbdeploy's stand-ins *first* on
#: ``sys.meta_path``, so the real ``inference_schema`` (installed in the venv) is hidden.
_HIDE = """
import sys
from nbdeploy import compat
sys.meta_path.insert(0, compat.ShimFinder())
"""


def _forget_inference_schema() -> None:
    for name in [m for m in sys.modules if m.split(".", 1)[0] == "inference_schema"]:
        del sys.modules[name]


def _real_package_present() -> bool:
    spec = importlib.util.find_spec("inference_schema")
    return spec is not None and spec.origin is not None and "nbdeploy" not in spec.origin


_MISSING = (
    "the real inference-schema package is not installed: "
    "`.venv/bin/pip install 'inference-schema[numpy-support,pandas-support]'` "
    "(make setup installs it with the test extras)"
)


@pytest.fixture
def real_inference_schema() -> Iterator[None]:
    """The installed inference-schema package serves the decorators (fails when it is
    missing)."""
    compat.uninstall()
    _forget_inference_schema()
    assert _real_package_present(), _MISSING
    yield
    compat.uninstall()
    _forget_inference_schema()


@pytest.fixture(params=["real", "standin"])
def schema_package(request: pytest.FixtureRequest) -> Iterator[str]:
    """``"real"``: the installed inference-schema package serves the decorators (fails
    when it is missing); ``"standin"``: it is hidden and nbdeploy's stand-in does."""
    compat.uninstall()
    _forget_inference_schema()
    if request.param == "real":
        assert _real_package_present(), _MISSING
        yield "real"
    else:
        sys.meta_path.insert(0, compat.ShimFinder())  # found before the real package
        yield "standin"
    compat.uninstall()
    _forget_inference_schema()


def hide_real_package_env(folder: Path) -> dict[str, str]:
    """Environment variables that make child Python processes (servers, the warm
    server, the check runner) use the stand-in instead of the real package."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_HIDE, encoding="utf-8")
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(folder) if not path else f"{folder}{os.pathsep}{path}"}


@pytest.fixture(params=["real", "standin"])
def server_schema_package(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Like ``schema_package``, for services in their own processes: with ``"standin"``
    every Python process started from here on (server, warm server) hides the real
    package. The service's log names the one it used ("schema decorators from ...")."""
    if request.param == "real":
        assert _real_package_present(), _MISSING
        return "inference-schema "
    for key, value in hide_real_package_env(tmp_path / "hide-inference-schema").items():
        monkeypatch.setenv(key, value)
    return "nbdeploy's stand-in"
