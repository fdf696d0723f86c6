"""The Swagger 2.0 and OpenAPI 3.1 documents: validity, reference shape, golden files.

Golden files live in ``tests/core/golden/``. After an intended change, regenerate them
with ``NBDEPLOY_UPDATE_GOLDEN=1 .venv/bin/pytest tests/core/test_openapi.py`` and review
the diff; without the variable a difference fails the test.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest
from openapi_spec_validator import validate

from nbdeploy.core.openapi import openapi31, swagger2
from nbdeploy.core.schema import Schema, infer_schema

GOLDEN = Path(__file__).parent / "golden"
GENERATORS: dict[str, Callable[..., dict[str, Any]]] = {
    "swagger2": swagger2,
    "openapi31": openapi31,
}


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, 27],
            "income": [52000.5, float("nan"), 61000.0],
            "children": [1.0, float("nan"), 2.0],
            "member": [True, False, True],
            "name": ["ann", "bob", None],
            "joined": pd.to_datetime(["2020-01-01T10:00:00", None, "2021-06-30T00:00:00"]),
            "plan": pd.Categorical(["gold", "basic", None], categories=["basic", "gold"]),
        }
    )


SCHEMAS: dict[str, Schema | None] = {
    "dataframe": infer_schema(_frame()),
    "ndarray": infer_schema(np.arange(12, dtype="float32").reshape(3, 4)),
    "python": infer_schema({"text": "hello", "lang": None, "scores": [0.5, 1]}),
    "series": infer_schema(pd.Series([0.25, 0.75], name="probability")),
    "none": None,
}
OUTPUTS: dict[str, Schema | None] = {
    "dataframe": infer_schema(np.array([0.1, 0.9])),
    "ndarray": infer_schema(np.array([[0.2, 0.8]])),
    "python": infer_schema({"label": "positive", "confidence": 0.9}),
    "series": infer_schema([1, 0]),
    "none": None,
}


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.mark.parametrize("auth", [pytest.param(True, id="auth"), pytest.param(False, id="open")])
@pytest.mark.parametrize("kind", list(SCHEMAS))
@pytest.mark.parametrize("generator", list(GENERATORS))
def test_documents_are_valid(generator: str, kind: str, auth: bool):
    doc = GENERATORS[generator](
        title="svc", input_schema=SCHEMAS[kind], output_schema=OUTPUTS[kind], auth=auth
    )
    validate(doc)
    json.dumps(doc, allow_nan=False)


@pytest.mark.parametrize("kind", list(SCHEMAS))
def test_swagger2_uses_only_its_json_schema_subset(kind: str):
    doc = swagger2(title="s", input_schema=SCHEMAS[kind], output_schema=OUTPUTS[kind], auth=True)
    for node in _walk(doc["definitions"]):
        assert "oneOf" not in node
        assert "anyOf" not in node
        assert not isinstance(node.get("type"), list), node
        assert node.get("type") != "null"


def test_swagger2_marks_nullable_columns_with_x_nullable():
    doc = swagger2(title="s", input_schema=SCHEMAS["dataframe"], output_schema=None, auth=False)
    columns = doc["definitions"]["ServiceInput"]["properties"]["data"]["items"]["properties"]
    assert {name for name, col in columns.items() if col.get("x-nullable")} == {
        "income",
        "children",
        "name",
        "joined",
        "plan",
    }
    assert columns["plan"] == {"type": "string", "enum": ["basic", "gold"], "x-nullable": True}
    assert columns["joined"]["format"] == "date-time"


def test_openapi31_marks_nullable_columns_with_type_arrays():
    doc = openapi31(title="s", input_schema=SCHEMAS["dataframe"], output_schema=None, auth=False)
    columns = doc["components"]["schemas"]["ServiceInput"]["properties"]["data"]["items"][
        "properties"
    ]
    assert columns["children"] == {"type": ["integer", "null"], "format": "int64"}
    assert columns["age"] == {"type": "integer", "format": "int64"}
    assert columns["plan"]["enum"] == ["basic", "gold", None]


@pytest.mark.parametrize("generator", list(GENERATORS))
def test_auth_adds_bearer_security_only_when_on(generator: str):
    make = GENERATORS[generator]
    on = make(title="s", input_schema=None, output_schema=None, auth=True)
    off = make(title="s", input_schema=None, output_schema=None, auth=False)
    assert on["paths"]["/score"]["post"]["security"] == [{"Bearer": []}]
    assert "security" not in off["paths"]["/score"]["post"]
    assert "security" not in on["paths"]["/"]["get"]
    text_off = json.dumps(off)
    assert "Bearer" not in text_off
    assert "securityDefinitions" not in text_off
    assert "securitySchemes" not in text_off


def test_openapi31_bearer_scheme_and_error_responses():
    on = openapi31(title="s", input_schema=None, output_schema=None, auth=True)
    off = openapi31(title="s", input_schema=None, output_schema=None, auth=False)
    assert on["components"]["securitySchemes"]["Bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "For example: Bearer abc123",
    }
    assert sorted(on["paths"]["/score"]["post"]["responses"]) == [
        "200",
        "400",
        "401",
        "413",
        "422",
        "500",
        "default",
    ]
    assert "401" not in off["paths"]["/score"]["post"]["responses"]
    error = on["paths"]["/score"]["post"]["responses"]["422"]["content"]["application/json"]
    assert error["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}


@pytest.mark.parametrize("kind", ["dataframe", "ndarray", "python", "series"])
def test_examples_come_from_the_samples_and_match_the_schema(kind: str):
    schema = SCHEMAS[kind]
    assert schema is not None
    doc = openapi31(title="s", input_schema=schema, output_schema=OUTPUTS[kind], auth=False)
    media = doc["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]
    assert media["example"] == {"data": schema.example}
    # The published example is valid against the published schema ...
    jsonschema.Draft202012Validator(doc["components"]["schemas"]["ServiceInput"]).validate(
        media["example"]
    )
    out = doc["paths"]["/score"]["post"]["responses"]["200"]["content"]["application/json"]
    jsonschema.Draft202012Validator(doc["components"]["schemas"]["ServiceOutput"]).validate(
        out["example"]
    )
    # ... and the service accepts it.
    schema.convert(copy.deepcopy(media["example"]["data"]))
    swagger = swagger2(title="s", input_schema=schema, output_schema=OUTPUTS[kind], auth=False)
    assert swagger["definitions"]["ServiceInput"]["example"] == {"data": schema.example}


def test_explicit_examples_override_the_samples():
    for make in GENERATORS.values():
        doc = make(
            title="s",
            input_schema=SCHEMAS["ndarray"],
            output_schema=None,
            auth=False,
            input_example=[[1, 2, 3, 4]],
            output_example=[7],
        )
        assert json.dumps({"data": [[1, 2, 3, 4]]}) in json.dumps(doc)
        assert "[7]" in json.dumps(doc)


def test_no_schema_documents_any_value_without_examples():
    doc = swagger2(title="s", input_schema=None, output_schema=None, auth=False)
    assert doc["definitions"]["ServiceInput"]["properties"]["data"] == {
        "description": "Any JSON value, not validated by the service: "
        "the scoring script's run() reads it."
    }
    assert "example" not in doc["definitions"]["ServiceInput"]
    assert "example" not in doc["definitions"]["ServiceOutput"]


# The document the Azure ML reference shows (seeds/000, "Web service schema").
REFERENCE: dict[str, Any] = {
    "swagger": "2.0",
    "info": {
        "title": "myservice",
        "description": "API specification for Azure Machine Learning myservice",
        "version": "1.0",
    },
    "schemes": ["https"],
    "consumes": ["application/json"],
    "produces": ["application/json"],
    "securityDefinitions": {
        "Bearer": {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "description": "For example: Bearer abc123",
        }
    },
    "paths": {
        "/": {
            "get": {
                "operationId": "ServiceHealthCheck",
                "description": "Simple health check endpoint to ensure the service is up at "
                "any given point.",
                "responses": {
                    "200": {
                        "description": "If service is up and running, this response will be "
                        "returned with the content 'Healthy'",
                        "schema": {"type": "string"},
                        "examples": {"application/json": "Healthy"},
                    },
                    "default": {
                        "description": "The service failed to execute due to an error.",
                        "schema": {"$ref": "#/definitions/ErrorResponse"},
                    },
                },
            }
        },
        "/score": {
            "post": {
                "operationId": "RunMLService",
                "description": "Run web service's model and get the prediction output",
                "security": [{"Bearer": []}],
                "parameters": [
                    {
                        "name": "serviceInputPayload",
                        "in": "body",
                        "description": "The input payload for executing the real-time "
                        "machine learning service.",
                        "schema": {"$ref": "#/definitions/ServiceInput"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The service processed the input correctly and "
                        "provided a result prediction, if applicable.",
                        "schema": {"$ref": "#/definitions/ServiceOutput"},
                    },
                    "default": {
                        "description": "The service failed to execute due to an error.",
                        "schema": {"$ref": "#/definitions/ErrorResponse"},
                    },
                },
            }
        },
    },
    "definitions": {
        "ServiceInput": {
            "type": "object",
            "properties": {
                "data": {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "integer", "format": "int64"}},
                }
            },
            "example": {"data": [[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]},
        },
        "ServiceOutput": {
            "type": "array",
            "items": {"type": "number", "format": "double"},
            "example": [3726.995],
        },
        "ErrorResponse": {
            "type": "object",
            "properties": {
                "status_code": {"type": "integer", "format": "int32"},
                "message": {"type": "string"},
            },
        },
    },
}


def test_swagger2_reproduces_the_reference_document():
    doc = swagger2(
        title="myservice",
        input_schema=infer_schema(np.array([[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]], dtype="int64")),
        output_schema=infer_schema(np.array([3726.995])),
        auth=True,
        schemes=("https",),
    )
    validate(doc)
    # Deliberate differences, each more truthful than the reference: our own product
    # name, `data` marked required, and the fixed row length of the array published.
    assert doc["info"]["description"] == "API specification for nbdeploy service myservice"
    data = doc["definitions"]["ServiceInput"]["properties"]["data"]
    assert (data["items"].pop("minItems"), data["items"].pop("maxItems")) == (10, 10)
    assert data.pop("minItems") == 1  # at least one row
    assert doc["definitions"]["ServiceOutput"].pop("minItems") == 1
    assert doc["definitions"]["ServiceInput"].pop("required") == ["data"]
    doc["info"]["description"] = REFERENCE["info"]["description"]
    assert doc == REFERENCE
    assert list(doc) == list(REFERENCE)  # same key order, for a readable document


def _golden_case(name: str) -> dict[str, Any]:
    cases: dict[str, dict[str, Any]] = {
        "dataframe_auth": {
            "title": "churn",
            "input_schema": SCHEMAS["dataframe"],
            "output_schema": OUTPUTS["dataframe"],
            "auth": True,
        },
        "ndarray_open": {
            "title": "digits",
            "input_schema": SCHEMAS["ndarray"],
            "output_schema": OUTPUTS["ndarray"],
            "auth": False,
            "version": "2",
        },
        "python_open": {
            "title": "sentiment",
            "input_schema": SCHEMAS["python"],
            "output_schema": OUTPUTS["python"],
            "auth": False,
        },
        "noschema_auth": {
            "title": "echo",
            "input_schema": None,
            "output_schema": None,
            "auth": True,
            "input_example": {"anything": [1, 2]},
        },
    }
    return cases[name]


@pytest.mark.parametrize("case", ["dataframe_auth", "ndarray_open", "python_open", "noschema_auth"])
@pytest.mark.parametrize("generator", list(GENERATORS))
def test_golden_documents(generator: str, case: str):
    doc = GENERATORS[generator](**_golden_case(case))
    path = GOLDEN / f"{generator}_{case}.json"
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("NBDEPLOY_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), (
        f"golden file {path.name} is missing; create it with "
        "NBDEPLOY_UPDATE_GOLDEN=1 .venv/bin/pytest tests/core/test_openapi.py"
    )
    assert path.read_text(encoding="utf-8") == text, (
        f"{path.name} differs from the generated document; if the change is intended, "
        "regenerate with NBDEPLOY_UPDATE_GOLDEN=1 and review the diff"
    )


def test_docstring_examples_run():
    import doctest

    import nbdeploy.core.openapi as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
