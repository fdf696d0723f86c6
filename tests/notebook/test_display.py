"""Rich display: the MIME bundles of models, services, lists and OpenAPI documents."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbdeploy.api import register
from nbdeploy.core.auth import mask_secret
from nbdeploy.core.openapi import openapi31, swagger2
from nbdeploy.core.schema import infer_schema
from nbdeploy.core.services import ServiceRecord
from nbdeploy.core.workspace import Workspace
from nbdeploy.display import cards, openapi
from nbdeploy.display.html import STATE_COLOURS
from nbdeploy.display.views import ModelList, ServiceList, ServiceLogs
from nbdeploy.notebook.scriptcheck import RunCheck, ScriptCheck
from nbdeploy.sdk.webservice import Webservice

EVIL = "<script>alert('x')</script>"


def _service(ws: Workspace, **changes: Any) -> Webservice:
    fields: dict[str, Any] = {
        "name": "diabetes-svc",
        "target": "local",
        "state": "Healthy",
        "scoring_uri": "http://127.0.0.1:5001/score",
        "swagger_uri": "http://127.0.0.1:5001/swagger.json",
        "models": ("diabetes:1",),
    }
    fields.update(changes)
    return Webservice._from_record(ws, ServiceRecord(**fields))


def _no_raw(html: str, text: str) -> None:
    assert text not in html, f"{text!r} reached the HTML unescaped"


# -- model card ------------------------------------------------------------------------


def test_model_card_shows_name_version_framework_tags_and_schema(registered: Any) -> None:
    bundle = registered._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    plain, html = bundle["text/plain"], bundle["text/html"]
    assert plain.startswith("Model diabetes:1 (sklearn ")
    assert "team=ml" in plain
    for column in ("age", "sex", "bmi", "s6"):
        assert column in plain
        assert f">{column}<" in html
    assert 'class="nbdeploy-model-card"' in html
    assert "number (float64)" in html


def test_model_card_escapes_everything_interpolated(home: Workspace) -> None:
    sample = pd.DataFrame({EVIL: pd.Categorical(["<b>a</b>", "b"])})
    model = register(
        {"any": "object"},
        "evil",
        description=EVIL,
        tags={"x": EVIL, EVIL: "y"},
        sample_input=sample,
    )
    html = model._repr_mimebundle_()["text/html"]
    _no_raw(html, "<script>")
    _no_raw(html, "<b>a</b>")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "&lt;b&gt;a&lt;/b&gt;" in html  # the category level, escaped
    assert EVIL in model._repr_mimebundle_()["text/plain"]  # plain text stays readable


def test_model_card_without_schema_says_how_to_get_one(home: Workspace) -> None:
    model = register([1, 2, 3], "plain")
    bundle = model._repr_mimebundle_()
    assert "register with sample_input=" in bundle["text/plain"]
    assert "sample_input=" in bundle["text/html"]


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        pytest.param(None, None, {"text/plain", "text/html"}, id="all"),
        pytest.param(["text/plain"], None, {"text/plain"}, id="include-plain"),
        pytest.param(None, ["text/html"], {"text/plain"}, id="exclude-html"),
        pytest.param(["text/html"], ["text/html"], set(), id="both"),
    ],
)
def test_repr_mimebundle_honours_include_and_exclude(
    registered: Any,
    home: Workspace,
    include: list[str] | None,
    exclude: list[str] | None,
    expected: set[str],
) -> None:
    assert set(registered._repr_mimebundle_(include=include, exclude=exclude)) == expected
    svc = _service(home)
    assert set(svc._repr_mimebundle_(include=include, exclude=exclude)) == expected


def test_repr_stays_cheap_and_plain(registered: Any, home: Workspace) -> None:
    assert repr(registered) == "Model(name='diabetes', version=1, framework='sklearn')"
    assert repr(_service(home)).startswith("Webservice(name='diabetes-svc'")


def test_schema_rows_for_each_kind() -> None:
    frame = pd.DataFrame({"c": pd.Categorical(["a", "b"]), "n": [1.5, None]})
    assert cards.schema_rows(infer_schema(frame)) == [
        ("c", "category (category)", "no", "a, b"),
        ("n", "number (float64)", "yes", ""),
    ]
    assert cards.schema_rows(infer_schema(np.zeros((2, 3), dtype="float32"))) == [
        ("(array)", "float32 [nx3]", "no", "")
    ]
    rows = cards.schema_rows(infer_schema({"a": 1, "b": "x"}))
    assert [r[0] for r in rows] == ["a", "b"]
    assert cards.schema_rows(None) == []


# -- service card ----------------------------------------------------------------------


def test_service_card_has_badge_uris_and_client_snippets(home: Workspace) -> None:
    bundle = _service(home)._repr_mimebundle_()
    plain, html = bundle["text/plain"], bundle["text/html"]
    assert plain.splitlines()[0] == "Webservice diabetes-svc [Healthy]"
    assert "scoring URI: http://127.0.0.1:5001/score" in plain
    assert 'data-state="Healthy"' in html
    assert STATE_COLOURS["Healthy"] in html
    assert 'href="http://127.0.0.1:5001/docs"' in html
    assert "import requests" in html
    assert "requests.post(&#x27;http://127.0.0.1:5001/score&#x27;" in html
    assert "curl -X POST http://127.0.0.1:5001/score" in plain
    assert "Content-Type: application/json" in plain
    assert "Authorization" not in plain + html  # no auth, no keys: nothing shown
    assert "keys" not in plain


@pytest.mark.parametrize("state", ["Transitioning", "Unhealthy", "Unschedulable", "Failed"])
def test_service_card_badge_colour_follows_the_state(home: Workspace, state: str) -> None:
    html = _service(home, state=state)._repr_mimebundle_()["text/html"]
    assert f'data-state="{state}"' in html
    assert STATE_COLOURS[state] in html


def test_service_card_escapes_error_and_uris(home: Workspace) -> None:
    svc = _service(
        home,
        state="Failed",
        error=EVIL,
        scoring_uri="http://127.0.0.1:1/score?<x>",
    )
    bundle = svc._repr_mimebundle_()
    _no_raw(bundle["text/html"], "<script>")
    _no_raw(bundle["text/html"], "<x>")
    assert f"error:       {EVIL}" in bundle["text/plain"]


def test_service_card_masks_keys_when_the_service_has_them(home: Workspace) -> None:
    class KeyedService(Webservice):
        def get_keys(self) -> tuple[str, str]:
            return ("primarysecret0123456789", "secondarysecret987654")

    record = ServiceRecord("keyed", "local", "Healthy", scoring_uri="http://127.0.0.1:2/score")
    svc = KeyedService._from_record(home, record)
    bundle = svc._repr_mimebundle_()
    for text in bundle.values():
        assert "primarysecret0123456789" not in text
        assert "secondarysecret987654" not in text
    assert "keys:        prim…, seco…" in bundle["text/plain"]
    assert "Authorization: Bearer prim" in bundle["text/plain"]
    assert "&quot;Authorization&quot;: &quot;Bearer prim" in bundle["text/html"]


def test_client_snippets_quote_the_body_for_the_shell() -> None:
    py, curl = cards.client_snippets("http://h:1/score", [{"name": "O'Brien"}])
    assert curl.endswith("""-d '{"data": [{"name": "O'"'"'Brien"}]}'""")
    compile(py, "<snippet>", "exec")  # the Python snippet is valid code
    assert "requests.post('http://h:1/score', json=payload, headers=headers)" in py


def test_keys_are_masked_by_the_cores_mask_secret() -> None:
    # One masking rule for every front: the core's (what ServiceAuth's repr shows too).
    assert cards.mask_secret is mask_secret
    assert not hasattr(cards, "mask_key")
    assert mask_secret("abcdefghijkl") == "abcd…"
    assert mask_secret("short") == "…"


# -- lists -----------------------------------------------------------------------------


def test_model_and_service_lists_render_as_tables(registered: Any, home: Workspace) -> None:
    models = ModelList([registered])
    assert models == [registered]
    assert models[0] is registered
    assert len(models) == 1
    bundle = models._repr_mimebundle_()
    assert bundle["text/plain"].splitlines()[0].split() == [
        "name",
        "version",
        "framework",
        "tags",
        "input",
        "fields",
        "created",
    ]
    assert 'class="nbdeploy-models"' in bundle["text/html"]
    assert bundle["text/html"].count("<tr>") == 2  # header + one model

    services = ServiceList([_service(home), _service(home, name="b", state="Failed")])
    html = services._repr_mimebundle_()["text/html"]
    assert 'data-state="Failed"' in html
    assert html.count("<tr>") == 3
    assert ServiceList()._repr_mimebundle_()["text/plain"] == "no services deployed"
    assert ModelList()._repr_mimebundle_()["text/plain"] == "no models registered"


def test_service_logs_are_escaped() -> None:
    bundle = ServiceLogs("svc", f"line\n{EVIL}\n")._repr_mimebundle_()
    _no_raw(bundle["text/html"], "<script>")
    assert EVIL in bundle["text/plain"]
    assert ServiceLogs.from_dict(ServiceLogs("a", "b").to_dict()) == ServiceLogs("a", "b")


# -- OpenAPI documents -----------------------------------------------------------------


@pytest.fixture
def frame_schema() -> Any:
    return infer_schema(pd.DataFrame({"age": [1.5, None], "kind": ["a", "b"]}))


@pytest.mark.parametrize("build", [swagger2, openapi31], ids=["swagger2", "openapi31"])
def test_swagger_tables_show_operations_fields_and_examples(build: Any, frame_schema: Any) -> None:
    document = build(
        title="diabetes-svc",
        input_schema=frame_schema,
        output_schema=infer_schema(np.array([1.0, 2.0])),
        auth=False,
    )
    bundle = openapi.swagger_tables(document, docs_url="http://127.0.0.1:5001/docs")
    plain, html = bundle["text/plain"], bundle["text/html"]
    assert "POST /score  RunMLService" in plain
    assert "GET /  ServiceHealthCheck" in plain
    assert re.search(r"data\[\]\.age\s+number \(double\)\s+yes", plain), plain
    assert re.search(r"data\[\]\.kind\s+string\s+no", plain), plain
    assert '"age": 1.5' in plain  # the example request
    assert 'href="http://127.0.0.1:5001/docs"' in html
    assert 'class="nbdeploy-example-request"' in html
    assert 'class="nbdeploy-example-response"' in html
    assert openapi.request_example(document) == {"data": frame_schema.example}


def test_swagger_tables_escape_titles_fields_and_examples() -> None:
    schema = infer_schema(pd.DataFrame({EVIL: ["<img src=x>"]}))
    document = swagger2(title=EVIL, input_schema=schema, output_schema=None, auth=True)
    html = openapi.swagger_tables(document, docs_url="http://h/docs?a=<blink>")["text/html"]
    _no_raw(html, "<script>")
    _no_raw(html, "<img")
    _no_raw(html, "<blink>")


def test_script_check_round_trips_and_shows_cell_lines(tmp_path: Any) -> None:
    from nbdeploy.core.scoring import check_script

    report = check_script(
        "def init():\n    pass\n\ndef run(data):\n    return df\n", known_names={"df"}
    )
    check = ScriptCheck(
        path="score.py",
        report=report,
        run=RunCheck(model="m:1", ok=False, phase="run", error=EVIL, script_line=5),
    )
    assert ScriptCheck.from_dict(check.to_dict()) == check
    assert not check.ok
    plain = check._repr_mimebundle_()["text/plain"]
    assert "line 5 of score.py (cell line 6): name 'df' is only defined in the notebook" in plain
    _no_raw(check._repr_mimebundle_()["text/html"], "<script>")


def test_snippets_and_examples_carry_no_17_digit_floats() -> None:
    from nbdeploy.display.cards import client_snippets
    from nbdeploy.display.openapi import swagger_tables

    example = [{"age": 0.038075906433423026, "n": 3}]
    py, curl = client_snippets("http://h:1/score", example)
    assert "0.0380759" in py
    assert "0.038075906433423026" not in py + curl
    doc = {
        "swagger": "2.0",
        "paths": {
            "/score": {
                "post": {"parameters": [{"in": "body", "schema": {"example": {"data": example}}}]}
            }
        },
    }
    tables = swagger_tables(doc)
    assert "0.038075906433423026" not in tables["text/plain"] + tables["text/html"]
    assert '{"age": 0.0380759, "n": 3}' in tables["text/html"].replace("&quot;", '"')
