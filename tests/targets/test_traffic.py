"""Controlled rollout on the local target: versions behind one endpoint, real processes.

A router process takes the endpoint's port when a second version is added; weights
shift at runtime while a stream of requests runs, and nothing may fail.
"""

from __future__ import annotations

import math
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

import nbdeploy
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import DeploymentError, InvalidArgumentError
from nbdeploy.sdk.webservice import Webservice
from nbdeploy.targets.local import LocalConfig, LocalTarget
from nbdeploy.targets.local.traffic import versions_of
from nbdeploy.targets.process import router as router_module
from nbdeploy.targets.process.router import Route, Routes, read_applied
from nbdeploy.targets.process.supervisor import ProcessId
from nbdeploy.targets.weights import rescale

from .conftest import SCORE, BundleFactory

pytestmark = pytest.mark.integration

#: Requests per phase that count for the split check.
PER_PHASE = 300


def _script(tmp_path: Path, tag: str, init_extra: str = "pass") -> Path:
    path = tmp_path / f"score_{tag}.py"
    path.write_text(textwrap.dedent(SCORE).format(tag=tag, init_extra=init_extra), "utf-8")
    return path


@pytest.fixture
def endpoint(
    target: LocalTarget, workspace: Workspace, diabetes: tuple[Any, np.ndarray], tmp_path: Path
) -> Callable[..., Webservice]:
    """``endpoint()``: service ``churn`` answering with tag ``v1`` (the ``target``
    fixture stops every process afterwards)."""
    model, _ = diabetes

    def make(warm: bool = True) -> Webservice:
        nbdeploy.register(model, "diabetes", workspace=workspace)
        nbdeploy.register(model, "diabetes", workspace=workspace)
        config = LocalConfig(port=0, warm_start=warm)
        return nbdeploy.deploy(
            "diabetes:1",
            name="churn",
            score=_script(tmp_path, "v1"),
            config=config,
            workspace=workspace,
        )

    return make


@dataclass
class _Sample:
    phase_sent: int
    phase_done: int
    status: int | None
    version: str | None
    tag: str | None
    error: str | None = None


class _Stream:
    """Threads posting requests through keep-alive sessions until told to stop."""

    def __init__(self, uri: str, rows: list[list[float]], threads: int = 2) -> None:
        self.uri = uri
        self.rows = rows
        self.phase = 0
        self.samples: list[_Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, daemon=True) for _ in range(threads)]

    def __enter__(self) -> _Stream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _send(self) -> None:
        session = requests.Session()
        deadline = time.monotonic() + 120  # a guard against hanging, not a timing check
        while not self._stop.is_set() and time.monotonic() < deadline:
            sent = self.phase
            try:
                response = session.post(self.uri, json={"data": self.rows}, timeout=30)
            except requests.RequestException as exc:
                sample = _Sample(sent, self.phase, None, None, None, repr(exc))
            else:
                tag = response.json().get("tag") if response.status_code == 200 else None
                sample = _Sample(
                    sent,
                    self.phase,
                    response.status_code,
                    response.headers.get("x-nbdeploy-version"),
                    tag,
                    None if response.status_code == 200 else response.text,
                )
            with self._lock:
                self.samples.append(sample)

    def stable(self, phase: int) -> list[_Sample]:
        """Samples sent and answered while ``phase`` was in force."""
        with self._lock:
            return [s for s in self.samples if s.phase_sent == s.phase_done == phase]

    def wait_for(self, phase: int, count: int) -> None:
        deadline = time.monotonic() + 120
        while len(self.stable(phase)) < count:
            assert time.monotonic() < deadline, f"phase {phase}: too few answers"
            assert all(t.is_alive() for t in self._threads), "a sender thread died"
            time.sleep(0.01)


def _check_split(samples: list[_Sample], share_v2: float, label: str) -> None:
    n = len(samples)
    v2 = sum(1 for s in samples if s.version == "v2")
    if share_v2 in (0.0, 1.0):
        assert v2 == share_v2 * n, f"{label}: {v2} of {n} answered by v2"
        return
    sigma = math.sqrt(n * share_v2 * (1 - share_v2))
    assert abs(v2 - n * share_v2) <= 4 * sigma, (
        f"{label}: {v2} of {n} by v2, expected ~{n * share_v2:g}"
    )


def test_weights_shift_under_load_without_a_failed_request(
    endpoint: Callable[..., Webservice],
    workspace: Workspace,
    diabetes: tuple[Any, np.ndarray],
    tmp_path: Path,
) -> None:
    _, rows = diabetes
    svc = endpoint()
    uri = svc.scoring_uri
    assert uri is not None
    single = ProcessId.from_dict(svc.record.config["process"])
    assert svc.traffic == {}

    svc.add_version("v2", models="diabetes:2", score=_script(tmp_path, "v2"), weight=0)

    assert svc.scoring_uri == uri  # same endpoint, now served by the router
    assert svc.traffic == {"v1": 100, "v2": 0}
    assert svc.models == ("diabetes:1", "diabetes:2")
    assert not single.alive()
    assert svc.state == "Healthy"
    phases: list[tuple[str, float, Callable[[], Any]]] = [
        ("100/0", 0.0, lambda: None),
        ("90/10", 0.1, lambda: svc.set_traffic({"v1": 90, "v2": 10})),
        ("50/50", 0.5, lambda: svc.set_traffic({"v1": 50, "v2": 50})),
        ("0/100", 1.0, lambda: svc.set_traffic({"v1": 0, "v2": 100})),
        ("rollback", 0.0, svc.rollback),
    ]
    with _Stream(uri, rows.tolist()) as stream:
        for index, (_, _, shift) in enumerate(phases):
            stream.phase = -1  # requests sent during a shift count for no phase
            shift()
            stream.phase = index
            stream.wait_for(index, PER_PHASE)
    failed = [s for s in stream.samples if s.status != 200]
    assert failed == [], failed[:5]
    assert all(s.version == s.tag for s in stream.samples)
    for index, (label, share_v2, _) in enumerate(phases):
        _check_split(stream.stable(index), share_v2, label)

    assert svc.traffic == {"v1": 100}
    assert svc.models == ("diabetes:1",)
    assert [v.name for v in versions_of(workspace.services.get("churn"))] == ["v1"]


def test_version_rules_pinning_and_errors(
    endpoint: Callable[..., Webservice], diabetes: tuple[Any, np.ndarray], tmp_path: Path
) -> None:
    _, rows = diabetes
    svc = endpoint()
    with pytest.raises(InvalidArgumentError, match="single version") as info:
        svc.set_traffic({"v1": 100})
    assert info.value.hint is not None
    assert "add_version" in info.value.hint
    with pytest.raises(InvalidArgumentError, match="single version"):
        svc.rollback()

    svc.add_version("v2", score=_script(tmp_path, "v2"), weight=30)
    assert svc.traffic == {"v1": 70, "v2": 30}
    svc.add_version("v3", score=_script(tmp_path, "v3"), weight=10)
    assert svc.traffic == {"v1": 63, "v2": 27, "v3": 10}
    assert svc.models == ("diabetes:1",)  # models default to the primary version's

    with pytest.raises(InvalidArgumentError, match="add up to 90, not 100"):
        svc.set_traffic({"v1": 90})
    with pytest.raises(InvalidArgumentError, match="no version 'v9'; its versions: v1, v2, v3"):
        svc.set_traffic({"v9": 100})
    with pytest.raises(InvalidArgumentError, match="weight 101"):
        svc.set_traffic({"v1": 101})
    with pytest.raises(InvalidArgumentError, match="already has a version 'v2'"):
        svc.add_version("v2", score=_script(tmp_path, "v2b"))
    with pytest.raises(InvalidArgumentError, match="still gets 27%"):
        svc.remove_version("v2")

    # A request may name its version, whatever the weights (Azure's header too).
    uri = svc.scoring_uri or ""
    for header in ("x-nbdeploy-version", "azureml-model-deployment"):
        for version in ("v1", "v2", "v3"):
            answer = requests.post(uri, json={"data": rows.tolist()}, headers={header: version})
            assert answer.status_code == 200, answer.text
            assert answer.json()["tag"] == version
            assert answer.headers["azureml-model-deployment"] == version
    unknown = requests.post(uri, json={"data": rows.tolist()}, headers={"x-nbdeploy-version": "x"})
    assert unknown.status_code == 404
    assert "versions: v1, v2, v3" in unknown.json()["message"]

    svc.set_traffic({"v1": 100})
    record = svc.record
    v3 = next(v for v in versions_of(record) if v.name == "v3")
    svc.remove_version("v3")
    assert not v3.process.alive()
    assert not Path(v3.bundle_path).exists()
    assert svc.traffic == {"v1": 100, "v2": 0}
    with pytest.raises(InvalidArgumentError, match="no version 'v3'"):
        svc.remove_version("v3")


def test_a_version_that_fails_to_start_leaves_the_endpoint_as_it_was(
    endpoint: Callable[..., Webservice], diabetes: tuple[Any, np.ndarray], tmp_path: Path
) -> None:
    _, rows = diabetes
    svc = endpoint()
    before = svc.record
    broken = _script(tmp_path, "bad", init_extra="raise RuntimeError('no GPU here')")
    with pytest.raises(DeploymentError, match="no GPU here"):
        svc.add_version("v2", score=broken, weight=50)
    record = svc.refresh()
    assert record.config["process"] == before.config["process"]
    assert "versions" not in record.config
    assert svc.run(rows)["tag"] == "v1"
    # Only the one process of the plain service runs: the extra v1 backend stopped.
    service_dir = Path(svc.workspace.services_dir) / "churn"
    assert not (service_dir / "routes.json").exists()


def test_update_switches_the_primary_and_delete_stops_everything(
    endpoint: Callable[..., Webservice],
    workspace: Workspace,
    diabetes: tuple[Any, np.ndarray],
    tmp_path: Path,
) -> None:
    _, rows = diabetes
    svc = endpoint(warm=False)
    svc.add_version("v2", score=_script(tmp_path, "v2"), weight=0)
    old_v1 = versions_of(svc.record)[0]

    svc.update(score=str(_script(tmp_path, "v1-new")))

    assert svc.traffic == {"v1": 100, "v2": 0}
    assert svc.run(rows)["tag"] == "v1-new"
    assert not old_v1.process.alive()
    assert not Path(old_v1.bundle_path).exists()
    record = workspace.services.get("churn")
    processes = [ProcessId.from_dict(record.config["process"])]
    processes += [v.process for v in versions_of(record)]
    bundles = [Path(v.bundle_path) for v in versions_of(record)]
    assert all(p.alive() for p in processes)

    svc.delete()

    assert not any(p.alive() for p in processes)
    assert not any(b.exists() for b in bundles)
    assert workspace.services.list() == []


def test_router_speaks_http_1_1(
    endpoint: Callable[..., Webservice], diabetes: tuple[Any, np.ndarray], tmp_path: Path
) -> None:
    _, rows = diabetes
    svc = endpoint()
    svc.add_version("v2", score=_script(tmp_path, "v2"), weight=50)
    uri = svc.scoring_uri or ""
    body = ('{"data": ' + str(rows.tolist()) + "}").encode()

    # A chunked request body (no Content-Length).
    chunks = iter([body[:10], body[10:]])
    answer = requests.post(uri, data=chunks, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["tag"] == answer.headers["x-nbdeploy-version"]

    # Expect: 100-continue, then two requests on one connection, the last one closing.
    port = int(uri.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        head = (
            "POST /score HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
        ).encode()
        conn.sendall(head)
        assert conn.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        conn.sendall(body)
        first = _read_response(conn)
        assert first.startswith(b"HTTP/1.1 200")
        conn.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        second = _read_response(conn)
        assert second.startswith(b"HTTP/1.1 200")
        assert b"connection: close" in second.lower()
        assert second.endswith(b"Healthy")
        assert conn.recv(10) == b""  # closed by the router

    # A version whose process died answers 502 and names the version.
    v2 = next(v for v in versions_of(svc.record) if v.name == "v2")
    v2.process.signal(9)
    assert v2.process.wait_gone(10)
    assert svc.state == "Unhealthy"
    assert "version 'v2' is not running" in (svc.error or "")
    failed = requests.post(uri, data=body, headers={"x-nbdeploy-version": "v2"})
    assert failed.status_code == 502
    assert "'v2'" in failed.json()["message"]


def _read_response(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length")
    )
    while len(rest) < length:
        rest += conn.recv(65536)
    return head + b"\r\n\r\n" + rest


def test_routes_pick_by_weight_and_rescale() -> None:
    routes = Routes(1, (Route("a", "h", 1, 90), Route("b", "h", 2, 10), Route("c", "h", 3, 0)))
    assert routes.pick(0.0).name == "a"
    assert routes.pick(0.8999).name == "a"
    assert routes.pick(0.9).name == "b"
    assert routes.pick(0.99999).name == "b"
    assert Routes.from_dict(routes.to_dict()) == routes
    with pytest.raises(ValueError, match="not all 0"):
        Routes(1, (Route("a", "h", 1, 0),))
    assert rescale({"v1": 63, "v2": 27}, 100) == {"v1": 70, "v2": 30}
    assert rescale({"v1": 100, "v2": 0}, 90) == {"v1": 90, "v2": 0}
    assert sum(rescale({"a": 33, "b": 33, "c": 34}, 77).values()) == 77


def test_every_version_answers_under_the_endpoints_auth(
    target: LocalTarget,
    workspace: Workspace,
    diabetes: tuple[Any, np.ndarray],
    tmp_path: Path,
) -> None:
    model, rows = diabetes
    nbdeploy.register(model, "diabetes", workspace=workspace)
    svc = nbdeploy.deploy(
        "diabetes",
        name="churn",
        score=_script(tmp_path, "v1"),
        auth="key",
        config=LocalConfig(port=0),
        workspace=workspace,
    )
    svc.add_version("v2", score=_script(tmp_path, "v2"), weight=50)
    primary, _ = svc.get_keys()
    uri = svc.scoring_uri or ""
    for version in ("v1", "v2"):
        pinned = {"x-nbdeploy-version": version}
        refused = requests.post(uri, json={"data": rows.tolist()}, headers=pinned)
        assert refused.status_code == 401, (version, refused.text)
        allowed = requests.post(
            uri,
            json={"data": rows.tolist()},
            headers={**pinned, "Authorization": f"Bearer {primary}"},
        )
        assert allowed.status_code == 200, (version, allowed.text)
        assert allowed.json()["tag"] == version


def test_router_takes_over_the_single_servers_socket(
    target: LocalTarget, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    """The router can serve on the single server's own listening socket (no second
    socket bound next to it), so nothing is left queued when that server stops."""
    single = target.deploy("single", make_bundle(tag="v1", service="single"))
    backend = target.deploy("backend", make_bundle(tag="v2", service="backend"))
    port = int(single.config["port"])
    routes = tmp_path / "routes.json"
    applied = tmp_path / "applied.json"
    Routes(1, (Route("v2", "127.0.0.1", int(backend.config["port"]), 100),)).write(routes)
    log = (tmp_path / "router.log").open("w")
    router = subprocess.Popen(
        [
            sys.executable,
            "-I",
            str(Path(router_module.__file__)),
            "--routes",
            str(routes),
            "--applied",
            str(applied),
            "--port",
            str(port),
            "--take-over",
            str(single.config["handover"]),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        deadline = time.monotonic() + 60
        while read_applied(applied) is None:
            assert router.poll() is None, (tmp_path / "router.log").read_text()
            assert time.monotonic() < deadline, "the router did not start"
            time.sleep(0.01)
        assert "took over the listening socket" in (tmp_path / "router.log").read_text()
        target.delete("single")  # closes its descriptor; the socket stays the router's
        for _ in range(5):
            r = requests.post(f"http://127.0.0.1:{port}/score", json={"data": [[0.0] * 10]})
            assert r.status_code == 200, r.text
            assert r.headers["x-nbdeploy-version"] == "v2"
    finally:
        router.send_signal(signal.SIGTERM)
        router.wait(30)


def _router_rss_peak_kb(svc: Webservice) -> int:
    router = ProcessId.from_dict(svc.record.config["process"])
    for line in Path(f"/proc/{router.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def test_router_refuses_an_over_limit_body_at_once_and_streams_large_ones(
    endpoint: Callable[..., Webservice], tmp_path: Path
) -> None:
    svc = endpoint()
    svc.add_version("v2", score=_script(tmp_path, "v2"), weight=50)
    uri = svc.scoring_uri
    assert uri is not None
    host, port = uri.split("//")[1].split("/")[0].split(":")
    # A Content-Length over the limit (100 MiB): 413 before any body byte is sent,
    # and no "100 Continue" invitation.
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /score HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10737418240\r\nExpect: 100-continue\r\n\r\n"
        )
        answer = conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b"limit of 104857600 bytes" in answer
    # A 40 MB body under the limit goes through without the router holding it.
    before = _router_rss_peak_kb(svc)
    body = b'{"data": "' + b"x" * (40 * 1024 * 1024) + b'"}'
    r = requests.post(uri, data=body, headers={"Content-Type": "application/json"}, timeout=120)
    # The server got it whole: run() saw the 40 MB string (and cannot predict from it).
    assert r.status_code == 500
    assert "run() raised" in r.json()["message"]
    assert _router_rss_peak_kb(svc) - before < 16 * 1024  # far below the 40 MB body

    # Chunked, over the limit: cut off with a 413 once the limit is passed.
    def chunks() -> Any:
        yield b'{"data": "'
        for _ in range(110):
            yield b"x" * (1024 * 1024)

    r = requests.post(uri, data=chunks(), headers={"Content-Type": "application/json"}, timeout=120)
    assert r.status_code == 413


def test_traffic_never_goes_to_a_dead_version(
    endpoint: Callable[..., Webservice], tmp_path: Path, diabetes: tuple[Any, np.ndarray]
) -> None:
    _, rows = diabetes
    svc = endpoint()
    svc.add_version("v2", score=_script(tmp_path, "v2"), weight=0)
    v2 = next(v for v in versions_of(svc.record) if v.name == "v2")
    for proc in v2.processes:
        proc.signal(signal.SIGKILL)
        assert proc.wait_gone(30)
    with pytest.raises(DeploymentError, match=r"'v2'.*not serving"):
        svc.set_traffic({"v1": 50, "v2": 50})
    assert svc.traffic == {"v1": 100, "v2": 0}
    # A version that dies while it has traffic: the router fails over.
    svc.add_version("v3", score=_script(tmp_path, "v3"), weight=50)
    v3 = next(v for v in versions_of(svc.record) if v.name == "v3")
    for proc in v3.processes:
        proc.signal(signal.SIGKILL)
        assert proc.wait_gone(30)
    uri = svc.scoring_uri
    assert uri is not None
    statuses = []
    with requests.Session() as session:
        for _ in range(200):
            r = session.post(uri, json={"data": rows.tolist()}, timeout=30)
            statuses.append((r.status_code, r.headers.get("x-nbdeploy-version")))
    assert {s for s, _ in statuses} == {200}, statuses
    assert {v for _, v in statuses} == {"v1"}
    pinned = requests.post(
        uri, json={"data": rows.tolist()}, headers={"x-nbdeploy-version": "v3"}, timeout=30
    )
    assert pinned.status_code == 502  # pinned requests are not moved
