"""The Deployments panel in a real JupyterLab, driven by a real headless Chromium.

A notebook cell registers and deploys a model into a temporary workspace
(``NBDEPLOY_HOME``); the panel must show the service ``Healthy``, open its Swagger UI
and its logs, copy a ``%deploy`` line, and delete it after the confirm dialog. The
target selector of a model, in the light and the dark theme, turns the line into
``%deploy name:version --target ray`` and shows an unusable target disabled with why.

JupyterLab loads the extension built in this tree (``nbdeploy/labextension``, by
``pip install -e .`` or ``jlpm build``) ahead of an installed copy, so the tests
check the code they sit next to.

Needs ``/usr/bin/chromium`` (Debian: ``apt-get install -y chromium``; elsewhere set
``CHROMIUM_PATH``) and the Python ``playwright`` package. Never a Playwright browser download:
the system Chromium is used. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CHROMIUM, CHROMIUM_ARGS, free_port
from tests.ui.test_swagger_ui import check_swagger_ui

pytestmark = [pytest.mark.ui, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
#: Seconds for JupyterLab to start, a kernel to deploy, the panel to update.
TIMEOUT = 90.0

DEPLOY_CELL = """\
import os
from pathlib import Path

# This notebook's own workspace, as the tutorials do: the panel must follow it.
os.environ["NBDEPLOY_HOME"] = os.path.abspath("notebook-ws")
%load_ext nbdeploy
from nbdeploy import api as nbd

Path("score.py").write_text(
    "def init():\\n    global factor\\n    factor = 2\\n\\n"
    "def run(data):\\n    return [x * factor for x in data]\\n"
)
nbd.register({"factor": 2}, "doubler", sample_input=[1, 2, 3], tags={"team": "ui"})
svc = nbd.deploy("doubler", "ui-svc", score="score.py")
print("deployed", svc.name, svc.state)
"""

DISPLAY_CELL = """\
import json, urllib.request
from IPython.display import display
from nbdeploy.lab import views

spec = json.load(urllib.request.urlopen(svc.swagger_uri))
card = views.service_summary(svc.record)
display({views.SERVICE_MIMETYPE: card, "text/plain": repr(svc)}, raw=True)
doc = views.swagger_payload(spec, name=svc.name, docs=card["docs_uri"])
display({views.SWAGGER_MIMETYPE: doc, "text/plain": "swagger"}, raw=True)
"""


def _get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"token {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@pytest.fixture
def chromium() -> str:
    """The system Chromium; a missing browser is a failure that says how to get it."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}. Install it with "
            "`apt-get update && apt-get install -y chromium` (Debian/Ubuntu), or set "
            "CHROMIUM_PATH to a Chromium/Chrome binary. Do not download a Playwright browser."
        )
    return CHROMIUM


@pytest.fixture
def theme() -> str:
    """The JupyterLab theme of the ``lab`` fixture (tests parametrize it)."""
    return "JupyterLab Light"


def _extension_paths(tmp_path: Path) -> list[str]:
    """The ``--LabApp.extra_labextensions_path`` that makes JupyterLab load this tree's
    built extension ahead of an installed one (none when it is not built here)."""
    built = REPO / "nbdeploy" / "labextension"
    installed = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "nbdeploy"
    if (built / "package.json").exists():
        extensions = tmp_path / "labextensions"
        shutil.copytree(built, extensions / "nbdeploy")
        return [f"--LabApp.extra_labextensions_path={extensions}"]
    if (installed / "package.json").exists():
        return []
    pytest.fail(
        f"the nbdeploy JupyterLab extension is neither built in {built} nor installed in "
        f"{installed}: run `pip install -e .` (needs Node.js >= 18) or "
        "`cd labextension && jlpm install && jlpm build`"
    )


@pytest.fixture
def lab(tmp_path: Path, theme: str) -> Iterator[dict[str, Any]]:
    """A JupyterLab on 127.0.0.1 with its own workspace, settings and notebook folder.

    No Kubernetes configuration is reachable from it (``KUBECONFIG`` names no file),
    so the ``kubernetes`` target is one it cannot use. Stopped by PID; services left
    behind are deleted and the workspace's warm-start server is shut down, also by PID.
    """
    extension_paths = _extension_paths(tmp_path)
    home = tmp_path / "nbdeploy-home"
    root = tmp_path / "notebooks"
    root.mkdir()
    from nbdeploy.core.services import ServiceRecord, ServiceState
    from nbdeploy.core.workspace import Workspace

    # The server's workspace has a service of the same name (another one, Failed).
    Workspace(home).services.put(ServiceRecord("ui-svc", "local", ServiceState.FAILED))
    cells: list[dict[str, Any]] = [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}
        for src in (DEPLOY_CELL, DISPLAY_CELL)
    ]
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            }
        },
        "nbformat": 4,
        "nbformat_minor": 4,
    }
    (root / "deploy.ipynb").write_text(json.dumps(notebook), encoding="utf-8")

    settings = tmp_path / "user-settings"
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    (notification / "themes.jupyterlab-settings").write_text(json.dumps({"theme": theme}))
    port = free_port()
    token = secrets.token_hex(16)
    env = {
        **os.environ,
        "NBDEPLOY_HOME": str(home),
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        f"--IdentityProvider.token={token}",
        "--ServerApp.password=",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp_path / 'lab-workspaces'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        *extension_paths,
    ]
    log_path = tmp_path / "lab.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
        try:
            deadline = time.monotonic() + TIMEOUT
            while not _answers(f"{url}/api/status"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
            yield {"url": url, "token": token, "home": home, "log": log_path}
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            from nbdeploy.api import delete_service, services
            from nbdeploy.targets import shutdown_warm_server

            for folder in (home, root / "notebook-ws"):
                for service in services(workspace=folder):
                    delete_service(service.name, workspace=folder)
                shutdown_warm_server(folder)


def test_deploy_then_panel_shows_logs_and_deletes(lab: dict[str, Any], chromium: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT * 1000)
    ARTIFACTS.mkdir(exist_ok=True)
    url, token = lab["url"], lab["token"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 950})
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT * 1000)
            try:
                _scenario(page, url, token, lab["home"])
            finally:
                page.screenshot(path=str(ARTIFACTS / "lab-ui-last.png"))
        finally:
            browser.close()


def _scenario(page: Any, url: str, token: str, home: Path) -> None:
    from playwright.sync_api import expect

    from nbdeploy.core.workspace import Workspace

    # 1. Run the notebook cell that registers and deploys.
    page.goto(f"{url}/lab/tree/deploy.ipynb?token={token}")
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible()
    cell = page.locator(".jp-NotebookPanel .jp-Cell").first
    cell.click()
    page.keyboard.press("Shift+Enter")
    expect(cell.locator(".jp-OutputArea-output")).to_contain_text("deployed ui-svc Healthy")

    # 1b. The MIME renderers: a service card and the OpenAPI document as tables.
    second = page.locator(".jp-NotebookPanel .jp-Cell").nth(1)
    second.click()
    page.keyboard.press("Shift+Enter")
    card = second.locator(".jp-nbdeploy-card")
    expect(card.locator(".jp-nbdeploy-badge")).to_have_text("Healthy")
    expect(card.locator(".jp-nbdeploy-name")).to_have_text("ui-svc")
    swagger = second.locator(".jp-nbdeploy-swagger")
    expect(swagger).to_contain_text("RunMLService")
    expect(swagger.locator(".jp-nbdeploy-operation")).to_have_count(2)
    page.screenshot(path=str(ARTIFACTS / "lab-ui-mime.png"))

    # 2. The panel shows the model and the service of the notebook's workspace,
    #    Healthy — not the failed same-named record of the server's workspace.
    page.locator('.jp-SideBar li[data-id="nbdeploy-deployments"]').click()
    panel = page.locator("#nbdeploy-deployments")
    kernel_home = home.parent / "notebooks" / "notebook-ws"
    expect(panel.locator(".jp-nbdeploy-workspace")).to_have_text(f"Workspace: {kernel_home}")
    expect(panel.locator(".jp-nbdeploy-workspace-origin")).to_have_text(
        "the workspace of deploy.ipynb"
    )
    service = panel.locator('.jp-nbdeploy-service[data-name="ui-svc"]')
    expect(service.locator(".jp-nbdeploy-badge")).to_have_text("Healthy")
    expect(service.locator(".jp-nbdeploy-badge")).to_have_class(
        "jp-nbdeploy-badge jp-nbdeploy-state-healthy"
    )
    expect(service.locator(".jp-nbdeploy-target")).to_have_text("local")
    expect(service.locator(".jp-nbdeploy-uri")).to_contain_text("http://127.0.0.1:")
    model = panel.locator('.jp-nbdeploy-model[data-name="doubler"]')
    expect(model.locator(".jp-nbdeploy-version")).to_have_text("v1")
    expect(model.locator(".jp-nbdeploy-framework")).to_contain_text("python")
    expect(model.locator(".jp-nbdeploy-tag", has_text="team=ui")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "lab-ui-panel.png"))

    # 2b. The panel polls while visible: a change made elsewhere shows up by itself.
    Workspace(kernel_home).registry.add_tags("doubler:1", {"polled": "yes"})
    expect(model.locator(".jp-nbdeploy-tag", has_text="polled=yes")).to_be_visible()

    kernel_id = _get(f"{url}/api/kernels", token)[0]["id"]
    listed = _get(f"{url}/nbdeploy/api/services?kernel={kernel_id}", token)["services"]
    assert [s["name"] for s in listed] == ["ui-svc"]
    scoring_uri = listed[0]["scoring_uri"]
    port = scoring_uri.split(":")[2].split("/")[0]

    # 3. Copy the %deploy line of the model.
    model.locator('button[data-action="copy"]').click()
    expect(page.locator(".Toastify")).to_contain_text("Copied: %deploy doubler:1")
    assert page.evaluate("navigator.clipboard.readText()") == "%deploy doubler:1"

    # 4. Swagger UI opens in a new tab — through the Jupyter server's proxy, so it also
    #    works when JupyterLab is not on the service's host — and renders POST /score.
    with page.context.expect_page() as popup_info:
        service.locator('button[data-action="swagger"]').click()
    popup = popup_info.value
    popup.wait_for_load_state()
    assert popup.url == f"{url}/nbdeploy/proxy/{port}/docs"
    check_swagger_ui(popup, popup.url, example=('"data"',))
    popup.screenshot(path=str(ARTIFACTS / "lab-ui-swagger.png"))
    popup.close()

    # 5. Its logs open in a main-area tab (from the notebook's card, as from the panel).
    card.locator('button[data-action="logs"]').click()
    logs = page.locator(".jp-nbdeploy-logs-widget .jp-nbdeploy-logs")
    expect(logs).to_contain_text("init()")
    expect(page.locator(".lm-TabBar-tab", has_text="Logs: ui-svc")).to_be_visible()
    # Follow: a request made now shows up without pressing Refresh.
    page.locator(".jp-nbdeploy-logs-widget .jp-nbdeploy-follow").click()
    urllib.request.urlopen(
        urllib.request.Request(
            scoring_uri,
            data=b'{"data": [21]}',
            headers={"Content-Type": "application/json"},
            method="POST",
        ),
        timeout=10,
    )
    expect(logs).to_contain_text("request: POST /score 200")
    page.screenshot(path=str(ARTIFACTS / "lab-ui-logs.png"))

    # 6. Delete, confirmed in the dialog: the service disappears and stops answering.
    service.locator('button[data-action="delete"]').click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text('Stop the service "ui-svc"')
    page.screenshot(path=str(ARTIFACTS / "lab-ui-confirm.png"))
    dialog.locator("button.jp-mod-warn").click()
    expect(service).to_have_count(0)
    expect(panel.locator(".jp-nbdeploy-services")).to_contain_text("No services")
    expect(page.locator(".lm-TabBar-tab", has_text="Logs: ui-svc")).to_have_count(0)
    assert _get(f"{url}/nbdeploy/api/services?kernel={kernel_id}", token)["services"] == []
    assert not _answers(scoring_uri.rsplit("/", 1)[0] + "/")
    # The same-named service of the server's workspace was left alone.
    assert [r.name for r in Workspace(home).services.list()] == ["ui-svc"]
    page.screenshot(path=str(ARTIFACTS / "lab-ui-deleted.png"))


def _luminance(css_color: str) -> float:
    """The relative luminance (WCAG 2) of a computed ``rgb(...)``/``rgba(...)`` color."""
    red, green, blue = (int(v) / 255 for v in re.findall(r"[\d.]+", css_color)[:3])

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def _contrast(locator: Any) -> float:
    """The WCAG contrast ratio of an element's text color on its own background."""
    style = locator.evaluate(
        "e => { const s = getComputedStyle(e); return [s.color, s.backgroundColor]; }"
    )
    lighter, darker = sorted((_luminance(c) for c in style), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_target_choice_sets_the_deploy_line(lab: dict[str, Any], chromium: str, theme: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    from nbdeploy.core.workspace import Workspace

    expect.set_options(timeout=TIMEOUT * 1000)
    ARTIFACTS.mkdir(exist_ok=True)
    url, token = lab["url"], lab["token"]
    Workspace(lab["home"]).registry.register({"factor": 2}, "doubler")
    listed = {t["name"]: t for t in _get(f"{url}/nbdeploy/api/targets", token)["targets"]}
    assert listed["ray"]["usable"], listed["ray"]  # nbdeploy[test] installs ray[serve]
    assert not listed["kubernetes"]["usable"]
    shot = "lab-ui-targets-" + theme.split()[-1].lower()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 950})
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT * 1000)
            page.goto(f"{url}/lab?token={token}")
            page.wait_for_selector("#jupyterlab-splash", state="detached")
            expect(page.locator("body")).to_have_attribute(
                "data-jp-theme-name", theme, timeout=TIMEOUT * 1000
            )
            page.locator('.jp-SideBar li[data-id="nbdeploy-deployments"]').click()
            model = page.locator('#nbdeploy-deployments .jp-nbdeploy-model[data-name="doubler"]')
            select = model.locator("select.jp-nbdeploy-target-select")
            line = model.locator(".jp-nbdeploy-deploy-line")
            try:
                _choose_targets(page, model, select, line, listed, lab["home"], shot)
                # Readable in this theme: the selector and the line on their backgrounds.
                assert _contrast(select) >= 4.5
                assert _contrast(line) >= 4.5
            finally:
                page.screenshot(path=str(ARTIFACTS / f"{shot}.png"))
        finally:
            browser.close()


def _choose_targets(
    page: Any, model: Any, select: Any, line: Any, listed: dict[str, Any], home: Path, shot: str
) -> None:
    from playwright.sync_api import expect

    from nbdeploy.core.workspace import Workspace

    # Every target is offered, local (the default: no --target) chosen.
    expect(select.locator("option")).to_have_count(len(listed))
    expect(select).to_have_value("local")
    expect(line).to_have_text("%deploy doubler:1")

    # An unusable target is shown disabled, with why as its tooltip.
    kubernetes = select.locator('option[value="kubernetes"]')
    expect(kubernetes).to_be_disabled()
    expect(kubernetes).to_have_text("kubernetes (unavailable)")
    reason = listed["kubernetes"]["reason"]
    assert reason.startswith("no Kubernetes configuration at ")
    expect(kubernetes).to_have_attribute("title", reason)
    expect(select).to_have_attribute(
        "title", re.compile(re.escape(f"kubernetes is unavailable: {reason}"))
    )
    expect(select.locator('option[value="ray"]')).to_be_enabled()
    # The selector stays inside the model's card, however long an option's label.
    card, box = model.bounding_box(), select.bounding_box()
    assert card is not None
    assert box is not None
    assert box["x"] + box["width"] <= card["x"] + card["width"]

    # Choosing ray: the line shown, the Copy button's tooltip and the clipboard say so.
    select.select_option("ray")
    expect(line).to_have_text("%deploy doubler:1 --target ray")
    copy = model.locator('button[data-action="copy"]')
    expect(copy).to_have_attribute(
        "title", 'Copy "%deploy doubler:1 --target ray" to the clipboard'
    )
    copy.click()
    expect(page.locator(".Toastify")).to_contain_text("Copied: %deploy doubler:1 --target ray")
    assert page.evaluate("navigator.clipboard.readText()") == "%deploy doubler:1 --target ray"
    page.screenshot(path=str(ARTIFACTS / f"{shot}-ray.png"))

    # The choice survives the panel redrawing the model (a new version, seen by polling).
    Workspace(home).registry.register({"factor": 3}, "doubler")
    expect(line).to_have_text("%deploy doubler:2 --target ray")
    expect(select).to_have_value("ray")

    # Back to local: no --target.
    select.select_option("local")
    expect(line).to_have_text("%deploy doubler:2")
