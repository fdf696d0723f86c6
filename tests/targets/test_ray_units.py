"""The Ray target's pure parts, without a cluster (the real-cluster tests are in
``tests/targets/ray``, run by ``make test-ray``): their documented examples, and the
rule that importing the target does not import Ray."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

MODULES = ["config", "application", "status", "cluster", "replica", "session", "target"]


@pytest.mark.parametrize("module", MODULES)
def test_documented_examples(module: str) -> None:
    mod = importlib.import_module(f"nbdeploy.targets.ray.{module}")
    failures, tried = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert tried > 0
    assert failures == 0


def test_nbdeploy_and_the_target_do_not_import_ray() -> None:
    code = (
        "import sys, nbdeploy, nbdeploy.targets\n"
        "from nbdeploy.targets import get_target, default_config\n"
        "from nbdeploy.core.workspace import Workspace\n"
        "import tempfile\n"
        "t = get_target('ray', Workspace(tempfile.mkdtemp()))\n"
        "assert t.list() == []\n"
        "assert default_config('ray', num_replicas=2).num_replicas == 2\n"
        "print('ray' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_setting_is_named() -> None:
    from nbdeploy.exceptions import InvalidArgumentError
    from nbdeploy.targets.ray.config import RayConfig

    with pytest.raises(InvalidArgumentError, match="num_replica") as caught:
        RayConfig.from_dict({"target": "ray", "num_replica": 2})
    assert "num_replicas" in str(caught.value.hint)


def test_cli_without_a_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nbdeploy.cli import main

    assert main(["--workspace", str(tmp_path), "ray", "status"]) == 0
    assert capsys.readouterr().out == "no Ray cluster running for this workspace\n"
    assert main(["--workspace", str(tmp_path), "ray", "stop"]) == 0
    assert capsys.readouterr().out == "no Ray cluster was running\n"


def test_fronts_offer_the_ray_target(tmp_path: Path) -> None:
    """The deploy widget lists it; the public config helper and the table of targets
    build the same configuration; the magic and the CLI pass --target through."""
    import nbdeploy
    from nbdeploy.cli import build_parser
    from nbdeploy.notebook.widgets import DeployPanel
    from nbdeploy.targets import default_config, target_names

    assert "ray" in target_names()
    assert "ray" in DeployPanel(tmp_path).target.options
    config = nbdeploy.RayWebservice.deploy_configuration(num_replicas=3)
    assert config == default_config("ray", num_replicas=3)
    args = build_parser().parse_args(["deploy", "m", "--name", "s", "--target", "ray"])
    assert args.target == "ray"


def test_the_private_ray_names_the_session_uses_are_there() -> None:
    """``ray/session.py`` uses private Ray names where Ray has no public call (checked
    against Ray 2.60.0), each in one function; a Ray that renames or drops them fails
    here, not in a user's kernel."""
    pytest.importorskip("ray.serve")
    code = (
        "import inspect, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from ray._raylet import AuthenticationTokenLoader, Config\n"
        "from ray.serve._private.client import ServeControllerClient\n"
        "from ray.serve.context import _get_global_client, _set_global_client\n"
        "assert callable(_set_global_client)\n"
        "assert callable(Config.initialize)\n"
        "assert callable(AuthenticationTokenLoader.instance().reset_cache)\n"
        "assert callable(ServeControllerClient.get_serve_details)\n"
        "parameters = inspect.signature(_get_global_client).parameters\n"
        "assert 'raise_if_no_controller_running' in parameters\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


class _FlakyRay:
    """Stands in for the ``ray`` module: ``init`` fails with each of ``errors`` in
    turn, then succeeds."""

    def __init__(self, *errors: str) -> None:
        self.errors = list(errors)
        self.calls: list[str] = []

    def init(self, address: str, **_: object) -> None:
        self.calls.append("init")
        if self.errors:
            raise ConnectionError(self.errors.pop(0))

    def shutdown(self) -> None:
        self.calls.append("shutdown")


@pytest.fixture
def quiet_session(monkeypatch: pytest.MonkeyPatch) -> Any:
    from nbdeploy.targets.ray import session

    monkeypatch.setattr(session, "_forget_serve_client", lambda: None)
    monkeypatch.setattr(session.time, "sleep", lambda _: None)
    return session


@pytest.mark.parametrize(
    "error",
    [
        "Starting Ray client server failed. See ray_client_server_23000.err",
        "Initialization failure from server:\nTraceback (most recent call last):\n"
        "RuntimeError: Proxy failed to Connect to backend! Check `ray_client_server.err`",
    ],
)
def test_a_ray_client_server_that_did_not_start_is_tried_again(
    quiet_session: Any, error: str
) -> None:
    """The cluster's side of a ``ray://`` connection (a driver its client server
    starts) sometimes misses Ray's startup deadline on a busy machine: the next
    attempt starts another. Each failed attempt is undone first (``ray.shutdown``
    leaves client mode; without it the next ``ray.init`` fails)."""
    ray = _FlakyRay(error)
    quiet_session._init(ray, "ray://127.0.0.1:10001")
    assert ray.calls == ["init", "shutdown", "init"]


def test_other_connection_failures_are_not_tried_again(quiet_session: Any) -> None:
    from nbdeploy.exceptions import TargetUnavailableError

    for address, error in [
        ("ray://127.0.0.1:10001", "ray client connection timeout"),
        ("127.0.0.1:6379", "Starting Ray client server failed"),
    ]:
        ray = _FlakyRay(error)
        with pytest.raises(TargetUnavailableError, match=f"at {address}: ConnectionError"):
            quiet_session._init(ray, address)
        assert ray.calls == ["init", "shutdown"]


def test_a_ray_client_server_that_never_starts_is_reported(quiet_session: Any) -> None:
    from nbdeploy.exceptions import TargetUnavailableError

    failed = (
        "Initialization failure from server:\nRuntimeError: Proxy failed to Connect to backend!"
    )
    ray = _FlakyRay(*[failed] * quiet_session.CLIENT_ATTEMPTS)
    with pytest.raises(TargetUnavailableError, match="server: RuntimeError: Proxy failed") as err:
        quiet_session._init(ray, "ray://127.0.0.1:10001")
    assert "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S" in str(err.value.hint)
    assert ray.calls == ["init", "shutdown"] * quiet_session.CLIENT_ATTEMPTS
