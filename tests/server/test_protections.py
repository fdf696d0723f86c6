"""Issue 14 reproductions for the server's request pipeline.

A web page must not drive a local service (DNS rebinding through the ``Host`` header,
``text/plain`` bodies that need no CORS preflight); a slow ``run()`` must not stall the
health check; a replica refuses work it cannot take (503) and stops waiting for a
``run()`` that takes too long (504), with messages that say which setting to change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from nbdeploy.server import ServerOptions

ECHO_SCORE = "def init():\n    pass\n\ndef run(data):\n    return data\n"

SLOW_SCORE = """
import threading
import time

release = threading.Event()

def init():
    pass

def run(data):
    if data == "wait":
        release.wait(30)
    elif isinstance(data, (int, float)):
        time.sleep(data)
    return {"thread": threading.current_thread().name}
"""


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ],
)
def test_bodies_a_page_can_send_without_preflight_are_refused(
    make_bundle: Callable[..., Path], serve_app: Callable[..., TestClient], content_type: str | None
) -> None:
    client = serve_app(make_bundle(ECHO_SCORE))
    headers = {} if content_type is None else {"Content-Type": content_type}
    r = client.post("/score", content=b'{"data": [1, 2]}', headers=headers)
    assert r.status_code == 415
    assert "Content-Type: application/json" in r.json()["message"]


@pytest.mark.parametrize("content_type", ["application/json", "application/vnd.api+json"])
def test_json_bodies_are_scored(
    make_bundle: Callable[..., Path], serve_app: Callable[..., TestClient], content_type: str
) -> None:
    client = serve_app(make_bundle(ECHO_SCORE))
    r = client.post("/score", content=b'{"data": [1, 2]}', headers={"Content-Type": content_type})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil"]
)
@pytest.mark.parametrize("path", ["/", "/score", "/swagger.json", "/docs", "/nope"])
def test_a_rebound_domain_is_refused(
    make_bundle: Callable[..., Path], serve_app: Callable[..., TestClient], host: str, path: str
) -> None:
    client = serve_app(make_bundle(ECHO_SCORE))
    r = client.request(
        "POST" if path == "/score" else "GET",
        path,
        json={"data": [1]},
        headers={"Host": host},
    )
    assert r.status_code == 403
    assert "does not answer requests for host" in r.json()["message"]


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:5001", "127.0.0.1:80", "[::1]:5001", "app.localhost"]
)
def test_loopback_names_are_answered(
    make_bundle: Callable[..., Path], serve_app: Callable[..., TestClient], host: str
) -> None:
    client = serve_app(make_bundle(ECHO_SCORE))
    assert client.get("/", headers={"Host": host}).status_code == 200


def test_allowed_hosts_extend_the_list(
    make_bundle: Callable[..., Path], serve_app: Callable[..., TestClient]
) -> None:
    settings = ServerOptions(allowed_hosts=("model.internal",))
    client = serve_app(make_bundle(ECHO_SCORE), settings)
    assert client.get("/", headers={"Host": "model.internal:443"}).status_code == 200
    assert client.get("/", headers={"Host": "localhost"}).status_code == 403
    anyone = serve_app(make_bundle(ECHO_SCORE), ServerOptions(allowed_hosts=("*",)))
    assert anyone.get("/", headers={"Host": "whatever"}).status_code == 200


def test_a_busy_replica_answers_503_after_the_queue_wait(
    make_bundle: Callable[..., Path], serve_app: Callable[..., TestClient]
) -> None:
    settings = ServerOptions(max_request_wait_time=200)
    client = serve_app(make_bundle(SLOW_SCORE), settings)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(client.post, "/score", json={"data": "wait"})
        try:
            deadline = time.monotonic() + 30
            busy = client.post("/score", json={"data": 0})
            while busy.status_code == 200 and time.monotonic() < deadline:
                busy = client.post("/score", json={"data": 0})  # the held one not started yet
            assert busy.status_code == 503
            assert "max_request_wait_time" in busy.json()["message"]
            assert client.get("/").status_code == 200  # health answers meanwhile
        finally:
            _release(client)
        assert held.result(timeout=30).status_code == 200


def _release(client: TestClient) -> None:
    """Let the held run() return (the scoring script's own Event)."""
    import sys

    for module in list(sys.modules.values()):
        release = getattr(module, "release", None)
        if isinstance(release, threading.Event):
            release.set()


def test_a_slow_run_answers_504_and_keeps_its_slot(
    make_bundle: Callable[..., Path], serve_app: Callable[..., TestClient]
) -> None:
    settings = ServerOptions(scoring_timeout_ms=300, max_request_wait_time=0)
    client = serve_app(make_bundle(SLOW_SCORE), settings)
    try:
        slow = client.post("/score", json={"data": "wait"})
        assert slow.status_code == 504
        assert "scoring_timeout_ms" in slow.json()["message"]
        # run() still works in its thread: the slot is taken, the next one is refused.
        assert client.post("/score", json={"data": 0}).status_code == 503
    finally:
        _release(client)
    deadline = time.monotonic() + 30
    while client.post("/score", json={"data": 0}).status_code != 200:
        assert time.monotonic() < deadline, "the slot never came back"
        time.sleep(0.01)


def test_concurrent_requests_use_several_scoring_threads(
    make_bundle: Callable[..., Path], serve_app: Callable[..., TestClient]
) -> None:
    settings = ServerOptions(replica_max_concurrent_requests=3)
    client = serve_app(make_bundle(SLOW_SCORE), settings)
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: client.post("/score", json={"data": 0.2}), range(6)))
    assert all(a.status_code == 200 for a in answers)
    names = {a.json()["thread"] for a in answers}
    assert names <= {"nbdeploy-score-0", "nbdeploy-score-1", "nbdeploy-score-2"}
    assert len(names) > 1


@pytest.mark.parametrize(
    "sample",
    [
        pytest.param(lambda: np.zeros((2, 3)), id="ndarray"),
        pytest.param(lambda: pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]}), id="dataframe"),
    ],
)
def test_an_empty_batch_is_422_not_a_500_from_run(
    make_bundle: Callable[..., Path], serve_app: Callable[..., TestClient], sample: Any
) -> None:
    # run() would raise on zero rows (as model.predict does): it is never called.
    script = "def init():\n    pass\n\ndef run(data):\n    assert len(data) > 0\n    return 1\n"
    client = serve_app(make_bundle(script, input_sample=sample()))
    r = client.post("/score", json={"data": []})
    assert r.status_code == 422
    assert "no rows" in r.json()["message"]
