"""Fixtures for the notebook front: a real IPython shell, a default workspace per test,
a Ridge model on the diabetes data, and scoring scripts.

The fronts use the *default* workspace (``$NBDEPLOY_HOME``), as a notebook does, so
``home`` points it at this test's ``tmp_path``. Every service a test starts is deleted
(by PID, through the target) and the workspace's warm-start server shut down.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from nbdeploy.core.workspace import Workspace
from nbdeploy.sdk.workspace import get_workspace

#: A scoring script for the Ridge model: predictions as a list.
SCORE = """\
import pickle

from nbdeploy.core.modelpath import get_model_path

model = None


def init():
    global model
    with open(get_model_path("diabetes"), "rb") as fh:
        model = pickle.load(fh)


def run(data):
    return model.predict(data).tolist()
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """The default workspace, in this test's temporary folder; cleaned up after."""
    monkeypatch.setenv("NBDEPLOY_HOME", str(tmp_path / "ws"))
    monkeypatch.chdir(tmp_path)
    ws = get_workspace()
    yield ws
    from nbdeploy.sdk.webservice import Webservice
    from nbdeploy.targets import shutdown_warm_server

    for record in ws.services.list():
        Webservice._from_record(ws, record).delete()
    shutdown_warm_server(ws)


@pytest.fixture(scope="session")
def diabetes() -> tuple[Any, pd.DataFrame]:
    """A fitted Ridge on the diabetes data (as a DataFrame) and its first rows."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    return Ridge().fit(x, y), x.head()


@pytest.fixture
def registered(home: Workspace, diabetes: tuple[Any, pd.DataFrame]) -> Any:
    """Version 1 of model ``diabetes`` (with a sample, so it has a schema)."""
    from nbdeploy.api import register

    model, sample = diabetes
    return register(model, "diabetes", sample_input=sample, tags={"team": "ml"})


@pytest.fixture
def score_path(tmp_path: Path) -> Path:
    """A working scoring script for the diabetes model."""
    path = tmp_path / "score.py"
    path.write_text(SCORE)
    return path


@pytest.fixture(scope="session")
def shell() -> InteractiveShell:
    """A real IPython shell with the nbdeploy magics loaded (once per session)."""
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbdeploy.notebook")
    return ip


@pytest.fixture
def ip(shell: InteractiveShell, home: Workspace) -> Iterator[InteractiveShell]:
    """The shell, with the user variables this test defines removed afterwards."""
    before = set(shell.user_ns)
    yield shell
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]
