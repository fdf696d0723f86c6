"""The API documents and the offline Swagger UI page."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from openapi_spec_validator import validate
from sklearn.linear_model import Ridge
from starlette.testclient import TestClient

from nbdeploy.server import ServerOptions
from nbdeploy.server.documents import STATIC_FILES, render_docs_html

from .bundles import DIABETES_SCORE, MODEL_NAME

Serve = Callable[..., TestClient]


@pytest.fixture
def documented(
    make_bundle: Callable[..., Path], serve_app: Serve, diabetes: tuple[Ridge, pd.DataFrame]
) -> TestClient:
    model, features = diabetes
    predictions = model.predict(features.head(3).to_numpy())
    bundle = make_bundle(
        DIABETES_SCORE, model=model, input_sample=features.head(3), output_sample=predictions
    )
    return serve_app(bundle)


def test_swagger_json_is_a_valid_swagger2_document(documented: TestClient) -> None:
    r = documented.get("/swagger.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    spec = r.json()
    validate(spec)
    assert spec["swagger"] == "2.0"
    assert spec["info"]["title"] == MODEL_NAME
    assert {"/", "/score"} <= set(spec["paths"])
    assert {"ServiceInput", "ServiceOutput", "ErrorResponse"} <= set(spec["definitions"])


def test_openapi_json_is_a_valid_openapi31_document(documented: TestClient) -> None:
    r = documented.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["title"] == MODEL_NAME
    assert "/score" in spec["paths"]
    # The schema-derived document, not an empty framework one: the input names the columns.
    assert "bmi" in r.text


def test_documents_carry_the_schema_examples(
    documented: TestClient, diabetes: tuple[Ridge, pd.DataFrame]
) -> None:
    first_age = repr(float(diabetes[1]["age"].iloc[0]))
    assert first_age in documented.get("/swagger.json").text
    assert first_age in documented.get("/openapi.json").text


def test_service_name_setting_titles_the_documents(
    make_bundle: Callable[..., Path], serve_app: Serve
) -> None:
    bundle = make_bundle("def init():\n    pass\n\ndef run(data):\n    return data\n")
    client = serve_app(bundle, ServerOptions(service_name="churn <scorer>"))
    assert client.get("/swagger.json").json()["info"]["title"] == "churn <scorer>"
    page = client.get("/docs").text
    assert "churn &lt;scorer&gt;" in page
    assert "churn <scorer>" not in page


def test_docs_page_needs_no_internet_and_its_assets_are_served(documented: TestClient) -> None:
    r = documented.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "http://" not in page
    assert "https://" not in page
    assert "//cdn" not in page
    references = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(references) >= 3
    for ref in references:
        assert not ref.startswith(("/", "http")), ref  # relative: works behind a prefix
        asset = documented.get("/" + ref)  # resolved against /docs
        assert asset.status_code == 200, ref
        assert asset.content
    assert (
        documented.get("/docs/static/swagger-ui-bundle.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert '"url": "openapi.json"' in page


@pytest.mark.parametrize("name", sorted(STATIC_FILES))
def test_every_listed_asset_exists(documented: TestClient, name: str) -> None:
    assert documented.get(f"/docs/static/{name}").status_code == 200


def test_docs_html_escapes_script_breakers() -> None:
    page = render_docs_html("x", openapi_url="</script><script>alert(1)</script>")
    assert "</script><script>alert(1)" not in page
    assert "\\u003c/script\\u003e" in page
