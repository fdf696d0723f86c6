"""Which deployment targets a front offers, and why one cannot be used.

The checks run for real: a Unix socket that listens (or not) stands for a Docker
engine, a kubeconfig is a file, and Ray "not installed" is what ``import ray`` sees
when ``sys.modules["ray"]`` is ``None``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbdeploy.api import target_availability
from nbdeploy.targets import register_target
from nbdeploy.targets.base import _TARGETS
from nbdeploy.workflows.availability import check_target


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path (a Unix socket path has at most 107 bytes)."""
    with tempfile.TemporaryDirectory(prefix="nbd-", dir="/tmp") as folder:
        yield Path(folder)


def test_every_shipped_target_is_listed_local_first() -> None:
    listed = target_availability()
    assert [t.name for t in listed][:4] == ["local", "docker", "kubernetes", "ray"]
    assert listed[0].usable
    assert listed[0].reason is None
    for target in listed:
        assert (target.reason is None) == target.usable, target
        assert target.description


def test_ray_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    ray = check_target("ray")
    assert not ray.usable
    assert ray.reason == 'Ray is not installed: pip install "nbdeploy[ray]"'


def test_ray_installed_is_usable_without_importing_it() -> None:
    code = (
        "import sys; from nbdeploy.workflows.availability import check_target; "
        "print(check_target('ray').usable, 'ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_docker_engine_socket_that_listens(
    monkeypatch: pytest.MonkeyPatch, short_dir: Path
) -> None:
    path = short_dir / "engine.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        docker = check_target("docker")
    assert docker.usable, docker.reason
    assert docker.description == f"a container on the Docker engine at unix://{path}"


def test_docker_engine_socket_missing_or_dead(
    monkeypatch: pytest.MonkeyPatch, short_dir: Path
) -> None:
    path = short_dir / "engine.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    missing = check_target("docker")
    assert not missing.usable
    assert missing.reason == (
        f"no Docker engine socket at {path}: start a Docker engine and set DOCKER_HOST to its URL"
    )

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))  # the socket file of an engine that stopped listening
    dead = check_target("docker")
    assert not dead.usable
    assert dead.reason is not None
    assert dead.reason.startswith(f"the Docker engine at unix://{path} does not answer")


def test_docker_bad_engine_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "http://nowhere")
    docker = check_target("docker")
    assert not docker.usable
    assert docker.reason is not None
    assert "invalid Docker engine URL 'http://nowhere'" in docker.reason


def test_docker_remote_engine_is_not_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    # 192.0.2.1 is TEST-NET-1: nothing answers there; it must not be connected to.
    monkeypatch.setenv("DOCKER_HOST", "tcp://192.0.2.1:2376")
    assert check_target("docker").usable


def test_docker_sdk_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)
    docker = check_target("docker")
    assert not docker.usable
    assert docker.reason == (
        'the Docker SDK for Python is not installed: pip install "nbdeploy[docker]"'
    )


def test_kubernetes_needs_a_kubeconfig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))
    missing = check_target("kubernetes")
    assert not missing.usable
    assert missing.reason is not None
    assert missing.reason.startswith(f"no Kubernetes configuration at {tmp_path / 'config'}")

    (tmp_path / "config").write_text("apiVersion: v1\nkind: Config\n", encoding="utf-8")
    assert check_target("kubernetes").usable

    monkeypatch.setitem(sys.modules, "kubernetes", None)
    assert check_target("kubernetes").reason == (
        'the Kubernetes Python client is not installed: pip install "nbdeploy[kubernetes]"'
    )


def test_kubernetes_in_a_pod_uses_its_service_account(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")  # only its presence is read
    assert check_target("kubernetes").usable


def test_a_plugin_target_is_listed_after_the_shipped_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("nbdeploy.targets.base._TARGETS", dict(_TARGETS))
    register_target("acme", "acme.target:AcmeTarget")
    listed = target_availability()
    assert [t.name for t in listed][-1] == "acme"
    assert listed[-1].usable
