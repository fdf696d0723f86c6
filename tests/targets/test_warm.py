"""The warm-start server: one per workspace, replaced when stale, gone when idle."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbdeploy.core.workspace import Workspace
from nbdeploy.targets._process import ProcessId
from nbdeploy.targets.warm import (
    WarmPaths,
    _start,
    ensure_warm_server,
    shutdown_warm_server,
    warm_server_status,
)

pytestmark = pytest.mark.integration


def _gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_two_processes_start_one_server(workspace: Workspace) -> None:
    code = (
        "import json, sys\n"
        "from nbdeploy.targets.warm import ensure_warm_server\n"
        "print(json.dumps(ensure_warm_server(sys.argv[1], wait=True)['pid']))\n"
    )
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(workspace.path)], stdout=subprocess.PIPE
            )
            for _ in range(2)
        ]
        pids = {json.loads(p.communicate(timeout=120)[0]) for p in procs}
        assert len(pids) == 1
        status = warm_server_status(workspace)
        assert status is not None
        assert status["pid"] in pids
    finally:
        shutdown_warm_server(workspace)
    assert _gone(pids.pop())


def test_stale_server_is_replaced(workspace: Workspace) -> None:
    paths = WarmPaths.for_workspace(workspace)
    paths.run_dir.mkdir(parents=True)
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        _start(paths, fd, 600.0, "an-older-installation")
    finally:
        os.close(fd)
    try:
        deadline = time.monotonic() + 120
        old = warm_server_status(workspace)
        while old is None and time.monotonic() < deadline:
            time.sleep(0.02)
            old = warm_server_status(workspace)
        assert old is not None
        assert old["fingerprint"] == "an-older-installation"
        new = ensure_warm_server(workspace, wait=True)
        assert new is not None
        assert new["pid"] != old["pid"]
        assert _gone(int(old["pid"]))
    finally:
        shutdown_warm_server(workspace)


def test_idle_server_exits_by_itself(workspace: Workspace) -> None:
    status = ensure_warm_server(workspace, wait=True, idle_timeout=2.0)
    assert status is not None
    try:
        assert _gone(int(status["pid"]))
        assert warm_server_status(workspace) is None
    finally:
        shutdown_warm_server(workspace)


def test_long_workspace_path_uses_a_short_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    paths = WarmPaths.for_workspace(deep)
    assert len(paths.socket.encode()) < 108
    assert paths.socket.startswith("/tmp/nbdeploy-")
    assert WarmPaths.for_workspace(deep) == paths


def test_shutdown_refuses_a_foreign_pid(workspace: Workspace) -> None:
    paths = WarmPaths.for_workspace(workspace)
    paths.run_dir.mkdir(parents=True)
    # Our own pid is alive but is no warm server: it must not be signalled.
    paths.pid_file.write_text(json.dumps(ProcessId.of(os.getpid()).to_dict()))
    assert shutdown_warm_server(workspace) is False
