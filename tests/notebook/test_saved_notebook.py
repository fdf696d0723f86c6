"""A notebook saved after a run reads well where widgets do not run (GitHub, nbviewer):
progress bars end as static lines, and widgets carry a text/plain and text/html
summary instead of ``HBox(children=(FloatProgress(...`` or "Error displaying widget".

The notebook is executed for real (nbclient, a real kernel and a real service), saved,
and rendered with nbconvert's HTML exporter — what nbviewer runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.integration

CELLS = [
    """\
import os
os.environ["NBDEPLOY_HOME"] = os.path.abspath("workspace")
%load_ext nbdeploy
import nbdeploy
from pathlib import Path
Path("score.py").write_text("def init():\\n    pass\\n\\ndef run(data):\\n    return data\\n")
nbdeploy.register({"a": 1}, "echo", sample_input=[1, 2])""",
    "svc = %deploy echo --name saved-svc --score score.py",
    "from nbdeploy.notebook import TryIt, DeployPanel\nTryIt(svc)",
    "DeployPanel()",
    """\
svc.delete()
from nbdeploy.targets import shutdown_warm_server
_ = shutdown_warm_server(nbdeploy.Workspace())""",
]

WIDGET = "application/vnd.jupyter.widget-view+json"


def _outputs(nb: Any) -> list[dict[str, Any]]:
    return [
        output
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type in ("display_data", "execute_result")
    ]


def test_saved_outputs_read_well_without_widgets(tmp_path: Path) -> None:
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    saved = nbformat.read(path, as_version=4)

    outputs = _outputs(saved)
    texts = [str(o.data.get("text/plain", "")) for o in outputs]
    # The progress bar of %deploy was replaced by its last line (same display id).
    progress = [o for o in outputs if "deploying saved-svc" in str(o.data.get("text/plain"))]
    assert len(progress) == 1
    assert WIDGET not in progress[0].data
    assert progress[0].data["text/plain"].startswith("deploying saved-svc: Healthy (")
    assert "✔ deploying saved-svc: Healthy" in progress[0].data["text/html"]
    # Widgets say what they are, in text and HTML, next to the live view.
    for output in outputs:
        if WIDGET in output.data:
            assert "text/html" in output.data, output.data["text/plain"]
    assert any(t.startswith("TryIt saved-svc: POST http://127.0.0.1:") for t in texts), texts
    assert any(t.startswith("DeployPanel: deploy a model of ") for t in texts), texts
    for text in texts:
        assert not text.startswith(("HBox(", "VBox(", "TryIt(children", "DeployPanel(children"))

    # nbviewer's rendering (nbconvert, with the widget state the run saved or not).
    saved.metadata.pop("widgets", None)  # as GitHub and most savers leave it
    html, _ = HTMLExporter().from_notebook_node(saved)
    assert "Error displaying widget" not in html
    assert "deploying saved-svc: Healthy" in html
    assert "TryIt saved-svc: POST" in html
    assert "FloatProgress" not in html
