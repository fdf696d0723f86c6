"""``python -m nbdeploy.server`` as a real process on 127.0.0.1."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.linear_model import Ridge

from nbdeploy.server import EXIT_BIND_FAILED, EXIT_INIT_FAILED
from nbdeploy.server.launcher import bind_socket
from tests.helpers import free_port

from .bundles import DIABETES_SCORE

pytestmark = pytest.mark.integration

DEADLINE = 60.0


@dataclass
class ServerProcess:
    """A server subprocess whose stdout lines are collected by a reader thread."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def start_reader(self) -> None:
        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.put(line.rstrip("\n"))
            self.lines.put(None)

        threading.Thread(target=read, daemon=True).start()

    def wait_for_line(self, prefix: str, timeout: float = DEADLINE) -> str:
        """The first stdout line starting with ``prefix``; fails at the deadline or EOF."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {prefix!r} line before the deadline; got {self.seen}"
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            assert line is not None, f"stdout closed before {prefix!r}; got {self.seen}"
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def stop(self) -> int:
        """SIGTERM by PID and wait; the exit code."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout=DEADLINE)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(bundle: Path, *args: str, port: int = 0) -> ServerProcess:
        stderr = (tmp_path / f"stderr-{len(started)}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "nbdeploy.server", str(bundle), "--port", str(port), *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=tmp_path,
        )
        stderr.close()
        server = ServerProcess(process)
        server.start_reader()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            if server.process.poll() is None:
                os.kill(server.process.pid, signal.SIGKILL)
                server.process.wait(timeout=DEADLINE)
            if server.process.stdout is not None:
                server.process.stdout.close()


def test_serve_score_and_stop(
    make_bundle: Callable[..., Path],
    start_server: Callable[..., ServerProcess],
    diabetes: tuple[Ridge, pd.DataFrame],
) -> None:
    model, features = diabetes
    bundle = make_bundle(DIABETES_SCORE, model=model, input_sample=features.head(5))
    server = start_server(bundle)

    listening = server.wait_for_line("NBDEPLOY-LISTENING")
    _, host, port = listening.split()
    assert host == "127.0.0.1"
    assert int(port) > 0
    server.wait_for_line("NBDEPLOY-READY")
    base = f"http://{host}:{port}"

    health = requests.get(base + "/", timeout=10)
    assert health.status_code == 200
    assert health.text == "Healthy"

    rows = features.iloc[20:25]
    r = requests.post(base + "/score", json={"data": rows.to_dict(orient="records")}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    np.testing.assert_allclose(r.json()["predictions"], model.predict(rows.to_numpy()))
    assert r.json()["kind"] == "DataFrame"

    bad = requests.post(
        base + "/score",
        data=b"{oops",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert bad.status_code == 400
    assert bad.json()["status_code"] == 400

    assert requests.get(base + "/swagger.json", timeout=10).json()["swagger"] == "2.0"
    assert requests.get(base + "/docs", timeout=10).status_code == 200

    code = server.stop()
    assert code in (0, -signal.SIGTERM), code


def test_init_failure_exits_3_with_the_reason(
    make_bundle: Callable[..., Path], start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    score = """
    def init():
        raise RuntimeError("cannot open the model\\nsecond line")

    def run(data):
        return data
    """
    server = start_server(make_bundle(score))
    line = server.wait_for_line("NBDEPLOY-INIT-FAILED")
    assert line == "NBDEPLOY-INIT-FAILED: RuntimeError: cannot open the model\\nsecond line"
    assert server.process.wait(timeout=DEADLINE) == EXIT_INIT_FAILED
    assert "NBDEPLOY-READY" not in server.seen
    log = (tmp_path / "stderr-0.log").read_text()
    assert "Traceback" in log
    assert "cannot open the model" in log


def test_missing_bundle_exits_3(start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(tmp_path / "no-such-bundle")
    line = server.wait_for_line("NBDEPLOY-INIT-FAILED")
    assert "no-such-bundle" in line
    assert server.process.wait(timeout=DEADLINE) == EXIT_INIT_FAILED


def test_busy_port_exits_4(
    make_bundle: Callable[..., Path], start_server: Callable[..., ServerProcess]
) -> None:
    bundle = make_bundle("def init():\n    pass\n\ndef run(data):\n    return data\n")
    taken = bind_socket("127.0.0.1", 0)  # listening: the port cannot be shared
    try:
        port = taken.getsockname()[1]
        server = start_server(bundle, port=port)
        line = server.wait_for_line("NBDEPLOY-BIND-FAILED")
        assert line.startswith(f"NBDEPLOY-BIND-FAILED: 127.0.0.1 {port}:")
        assert server.process.wait(timeout=DEADLINE) == EXIT_BIND_FAILED
    finally:
        taken.close()


def test_stderr_gets_compact_log_lines(
    make_bundle: Callable[..., Path], start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = start_server(make_bundle("def init():\n    pass\n\ndef run(data):\n    return 1\n"))
    server.wait_for_line("NBDEPLOY-READY")
    server.stop()
    log = (tmp_path / "stderr-0.log").read_text().splitlines()
    assert any("INFO" in line and "init() finished" in line for line in log)
    assert not any(line.startswith("NBDEPLOY-") for line in log)  # those go to stdout


SERVE_WITH_SOCKET = """
import socket, sys
from nbdeploy.server import serve

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sys.exit(serve(sys.argv[1], sock=sock, log_level="warning"))
"""


def test_serve_on_an_already_bound_socket(make_bundle: Callable[..., Path], tmp_path: Path) -> None:
    """What the warm-start process does in a forked child: serve() on its socket."""
    bundle = make_bundle("def init():\n    pass\n\ndef run(data):\n    return [data, data]\n")
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_WITH_SOCKET, str(bundle)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    )
    server = ServerProcess(process)
    server.start_reader()
    try:
        _, host, port = server.wait_for_line("NBDEPLOY-LISTENING").split()
        server.wait_for_line("NBDEPLOY-READY")
        r = requests.post(f"http://{host}:{port}/score", json={"data": 7}, timeout=10)
        assert r.json() == [7, 7]
        assert server.stop() in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=DEADLINE)
        assert process.stdout is not None
        process.stdout.close()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


FIFO_GATED_SCORE = """
import os

def init():
    print("INIT-STARTED", flush=True)
    with open(os.environ["NBDEPLOY_TEST_FIFO"]) as gate:  # blocks until the test opens it
        gate.read()

def run(data):
    return data
"""


def test_init_before_listen_takes_no_connection_until_ready(
    make_bundle: Callable[..., Path],
    start_server: Callable[..., ServerProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    monkeypatch.setenv("NBDEPLOY_TEST_FIFO", str(fifo))
    port = free_port()
    server = start_server(
        make_bundle(FIFO_GATED_SCORE), "--init-before-listen", "--reuse-port", port=port
    )
    server.wait_for_line("INIT-STARTED")
    assert _refused(port), "the port must not accept connections while init() runs"
    with fifo.open("w") as gate:
        gate.write("go")
    server.wait_for_line("NBDEPLOY-READY")
    assert any(line.startswith("NBDEPLOY-LISTENING") for line in server.seen)
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).text == "Healthy"
    assert server.stop() in (0, -signal.SIGTERM)


def test_init_before_listen_failure_exits_3(
    make_bundle: Callable[..., Path], start_server: Callable[..., ServerProcess]
) -> None:
    score = "def init():\n    raise KeyError('weights')\n\ndef run(data):\n    return data\n"
    server = start_server(make_bundle(score), "--init-before-listen")
    assert (
        server.wait_for_line("NBDEPLOY-INIT-FAILED") == "NBDEPLOY-INIT-FAILED: KeyError: 'weights'"
    )
    assert server.process.wait(timeout=DEADLINE) == EXIT_INIT_FAILED
    assert not any(line.startswith("NBDEPLOY-LISTENING") for line in server.seen)


def test_reuse_port_lets_two_generations_share_a_port(
    make_bundle: Callable[..., Path], start_server: Callable[..., ServerProcess]
) -> None:
    port = free_port()
    old = start_server(
        make_bundle("def init():\n    pass\n\ndef run(data):\n    return 'old'\n"),
        "--reuse-port",
        port=port,
    )
    old.wait_for_line("NBDEPLOY-READY")
    new = start_server(
        make_bundle("def init():\n    pass\n\ndef run(data):\n    return 'new'\n"),
        "--reuse-port",
        port=port,
    )
    new.wait_for_line("NBDEPLOY-READY")
    assert old.stop() in (0, -signal.SIGTERM)
    r = requests.post(f"http://127.0.0.1:{port}/score", json={"data": 1}, timeout=10)
    assert r.json() == "new"
    assert new.stop() in (0, -signal.SIGTERM)


def test_sigterm_while_init_runs_before_listening_stops_the_server(
    make_bundle: Callable[..., Path],
    start_server: Callable[..., ServerProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fifo = tmp_path / "never-opened"
    os.mkfifo(fifo)
    monkeypatch.setenv("NBDEPLOY_TEST_FIFO", str(fifo))
    server = start_server(make_bundle(FIFO_GATED_SCORE), "--init-before-listen")
    server.wait_for_line("INIT-STARTED")
    assert server.stop() in (0, -signal.SIGTERM)
    assert not any(line.startswith("NBDEPLOY-") for line in server.seen)


def test_a_listening_server_answers_503_while_init_runs(
    make_bundle: Callable[..., Path],
    start_server: Callable[..., ServerProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    monkeypatch.setenv("NBDEPLOY_TEST_FIFO", str(fifo))
    server = start_server(make_bundle(FIFO_GATED_SCORE))
    _, host, port = server.wait_for_line("NBDEPLOY-LISTENING").split()
    server.wait_for_line("INIT-STARTED")
    base = f"http://{host}:{port}"
    health = requests.get(base + "/", timeout=10)
    assert health.status_code == 503
    assert health.json()["message"].startswith("Initializing")
    early = requests.post(base + "/score", json={"data": [1] * 1000}, timeout=10)
    assert early.status_code == 503
    assert early.json()["status_code"] == 503
    assert early.headers["x-request-id"]
    with fifo.open("w") as gate:
        gate.write("go")
    server.wait_for_line("NBDEPLOY-READY")
    assert requests.get(base + "/", timeout=10).text == "Healthy"
    assert requests.post(base + "/score", json={"data": 5}, timeout=10).json() == 5
    assert server.stop() in (0, -signal.SIGTERM)


THREAD_SCORE = """
import threading

init_thread = None

def init():
    global init_thread
    init_thread = threading.get_ident()

def run(data):
    return {
        "same_thread": threading.get_ident() == init_thread,
        "main_thread": threading.current_thread() is threading.main_thread(),
    }
"""


def test_init_and_run_share_one_scoring_thread_off_the_loop(
    make_bundle: Callable[..., Path], start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(make_bundle(THREAD_SCORE))
    _, host, port = server.wait_for_line("NBDEPLOY-LISTENING").split()
    server.wait_for_line("NBDEPLOY-READY")
    for _ in range(3):
        r = requests.post(f"http://{host}:{port}/score", json={"data": 1}, timeout=10)
        # Not the main thread: that one runs the event loop, which must stay free.
        assert r.json() == {"same_thread": True, "main_thread": False}
    assert server.stop() in (0, -signal.SIGTERM)


def test_the_next_generation_takes_over_the_listening_socket(
    make_bundle: Callable[..., Path], start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    port = free_port()
    handover = str(tmp_path / "old.sock")
    # No --reuse-port: binding the port a second time would fail, so only taking the
    # old server's socket lets the new one serve.
    old = start_server(
        make_bundle("def init():\n    pass\n\ndef run(data):\n    return 'old'\n"),
        "--handover-socket",
        handover,
        port=port,
    )
    old.wait_for_line("NBDEPLOY-READY")
    new = start_server(
        make_bundle("def init():\n    pass\n\ndef run(data):\n    return 'new'\n"),
        "--take-over",
        handover,
        "--handover-socket",
        str(tmp_path / "new.sock"),
        port=port,
    )
    assert new.wait_for_line("NBDEPLOY-LISTENING") == f"NBDEPLOY-LISTENING 127.0.0.1 {port}"
    new.wait_for_line("NBDEPLOY-READY")
    assert "took over the listening socket" in (tmp_path / "stderr-1.log").read_text()
    assert old.stop() in (0, -signal.SIGTERM)
    assert not os.path.exists(handover)
    for _ in range(5):
        r = requests.post(f"http://127.0.0.1:{port}/score", json={"data": 1}, timeout=10)
        assert r.json() == "new"
    assert new.stop() in (0, -signal.SIGTERM)


def test_a_stopping_server_answers_connections_it_accepted(
    make_bundle: Callable[..., Path], start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = start_server(make_bundle("def init():\n    pass\n\ndef run(data):\n    return 'ok'\n"))
    _, host, port = server.wait_for_line("NBDEPLOY-LISTENING").split()
    server.wait_for_line("NBDEPLOY-READY")
    early = socket.create_connection((host, int(port)), timeout=10)
    try:
        # Connections are accepted in order: once a later one is answered, the
        # server holds the early one, with no request on it yet.
        assert requests.get(f"http://{host}:{port}/", timeout=10).text == "Healthy"
        os.kill(server.process.pid, signal.SIGTERM)
        log = tmp_path / "stderr-0.log"
        deadline = time.monotonic() + DEADLINE
        while "stopping: no new connections" not in log.read_text():
            assert time.monotonic() < deadline, "the server did not start shutting down"
            time.sleep(0.01)
        body = b'{"data": 1}'
        early.sendall(
            b"POST /score HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        answer = b""
        while chunk := early.recv(65536):
            answer += chunk
    finally:
        early.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert answer.endswith(b'"ok"')
    assert server.process.wait(timeout=DEADLINE) in (0, -signal.SIGTERM)


def test_health_answers_while_a_five_second_run_works(
    make_bundle: Callable[..., Path], start_server: Callable[..., ServerProcess]
) -> None:
    sleeper = "import time\n\ndef init():\n    pass\n\ndef run(data):\n    time.sleep(data)\n"
    server = start_server(make_bundle(sleeper))
    _, host, port = server.wait_for_line("NBDEPLOY-LISTENING").split()
    server.wait_for_line("NBDEPLOY-READY")
    base = f"http://{host}:{port}"
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(requests.post, base + "/score", json={"data": 5}, timeout=60)
        time.sleep(0.2)  # let run() start; the checks below hold whenever they run
        for _ in range(5):
            health = requests.get(base + "/", timeout=1.0)  # the target's probe timeout
            assert health.status_code == 200
        assert not slow.done()
        assert slow.result(timeout=60).status_code == 200
