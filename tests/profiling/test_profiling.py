"""The profiling engine against real HTTP servers on 127.0.0.1.

The servers are small standard-library processes with known behaviour: a busy loop of
20 ms per request (on the thread's CPU clock or on the wall clock), 300 MB allocated
at start, a 500 for negative values, a slow answer, ``Connection: close``. They are
started per test and stopped by PID.
"""

from __future__ import annotations

import contextlib
import dataclasses
import doctest
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbdeploy import profiling
from nbdeploy.exceptions import InvalidArgumentError, TargetUnavailableError
from nbdeploy.profiling import (
    GIB,
    ProfileResult,
    Recommendation,
    bodies,
    check_loopback,
    loadgen,
    measure,
    prepare_requests,
    recommend,
    recommendation,
    replicas_for,
    report,
    run_profile,
    sampling,
)
from nbdeploy.profiling.report import example_dict

SERVER = r"""
import http.server, json, sys, threading, time

cfg = json.loads(sys.argv[1])
ballast = None
if cfg.get("ballast_mb"):
    import numpy as np
    ballast = np.ones(cfg["ballast_mb"] * 2**20 // 8)  # np.ones touches every page
seen = {}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0" if cfg.get("close") else "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, payload):
        out = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self):
        with lock:
            self.answer(200, {"seen": seen, "auth": self.headers.get("Authorization")})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            key = body.decode()
            seen[key] = seen.get(key, 0) + 1
            seen["_auth"] = self.headers.get("Authorization")
        data = json.loads(body)["data"]
        if data == "slow":
            time.sleep(3)
        burn = cfg.get("burn_s", 0.0)
        clock = time.thread_time if cfg.get("clock", "cpu") == "cpu" else time.perf_counter
        start = clock()
        while clock() - start < burn:
            pass
        if isinstance(data, list) and any(isinstance(v, (int, float)) and v < 0 for v in data):
            self.answer(500, {"message": "negative value"})
        else:
            self.answer(200, [1])


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

PARENT = r"""
import subprocess, sys
subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2]])
"""


class Server:
    """A test server process; ``pid`` is the process to sample, ``uri`` its /score."""

    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.port = port
        self.uri = f"http://127.0.0.1:{port}/score"

    def seen(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=10) as r:
            return dict(json.loads(r.read())["seen"])


@pytest.fixture
def start_server() -> Iterator[Any]:
    """Start test servers; every one is stopped by PID after the test."""
    procs: list[subprocess.Popen[str]] = []

    def start(with_parent: bool = False, **cfg: Any) -> Server:
        args = [SERVER, json.dumps(cfg)]
        cmd = (
            [sys.executable, "-c", PARENT, *args] if with_parent else [sys.executable, "-c", *args]
        )
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server listens (or dies)
        assert line.strip().isdigit(), f"test server did not start: {line!r}"
        return Server(proc, int(line))

    yield start
    import psutil

    for proc in procs:
        children = []
        with contextlib.suppress(psutil.NoSuchProcess):
            children = psutil.Process(proc.pid).children(recursive=True)
        for child in children:
            child.terminate()
        proc.terminate()
        proc.wait(timeout=30)
        psutil.wait_procs(children, timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def test_module_doctests() -> None:
    modules = [profiling, bodies, loadgen, measure, recommendation, report, sampling]
    results = [doctest.testmod(m, optionflags=doctest.ELLIPSIS) for m in modules]
    assert sum(r.attempted for r in results) > 10
    assert sum(r.failed for r in results) == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param((20, 10), 286, id="reference-example"),
        pytest.param((100, 0.02), 3, id="fast-requests"),
        pytest.param((100, 0.02, 1.0, 2), 1, id="two-per-replica"),
        pytest.param((7, 0.1, 0.7), 1, id="exactly-one"),
        pytest.param((1, 0.001), 1, id="at-least-one"),
    ],
)
def test_replicas_for(args: tuple[float, ...], expected: int) -> None:
    assert replicas_for(*args) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"target_rps": 0, "request_seconds": 1}, id="zero-rps"),
        pytest.param({"target_rps": 1, "request_seconds": -1}, id="negative-time"),
        pytest.param({"target_rps": 1, "request_seconds": 1, "target_utilization": 70}, id="pct"),
        pytest.param(
            {"target_rps": 1, "request_seconds": 1, "max_concurrent_per_replica": 0}, id="zero"
        ),
    ],
)
def test_replicas_for_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidArgumentError):
        replicas_for(**kwargs)  # type: ignore[arg-type]


def test_memory_rule_rounds_up_with_headroom() -> None:
    rec = recommend(
        peak_memory_bytes=int(0.8 * GIB),
        load_cpu_cores=None,
        p95_cpu_cores=None,
        measured_rps=0,
    )
    assert rec.memory_gb == 1.1  # 0.8 x 1.25 + 0.1 = 1.1
    assert rec.cpu is None
    assert "1.25" in rec.explanation


def test_cpu_rule_scales_to_target_rate() -> None:
    rec = recommend(
        peak_memory_bytes=GIB,
        load_cpu_cores=0.9,
        p95_cpu_cores=1.0,
        measured_rps=45,
        target_rps=100,
    )
    assert rec.cpu == 2.0  # 0.9 cores / 45 rps = 20 ms per request; x 100 rps
    assert "20.00 ms of CPU per request" in rec.explanation


def test_cpu_rule_without_target_uses_p95_and_floor() -> None:
    busy = recommend(peak_memory_bytes=GIB, load_cpu_cores=1.0, p95_cpu_cores=1.04, measured_rps=50)
    idle = recommend(peak_memory_bytes=GIB, load_cpu_cores=0.0, p95_cpu_cores=0.0, measured_rps=50)
    assert busy.cpu == 1.1
    assert idle.cpu == 0.1


def test_recommendation_tags() -> None:
    assert Recommendation(1.0, 0.5, "x").as_tags() == {
        "requestedCpu": "1",
        "requestedMemoryInGb": "0.5",
    }
    assert Recommendation(None, None, "x").as_tags() == {}


def test_prepare_requests_from_strings_file_and_objects(tmp_path: Path) -> None:
    path = tmp_path / "requests.txt"
    path.write_text('{"data": [1]}\n\n{"data": [2]}\n')
    assert prepare_requests(path) == (b'{"data": [1]}', b'{"data": [2]}')
    assert prepare_requests(str(path)) == (b'{"data": [1]}', b'{"data": [2]}')
    assert prepare_requests('{"data": 1}') == (b'{"data": 1}',)
    assert prepare_requests([{"data": [1]}, [1, 2], np.arange(2)]) == (
        b'{"data": [1]}',
        b'{"data": [1, 2]}',
        b'{"data": [0, 1]}',
    )


def test_prepare_requests_from_dataframe_and_array() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    split = prepare_requests(frame, batch_size=2)
    assert [json.loads(b) for b in split] == [
        {"data": {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}},
        {"data": {"columns": ["a", "b"], "data": [[3, "z"]]}},
    ]
    records = prepare_requests(frame.head(1), orient="records")
    assert json.loads(records[0]) == {"data": [{"a": 1, "b": "x"}]}
    assert prepare_requests(np.array([[1, 2], [3, 4]])) == (
        b'{"data": [[1, 2]]}',
        b'{"data": [[3, 4]]}',
    )


def test_reference_dataset_of_request_strings_is_sent_as_is() -> None:
    body = json.dumps({"data": [[1, 2, 3]]})
    assert prepare_requests(pd.DataFrame({"request": [body, body]})) == (body.encode(),) * 2


@pytest.mark.parametrize(
    ("requests", "kwargs", "match"),
    [
        pytest.param([], {}, "empty", id="empty"),
        pytest.param("no/such/file.txt", {}, "no request file", id="missing-file"),
        pytest.param({"data": 1}, {}, "cannot make requests", id="a-mapping"),
        pytest.param(["{}"], {"batch_size": 0}, "batch_size", id="batch-size"),
        pytest.param(["{}"], {"orient": "index"}, "orient", id="orient"),
        pytest.param([object()], {}, "cannot send request 0", id="unencodable"),
    ],
)
def test_prepare_requests_rejects(requests: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        prepare_requests(requests, **kwargs)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://127.0.0.1:5001/score", ("127.0.0.1", 5001, "/score")),
        ("http://localhost:8080/score?x=1", ("localhost", 8080, "/score?x=1")),
        ("http://[::1]:9/score", ("::1", 9, "/score")),
    ],
)
def test_loopback_uris_are_accepted(uri: str, expected: tuple[str, int, str]) -> None:
    assert check_loopback(uri) == expected


@pytest.mark.parametrize(
    "uri",
    ["http://192.0.2.1/score", "https://127.0.0.1/score", "ftp://127.0.0.1/x", "/score"],
)
def test_other_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidArgumentError, match="profile"):
        check_loopback(uri)


def test_run_profile_refuses_remote_before_sending() -> None:
    with pytest.raises(InvalidArgumentError, match="not a loopback address"):
        run_profile("http://192.0.2.1:80/score", [b"{}"], count=1)


def _result(**changes: Any) -> ProfileResult:
    return dataclasses.replace(ProfileResult.from_dict(example_dict()), **changes)


def test_result_round_trips_and_is_frozen() -> None:
    result = _result()
    again = ProfileResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    assert again != _result(concurrency=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.concurrency = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        result.latencies_s[0] = 1.0


def test_result_validates() -> None:
    with pytest.raises(InvalidArgumentError, match="same length"):
        _result(statuses=[200])
    with pytest.raises(InvalidArgumentError, match="aware"):
        _result(started=datetime(2024, 1, 1))
    with pytest.raises(InvalidArgumentError, match="unknown ProfileResult fields"):
        ProfileResult.from_dict({**example_dict(), "bogus": 1})


def test_get_details_has_the_reference_keys() -> None:
    details = _result().get_details()
    for key in [
        "name",
        "state",
        "requestedCpu",
        "requestedMemoryInGb",
        "requestedQueriesPerSecond",
        "maxUtilizedCpu",
        "maxUtilizedMemoryInGB",
        "totalQueries",
        "successQueries",
        "successRate",
        "averageLatencyInMs",
        "latencyPercentile50InMs",
        "latencyPercentile90InMs",
        "latencyPercentile95InMs",
        "latencyPercentile99InMs",
        "latencyPercentile999InMs",
        "measuredQueriesPerSecond",
        "errors",
    ]:
        assert key in details, key
    assert details["totalQueries"] == 4
    assert details["successQueries"] == 3
    assert details["errors"] == {"500": 1}
    assert details["averageLatencyInMs"] == pytest.approx(20.0)
    assert _result().get_results() == {"cpu": 1.1, "memoryInGB": 0.5}
    json.dumps(details)  # JSON-able


def test_failed_profile_state_and_nan_latencies() -> None:
    result = _result(statuses=[500, 500, -1, -2])
    assert result.state == "Failed"
    assert result.error_counts == {"connection": 1, "timeout": 1, "500": 2}
    assert result.get_details()["latencyPercentile50InMs"] is None
    assert "ProfileResult(" in repr(result)
    with pytest.raises(InvalidArgumentError, match="no successful request"):
        result.replicas(10)


def test_replicas_from_the_measured_latency() -> None:
    assert _result().replicas(100) == replicas_for(100, _result().latency_summary_ms["mean"] / 1000)


def test_count_bound_cycling_and_errors_by_status(start_server: Any) -> None:
    server = start_server()
    bodies = [b'{"data": [1]}', b'{"data": [2]}', b'{"data": [-1]}']
    result = run_profile(
        server.uri,
        bodies,
        count=90,
        concurrency=3,
        pids=[server.pid],
        headers={"Authorization": "Bearer k1"},
    )
    assert result.total == 90
    # The errors are counted by status, not hidden; the success rate says so.
    assert result.error_counts == {"500": 30}
    assert result.success_count == 60
    assert result.success_rate == pytest.approx(2 / 3)
    assert result.get_details()["successRate"] == pytest.approx(2 / 3, abs=1e-6)
    seen = server.seen()
    # Warm-up: one unmeasured request per connection, with the first body.
    assert seen['{"data": [1]}'] == 30 + 3
    assert seen['{"data": [2]}'] == 30
    assert seen['{"data": [-1]}'] == 30
    assert seen["_auth"] == "Bearer k1"
    assert (result.latencies_s > 0).all()
    assert result.requests.shape == (90, 3)


def test_duration_bound(start_server: Any) -> None:
    server = start_server()
    result = run_profile(server.uri, [b'{"data": [1]}'], duration=0.5)
    assert result.total > 0
    assert result.duration_s >= 0.5
    assert result.pids == ()
    assert result.recommendation.cpu is None
    assert result.sample_t_s.size == 0


def test_connection_close_servers_are_followed(start_server: Any) -> None:
    server = start_server(close=True)
    result = run_profile(server.uri, [b'{"data": [1]}'], count=40, concurrency=2)
    assert result.total == 40
    assert result.error_counts == {}


def test_slow_requests_count_as_timeouts(start_server: Any) -> None:
    server = start_server()
    bodies = [b'{"data": [1]}', b'{"data": "slow"}']
    result = run_profile(server.uri, bodies, count=4, timeout=0.5)
    assert result.error_counts == {"timeout": 2}
    assert result.success_count == 2


def test_refused_connections_raise(start_server: Any) -> None:
    server = start_server()
    server.proc.terminate()
    server.proc.wait(timeout=30)
    with pytest.raises(TargetUnavailableError, match="refused every connection"):
        run_profile(server.uri, [b'{"data": [1]}'], count=100)


def test_unknown_pid_is_refused(start_server: Any) -> None:
    server = start_server()
    server.proc.terminate()
    server.proc.wait(timeout=30)
    with pytest.raises(InvalidArgumentError, match=f"PID {server.pid}"):
        run_profile(server.uri, [b"{}"], count=1, pids=[server.pid])


def test_latency_of_a_20ms_request(start_server: Any) -> None:
    # A busy loop on the wall clock: the latency is 20 ms plus the HTTP round trip.
    server = start_server(burn_s=0.02, clock="wall")
    result = run_profile(server.uri, [b'{"data": [1]}'], count=60, concurrency=1)
    assert result.success_count == 60
    assert result.latency_ms(50) == pytest.approx(20.0, rel=0.3)


def test_cpu_at_saturation_is_one_core(start_server: Any) -> None:
    # 20 ms of CPU per request in a process whose Python threads share one GIL: at
    # concurrency 3 the server is saturated and uses at most about one core. How much
    # of a core it gets depends on what else the machine runs, so the checks are the
    # ones that hold under any load: the CPU one request costs, the one-GIL ceiling,
    # and the sampled series agreeing with the totals.
    server = start_server(burn_s=0.02, clock="cpu")
    result = run_profile(
        server.uri, [b'{"data": [1]}'], duration=2.0, concurrency=3, pids=[server.pid]
    )
    assert result.load_cpu_cores is not None
    # The CPU one request costs, from the process's CPU time and the request count.
    assert result.load_cpu_cores / result.success_rps == pytest.approx(0.02, rel=0.3)
    assert 0.0 < result.load_cpu_cores <= 1.3
    window = result.sample_cpu_cores[(result.sample_t_s > 0.2) & (result.sample_t_s < 1.8)]
    assert len(window) >= 5
    assert float(window.mean()) == pytest.approx(result.load_cpu_cores, rel=0.3)
    assert float(window.max()) <= 1.3
    assert result.recommendation.cpu is not None
    assert result.recommendation.cpu >= result.load_cpu_cores
    sized = recommend(
        peak_memory_bytes=result.peak_memory_bytes,
        load_cpu_cores=result.load_cpu_cores,
        p95_cpu_cores=result.p95_cpu_cores,
        measured_rps=result.success_rps,
        target_rps=2 * result.success_rps,
    )
    assert sized.cpu is not None
    assert sized.cpu >= 2 * result.load_cpu_cores


def test_memory_of_a_300mb_process_and_its_children(start_server: Any) -> None:
    # The sampled PID is a parent that only waits; the 300 MB live in its child.
    server = start_server(with_parent=True, ballast_mb=300)
    result = run_profile(server.uri, [b'{"data": [1]}'], count=30, pids=[server.pid])
    assert result.peak_rss_bytes is not None
    assert result.peak_rss_bytes >= 300 * 2**20
    assert result.hwm_bytes is not None
    assert result.hwm_bytes >= 300 * 2**20
    assert result.recommendation.memory_gb is not None
    assert result.recommendation.memory_gb >= 0.5
    assert result.get_details()["maxUtilizedMemoryInGB"] >= 300 / 1024
    assert len(result.sample_rss_bytes) == len(result.sample_t_s) >= 2
    assert result.timeseries.shape[1] == 3


def test_profile_works_inside_a_running_event_loop(start_server: Any) -> None:
    # A Jupyter kernel runs an event loop; the profile must not need the caller's.
    import asyncio

    server = start_server()

    async def inside() -> ProfileResult:
        return run_profile(server.uri, [b'{"data": [1]}'], count=5)

    assert asyncio.run(inside()).total == 5


def test_profiling_imports_no_front_and_no_psutil() -> None:
    code = (
        "import sys, nbdeploy.profiling\n"
        "bad = {'psutil', 'IPython', 'ipywidgets', 'fastapi', 'nbdeploy.notebook'}\n"
        "print(sorted(bad & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_started_is_aware_utc(start_server: Any) -> None:
    server = start_server()
    result = run_profile(server.uri, [b'{"data": [1]}'], count=2)
    assert result.started.tzinfo is not None
    assert result.started.utcoffset() == timezone.utc.utcoffset(None)


def test_cpu_rule_for_a_load_shorter_than_one_sample() -> None:
    rec = recommend(peak_memory_bytes=GIB, load_cpu_cores=0.42, p95_cpu_cores=None, measured_rps=50)
    assert rec.cpu == 0.5
    assert "too short" in rec.explanation
