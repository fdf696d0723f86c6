"""Unit tests of the local target's value objects and log helpers (no processes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbdeploy.exceptions import InvalidArgumentError
from nbdeploy.targets import default_config, get_target_name, target_names
from nbdeploy.targets.local import LocalConfig
from nbdeploy.targets.process.processes import LogFollower, read_log_tail
from nbdeploy.targets.process.supervisor import RotatingLog


def test_local_config_round_trip() -> None:
    config = LocalConfig(port=8890, host="::1", warm_start=False, timeout=5)
    assert LocalConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["target"] == "local"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"port": -1}, "invalid port -1", id="negative-port"),
        pytest.param({"port": 65536}, "invalid port 65536", id="big-port"),
        pytest.param({"port": True}, "invalid port True", id="bool-port"),
        pytest.param({"host": "example.com"}, "'example.com'", id="hostname"),
        pytest.param({"host": ""}, "invalid host ''", id="empty-host"),
        pytest.param({"timeout": 0}, "invalid timeout 0", id="zero-timeout"),
    ],
)
def test_local_config_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        LocalConfig(**kwargs)  # type: ignore[arg-type]


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(InvalidArgumentError, match="gpus"):
        LocalConfig.from_dict({"port": 0, "gpus": 2})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"replicas": 0}, "invalid replicas", id="zero"),
        pytest.param({"replicas": "many"}, "invalid replicas", id="word"),
        pytest.param({"replicas": True}, "invalid replicas", id="bool"),
        pytest.param({"replica_max_concurrent_requests": 0}, "invalid replica_max", id="conc"),
        pytest.param({"max_request_wait_time": -1}, "invalid max_request_wait", id="wait"),
        pytest.param({"scoring_timeout_ms": 0}, "invalid scoring_timeout_ms", id="timeout"),
    ],
)
def test_replica_settings_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        LocalConfig(**kwargs)  # type: ignore[arg-type]


def test_auto_replicas_are_the_usable_cores() -> None:
    assert LocalConfig(replicas="auto").replica_count == len(os.sched_getaffinity(0))
    assert LocalConfig.from_dict(LocalConfig(replicas=3).to_dict()).replica_count == 3


def test_target_table() -> None:
    assert "local" in target_names()
    assert default_config("local", port=9000) == LocalConfig(port=9000)
    assert get_target_name(LocalConfig()) == "local"
    assert get_target_name({"target": "local"}) == "local"
    with pytest.raises(InvalidArgumentError):
        get_target_name({"port": 1})


def test_rotating_log_caps_the_file_and_follower_follows(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    log = RotatingLog(path, max_bytes=100, redirect_fds=False)
    follower = LogFollower(path)
    lines = [f"line {i:03d} " + "x" * 20 for i in range(20)]
    seen: list[str] = []
    for line in lines:
        log.write(line + "\n")
        seen.extend(follower.read_lines())
    assert seen == lines
    assert path.stat().st_size <= 100 + 40
    assert Path(str(path) + ".1").stat().st_size <= 100 + 40
    assert read_log_tail(path, 2).splitlines() == lines[-2:]


def test_a_closed_rotating_log_lets_go_of_its_file(tmp_path: Path) -> None:
    """A process forked from one that logs (the warm server's children) drops the
    parent's log by closing it: the descriptor is released and writes are refused."""
    log = RotatingLog(tmp_path / "warm.log", redirect_fds=False)
    fd = log.fileno()
    log.close()
    with pytest.raises(OSError):
        os.fstat(fd)
    with pytest.raises(ValueError, match="closed"):
        log.write("late\n")
