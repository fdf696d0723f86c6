"""The warm-start server: one per workspace, replaced when stale, gone when idle."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import TargetUnavailableError
from nbdeploy.targets.process import processes as _process
from nbdeploy.targets.process import supervisor
from nbdeploy.targets.process.supervisor import ProcessId, parent_pid, read_exit_status
from nbdeploy.targets.process.warm import (
    WarmPaths,
    _own_child,
    _start,
    ensure_warm_server,
    shutdown_warm_server,
    warm_server_status,
)
from nbdeploy.targets.process.warm import spawn as warm_spawn

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
        "from nbdeploy.targets.process.warm import ensure_warm_server\n"
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


def test_the_warm_server_is_started_by_the_supervisor(workspace: Workspace) -> None:
    """Like every server, the warm server is launched through the supervisor: it is
    not this process's child, its launcher is reaped, its output goes to its log and
    how it ended is recorded."""
    status = ensure_warm_server(workspace, wait=True, idle_timeout=2.0)
    assert status is not None
    pid = int(status["pid"])
    try:
        assert parent_pid(pid) != os.getpid()
        assert _gone(pid)
    finally:
        shutdown_warm_server(workspace)
    paths = WarmPaths.for_workspace(workspace)
    record = read_exit_status(paths.run_dir / f"exit-{pid}.json")
    assert record is not None
    assert record["returncode"] == 0
    assert f"warm: pid {pid} stopped" in paths.log_file.read_text()
    supervisor.reap_launchers(5.0)
    assert supervisor._launchers == []


def test_long_workspace_path_uses_a_short_socket_in_a_private_folder(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    paths = WarmPaths.for_workspace(deep)
    assert len(paths.socket.encode()) < 108
    folder = Path(paths.socket).parent
    assert folder == Path(f"/tmp/nbdeploy-{os.geteuid()}")  # not /tmp itself
    st = os.lstat(folder)
    assert stat.S_ISDIR(st.st_mode)
    assert st.st_uid == os.geteuid()
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert WarmPaths.for_workspace(deep) == paths


NOBODY = 65534


def test_a_squatted_socket_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another user created the predictable folder first, open to everyone.
    monkeypatch.setattr(_process, "SOCKET_DIR_BASE", str(tmp_path))
    squat = tmp_path / f"nbdeploy-{os.geteuid()}"
    squat.mkdir(mode=0o777)
    os.chown(squat, NOBODY, NOBODY)
    paths = WarmPaths.for_workspace(tmp_path / ("x" * 60) / ("y" * 60))
    assert paths.socket == ""
    assert paths.problem is not None
    assert "not a private folder" in paths.problem
    with pytest.raises(TargetUnavailableError, match="not a private folder"):
        warm_spawn(tmp_path / ("x" * 60) / ("y" * 60), {"host": "127.0.0.1", "port": 0})


def _hostile_listener(path: str) -> tuple[int, int]:
    """A process of another user (uid 65534) listening at ``path``: (pid, read end of a
    pipe that gets every byte it receives)."""
    read, write = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(path)
            os.chmod(path, 0o777)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            listener.listen(8)  # SO_PEERCRED records the listener's uid now
            os.write(ready_w, b"x")
            listener.settimeout(30)
            conn, _ = listener.accept()
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                while chunk := conn.recv(65536):
                    os.write(write, chunk)
        finally:
            os._exit(0)
    os.close(write)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"x"
    os.close(ready_r)
    return pid, read


def test_a_server_of_another_user_gets_nothing(workspace: Workspace) -> None:
    paths = WarmPaths.for_workspace(workspace)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    pid, received = _hostile_listener(paths.socket)
    try:
        with pytest.raises(TargetUnavailableError, match=f"held by uid {NOBODY}"):
            warm_spawn(workspace, {"host": "127.0.0.1", "port": 0, "secret": "s3cr3t"})
    finally:
        os.waitpid(pid, 0)
    with os.fdopen(received, "rb") as fh:
        assert fh.read() == b""


def test_the_warm_server_refuses_another_user() -> None:
    # Outside pytest's private tmp folders, so another user can reach the socket.
    root = Path(tempfile.mkdtemp(prefix="nbdeploy-peer-"))
    workspace = Workspace(root / "ws")
    status = ensure_warm_server(workspace, wait=True)
    assert status is not None
    paths = WarmPaths.for_workspace(workspace)
    try:
        # A careless chmod opens the way; the credentials check still refuses.
        for folder in (root, workspace.path, paths.run_dir):
            os.chmod(folder, 0o711)
        os.chmod(paths.socket, 0o777)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                    conn.settimeout(10)
                    conn.connect(paths.socket)
                    conn.sendall(json.dumps({"op": "ping"}).encode())
                    conn.shutdown(socket.SHUT_WR)
                    os.write(write, conn.recv(65536))
            except BaseException as exc:
                os.write(write, json.dumps({"child": repr(exc)}).encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        with os.fdopen(read, "rb") as fh:
            reply = json.loads(fh.read())
        assert reply == {"ok": False, "kind": "peer", "error": "not your server"}
    finally:
        shutdown_warm_server(workspace)
        shutil.rmtree(root, ignore_errors=True)


def test_a_pid_the_server_did_not_start_is_not_trusted() -> None:
    # pid 1 is no child of this process: a reply naming it is refused.
    with pytest.raises(TargetUnavailableError, match="which it did not start"):
        _own_child({"pid": 1, "peer_pid": os.getpid()})
    gone = _own_child({"pid": 2**22 + 5, "peer_pid": os.getpid()})
    assert not gone.alive()


def test_the_environment_does_not_cross_the_socket(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from nbdeploy.targets.process import warm

    monkeypatch.setenv("NBDEPLOY_TEST_SECRET", "s3cr3t-value")
    sent: list[str] = []
    original = warm._request

    def spy(paths: WarmPaths, message: dict[str, object], timeout: float) -> dict[str, object]:
        sent.append(json.dumps(message))
        return original(paths, message, timeout)

    monkeypatch.setattr(warm, "_request", spy)
    env_file = warm.write_env_file(tmp_path / "svc")
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    try:
        ensure_warm_server(workspace, wait=True)
        request = {
            "bundle": str(tmp_path / "missing-bundle"),
            "host": "127.0.0.1",
            "port": 0,
            "log_file": str(tmp_path / "svc" / "server.log"),
            "exit_dir": str(tmp_path / "svc"),
            "env_file": str(env_file),
            "cwd": str(tmp_path),
        }
        reply = warm_spawn(workspace, request)
        ProcessId(int(reply["pid"]), None).wait_gone(30)
    finally:
        shutdown_warm_server(workspace)
    assert sent
    assert not any("s3cr3t-value" in message for message in sent)
    assert not env_file.exists()  # the child read it and removed it


def test_shutdown_refuses_a_foreign_pid(workspace: Workspace) -> None:
    paths = WarmPaths.for_workspace(workspace)
    paths.run_dir.mkdir(parents=True)
    # Our own pid is alive but is no warm server: it must not be signalled.
    paths.pid_file.write_text(json.dumps(ProcessId.of(os.getpid()).to_dict()))
    assert shutdown_warm_server(workspace) is False
