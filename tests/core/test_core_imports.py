"""Importing nbdeploy stays light: ``import nbdeploy``, and importing every module of
``nbdeploy.core`` and ``nbdeploy.profiling``, loads no web framework, no model
framework and nothing of Jupyter (checked in a fresh interpreter).

Which layer may import which is checked by the import-linter contracts in
``pyproject.toml``, not here.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from collections.abc import Iterable

import nbdeploy.core
import nbdeploy.profiling

HEAVY = (
    "IPython",
    "ipywidgets",
    "ipykernel",
    "jupyter_client",
    "jupyter_server",
    "jupyterlab",
    "fastapi",
    "starlette",
    "uvicorn",
    "docker",
    "kubernetes",
    "ray",
    "sklearn",
    "onnx",
    "onnxruntime",
    "torch",
)

CHECK = """
import importlib, json, pkgutil, sys
names = json.loads(sys.argv[2])
for name in names:
    importlib.import_module(name)
heavy = json.loads(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.partition(".")[0] in heavy)))
"""


def _heavy_loaded_by(modules: list[str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", CHECK, json.dumps(HEAVY), json.dumps(modules)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def _modules_of(path: Iterable[str], prefix: str) -> list[str]:
    return [prefix] + [info.name for info in pkgutil.walk_packages(path, prefix + ".")]


def test_import_nbdeploy_loads_no_heavy_library() -> None:
    assert _heavy_loaded_by(["nbdeploy"]) == []


def test_core_and_profiling_modules_load_no_heavy_library() -> None:
    modules = _modules_of(nbdeploy.core.__path__, "nbdeploy.core")
    modules += _modules_of(nbdeploy.profiling.__path__, "nbdeploy.profiling")
    for mine in ("workspace", "registry", "frameworks", "services", "hashing", "store"):
        assert f"nbdeploy.core.{mine}" in modules
    assert "nbdeploy.profiling.loadgen" in modules
    assert _heavy_loaded_by(modules) == []
