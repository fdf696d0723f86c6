"""Several real OS processes on one workspace: unique versions, no half versions after SIGKILL.

Children are fresh interpreters (``sys.executable -c ...``) that talk to the test over
their stdin/stdout: they say ``ready`` and wait for ``go`` (a start barrier, so the
registrations really overlap), or block inside a registration at a chosen phase until
the test kills them with SIGKILL.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import ModelNotFoundError

TIMEOUT = 120.0

REGISTER_MANY = textwrap.dedent(
    """
    import json, sys
    from nbdeploy.core.workspace import Workspace

    ws_path, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    registry = Workspace(ws_path).registry
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"
    done = []
    for i in range(count):
        payload = {"worker": worker, "i": i}
        mv = registry.register(payload, "shared", sample_input=[worker, i], tags={"w": str(worker)})
        done.append([mv.version, payload])
    print(json.dumps(done), flush=True)
    """
)

BLOCK_IN_REGISTER = textwrap.dedent(
    """
    import sys, threading
    from nbdeploy.core.registry import Registry
    from nbdeploy.core.workspace import Workspace

    ws_path, phase = sys.argv[1], sys.argv[2]

    def block():
        print("blocked", flush=True)
        threading.Event().wait()  # until SIGKILL

    # "staged": the files are in the staging folder, the commit has not begun.
    # "moved": the files are in place under the write lock, the row is not inserted.
    original_commit, original_move = Registry._commit, Registry._move_into_place

    def commit(self, *args):
        if phase == "staged":
            block()
        return original_commit(self, *args)

    def move_into_place(self, *args):
        original_move(self, *args)
        if phase == "moved":
            block()

    Registry._commit = commit
    Registry._move_into_place = move_into_place
    Workspace(ws_path).registry.register({"from": "killed"}, "m", sample_input=[1, 2])
    print("not reached", flush=True)
    """
)


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_line(proc: subprocess.Popen[str], timeout: float = TIMEOUT) -> str:
    """The child's next stdout line, waiting at most ``timeout`` seconds."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"child {proc.pid} said nothing within {timeout} s")
    line = proc.stdout.readline()
    if not line:
        stderr = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"child {proc.pid} exited early:\n{stderr}")
    return line.strip()


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    """Child processes a test starts; any still running at the end are killed by PID."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=TIMEOUT) == -signal.SIGKILL


def _integrity_ok(ws: Workspace) -> None:
    conn = sqlite3.connect(ws.db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def test_processes_registering_one_name_get_distinct_versions(
    workspace: Workspace, children: list[subprocess.Popen[str]]
) -> None:
    workers, count = 4, 10
    workspace.connect().close()  # the database exists; the children race on versions only
    for worker in range(workers):
        children.append(_spawn(REGISTER_MANY, str(workspace.path), str(worker), str(count)))
    for proc in children:
        assert _read_line(proc) == "ready"
    for proc in children:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in children:
        results.extend(json.loads(_read_line(proc)))
        assert proc.wait(timeout=TIMEOUT) == 0

    versions = sorted(version for version, _ in results)
    assert versions == list(range(1, workers * count + 1))
    # Every version holds the files and the sample of the registration that got it.
    registry = workspace.registry
    for version, payload in results:
        mv = registry.get(f"shared:{version}")
        assert mv.load() == payload
        assert mv.load_sample_input() == [payload["worker"], payload["i"]]
        assert dict(mv.tags) == {"w": str(payload["worker"])}
    _integrity_ok(workspace)
    assert list(workspace.staging_dir.iterdir()) == []
    assert workspace.gc() == []


def test_fresh_workspace_created_by_racing_processes(
    tmp_path: Path, children: list[subprocess.Popen[str]]
) -> None:
    # No database yet: the children also race on creating it and running migrations.
    ws_path = tmp_path / "new-ws"
    for worker in range(3):
        children.append(_spawn(REGISTER_MANY, str(ws_path), str(worker), "3"))
    for proc in children:
        assert _read_line(proc) == "ready"
    for proc in children:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    versions = []
    for proc in children:
        versions.extend(v for v, _ in json.loads(_read_line(proc)))
        assert proc.wait(timeout=TIMEOUT) == 0
    assert sorted(versions) == list(range(1, 10))
    _integrity_ok(Workspace(ws_path))


def test_threads_registering_one_name_get_distinct_versions(workspace: Workspace) -> None:
    barrier = threading.Barrier(4)
    versions: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait(timeout=TIMEOUT)
            for i in range(5):
                versions.append(workspace.registry.register(i, "t").version)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    assert errors == []
    assert sorted(versions) == list(range(1, 21))


@pytest.mark.parametrize("phase", ["staged", "moved"])
def test_sigkill_mid_register_leaves_no_half_version(
    workspace: Workspace, children: list[subprocess.Popen[str]], phase: str
) -> None:
    proc = _spawn(BLOCK_IN_REGISTER, str(workspace.path), phase)
    children.append(proc)
    assert _read_line(proc) == "blocked"
    _kill(proc)

    registry = workspace.registry
    assert registry.list() == []
    with pytest.raises(ModelNotFoundError):
        registry.get("m")
    leftovers = list(workspace.staging_dir.iterdir())
    assert len(leftovers) == 1  # the killed registration's staging folder
    if phase == "moved":
        # Files were renamed into place but never committed: an invisible orphan.
        assert (workspace.artifacts_dir / "m" / "1" / "model.pkl").is_file()
    _integrity_ok(workspace)

    mv = registry.register({"from": "survivor"}, "m")
    assert mv.version == 1
    assert mv.load() == {"from": "survivor"}
    assert mv.load_sample_input() is None  # not the killed process's sample
    assert not (workspace.samples_dir / "m" / "1").exists()
    assert list(workspace.staging_dir.iterdir()) == []  # swept by the registration
    assert [str(m.ref) for m in registry.list()] == ["m:1"]
    assert workspace.gc() == []


@pytest.mark.parametrize("phase", ["staged", "moved"])
def test_gc_cleans_up_after_a_killed_register(
    workspace: Workspace, children: list[subprocess.Popen[str]], phase: str
) -> None:
    proc = _spawn(BLOCK_IN_REGISTER, str(workspace.path), phase)
    children.append(proc)
    assert _read_line(proc) == "blocked"
    _kill(proc)

    staged = list(workspace.staging_dir.iterdir())
    assert len(staged) == 1
    removed = workspace.gc()
    assert staged[0] in removed
    assert list(workspace.staging_dir.iterdir()) == []
    if phase == "moved":
        assert workspace.artifacts_dir / "m" / "1" in removed
        assert workspace.samples_dir / "m" / "1" in removed
        assert not (workspace.artifacts_dir / "m").exists()
        assert not (workspace.samples_dir / "m").exists()
    assert len(removed) == (3 if phase == "moved" else 1)
    assert workspace.gc() == []
    assert workspace.registry.register(1, "m").version == 1


def test_a_writer_waits_for_a_killed_lock_holder(
    workspace: Workspace, children: list[subprocess.Popen[str]]
) -> None:
    holder = _spawn(BLOCK_IN_REGISTER, str(workspace.path), "moved")
    children.append(holder)
    assert _read_line(holder) == "blocked"  # it holds BEGIN IMMEDIATE now

    waiter = _spawn(REGISTER_MANY, str(workspace.path), "7", "1")
    children.append(waiter)
    assert _read_line(waiter) == "ready"
    assert waiter.stdin is not None
    waiter.stdin.write("go\n")
    waiter.stdin.flush()
    # The waiter cannot finish while the lock is held; poll it briefly with a deadline.
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        assert waiter.poll() is None
        time.sleep(0.05)
    _kill(holder)
    (version, payload), *rest = json.loads(_read_line(waiter))
    assert rest == []
    assert waiter.wait(timeout=TIMEOUT) == 0
    assert (version, payload) == (1, {"worker": 7, "i": 0})
    assert workspace.registry.get("shared:1").load() == payload
    _integrity_ok(workspace)
