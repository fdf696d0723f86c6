"""Fixtures for the browser tests: a headless JupyterLab and Debian's Chromium.

JupyterLab is started with ``subprocess.Popen([sys.executable, "-m", "jupyterlab",
...])`` on 127.0.0.1 (so its PID is the server's own) and stopped by that PID.
Chromium is the system one (``/usr/bin/chromium``, or ``$CHROMIUM_PATH``), driven by
Python Playwright; no Playwright browser download is needed.

A missing Chromium or Playwright FAILS these tests with the command that fixes it:
they are part of ``make test``, so silently skipping them would hide a broken page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CHROMIUM, CHROMIUM_ARGS, free_port

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


def _require_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the UI tests need it. "
            "Install it with `apt-get install -y chromium` (or set CHROMIUM_PATH)",
            pytrace=False,
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail(
            "Python Playwright is missing: `.venv/bin/pip install playwright` "
            "(the system Chromium is used; no Playwright browser download)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder JupyterLab serves; its kernels also create temporary files here."""
    return tmp_path_factory.mktemp("labroot")


@pytest.fixture(scope="session")
def lab_url(lab_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running JupyterLab (no token, 127.0.0.1 only); stopped by PID afterwards."""
    _require_browser()
    settings = tmp_path_factory.mktemp("user-settings")
    notifications = settings / "@jupyterlab" / "apputils-extension"
    notifications.mkdir(parents=True)
    # Stops the "official Jupyter news?" toast from covering the page.
    (notifications / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={lab_root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp_path_factory.mktemp('lab-workspaces')}",
        "--LabApp.news_url=None",
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    env = {**os.environ, "TMPDIR": str(lab_root)}  # the notebook's mkdtemp lands here
    env.pop("NBDEPLOY_HOME", None)
    log_path = lab_root.parent / "lab.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        try:
            while True:
                try:
                    with urllib.request.urlopen(url + "/api/status", timeout=2):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"jupyter lab did not start; see {log_path}") from None
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright.

    Module-scoped: Playwright's sync API runs its own event loop in this thread, so it
    must be closed before another test module starts its own.
    """
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser page with a 60 s default timeout."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def copy_without_outputs(source: Path, dest: Path) -> None:
    """Copy a notebook with its stored outputs removed, so the page shows only what
    this run produces."""
    import nbformat

    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, dest)


def cleanup_workspaces(root: Path) -> None:
    """Stop what a half-run notebook left behind: its services and warm server."""
    from nbdeploy.sdk.webservice import Webservice
    from nbdeploy.sdk.workspace import Workspace
    from nbdeploy.targets import shutdown_warm_server

    for folder in root.glob("nbdeploy-*/workspace"):
        ws = Workspace(folder)
        for record in ws.services.list():
            Webservice._from_record(ws, record).delete()
        shutdown_warm_server(ws)
        shutil.rmtree(folder.parent, ignore_errors=True)


# -- themes, contrast, whole-notebook screenshots ---------------------------------------

#: WCAG contrast of every visible text in the outputs, against what is behind it.
_CONTRAST_JS = "\n".join(
    line
    for line in (Path(__file__).parent / "contrast.js").read_text().splitlines()
    if not line.startswith("//")
)


def contrast_report(page: Any, selector: str = ".jp-NotebookPanel .jp-OutputArea-output") -> Any:
    """``{"checked": n, "failures": [...]}``: every visible text in the outputs whose
    contrast with its background is below WCAG AA (4.5:1, 3:1 for large text)."""
    return page.evaluate(_CONTRAST_JS, selector)


def set_theme(page: Any, name: str) -> None:
    """Switch JupyterLab's theme (``"JupyterLab Dark"`` / ``"JupyterLab Light"``) from
    the Settings menu, as a user does; waits until the page uses it."""
    from playwright.sync_api import expect

    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=name).first.click()
    expect(page.locator(f'body[data-jp-theme-name="{name}"]')).to_have_count(1)
    page.keyboard.press("Escape")


def screenshot_notebook(page: Any, path: Path) -> None:
    """A screenshot of the whole notebook (all cells and outputs), not only the part in
    the window: the window is made as tall as the notebook for the shot."""
    size = page.viewport_size
    height = page.evaluate(
        "() => { const n = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer')"
        " || document.querySelector('.jp-NotebookPanel-notebook');"
        " return n ? n.scrollHeight : 1000; }"
    )
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 200, 20000)})
    try:
        page.evaluate(
            "() => document.querySelectorAll('.jp-NotebookPanel .jp-WindowedPanel-outer')"
            ".forEach(n => { n.scrollTop = 0; })"
        )
        page.wait_for_timeout(500)  # let the re-laid-out cells paint (not a test condition)
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)


def run_all_and_wait(page: Any, cells: int) -> None:
    """Run every cell (Run > Run All Cells) and wait until the last one has finished."""
    from playwright.sync_api import expect

    page.locator(".lm-MenuBar-itemLabel", has_text="Run").click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    prompts = page.locator(".jp-NotebookPanel .jp-Cell.jp-CodeCell .jp-InputPrompt")
    expect(prompts.last).to_have_text(re.compile(r"\[\d+\]:"))
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible()
    assert page.locator(".jp-NotebookPanel .jp-Cell").count() == cells


def check_both_themes(page: Any, artifacts: Path, name: str) -> None:
    """Screenshots of the whole notebook in the light and the dark theme
    (``test-artifacts/screenshots/<name>-light.png`` / ``-dark.png``), and in the dark
    theme every text of every output must keep a readable contrast. Back to light after."""
    shots = artifacts / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.keyboard.press("Escape")
    screenshot_notebook(page, shots / f"{name}-light.png")
    set_theme(page, "JupyterLab Dark")
    try:
        report = contrast_report(page)
        screenshot_notebook(page, shots / f"{name}-dark.png")
    finally:
        set_theme(page, "JupyterLab Light")
    assert report["checked"] > 20, report
    assert report["failures"] == [], "\n".join(report["failures"])
