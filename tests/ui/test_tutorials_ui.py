"""The profiling tutorial, and every other kind of nbdeploy output, in a real JupyterLab
in headless Chromium — in the light and the dark theme.

Each notebook runs whole (Run > Run All Cells) in a copy without stored outputs;
screenshots of the whole notebook in both themes go to
``test-artifacts/screenshots/``, and in the dark theme every text of every output must
keep a WCAG AA contrast with what is behind it (no fixed light background under light
text: the outputs use JupyterLab's theme variables, as pandas and altair do).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .conftest import REPO, check_both_themes, cleanup_workspaces, copy_without_outputs

pytestmark = pytest.mark.ui

PROFILING = REPO / "notebooks" / "02-profiling.ipynb"

#: One cell per kind of output the quickstart does not show, in a throwaway workspace.
GALLERY = [
    """\
import os, tempfile
workdir = tempfile.mkdtemp(prefix="nbdeploy-quickstart-gallery-")
os.environ["NBDEPLOY_HOME"] = os.path.join(workdir, "workspace")
os.chdir(workdir)
%load_ext nbdeploy
import nbdeploy
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
X, y = load_diabetes(return_X_y=True, as_frame=True)
ridge = Ridge().fit(X, y)
sample = X.head(2)""",
    "%register ridge --name diabetes --sample sample --tag team=ml --tag stage=dev",
    """\
%%writefile-score score.py --model diabetes
import pickle, nbdeploy

def init():
    global model
    with open(nbdeploy.get_model_path("diabetes"), "rb") as fh:
        model = pickle.load(fh)

def run(data):
    if len(data) > 2:
        raise ValueError("at most 2 rows")
    return model.predict(data).tolist()""",
    "svc = %deploy diabetes --name gallery-svc --score score.py",
    "%models",
    "svc.run(X.head(1))",
    "svc.run(X.head(3))  # run() raises: one line, a hint, the cell line",
    "%logs gallery-svc --tail 12",
    "%logs gallery-svc --follow",
    "from nbdeploy.notebook import DeployPanel, RegistryBrowser\nDeployPanel()",
    "browser = RegistryBrowser()\nbrowser.request_delete('diabetes:1')\nbrowser",
    """\
%%writefile-score broken.py --model diabetes
def init():
    pass

def run(data):
    return 1 / 0""",
]


def _open(page: Any, lab_url: str, name: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{lab_url}/lab/tree/{name}?reset")  # only this notebook open
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible()


def test_profiling_tutorial_in_both_themes(
    lab_url: str, lab_root: Path, page: Any, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    from .conftest import run_all_and_wait

    expect.set_options(timeout=180_000)
    copy_without_outputs(PROFILING, lab_root / PROFILING.name)
    cells = len(json.loads(PROFILING.read_text())["cells"])
    try:
        _open(page, lab_url, PROFILING.name)
        run_all_and_wait(page, cells)
        outputs = page.locator(".jp-NotebookPanel .jp-OutputArea-output")
        report = outputs.locator(".nbdeploy-profile")
        expect(report.first.locator("svg")).to_have_count(3)
        expect(report.first).to_contain_text("Recommendation")
        # %profile named its phase while it ran, and left a static summary line.
        expect(
            outputs.locator(".nbdeploy-progress-static", has_text="profiling diabetes-svc:")
        ).to_contain_text("requests/s")
        expect(page.locator(".jp-OutputArea-output[data-mime-type*='stderr']")).to_have_count(0)
        check_both_themes(page, artifacts, "02-profiling")
    finally:
        cleanup_workspaces(lab_root)


def test_every_kind_of_output_reads_in_the_dark_theme(
    lab_url: str, lab_root: Path, page: Any, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    from .conftest import run_all_and_wait

    expect.set_options(timeout=180_000)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in GALLERY]
    for cell in notebook.cells:
        if "raises" in cell.source or "broken.py" in cell.source:
            # JupyterLab's tag for cells expected to fail: Run All goes on after them.
            cell.metadata["tags"] = ["raises-exception"]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(notebook, lab_root / "gallery.ipynb")
    try:
        _open(page, lab_url, "gallery.ipynb")
        run_all_and_wait(page, len(GALLERY))
        outputs = page.locator(".jp-NotebookPanel .jp-OutputArea-output")
        expect(outputs.locator(".nbdeploy-models").first).to_contain_text("stage=dev")
        expect(outputs.locator(".nbdeploy-logs")).to_contain_text("request: POST /score 500")
        expect(outputs.locator(".nbdeploy-live-logs")).to_contain_text("request: POST /score")
        expect(outputs.locator(".nbdeploy-deploy-panel")).to_be_visible()
        expect(outputs.locator(".nbdeploy-registry-browser")).to_contain_text("Delete diabetes:1?")
        errors = page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        )
        # svc.run's 500, and the failed check of broken.py (which stops Run All there).
        expect(errors).to_have_count(2)
        expect(errors.first).to_contain_text("ScoringError")
        expect(errors.first).to_contain_text("line 1: svc.run(X.head(3))")
        expect(errors.last).to_contain_text("broken.py failed its check")
        for error in (errors.first, errors.last):
            expect(error).not_to_contain_text("Traceback")
        check_both_themes(page, artifacts, "gallery")
    finally:
        page.screenshot(path=str(artifacts / "gallery-last.png"))
        page.evaluate(
            "() => document.querySelectorAll('.nbdeploy-live-logs button').forEach(b => b.click())"
        )
        cleanup_workspaces(lab_root)
