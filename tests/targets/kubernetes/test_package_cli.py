"""``nbdeploy package MODEL --kubernetes DIR``: manifests for GitOps, from the CLI,
naming the image the package builds, valid, and without keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import numpy as np
import pytest
import yaml

import nbdeploy
from nbdeploy.cli import main
from nbdeploy.core.package import DEFAULT_PORT
from nbdeploy.core.workspace import Workspace


def test_package_writes_manifests_and_a_matching_build_context(
    workspace: Workspace,
    diabetes: tuple[Any, np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, rows = diabetes
    nbdeploy.register(model, "diabetes", sample_input=rows, workspace=workspace)
    k8s, context = tmp_path / "k8s", tmp_path / "context"
    code = main(
        [
            "--workspace",
            str(workspace.path),
            "package",
            "diabetes",
            "--kubernetes",
            str(k8s),
            "--output",
            str(context),
            "--namespace",
            "ml",
            "--replicas",
            "2",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert f"kubectl apply -f {k8s}" in out
    objects = [yaml.safe_load(p.read_text()) for p in sorted(k8s.glob("*.yaml"))]
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["Deployment", "PodDisruptionBudget", "Service"]  # no Secret
    for obj in objects:
        kubernetes_validate.validate(obj, "1.37.0", strict=True)
        assert obj["metadata"]["namespace"] == "ml"
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("nbdeploy/diabetes:")
    assert image in out
    assert "create secret generic diabetes-auth" in (k8s / "README.md").read_text()
    # The build context written with it serves with the keys of the mounted Secret.
    settings = json.loads((context / "bundle" / "bundle.json").read_text())["settings"]
    assert settings["auth_file"] == "/var/run/nbdeploy/auth/auth.json"
    assert settings["auth_enabled"] is True
    assert f"EXPOSE {DEFAULT_PORT}" in (context / "Dockerfile").read_text()


def test_package_without_anything_to_do_says_what_to_give(
    workspace: Workspace, diabetes: tuple[Any, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    model, rows = diabetes
    nbdeploy.register(model, "diabetes", sample_input=rows, workspace=workspace)
    assert main(["--workspace", str(workspace.path), "package", "diabetes"]) != 0
    assert "--kubernetes DIR" in capsys.readouterr().err
