"""What a service's log says: one line per request with method, path, status and
latency; no status-protocol or uvicorn lifecycle lines; labels by role; tracebacks
from the user's script under the name the user gave it, without nbdeploy's frames."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import nbdeploy
from nbdeploy.core.workspace import Workspace
from nbdeploy.server.logs import LogFormatter, QuietUvicorn
from nbdeploy.targets import shutdown_warm_server

SCORE = """\
def init():
    print("loading the model")


def run(data):
    if data == [0]:
        raise ValueError("zero is not allowed")
    return [x * 2 for x in data]
"""


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Any]:
    ws = Workspace(tmp_path / "ws")
    script = tmp_path / "my_score.py"
    script.write_text(SCORE)
    nbdeploy.register({"a": 1}, "m", sample_input=[1, 2], workspace=ws)
    svc = nbdeploy.deploy("m", "log-svc", score=script, workspace=ws)
    yield svc
    svc.delete()
    shutdown_warm_server(ws)


def _wait_for(svc: Any, text: str) -> str:
    """The log once it holds ``text`` (the access line follows the answer)."""
    import time

    deadline = time.monotonic() + 10
    while True:
        log = str(svc.get_logs())
        if text in log or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


@pytest.mark.integration
def test_service_log_has_request_lines_and_user_tracebacks(service: Any) -> None:
    assert service.run([1, 2]) == [2, 4]
    with pytest.raises(nbdeploy.exceptions.ScoringError):
        service.run([0])
    requests.post(
        service.scoring_uri,
        data=b"not json",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    log = _wait_for(service, "POST /score 400")

    assert re.search(r"INFO +request: POST /score 200 \d+\.\d ms", log), log
    assert re.search(r"INFO +request: POST /score 500 \d+\.\d ms", log), log
    assert re.search(r"INFO +request: POST /score 400 \d+\.\d ms", log), log
    assert "loading the model" in log  # the script's own print
    assert "server: init() finished" in log
    # No internal handshake lines, no uvicorn lifecycle chatter, no misleading label.
    assert "NBDEPLOY-" not in log
    assert "Waiting for application startup" not in log
    assert "uvicorn.error" not in log
    # The traceback points at the user's script, not the bundle copy or nbdeploy.
    assert 'File "my_score.py", line 7, in run' in log
    assert "bundles/" not in log
    assert "nbdeploy/server" not in log


def test_formatter_labels_and_quiet_uvicorn() -> None:
    formatter = LogFormatter()
    record = logging.LogRecord("uvicorn.error", logging.INFO, "x", 1, "hello", None, None)
    assert formatter.format(record).endswith("INFO    uvicorn: hello")
    record = logging.LogRecord("nbdeploy.server", logging.WARNING, "x", 1, "careful", None, None)
    assert formatter.format(record).endswith("WARNING server: careful")
    noise = logging.LogRecord(
        "uvicorn.error", logging.INFO, "x", 1, "Waiting for application startup.", None, None
    )
    assert not QuietUvicorn().filter(noise)
    failure = logging.LogRecord(
        "uvicorn.error", logging.ERROR, "x", 1, "Waiting for application startup.", None, None
    )
    assert QuietUvicorn().filter(failure)


def test_an_error_inside_nbdeploy_keeps_its_frames() -> None:
    """Only the user's frames are shown, unless there are none: then nbdeploy's are the
    story and stay."""
    from nbdeploy.core.refs import ModelRef
    from nbdeploy.exceptions import InvalidArgumentError

    with pytest.raises(InvalidArgumentError) as info:
        ModelRef.parse("")
    exc = info.value
    tb = exc.__traceback__
    exc.__traceback__ = tb.tb_next if tb is not None else None  # as in the server: no test frame
    text = LogFormatter().formatException((type(exc), exc, exc.__traceback__))
    assert "nbdeploy/core/refs.py" in text


@pytest.mark.integration
def test_the_request_line_is_in_the_log_when_the_answer_arrives(service: Any) -> None:
    """No race between a client and the log: %logs right after svc.run shows it."""
    for count in range(1, 21):
        service.run([count])
        lines = re.findall(r"request: POST /score 200", service.get_logs())
        assert len(lines) == count
