"""Azure ML entry scripts deploy unmodified: ``azureml.core.model.Model``,
``AMLRequest``/``AMLResponse``/``rawhttp`` and the ``inference_schema`` decorators are
served by nbdeploy's stand-ins inside the server process only — or, for
``inference_schema``, by the real package when it is installed (``schema_package``
runs those tests both ways).

The scripts below follow the reference's samples line for line, except that
``from sklearn.externals import joblib`` (gone from scikit-learn) is ``import joblib``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from nbdeploy import compat

Serve = Callable[..., TestClient]

NUMPY_SCRIPT = """
import json
import numpy as np
import os
import pickle
import joblib
from sklearn.linear_model import Ridge
from azureml.core.model import Model

from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType


def init():
    global model
    # Note that here "diabetes" is the name of the model registered under.
    model_path = Model.get_model_path('diabetes')
    # Deserialize the model file back into a sklearn model.
    model = joblib.load(model_path)


input_sample = np.array([[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]])
output_sample = np.array([3726.995])


@input_schema('data', NumpyParameterType(input_sample))
@output_schema(NumpyParameterType(output_sample))
def run(data):
    try:
        result = model.predict(data)
        # You can return any data type, as long as it is JSON serializable.
        return result.tolist()
    except Exception as e:
        error = str(e)
        return error
"""

PANDAS_SCRIPT = """
import json
import pickle
import numpy as np
import pandas as pd
import azureml.train.automl
import joblib
from azureml.core.model import Model

from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType


def init():
    global model
    # Replace filename if needed.
    model_path = os.path.join(os.getenv('AZUREML_MODEL_DIR'), 'model.pkl')
    # Deserialize the model file back into a sklearn model.
    model = joblib.load(model_path)


input_sample = pd.DataFrame(data=[{
    # This is a decimal type sample. Use the data type that reflects this column in your data.
    "input_name_1": 5.1,
    # This is a string type sample. Use the data type that reflects this column in your data.
    "input_name_2": "value2",
    # This is an integer type sample. Use the data type that reflects this column in your data.
    "input_name_3": 3
}])

# This is an integer type sample. Use the data type that reflects the expected result.
output_sample = np.array([0])

# To indicate that we support a variable length of data input,
# set enforce_shape=False
@input_schema('data', PandasParameterType(input_sample, enforce_shape=False))
@output_schema(NumpyParameterType(output_sample))
def run(data):
    try:
        result = model.predict(data)
        # You can return any data type, as long as it is JSON serializable.
        return result.tolist()
    except Exception as e:
        error = str(e)
        return error
""".replace("import json\n", "import json\nimport os\n", 1)

RAW_SCRIPT = """
from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse

def init():
    print("This is init()")

@rawhttp
def run(request):
    print("This is run()")
    print("Request: [{0}]".format(request))
    if request.method == 'GET':
        # For this example, just return the URL for GETs.
        respBody = str.encode(request.full_path)
        return AMLResponse(respBody, 200)
    elif request.method == 'POST':
        reqBody = request.get_data(False)
        # For a real-world solution, you would load the data from reqBody
        # and send it to the model. Then return the response.

        # For demonstration purposes, this example
        # adds a header and returns the request body.
        resp = AMLResponse(reqBody, 200)
        resp.headers['Access-Control-Allow-Origin'] = "http://www.example.com"
        return resp
    else:
        return AMLResponse("bad request", 500)
"""


@pytest.fixture
def frame_model() -> tuple[Any, pd.DataFrame]:
    """A pipeline that takes the Power BI sample's three columns (one of them text)."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame(
        {
            "input_name_1": [5.1, 1.0, 6.0, 0.5],
            "input_name_2": ["value2", "other", "value2", "other"],
            "input_name_3": [3, 1, 4, 0],
        }
    )
    encode = make_column_transformer((OneHotEncoder(), ["input_name_2"]), remainder="passthrough")
    model = make_pipeline(encode, LogisticRegression()).fit(frame, [1, 0, 1, 0])
    return model, frame


def test_numpy_schema_script(
    make_bundle: Callable[..., Path],
    serve_app: Serve,
    diabetes: tuple[Any, pd.DataFrame],
    schema_package: str,
) -> None:
    model, features = diabetes
    # The model was registered with a DataFrame sample: the decorator's schema wins.
    client = serve_app(make_bundle(NUMPY_SCRIPT, model=model, input_sample=features.head()))
    assert client.get("/").text == "Healthy", client.get("/").text
    rows = [[10, 9, 8, 7, 6, 5, 4, 3, 2, 1], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]
    r = client.post("/score", json={"data": rows})
    assert r.status_code == 200, r.text
    assert r.json() == pytest.approx(model.predict(np.array(rows)).tolist())
    bad = client.post("/score", json={"data": [[1, 2, 3]]})
    assert bad.status_code == 422
    assert "expected shape (None, 10), got (1, 3)" in bad.json()["message"]

    swagger = client.get("/swagger.json").json()
    validate(swagger)
    data = swagger["definitions"]["ServiceInput"]["properties"]["data"]
    assert data["type"] == "array"
    assert data["items"]["maxItems"] == 10
    assert swagger["definitions"]["ServiceInput"]["example"] == {
        "data": [[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]
    }
    assert swagger["definitions"]["ServiceOutput"]["example"] == [3726.995]
    openapi = client.get("/openapi.json").json()
    validate(openapi)
    media = openapi["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]
    assert media["example"] == {"data": [[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]}


def test_pandas_schema_script_gets_a_dataframe(
    make_bundle: Callable[..., Path],
    serve_app: Serve,
    frame_model: tuple[Any, pd.DataFrame],
    schema_package: str,
) -> None:
    model, frame = frame_model
    client = serve_app(make_bundle(PANDAS_SCRIPT, model=model))
    records = frame.to_dict(orient="records")
    r = client.post("/score", json={"data": records})  # the Power BI layout
    assert r.status_code == 200, r.text
    assert r.json() == model.predict(frame).tolist()
    r = client.post("/score", json={"data": [{"input_name_1": 1.0, "input_name_2": "other"}]})
    assert r.status_code == 422
    assert "input_name_3" in r.json()["message"]
    swagger = client.get("/swagger.json").json()
    properties = swagger["definitions"]["ServiceInput"]["properties"]["data"]["items"]
    assert properties["properties"]["input_name_2"]["type"] == "string"
    assert properties["properties"]["input_name_3"]["type"] == "integer"
    assert swagger["definitions"]["ServiceInput"]["example"]["data"] == [
        {"input_name_1": 5.1, "input_name_2": "value2", "input_name_3": 3}
    ]


def test_rawhttp_script(
    make_bundle: Callable[..., Path], serve_app: Serve, capfd: pytest.CaptureFixture[str]
) -> None:
    client = serve_app(make_bundle(RAW_SCRIPT))
    r = client.get("/score?id=7&x=a", headers={"Authorization": "Bearer do-not-print"})
    assert r.status_code == 200
    assert r.content == b"/score?id=7&x=a"
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    payload = bytes(range(256)) * 4
    r = client.post("/score", content=payload, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200
    assert r.content == payload
    assert r.headers["access-control-allow-origin"] == "http://www.example.com"
    out = capfd.readouterr().out
    assert "This is run()" in out
    assert "Request: [<Request 'http://localhost/score?id=7&x=a' [GET]>]" in out
    assert "do-not-print" not in out
    swagger = client.get("/swagger.json").json()
    assert "Raw HTTP service" in swagger["info"]["description"]


def test_other_input_names_and_extra_parameters(
    make_bundle: Callable[..., Path], serve_app: Serve, schema_package: str
) -> None:
    script = """
    import numpy as np
    import pandas as pd
    from inference_schema.schema_decorators import input_schema
    from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
    from inference_schema.parameter_types.standard_py_parameter_type import (
        StandardPythonParameterType,
    )

    def init():
        pass

    @input_schema("input_data", NumpyParameterType(np.array([[1.0, 2.0]])))
    @input_schema("options", StandardPythonParameterType({"scale": 2}), optional=True)
    def run(input_data, options=None):
        scale = (options or {"scale": 1})["scale"]
        return {"sum": float(input_data.sum()) * scale, "type": type(input_data).__name__}
    """
    client = serve_app(make_bundle(textwrap.dedent(script)))
    r = client.post("/score", json={"input_data": [[1, 2]], "options": {"scale": 3}})
    assert r.status_code == 200, r.text
    assert r.json() == {"sum": 9.0, "type": "ndarray"}
    assert client.post("/score", json={"data": [[1, 2]]}).json()["sum"] == 3.0
    bad = client.post("/score", json={"data": [[1, 2]], "options": {"scale": "x"}})
    assert bad.status_code == 422


def test_decorator_errors_fail_the_start_clearly(
    make_bundle: Callable[..., Path], serve_app: Serve
) -> None:
    # The stand-in checks the parameter name when the decorator is applied (the real
    # package only when run() is called).
    compat.uninstall()
    sys.meta_path.insert(0, compat.ShimFinder())
    script = """
    import numpy as np
    from inference_schema.schema_decorators import input_schema
    from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType

    def init():
        pass

    @input_schema("payload", NumpyParameterType(np.zeros((1, 2))))
    def run(data):
        return data
    """
    client = serve_app(make_bundle(textwrap.dedent(script)))
    r = client.get("/")
    assert r.status_code == 503
    assert "run() has no parameter 'payload'" in r.json()["message"]


# --------------------------------------------------------------------------- the shim


@pytest.fixture
def finder() -> Iterator[compat.ShimFinder]:
    yield compat.install()
    compat.uninstall()


def test_model_get_model_path(
    finder: compat.ShimFinder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.server.bundles import write_bundle

    bundle = write_bundle(tmp_path, "def init():\n    pass\n\ndef run(data):\n    return data\n")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(bundle / "models" / "diabetes" / "1"))
    monkeypatch.delenv("NBDEPLOY_MODEL_DIR", raising=False)
    monkeypatch.delenv("NBDEPLOY_BUNDLE_DIR", raising=False)
    from azureml.core import Model as PackageModel
    from azureml.core.model import Model

    assert PackageModel is Model
    expected = str(bundle / "models" / "diabetes" / "1" / "model.pkl")
    assert Model.get_model_path("diabetes") == expected
    assert Model.get_model_path(model_name="diabetes", version=1) == expected
    from nbdeploy.exceptions import InvalidArgumentError, ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="no model 'other'"):
        Model.get_model_path("other")
    with pytest.raises(InvalidArgumentError, match="not available inside an nbdeploy service"):
        Model(None, "diabetes")


def test_unknown_sdk_modules_still_fail_at_import(finder: compat.ShimFinder) -> None:
    with pytest.raises(ModuleNotFoundError, match=r"azureml\.core\.workspace"):
        import azureml.core.workspace  # noqa: F401


def test_real_packages_win(finder: compat.ShimFinder, tmp_path: Path) -> None:
    for name in [m for m in sys.modules if m.startswith("inference_schema")]:
        del sys.modules[name]
    real = tmp_path / "site" / "inference_schema"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("REAL = True\n")
    (real / "schema_decorators.py").write_text("def input_schema(*a, **k):\n    return 'real'\n")
    sys.path.insert(0, str(tmp_path / "site"))
    try:
        from inference_schema.schema_decorators import input_schema

        assert input_schema() == "real"
        assert sys.modules["inference_schema"].REAL is True
    finally:
        sys.path.remove(str(tmp_path / "site"))
        for name in [m for m in sys.modules if m.startswith("inference_schema")]:
            del sys.modules[name]


def test_uninstall_forgets_the_stand_ins() -> None:
    for name in [m for m in sys.modules if m.startswith("inference_schema")]:
        del sys.modules[name]
    sys.meta_path.insert(0, compat.ShimFinder())  # before the installed real package
    import inference_schema.parameter_types.pandas_parameter_type  # noqa: F401

    compat.uninstall()
    assert compat.installed() is None
    assert not [m for m in sys.modules if m.startswith(("azureml", "inference_schema"))]


# --------------------------------------------------------------------------- real process

KERNEL = """
import sys
from pathlib import Path

import numpy as np
import requests
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import nbdeploy
from nbdeploy.targets import shutdown_warm_server

from nbdeploy.sdk.workspace import get_workspace

root = Path(sys.argv[1])
warm = sys.argv[2] == "warm"
ws = get_workspace(root / "ws")
x, y = load_diabetes(return_X_y=True)
model = Ridge().fit(x, y)
# Registered with a float sample of another shape: the script's decorators must win.
nbdeploy.register(model, "diabetes", sample_input=x[:2], workspace=ws)
config = nbdeploy.LocalWebservice.deploy_configuration(warm_start=warm)
service = nbdeploy.deploy(
    "diabetes", name="aml", score=str(root / "score.py"), config=config, workspace=ws
)
try:
    assert service.record.config["mode"] == ("warm" if warm else "plain")
    rows = [[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]
    assert service.run(rows) == model.predict(np.array(rows)).tolist()
    swagger = requests.get(service.swagger_uri, timeout=30).json()
    example = swagger["definitions"]["ServiceInput"]["example"]
    assert example == {"data": rows}, example
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("azureml", "inference_schema"))
    assert not leaked, leaked
    assert not [f for f in sys.meta_path if type(f).__name__ == "ShimFinder"]
    print("KERNEL-CLEAN", service.state)
finally:
    service.delete()
    shutdown_warm_server(ws)
"""


@pytest.mark.integration
@pytest.mark.parametrize("warm", [True, False], ids=["warm", "plain"])
def test_entry_script_on_a_real_service_keeps_the_kernel_clean(tmp_path: Path, warm: bool) -> None:
    (tmp_path / "score.py").write_text(NUMPY_SCRIPT, encoding="utf-8")
    (tmp_path / "kernel.py").write_text(KERNEL, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(tmp_path / "kernel.py"), str(tmp_path), "warm" if warm else "plain"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KERNEL-CLEAN Healthy" in result.stdout
