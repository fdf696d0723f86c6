"""Model and service cards and tables, as pure functions.

Every function here takes a result object (a :class:`~nbdeploy.Model`, a
:class:`~nbdeploy.Webservice`, a list of them) and returns a MIME bundle: a ``dict``
with ``text/plain`` and ``text/html``. The objects' ``_repr_mimebundle_`` find
:func:`model_card` and :func:`service_card` through :mod:`nbdeploy.sdk.rendering`
(registered by :mod:`nbdeploy.display`), so the rendering is tested without a
notebook. Everything interpolated into HTML goes through
:func:`~nbdeploy.display.html.escape`.

Examples
--------
>>> bundle = model_card(model)                      # doctest: +SKIP
>>> sorted(bundle)                                  # doctest: +SKIP
['text/html', 'text/plain']
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nbdeploy.core.auth import mask_secret
from nbdeploy.exceptions import NbdeployError

from .html import (
    CELL_STYLE,
    PRE,
    STATE_COLOURS,
    TABLE_STYLE,
    chip,
    escape,
    html_table,
    link,
    muted,
    plain_table,
    round_floats,
    tags_text,
)
from .openapi import enum_text, json_type_text

if TYPE_CHECKING:
    from nbdeploy.core.schema import Schema
    from nbdeploy.sdk.model import Model
    from nbdeploy.sdk.webservice import Webservice

__all__ = [
    "client_snippets",
    "model_card",
    "models_table",
    "schema_rows",
    "service_base_uri",
    "service_card",
    "service_example",
    "services_table",
]


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
            (str(k), json_type_text(v), "no" if k in required else "yes", enum_text(v))
            for k, v in props.items()
        ]
    return [("(value)", json_type_text(js), "no", enum_text(js))]


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
    plain.append(f"  tags:        {tags_text(mv.tags) or '(none)'}")
    plain.append(f"  created:     {created}")
    if rows:
        plain.append("  input schema:")
        plain += ["    " + line for line in plain_table(headers, rows).splitlines()]
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
        f"<tr><th {CELL_STYLE}>{escape(k)}</th><td {CELL_STYLE}>{v}</td></tr>" for k, v in info
    )
    if rows:
        schema_html = html_table(headers, ([escape(c) for c in row] for row in rows))
        if mv.input_schema is not None:
            schema_html = f"<div>input schema ({escape(mv.input_schema.kind)})</div>" + schema_html
    else:
        schema_html = f"<div>{muted('no input schema (register with sample_input=)')}</div>"
    body = (
        f'<div class="nbdeploy-model-card">'
        f"<b>Model {escape(mv.name)}:{escape(mv.version)}</b>"
        f"<table {TABLE_STYLE}>{info_html}</table>{schema_html}</div>"
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
                tags_text(mv.tags),
                str(n_fields) if n_fields else "",
                mv.created.strftime("%Y-%m-%d %H:%M:%S"),
            )
        )
    html_rows = ([escape(c) for c in row] for row in rows)
    return {
        "text/plain": plain_table(headers, rows),
        "text/html": html_table(headers, html_rows, "nbdeploy-models"),
    }


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
        ("scoring URI", link(record.scoring_uri)),
        ("swagger URI", link(record.swagger_uri)),
        ("docs", link(docs)),
    ]
    if masked:
        rows.append(("keys", " ".join(f"<code>{escape(k)}</code>" for k in masked)))
    if record.error:
        rows.append(("error", f"<span>✘ {escape(record.error)}</span>"))
    info_html = "".join(
        f"<tr><th {CELL_STYLE}>{escape(k)}</th><td {CELL_STYLE}>{v}</td></tr>" for k, v in rows
    )
    snippets_html = ""
    if record.scoring_uri:
        py, curl = client_snippets(
            record.scoring_uri, service_example(service), key=_snippet_credential(service, masked)
        )
        plain.append(f"  curl:        {curl}")
        snippets_html = (
            "<details><summary>call it from Python / curl</summary>"
            f'<pre class="nbdeploy-snippet-python" {PRE}>{escape(py)}</pre>'
            f'<pre class="nbdeploy-snippet-curl" {PRE}>{escape(curl)}</pre></details>'
        )
    body = (
        f'<div class="nbdeploy-service-card"><b>Webservice {escape(record.name)}</b> '
        f"{_badge(state)}<table {TABLE_STYLE}>{info_html}</table>{snippets_html}</div>"
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
                link(r.scoring_uri),
            ]
        )
    return {
        "text/plain": plain_table(headers, plain_rows),
        "text/html": html_table(headers, html_rows, "nbdeploy-services"),
    }
