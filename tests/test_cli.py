"""The nbdeploy command: the same operations as the API, errors as one line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import pytest

from nbdeploy.cli import main
from nbdeploy.targets import shutdown_warm_server

SCORE = """
import cloudpickle
import nbdeploy

def init():
    global model
    with open(nbdeploy.get_model_path(), "rb") as fh:
        model = cloudpickle.load(fh)

def run(data):
    return model.predict(data).tolist()
"""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "ws"
    yield path
    from nbdeploy.core.workspace import Workspace

    ws = Workspace(path)
    for record in ws.services.list():
        main(["--workspace", str(path), "delete", record.name])
    shutdown_warm_server(ws)


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    path = tmp_path / "model.pkl"
    path.write_bytes(cloudpickle.dumps(Ridge().fit(x, y)))
    return path


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbdeploy.cli", "--workspace", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_register_list_deploy_invoke_logs_delete(
    home: Path, model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = ["--workspace", str(home)]
    assert main([*ws, "register", str(model_file), "--name", "ridge", "--tag", "team=ml",
                 "--framework", "sklearn"]) == 0  # fmt: skip
    assert "registered ridge:1 (sklearn)" in capsys.readouterr().out
    assert main([*ws, "models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "ridge" in listing
    assert "team=ml" in listing
    assert main([*ws, "models", "show", "ridge:1"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1

    score = tmp_path / "score.py"
    score.write_text(textwrap.dedent(SCORE))
    assert (
        main([*ws, "deploy", "ridge", "--name", "ridge-svc", "--score", str(score), "--quiet"]) == 0
    )
    out = capsys.readouterr().out
    assert "ridge-svc: Healthy" in out
    assert "scoring URI: http://127.0.0.1:" in out

    assert main([*ws, "invoke", "ridge-svc", '{"data": [[0,0,0,0,0,0,0,0,0,0]]}']) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
    assert main([*ws, "services", "list"]) == 0
    assert "Healthy" in capsys.readouterr().out
    assert main([*ws, "logs", "ridge-svc", "--tail", "5"]) == 0
    capsys.readouterr()
    assert main([*ws, "delete", "ridge-svc"]) == 0
    assert main([*ws, "models", "download", "ridge:1", str(tmp_path / "dl")]) == 0
    assert (
        Path(capsys.readouterr().out.strip().splitlines()[-1]).read_bytes()
        == model_file.read_bytes()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["models", "show", "nope:1"], "nope", id="unknown-model"),
        pytest.param(
            ["register", "/no/such/file", "--name", "x"], "no file or folder", id="missing-file"
        ),
        pytest.param(["logs", "ghost"], "ghost", id="unknown-service"),
        pytest.param(["models", "show", "bad:x"], "not a number", id="bad-ref"),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(home: Path, args: list[str], message: str) -> None:
    result = run_cli(home, *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nbdeploy: error:")
    assert message in lines[0]


def test_usage_errors_exit_2_and_help_works(home: Path) -> None:
    assert run_cli(home, "deploy").returncode == 2
    for sub in ([], ["register"], ["models", "list"], ["deploy"], ["serve"], ["profile"]):
        result = run_cli(home, *sub, "--help")
        assert result.returncode == 0
        assert "usage:" in result.stdout


def test_targets_lists_each_and_why_one_cannot_be_used(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees without Ray
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["--workspace", str(home), "targets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "USABLE", "WHERE", "/", "WHY", "NOT"]
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines[1:]}
    assert list(rows)[:4] == ["local", "docker", "kubernetes", "ray"]
    assert rows["local"] == ["yes", "a process on this machine"]
    assert rows["ray"] == ["no", 'Ray is not installed: pip install "nbdeploy[ray]"']
    assert rows["kubernetes"][0] == "no"
    assert rows["kubernetes"][1].startswith("no Kubernetes configuration at ")
