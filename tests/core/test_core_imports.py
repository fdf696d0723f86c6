"""The core stays light: importing every module of nbdeploy.core pulls in no front,
server, target or model framework (checked in a fresh interpreter). That no core
module imports a higher layer, not even inside a function, is the layers contract of
``lint-imports`` (pyproject.toml, ``[tool.importlinter]``)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import nbdeploy.core

FORBIDDEN = (
    "IPython",
    "ipywidgets",
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

#: nbdeploy packages above the core: importing ``nbdeploy.core`` must not load them.
HIGHER_LAYERS = ("nbdeploy.notebook", "nbdeploy.lab", "nbdeploy.server", "nbdeploy.targets")

CHECK = """
import importlib, json, pkgutil, sys
import nbdeploy.core
modules = ["nbdeploy.core"] + [
    info.name for info in pkgutil.walk_packages(nbdeploy.core.__path__, "nbdeploy.core.")
]
for name in modules:
    importlib.import_module(name)
forbidden = json.loads(sys.argv[1])
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in forbidden)
layers = json.loads(sys.argv[2])
above = sorted(m for m in sys.modules if any(m == p or m.startswith(p + ".") for p in layers))
print(json.dumps({"modules": modules, "forbidden": loaded, "higher_layers": above}))
"""


def test_core_modules_import_no_heavy_or_front_libraries() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK, json.dumps(FORBIDDEN), json.dumps(HIGHER_LAYERS)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(result.stdout)
    expected = {
        "nbdeploy.core." + info.name for info in pkgutil.iter_modules(nbdeploy.core.__path__)
    }
    assert expected <= set(report["modules"])
    for mine in ("workspace", "registry", "frameworks", "services", "hashing"):
        assert f"nbdeploy.core.{mine}" in report["modules"]
    assert report["forbidden"] == []
    assert report["higher_layers"] == []
