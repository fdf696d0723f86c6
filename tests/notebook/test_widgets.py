"""Widgets, driven through their method twins; the services are real local ones."""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest

from nbdeploy.api import deploy, register
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import (
    InvalidArgumentError,
    ModelInUseError,
    ModelNotFoundError,
    NbdeployError,
)
from nbdeploy.notebook.progress import Progress, has_frontend
from nbdeploy.notebook.widgets import DeployPanel, RegistryBrowser, TryIt


@pytest.fixture
def two_models(home: Workspace, diabetes: tuple[Any, Any]) -> None:
    model, sample = diabetes
    register(model, "diabetes", sample_input=sample, tags={"team": "ml"})
    register(model, "diabetes", sample_input=sample, tags={"team": "ml", "stage": "prod"})
    register([1, 2], "lookup", tags={"team": "data"})


# -- RegistryBrowser ------------------------------------------------------------------


def test_registry_browser_lists_filters_and_deletes(two_models: None, home: Workspace) -> None:
    browser = RegistryBrowser()
    assert sorted(browser.refs) == ["diabetes:1", "diabetes:2", "lookup:1"]
    assert "stage=prod" in browser.table.value
    assert sorted(browser.selection.options) == sorted(browser.refs)

    assert browser.filter("look") == ["lookup:1"]
    assert browser.search.value == "look"  # the text box follows the twin
    assert sorted(browser.filter("team=ml")) == ["diabetes:1", "diabetes:2"]
    assert browser.filter("stage") == ["diabetes:2"]
    assert browser.filter("nothing-matches") == []
    # An empty filter result is not an empty registry.
    assert "no model matches &#x27;nothing-matches&#x27; (of 3)" in browser.table.value

    browser.filter("")
    browser.delete("diabetes:1")
    assert sorted(browser.refs) == ["diabetes:2", "lookup:1"]
    with pytest.raises(ModelNotFoundError):
        home.registry.get("diabetes:1")


def test_registry_browser_delete_needs_a_selection(two_models: None) -> None:
    browser = RegistryBrowser()
    browser.selection.value = None
    with pytest.raises(InvalidArgumentError, match="no model version selected"):
        browser.delete()


def test_registry_browser_delete_button_uses_the_selection(two_models: None) -> None:
    browser = RegistryBrowser()
    browser.selection.value = "lookup:1"
    browser.delete_button.click()
    # Delete asks first: nothing is gone until Confirm.
    assert "lookup:1" in browser.refs
    assert browser.pending == "lookup:1"
    assert browser.confirm_box.layout.display == "flex"
    assert "Delete lookup:1?" in browser.confirm_box.children[0].value
    browser.cancel_button.click()
    assert "lookup:1" in browser.refs
    assert browser.pending is None
    assert browser.confirm_box.layout.display == "none"

    browser.delete_button.click()
    browser.confirm_button.click()
    assert "lookup:1" not in browser.refs
    assert "deleted lookup:1" in browser.status.value
    with pytest.raises(InvalidArgumentError, match="no deletion to confirm"):
        browser.confirm_delete()


def test_registry_browser_refresh_sees_new_versions(two_models: None, diabetes: Any) -> None:
    browser = RegistryBrowser()
    browser.filter("diabetes")
    register(diabetes[0], "diabetes")
    assert "diabetes:3" in browser.refresh()
    assert "lookup:1" not in browser.refs  # the filter is kept


# -- DeployPanel and TryIt (real services) --------------------------------------------


def test_deploy_panel_lists_models_and_versions(two_models: None) -> None:
    panel = DeployPanel()
    assert list(panel.model.options) == ["diabetes", "lookup"]
    assert list(panel.version.options) == ["latest", "2", "1"]
    assert panel.model_ref == "diabetes"
    panel.version.value = "1"
    assert panel.model_ref == "diabetes:1"
    panel.model.value = "lookup"
    assert list(panel.version.options) == ["latest", "1"]
    assert "local" in panel.target.options


def test_deploy_panel_without_models_says_so(home: Workspace) -> None:
    panel = DeployPanel()
    with pytest.raises(InvalidArgumentError, match="no model selected"):
        panel.deploy()


@pytest.mark.integration
def test_deploy_panel_deploys_and_tryit_sends(
    two_models: None, home: Workspace, score_path: Path, diabetes: tuple[Any, Any]
) -> None:
    panel = DeployPanel()
    panel.version.value = "1"
    panel.name.value = "panel-svc"
    panel.score.value = str(score_path)
    service = panel.deploy()
    assert panel.service is service
    assert service.name == "panel-svc"
    assert service.models == ("diabetes:1",)
    assert "panel-svc: Healthy" in panel.state.value
    assert len(panel.output.outputs) == 1
    assert "nbdeploy-service-card" in panel.output.outputs[0]["data"]["text/html"]

    # A model a service uses cannot be deleted from the browser.
    browser = RegistryBrowser()
    with pytest.raises(ModelInUseError):
        browser.delete("diabetes:1")
    browser.selection.value = "diabetes:1"
    browser.delete_button.click()
    browser.confirm_button.click()
    assert "diabetes:1" in browser.refs
    assert 'data-kind="error"' in browser.status.value  # shown as an error, not raised
    assert "in use" in browser.status.value or "uses" in browser.status.value

    tryit = TryIt(service)
    body = json.loads(tryit.request.value)
    assert body["data"][0].keys() >= {"age", "bmi", "s6"}  # the swagger example
    response = tryit.send()
    assert response.status_code == 200
    model, sample = diabetes
    rows = len(body["data"])
    assert response.json() == pytest.approx(model.predict(sample.head(rows)).tolist())
    assert tryit.last_response is response
    assert tryit.latency_ms is not None
    assert 'data-status="200"' in tryit.response.value

    tryit.request.value = json.dumps({"data": [{"age": "old"}]})
    bad = tryit.send()
    assert bad.status_code == 422
    assert 'data-status="422"' in tryit.response.value
    assert "age" in tryit.response.value

    tryit.button.click()  # the button calls the same twin
    assert tryit.last_response is not None
    assert tryit.last_response.status_code == 422


@pytest.mark.integration
def test_deploy_panel_shows_failures(two_models: None, home: Workspace, tmp_path: Path) -> None:
    panel = DeployPanel()
    panel.score.value = str(tmp_path / "missing.py")
    panel.button.click()  # errors land in the state label, the button comes back
    assert "failed" in panel.state.value
    assert panel.service is None
    assert not panel.button.disabled


# -- Progress -------------------------------------------------------------------------


def test_progress_text_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert not has_frontend()
    with Progress("deploying x", widget=False) as p:
        p.update(text="bundle built")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "deploying x ..."
    assert lines[1] == "deploying x: bundle built"
    assert lines[2].startswith("deploying x: done (")
    assert p.finished
    assert p.ok


def test_progress_widget_form_ticks_and_finishes() -> None:
    p = Progress("waiting", widget=True)
    assert p.use_widget
    assert p._bar.bar_style == "info"
    p.done("Healthy")
    # The live widget is closed and replaced by a static line a saved notebook keeps.
    assert p._box.comm is None
    assert p.static is not None
    assert p.static["text/plain"].startswith("waiting: Healthy (")
    assert "✔ waiting: Healthy (" in p.static["text/html"]
    assert "HBox" not in p.static["text/plain"]
    p.done("again")  # idempotent
    assert p.static["text/plain"].startswith("waiting: Healthy (")

    failing = Progress("steps", total=3, widget=True)
    failing.update(2, "two of three")
    assert failing._bar.value == 2
    with pytest.raises(RuntimeError), failing:
        raise RuntimeError("boom")
    assert failing.static is not None
    assert failing.static["text/plain"].startswith("steps: failed: boom (")
    assert 'data-ok="False"' in failing.static["text/html"]
    assert not failing.ok


def test_deploy_through_the_api_also_renders(
    two_models: None, home: Workspace, score_path: Path
) -> None:
    # Guard: deploying an unknown version is refused before anything starts.
    with pytest.raises(ModelNotFoundError):
        deploy("diabetes:9", name="nine", score=str(score_path))


@pytest.mark.integration
def test_no_stale_card_after_a_failed_deploy_and_tryit_has_a_form(
    two_models: None, home: Workspace, score_path: Path, tmp_path: Path
) -> None:
    panel = DeployPanel()
    panel.name.value = "form-svc"
    panel.score.value = str(score_path)
    service = panel.deploy()
    assert len(panel.output.outputs) == 1

    panel.name.value = "broken-svc"
    panel.score.value = str(tmp_path / "missing.py")
    with pytest.raises(NbdeployError):
        panel.deploy()
    # The card of form-svc would say "Healthy" under a failed deploy of broken-svc.
    assert panel.output.outputs == ()
    assert panel.service is None
    assert 'data-kind="error"' in panel.state.value

    tryit = TryIt(service)
    # One input per column of the DataFrame schema, filled with the example row.
    assert {"age", "sex", "bmi", "s6"} <= set(tryit.form)
    assert isinstance(tryit.form["age"], widgets.FloatText)
    body = json.loads(tryit.request.value)
    age = body["data"][0]["age"]
    assert len(repr(age)) <= 12  # rounded: 0.0380759, not 0.038075906433423026
    tryit.form["age"].value = 0.5
    assert json.loads(tryit.request.value)["data"][0]["age"] == 0.5
    assert tryit.send().status_code == 200
    plain = tryit._repr_mimebundle_()["text/plain"]
    assert plain.startswith("TryIt form-svc: POST http://127.0.0.1:")
    assert "VBox" not in plain
    assert "text/html" in tryit._repr_mimebundle_()


def test_deploy_panel_says_why_a_target_cannot_be_used(
    home: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees without Ray
    panel = DeployPanel()
    assert list(panel.target.options)[:4] == ["local", "docker", "kubernetes", "ray"]
    panel.target.value = "ray"
    reason = 'Ray is not installed: pip install "nbdeploy[ray]"'
    assert html.escape(f"ray cannot be used: {reason}") in panel.state.value
    assert 'data-kind="error"' in panel.state.value
    panel.target.value = "local"
    assert "not deployed" in panel.state.value
