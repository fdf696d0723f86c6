"""The quickstart notebook in a real JupyterLab, in headless Chromium.

Runs the tutorial cell by cell and checks that what the notebook front renders shows
on the page: the model card, the service card, the Swagger tables, and the TryIt
widget — whose Send button must come back with a prediction.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, check_both_themes, cleanup_workspaces, copy_without_outputs

NOTEBOOK = REPO / "notebooks" / "01-quickstart.ipynb"

pytestmark = pytest.mark.ui


def _cells() -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = json.loads(NOTEBOOK.read_text())["cells"]
    return cells


def _index_of(text: str) -> int:
    for i, cell in enumerate(_cells()):
        if cell["cell_type"] == "code" and text in "".join(cell["source"]):
            return i
    raise AssertionError(f"no code cell with {text!r} in {NOTEBOOK.name}")


def test_quickstart_renders_cards_swagger_and_tryit(
    lab_url: str, lab_root: Path, page: Any, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=120_000)
    copy_without_outputs(NOTEBOOK, lab_root / NOTEBOOK.name)
    total = len(_cells())
    tryit = _index_of("TryIt(svc)")
    try:
        page.goto(f"{lab_url}/lab/tree/{NOTEBOOK.name}")
        expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible()
        cells = page.locator(".jp-NotebookPanel .jp-Cell")
        expect(cells).to_have_count(total)
        cells.first.click()
        page.keyboard.press("Escape")  # command mode: Shift+Enter runs and moves on
        for _ in range(tryit + 1):
            page.keyboard.press("Shift+Enter")

        outputs = page.locator(".jp-NotebookPanel .jp-OutputArea-output")
        expect(outputs.locator(".nbdeploy-model-card")).to_be_visible()
        expect(outputs.locator(".nbdeploy-script-check[data-ok='true']")).to_be_visible()
        card = outputs.locator(".nbdeploy-service-card")
        expect(card).to_be_visible()
        expect(card.locator(".nbdeploy-state[data-state='Healthy']")).to_be_visible()
        expect(card).to_contain_text(re.compile(r"http://127\.0\.0\.1:\d+/score"))
        swagger = outputs.locator(".nbdeploy-swagger")
        expect(swagger).to_contain_text("RunMLService")
        expect(swagger).to_contain_text("data[].age")
        expect(swagger.locator(".nbdeploy-example-request")).to_be_visible()
        # The lab extension adds Copy buttons to examples and snippets, and sends the
        # service's links through the Jupyter server (they work on JupyterHub, Binder).
        expect(swagger.locator(".jp-nbdeploy-copy").first).to_be_visible()
        docs_link = card.locator("a", has_text="/docs")
        expect(docs_link).to_have_attribute("href", re.compile(r"/nbdeploy/proxy/\d+/docs$"))
        expect(docs_link).to_have_text(re.compile(r"^http://127\.0\.0\.1:\d+/docs$"))

        widget = outputs.locator(".nbdeploy-tryit")
        expect(widget.locator("textarea")).to_have_value(re.compile(r'"age": '))
        widget.locator("button.jupyter-button", has_text="Send").click()
        answer = widget.locator(".nbdeploy-tryit-response[data-status='200']")
        expect(answer).to_be_visible()
        expect(answer).to_contain_text(re.compile(r"\d+\.\d+ ms"))
        expect(answer.locator("pre")).to_contain_text(re.compile(r"\[\s*\d+\.\d+"))
        page.screenshot(path=str(artifacts / "quickstart-tryit.png"), full_page=True)

        # Send took the focus: select the next cell again before running the rest.
        cells.nth(tryit + 1).locator(".jp-InputPrompt").click()
        page.keyboard.press("Escape")
        for _ in range(total - tryit - 1):
            page.keyboard.press("Shift+Enter")
        expect(outputs.last).to_contain_text("stopped and deleted")
        expect(
            page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        ).to_have_count(0)
        # Progress bars end as static lines (what a saved notebook keeps).
        static = outputs.locator(".nbdeploy-progress-static[data-ok='True']")
        expect(static.filter(has_text="deploying diabetes-svc: Healthy")).to_have_count(1)
        check_both_themes(page, artifacts, "01-quickstart")
    finally:
        cleanup_workspaces(lab_root)
