"""nbdeploy.deploy() honours the settings, and a model saved the reference's way
(``joblib.dump`` to ``model.pkl``) registers, loads and deploys without a script."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import nbdeploy
from nbdeploy.core.workspace import Workspace
from nbdeploy.targets import shutdown_warm_server
from tests.helpers import free_port

pytestmark = pytest.mark.integration

SCORE = "def init():\n    pass\n\n\ndef run(data):\n    return [x * 2 for x in data]\n"


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(tmp_path / "ws")
    yield workspace
    for service in nbdeploy.services(workspace=workspace):
        service.delete()
    shutdown_warm_server(workspace)


def test_port_and_warm_start_come_from_the_environment(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("NBDEPLOY_PORT", str(port))
    monkeypatch.setenv("NBDEPLOY_WARM_START", "false")
    score = tmp_path / "score.py"
    score.write_text(SCORE)
    nbdeploy.register({"any": "object"}, "doubler", sample_input=[1, 2], workspace=ws)
    svc = nbdeploy.deploy("doubler", "env-svc", score=score, workspace=ws)
    assert svc.scoring_uri == f"http://127.0.0.1:{port}/score"
    assert svc.record.config["warm_start"] is False
    assert svc.record.config["mode"] == "plain"  # not forked from the warm server
    assert svc.run([1, 2]) == [2, 4]


def test_an_explicit_port_keeps_the_other_settings(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBDEPLOY_WARM_START", "false")
    score = tmp_path / "score.py"
    score.write_text(SCORE)
    nbdeploy.register({"any": "object"}, "doubler", sample_input=[1, 2], workspace=ws)
    port = free_port()
    svc = nbdeploy.deploy("doubler", "port-svc", score=score, port=port, workspace=ws)
    assert svc.scoring_uri == f"http://127.0.0.1:{port}/score"
    assert svc.record.config["mode"] == "plain"


def test_a_joblib_pickle_registers_loads_and_deploys_without_a_script(
    ws: Workspace, tmp_path: Path
) -> None:
    import joblib
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 3)), rng.random(40)
    path = tmp_path / "model.pkl"
    joblib.dump(Ridge().fit(x, y), path)  # the reference's way: numpy arrays after the pickle

    model = nbdeploy.Model.register(
        workspace=nbdeploy.Workspace(ws.path), model_path=str(path), model_name="ridge"
    )
    assert model.framework == "python"
    loaded = model.model_version.load()
    assert isinstance(loaded, Ridge)

    svc = nbdeploy.deploy("ridge", "joblib-svc", workspace=ws)  # the built-in scorer
    assert svc.run(x[:2].tolist()) == pytest.approx(loaded.predict(x[:2]).tolist())
