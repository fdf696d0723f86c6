"""The core stays light: importing every module of nbdeploy.core pulls in no front,
server, target or model framework (checked in a fresh interpreter), and no core module
imports a higher layer, not even inside a function."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

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


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every absolute module an ``import``/``from`` statement in ``path`` names."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "nbdeploy" and node.level == 0:
            # from nbdeploy import notebook, config: judge each name, not the package
            found.extend((node.lineno, f"nbdeploy.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level >= 2:  # from ..x import y
            found.append((node.lineno, "nbdeploy." + (node.module or "")))
    return found


def _above_core(module: str) -> bool:
    if any(module == p or module.startswith(p + ".") for p in (*HIGHER_LAYERS, "nbdeploy.cli")):
        return True
    # The public API layer: nbdeploy._api, nbdeploy._service ... (and the package itself).
    return module == "nbdeploy" or module.startswith("nbdeploy._")


def test_no_core_module_imports_a_higher_layer_even_lazily() -> None:
    root = Path(nbdeploy.core.__file__).parent
    offenders = [
        f"{path.name}:{line}: {module}"
        for path in sorted(root.rglob("*.py"))
        for line, module in _imported_modules(path)
        if _above_core(module)
    ]
    assert offenders == []


def test_the_import_scan_sees_lazy_imports(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "def show():\n"
        "    from nbdeploy.notebook.profile_view import mimebundle\n"
        "    import nbdeploy.targets.local\n"
        "    from nbdeploy import _api, config\n"
        "    from ..server import app\n"
    )
    modules = [m for _, m in _imported_modules(source)]
    assert [m for m in modules if _above_core(m)] == [
        "nbdeploy.notebook.profile_view",
        "nbdeploy.targets.local",
        "nbdeploy._api",
        "nbdeploy.server",
    ]
