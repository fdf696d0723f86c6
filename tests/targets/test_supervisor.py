"""The process supervisor with real processes: restart on crash, the restart budget,
stop, and stop racing a restart (:mod:`nbdeploy.targets.process.supervisor`).

Every wait is on a condition with a generous timeout; nothing asserts on time.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from nbdeploy.core.services import ServiceState
from nbdeploy.targets.local import LocalTarget
from nbdeploy.targets.local.servers import servers_of
from nbdeploy.targets.local.target import RESTART_LIMIT
from nbdeploy.targets.process.supervisor import (
    ProcessId,
    Supervisor,
    Watcher,
    exit_reason,
    launch,
)

# A stdlib HTTP server: answers GET / with 200 and its PID.
_SERVER = """\
import http.server, os, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

# A program that starts and soon exits with code 7.
_CRASHER = "import sys, time\ntime.sleep(0.05)\nsys.exit(7)\n"


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answer(port: int) -> int | None:
    """The PID the test server answers with, or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
            return int(reply.read())
    except OSError:
        return None


class _Programs:
    """Starts a test program detached through :func:`launch`, like the targets do."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[ProcessId] = []

    def script(self, name: str, text: str) -> Path:
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        return path

    def start(self, script: Path, *args: str) -> ProcessId:
        proc = launch(
            [str(script), *args],
            log_file=self.folder / "child.log",
            exit_dir=self.folder,
            cwd=self.folder,
            isolated=True,
        )
        self.started.append(proc)
        return proc

    def describe(self, proc: ProcessId) -> str:
        return exit_reason(proc, self.folder, wait=10.0)


@pytest.fixture
def programs(tmp_path: Path) -> Iterator[_Programs]:
    progs = _Programs(tmp_path)
    yield progs
    for proc in progs.started:  # whatever a failed test left behind
        if proc.alive():
            proc.signal(signal.SIGKILL)


@pytest.fixture
def watcher() -> Watcher:
    return Watcher(poll=0.01)


def _http_supervisor(programs: _Programs, port: int, **kwargs: Any) -> Supervisor:
    server = programs.script("server.py", _SERVER)

    def start(count: int) -> list[ProcessId]:
        new = [programs.start(server, str(port)) for _ in range(count)]
        assert _wait_for(lambda: _answer(port) in {p.pid for p in new})
        return new

    return Supervisor(start(1), start=start, describe=programs.describe, **kwargs)


def test_a_crashed_child_is_restarted_and_answers_again(
    programs: _Programs, watcher: Watcher
) -> None:
    port = _free_port()
    sup = _http_supervisor(programs, port, limit=3)
    first = sup.children[0]
    assert _answer(port) == first.pid
    sup.watch(watcher)
    try:
        first.signal(signal.SIGKILL)
        # Nobody looks at a status: the watcher notices and restarts it.
        assert _wait_for(lambda: len(sup.history) == 1 and len(sup.children) == 1)
        (second,) = sup.children
        assert second.pid != first.pid
        assert second.alive()
        assert _answer(port) == second.pid
        assert sup.history[0]["pid"] == first.pid
        assert sup.failure is None
    finally:
        sup.stop(10.0)
    assert not any(p.alive() for p in programs.started)


def test_a_child_that_keeps_crashing_ends_failed_with_its_exit_reason(
    programs: _Programs, watcher: Watcher
) -> None:
    crasher = programs.script("crash.py", _CRASHER)
    sup = Supervisor(
        [programs.start(crasher)],
        start=lambda count: [programs.start(crasher) for _ in range(count)],
        describe=programs.describe,
        limit=2,
        limit_note="per test",
    )
    sup.watch(watcher)
    assert _wait_for(lambda: sup.failure is not None)
    assert sup.failure is not None
    assert len(sup.history) == 2
    assert "exited with code 7" in sup.failure
    assert "not restarted: 2 restart(s) already (the limit is 2 per test)" in sup.failure
    assert all("exited with code 7" in entry["reason"] for entry in sup.history)
    assert len(programs.started) == 3  # the first start and two restarts, no more
    assert _wait_for(lambda: not watcher.watching(id(sup)))
    assert not any(p.alive() for p in programs.started)


def test_a_restart_that_fails_ends_failed_with_the_reason(programs: _Programs) -> None:
    crasher = programs.script("crash.py", _CRASHER)

    def start(count: int) -> list[ProcessId]:
        raise RuntimeError("the new child never became ready")

    sup = Supervisor([programs.start(crasher)], start=start, describe=programs.describe, limit=3)
    assert _wait_for(lambda: not sup.children[0].alive())
    assert sup.check()
    assert sup.failure is not None
    assert "exited with code 7; the restart failed: the new child never became ready" in (
        sup.failure
    )
    assert not sup.check()  # a failed supervisor starts nothing more


def test_stop_leaves_no_process_behind(programs: _Programs, watcher: Watcher) -> None:
    server = programs.script("server.py", _SERVER)
    children = [programs.start(server, str(_free_port())) for _ in range(3)]
    sup = Supervisor(children, start=lambda count: [], describe=str, limit=3)
    sup.watch(watcher)
    sup.stop(10.0)
    for proc in children:
        assert not proc.alive()
    assert not watcher.watching(id(sup))
    assert not sup.check()  # stopped: nothing is restarted


def test_stop_while_a_restart_is_in_progress_leaves_nothing_behind(
    programs: _Programs, watcher: Watcher
) -> None:
    port = _free_port()
    server = programs.script("server.py", _SERVER)
    restarting = threading.Event()
    release = threading.Event()

    def start(count: int) -> list[ProcessId]:
        new = [programs.start(server, str(port)) for _ in range(count)]
        restarting.set()
        release.wait(60)  # still getting ready when stop() is called
        return new

    sup = Supervisor([programs.start(server, str(port))], start=start, describe=str, limit=3)
    assert _wait_for(lambda: _answer(port) is not None)
    sup.watch(watcher)
    sup.children[0].signal(signal.SIGKILL)
    assert restarting.wait(60)
    stopper = threading.Thread(target=sup.stop, args=(10.0,))
    stopper.start()
    assert _wait_for(lambda: sup.stopped)
    release.set()
    stopper.join(60)
    assert not stopper.is_alive()
    assert len(programs.started) == 2
    for proc in programs.started:
        assert _wait_for(lambda p=proc: not p.alive())
    assert not watcher.watching(id(sup))


def test_a_crashed_service_is_restarted_without_being_looked_at(
    target: LocalTarget, make_bundle: Any, diabetes: Any
) -> None:
    _, rows = diabetes
    record = target.deploy("svc", make_bundle())
    assert record.scoring_uri is not None
    store = target.workspace.services
    for attempt in range(1, RESTART_LIMIT + 1):
        (server,) = servers_of(record)
        os.kill(server.process.pid, signal.SIGKILL)
        # Only the stored record is read (no get(), which would restart it too).
        assert _wait_for(lambda n=attempt: len(store.get("svc").config.get("restarts") or []) == n)
        record = store.get("svc")
        assert record.state is ServiceState.HEALTHY, record.error
        assert "SIGKILL" in record.config["restarts"][-1]["reason"]
        (new,) = servers_of(record)
        assert new.process.pid != server.process.pid
        answer = requests.post(record.scoring_uri, json={"data": rows.tolist()}, timeout=30)
        assert answer.status_code == 200
    (server,) = servers_of(record)
    os.kill(server.process.pid, signal.SIGKILL)
    assert _wait_for(lambda: store.get("svc").state is ServiceState.FAILED)
    failed = store.get("svc")
    assert failed.error is not None
    assert "SIGKILL" in failed.error
    assert f"limit is {RESTART_LIMIT}" in failed.error


def test_delete_while_a_service_restart_is_in_progress_leaves_nothing_behind(
    target: LocalTarget, make_bundle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = target.deploy("svc", make_bundle())
    (first,) = servers_of(record)
    restarting = threading.Event()
    release = threading.Event()
    started: list[ProcessId] = []
    real_start = target._replicas.start

    def slow_start(*args: Any, **kwargs: Any) -> Any:
        result = real_start(*args, **kwargs)
        started.extend(server.process for server in result[0])
        restarting.set()
        release.wait(60)  # the restart is still in progress when delete() comes
        return result

    monkeypatch.setattr(target._replicas, "start", slow_start)
    os.kill(first.process.pid, signal.SIGKILL)
    assert restarting.wait(60)  # the watcher restarts it; nobody looked
    assert started
    deleter = threading.Thread(target=target.delete, args=("svc",))
    deleter.start()
    release.set()
    deleter.join(120)
    assert not deleter.is_alive()
    for proc in [first.process, *started]:
        assert _wait_for(lambda p=proc: not p.alive())
    assert "svc" not in [r.name for r in target.workspace.services.list()]
