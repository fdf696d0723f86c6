"""The README's Kubernetes example, pasted as written, against the emulated API
server (a kubeconfig whose context is called ``kind-dev``, as in the example)."""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nbdeploy
from nbdeploy import config as nbconfig
from nbdeploy.core.workspace import Workspace

from .conftest import KMOCK
from .emulator import DEPLOYMENTS, AutoController
from .test_lifecycle import SCORE

pytestmark = [KMOCK, pytest.mark.asyncio]

README = Path(__file__).resolve().parents[3] / "README.md"


def _example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Kubernetes target", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the README's Kubernetes section has no python example"
    return str(blocks[0])


async def test_readme_example_runs_as_written(
    kubeconfig: str,
    cluster: AutoController,
    tmp_path: Path,
    diabetes: tuple[Any, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = json.loads(Path(kubeconfig).read_text())
    config["contexts"][0]["name"] = config["current-context"] = "kind-dev"
    (tmp_path / "kind").write_text(json.dumps(config))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kind"))
    home = tmp_path / "home"
    monkeypatch.setenv("NBDEPLOY_HOME", str(home))
    nbconfig.reset_options()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "score.py").write_text(textwrap.dedent(SCORE), encoding="utf-8")
    model, rows = diabetes
    nbdeploy.register(model, "diabetes", sample_input=rows, workspace=home)

    await asyncio.to_thread(exec, _example(), {})

    out = capsys.readouterr().out
    assert "Healthy http://diabetes-k8s.default.svc.cluster.local/score" in out
    assert "kind: Deployment" in out
    assert 'image: "registry.example.com/team/diabetes:1"' in out
    assert ("diabetes-k8s", 1) in cluster.handled
    assert cluster.controller.names(DEPLOYMENTS) == []  # svc.delete()
    assert Workspace(home).services.list() == []
