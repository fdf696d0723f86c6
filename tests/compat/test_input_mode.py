"""The one rule for how ``run()`` is called, and the input mode travelling in the bundle.

The plain entry script of the reference pages (the Czech/Polish/Swedish ones) reads
``json.loads(raw_data)['data']``: Azure ML hands an undecorated ``run`` the request
body as ``str``. nbdeploy's short API hands it the decoded data instead. Both are
checked here in-process (the server's rule, the bundle field) and through real
services (``Model.deploy`` vs ``nbdeploy.deploy``, updates, another process).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

import nbdeploy
from nbdeploy import InferenceConfig, LocalWebservice, Model, Webservice, Workspace
from nbdeploy.core.bundle import Bundle, BundleManifest
from nbdeploy.exceptions import InvalidArgumentError, ScoringError
from nbdeploy.targets import shutdown_warm_server

Serve = Callable[..., TestClient]

#: 003_02de22eaa133a3c3.txt, line 128 (Polish page), with ``from sklearn.externals
#: import joblib`` (gone from scikit-learn) as ``import joblib``.
PLAIN_SCRIPT = """
import json
import numpy as np
import os
import pickle
import joblib
from sklearn.linear_model import LogisticRegression
from azureml.core.model import Model

# load the model
def init():
    global model
    # retrieve the path to the model file using the model name
    model_path = Model.get_model_path('sklearn_mnist')
    model = joblib.load(model_path)

# Passes data to the model and returns the prediction
def run(raw_data):
    data = np.array(json.loads(raw_data)['data'])
    # make prediction
    y_hat = model.predict(data)
    return json.dumps(y_hat.tolist())
"""

#: nbdeploy's own style: run(data) gets what the registered schema describes.
DECODED_SCRIPT = """
import joblib
from azureml.core.model import Model

def init():
    global model
    model = joblib.load(Model.get_model_path('sklearn_mnist'))

def run(data):
    return {"type": type(data).__name__, "predictions": model.predict(data).tolist()}
"""


@pytest.fixture(scope="module")
def mnist_like() -> tuple[Any, np.ndarray]:
    """A logistic regression on 8x8 digit images (scikit-learn's digits), with rows."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    return LogisticRegression(max_iter=2000).fit(x, y), x[:3]


def _bundle(make_bundle: Callable[..., Path], script: str, model: Any, **kw: Any) -> Path:
    return make_bundle(script, model=model, name="sklearn_mnist", **kw)


def _set_mode(bundle: Path, mode: str | None) -> Path:
    manifest = json.loads((bundle / "bundle.json").read_text())
    if mode is None:
        manifest.pop("input_mode", None)
    else:
        manifest["input_mode"] = mode
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    return bundle


# --------------------------------------------------------------------------- in-process


def test_raw_mode_hands_run_the_body_as_text(
    make_bundle: Callable[..., Path], serve_app: Serve, mnist_like: tuple[Any, np.ndarray]
) -> None:
    model, rows = mnist_like
    client = serve_app(_set_mode(_bundle(make_bundle, PLAIN_SCRIPT, model), "raw"))
    body = json.dumps({"data": rows.tolist()})
    r = client.post("/score", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    # run() returns json.dumps(list): the answer is that string, as in Azure ML.
    assert r.json() == json.dumps(model.predict(rows).tolist())
    # The whole body reaches run(), extra keys included; nothing is validated first.
    r = client.post("/score", json={"data": rows.tolist(), "method": "predict"})
    assert r.status_code == 200
    bad = client.post("/score", content=b"\xff\xfe", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert "not UTF-8" in bad.json()["message"]
    # The documents: any JSON (run() reads the body itself), with no registered example.
    data = client.get("/swagger.json").json()["definitions"]["ServiceInput"]
    assert "not validated" in data["properties"]["data"]["description"]


def test_decoded_mode_hands_run_the_converted_data(
    make_bundle: Callable[..., Path], serve_app: Serve, mnist_like: tuple[Any, np.ndarray]
) -> None:
    model, rows = mnist_like
    bundle = _bundle(make_bundle, DECODED_SCRIPT, model, input_sample=rows)
    client = serve_app(_set_mode(bundle, "decoded"))
    r = client.post("/score", json={"data": rows.tolist()})
    assert r.status_code == 200, r.text
    assert r.json() == {"type": "ndarray", "predictions": model.predict(rows).tolist()}
    assert client.post("/score", json={"data": [[1, 2]]}).status_code == 422


def test_the_plain_script_fails_in_decoded_mode_with_the_reason(
    make_bundle: Callable[..., Path], serve_app: Serve, mnist_like: tuple[Any, np.ndarray]
) -> None:
    # What issue 13 reported for Model.deploy: why the mode matters.
    model, rows = mnist_like
    client = serve_app(_set_mode(_bundle(make_bundle, PLAIN_SCRIPT, model), "decoded"))
    r = client.post("/score", json={"data": rows.tolist()})
    assert r.status_code == 500
    assert "the JSON object must be str" in r.json()["message"]


def test_bundles_without_the_field_mean_decoded(
    make_bundle: Callable[..., Path], serve_app: Serve, mnist_like: tuple[Any, np.ndarray]
) -> None:
    model, rows = mnist_like
    bundle = _set_mode(_bundle(make_bundle, DECODED_SCRIPT, model, input_sample=rows), None)
    assert Bundle.load(bundle).input_mode == "decoded"
    r = serve_app(bundle).post("/score", json={"data": rows.tolist()})
    assert r.json()["type"] == "ndarray"


def test_a_bad_mode_in_a_manifest_names_the_field(
    make_bundle: Callable[..., Path], mnist_like: tuple[Any, np.ndarray]
) -> None:
    bundle = _set_mode(_bundle(make_bundle, DECODED_SCRIPT, mnist_like[0]), "json")
    with pytest.raises(InvalidArgumentError, match="field 'input_mode' must be 'raw' or 'decoded'"):
        BundleManifest.read(bundle / "bundle.json")


def test_inference_config_checks_and_keeps_the_mode(tmp_path: Path) -> None:
    script = tmp_path / "score.py"
    script.write_text("def init(): pass\ndef run(raw_data): return raw_data\n")
    with pytest.raises(InvalidArgumentError, match="input_mode must be 'raw' or 'decoded'"):
        InferenceConfig(entry_script=script, input_mode="text")  # type: ignore[arg-type]
    config = InferenceConfig(entry_script=script, input_mode="raw")
    assert InferenceConfig.from_dict(config.to_dict()) == config
    assert InferenceConfig(entry_script=script).with_default_input_mode("raw").input_mode == "raw"
    assert config.with_default_input_mode("decoded").input_mode == "raw"  # explicit wins


# --------------------------------------------------------------------------- real services


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(tmp_path / "ws")
    yield workspace
    for service in nbdeploy.services(workspace=workspace):
        service.delete()
    shutdown_warm_server(workspace)


@pytest.fixture
def registered(
    ws: Workspace, tmp_path: Path, mnist_like: tuple[Any, np.ndarray]
) -> tuple[Model, Path]:
    """The reference's model file registered as ``sklearn_mnist`` (with a sample), and
    a folder holding the plain and the decoded script."""
    model, rows = mnist_like
    joblib.dump(model, tmp_path / "sklearn_mnist_model.pkl")
    registered = Model.register(
        workspace=ws,
        model_path=str(tmp_path / "sklearn_mnist_model.pkl"),
        model_name="sklearn_mnist",
        sample_input=rows,
    )
    (tmp_path / "score.py").write_text(textwrap.dedent(PLAIN_SCRIPT), encoding="utf-8")
    (tmp_path / "score_decoded.py").write_text(textwrap.dedent(DECODED_SCRIPT), encoding="utf-8")
    return registered, tmp_path


def _mode(service: Webservice) -> str:
    return Bundle.load(service.record.bundle_path or "").input_mode


@pytest.mark.integration
def test_model_deploy_calls_like_azure_and_nbdeploy_deploy_decodes(
    ws: Workspace, registered: tuple[Model, Path], mnist_like: tuple[Any, np.ndarray]
) -> None:
    model, folder = registered
    rows = mnist_like[1]
    expected = mnist_like[0].predict(rows).tolist()
    config = InferenceConfig(entry_script=str(folder / "score.py"))
    service = Model.deploy(
        ws, "plain", [model], config, LocalWebservice.deploy_configuration(port=0)
    )
    assert _mode(service) == "raw"
    test_sample = json.dumps({"data": rows.tolist()})
    assert json.loads(service.run(input_data=test_sample)) == expected
    assert json.loads(service.run(input_data=bytes(test_sample, encoding="utf8"))) == expected

    short = nbdeploy.deploy(
        "sklearn_mnist", name="short", score=folder / "score_decoded.py", workspace=ws
    )
    assert _mode(short) == "decoded"
    assert short.run(rows) == {"type": "ndarray", "predictions": expected}

    # Either side can choose: the object model with decoded data, the short API raw.
    decoded = InferenceConfig(entry_script=str(folder / "score_decoded.py"), input_mode="decoded")
    service = Model.deploy(ws, "aml-decoded", [model], decoded)
    assert service.run(rows)["type"] == "ndarray"
    raw = nbdeploy.deploy(
        "sklearn_mnist", name="short-raw", score=folder / "score.py", input_mode="raw", workspace=ws
    )
    assert json.loads(raw.run(rows)) == expected


@pytest.mark.integration
def test_updates_keep_the_mode_unless_told(
    ws: Workspace, registered: tuple[Model, Path], mnist_like: tuple[Any, np.ndarray]
) -> None:
    model, folder = registered
    rows = mnist_like[1]
    config = InferenceConfig(entry_script=str(folder / "score.py"))
    service = Model.deploy(ws, "upd", [model], config)
    service.update(inference_config=InferenceConfig(entry_script=str(folder / "score.py")))
    assert _mode(service) == "raw"
    service.update(score=str(folder / "score.py"))
    assert _mode(service) == "raw"
    assert isinstance(service.run(rows), str)
    decoded = InferenceConfig(entry_script=str(folder / "score_decoded.py"), input_mode="decoded")
    service.update(inference_config=decoded)
    assert _mode(service) == "decoded"
    assert service.run(rows)["type"] == "ndarray"


@pytest.mark.integration
def test_a_builtin_scorer_always_gets_decoded_data(
    ws: Workspace, mnist_like: tuple[Any, np.ndarray]
) -> None:
    model, rows = mnist_like
    registered = Model.register(ws, model=model, model_name="digits", sample_input=rows)
    service = Model.deploy(ws, "nocode", [registered])  # no entry script at all
    assert _mode(service) == "decoded"
    assert service.run(json.dumps({"data": rows.tolist(), "method": "predict"})) == (
        model.predict(rows).tolist()
    )
    with pytest.raises(InvalidArgumentError, match="input_mode='raw' needs a scoring script"):
        nbdeploy.deploy("digits", name="nocode-raw", input_mode="raw", workspace=ws)


OTHER_PROCESS = """
import json, sys
from nbdeploy import Webservice, Workspace

ws = Workspace(sys.argv[1])
service = Webservice(ws, "plain")
test_sample = json.dumps({"data": json.loads(sys.argv[2])})
prediction = service.run(input_data=test_sample)
print(json.dumps({"state": service.state, "prediction": prediction}))
"""


@pytest.mark.integration
def test_another_process_gets_the_same_answers(
    ws: Workspace,
    registered: tuple[Model, Path],
    mnist_like: tuple[Any, np.ndarray],
    tmp_path: Path,
) -> None:
    model, folder = registered
    rows = mnist_like[1]
    config = InferenceConfig(entry_script=str(folder / "score.py"))
    Model.deploy(ws, "plain", [model], config)
    (tmp_path / "other.py").write_text(OTHER_PROCESS, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(tmp_path / "other.py"), str(ws.path), json.dumps(rows.tolist())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["state"] == "Healthy"
    assert json.loads(answer["prediction"]) == mnist_like[0].predict(rows).tolist()


def test_run_errors_stay_500_for_nonempty_batches(
    make_bundle: Callable[..., Path], serve_app: Serve
) -> None:
    script = """
    def init():
        pass

    def run(data):
        raise ValueError("boom")
    """
    client = serve_app(make_bundle(textwrap.dedent(script), input_sample=pd.DataFrame({"x": [1]})))
    r = client.post("/score", json={"data": [{"x": 1}]})
    assert r.status_code == 500
    assert "ValueError: boom" in r.json()["message"]
    empty = client.post("/score", json={"data": []})
    assert empty.status_code == 422
    assert "holds no rows" in empty.json()["message"]
    assert ScoringError.status_code == 500


# --------------------------------------------------------------------------- dry run


@pytest.mark.integration
def test_writefile_score_dry_run_calls_run_as_the_server_will(
    ws: Workspace, registered: tuple[Model, Path], mnist_like: tuple[Any, np.ndarray]
) -> None:
    from nbdeploy.notebook.scriptcheck import write_score

    _, folder = registered
    model, rows = mnist_like
    plain = textwrap.dedent(PLAIN_SCRIPT)
    raw = write_score(
        folder / "dry.py", plain, model="sklearn_mnist", workspace=ws, input_mode="raw",
        show_progress=False,
    )  # fmt: skip
    assert raw.ok, raw.lines()
    assert raw.run is not None
    assert raw.run.result == json.dumps(model.predict(rows).tolist())
    # The same script checked for a decoded deployment fails as that service would.
    decoded = write_score(
        folder / "dry.py", plain, model="sklearn_mnist", workspace=ws, show_progress=False
    )
    assert decoded.run is not None
    assert not decoded.run.ok
    assert decoded.run.phase == "run"
    assert "the JSON object must be str" in (decoded.run.error or "")

    rawhttp = """
    from nbdeploy import Response, rawhttp

    def init():
        pass

    @rawhttp
    def run(request):
        return Response(request.get_data()[::-1], status=201)
    """
    check = write_score(
        folder / "raw.py", textwrap.dedent(rawhttp), model="sklearn_mnist", workspace=ws,
        show_progress=False,
    )  # fmt: skip
    assert check.run is not None
    assert check.run.ok, check.lines()
    assert check.run.result["status"] == 201
    assert check.run.result["body"][::-1].startswith('{"data"')
