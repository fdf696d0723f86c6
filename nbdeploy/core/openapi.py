"""The OpenAPI documents a scoring service publishes.

Two documents describe the same service:

- :func:`swagger2` — ``GET /swagger.json``, the Swagger 2.0 document in exactly the
  shape Azure ML services publish (paths ``/`` = ``ServiceHealthCheck`` and ``/score`` =
  ``RunMLService``; definitions ``ServiceInput``, ``ServiceOutput``, ``ErrorResponse``;
  a ``Bearer`` API key when auth is on), so clients and code generators written for
  that reference keep working;
- :func:`openapi31` — ``GET /openapi.json``, the equivalent OpenAPI 3.1 document for
  modern tools, which can also say that a value may be ``null`` and which error
  statuses ``/score`` answers with.

Both are generated from the model's :class:`~nbdeploy.core.schema.Schema` (so they tell
the truth about what :meth:`Schema.convert` accepts) with examples taken from the
samples. They are plain dicts, ready for ``json.dumps``.
"""

from __future__ import annotations

from typing import Any

from nbdeploy.core.schema import Dialect, Schema

__all__ = ["openapi31", "swagger2"]

_HEALTH_DESCRIPTION = "Simple health check endpoint to ensure the service is up at any given point."
_HEALTH_OK = (
    "If service is up and running, this response will be returned with the content 'Healthy'"
)
_SCORE_DESCRIPTION = "Run web service's model and get the prediction output"
_SCORE_OK = (
    "The service processed the input correctly and provided a result prediction, if applicable."
)
_INPUT_DESCRIPTION = "The input payload for executing the real-time machine learning service."
_FAILED = "The service failed to execute due to an error."
_BEARER_DESCRIPTION = "For example: Bearer abc123"
_ANY_INPUT = "Any JSON value, not validated by the service: the scoring script's run() reads it."
_ANY_OUTPUT = "Whatever the scoring script's run() returns, as JSON."

# The error statuses /score answers with (OpenAPI 3.1 document), from nbdeploy.exceptions.
_SCORE_ERRORS: dict[str, str] = {
    "400": "The request body is not valid JSON or has no 'data' field.",
    "401": "The Authorization header is missing or holds a wrong or expired key or token.",
    "413": "The request body is larger than the service accepts.",
    "422": "The input data does not match the model's schema; the message names the "
    "offending field, row and expected type.",
    "500": "The scoring script's run() raised; the traceback is in the service logs.",
}


def _info(title: str, version: str) -> dict[str, Any]:
    return {
        "title": title,
        "description": f"API specification for nbdeploy service {title}",
        "version": version,
    }


def _example(schema: Schema | None, given: Any) -> Any:
    if given is not None:
        return given
    return None if schema is None else schema.example


def _error_response() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "status_code": {"type": "integer", "format": "int32"},
            "message": {"type": "string"},
        },
    }


def _input_definition(
    schema: Schema | None, example: Any, dialect: Dialect, ref_example: bool
) -> dict[str, Any]:
    if schema is None:
        data: dict[str, Any] = {"description": _ANY_INPUT}
    else:
        data = schema.to_json_schema(dialect)
    out: dict[str, Any] = {"type": "object", "properties": {"data": data}, "required": ["data"]}
    if example is not None and ref_example:
        out["example"] = {"data": example}
    return out


def _output_definition(
    schema: Schema | None, example: Any, dialect: Dialect, ref_example: bool
) -> dict[str, Any]:
    if schema is None:
        out: dict[str, Any] = {"description": _ANY_OUTPUT}
    else:
        out = dict(schema.to_json_schema(dialect))
    if example is not None and ref_example:
        out["example"] = example
    return out


def _definitions(
    input_schema: Schema | None,
    output_schema: Schema | None,
    input_example: Any,
    output_example: Any,
    dialect: Dialect,
    *,
    examples: bool,
) -> dict[str, Any]:
    """The named schemas both documents share (``examples``: put the examples in them)."""
    return {
        "ServiceInput": _input_definition(input_schema, input_example, dialect, examples),
        "ServiceOutput": _output_definition(output_schema, output_example, dialect, examples),
        "ErrorResponse": _error_response(),
    }


def _operation(operation_id: str, description: str, *, auth: bool, **rest: Any) -> dict[str, Any]:
    """An operation: its id and description, the ``Bearer`` requirement when ``auth``,
    then ``rest`` (parameters or request body, responses) in the order given."""
    operation: dict[str, Any] = {"operationId": operation_id, "description": description}
    if auth:
        operation["security"] = [{"Bearer": []}]
    operation.update(rest)
    return operation


def _swagger_failed() -> dict[str, Any]:
    return {"description": _FAILED, "schema": {"$ref": "#/definitions/ErrorResponse"}}


def _swagger_health() -> dict[str, Any]:
    """``GET /`` in Swagger 2.0."""
    ok = {
        "description": _HEALTH_OK,
        "schema": {"type": "string"},
        "examples": {"application/json": "Healthy"},
    }
    return _operation(
        "ServiceHealthCheck",
        _HEALTH_DESCRIPTION,
        auth=False,
        responses={"200": ok, "default": _swagger_failed()},
    )


def _swagger_score(auth: bool) -> dict[str, Any]:
    """``POST /score`` in Swagger 2.0: the payload is a body parameter."""
    payload = {
        "name": "serviceInputPayload",
        "in": "body",
        "description": _INPUT_DESCRIPTION,
        "schema": {"$ref": "#/definitions/ServiceInput"},
    }
    ok = {"description": _SCORE_OK, "schema": {"$ref": "#/definitions/ServiceOutput"}}
    return _operation(
        "RunMLService",
        _SCORE_DESCRIPTION,
        auth=auth,
        parameters=[payload],
        responses={"200": ok, "default": _swagger_failed()},
    )


def _json_content(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    """An OpenAPI 3 ``content`` map: JSON with ``schema`` and, unless None, ``example``."""
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"application/json": media}


def _openapi_error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": _json_content({"$ref": "#/components/schemas/ErrorResponse"}, None),
    }


def _openapi_health() -> dict[str, Any]:
    """``GET /`` in OpenAPI 3.1: also 503 while the service starts."""
    ok = {"description": _HEALTH_OK, "content": _json_content({"type": "string"}, "Healthy")}
    return _operation(
        "ServiceHealthCheck",
        _HEALTH_DESCRIPTION,
        auth=False,
        responses={
            "200": ok,
            "503": _openapi_error("The service is starting: init() has not finished yet."),
            "default": _openapi_error(_FAILED),
        },
    )


def _openapi_score(auth: bool, input_example: Any, output_example: Any) -> dict[str, Any]:
    """``POST /score`` in OpenAPI 3.1: a JSON request body and every error status."""
    request = None if input_example is None else {"data": input_example}
    body = {
        "description": _INPUT_DESCRIPTION,
        "required": True,
        "content": _json_content({"$ref": "#/components/schemas/ServiceInput"}, request),
    }
    output = _json_content({"$ref": "#/components/schemas/ServiceOutput"}, output_example)
    responses: dict[str, Any] = {"200": {"description": _SCORE_OK, "content": output}}
    for status, description in _SCORE_ERRORS.items():
        if status != "401" or auth:
            responses[status] = _openapi_error(description)
    responses["default"] = _openapi_error(_FAILED)
    return _operation(
        "RunMLService", _SCORE_DESCRIPTION, auth=auth, requestBody=body, responses=responses
    )


def swagger2(
    *,
    title: str,
    input_schema: Schema | None,
    output_schema: Schema | None,
    auth: bool,
    version: str = "1.0",
    input_example: Any = None,
    output_example: Any = None,
    schemes: tuple[str, ...] = ("http",),
) -> dict[str, Any]:
    """The Swagger 2.0 document of a service, in the shape of the Azure ML reference.

    Parameters
    ----------
    title:
        The service name (``info.title``).
    input_schema, output_schema:
        The model's schemas; ``None`` documents any JSON value.
    auth:
        Whether ``/score`` needs ``Authorization: Bearer <key>``: adds the ``Bearer``
        security definition and the ``security`` requirement on ``/score``.
    version:
        ``info.version``.
    input_example, output_example:
        Examples of the ``data`` value and of the response; default to the schemas'
        examples (the first rows of the samples).
    schemes:
        The URL schemes the service answers on (``("https",)`` behind TLS).

    Returns
    -------
    dict
        The document. Swagger 2.0 has no ``null`` type and no ``oneOf``: nullable
        values carry ``"x-nullable": true``.

    Examples
    --------
    >>> import numpy as np
    >>> from nbdeploy.core.schema import infer_schema
    >>> doc = swagger2(title="diabetes", input_schema=infer_schema(np.zeros((1, 10))),
    ...                output_schema=None, auth=True)
    >>> doc["paths"]["/score"]["post"]["operationId"], doc["paths"]["/score"]["post"]["security"]
    ('RunMLService', [{'Bearer': []}])
    >>> doc["definitions"]["ServiceInput"]["example"]
    {'data': [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]}
    """
    doc: dict[str, Any] = {
        "swagger": "2.0",
        "info": _info(title, version),
        "schemes": list(schemes),
        "consumes": ["application/json"],
        "produces": ["application/json"],
    }
    if auth:
        doc["securityDefinitions"] = {
            "Bearer": {
                "type": "apiKey",
                "name": "Authorization",
                "in": "header",
                "description": _BEARER_DESCRIPTION,
            }
        }
    doc["paths"] = {
        "/": {"get": _swagger_health()},
        "/score": {"post": _swagger_score(auth)},
    }
    doc["definitions"] = _definitions(
        input_schema,
        output_schema,
        _example(input_schema, input_example),
        _example(output_schema, output_example),
        "swagger2",
        examples=True,
    )
    return doc


def openapi31(
    *,
    title: str,
    input_schema: Schema | None,
    output_schema: Schema | None,
    auth: bool,
    version: str = "1.0",
    input_example: Any = None,
    output_example: Any = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1.0 document of a service: the same API as :func:`swagger2`.

    Parameters are those of :func:`swagger2` (without ``schemes``: 3.1 clients resolve
    the paths against the document's own URL). Nullable values are type arrays
    (``["integer", "null"]``), examples sit on the request and response media types,
    ``/score`` lists its error responses (400, 401 with auth, 413, 422, 500), and auth
    is an HTTP bearer security scheme.

    Examples
    --------
    >>> from nbdeploy.core.schema import infer_schema
    >>> doc = openapi31(title="echo", input_schema=infer_schema({"text": "hi"}),
    ...                 output_schema=None, auth=False)
    >>> doc["openapi"], sorted(doc["paths"]["/score"]["post"]["responses"])
    ('3.1.0', ['200', '400', '413', '422', '500', 'default'])
    >>> doc["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]["example"]
    {'data': {'text': 'hi'}}
    """
    in_example = _example(input_schema, input_example)
    out_example = _example(output_schema, output_example)
    components: dict[str, Any] = {
        "schemas": _definitions(
            input_schema, output_schema, in_example, out_example, "2020-12", examples=False
        )
    }
    if auth:
        components["securitySchemes"] = {
            "Bearer": {"type": "http", "scheme": "bearer", "description": _BEARER_DESCRIPTION}
        }
    return {
        "openapi": "3.1.0",
        "info": _info(title, version),
        "paths": {
            "/": {"get": _openapi_health()},
            "/score": {"post": _openapi_score(auth, in_example, out_example)},
        },
        "components": components,
    }
