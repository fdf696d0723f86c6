"""``target="ray"`` from every front that chooses a target: the ``%deploy`` magic in a
real IPython shell, the deploy widget, the command line; and, on a Ray service, key
regeneration and ``wait_for_deployment(show_output=True)``.

The fronts use the default workspace (``$NBDEPLOY_HOME``), pointed at the session's
Ray workspace so they share its embedded cluster. Run with ``make test-ray`` (see
``conftest.py``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

import nbdeploy
from nbdeploy.core.workspace import Workspace
from nbdeploy.targets.ray import RayConfig

from .conftest import SCORE

pytestmark = [pytest.mark.ray, pytest.mark.integration]

MODEL = "diabetes-fronts"
ROW = {"data": [[0.01] * 10]}


@pytest.fixture
def default_ws(
    ray_workspace: Workspace,
    diabetes: tuple[Any, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Workspace]:
    """The session's Ray workspace as the default one, with model :data:`MODEL`
    registered; every service left at the end is deleted."""
    monkeypatch.setenv("NBDEPLOY_HOME", str(ray_workspace.path))
    monkeypatch.chdir(tmp_path)
    if not ray_workspace.registry.list(name=MODEL):
        model, rows = diabetes
        ray_workspace.registry.register(model, MODEL, sample_input=rows)
    before = {record.name for record in ray_workspace.services.list()}
    yield ray_workspace
    for record in ray_workspace.services.list():
        if record.name not in before:
            nbdeploy.get_service(record.name, workspace=ray_workspace).delete()


def _script(folder: Path, tag: str) -> Path:
    path = folder / f"score_{tag}.py"
    path.write_text(textwrap.dedent(SCORE).format(tag=tag, init_extra="pass"))
    return path


def _answers(service: Any) -> dict[str, Any]:
    key = service.get_keys()[0]
    answer = requests.post(
        service.scoring_uri, json=ROW, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_deploy_magic_with_target_ray(
    default_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``%deploy MODEL --target ray`` in an IPython shell deploys to the embedded
    cluster, reports the deployment's end and returns the service (shown as its
    card); ``%services --target ray`` lists it."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbdeploy.notebook")
    score = _script(tmp_path, "magic")
    result = shell.run_cell(
        f"%deploy {MODEL} --name ray-magic --target ray --score {score}", store_history=False
    )
    result.raise_error()
    printed = capsys.readouterr().out
    service = result.result
    assert service.name == "ray-magic"
    assert service.record.target == "ray"
    assert service.record.state.value == "Healthy"
    assert "deploying ray-magic: Healthy" in printed
    assert "Webservice ray-magic [Healthy]" in printed
    assert _answers(service)["tag"] == "magic"

    listed = shell.run_cell("%services --target ray", store_history=False)
    listed.raise_error()
    assert "ray-magic" in [s.name for s in listed.result]


def test_deploy_widget_offers_and_deploys_ray(default_ws: Workspace, tmp_path: Path) -> None:
    """The deploy widget lists ``ray`` among its targets and deploys there."""
    from nbdeploy.notebook import DeployPanel

    panel = DeployPanel(workspace=default_ws)
    assert "ray" in panel.target.options
    panel.model.value = MODEL
    panel.name.value = "ray-widget"
    panel.score.value = str(_script(tmp_path, "widget"))
    panel.target.value = "ray"
    service = panel.deploy()
    assert service.record.target == "ray"
    assert service.record.state.value == "Healthy"
    assert "ray-widget: Healthy" in panel.state.value
    assert _answers(service)["tag"] == "widget"


def test_cli_deploys_with_target_ray(
    default_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``nbdeploy deploy MODEL --target ray``, then ``nbdeploy services list`` and
    ``nbdeploy delete``."""
    from nbdeploy.cli import main

    ws = ["--workspace", str(default_ws.path)]
    score = str(_script(tmp_path, "cli"))
    assert (
        main([*ws, "deploy", MODEL, "--name", "ray-cli", "--target", "ray", "--score", score]) == 0
    )
    printed = capsys.readouterr().out
    assert "ray-cli: Healthy" in printed
    assert "scoring URI: http://127.0.0.1:" in printed
    service = nbdeploy.get_service("ray-cli", workspace=default_ws)
    assert service.record.target == "ray"
    assert _answers(service)["tag"] == "cli"

    assert main([*ws, "services", "list"]) == 0
    assert "ray-cli" in capsys.readouterr().out
    assert main([*ws, "delete", "ray-cli"]) == 0
    assert "ray-cli" not in {record.name for record in default_ws.services.list()}


def test_wait_for_deployment_shows_replicas_and_regen_key(
    default_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A service deployed without waiting: ``wait_for_deployment(show_output=True)``
    prints its replicas coming up until all run; then ``regen_key`` replaces the
    primary key on the running replicas (the old one is refused, the secondary still
    works), with no new deployment."""
    service = nbdeploy.deploy(
        MODEL,
        "ray-keys",
        score=_script(tmp_path, "keys"),
        config=RayConfig(num_replicas=2),
        wait=False,
        workspace=default_ws,
    )
    capsys.readouterr()
    assert service.wait_for_deployment(show_output=True) == "Healthy"
    shown = capsys.readouterr().out
    assert "ray-keys: 2 of 2 replicas running" in shown
    assert "ray-keys: Healthy at http://127.0.0.1:" in shown
    progress = [line for line in shown.splitlines() if "replicas running" in line]
    assert progress[-1] == "ray-keys: 2 of 2 replicas running", shown

    old_primary, secondary = service.get_keys()
    generation = service.record.generation
    service.regen_key("Primary")
    new_primary, kept = service.get_keys()
    assert new_primary != old_primary
    assert kept == secondary

    def status(key: str) -> int:
        return requests.post(
            service.scoring_uri,
            json=ROW,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).status_code

    assert status(old_primary) == 401
    assert status(new_primary) == 200
    assert status(secondary) == 200
    assert nbdeploy.get_service("ray-keys", workspace=default_ws).record.generation == generation
