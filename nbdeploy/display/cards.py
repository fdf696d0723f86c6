"""Rich display for nbdeploy's result objects, as pure functions.

Every function here takes a result object (a :class:`~nbdeploy.Model`, a
:class:`~nbdeploy.Webservice`, a list of them, an OpenAPI document) and returns a
MIME bundle: a ``dict`` with ``text/plain`` and ``text/html``. The objects'
``_repr_mimebundle_`` methods are one-line calls into this module, so the rendering is
tested without a notebook and ``import nbdeploy`` never imports it.

Everything interpolated into HTML goes through :func:`escape` — model names, tags,
URIs and example values come from users and from services, and a tag such as
``<script>`` must show as text, never run.

Examples
--------
>>> bundle = model_card(model)                      # doctest: +SKIP
>>> sorted(bundle)                                  # doctest: +SKIP
['text/html', 'text/plain']
"""

from __future__ import annotations

import html
import json
import math
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nbdeploy.core.auth import mask_secret
from nbdeploy.exceptions import NbdeployError
from nbdeploy.sdk.rendering import select_mimetypes

if TYPE_CHECKING:
    from nbdeploy.core.schema import Schema
    from nbdeploy.sdk.model import Model
    from nbdeploy.sdk.webservice import Webservice

__all__ = [
    "BORDER",
    "BUSY_COLOUR",
    "ERROR_COLOUR",
    "OK_COLOUR",
    "STATE_COLOURS",
    "SURFACE",
    "TEXT",
    "TEXT_MUTED",
    "chip",
    "client_snippets",
    "compact_json",
    "escape",
    "model_card",
    "models_table",
    "muted",
    "pre_style",
    "request_example",
    "round_floats",
    "schema_rows",
    "select_mimetypes",
    "service_base_uri",
    "service_card",
    "service_example",
    "services_table",
    "swagger_tables",
]

#: Badge colour per service state (``ServiceState`` values). A badge is white text on
#: its own colour, so it reads the same in every theme (contrast at least 4.5:1).
STATE_COLOURS: dict[str, str] = {
    "Healthy": "#2e7d32",
    "Transitioning": "#9a6700",
    "Unhealthy": "#c2410c",
    "Unschedulable": "#6a1b9a",
    "Failed": "#c62828",
}

# -- theme -----------------------------------------------------------------------------
# Text and surfaces use JupyterLab's CSS variables, as pandas and altair outputs do, so
# they follow the light or dark theme (JupyterLab, Notebook 7 and VS Code define them);
# the fallbacks are the light values GitHub and nbviewer use. Never a fixed light
# background under inherited text. Status colours mark borders and symbols, not text.

#: Main text colour.
TEXT = "var(--jp-content-font-color1, #1f2328)"
#: Secondary text (captions, "none").
TEXT_MUTED = "var(--jp-content-font-color2, #57606a)"
#: Background of code blocks and chips.
SURFACE = "var(--jp-layout-color2, #f6f8fa)"
#: Table and block borders.
BORDER = "var(--jp-border-color2, #d0d7de)"
#: Status marks (borders, symbols).
OK_COLOUR = "var(--jp-success-color1, #2e7d32)"
ERROR_COLOUR = "var(--jp-error-color1, #c62828)"
BUSY_COLOUR = "var(--jp-warn-color1, #9a6700)"

_TABLE = 'style="border-collapse:collapse;margin:4px 0;text-align:left"'
_CELL = f'style="border:1px solid {BORDER};padding:2px 8px;text-align:left;vertical-align:top"'


def pre_style(*, wrap: bool = False, max_height: str | None = None) -> str:
    """The ``style`` attribute of a code block (snippets, examples, logs) in any theme.

    Examples
    --------
    >>> "var(--jp-layout-color2" in pre_style()
    True
    """
    parts = [
        f"background:{SURFACE}",
        f"color:{TEXT}",
        f"border:1px solid {BORDER}",
        "border-radius:4px",
        "padding:6px",
        "margin:4px 0",
        "white-space:pre-wrap" if wrap else "white-space:pre",
        "overflow:auto",
        "font-size:12px",
    ]
    if max_height:
        parts.append(f"max-height:{max_height}")
    return f'style="{";".join(parts)}"'


_PRE = pre_style()


def chip(text: str) -> str:
    """A tag chip (``key=value``) that reads in light and dark themes."""
    return (
        f'<code class="nbdeploy-tag" style="background:{SURFACE};color:{TEXT};'
        f'border:1px solid {BORDER};border-radius:4px;padding:0 4px;margin-right:2px">'
        f"{escape(text)}</code>"
    )


def muted(text: str) -> str:
    """Secondary text such as "none"."""
    return f'<i style="color:{TEXT_MUTED}">{escape(text)}</i>'


def escape(value: object) -> str:
    """``str(value)`` made safe to put inside HTML text or a quoted attribute.

    Examples
    --------
    >>> escape("<script>alert('x')</script>")
    '&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;'
    """
    return html.escape(str(value), quote=True)


def round_floats(value: Any, digits: int = 6) -> Any:
    """``value`` with every float rounded to ``digits`` significant digits, so examples
    and snippets read ``0.0380759``, not ``0.038075906433423026``.

    Examples
    --------
    >>> round_floats({"data": [{"age": 0.038075906433423026, "n": 3}]})
    {'data': [{'age': 0.0380759, 'n': 3}]}
    """
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: round_floats(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [round_floats(v, digits) for v in value]
    return value


def compact_json(value: Any) -> str:
    """JSON for people: a ``{"data": [rows]}`` body with one row per line, anything
    else indented.

    Examples
    --------
    >>> print(compact_json({"data": [{"a": 1}, {"a": 2}]}))
    {"data": [
      {"a": 1},
      {"a": 2}
    ]}
    """
    if isinstance(value, dict) and len(value) == 1:
        ((key, rows),) = value.items()
        if isinstance(rows, list) and rows:
            body = ",\n  ".join(json.dumps(row) for row in rows)
            return f"{{{json.dumps(key)}: [\n  {body}\n]}}"
    return json.dumps(value, indent=1)


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], css_class: str = "") -> str:
    cls = f' class="{escape(css_class)}"' if css_class else ""
    head = "".join(f"<th {_CELL}>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td {_CELL}>{cell}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table{cls} {_TABLE}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def _link(uri: str | None) -> str:
    if not uri:
        return muted("none")
    return f'<a href="{escape(uri)}" target="_blank" rel="noopener">{escape(uri)}</a>'


def _tags_text(tags: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))


# -- models ----------------------------------------------------------------------------


def schema_rows(schema: Schema | None) -> list[tuple[str, str, str, str]]:
    """One ``(field, type, nullable, categories)`` row per input field of ``schema``.

    An ndarray schema is one row (its dtype and shape); a plain-Python schema one row
    per top-level property of its JSON Schema (or one row for the whole value).

    Examples
    --------
    >>> import pandas as pd
    >>> from nbdeploy.core.schema import infer_schema
    >>> schema_rows(infer_schema(pd.DataFrame({"x": [1.5, None]})))
    [('x', 'number (float64)', 'yes', '')]
    """
    if schema is None:
        return []
    if schema.kind in ("dataframe", "series"):
        return [
            (
                f.name,
                f.type.value if f.dtype is None else f"{f.type.value} ({f.dtype})",
                "yes" if f.nullable else "no",
                "" if f.categories is None else ", ".join(map(str, f.categories)),
            )
            for f in schema.fields
        ]
    if schema.kind == "ndarray":
        shape = "x".join("n" if d is None else str(d) for d in schema.shape or ())
        return [("(array)", f"{schema.dtype} [{shape}]", "no", "")]
    js = schema.json or {}
    props = js.get("properties")
    if isinstance(props, Mapping):
        required = set(js.get("required") or ())
        return [
            (str(k), _json_type_text(v), "no" if k in required else "yes", _enum_text(v))
            for k, v in props.items()
        ]
    return [("(value)", _json_type_text(js), "no", _enum_text(js))]


def _json_type_text(js: Any) -> str:
    if not isinstance(js, Mapping):
        return "any"
    kind = js.get("type")
    if isinstance(kind, list):
        kind = " | ".join(str(k) for k in kind if k != "null") or "null"
    text = str(kind) if kind else "any"
    if js.get("format"):
        text += f" ({js['format']})"
    if kind == "array" and isinstance(js.get("items"), Mapping) and js["items"]:
        text = f"array of {_json_type_text(js['items'])}"
    return text


def _enum_text(js: Any) -> str:
    if isinstance(js, Mapping) and isinstance(js.get("enum"), list):
        return ", ".join(str(v) for v in js["enum"] if v is not None)
    return ""


def model_card(model: Model) -> dict[str, str]:
    """The model card: name, version, framework, description, tags, input schema.

    Examples
    --------
    >>> model_card(nbdeploy.get_model("diabetes"))["text/plain"].splitlines()[0]  # doctest: +SKIP
    'Model diabetes:1 (sklearn 1.5.0)'
    """
    mv = model.model_version
    framework = f"{mv.framework} {mv.framework_version or ''}".strip()
    created = mv.created.strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = schema_rows(mv.input_schema)
    headers = ("field", "type", "nullable", "categories")

    plain = [f"Model {mv.name}:{mv.version} ({framework})"]
    if mv.description:
        plain.append(f"  description: {mv.description}")
    plain.append(f"  tags:        {_tags_text(mv.tags) or '(none)'}")
    plain.append(f"  created:     {created}")
    if rows:
        plain.append("  input schema:")
        plain += ["    " + line for line in _plain_table(headers, rows).splitlines()]
    else:
        plain.append("  input schema: (none: register with sample_input= to get one)")

    tags_html = " ".join(chip(f"{k}={v}") for k, v in sorted(mv.tags.items()))
    info = [
        ("framework", escape(framework)),
        ("description", escape(mv.description) if mv.description else muted("none")),
        ("tags", tags_html or muted("none")),
        ("created", escape(created)),
        ("content hash", f"<code>{escape(mv.content_hash[:19])}…</code>"),
    ]
    info_html = "".join(
        f"<tr><th {_CELL}>{escape(k)}</th><td {_CELL}>{v}</td></tr>" for k, v in info
    )
    if rows:
        schema_html = _table(headers, ([escape(c) for c in row] for row in rows))
        if mv.input_schema is not None:
            schema_html = f"<div>input schema ({escape(mv.input_schema.kind)})</div>" + schema_html
    else:
        schema_html = f"<div>{muted('no input schema (register with sample_input=)')}</div>"
    body = (
        f'<div class="nbdeploy-model-card">'
        f"<b>Model {escape(mv.name)}:{escape(mv.version)}</b>"
        f"<table {_TABLE}>{info_html}</table>{schema_html}</div>"
    )
    return {"text/plain": "\n".join(plain), "text/html": body}


def models_table(models: Sequence[Model]) -> dict[str, str]:
    """A table of registered model versions (what ``%models`` shows).

    Examples
    --------
    >>> models_table([])["text/plain"]
    'no models registered'
    """
    if not models:
        return {"text/plain": "no models registered", "text/html": muted("no models registered")}
    headers = ("name", "version", "framework", "tags", "input fields", "created")
    rows: list[tuple[str, ...]] = []
    for m in models:
        mv = m.model_version
        n_fields = len(schema_rows(mv.input_schema))
        rows.append(
            (
                mv.name,
                str(mv.version),
                f"{mv.framework} {mv.framework_version or ''}".strip(),
                _tags_text(mv.tags),
                str(n_fields) if n_fields else "",
                mv.created.strftime("%Y-%m-%d %H:%M:%S"),
            )
        )
    html_rows = ([escape(c) for c in row] for row in rows)
    return {
        "text/plain": _plain_table(headers, rows),
        "text/html": _table(headers, html_rows, "nbdeploy-models"),
    }


# -- services --------------------------------------------------------------------------


def service_base_uri(service: Webservice) -> str | None:
    """The service's root URL (``scoring_uri`` without its ``/score``), or None."""
    uri = service.scoring_uri
    if not uri:
        return None
    return uri[: -len("/score")] if uri.endswith("/score") else uri.rstrip("/")


def _service_keys(service: Webservice) -> tuple[str, ...]:
    """The service's auth keys, when it has any (key auth arrives with a later issue)."""
    get_keys = getattr(service, "get_keys", None)
    if get_keys is None:
        return ()
    try:
        keys = get_keys()
    except NbdeployError:
        return ()
    return tuple(k for k in keys if isinstance(k, str) and k) if keys else ()


def _snippet_credential(service: Webservice, masked: Sequence[str]) -> str | None:
    """What the client snippets send after ``Bearer``: the masked primary key, a token
    placeholder for token auth, or nothing."""
    if masked:
        return masked[0]
    try:
        token_auth = bool(getattr(service, "token_auth_enabled", False))
    except NbdeployError:
        token_auth = False
    return "<token from service.get_token()>" if token_auth else None


def service_example(service: Webservice) -> Any:
    """The first example row of the service's input, for client snippets (or None).

    Read from the service's bundle manifest (the schema the server publishes); a
    missing or unreadable bundle simply means no example.
    """
    path = service.record.bundle_path
    if not path:
        return None
    try:
        from nbdeploy.core.bundle import Bundle

        schema = Bundle.load(path).input_schema
    except (NbdeployError, OSError, ValueError, KeyError, TypeError):
        return None
    if schema is None or schema.example is None:
        return None
    example = schema.example
    return example[:1] if isinstance(example, list) else example


def client_snippets(
    scoring_uri: str, example: Any = None, *, key: str | None = None
) -> tuple[str, str]:
    """A Python ``requests`` snippet and a ``curl`` line that call ``scoring_uri``.

    ``key`` (already masked, or a placeholder) adds ``Authorization: Bearer <key>``.

    Examples
    --------
    >>> py, curl = client_snippets("http://h:1/score", [[1, 2]])
    >>> print(curl)
    curl -X POST http://h:1/score -H 'Content-Type: application/json' -d '{"data": [[1, 2]]}'
    """
    data = [] if example is None else round_floats(example)
    body = json.dumps({"data": data})
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    py = "\n".join(
        [
            "import requests",
            "",
            f"headers = {json.dumps(headers)}",
            f"payload = {body}",
            f"response = requests.post({scoring_uri!r}, json=payload, headers=headers)",
            "print(response.status_code, response.json())",
        ]
    )
    header_args = " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in headers.items())
    curl = f"curl -X POST {shlex.quote(scoring_uri)} {header_args} -d {shlex.quote(body)}"
    return py, curl


def _badge(state: str) -> str:
    colour = STATE_COLOURS.get(state, "#616161")
    return (
        f'<span class="nbdeploy-state" data-state="{escape(state)}" '
        f'style="background:{colour};color:white;border-radius:8px;padding:1px 8px;'
        f'font-size:12px">{escape(state)}</span>'
    )


def service_card(service: Webservice) -> dict[str, str]:
    """The service card: state badge, URIs, masked keys, client snippets.

    The state is the service's last known one (no probe), so displaying is cheap;
    ``service.state`` asks the target for the live one.

    Examples
    --------
    >>> service_card(svc)["text/plain"].splitlines()[0]      # doctest: +SKIP
    'Webservice diabetes-svc [Healthy]'
    """
    record = service.record
    state = record.state.value
    keys = _service_keys(service)
    masked = [mask_secret(k) for k in keys]
    base = service_base_uri(service)
    docs = f"{base}/docs" if base else None

    plain = [f"Webservice {record.name} [{state}]"]
    plain.append(f"  target:      {record.target}")
    plain.append(f"  models:      {', '.join(record.models) or '(none)'}")
    plain.append(f"  scoring URI: {record.scoring_uri or '(none)'}")
    plain.append(f"  swagger URI: {record.swagger_uri or '(none)'}")
    if masked:
        plain.append(f"  keys:        {', '.join(masked)}")
    if record.error:
        plain.append(f"  error:       {record.error}")

    rows = [
        ("target", escape(record.target)),
        ("models", escape(", ".join(record.models)) or muted("none")),
        ("scoring URI", _link(record.scoring_uri)),
        ("swagger URI", _link(record.swagger_uri)),
        ("docs", _link(docs)),
    ]
    if masked:
        rows.append(("keys", " ".join(f"<code>{escape(k)}</code>" for k in masked)))
    if record.error:
        rows.append(("error", f"<span>✘ {escape(record.error)}</span>"))
    info_html = "".join(
        f"<tr><th {_CELL}>{escape(k)}</th><td {_CELL}>{v}</td></tr>" for k, v in rows
    )
    snippets_html = ""
    if record.scoring_uri:
        py, curl = client_snippets(
            record.scoring_uri, service_example(service), key=_snippet_credential(service, masked)
        )
        plain.append(f"  curl:        {curl}")
        snippets_html = (
            "<details><summary>call it from Python / curl</summary>"
            f'<pre class="nbdeploy-snippet-python" {_PRE}>{escape(py)}</pre>'
            f'<pre class="nbdeploy-snippet-curl" {_PRE}>{escape(curl)}</pre></details>'
        )
    body = (
        f'<div class="nbdeploy-service-card"><b>Webservice {escape(record.name)}</b> '
        f"{_badge(state)}<table {_TABLE}>{info_html}</table>{snippets_html}</div>"
    )
    return {"text/plain": "\n".join(plain), "text/html": body}


def services_table(services: Sequence[Webservice]) -> dict[str, str]:
    """A table of recorded services with their last known state (what ``%services`` shows).

    Examples
    --------
    >>> services_table([])["text/plain"]
    'no services deployed'
    """
    if not services:
        return {"text/plain": "no services deployed", "text/html": muted("no services deployed")}
    headers = ("name", "target", "state", "models", "scoring URI")
    plain_rows: list[tuple[str, ...]] = []
    html_rows: list[list[str]] = []
    for svc in services:
        r = svc.record
        plain_rows.append(
            (r.name, r.target, r.state.value, ", ".join(r.models), r.scoring_uri or "")
        )
        html_rows.append(
            [
                escape(r.name),
                escape(r.target),
                _badge(r.state.value),
                escape(", ".join(r.models)),
                _link(r.scoring_uri),
            ]
        )
    return {
        "text/plain": _plain_table(headers, plain_rows),
        "text/html": _table(headers, html_rows, "nbdeploy-services"),
    }


# -- OpenAPI documents -----------------------------------------------------------------


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
            kinds = " | ".join(_json_type_text(o) for o in options)
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
    kind = _json_type_text(js)
    nullable = "yes" if _nullable(js) else ("" if kind == "any" else "no")
    return [(path or "(body)", kind, nullable, _enum_text(js))]


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
        parts.append(f" &mdash; interactive docs: {_link(docs_url)}")
        plain.append(f"docs: {docs_url}")
    if source:
        plain.append(f"from: {source}")
    headers = ("field", "type", "nullable", "allowed values")
    for path, methods in (document.get("paths") or {}).items():
        if not isinstance(methods, Mapping):
            continue
        for method, op in methods.items():
            if not isinstance(op, Mapping):
                continue
            op_id = str(op.get("operationId") or "")
            summary = str(op.get("summary") or op.get("description") or "")
            plain.append(f"{method.upper()} {path}  {op_id}".rstrip())
            parts.append(
                f'<div class="nbdeploy-swagger-op" style="margin-top:8px">'
                f"<code><b>{escape(method.upper())}</b> {escape(path)}</code> "
                f"<i>{escape(op_id)}</i>" + (f"<div>{escape(summary)}</div>" if summary else "")
            )
            in_schema, in_example, out_schema, out_example = _operation_io(document, op)
            for label, schema, example in (
                ("input", in_schema, in_example),
                ("output", out_schema, out_example),
            ):
                if schema is None and example is None:
                    continue
                rows = _flatten(document, schema, "") if schema is not None else []
                if rows:
                    plain.append(f"  {label}:")
                    plain += ["    " + ln for ln in _plain_table(headers, rows).splitlines()]
                    parts.append(f"<div>{escape(label)}</div>")
                    parts.append(_table(headers, ([escape(c) for c in row] for row in rows)))
                if example is not None:
                    example = round_floats(example)
                    text = compact_json(example)
                    plain.append(f"  example {'request' if label == 'input' else 'response'}:")
                    plain.append("    " + json.dumps(example))
                    kind = "request" if label == "input" else "response"
                    parts.append(
                        f"<div>example {kind}</div>"
                        f'<pre class="nbdeploy-example-{kind}" {_PRE}>{escape(text)}</pre>'
                    )
            parts.append("</div>")
    parts.append("</div>")
    return {"text/plain": "\n".join(plain), "text/html": "".join(parts)}
