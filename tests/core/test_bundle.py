"""Bundles: layout, manifest round-trip, hard links, atomic builds, loading."""

from __future__ import annotations

import errno
import importlib.metadata
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbdeploy.core import bundle as bundle_module
from nbdeploy.core.bundle import (
    Bundle,
    BundleManifest,
    BundleModel,
    InferenceConfig,
    build_bundle,
    builtin_scorer,
)
from nbdeploy.core.environment import Environment
from nbdeploy.core.modelpath import get_model_path
from nbdeploy.core.registry import ModelVersion
from nbdeploy.core.schema import infer_schema
from nbdeploy.core.scoring import load_script
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import (
    IntegrityError,
    InvalidArgumentError,
    ScoringScriptError,
)

SCORE = """\
import json
from pathlib import Path

from nbdeploy.core.modelpath import get_model_path

def init():
    global weights
    import helper
    weights = json.loads(Path(get_model_path("weights")).read_text())
    weights["bias"] = helper.BIAS

def run(data):
    return [weights["w"] * x + weights["bias"] for x in data]
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project folder: a scoring script and a source directory of helpers."""
    root = tmp_path / "project"
    src = root / "src"
    (src / "__pycache__").mkdir(parents=True)
    (src / "__pycache__" / "helper.cpython-311.pyc").write_bytes(b"junk")
    (src / "helper.py").write_text("BIAS = 1\n")
    (src / "data").mkdir()
    (src / "data" / "lookup.csv").write_text("a,b\n1,2\n")
    (root / "my_score.py").write_text(SCORE)
    return root


@pytest.fixture
def models(workspace: Workspace, tmp_path: Path) -> list[ModelVersion]:
    """A single-file model (two versions) and a folder model, registered for real."""
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps({"w": 2}))
    workspace.registry.register(weights, "weights")
    weights.write_text(json.dumps({"w": 3}))
    v2 = workspace.registry.register(weights, "weights")
    folder = tmp_path / "tokenizer"
    (folder / "sub").mkdir(parents=True)
    (folder / "vocab.txt").write_text("a\nb\n")
    (folder / "sub" / "merges.txt").write_text("a b\n")
    tok = workspace.registry.register(folder, "tokenizer", framework="custom")
    return [v2, tok]


@pytest.fixture
def clean_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sys, "path", list(sys.path))
    for var in ("NBDEPLOY_MODEL_DIR", "AZUREML_MODEL_DIR", "NBDEPLOY_BUNDLE_DIR"):
        monkeypatch.delenv(var, raising=False)
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before - {"helper"}:
        del sys.modules[name]
    sys.modules.pop("helper", None)


def _config(project: Path, **kwargs: Any) -> InferenceConfig:
    kwargs.setdefault("environment", Environment("env", "3.11", ("numpy==2.0.0",)))
    return InferenceConfig("my_score.py", source_directory=project / "src", **kwargs)


def _copy_script_into_src(project: Path) -> None:
    shutil.copy(project / "my_score.py", project / "src" / "my_score.py")


def test_layout_and_manifest(
    tmp_path: Path, project: Path, models: list[ModelVersion], workspace: Workspace
) -> None:
    _copy_script_into_src(project)
    config = _config(project)
    dest = tmp_path / "bundles" / "svc" / "1"
    bundle = build_bundle(models, config, dest, settings={"service_name": "svc", "workers": 2})

    assert bundle.path == dest.resolve()
    assert sorted(p.name for p in dest.iterdir()) == [
        "bundle.json",
        "models",
        "requirements.txt",
        "score.py",
        "src",
    ]
    assert (dest / "score.py").read_text() == SCORE
    assert (dest / "src" / "helper.py").read_text() == "BIAS = 1\n"
    assert (dest / "src" / "data" / "lookup.csv").is_file()
    assert not (dest / "src" / "__pycache__").exists()
    assert (dest / "models" / "weights" / "2" / "weights.json").is_file()
    assert (dest / "models" / "tokenizer" / "1" / "sub" / "merges.txt").is_file()
    assert (dest / "requirements.txt").read_text() == config.environment.to_requirements_txt()  # type: ignore[union-attr]

    raw = json.loads((dest / "bundle.json").read_text())
    assert raw["format"] == 1
    assert raw["entry_script"] == "score.py"
    assert raw["original_entry_script"] == "my_score.py"
    assert raw["source_dir"] == "src"
    assert raw["settings"] == {"service_name": "svc", "workers": 2}
    assert raw["environment"] == config.environment.to_dict()  # type: ignore[union-attr]
    assert raw["models"] == [
        {
            "name": "weights",
            "version": 2,
            "framework": models[0].framework,
            "framework_version": models[0].framework_version,
            "files": ["weights.json"],
            "content_hash": models[0].content_hash,
        },
        {
            "name": "tokenizer",
            "version": 1,
            "framework": "custom",
            "framework_version": models[1].framework_version,
            "files": sorted(models[1].files),
            "content_hash": models[1].content_hash,
        },
    ]
    assert raw["input_schema"] is None
    assert raw["output_schema"] is None

    assert BundleManifest.from_dict(raw).to_dict() == raw
    assert Bundle.load(dest) == bundle
    assert bundle.model_dir == dest.resolve() / "models"
    assert bundle.entry_script == dest.resolve() / "score.py"
    assert bundle.source_dir == dest.resolve() / "src"
    assert bundle.settings == {"service_name": "svc", "workers": 2}
    assert bundle.environment == config.environment
    assert [m.ref for m in bundle.models] == ["weights:2", "tokenizer:1"]
    assert bundle.model_env() == {
        "NBDEPLOY_MODEL_DIR": str(dest.resolve() / "models"),
        "AZUREML_MODEL_DIR": str(dest.resolve() / "models"),
        "NBDEPLOY_BUNDLE_DIR": str(dest.resolve()),
    }
    # No building leftovers next to the bundle.
    assert [p.name for p in dest.parent.iterdir()] == ["1"]


def test_model_files_are_hard_links(
    tmp_path: Path, project: Path, models: list[ModelVersion]
) -> None:
    _copy_script_into_src(project)
    bundle = build_bundle(models, _config(project), tmp_path / "b")
    for mv in models:
        for rel in mv.files:
            linked = bundle.path / "models" / mv.name / str(mv.version) / rel
            assert os.stat(linked).st_ino == os.stat(mv.path / rel).st_ino


def test_copies_when_links_are_impossible(
    tmp_path: Path, project: Path, models: list[ModelVersion], monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_script_into_src(project)

    def no_link(src: Any, dst: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(bundle_module.os, "link", no_link)
    bundle = build_bundle(models, _config(project), tmp_path / "b")
    copied = bundle.path / "models" / "weights" / "2" / "weights.json"
    assert os.stat(copied).st_ino != os.stat(models[0].path / "weights.json").st_ino
    assert json.loads(copied.read_text()) == {"w": 3}


def test_single_model_end_to_end_with_get_model_path(
    tmp_path: Path,
    project: Path,
    models: list[ModelVersion],
    clean_imports: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    del clean_imports
    _copy_script_into_src(project)
    bundle = build_bundle(models[:1], _config(project), tmp_path / "b")
    assert bundle.model_dir == bundle.path / "models" / "weights" / "2"
    for key, value in bundle.model_env().items():
        monkeypatch.setenv(key, value)
    assert get_model_path() == bundle.model_dir / "weights.json"
    script = load_script(bundle.entry_script, source_dir=bundle.source_dir)
    script.init()
    assert script.run([1, 2]) == [4, 7]  # weights.json of version 2 has w=3


def test_schemas_from_first_model_unless_given(
    tmp_path: Path, project: Path, workspace: Workspace
) -> None:
    _copy_script_into_src(project)
    sample = pd.DataFrame({"x": [1.0, 2.0], "name": ["a", "b"]})
    mv = workspace.registry.register(
        {"w": 1}, "withschema", sample_input=sample, sample_output=np.array([0.5, 1.5])
    )
    assert mv.input_schema is not None
    bundle = build_bundle([mv], _config(project), tmp_path / "b1")
    assert bundle.input_schema == mv.input_schema
    assert bundle.output_schema == mv.output_schema
    override = infer_schema(np.zeros((1, 4), dtype=np.float32))
    bundle2 = build_bundle([mv], _config(project), tmp_path / "b2", input_schema=override.to_dict())
    assert bundle2.input_schema == override
    assert bundle2.output_schema == mv.output_schema


def test_environment_is_captured_when_not_given(tmp_path: Path, workspace: Workspace) -> None:
    script = tmp_path / "score.py"
    script.write_text(
        "import numpy as np\n"
        "def init():\n    global model\n    model = None\n"
        "def run(data):\n    return np.asarray(data).tolist()\n"
    )
    from sklearn.linear_model import LinearRegression

    mv = workspace.registry.register(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), "lr")
    assert mv.framework == "sklearn"
    bundle = build_bundle([mv], InferenceConfig(script), tmp_path / "b")
    numpy_pin = f"numpy=={importlib.metadata.version('numpy')}"
    sklearn_pin = f"scikit-learn=={importlib.metadata.version('scikit-learn')}"
    assert bundle.environment.requirements == (numpy_pin, sklearn_pin)
    assert bundle.requirements_txt.read_text().splitlines()[1:] == [numpy_pin, sklearn_pin]


def test_failed_build_leaves_nothing(
    tmp_path: Path, project: Path, models: list[ModelVersion], monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_script_into_src(project)
    parent = tmp_path / "bundles"
    parent.mkdir()

    def broken_copytree(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    # Fails after the model files were linked and the script copied.
    monkeypatch.setattr(bundle_module.shutil, "copytree", broken_copytree)
    with pytest.raises(OSError, match="No space left"):
        build_bundle(models, _config(project), parent / "b")
    assert list(parent.iterdir()) == []


def test_tampered_model_is_refused(
    tmp_path: Path, project: Path, models: list[ModelVersion]
) -> None:
    _copy_script_into_src(project)
    file = models[1].path / "vocab.txt"
    os.chmod(file, 0o644)
    file.write_text("tampered\n")
    with pytest.raises(IntegrityError):
        build_bundle(models, _config(project), tmp_path / "b")
    assert not (tmp_path / "b").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".b")] == []
    # verify=False trusts the files (for callers that just verified them).
    assert build_bundle(models, _config(project), tmp_path / "b", verify=False).models


def test_destination_rules(tmp_path: Path, project: Path, models: list[ModelVersion]) -> None:
    _copy_script_into_src(project)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    with pytest.raises(InvalidArgumentError, match="not empty"):
        build_bundle(models, _config(project), full)
    assert sorted(p.name for p in full.iterdir()) == ["keep.txt"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(InvalidArgumentError, match="not a folder"):
        build_bundle(models, _config(project), a_file)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert build_bundle(models, _config(project), empty).path == empty.resolve()


def test_no_entry_script_and_bad_scripts(
    tmp_path: Path, project: Path, models: list[ModelVersion]
) -> None:
    assert builtin_scorer("custom") is None
    with pytest.raises(ScoringScriptError, match="no entry script") as info:
        build_bundle(models, InferenceConfig(), tmp_path / "b")
    assert info.value.hint is not None
    assert "init()" in info.value.hint
    bad = tmp_path / "bad.py"
    bad.write_text("def init():\n    pass\n")
    with pytest.raises(ScoringScriptError, match="run"):
        build_bundle(models, InferenceConfig(bad), tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_argument_errors(tmp_path: Path, project: Path, models: list[ModelVersion]) -> None:
    _copy_script_into_src(project)
    with pytest.raises(InvalidArgumentError, match="given twice"):
        build_bundle([models[0], models[0]], _config(project), tmp_path / "b")
    with pytest.raises(InvalidArgumentError, match="JSON-serializable"):
        build_bundle(models, _config(project), tmp_path / "b", settings={"x": object()})
    with pytest.raises(InvalidArgumentError, match="must be a Schema"):
        build_bundle(models, _config(project), tmp_path / "b", input_schema=3)  # type: ignore[arg-type]
    assert not (tmp_path / "b").exists()


def test_inference_config_validates_at_construction(project: Path) -> None:
    config = InferenceConfig(project / "my_score.py")
    assert config.entry_script_path == project / "my_score.py"
    with pytest.raises(ScoringScriptError, match="looked in source_directory"):
        InferenceConfig("my_score.py", source_directory=project / "src")
    with pytest.raises(ScoringScriptError, match="does not exist"):
        InferenceConfig(project / "nope.py")
    with pytest.raises(InvalidArgumentError, match="not a folder"):
        InferenceConfig(project / "my_score.py", source_directory=project / "nope")
    with pytest.raises(InvalidArgumentError, match="must be an Environment"):
        InferenceConfig(project / "my_score.py", environment="numpy")  # type: ignore[arg-type]
    # An absolute entry script may live outside the source directory.
    outside = InferenceConfig(project / "my_score.py", source_directory=project / "src")
    assert outside.entry_script_path == project / "my_score.py"
    assert InferenceConfig().entry_script_path is None
    full = InferenceConfig(
        "my_score.py", Environment("e", "3.11", ("numpy",)), source_directory=project
    )
    assert InferenceConfig.from_dict(json.loads(json.dumps(full.to_dict()))) == full
    assert full.entry_script == Path("my_score.py")
    with pytest.raises(InvalidArgumentError, match="entry_script must be a path"):
        InferenceConfig(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="unknown inference config fields"):
        InferenceConfig.from_dict({"script": "x.py"})


@pytest.fixture
def built(tmp_path: Path, project: Path, models: list[ModelVersion]) -> Path:
    _copy_script_into_src(project)
    return build_bundle(models, _config(project), tmp_path / "b").path


def _edit_manifest(bundle: Path, **changes: Any) -> None:
    path = bundle / "bundle.json"
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        pytest.param({"models": ...}, "missing field 'models'", id="no-models"),
        pytest.param({"environment": ...}, "missing field 'environment'", id="no-env"),
        pytest.param({"format": 2}, "format 2", id="future-format"),
        pytest.param({"format": "1"}, "field 'format' must be int", id="format-str"),
        pytest.param({"entry_script": "../x.py"}, "not a relative path", id="escaping-script"),
        pytest.param({"entry_script": "other.py"}, "entry script 'other.py'", id="no-script"),
        pytest.param({"source_dir": "lib"}, "source folder 'lib'", id="no-source-dir"),
        pytest.param(
            {"models": [{"name": "m", "version": 1, "framework": "python"}]},
            "(models[0]): missing field 'framework_version'",
            id="model-field",
        ),
        pytest.param({"input_schema": [1]}, "field 'input_schema' must be", id="bad-schema"),
        pytest.param(
            {
                "models": [
                    {
                        "name": "m",
                        "version": 1,
                        "framework": "python",
                        "framework_version": None,
                        "files": ["/etc/passwd"],
                        "content_hash": "sha256:0",
                    }
                ]
            },
            "file '/etc/passwd' is not a relative path",
            id="absolute-model-file",
        ),
    ],
)
def test_load_reports_the_bad_field(built: Path, changes: dict[str, Any], needle: str) -> None:
    _edit_manifest(built, **changes)
    with pytest.raises(InvalidArgumentError) as info:
        Bundle.load(built)
    assert needle in str(info.value)


def test_load_missing_files(built: Path, tmp_path: Path) -> None:
    model_file = built / "models" / "weights" / "2" / "weights.json"
    model_file.unlink()
    with pytest.raises(InvalidArgumentError, match=r"'weights.json' of model weights:2"):
        Bundle.load(built)
    (built / "bundle.json").write_text("{not json")
    with pytest.raises(InvalidArgumentError, match="cannot read it"):
        Bundle.load(built)
    (built / "bundle.json").unlink()
    with pytest.raises(InvalidArgumentError, match=r"no bundle\.json"):
        Bundle.load(built)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        Bundle.load(tmp_path / "nowhere")


def test_manifest_value_objects_round_trip() -> None:
    model = BundleModel("m", 3, "onnx", "1.15", ("a.onnx", "x/y.txt"), "sha256:ab")
    assert BundleModel.from_dict(model.to_dict()) == model
    manifest = BundleManifest(
        models=(model,),
        environment=Environment("e", "3.11").to_dict(),
        source_dir="src",
        input_schema=infer_schema([1, 2]).to_dict(),
        settings={"a": [1, 2]},
        original_entry_script="s.py",
    )
    assert BundleManifest.from_dict(json.loads(json.dumps(manifest.to_dict()))) == manifest
