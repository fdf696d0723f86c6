"""The public API: exported names, and the whole loop against real local services."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests

import nbdeploy
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import (
    InvalidArgumentError,
    ModelInUseError,
    SchemaMismatchError,
    ServiceNotFoundError,
)
from nbdeploy.targets import shutdown_warm_server

SCORE = """
import cloudpickle

import nbdeploy

model = None


def init():
    global model
    with open(nbdeploy.get_model_path("diabetes"), "rb") as fh:
        model = cloudpickle.load(fh)


def run(data):
    return model.predict(data)
"""

REFERENCE_REQUEST = {"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]}


def test_all_lists_exactly_the_public_names() -> None:
    import inspect

    public = {
        n
        for n in dir(nbdeploy)
        if not n.startswith("_") and n != "annotations"
        and not inspect.ismodule(getattr(nbdeploy, n))
    }  # fmt: skip
    assert set(nbdeploy.__all__) - {"__version__"} == public
    for name in nbdeploy.__all__:
        assert getattr(nbdeploy, name) is not None


def test_import_stays_light() -> None:
    code = (
        "import sys, nbdeploy; "
        "print(sorted(m for m in ('fastapi', 'sklearn', 'IPython', 'ipywidgets', 'requests', "
        "'tornado', 'jupyter_server', 'uvicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def diabetes() -> tuple[Any, pd.DataFrame]:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    return Ridge(alpha=0.5).fit(x, y), x


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = nbdeploy.Workspace(tmp_path / "ws")
    yield workspace
    for svc in nbdeploy.services(workspace=workspace):
        svc.delete()
    shutdown_warm_server(workspace)


@pytest.fixture
def score(tmp_path: Path) -> Path:
    path = tmp_path / "score.py"
    path.write_text(textwrap.dedent(SCORE))
    return path


def test_register_deploy_call_and_delete(
    ws: Workspace, score: Path, diabetes: tuple[Any, pd.DataFrame]
) -> None:
    model, x = diabetes
    m = nbdeploy.register(
        model, "diabetes", sample_input=x.head(3), tags={"team": "ml"}, workspace=ws
    )
    assert (m.name, m.version, m.framework) == ("diabetes", 1, "sklearn")
    assert [mm.id for mm in nbdeploy.models(workspace=ws)] == ["diabetes:1"]

    svc = nbdeploy.deploy("diabetes", name="diabetes-svc", score=score, workspace=ws)
    assert svc.state == "Healthy"
    assert svc.scoring_uri is not None
    assert svc.scoring_uri.startswith("http://127.0.0.1:")
    assert svc.swagger_uri is not None
    assert svc.swagger_uri.endswith("/swagger.json")
    expected = model.predict(pd.DataFrame(REFERENCE_REQUEST["data"], columns=x.columns))

    # plain requests, the reference's positional rows
    answer = requests.post(svc.scoring_uri, json=REFERENCE_REQUEST, timeout=30)
    assert answer.status_code == 200
    np.testing.assert_allclose(answer.json(), expected)
    # service.run with each kind of input the schema came from
    np.testing.assert_allclose(svc.run(x.head(5)), model.predict(x.head(5)))
    np.testing.assert_allclose(svc.run(REFERENCE_REQUEST), expected)
    np.testing.assert_allclose(svc.run(json.dumps(REFERENCE_REQUEST)), expected)
    np.testing.assert_allclose(svc.run(np.asarray(REFERENCE_REQUEST["data"])), expected)
    np.testing.assert_allclose(svc.run(REFERENCE_REQUEST["data"]), expected)
    with pytest.raises(SchemaMismatchError, match="age"):
        svc.run({"data": [{"sex": 1}]})
    swagger = requests.get(svc.swagger_uri, timeout=30).json()
    assert swagger["paths"]["/score"]["post"]["operationId"] == "RunMLService"

    # the model is in use: refused without force
    with pytest.raises(ModelInUseError):
        m.delete()
    assert [s.name for s in nbdeploy.services(workspace=ws)] == ["diabetes-svc"]
    nbdeploy.delete_service("diabetes-svc", workspace=ws)
    nbdeploy.delete_service("diabetes-svc", workspace=ws)  # idempotent
    with pytest.raises(ServiceNotFoundError):
        nbdeploy.get_service("diabetes-svc", workspace=ws)
    m.delete()
    assert nbdeploy.models(workspace=ws) == []


def test_reference_object_model(
    ws: Workspace, score: Path, diabetes: tuple[Any, pd.DataFrame], tmp_path: Path
) -> None:
    import cloudpickle

    model, x = diabetes
    model_file = tmp_path / "model.pkl"
    model_file.write_bytes(cloudpickle.dumps(model))
    registered = nbdeploy.Model.register(
        workspace=ws, model_path=str(model_file), model_name="diabetes",
        tags={"area": "diabetes"}, description="Ridge", model_framework="sklearn",
    )  # fmt: skip
    assert nbdeploy.Model(ws, "diabetes").version == registered.version == 1
    env = nbdeploy.Environment.from_kernel(script=score, frameworks=["sklearn"])
    assert any(r.startswith("scikit-learn==") for r in env.requirements)
    # score.py's run(data) takes decoded data; Model.deploy's default is the raw body.
    config = nbdeploy.InferenceConfig(entry_script=score, environment=env, input_mode="decoded")
    deployment = nbdeploy.LocalWebservice.deploy_configuration(port=0)
    service = nbdeploy.Model.deploy(ws, "diabetes-ref", [registered], config, deployment)
    assert service.wait_for_deployment(show_output=False) == "Healthy"
    rows = x.head(2).to_numpy().tolist()
    np.testing.assert_allclose(service.run({"data": rows}), model.predict(x.head(2)))
    assert "Listening" in service.get_logs() or service.get_logs() != ""
    downloaded = registered.download(tmp_path / "download")
    assert Path(downloaded).read_bytes() == model_file.read_bytes()
    service.delete()


def test_update_switches_the_model(
    ws: Workspace, score: Path, diabetes: tuple[Any, pd.DataFrame]
) -> None:
    from sklearn.dummy import DummyRegressor

    model, x = diabetes
    nbdeploy.register(model, "diabetes", sample_input=x.head(3), workspace=ws)
    svc = nbdeploy.deploy("diabetes:1", name="upd", score=score, workspace=ws)
    uri = svc.scoring_uri
    dummy = DummyRegressor(strategy="constant", constant=42.0).fit(x, np.zeros(len(x)))
    nbdeploy.register(dummy, "diabetes", sample_input=x.head(3), workspace=ws)
    svc.update(models=["diabetes:2"])
    assert svc.scoring_uri == uri
    assert svc.run(x.head(2)) == [42.0, 42.0]
    assert svc.models == ("diabetes:2",)


def test_service_found_from_a_new_process(
    ws: Workspace, score: Path, diabetes: tuple[Any, pd.DataFrame]
) -> None:
    model, x = diabetes
    nbdeploy.register(model, "diabetes", sample_input=x.head(3), workspace=ws)
    nbdeploy.deploy("diabetes", name="restart", score=score, workspace=ws)
    code = textwrap.dedent(
        f"""
        import nbdeploy
        svc = nbdeploy.get_service("restart", workspace={str(ws.path)!r})
        print(svc.state, round(svc.run([[0.0] * 10])[0], 3))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    state, value = out.stdout.split()
    assert state == "Healthy"
    zeros = pd.DataFrame(np.zeros((1, 10)), columns=x.columns)
    assert float(value) == pytest.approx(round(model.predict(zeros)[0], 3))


def test_bad_input_is_refused_with_a_clear_error(ws: Workspace, score: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid service name"):
        nbdeploy.deploy("m:1", name="bad name!", score=score, workspace=ws)
    with pytest.raises(InvalidArgumentError, match="not a number"):
        nbdeploy.deploy("m:x", name="svc", score=score, workspace=ws)
    with pytest.raises(InvalidArgumentError, match="register the object first"):
        nbdeploy.deploy(object(), name="svc", score=score, workspace=ws)
    assert nbdeploy.services(workspace=ws) == []
