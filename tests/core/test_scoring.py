"""The scoring-script contract: static checks, loading, and get_model_path."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nbdeploy.core.bundle import BundleManifest, BundleModel
from nbdeploy.core.modelpath import get_model_path
from nbdeploy.core.schema import Schema, infer_schema
from nbdeploy.core.scoring import (
    ScriptIssue,
    ScriptReport,
    check_script,
    load_script,
)
from nbdeploy.exceptions import InvalidArgumentError, ModelNotFoundError, ScoringScriptError

GOOD = """\
import json
import numpy as np

def init():
    global model, scale
    model = {"w": 2}
    import os as _os
    scale = float(_os.environ.get("SCALE", "1"))

def run(data):
    rows = [model["w"] * x * scale for x in data if x is not None]
    class Helper:
        factor = len(rows)
        def total(self):
            return sum(rows) * self.factor
    return json.loads(json.dumps({"result": rows, "n": Helper().total(), "f": __file__}))
"""


def _src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.fixture
def clean_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restore sys.path and drop the modules a test imported."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_good_script_is_ok() -> None:
    report = check_script(GOOD)
    assert report.ok, str(report)
    assert report.errors == ()
    assert report.warnings == ()
    assert report.path is None
    assert not report.raw
    report.raise_for_errors()  # no error: does not raise


def test_syntax_error_reports_line() -> None:
    report = check_script("def init():\n    pass\n\ndef run(data)\n    return data\n")
    assert not report.ok
    assert len(report.errors) == 1
    assert report.errors[0].line == 4
    assert "syntax error" in report.errors[0].message
    with pytest.raises(ScoringScriptError, match="line 4: syntax error"):
        report.raise_for_errors()


@pytest.mark.parametrize(
    ("source", "line", "needle"),
    [
        pytest.param("def init(): pass\n", None, "no top-level run(data)", id="missing-run"),
        pytest.param("def run(data): pass\n", None, "no top-level init()", id="missing-init"),
        pytest.param(
            "def init(): pass\ndef run(): pass\n", 2, "run() takes 0 required", id="run-no-arg"
        ),
        pytest.param(
            "def init(): pass\ndef run(a, b): pass\n", 2, "takes 2 required", id="run-two-args"
        ),
        pytest.param(
            "def init(path): pass\ndef run(a): pass\n", 1, "init() takes 1", id="init-with-arg"
        ),
        pytest.param(
            "def init(): pass\ndef run(a, *, k): pass\n", 2, "keyword-only", id="run-kwonly"
        ),
        pytest.param("async def init(): pass\ndef run(a): pass\n", 1, "async def", id="async-init"),
        pytest.param(
            "def init(): pass\nclass K:\n    def run(self, data): pass\n",
            None,
            "no top-level run(data)",
            id="run-only-a-method",
        ),
    ],
)
def test_bad_shapes(source: str, line: int | None, needle: str) -> None:
    report = check_script(source)
    assert not report.ok
    matching = [e for e in report.errors if needle in e.message]
    assert matching, [str(e) for e in report.errors]
    assert matching[0].line == line


@pytest.mark.parametrize(
    "signature",
    ["data", "data, method='predict'", "*args", "data, *, method=None", "data, /", "d, **kw"],
)
def test_accepted_run_signatures(signature: str) -> None:
    assert check_script(f"def init(): pass\ndef run({signature}): pass\n").ok


def test_notebook_names_and_undefined_names() -> None:
    source = _src(
        """
        import pandas as pd

        def init():
            global model
            model = trained_model            # line 5: only in the notebook

        def run(data):
            frame = pd.DataFrame(data, columns=feature_names)   # line 8: notebook
            return [prediction_of(r) for r in frame.itertuples()]  # line 9: typo
        """
    )
    report = check_script(source, known_names={"trained_model", "feature_names", "pd"})
    assert report.notebook_names == ("feature_names", "trained_model")
    assert report.undefined_names == ("prediction_of",)
    assert [(e.line, e.message) for e in report.errors] == [
        (5, "name 'trained_model' is only defined in the notebook; the service will not have it"),
        (8, "name 'feature_names' is only defined in the notebook; the service will not have it"),
        (9, "undefined name 'prediction_of'"),
    ]
    with pytest.raises(ScoringScriptError) as info:
        report.raise_for_errors()
    assert "3 errors" in str(info.value)
    assert info.value.hint is not None
    assert "trained_model" in info.value.hint


def test_scopes_that_define_names() -> None:
    source = _src(
        """
        from os import path as p
        try:
            import cPickle as pickle
        except ImportError:
            import pickle
        THRESHOLD = 0.5

        def init():
            global model
            model = pickle

        def helper(x):
            total = 0
            def inner():
                nonlocal total
                total += x
            inner()
            return total, {k: v for k, v in zip("ab", (1, 2))}, (lambda y: y + x)(1)

        def run(data):
            with open(p.join("a", "b")) as fh, open(__file__) as me:
                pass
            if (n := len(data)) > THRESHOLD:
                return model, helper(n), fh, me, [j for i in data for j in i]
            for e in data:
                pass
            try:
                pass
            except ValueError as err:
                return err, e
            return print, super, Exception
        """
    )
    report = check_script(source)
    assert report.ok, str(report)


def test_star_import_skips_name_checks_with_a_warning() -> None:
    report = check_script("from math import *\ndef init(): pass\ndef run(d): return sqrt(d)\n")
    assert report.ok
    assert report.warnings[0].line == 1
    assert "import *" in report.warnings[0].message


def test_duplicate_definition_warns_and_last_wins() -> None:
    report = check_script("def init(): pass\ndef run(): pass\ndef run(data): pass\n")
    assert report.ok
    assert report.warnings == (
        ScriptIssue(3, "run() is defined again (first on line 2); the last definition wins"),
    )


def test_rawhttp_detection() -> None:
    source = _src(
        """
        from nbdeploy import rawhttp

        def init(): pass

        @rawhttp
        def run(request):
            return request
        """
    )
    assert check_script(source).raw
    dotted = "import nbdeploy\ndef init(): pass\n@nbdeploy.rawhttp()\ndef run(r): return r\n"
    assert check_script(dotted).raw


def test_check_script_from_paths(tmp_path: Path) -> None:
    path = tmp_path / "score.py"
    path.write_text(GOOD, encoding="utf-8")
    assert check_script(path).path == str(path)
    assert check_script(str(path)).ok
    with pytest.raises(ScoringScriptError, match="does not exist"):
        check_script(tmp_path / "nope.py")
    with pytest.raises(ScoringScriptError, match="does not exist"):
        check_script(str(tmp_path / "nope.py"))


def test_report_round_trip_and_str() -> None:
    report = check_script("def init(): pass\ndef run(d): return x\n", known_names=["y"])
    assert ScriptReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    assert "line 2: undefined name 'x'" in str(report)


def test_load_script_init_run_round_trip(tmp_path: Path, clean_imports: None) -> None:
    del clean_imports
    (tmp_path / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "__init__.py").write_text("OFFSET = 1\n")
    script_path = tmp_path / "score.py"
    script_path.write_text(
        _src(
            """
            import helpers

            def init():
                global offset
                from pkg import OFFSET
                offset = OFFSET

            def run(data):
                return [helpers.double(x) + offset for x in data]
            """
        )
    )
    script = load_script(script_path, source_dir=src)
    assert script.path == script_path.resolve()
    assert not script.raw
    assert script.input_schema is None
    assert script.output_schema is None
    script.init()
    assert script.run([1, 2]) == [3, 5]
    assert sys.modules[script.module.__name__] is script.module
    again = load_script(script_path)
    assert again.module is not script.module  # unique names: scripts never clash
    named = load_script(script_path, module_name="my_score_module")
    assert named.module.__name__ == "my_score_module"


def test_load_script_reads_decorator_attributes(tmp_path: Path, clean_imports: None) -> None:
    del clean_imports
    schema = infer_schema(np.zeros((2, 3)))
    script_path = tmp_path / "score.py"
    script_path.write_text(
        _src(
            f"""
            def init(): pass

            def run(request):
                return request

            run.__nbdeploy_rawhttp__ = True
            run.__nbdeploy_input_schema__ = {schema.to_dict()!r}
            """
        )
    )
    script = load_script(script_path)
    assert script.raw
    assert isinstance(script.input_schema, Schema)
    assert script.input_schema == schema
    assert script.output_schema is None


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        pytest.param("def run(data): pass\n", "init() is not defined", id="no-init"),
        pytest.param("def init(): pass\nrun = 3\n", "run() is not callable", id="run-not-callable"),
        pytest.param(
            "def init(): pass\n\nimport no_such_module_abc\n",
            "failed (line 3): ModuleNotFoundError",
            id="import-error",
        ),
        pytest.param(
            "def init(): pass\ndef run(d): pass\nrun.__nbdeploy_input_schema__ = 5\n",
            "expected a Schema",
            id="bad-schema-attr",
        ),
    ],
)
def test_load_script_errors_name_the_file(
    tmp_path: Path, clean_imports: None, source: str, needle: str
) -> None:
    del clean_imports
    script_path = tmp_path / "my_score.py"
    script_path.write_text(source)
    before = set(sys.modules)
    with pytest.raises(ScoringScriptError) as info:
        load_script(script_path, module_name="broken_score_module")
    assert needle in str(info.value)
    assert "my_score.py" in str(info.value)
    assert "broken_score_module" not in sys.modules
    assert set(sys.modules) - before == set()


def test_load_script_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScoringScriptError, match="does not exist"):
        load_script(tmp_path / "score.py")


def _make_bundle(root: Path, models: dict[tuple[str, int], list[str]]) -> Path:
    """A bundle folder with the contract's layout and manifest (no server files needed)."""
    entries = []
    for (name, version), files in models.items():
        folder = root / "models" / name / str(version)
        for rel in files:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(rel)
        entries.append(BundleModel(name, version, "python", None, tuple(files), "sha256:0"))
    manifest = BundleManifest(models=tuple(entries), environment={})
    (root / "bundle.json").write_text(json.dumps(manifest.to_dict()))
    return root


@pytest.fixture
def no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NBDEPLOY_MODEL_DIR", "AZUREML_MODEL_DIR", "NBDEPLOY_BUNDLE_DIR"):
        monkeypatch.delenv(var, raising=False)


def test_single_file_model(tmp_path: Path, no_model_env: None) -> None:
    del no_model_env
    bundle = _make_bundle(tmp_path, {("iris", 3): ["model.pkl"]})
    model_dir = bundle / "models" / "iris" / "3"
    expected = model_dir / "model.pkl"
    assert get_model_path("iris", model_dir=model_dir) == expected
    assert get_model_path(model_dir=model_dir) == expected
    assert get_model_path("iris", 3, model_dir=model_dir) == expected
    with pytest.raises(ModelNotFoundError, match=r"no version 2.*it has 3"):
        get_model_path("iris", 2, model_dir=model_dir)
    with pytest.raises(ModelNotFoundError, match=r"no model 'wine'.*holds: iris"):
        get_model_path("wine", model_dir=model_dir)


def test_folder_model_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_model_env: None
) -> None:
    del no_model_env
    bundle = _make_bundle(tmp_path, {("bert", 1): ["config.json", "weights/w.bin"]})
    model_dir = bundle / "models" / "bert" / "1"
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    assert get_model_path("bert") == model_dir
    monkeypatch.setenv("NBDEPLOY_MODEL_DIR", str(model_dir))
    assert get_model_path() == model_dir


def test_multi_model_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_model_env: None
) -> None:
    del no_model_env
    bundle = _make_bundle(
        tmp_path,
        {("iris", 1): ["a.pkl"], ("iris", 2): ["b.pkl"], ("onnxy", 5): ["m.onnx", "x.txt"]},
    )
    monkeypatch.setenv("NBDEPLOY_MODEL_DIR", str(bundle / "models"))
    assert get_model_path("iris") == bundle / "models" / "iris" / "2" / "b.pkl"
    assert get_model_path("iris", 1) == bundle / "models" / "iris" / "1" / "a.pkl"
    assert get_model_path("onnxy") == bundle / "models" / "onnxy" / "5"
    with pytest.raises(InvalidArgumentError, match=r"3 models \(iris:1, iris:2, onnxy:5\)"):
        get_model_path()
    with pytest.raises(ModelNotFoundError, match="holds: iris, onnxy"):
        get_model_path("wine")


def test_bundle_dir_variable_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_model_env: None
) -> None:
    del no_model_env
    real = _make_bundle(tmp_path / "real", {("m", 1): ["f.bin"]})
    other = _make_bundle(tmp_path / "other", {("x", 1): ["g.bin"]})
    monkeypatch.setenv("NBDEPLOY_MODEL_DIR", str(other / "models" / "x" / "1"))
    monkeypatch.setenv("NBDEPLOY_BUNDLE_DIR", str(real))
    assert get_model_path("m") == real / "models" / "m" / "1" / "f.bin"


def test_without_manifest_uses_the_layout(tmp_path: Path, no_model_env: None) -> None:
    del no_model_env
    for version in (1, 4):
        (tmp_path / "models" / "iris" / str(version)).mkdir(parents=True)
    models = tmp_path / "models"
    assert get_model_path("iris", model_dir=models) == models / "iris" / "4"
    assert get_model_path(model_dir=models) == models
    assert get_model_path("iris", model_dir=models / "iris" / "1") == models / "iris" / "1"
    with pytest.raises(ModelNotFoundError, match="holds: iris"):
        get_model_path("wine", model_dir=models)


def test_outside_a_service(no_model_env: None) -> None:
    del no_model_env
    with pytest.raises(InvalidArgumentError, match="NBDEPLOY_MODEL_DIR"):
        get_model_path("iris")
