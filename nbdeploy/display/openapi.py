"""OpenAPI documents as tables: each operation's inputs, outputs and an example
request (what the ``%swagger`` view and the lab panel show)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .html import (
    PRE,
    compact_json,
    escape,
    html_table,
    link,
    plain_table,
    round_floats,
)

__all__ = [
    "enum_text",
    "json_type_text",
    "request_example",
    "swagger_tables",
]


def json_type_text(js: Any) -> str:
    if not isinstance(js, Mapping):
        return "any"
    kind = js.get("type")
    if isinstance(kind, list):
        kind = " | ".join(str(k) for k in kind if k != "null") or "null"
    text = str(kind) if kind else "any"
    if js.get("format"):
        text += f" ({js['format']})"
    if kind == "array" and isinstance(js.get("items"), Mapping) and js["items"]:
        text = f"array of {json_type_text(js['items'])}"
    return text


def enum_text(js: Any) -> str:
    if isinstance(js, Mapping) and isinstance(js.get("enum"), list):
        return ", ".join(str(v) for v in js["enum"] if v is not None)
    return ""


def _resolve(document: Mapping[str, Any], schema: Any) -> Any:
    """Follow a local ``$ref`` (``#/definitions/X`` or ``#/components/schemas/X``)."""
    seen = 0
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and seen < 20:
        node: Any = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node.get(part) if isinstance(node, Mapping) else None
        schema = node
        seen += 1
    return schema


def _nullable(js: Mapping[str, Any]) -> bool:
    kind = js.get("type")
    return bool(js.get("x-nullable") or js.get("nullable")) or (
        isinstance(kind, list) and "null" in kind
    )


def _flatten(
    document: Mapping[str, Any], schema: Any, path: str, depth: int = 0
) -> list[tuple[str, str, str, str]]:
    """(field path, type, nullable, allowed values) rows for a JSON Schema, depth first."""
    js = _resolve(document, schema)
    if not isinstance(js, Mapping) or depth > 6:
        return [(path or "(body)", "any", "", "")]
    for combo in ("anyOf", "oneOf"):
        if isinstance(js.get(combo), list):
            options = [_resolve(document, o) for o in js[combo]]
            kinds = " | ".join(json_type_text(o) for o in options)
            return [(path or "(body)", kinds, "", "")]
    props = js.get("properties")
    if isinstance(props, Mapping) and props:
        rows: list[tuple[str, str, str, str]] = []
        for name, sub in props.items():
            rows += _flatten(document, sub, f"{path}.{name}" if path else str(name), depth + 1)
        return rows
    items = js.get("items")
    if js.get("type") == "array" and isinstance(items, Mapping) and items:
        inner = _resolve(document, items)
        if isinstance(inner, Mapping) and (inner.get("properties") or inner.get("items")):
            return _flatten(document, inner, f"{path}[]", depth + 1)
    kind = json_type_text(js)
    nullable = "yes" if _nullable(js) else ("" if kind == "any" else "no")
    return [(path or "(body)", kind, nullable, enum_text(js))]


def _operation_io(document: Mapping[str, Any], op: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
    """(input schema, input example, output schema, output example) of one operation,
    for Swagger 2.0 (``parameters`` in body) and OpenAPI 3 (``requestBody``)."""
    in_schema: Any = None
    in_example: Any = None
    for param in op.get("parameters") or ():
        if isinstance(param, Mapping) and param.get("in") == "body":
            in_schema = param.get("schema")
    body = op.get("requestBody")
    if isinstance(body, Mapping):
        media = (body.get("content") or {}).get("application/json") or {}
        in_schema = media.get("schema")
        in_example = media.get("example")
    out_schema: Any = None
    out_example: Any = None
    responses = op.get("responses") or {}
    ok = responses.get("200") or responses.get(200) or {}
    if isinstance(ok, Mapping):
        out_schema = ok.get("schema")
        if isinstance(ok.get("examples"), Mapping):
            out_example = ok["examples"].get("application/json")
        media = (ok.get("content") or {}).get("application/json") or {}
        if isinstance(media, Mapping) and media:
            out_schema = media.get("schema", out_schema)
            out_example = media.get("example", out_example)
    resolved_in = _resolve(document, in_schema)
    if in_example is None and isinstance(resolved_in, Mapping):
        in_example = resolved_in.get("example")
    resolved_out = _resolve(document, out_schema)
    if out_example is None and isinstance(resolved_out, Mapping):
        out_example = resolved_out.get("example")
    return in_schema, in_example, out_schema, out_example


def request_example(document: Mapping[str, Any]) -> Any:
    """The example request body of the document's scoring operation (``/score``), or None.

    Examples
    --------
    >>> request_example({"paths": {}}) is None
    True
    """
    paths = document.get("paths") or {}
    op = (paths.get("/score") or {}).get("post")
    if not isinstance(op, Mapping):
        return None
    return _operation_io(document, op)[1]


def swagger_tables(
    document: Mapping[str, Any], *, docs_url: str | None = None, source: str | None = None
) -> dict[str, str]:
    """An OpenAPI (Swagger 2.0 or OpenAPI 3) document as readable tables.

    One section per path and method: the operation id and summary, the input fields
    (type, nullable, allowed values), the output fields, and the example request and
    response; a link to the service's own Swagger UI (``docs_url``).

    Examples
    --------
    >>> doc = {"swagger": "2.0", "info": {"title": "t"},
    ...        "paths": {"/": {"get": {"operationId": "ServiceHealthCheck"}}}}
    >>> print(swagger_tables(doc)["text/plain"])
    OpenAPI t (swagger 2.0)
    GET /  ServiceHealthCheck
    """
    plain, parts = _title(document, docs_url, source)
    for path, methods in (document.get("paths") or {}).items():
        if not isinstance(methods, Mapping):
            continue
        for method, op in methods.items():
            if isinstance(op, Mapping):
                _add_operation(document, path, method, op, plain, parts)
    parts.append("</div>")
    return {"text/plain": "\n".join(plain), "text/html": "".join(parts)}


_HEADERS = ("field", "type", "nullable", "allowed values")


def _title(
    document: Mapping[str, Any], docs_url: str | None, source: str | None
) -> tuple[list[str], list[str]]:
    """The first plain-text lines and the opening HTML of :func:`swagger_tables`."""
    info = document.get("info") or {}
    title = str(info.get("title") or "service")
    version = (
        f"swagger {document['swagger']}"
        if "swagger" in document
        else f"openapi {document.get('openapi', '?')}"
    )
    plain = [f"OpenAPI {title} ({version})"]
    parts = [
        f'<div class="nbdeploy-swagger"><b>OpenAPI: {escape(title)}</b> '
        f"<span>({escape(version)})</span>"
    ]
    if docs_url:
        parts.append(f" &mdash; interactive docs: {link(docs_url)}")
        plain.append(f"docs: {docs_url}")
    if source:
        plain.append(f"from: {source}")
    return plain, parts


def _add_operation(
    document: Mapping[str, Any],
    path: str,
    method: str,
    op: Mapping[str, Any],
    plain: list[str],
    parts: list[str],
) -> None:
    """One operation's section: its id and summary, then its input and output."""
    op_id = str(op.get("operationId") or "")
    summary = str(op.get("summary") or op.get("description") or "")
    plain.append(f"{method.upper()} {path}  {op_id}".rstrip())
    parts.append(
        f'<div class="nbdeploy-swagger-op" style="margin-top:8px">'
        f"<code><b>{escape(method.upper())}</b> {escape(path)}</code> "
        f"<i>{escape(op_id)}</i>" + (f"<div>{escape(summary)}</div>" if summary else "")
    )
    in_schema, in_example, out_schema, out_example = _operation_io(document, op)
    _add_payload(document, "input", in_schema, in_example, plain, parts)
    _add_payload(document, "output", out_schema, out_example, plain, parts)
    parts.append("</div>")


def _add_payload(
    document: Mapping[str, Any],
    label: str,
    schema: Any,
    example: Any,
    plain: list[str],
    parts: list[str],
) -> None:
    """The fields table and the example of an operation's input or output."""
    if schema is None and example is None:
        return
    rows = _flatten(document, schema, "") if schema is not None else []
    if rows:
        plain.append(f"  {label}:")
        plain += ["    " + ln for ln in plain_table(_HEADERS, rows).splitlines()]
        parts.append(f"<div>{escape(label)}</div>")
        parts.append(html_table(_HEADERS, ([escape(c) for c in row] for row in rows)))
    if example is not None:
        example = round_floats(example)
        kind = "request" if label == "input" else "response"
        plain.append(f"  example {kind}:")
        plain.append("    " + json.dumps(example))
        parts.append(
            f"<div>example {kind}</div>"
            f'<pre class="nbdeploy-example-{kind}" {PRE}>{escape(compact_json(example))}</pre>'
        )
