"""Registry: register objects, files and folders; get, list, tag, download, delete, verify."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbdeploy.core.hashing import hash_files
from nbdeploy.core.refs import ModelRef
from nbdeploy.core.registry import ModelVersion, Resources
from nbdeploy.core.schema import infer_schema
from nbdeploy.core.services import ServiceRecord
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import (
    IntegrityError,
    InvalidArgumentError,
    ModelInUseError,
    ModelNotFoundError,
)


def _tiny_onnx() -> Any:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


def _make_writable(path: Path) -> None:
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_register_sklearn_model(
    workspace: Workspace, sklearn_model: Any, iris_frame: pd.DataFrame
) -> None:
    import sklearn

    before = datetime.now(timezone.utc)
    mv = workspace.registry.register(sklearn_model, "iris", description="logistic")
    after = datetime.now(timezone.utc)
    assert (mv.name, mv.version) == ("iris", 1)
    assert mv.framework == "sklearn"
    assert mv.framework_version == sklearn.__version__
    assert mv.description == "logistic"
    assert mv.files == ("model.pkl",)
    assert mv.path == workspace.artifacts_dir / "iris" / "1"
    assert before <= mv.created <= after
    assert mv.created.tzinfo is not None
    assert mv.created.utcoffset() is not None
    assert mv.created.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", mv.content_hash)
    assert mv.content_hash == hash_files(mv.path, mv.files)
    loaded = mv.load()
    x = iris_frame.drop(columns="target")
    np.testing.assert_array_equal(loaded.predict_proba(x), sklearn_model.predict_proba(x))


def test_register_sklearn_pipeline(workspace: Workspace, sklearn_pipeline: Any) -> None:
    mv = workspace.registry.register(sklearn_pipeline, "pipe")
    assert mv.framework == "sklearn"
    assert type(mv.load()).__name__ == "Pipeline"


def test_register_onnx_model(workspace: Workspace) -> None:
    import onnx

    model = _tiny_onnx()
    mv = workspace.registry.register(model, "ident")
    assert mv.framework == "onnx"
    assert mv.framework_version == onnx.__version__
    assert mv.files == ("model.onnx",)
    assert mv.load() == model


def test_register_plain_objects_and_functions(workspace: Workspace) -> None:
    mv = workspace.registry.register({"weights": np.arange(5)}, "obj")
    assert mv.framework == "python"
    assert mv.framework_version == ".".join(str(p) for p in sys.version_info[:3])
    np.testing.assert_array_equal(mv.load()["weights"], np.arange(5))

    scale = 3

    def triple(x: int) -> int:
        return x * scale

    assert workspace.registry.register(triple, "fn").load()(2) == 6


def test_main_module_objects_load_in_another_process(tmp_path: Path) -> None:
    ws_path = tmp_path / "ws"
    script = textwrap.dedent(
        f"""
        from nbdeploy.core.workspace import Workspace

        class Doubler:
            def __init__(self, k):
                self.k = k
            def predict(self, x):
                return [v * self.k for v in x]

        def offset(x):
            return x + 100

        reg = Workspace({str(ws_path)!r}).registry
        reg.register(Doubler(2), "doubler")
        reg.register(offset, "offset")
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    ws = Workspace(ws_path)
    doubler = ws.registry.get("doubler").load()
    assert type(doubler).__name__ == "Doubler"
    assert doubler.predict([1, 2]) == [2, 4]
    assert ws.registry.get("offset").load()(1) == 101


def test_versions_count_up_per_name(workspace: Workspace) -> None:
    reg = workspace.registry
    assert [reg.register(i, "a").version for i in range(3)] == [1, 2, 3]
    assert reg.register(b"x", "b").version == 1
    assert reg.get("a").version == 3
    assert reg.get("a:2").load() == 1
    assert reg.get(ModelRef("a", 1)).load() == 0
    assert reg.get(ModelRef("a")).version == 3


def test_committed_files_are_read_only(workspace: Workspace) -> None:
    mv = workspace.registry.register([1], "ro")
    mode = (mv.path / "model.pkl").stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_nothing_is_left_in_staging_after_register(workspace: Workspace) -> None:
    workspace.registry.register([1], "m", sample_input=[1])
    assert list(workspace.staging_dir.iterdir()) == []


def test_unpicklable_object_is_refused_without_side_effects(workspace: Workspace) -> None:
    with pytest.raises(InvalidArgumentError, match="cannot pickle the model") as info:
        workspace.registry.register(threading.Lock(), "lock")
    assert info.value.hint is not None
    assert list(workspace.staging_dir.iterdir()) == []
    assert workspace.registry.list() == []
    assert workspace.registry.register([1], "lock").version == 1


def test_a_large_object_round_trips(workspace: Workspace) -> None:
    payload = {"coef": np.random.default_rng(1).random(1_000_000)}  # 8 MB
    mv = workspace.registry.register(payload, "big")
    assert mv.content_hash == hash_files(mv.path, mv.files)
    np.testing.assert_array_equal(mv.load()["coef"], payload["coef"])


def test_framework_override_for_objects(workspace: Workspace, sklearn_model: Any) -> None:
    reg = workspace.registry
    assert reg.register(sklearn_model, "a", framework="python").framework == "python"
    mv = reg.register({"booster": 1}, "b", framework="mylib")
    assert (mv.framework, mv.framework_version) == ("mylib", None)
    assert mv.load() == {"booster": 1}
    with pytest.raises(InvalidArgumentError, match=r"needs an onnx\.ModelProto"):
        reg.register(sklearn_model, "c", framework="onnx")
    with pytest.raises(InvalidArgumentError, match="'custom' is for files"):
        reg.register(sklearn_model, "d", framework="custom")
    with pytest.raises(InvalidArgumentError, match="invalid framework name"):
        reg.register(sklearn_model, "e", framework="has space")


def test_framework_override_for_files(workspace: Workspace, tmp_path: Path) -> None:
    import sklearn

    src = tmp_path / "model.bin"
    (tmp_path / "dump").mkdir()
    mv0 = workspace.registry.register([7], "p")
    workspace.registry.download(mv0, tmp_path / "dump")
    (tmp_path / "dump" / "model.pkl").rename(src)
    mv = workspace.registry.register(src, "sk", framework="sklearn")
    assert (mv.framework, mv.framework_version) == ("sklearn", sklearn.__version__)
    assert mv.load() == [7]  # the only file is loaded, whatever its extension


def test_register_a_file(workspace: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "weights.bin"
    src.write_bytes(b"\x00\x01" * 1000)
    mv = workspace.registry.register(src, "w")
    assert (mv.framework, mv.framework_version) == ("custom", None)
    assert mv.files == ("weights.bin",)
    assert (mv.path / "weights.bin").read_bytes() == src.read_bytes()
    assert mv.load() == mv.path / "weights.bin"


def test_register_a_file_given_as_a_string(workspace: Workspace, tmp_path: Path) -> None:
    onnx_file = tmp_path / "net.onnx"
    onnx_file.write_bytes(_tiny_onnx().SerializeToString())
    mv = workspace.registry.register(str(onnx_file), "net")
    assert mv.framework == "onnx"
    assert mv.files == ("net.onnx",)
    assert mv.load() == _tiny_onnx()


def test_register_a_folder_keeps_its_layout(workspace: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "model"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.bin").write_bytes(b"b")
    (src / "sub" / "deeper" / "c.json").write_text("{}")
    mv = workspace.registry.register(src, "folder")
    assert mv.files == ("a.txt", "sub/b.bin", "sub/deeper/c.json")
    assert mv.framework == "custom"
    assert (mv.path / "sub" / "deeper" / "c.json").read_text() == "{}"
    assert mv.load() == mv.path


def test_folder_with_one_model_file_gets_its_framework(
    workspace: Workspace, tmp_path: Path
) -> None:
    src = tmp_path / "bundle"
    src.mkdir()
    (src / "model.onnx").write_bytes(_tiny_onnx().SerializeToString())
    (src / "labels.txt").write_text("a\nb\n")
    mv = workspace.registry.register(src, "withlabels")
    assert mv.framework == "onnx"
    assert mv.load() == _tiny_onnx()


def test_joblib_file(workspace: Workspace, tmp_path: Path, sklearn_model: Any) -> None:
    import joblib

    path = tmp_path / "model.joblib"
    joblib.dump(sklearn_model, path)
    mv = workspace.registry.register(path, "jl")
    assert mv.framework == "python"
    assert type(mv.load()).__name__ == "LogisticRegression"


def test_a_string_that_is_not_a_path_is_refused(workspace: Workspace) -> None:
    with pytest.raises(InvalidArgumentError, match="not an existing file or folder") as info:
        workspace.registry.register("no/such/model.pkl", "m")
    assert info.value.hint is not None
    assert "wrap it" in info.value.hint
    with pytest.raises(InvalidArgumentError):
        workspace.registry.register("", "m")


def test_a_missing_path_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="no such file or folder"):
        workspace.registry.register(tmp_path / "missing.pkl", "m")


def test_an_empty_folder_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError, match="holds no files"):
        workspace.registry.register(tmp_path / "empty", "m")
    assert list(workspace.staging_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"tags": {"k": 1}}, r"tags\['k'\] must be a string", id="tag-value"),
        pytest.param({"tags": {1: "v"}}, "tags keys must be non-empty strings", id="tag-key"),
        pytest.param({"tags": ["k"]}, "tags must be a dict", id="tags-list"),
        pytest.param({"properties": {"p": 0.5}}, r"properties\['p'\]", id="property"),
        pytest.param({"description": 3}, "description must be a string", id="description"),
        pytest.param({"resources": {"cpu": 0}}, "cpu must be a number > 0", id="cpu-zero"),
        pytest.param({"resources": {"gpu": 1}}, "unknown resources field", id="gpu"),
        pytest.param({"resources": 2}, "resources must be", id="resources-int"),
    ],
)
def test_bad_metadata_is_refused(workspace: Workspace, kwargs: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        workspace.registry.register([1], "m", **kwargs)
    assert workspace.registry.list() == []


@pytest.mark.parametrize("name", ["", "-lead", "has space", "a/b", "x" * 129, None])
def test_bad_names_are_refused(workspace: Workspace, name: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid model name"):
        workspace.registry.register([1], name)


def test_metadata_is_stored_and_read_back(workspace: Workspace) -> None:
    mv = workspace.registry.register(
        [1],
        "meta",
        description="d",
        tags={"stage": "dev", "team": "risk"},
        properties={"auc": "0.9"},
        resources=Resources(cpu=0.5, memory_gb=2),
    )
    got = workspace.registry.get("meta:1")
    assert got == mv
    assert dict(got.tags) == {"stage": "dev", "team": "risk"}
    assert dict(got.properties) == {"auc": "0.9"}
    assert got.resources == Resources(cpu=0.5, memory_gb=2.0)
    assert workspace.registry.register([1], "meta", resources={"cpu": 1}).resources == Resources(
        cpu=1.0
    )


def test_resources_validate_and_round_trip() -> None:
    r = Resources(cpu=1, memory_gb=0.5)
    assert Resources.from_dict(r.to_dict()) == r
    assert Resources() == Resources.from_dict({})
    for bad in (-1, 0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(InvalidArgumentError):
            Resources(cpu=bad)  # type: ignore[arg-type]


def test_samples_and_schemas(workspace: Workspace, iris_frame: pd.DataFrame) -> None:
    sample_in = iris_frame.drop(columns="target").head(3)
    sample_out = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    mv = workspace.registry.register(
        {"m": 1}, "s", sample_input=sample_in, sample_output=sample_out
    )
    assert mv.input_schema == infer_schema(sample_in)
    assert mv.output_schema == infer_schema(sample_out)
    assert mv.samples_path == workspace.samples_dir / "s" / "1"
    assert sorted(p.name for p in mv.samples_path.iterdir()) == ["input.pkl", "output.pkl"]
    got = workspace.registry.get("s")
    assert got.input_schema == mv.input_schema
    assert got.output_schema == mv.output_schema
    pd.testing.assert_frame_equal(got.load_sample_input(), sample_in)
    np.testing.assert_array_equal(got.load_sample_output(), sample_out)


def test_without_samples_there_is_no_schema(workspace: Workspace) -> None:
    mv = workspace.registry.register([1], "plain")
    assert mv.input_schema is None
    assert mv.output_schema is None
    assert mv.samples_path is None
    assert mv.load_sample_input() is None
    assert mv.load_sample_output() is None


def test_model_version_round_trips_through_dict_and_json(
    workspace: Workspace, iris_frame: pd.DataFrame
) -> None:
    mv = workspace.registry.register(
        [1],
        "rt",
        tags={"a": "b"},
        properties={"p": "q"},
        sample_input=iris_frame.head(2),
        sample_output=[0, 1],
        resources={"cpu": 2, "memory_gb": 1},
    )
    data = json.loads(json.dumps(mv.to_dict()))
    again = ModelVersion.from_dict(data)
    assert again == mv
    assert again.to_dict() == mv.to_dict()
    assert hash(again) == hash(mv)
    assert again.ref == ModelRef("rt", 1)
    assert "ModelVersion(name='rt', version=1" in repr(mv)


def test_get_missing_names_the_alternatives(workspace: Workspace) -> None:
    with pytest.raises(ModelNotFoundError, match="no model named 'ghost'") as info:
        workspace.registry.get("ghost")
    assert info.value.hint is not None
    assert "no models are registered yet" in info.value.hint
    workspace.registry.register(1, "real")
    workspace.registry.register(2, "real")
    with pytest.raises(ModelNotFoundError, match="has no version 9") as info:
        workspace.registry.get("real:9")
    assert info.value.hint is not None
    assert "registered versions: 1, 2" in info.value.hint
    with pytest.raises(ModelNotFoundError) as info:
        workspace.registry.get("ghost")
    assert info.value.hint is not None
    assert "registered models: real" in info.value.hint


def _refs(models: list[ModelVersion]) -> list[str]:
    return [str(mv.ref) for mv in models]


@pytest.fixture
def populated(workspace: Workspace) -> Workspace:
    reg = workspace.registry
    reg.register(1, "a", tags={"stage": "dev", "team": "x"}, properties={"auc": "0.8"})
    reg.register(2, "a", tags={"stage": "prod", "team": "x"}, properties={"auc": "0.9"})
    reg.register(3, "b", tags={"stage": "prod"})
    reg.register(4, "b", tags={"owner": "me"})
    return workspace


def test_list_all_and_by_name(populated: Workspace) -> None:
    reg = populated.registry
    assert _refs(reg.list()) == ["a:1", "a:2", "b:1", "b:2"]
    assert _refs(reg.list(name="b")) == ["b:1", "b:2"]
    assert _refs(reg.list(name="nope")) == []
    assert _refs(reg.list(latest_only=True)) == ["a:2", "b:2"]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        pytest.param({"stage": "prod"}, ["a:2", "b:1"], id="dict"),
        pytest.param({"stage": "prod", "team": "x"}, ["a:2"], id="dict-all-must-match"),
        pytest.param([["stage", "prod"]], ["a:2", "b:1"], id="pair"),
        pytest.param([("stage", "dev")], ["a:1"], id="tuple-pair"),
        pytest.param([["team"]], ["a:1", "a:2"], id="key-list"),
        pytest.param(["owner"], ["b:2"], id="key-str"),
        pytest.param("owner", ["b:2"], id="bare-key"),
        pytest.param([["team"], ["stage", "dev"]], ["a:1"], id="mixed"),
        pytest.param({"stage": "staging"}, [], id="no-match"),
    ],
)
def test_list_by_tags(populated: Workspace, tags: Any, expected: list[str]) -> None:
    assert _refs(populated.registry.list(tags=tags)) == expected


def test_list_by_properties_and_latest_only(populated: Workspace) -> None:
    reg = populated.registry
    assert _refs(reg.list(properties={"auc": "0.8"})) == ["a:1"]
    assert _refs(reg.list(properties=[["auc"]])) == ["a:1", "a:2"]
    # latest_only keeps the newest *matching* version of each name.
    assert _refs(reg.list(tags={"stage": "prod"}, latest_only=True)) == ["a:2", "b:1"]


@pytest.mark.parametrize("bad", [[["a", "b", "c"]], [[]], [3], [["k", 1]]])
def test_bad_filters_are_refused(populated: Workspace, bad: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="bad tags filter item"):
        populated.registry.list(tags=bad)


def test_tags_with_awkward_keys(workspace: Workspace) -> None:
    key = 'we"ird.key $[0]'
    workspace.registry.register(1, "m", tags={key: "v"})
    assert _refs(workspace.registry.list(tags={key: "v"})) == ["m:1"]
    assert _refs(workspace.registry.list(tags=[key])) == ["m:1"]


def test_add_and_remove_tags(populated: Workspace) -> None:
    reg = populated.registry
    mv = reg.add_tags("a:1", {"stage": "archived", "new": "yes"})
    assert dict(mv.tags) == {"stage": "archived", "team": "x", "new": "yes"}
    assert reg.get("a:1") == mv
    mv = reg.remove_tags("a:1", ["new", "not-there"])
    assert dict(mv.tags) == {"stage": "archived", "team": "x"}
    # A ref without a version means the latest.
    assert reg.add_tags("b", {"z": "1"}).version == 2
    assert dict(reg.get("b:1").tags) == {"stage": "prod"}
    with pytest.raises(InvalidArgumentError):
        reg.add_tags("a:1", {"k": 1})  # type: ignore[dict-item]
    with pytest.raises(ModelNotFoundError):
        reg.add_tags("a:9", {"k": "v"})


def test_add_properties(populated: Workspace) -> None:
    mv = populated.registry.add_properties("a:2", {"f1": "0.7"})
    assert dict(mv.properties) == {"auc": "0.9", "f1": "0.7"}


def test_download_copies_files_and_layout(workspace: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    workspace.registry.register(src, "folder")
    out = workspace.registry.download("folder", tmp_path / "out")
    assert out == tmp_path / "out"
    assert (out / "a.txt").read_text() == "a"
    assert (out / "sub" / "b.txt").read_text() == "b"
    (out / "a.txt").write_text("writable")  # downloaded copies are the user's to change


def test_download_single_file_returns_the_file(workspace: Workspace, tmp_path: Path) -> None:
    workspace.registry.register([1, 2], "one")
    path = workspace.registry.download("one:1", tmp_path / "out")
    assert path == tmp_path / "out" / "model.pkl"
    assert path.read_bytes() == (workspace.registry.get("one").path / "model.pkl").read_bytes()


def test_download_refuses_to_overwrite_unless_asked(workspace: Workspace, tmp_path: Path) -> None:
    workspace.registry.register([1], "m")
    workspace.registry.download("m", tmp_path)
    with pytest.raises(InvalidArgumentError, match="already exists") as info:
        workspace.registry.download("m", tmp_path)
    assert info.value.hint is not None
    assert "exist_ok=True" in info.value.hint
    workspace.registry.register([2], "m")
    path = workspace.registry.download("m", tmp_path, exist_ok=True)
    import pickle

    assert pickle.loads(path.read_bytes()) == [2]


def test_download_of_tampered_files_fails_and_leaves_nothing(
    workspace: Workspace, tmp_path: Path
) -> None:
    mv = workspace.registry.register([1], "m")
    target = mv.path / "model.pkl"
    _make_writable(target)
    target.write_bytes(target.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError, match="do not match"):
        workspace.registry.download("m", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_load_refuses_changed_bytes(workspace: Workspace) -> None:
    mv = workspace.registry.register({"safe": True}, "m")
    target = mv.path / "model.pkl"
    _make_writable(target)
    # A same-size change: only the hash can tell.
    data = bytearray(target.read_bytes())
    data[-2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="do not match the registered content hash"):
        workspace.registry.get("m").load()
    with pytest.raises(IntegrityError):
        workspace.registry.verify("m:1")


def test_load_refuses_added_and_missing_files(workspace: Workspace) -> None:
    mv = workspace.registry.register([1], "m")
    (mv.path / "extra.py").write_text("import os")
    with pytest.raises(IntegrityError, match=r"unexpected: \['extra.py'\]"):
        mv.load()
    (mv.path / "extra.py").unlink()
    mv.load()
    (mv.path / "model.pkl").unlink()
    with pytest.raises(IntegrityError, match=r"missing: \['model.pkl'\]"):
        mv.load()


def test_load_refuses_a_removed_folder(workspace: Workspace) -> None:
    mv = workspace.registry.register([1], "m")
    from nbdeploy.core.staging import remove_tree

    remove_tree(mv.path)
    with pytest.raises(IntegrityError, match="has no files"):
        mv.load()


def test_tampered_sample_is_refused(workspace: Workspace) -> None:
    mv = workspace.registry.register([1], "m", sample_input=[1, 2, 3])
    assert mv.samples_path is not None
    sample = mv.samples_path / "input.pkl"
    _make_writable(sample)
    import pickle

    sample.write_bytes(pickle.dumps([4, 5, 6]))
    with pytest.raises(IntegrityError, match="does not match its hash"):
        mv.load_sample_input()


def test_delete_needs_a_version_or_all_versions(populated: Workspace) -> None:
    with pytest.raises(InvalidArgumentError, match="names no version") as info:
        populated.registry.delete("a")
    assert info.value.hint is not None
    assert "all_versions=True" in info.value.hint
    with pytest.raises(InvalidArgumentError, match="names one version"):
        populated.registry.delete("a:1", all_versions=True)
    assert len(populated.registry.list(name="a")) == 2


def test_delete_one_version_removes_its_files(populated: Workspace) -> None:
    reg = populated.registry
    mv = reg.register(5, "c", sample_input=[1])
    assert mv.samples_path is not None
    deleted = reg.delete("c:1")
    assert _refs(deleted) == ["c:1"]
    assert not mv.path.exists()
    assert not mv.samples_path.exists()
    assert not (populated.artifacts_dir / "c").exists()
    with pytest.raises(ModelNotFoundError):
        reg.get("c")
    with pytest.raises(ModelNotFoundError):
        reg.delete("c:1")


def test_delete_all_versions_and_versions_are_not_reused(populated: Workspace) -> None:
    reg = populated.registry
    assert _refs(reg.delete("a", all_versions=True)) == ["a:1", "a:2"]
    assert _refs(reg.list()) == ["b:1", "b:2"]
    assert reg.register(9, "a").version == 3
    with pytest.raises(ModelNotFoundError):
        reg.delete("zzz", all_versions=True)


def test_delete_keeps_other_versions(populated: Workspace) -> None:
    reg = populated.registry
    reg.delete(reg.get("a:1"))
    assert _refs(reg.list(name="a")) == ["a:2"]
    assert reg.get("a").load() == 2


def test_delete_is_refused_while_a_service_uses_the_version(populated: Workspace) -> None:
    reg = populated.registry
    populated.services.put(ServiceRecord("svc", "local", "Healthy", models=("a:2", "b:1")))
    with pytest.raises(ModelInUseError, match="a:2 by svc") as info:
        reg.delete("a:2")
    assert info.value.hint is not None
    assert "force=True" in info.value.hint
    with pytest.raises(ModelInUseError):
        reg.delete("a", all_versions=True)
    assert _refs(reg.list(name="a")) == ["a:1", "a:2"]
    assert _refs(reg.delete("a:1")) == ["a:1"]  # not used: fine
    assert _refs(reg.delete("a:2", force=True)) == ["a:2"]
    populated.services.delete("svc")
    assert _refs(reg.delete("b:1")) == ["b:1"]


def test_files_outside_the_workspace_are_untouched_by_delete(
    workspace: Workspace, tmp_path: Path
) -> None:
    src = tmp_path / "keep.bin"
    src.write_bytes(b"k")
    workspace.registry.register(src, "k")
    workspace.registry.delete("k:1")
    assert src.read_bytes() == b"k"
    assert os.access(src, os.W_OK)


@pytest.mark.parametrize("size", [0, 10, 3 * 1024 * 1024 + 7], ids=["empty", "small", "mmap"])
def test_copy_and_hash_match_hashlib(tmp_path: Path, size: int) -> None:
    import hashlib

    from nbdeploy.core.hashing import copy_and_hash, hash_file

    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    expected = hashlib.sha256(data).digest()
    assert hash_file(src) == expected
    assert copy_and_hash(src, tmp_path / "a.bin") == expected
    assert copy_and_hash(src, tmp_path / "b.bin", fsync=False) == expected
    assert (tmp_path / "a.bin").read_bytes() == data
    with pytest.raises(FileExistsError):
        copy_and_hash(src, tmp_path / "a.bin")


def test_content_hash_covers_names_and_layout(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"1")
    (tmp_path / "y").write_bytes(b"1")
    assert hash_files(tmp_path, ["a/x"]) != hash_files(tmp_path, ["y"])
    assert hash_files(tmp_path, ["a/x", "y"]) == hash_files(tmp_path, ["y", "a/x"])
    assert hash_files(tmp_path, ["a/x", "y"]) != hash_files(tmp_path, ["y"])
