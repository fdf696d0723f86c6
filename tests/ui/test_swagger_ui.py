"""A service's Swagger UI page (``GET /docs``) in headless Chromium: it must render
the OpenAPI 3.1 document — ``POST /score`` with its schema and example — from the
assets the server ships, with no internet. (Swagger UI 4.15.5 showed "Unable to
render this definition" for every service; a test that only checked for a 200 could
not see it.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbdeploy.core.workspace import Workspace

pytestmark = pytest.mark.ui

SCORE = """\
import pickle
import nbdeploy

def init():
    global model
    with open(nbdeploy.get_model_path("diabetes"), "rb") as fh:
        model = pickle.load(fh)

def run(data):
    return model.predict(data).tolist()
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real local service of a Ridge model with a DataFrame schema."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    import nbdeploy
    from nbdeploy.targets import shutdown_warm_server

    root = tmp_path_factory.mktemp("swagger-ui")
    ws = Workspace(root / "ws")
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    nbdeploy.register(Ridge().fit(x, y), "diabetes", sample_input=x.head(3), workspace=ws)
    score = root / "score.py"
    score.write_text(SCORE)
    svc = nbdeploy.deploy("diabetes", "swagger-svc", score=score, workspace=ws)
    try:
        yield svc
    finally:
        svc.delete()
        shutdown_warm_server(ws)


def check_swagger_ui(page: Any, url: str, example: tuple[str, ...] = ('"age"', '"bmi"')) -> None:
    """Open ``url`` (a /docs page) and check that Swagger UI rendered the document:
    ``POST /score`` with the request ``example`` (texts it shows) and the schemas."""
    from playwright.sync_api import expect

    failed: list[str] = []

    def failure(request: Any) -> None:
        # A new navigation aborts what the page was still loading: not a missing asset.
        if "ERR_ABORTED" not in (request.failure or ""):
            failed.append(f"{request.url}: {request.failure}")

    page.on("requestfailed", failure)
    page.goto(url)
    operation = page.locator(".opblock-post").filter(has_text="/score")
    expect(operation.locator(".opblock-summary-method")).to_have_text("POST")
    expect(operation.locator(".opblock-summary-path")).to_have_text("/score")
    expect(page.locator(".opblock-get .opblock-summary-path").first).to_have_text("/")
    expect(page.get_by_text("Unable to render this definition")).to_have_count(0)
    # The request schema and its example, from the model's sample.
    operation.locator(".opblock-summary").click()
    body = operation.locator(".opblock-section-request-body")
    for text in example:
        expect(body).to_contain_text(text)
    page.locator(".models").get_by_text("ServiceInput").first.wait_for()
    assert failed == [], f"requests failed (assets missing or fetched from outside): {failed}"


def test_service_docs_page_renders_post_score(service: Any, page: Any, artifacts: Path) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    docs = service.scoring_uri.removesuffix("/score") + "/docs"
    check_swagger_ui(page, docs)
    page.screenshot(path=str(artifacts / "swagger-ui-light.png"), full_page=False)

    page.emulate_media(color_scheme="dark")
    page.reload()
    expect(page.locator("html.dark-mode")).to_have_count(1)
    expect(page.locator(".opblock-post .opblock-summary-path")).to_have_text("/score")
    page.screenshot(path=str(artifacts / "swagger-ui-dark.png"), full_page=False)
