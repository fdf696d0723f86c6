"""Multi-model endpoints: several models (two versions of one name) behind one service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests

import nbdeploy
from nbdeploy.core.bundle import Bundle
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import ScoringScriptError

pytestmark = pytest.mark.integration

SCORE = """
import pickle
from pathlib import Path

import numpy as np

import nbdeploy
from nbdeploy import Model

models = {}


def _load(path):
    with open(path, "rb") as fh:
        return pickle.load(fh)


def init():
    # Both ways of the reference find one version of a name; the layout is
    # <NBDEPLOY_MODEL_DIR>/<name>/<version>/<files>.
    models["a:1"] = _load(nbdeploy.get_model_path("a", 1))
    models["a:2"] = _load(Model.get_model_path("a", version=2))
    models["b"] = _load(nbdeploy.get_model_path("b"))
    models["latest a"] = str(Path(nbdeploy.get_model_path("a")).parent.name)


def run(data):
    rows = np.asarray(data, dtype=float)
    return {
        "a:1": models["a:1"].predict(rows),
        "a:2": models["a:2"].predict(rows),
        "b": models["b"].predict(rows),
        "latest a": models["latest a"],
    }
"""


@pytest.fixture
def home(workspace: Workspace) -> Iterator[Workspace]:
    """This test's workspace; its services and warm server are stopped afterwards."""
    yield workspace
    from nbdeploy.sdk.webservice import Webservice
    from nbdeploy.targets import shutdown_warm_server

    for record in workspace.services.list():
        Webservice._from_record(workspace, record).delete()
    shutdown_warm_server(workspace)


def test_one_service_serves_three_models(
    home: Workspace, iris_frame: pd.DataFrame, tmp_path: Path
) -> None:
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    x = iris_frame.drop(columns="target").to_numpy()
    y = iris_frame["target"].to_numpy()
    a1 = Ridge(alpha=1.0).fit(x, y)
    a2 = LinearRegression().fit(x, y * 2)
    b = LogisticRegression().fit(x, y)
    nbdeploy.register(a1, "a", sample_input=x[:2], workspace=home)
    nbdeploy.register(a2, "a", workspace=home)
    nbdeploy.register(b, "b", workspace=home)
    script = tmp_path / "score.py"
    script.write_text(SCORE, encoding="utf-8")

    svc = nbdeploy.deploy(["a:1", "a:2", "b"], name="multi", score=script, workspace=home)

    assert svc.state == "Healthy"
    assert svc.models == ("a:1", "a:2", "b:1")
    bundle = Bundle.load(svc.record.bundle_path or "")
    assert bundle.model_dir == bundle.path / "models"
    for name, version in (("a", 1), ("a", 2), ("b", 1)):
        assert (bundle.path / "models" / name / str(version) / "model.pkl").is_file()
    # The first model's input schema validates requests (a:1 was registered with one).
    assert bundle.input_schema is not None
    rows = x[:3]
    answer = svc.run(rows.tolist())
    np.testing.assert_allclose(answer["a:1"], a1.predict(rows))
    np.testing.assert_allclose(answer["a:2"], a2.predict(rows))
    assert answer["b"] == b.predict(rows).tolist()
    assert answer["latest a"] == "2"
    assert svc.scoring_uri is not None
    refused = requests.post(svc.scoring_uri, json={"data": [["x", 1, 2, 3]]}, timeout=30)
    assert refused.status_code == 422, refused.text
    swagger = requests.get(svc.swagger_uri or "", timeout=30).json()
    assert "ServiceInput" in json.dumps(swagger["definitions"])


def test_a_multi_model_endpoint_needs_a_script(home: Workspace, iris_frame: pd.DataFrame) -> None:
    from sklearn.linear_model import Ridge

    x = iris_frame.drop(columns="target").to_numpy()
    model: Any = Ridge().fit(x, iris_frame["target"].to_numpy())
    nbdeploy.register(model, "a", workspace=home)
    nbdeploy.register(model, "b", workspace=home)
    with pytest.raises(ScoringScriptError, match="2 models") as info:
        nbdeploy.deploy(["a", "b"], name="multi", workspace=home)
    assert info.value.hint is not None
    assert "score" in info.value.hint
    assert home.services.list() == []
