"""schemathesis against every kind of local service: no client input gets a 5xx.

Each service is a real deployment on the local target (real server processes on
127.0.0.1); schemathesis reads its ``/openapi.json`` and sends generated requests —
valid ones (positive) and ones that break the schema (negative). A 5xx answer to a
client's request is a server bug (or a scoring script's), and fails the test with the
request that caused it. The example counts keep the run to a few seconds per service.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

import nbdeploy
from nbdeploy.core.workspace import Workspace
from nbdeploy.sdk.webservice import Webservice
from nbdeploy.targets import shutdown_warm_server

pytestmark = pytest.mark.integration

#: Generated requests per service and generation mode.
EXAMPLES = 40

SCRIPT = """
import numpy as np
import nbdeploy, cloudpickle

def init():
    global model
    with open(nbdeploy.get_model_path("ridge"), "rb") as fh:
        model = cloudpickle.load(fh)

def run(data):
    return {"predictions": model.predict(np.nan_to_num(data)), "tag": "TAG"}
"""

MULTI = """
import numpy as np
import nbdeploy, cloudpickle

def init():
    global models
    models = {}
    for name in ("ridge", "logit"):
        with open(nbdeploy.get_model_path(name), "rb") as fh:
            models[name] = cloudpickle.load(fh)

def run(data):
    return {name: m.predict(np.nan_to_num(data)) for name, m in models.items()}
"""

RAW = """
from nbdeploy import Response, rawhttp

def init():
    pass

@rawhttp
def run(request):
    if request.method == "GET":
        return {"args": dict(request.args)}
    return Response(request.get_data(), content_type="application/octet-stream")
"""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(tmp_path / "ws")
    yield ws
    for record in ws.services.list():
        nbdeploy.delete_service(record.name, workspace=ws)
    shutdown_warm_server(ws)


@pytest.fixture
def models(home: Workspace, iris_frame: pd.DataFrame) -> None:
    from sklearn.linear_model import LogisticRegression, Ridge

    frame = iris_frame.drop(columns="target")
    x, y = frame.to_numpy(), iris_frame["target"].to_numpy()
    nbdeploy.register(Ridge().fit(x, y), "ridge", sample_input=x[:3], workspace=home)
    nbdeploy.register(LogisticRegression().fit(x, y), "logit", sample_input=x[:3], workspace=home)
    classifier = LogisticRegression().fit(frame, y)
    nbdeploy.register(classifier, "iris", sample_input=frame.head(3), workspace=home)


def _script(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _fuzz(
    service: Webservice, headers: dict[str, str] | None = None, *, negative: bool = True
) -> None:
    """Send generated requests to every operation of the service's OpenAPI document;
    fail on answers >= 500. ``negative``: also requests that break the schema (a raw
    service's document takes any body: nothing breaks it)."""
    assert service.scoring_uri is not None
    base = service.scoring_uri.rsplit("/", 1)[0]
    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    failures: list[str] = []
    modes = [schemathesis.GenerationMode.POSITIVE]
    if negative:
        modes.append(schemathesis.GenerationMode.NEGATIVE)
    for mode in modes:

        @given(case=schema.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call(base_url=base, headers=headers)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.path} body={str(case.body)[:200]!r} -> "
                    f"{response.status_code} {response.text[:300]}"
                )

        check()
    assert not failures, "\n".join(failures[:10])


def test_script_service(home: Workspace, models: None, tmp_path: Path) -> None:
    svc = nbdeploy.deploy(
        "ridge", name="script", score=_script(tmp_path, SCRIPT, "s"), workspace=home
    )
    _fuzz(svc)


def test_builtin_scorer_service(home: Workspace, models: None) -> None:
    svc = nbdeploy.deploy("iris", name="builtin", workspace=home)
    _fuzz(svc)


def test_rawhttp_service(home: Workspace, models: None, tmp_path: Path) -> None:
    svc = nbdeploy.deploy("ridge", name="raw", score=_script(tmp_path, RAW, "r"), workspace=home)
    _fuzz(svc, negative=False)


@pytest.mark.parametrize("auth", ["key", "token"])
def test_auth_service(home: Workspace, models: None, tmp_path: Path, auth: str) -> None:
    svc = nbdeploy.deploy(
        "ridge", name="auth", score=_script(tmp_path, SCRIPT, "a"), auth=auth, workspace=home
    )
    _fuzz(svc)  # no credentials: 401s, never a 5xx
    credential = svc.get_keys()[0] if auth == "key" else svc.get_token()[0]
    _fuzz(svc, {"Authorization": f"Bearer {credential}"})


def test_multi_model_service(home: Workspace, models: None, tmp_path: Path) -> None:
    svc = nbdeploy.deploy(
        ["ridge", "logit"], name="multi", score=_script(tmp_path, MULTI, "m"), workspace=home
    )
    _fuzz(svc)


def test_router_service(home: Workspace, models: None, tmp_path: Path) -> None:
    svc = nbdeploy.deploy(
        "ridge", name="routed", score=_script(tmp_path, SCRIPT, "v1"), workspace=home
    )
    svc.add_version("v2", score=_script(tmp_path, SCRIPT.replace("TAG", "v2"), "v2"), weight=50)
    _fuzz(svc)


def test_fuzzing_finds_a_server_error(home: Workspace, models: None, tmp_path: Path) -> None:
    # The check itself must be able to fail: a script that breaks on negative numbers.
    broken = SCRIPT.replace("def run(data):", "def run(data):\n    assert (data >= 0).all()")
    svc = nbdeploy.deploy(
        "ridge", name="broken", score=_script(tmp_path, broken, "b"), workspace=home
    )
    with pytest.raises(AssertionError, match="-> 500"):
        _fuzz(svc)
