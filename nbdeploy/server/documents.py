"""What the scoring server tells about itself: its API documents and the page showing them.

``GET /swagger.json`` (Swagger 2.0, the reference's shape) and ``GET /openapi.json``
(OpenAPI 3.1) are built by :mod:`nbdeploy.core.openapi` from the service's schemas
(:func:`build_document`), once, on first request. For services whose ``run`` is
``@rawhttp`` the documents carry no schema (:func:`raw_document`): ``ServiceInput``
and ``ServiceOutput`` accept anything, the media types are ``*/*``, ``/score`` also
has a ``GET`` operation, and the descriptions say so.

``GET /docs`` is a small HTML page (:func:`render_docs_html`) that loads Swagger UI's
script and stylesheet from ``GET /docs/static/<file>`` and points it at
``openapi.json`` — no CDN, no internet. The files are Swagger UI 5
(``nbdeploy/server/static/swagger-ui``, from the npm package ``swagger-ui-dist``;
``scripts/vendor_swagger_ui.sh`` refreshes them): it reads the OpenAPI 3.1 document
the server publishes, which the 4.x of the ``swagger-ui-bundle`` wheel could not
("Unable to render this definition"). Every URL in the page is relative, so the page
also works behind a proxy that serves the service under a path prefix (JupyterHub,
Binder, nbdeploy's Jupyter proxy). Everything interpolated into the HTML is escaped.
"""

from __future__ import annotations

import copy
import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from nbdeploy.core.schema import json_default

if TYPE_CHECKING:
    from nbdeploy.server.runtime import ScoringRuntime

__all__ = [
    "ASSETS_DIR",
    "RAW_NOTE",
    "STATIC_FILES",
    "build_document",
    "raw_document",
    "render_docs_html",
    "swagger_ui_version",
]

#: The Swagger UI files the page uses, and their media types.
STATIC_FILES: dict[str, str] = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

#: Where the shipped Swagger UI files are.
ASSETS_DIR = Path(__file__).resolve().parent / "static" / "swagger-ui"


def swagger_ui_version() -> str:
    """The version of the shipped Swagger UI.

    Examples
    --------
    >>> int(swagger_ui_version().split(".")[0]) >= 5
    True
    """
    return (ASSETS_DIR / "VERSION").read_text().strip()


def _script_json(value: object) -> str:
    """``value`` as JSON safe to embed inside a ``<script>`` element."""
    return (
        json.dumps(value)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def render_docs_html(title: str, openapi_url: str = "openapi.json") -> str:
    """The Swagger UI page for a service called ``title``.

    Examples
    --------
    >>> page = render_docs_html("<my model>")
    >>> "&lt;my model&gt;" in page and "<my model>" not in page
    True
    """
    safe_title = html.escape(title)
    config = _script_json(
        {
            "url": openapi_url,
            "dom_id": "#swagger-ui",
            "deepLinking": True,
            "validatorUrl": None,
        }
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{safe_title} - Swagger UI</title>
<link rel="stylesheet" href="docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/static/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/static/swagger-ui-bundle.js"></script>
<script>
// Swagger UI 5 styles html.dark-mode: follow the browser's (and JupyterLab's) dark theme.
if (window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches) {{
  document.documentElement.classList.add("dark-mode");
}}
window.onload = function () {{
  var config = {config};
  config.presets = [SwaggerUIBundle.presets.apis];
  config.layout = "BaseLayout";
  window.ui = SwaggerUIBundle(config);
}};
</script>
</body>
</html>
"""


def build_document(
    build: Callable[..., dict[str, Any]], runtime: ScoringRuntime, title: str, auth: bool
) -> bytes:
    """The JSON bytes of the document ``build`` makes (``swagger2`` or ``openapi31`` of
    :mod:`nbdeploy.core.openapi`) for the script ``runtime`` loaded."""
    document = build(
        title=title,
        input_schema=runtime.input_schema,
        output_schema=runtime.output_schema,
        auth=auth,
        input_example=runtime.input_example,
        output_example=runtime.output_example,
    )
    if runtime.raw:
        document = raw_document(document)
    # Examples come from samples and may hold numpy or pandas values.
    options = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
    return orjson.dumps(document, default=json_default, option=options)


RAW_NOTE = (
    "Raw HTTP service: the scoring script's run() receives the whole request (method, "
    "query, headers, body bytes; @rawhttp) and answers with any status, headers and "
    "content type, so no schema is enforced. GET /score reaches it too."
)


def raw_document(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Swagger 2.0 or OpenAPI 3.1 document made permissive for raw scripts.

    Examples
    --------
    >>> from nbdeploy.core.openapi import swagger2
    >>> doc = raw_document(swagger2(title="img", input_schema=None, output_schema=None,
    ...                             auth=False))
    >>> sorted(doc["paths"]["/score"]), doc["consumes"]
    (['get', 'post'], ['*/*'])
    """
    doc = copy.deepcopy(document)
    doc["info"]["description"] = f"{doc['info'].get('description', '')}. {RAW_NOTE}"
    score = doc["paths"]["/score"]["post"]
    score["description"] = f"{score.get('description', '')}. {RAW_NOTE}"
    anything = {"description": "Any content (raw HTTP: @rawhttp run())."}
    if "swagger" in doc:
        doc["consumes"] = ["*/*"]
        doc["produces"] = ["*/*"]
        doc["definitions"]["ServiceInput"] = dict(anything)
        doc["definitions"]["ServiceOutput"] = dict(anything)
        score["parameters"] = [
            {**p, "required": False} if p.get("in") == "body" else p
            for p in score.get("parameters", [])
        ]
        get = {k: v for k, v in score.items() if k != "parameters"}
    else:
        schemas = doc["components"]["schemas"]
        schemas["ServiceInput"] = dict(anything)
        schemas["ServiceOutput"] = dict(anything)
        body = score["requestBody"]
        body["required"] = False
        body["content"] = {"*/*": {"schema": {"$ref": "#/components/schemas/ServiceInput"}}}
        ok = score["responses"]["200"]
        ok["content"] = {"*/*": {"schema": {"$ref": "#/components/schemas/ServiceOutput"}}}
        score["responses"].pop("422", None)  # nothing is validated
        get = {k: v for k, v in score.items() if k != "requestBody"}
    get = copy.deepcopy(get)
    get["operationId"] = "RunMLServiceGet"
    doc["paths"]["/score"]["get"] = get
    return doc
