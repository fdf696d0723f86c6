"""``inference_schema`` decorators behave the same with the real package and with
nbdeploy's stand-in: the same conversion, the same documents (type, item types,
shape, example) and 4xx answers that name the problem — never a 500.

Every test taking ``schema_package`` runs twice (see ``conftest.py``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient

Serve = Callable[..., TestClient]

#: 000_d34db37722b85693.txt, line 311 (Swedish page): the numpy entry script, with the
#: model file from AZUREML_MODEL_DIR named like the bundle's and ``import joblib``.
NUMPY_SCRIPT = """
#Example: scikit-learn and Swagger
import json
import numpy as np
import os
import joblib
from sklearn.linear_model import Ridge

from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType


def init():
    global model
    model_path = os.path.join(os.getenv('AZUREML_MODEL_DIR'), 'model.pkl')
    # Deserialize the model file back into a sklearn model
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

FRAME_SCRIPT = """
import numpy as np
import pandas as pd
from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType

def init():
    pass

input_sample = pd.DataFrame(data=[{
    "input_name_1": 5.1,
    "input_name_2": "value2",
    "input_name_3": 3
}])

@input_schema('data', PandasParameterType(input_sample, orient=ORIENT))
def run(data):
    return {
        "type": type(data).__name__,
        "dtypes": [str(t) for t in data.dtypes],
        "rows": len(data),
        "total": float(data["input_name_1"].sum() + data["input_name_3"].sum()),
    }
"""

NESTED_SCRIPT = """
import numpy as np
import pandas as pd
from inference_schema.schema_decorators import input_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.parameter_types.standard_py_parameter_type import (
    StandardPythonParameterType,
)

def init():
    pass

sample = StandardPythonParameterType({
    "frame": PandasParameterType(pd.DataFrame([{"a": 1.5, "b": "x"}])),
    "array": NumpyParameterType(np.array([[1.0, 2.0]])),
    "scale": 2.0,
})
method = StandardPythonParameterType("predict")

@input_schema('Inputs', sample)
@input_schema('method', method)
def run(Inputs, method):
    return {
        "frame": type(Inputs["frame"]).__name__,
        "array": type(Inputs["array"]).__name__,
        "sum": float(Inputs["array"].sum() * Inputs["scale"]),
        "method": method,
    }
"""


def _data_doc(client: TestClient) -> tuple[dict[str, Any], Any]:
    swagger = client.get("/swagger.json").json()
    validate(swagger)
    validate(client.get("/openapi.json").json())
    definition = swagger["definitions"]["ServiceInput"]
    return definition["properties"]["data"], definition.get("example")


def test_numpy_parameter_type(
    make_bundle: Callable[..., Path],
    serve_app: Serve,
    diabetes: tuple[Any, pd.DataFrame],
    schema_package: str,
) -> None:
    model, _ = diabetes
    client = serve_app(make_bundle(NUMPY_SCRIPT, model=model))
    rows = [[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]
    r = client.post("/score", json={"data": rows})
    assert r.status_code == 200, r.text
    assert r.json() == pytest.approx(model.predict(np.array(rows)).tolist())

    data, example = _data_doc(client)
    assert data["type"] == "array"
    assert data["items"] == {
        "type": "array",
        "items": {"type": "integer", "format": "int64"},
        "minItems": 10,
        "maxItems": 10,
    }
    assert example == {"data": rows}
    output = client.get("/swagger.json").json()["definitions"]["ServiceOutput"]
    assert output["example"] == [3726.995]
    assert output["type"] == "array"
    assert output["items"]["type"] == "number"
    openapi = client.get("/openapi.json").json()
    media = openapi["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]
    assert media["example"] == {"data": rows}

    wide = client.post("/score", json={"data": [[1, 2, 3]]})
    assert wide.status_code == 422
    assert "expected shape (None, 10), got (1, 3)" in wide.json()["message"]
    text = client.post("/score", json={"data": [["a"] * 10]})
    assert text.status_code == 422
    assert "expected integer elements, got 'a'" in text.json()["message"]
    # An empty batch is a 422 that says so (the schema's minItems), never the 500 of a
    # model that cannot predict on no rows.
    empty = client.post("/score", json={"data": []})
    assert empty.status_code == 422, empty.text
    assert "holds no rows" in empty.json()["message"]


@pytest.mark.parametrize("orient", ["records", "split"])
def test_pandas_parameter_type(
    make_bundle: Callable[..., Path], serve_app: Serve, schema_package: str, orient: str
) -> None:
    client = serve_app(make_bundle(FRAME_SCRIPT.replace("ORIENT", repr(orient))))
    frame = pd.DataFrame(
        {"input_name_1": [1.5, 2.0], "input_name_2": ["a", "b"], "input_name_3": [1, 2]}
    )
    for layout in ("records", "split"):  # both layouts are read whatever the orient
        body = frame.to_dict(orient="split" if layout == "split" else "records")
        r = client.post("/score", json={"data": body})
        assert r.status_code == 200, r.text
        answer = r.json()
        # The sample's dtypes (its text column is whatever pandas makes of strings).
        assert answer["dtypes"] == [str(t) for t in frame.dtypes]
        assert answer == {"type": "DataFrame", "dtypes": answer["dtypes"], "rows": 2, "total": 6.5}

    data, example = _data_doc(client)
    if orient == "records":
        assert data["type"] == "array"
        columns = data["items"]["properties"]
        assert columns["input_name_1"]["type"] == "number"
        assert columns["input_name_2"]["type"] == "string"
        assert columns["input_name_3"]["type"] == "integer"
        assert example == {
            "data": [{"input_name_1": 5.1, "input_name_2": "value2", "input_name_3": 3}]
        }
    else:
        assert data["type"] == "object"
        assert data["properties"]["columns"]["items"]["enum"] == [
            "input_name_1",
            "input_name_2",
            "input_name_3",
        ]
        rows = data["properties"]["data"]["items"]
        assert (rows["minItems"], rows["maxItems"]) == (3, 3)
        assert "input_name_2 (string)" in rows["description"]
        assert example == {
            "data": {
                "columns": ["input_name_1", "input_name_2", "input_name_3"],
                "index": [0],
                "data": [[5.1, "value2", 3]],
            }
        }

    missing = client.post("/score", json={"data": [{"input_name_1": 1.0, "input_name_2": "x"}]})
    assert missing.status_code == 422
    assert "input_name_3" in missing.json()["message"]
    wrong = client.post(
        "/score",
        json={"data": [{"input_name_1": "five", "input_name_2": "x", "input_name_3": 1}]},
    )
    assert wrong.status_code == 422
    assert "column 'input_name_1', row 0: expected number, got 'five'" in wrong.json()["message"]
    empty = client.post("/score", json={"data": []})
    assert empty.status_code == 422, empty.text  # no rows: the schema's minItems
    assert "holds no rows" in empty.json()["message"]


def test_standard_python_parameter_type_nested(
    make_bundle: Callable[..., Path], serve_app: Serve, schema_package: str
) -> None:
    client = serve_app(make_bundle(NESTED_SCRIPT))
    inputs = {"frame": [{"a": 2.5, "b": "y"}], "array": [[1, 2], [3, 4]], "scale": 0.5}
    r = client.post("/score", json={"Inputs": inputs, "method": "predict_proba"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "frame": "DataFrame",
        "array": "ndarray",
        "sum": 5.0,
        "method": "predict_proba",
    }
    r = client.post("/score", json={"data": inputs, "method": "predict"})  # "data" works too
    assert r.status_code == 200, r.text

    data, example = _data_doc(client)
    assert data["type"] == "object"
    assert set(data["properties"]) == {"frame", "array", "scale"}
    assert example == {
        "data": {"frame": [{"a": 1.5, "b": "x"}], "array": [[1.0, 2.0]], "scale": 2.0}
    }

    bad = dict(inputs, array=[[1, 2, 3]])
    r = client.post("/score", json={"Inputs": bad, "method": "predict"})
    assert r.status_code == 422
    assert "expected shape (None, 2), got (1, 3)" in r.json()["message"]
    r = client.post("/score", json={"Inputs": dict(inputs, scale="big"), "method": "predict"})
    assert r.status_code == 422
    assert "scale" in r.json()["message"]
    r = client.post("/score", json={"Inputs": inputs})
    assert r.status_code == 422
    assert "the request lacks 'method'" in r.json()["message"]
    r = client.post("/score", json={"Inputs": inputs, "method": 3})
    assert r.status_code == 422
    assert "'method'" in r.json()["message"]


CUSTOM_TYPE_SCRIPT = """
from inference_schema.schema_decorators import input_schema
from inference_schema.parameter_types.abstract_parameter_type import AbstractParameterType


class Celsius(AbstractParameterType):
    def __init__(self):
        super().__init__(20.0)

    def deserialize_input(self, input_data):
        if not isinstance(input_data, (int, float)) or input_data < -273.15:
            raise ValueError(f"not a temperature: {input_data!r}")
        return float(input_data)

    def input_to_swagger(self):
        return {"type": "number", "example": 20.0}


def init():
    pass


@input_schema("data", Celsius())
def run(data):
    return data * 9 / 5 + 32
"""


def test_a_custom_real_parameter_type_is_left_to_its_decorator(
    make_bundle: Callable[..., Path], serve_app: Serve, real_inference_schema: None
) -> None:
    # Only the real package has an AbstractParameterType to subclass like this.
    client = serve_app(make_bundle(textwrap.dedent(CUSTOM_TYPE_SCRIPT)))
    r = client.post("/score", json={"data": 100})
    assert r.status_code == 200, r.text
    assert r.json() == 212.0
    bad = client.post("/score", json={"data": -300})
    assert bad.status_code == 422
    assert "ValueError: not a temperature: -300" in bad.json()["message"]
    data, _ = _data_doc(client)
    assert "not validated" in data["description"]  # nbdeploy cannot describe it
