"""No-code deployment: the built-in scoring scripts, served in-process and for real."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from starlette.testclient import TestClient

import nbdeploy
from nbdeploy import scorers
from nbdeploy.core.bundle import BUILTIN_SCORERS, Bundle, builtin_scorer
from nbdeploy.core.registry import ModelVersion
from nbdeploy.core.scoring import check_script
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import InvalidArgumentError, ScoringScriptError

from .conftest import pickle_file

BundleFactory = Callable[[ModelVersion], Bundle]
Serve = Callable[[Bundle], TestClient]


class Doubler:
    """A plain Python model with a ``predict`` method."""

    def predict(self, data: Any) -> Any:
        return [2 * x for x in data]


def add_one(data: Any) -> Any:
    """A plain function registered as a model."""
    return [x + 1 for x in data]


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns="target")


def _score(client: TestClient, body: dict[str, Any]) -> Any:
    response = client.post("/score", json=body)
    assert response.status_code == 200, response.text
    return response.json()


# --------------------------------------------------------------------------- the files


@pytest.mark.parametrize("name", scorers.NAMES)
def test_every_builtin_scorer_is_an_ordinary_scoring_script(name: str) -> None:
    path = scorers.path(name)
    assert path.is_file()
    assert check_script(path).ok, str(check_script(path))
    assert scorers.source(name) == path.read_text(encoding="utf-8")


def test_the_hook_maps_frameworks_to_the_files() -> None:
    for framework, name in BUILTIN_SCORERS.items():
        assert builtin_scorer(framework) == scorers.path(name)
    assert builtin_scorer("custom") is None
    assert builtin_scorer("torch") is None


def test_show_prints_and_copy_copies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scorers.show("sklearn")
    assert capsys.readouterr().out == scorers.source("sklearn")
    copied = scorers.copy("onnx", tmp_path)
    assert copied == tmp_path / "onnx_scorer.py"
    assert copied.read_text(encoding="utf-8") == scorers.source("onnx")
    with pytest.raises(InvalidArgumentError, match="already exists"):
        scorers.copy("onnx", copied)
    with pytest.raises(InvalidArgumentError, match="no built-in scorer 'torch'") as info:
        scorers.show("torch")
    assert info.value.hint is not None
    assert "sklearn" in info.value.hint


# --------------------------------------------------------------------------- sklearn


def test_classifier_answers_predict_proba_and_records_the_scorer(
    workspace: Workspace,
    sklearn_model: Any,
    iris_frame: pd.DataFrame,
    no_code_bundle: BundleFactory,
    serve: Serve,
) -> None:
    x = _features(iris_frame)
    mv = workspace.registry.register(sklearn_model, "iris", sample_input=x.head())
    bundle = no_code_bundle(mv)
    assert bundle.manifest.builtin_scorer == "sklearn"
    assert bundle.entry_script.read_text(encoding="utf-8") == scorers.source("sklearn")
    raw = json.loads((bundle.path / "bundle.json").read_text(encoding="utf-8"))
    assert raw["builtin_scorer"] == "sklearn"

    client = serve(bundle)
    rows = x.head(5)
    answer = _score(client, {"data": rows.to_dict(orient="records")})
    np.testing.assert_allclose(answer, sklearn_model.predict_proba(rows))
    assert len(answer[0]) == len(sklearn_model.classes_)

    # The registered schema still validates requests.
    bad = client.post("/score", json={"data": [{"sepal_length": "wide"}]})
    assert bad.status_code == 422, bad.text


def test_method_in_the_request_picks_the_prediction_method(
    workspace: Workspace,
    sklearn_model: Any,
    iris_frame: pd.DataFrame,
    no_code_bundle: BundleFactory,
    serve: Serve,
) -> None:
    x = _features(iris_frame)
    mv = workspace.registry.register(sklearn_model, "iris", sample_input=x.head())
    client = serve(no_code_bundle(mv))
    rows = x.head(4)
    records = rows.to_dict(orient="records")

    assert _score(client, {"data": records, "method": "predict"}) == (
        sklearn_model.predict(rows).tolist()
    )
    np.testing.assert_allclose(
        _score(client, {"data": records, "method": "decision_function"}),
        sklearn_model.decision_function(rows),
    )
    np.testing.assert_allclose(
        _score(client, {"data": records, "method": "predict_log_proba"}),
        sklearn_model.predict_log_proba(rows),
    )
    refused = client.post("/score", json={"data": records, "method": "fit"})
    assert refused.status_code == 400, refused.text
    message = refused.json()["message"]
    assert "'fit'" in message
    assert "predict_proba, predict, decision_function, predict_log_proba" in message
    # transform is not offered: LogisticRegression has none.
    assert "transform" not in message.split("allowed:")[1]


def test_regressor_and_pipeline(
    workspace: Workspace,
    sklearn_pipeline: Any,
    iris_frame: pd.DataFrame,
    no_code_bundle: BundleFactory,
    serve: Serve,
) -> None:
    from sklearn.linear_model import Ridge

    x = _features(iris_frame)
    ridge = Ridge().fit(x.to_numpy(), x["petal_width"].to_numpy() * 2)
    rows = x.to_numpy()[:3]
    # No sample: no schema, the rows arrive as lists.
    reg = workspace.registry.register(ridge, "ridge")
    answer = _score(serve(no_code_bundle(reg)), {"data": rows.tolist()})
    np.testing.assert_allclose(answer, ridge.predict(rows))

    pipe = workspace.registry.register(sklearn_pipeline, "pipe", sample_input=x.head())
    client = serve(no_code_bundle(pipe))
    frame = x.head(3)
    records = frame.to_dict(orient="records")
    np.testing.assert_allclose(
        _score(client, {"data": records}), sklearn_pipeline.predict_proba(frame)
    )
    assert _score(client, {"data": records, "method": "predict"}) == (
        sklearn_pipeline.predict(frame).tolist()
    )


def test_python_models(
    workspace: Workspace,
    sklearn_model: Any,
    iris_frame: pd.DataFrame,
    tmp_path: Path,
    no_code_bundle: BundleFactory,
    serve: Serve,
) -> None:
    frame = _features(iris_frame).head(3)
    x = frame.to_numpy()
    # A .pkl file is registered as framework "python"; it holds an sklearn estimator.
    file_model = workspace.registry.register(
        pickle_file(sklearn_model, tmp_path / "model.pkl"), "from-file"
    )
    assert file_model.framework == "python"
    bundle = no_code_bundle(file_model)
    assert bundle.manifest.builtin_scorer == "sklearn"
    np.testing.assert_allclose(
        _score(serve(bundle), {"data": x.tolist()}), sklearn_model.predict_proba(frame)
    )

    with_predict = workspace.registry.register(Doubler(), "doubler")
    bundle = no_code_bundle(with_predict)
    assert bundle.manifest.builtin_scorer == "python"
    assert _score(serve(bundle), {"data": [1, 2, 3]}) == [2, 4, 6]

    function = workspace.registry.register(add_one, "add-one")
    assert _score(serve(no_code_bundle(function)), {"data": [1, 2]}) == [2, 3]


def test_models_no_builtin_scorer_can_serve_fail_at_build_time(
    workspace: Workspace, tmp_path: Path, no_code_bundle: BundleFactory
) -> None:
    lookup = workspace.registry.register({"a": 1}, "lookup")
    with pytest.raises(ScoringScriptError, match="is a dict, which has no predict") as info:
        no_code_bundle(lookup)
    assert info.value.hint is not None
    assert "scoring script" in info.value.hint
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01")
    custom = workspace.registry.register(tmp_path / "weights.bin", "weights")
    with pytest.raises(ScoringScriptError, match="framework 'custom'"):
        no_code_bundle(custom)
    assert not any(Path(workspace.bundles_dir, "test").glob("*"))


# --------------------------------------------------------------------------- onnx


def _to_onnx(model: Any, n_features: int, **options: Any) -> Any:
    from skl2onnx import to_onnx

    sample = np.zeros((1, n_features), dtype=np.float32)
    return to_onnx(model, sample, target_opset=17, **options)


def test_onnx_classifier_and_regressor(
    workspace: Workspace,
    sklearn_model: Any,
    iris_frame: pd.DataFrame,
    no_code_bundle: BundleFactory,
    serve: Serve,
) -> None:
    from sklearn.linear_model import LinearRegression

    frame = _features(iris_frame)
    x = frame.to_numpy()
    rows = x[:4]
    clf = workspace.registry.register(_to_onnx(sklearn_model, 4), "iris-onnx")
    assert clf.framework == "onnx"
    bundle = no_code_bundle(clf)
    assert bundle.manifest.builtin_scorer == "onnx"
    client = serve(bundle)
    answer = _score(client, {"data": rows.tolist()})
    assert set(answer) == {"output_label", "output_probability"}
    assert answer["output_label"] == sklearn_model.predict(frame.head(4)).tolist()
    probabilities = [
        [p[str(c)] for c in sklearn_model.classes_] for p in answer["output_probability"]
    ]
    np.testing.assert_allclose(probabilities, sklearn_model.predict_proba(frame.head(4)), rtol=1e-4)
    # A single row may be sent flat; a wrong width is the request's fault.
    assert _score(client, {"data": rows[0].tolist()})["output_label"] == answer["output_label"][:1]
    refused = client.post("/score", json={"data": [[1.0, 2.0]]})
    assert refused.status_code == 400, refused.text
    assert "float" in refused.json()["message"]

    linear = LinearRegression().fit(x, x[:, 0] * 3 - x[:, 1])
    reg = workspace.registry.register(_to_onnx(linear, 4), "linear-onnx", sample_input=rows)
    answer = _score(serve(no_code_bundle(reg)), {"data": rows.tolist()})
    np.testing.assert_allclose(np.asarray(answer).ravel(), linear.predict(rows), rtol=1e-4)


def test_onnx_graph_with_two_inputs(
    workspace: Workspace, no_code_bundle: BundleFactory, serve: Serve
) -> None:
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 2])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 2])
    total = helper.make_tensor_value_info("total", TensorProto.FLOAT, [None, 2])
    product = helper.make_tensor_value_info("product", TensorProto.FLOAT, [None, 2])
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "b"], ["total"]),
            helper.make_node("Mul", ["a", "b"], ["product"]),
        ],
        "two-inputs",
        [a, b],
        [total, product],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    mv = workspace.registry.register(model, "two")
    client = serve(no_code_bundle(mv))
    answer = _score(client, {"data": {"a": [[1, 2], [3, 4]], "b": [[10, 20], [30, 40]]}})
    assert answer == {"total": [[11, 22], [33, 44]], "product": [[10, 40], [90, 160]]}
    refused = client.post("/score", json={"data": {"a": [[1, 2]], "c": [[1, 2]]}})
    assert refused.status_code == 400, refused.text
    assert "missing: b, unknown: c" in refused.json()["message"]
    refused = client.post("/score", json={"data": [[1, 2]]})
    assert refused.status_code == 400, refused.text
    assert "2 inputs" in refused.json()["message"]


# --------------------------------------------------------------------------- for real


@pytest.mark.integration
def test_deploy_without_a_script_to_a_real_local_service(
    home: Workspace, sklearn_model: Any, iris_frame: pd.DataFrame
) -> None:
    x = _features(iris_frame)
    nbdeploy.register(sklearn_model, "iris", sample_input=x.head(), workspace=home)
    svc = nbdeploy.deploy("iris", name="iris-svc", workspace=home)
    assert svc.state == "Healthy"
    rows = x.head(3)
    np.testing.assert_allclose(svc.run(rows), sklearn_model.predict_proba(rows))
    assert svc.scoring_uri is not None
    body = {"data": rows.to_dict(orient="records"), "method": "predict"}
    answer = requests.post(svc.scoring_uri, json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json() == sklearn_model.predict(rows).tolist()

    # An update with no script keeps the built-in scorer, chosen for the new model.
    onnx_model = nbdeploy.register(_to_onnx(sklearn_model, 4), "iris", workspace=home)
    svc.update(models=[onnx_model])
    assert Bundle.load(svc.record.bundle_path or "").manifest.builtin_scorer == "onnx"
    assert svc.run(rows.to_numpy().tolist())["output_label"] == sklearn_model.predict(rows).tolist()


@pytest.mark.integration
def test_deploy_magic_without_score_uses_the_builtin_scorer(
    home: Workspace,
    sklearn_model: Any,
    iris_frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("NBDEPLOY_HOME", str(home.path))
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbdeploy.notebook")
    x = _features(iris_frame)
    nbdeploy.register(sklearn_model, "iris", sample_input=x.head(), workspace=home)

    svc = shell.run_line_magic("deploy", "iris --name iris-magic")

    assert svc.record.state.value == "Healthy"
    assert Bundle.load(svc.record.bundle_path).manifest.builtin_scorer == "sklearn"
    rows = x.head(2)
    np.testing.assert_allclose(svc.run(rows), sklearn_model.predict_proba(rows))
