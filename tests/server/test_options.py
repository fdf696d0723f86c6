"""ServerOptions: validation and dict round trips."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from nbdeploy.exceptions import InvalidArgumentError
from nbdeploy.server import ServerOptions


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(ServerOptions(), id="defaults"),
        pytest.param(
            ServerOptions(
                host="0.0.0.0",
                port=5001,
                max_request_bytes=1024,
                log_level="debug",
                service_name="churn",
                auth_enabled=True,
            ),
            id="everything",
        ),
    ],
)
def test_round_trip(settings: ServerOptions) -> None:
    assert ServerOptions.from_dict(settings.to_dict()) == settings


def test_defaults() -> None:
    s = ServerOptions()
    assert (s.host, s.port, s.max_request_bytes, s.log_level) == (
        "127.0.0.1",
        0,
        100 * 1024 * 1024,
        "info",
    )
    assert s.auth_enabled is False


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        pytest.param({"port": 70000}, "port 70000", id="port-range"),
        pytest.param({"port": "80"}, "port '80'", id="port-type"),
        pytest.param({"port": True}, "port True", id="port-bool"),
        pytest.param({"max_request_bytes": 0}, "max_request_bytes 0", id="limit"),
        pytest.param({"log_level": "loud"}, "log level 'loud'", id="log-level"),
        pytest.param({"host": ""}, "host ''", id="host"),
        pytest.param({"service_name": " "}, "service name ' '", id="service-name"),
    ],
)
def test_bad_values_are_refused(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment):
        ServerOptions(**kwargs)


def test_from_dict_refuses_unknown_keys() -> None:
    with pytest.raises(InvalidArgumentError, match="prot"):
        ServerOptions.from_dict({"prot": 1})


def test_from_bundle_settings_ignores_target_keys_and_skips_none_overrides() -> None:
    s = ServerOptions.from_bundle_settings(
        {"port": 5001, "replicas": 3, "log_level": "warning"}, port=None, log_level="debug"
    )
    assert s.port == 5001
    assert s.log_level == "debug"


def test_frozen() -> None:
    s = ServerOptions()
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


def test_server_package_imports_no_notebook_front() -> None:
    code = (
        "import sys, nbdeploy.server; "
        "bad = [m for m in ('IPython', 'ipywidgets', 'nbdeploy.notebook', 'swagger_ui_bundle')"
        " if m in sys.modules]; print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
