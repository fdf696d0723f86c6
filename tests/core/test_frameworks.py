"""Framework handlers: detection without imports, file detection, save/load round trips."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from nbdeploy.core import frameworks
from nbdeploy.core.frameworks import (
    HANDLERS,
    FrameworkHandler,
    PythonHandler,
    detect_files,
    detect_handler,
    get_handler,
    handler_for,
    register_handler,
)
from nbdeploy.core.hashing import hash_file
from nbdeploy.core.workspace import Workspace


def test_table_order_and_names() -> None:
    assert [h.name for h in HANDLERS] == [
        "torch",
        "onnx",
        "xgboost",
        "lightgbm",
        "sklearn",
        "python",
    ]
    assert get_handler("custom") is not None
    assert get_handler("nope") is None


def test_detects_sklearn(sklearn_model: Any, sklearn_pipeline: Any) -> None:
    assert detect_handler(sklearn_model).name == "sklearn"
    assert detect_handler(sklearn_pipeline).name == "sklearn"


def test_detects_onnx() -> None:
    from onnx import helper

    graph = helper.make_graph([], "empty", [], [])
    assert detect_handler(helper.make_model(graph)).name == "onnx"


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param({"a": 1}, id="dict"),
        pytest.param(lambda x: x, id="lambda"),
        pytest.param(len, id="builtin"),
        pytest.param(int, id="class"),
        pytest.param(b"bytes", id="bytes"),
    ],
)
def test_everything_else_is_python(obj: Any) -> None:
    assert detect_handler(obj).name == "python"


def test_detection_never_imports_a_framework() -> None:
    code = (
        "import sys\n"
        "from nbdeploy.core.frameworks import detect_handler\n"
        "assert detect_handler({'a': 1}).name == 'python'\n"
        "assert detect_handler(object()).name == 'python'\n"
        "heavy = {'sklearn', 'onnx', 'torch', 'xgboost', 'lightgbm'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# torch (not installed here): a stand-in module exercises the handler's plumbing


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    torch = types.ModuleType("torch")
    nn = types.ModuleType("torch.nn")

    class Module:
        pass

    Module.__module__ = "torch.nn"
    nn.Module = Module  # type: ignore[attr-defined]
    torch.nn = nn  # type: ignore[attr-defined]
    torch.__version__ = "9.9.9"  # type: ignore[attr-defined]
    calls: dict[str, Any] = {}

    def save(obj: Any, f: Any, pickle_module: Any) -> None:
        calls["save"] = pickle_module
        pickle_module.dump(obj, f)

    def load(path: str, weights_only: bool) -> Any:
        calls["load"] = weights_only
        import pickle

        with open(path, "rb") as fh:
            return pickle.load(fh)

    torch.save = save  # type: ignore[attr-defined]
    torch.load = load  # type: ignore[attr-defined]
    torch.calls = calls  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch.nn", nn)
    return torch


def test_torch_is_not_detected_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert not get_handler("torch").detect(object())  # type: ignore[union-attr]
    assert "torch" not in sys.modules


def test_torch_module_is_saved_with_torch_and_cloudpickle(
    fake_torch: types.ModuleType, workspace: Workspace
) -> None:
    import cloudpickle

    net = fake_torch.nn.Module()
    net.weight = [1.0, 2.0]
    assert detect_handler(net).name == "torch"
    mv = workspace.registry.register(net, "net")
    assert (mv.framework, mv.framework_version, mv.files) == ("torch", "9.9.9", ("model.pt",))
    assert fake_torch.calls["save"] is cloudpickle
    loaded = mv.load()
    assert loaded.weight == [1.0, 2.0]
    assert fake_torch.calls["load"] is False  # full unpickle, after the hash check


def test_pt_files_are_torch() -> None:
    assert detect_files(["model.pt"]) == "torch"
    assert detect_files(["weights.PTH"]) == "torch"


# xgboost / lightgbm: pickled like Python, recorded under their own name


def test_module_handler_records_the_library(
    monkeypatch: pytest.MonkeyPatch, workspace: Workspace
) -> None:
    xgb = types.ModuleType("xgboost")
    xgb_sklearn = types.ModuleType("xgboost.sklearn")

    class XGBClassifier:
        def predict(self, x: list[int]) -> list[int]:
            return [1 for _ in x]

    XGBClassifier.__module__ = "xgboost.sklearn"
    XGBClassifier.__qualname__ = "XGBClassifier"
    xgb_sklearn.XGBClassifier = XGBClassifier  # type: ignore[attr-defined]
    xgb.__version__ = "2.0.3"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "xgboost", xgb)
    monkeypatch.setitem(sys.modules, "xgboost.sklearn", xgb_sklearn)

    model = XGBClassifier()
    assert detect_handler(model).name == "xgboost"
    mv = workspace.registry.register(model, "boost")
    assert (mv.framework, mv.framework_version, mv.files) == ("xgboost", "2.0.3", ("model.pkl",))
    assert mv.load().predict([0, 0]) == [1, 1]


def test_module_handler_ignores_absent_libraries() -> None:
    handler = get_handler("lightgbm")
    assert handler is not None
    assert "lightgbm" not in sys.modules
    assert not handler.detect(object())


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(["model.onnx"], "onnx", id="onnx"),
        pytest.param(["model.ONNX"], "onnx", id="onnx-upper"),
        pytest.param(["model.pkl"], "python", id="pkl"),
        pytest.param(["m.pickle"], "python", id="pickle"),
        pytest.param(["m.joblib"], "python", id="joblib"),
        pytest.param(["model.onnx", "labels.txt"], "onnx", id="onnx-plus-labels"),
        pytest.param(["sub/model.pkl", "vocab.json"], "python", id="nested-pkl"),
        pytest.param(["a.pkl", "b.pkl"], "custom", id="two-pickles"),
        pytest.param(["a.onnx", "b.pt"], "custom", id="two-frameworks"),
        pytest.param(["weights.bin"], "custom", id="unknown"),
        pytest.param([], "custom", id="empty"),
    ],
)
def test_detect_files(files: list[str], expected: str) -> None:
    assert detect_files(files) == expected


@pytest.mark.parametrize(
    ("framework", "files", "expected"),
    [
        pytest.param("sklearn", ["model.pkl"], "sklearn", id="known"),
        pytest.param("xgboost", ["model.pkl"], "xgboost", id="module"),
        pytest.param("tensorflow", ["model.pkl"], "python", id="unknown-pickle"),
        pytest.param("tensorflow", ["saved_model.pb"], "custom", id="unknown-files"),
        pytest.param("custom", ["model.pkl"], "custom", id="custom"),
    ],
)
def test_handler_for(framework: str, files: list[str], expected: str) -> None:
    assert handler_for(framework, files).name == expected


def test_python_save_reports_digests_of_what_it_wrote(tmp_path: Path) -> None:
    handler = PythonHandler()
    digests = handler.save_hashed({"x": list(range(1000))}, tmp_path)
    assert list(digests) == ["model.pkl"]
    assert digests["model.pkl"] == hash_file(tmp_path / "model.pkl")
    assert handler.load(tmp_path, ["model.pkl"]) == {"x": list(range(1000))}


def test_multi_file_folder_loads_as_its_path(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"a")
    (tmp_path / "b.bin").write_bytes(b"b")
    assert PythonHandler().load(tmp_path, ["a.bin", "b.bin"]) == tmp_path
    custom = get_handler("custom")
    assert custom is not None
    assert custom.load(tmp_path, ["a.bin", "b.bin"]) == tmp_path
    assert custom.load(tmp_path, ["a.bin"]) == tmp_path / "a.bin"


def test_primary_file_picks_the_only_match(tmp_path: Path) -> None:
    frameworks.dump_pickle([1], tmp_path / "model.pkl")
    (tmp_path / "notes.txt").write_text("hi")
    assert PythonHandler().load(tmp_path, ["model.pkl", "notes.txt"]) == [1]


def test_base_handler_cannot_save() -> None:
    with pytest.raises(NotImplementedError, match="cannot save"):
        FrameworkHandler().save(1, Path())


def test_register_handler_takes_precedence(workspace: Workspace) -> None:
    class Marked:
        is_mine = True

    class MineHandler(PythonHandler):
        name = "mine"

        def detect(self, obj: object) -> bool:
            return getattr(obj, "is_mine", False) is True

        def version(self) -> str | None:
            return "1.0"

    register_handler(MineHandler())
    try:
        assert detect_handler(Marked()).name == "mine"
        mv = workspace.registry.register(Marked(), "mine")
        assert (mv.framework, mv.framework_version) == ("mine", "1.0")
        assert isinstance(mv.load(), Marked)
    finally:
        HANDLERS[:] = [h for h in HANDLERS if h.name != "mine"]
    assert get_handler("mine") is None
