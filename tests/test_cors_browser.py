"""A real cross-origin ``fetch`` from headless Chromium to a local service with CORS and
key auth: the browser's preflight (it asks for ``Authorization``) is answered, the
prediction and a 401 are readable by the page, and a page from another origin is
refused (its ``fetch`` rejects with ``TypeError``).

Needs Debian's ``/usr/bin/chromium`` (or ``$CHROMIUM_PATH``) and Python Playwright; the
test fails, it does not skip, when they are missing.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbdeploy
from nbdeploy.sdk.webservice import Webservice
from nbdeploy.sdk.workspace import get_workspace
from tests.helpers import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.ui, pytest.mark.integration]


SCORE = """
def init():
    pass


def run(data):
    return [2 * x for x in data]
"""

PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>client</title></head>
<body><p>a page on another origin than the service</p></body></html>
"""

FETCH = """
async ({uri, key}) => {
  try {
    const response = await fetch(uri, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Authorization": "Bearer " + key},
      body: JSON.stringify({data: [1, 2, 3]}),
    });
    return {
      status: response.status,
      body: await response.json(),
      requestId: response.headers.get("x-request-id"),
    };
  } catch (error) {
    return {error: error.name, message: String(error.message)};
  }
}
"""


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@pytest.fixture
def page_origin() -> Iterator[Any]:
    """``origin()``: a new stdlib HTTP server on 127.0.0.1 serving :data:`PAGE`; its URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def origin() -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield origin
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: this test needs it. Install it with "
            "`apt-get install -y chromium` (or set CHROMIUM_PATH)",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "Python Playwright is missing: `.venv/bin/pip install playwright` (the system "
            "Chromium is used; no Playwright browser download)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def service(tmp_path: Path, page_origin: Any) -> Iterator[tuple[Webservice, str]]:
    """A key-auth local service allowing one page origin; (service, that origin)."""
    from nbdeploy.targets import shutdown_warm_server

    ws = get_workspace(tmp_path / "ws")
    (tmp_path / "score.py").write_text(SCORE, encoding="utf-8")
    nbdeploy.register({"factor": 2}, "doubler", workspace=ws)
    allowed = page_origin()
    svc = nbdeploy.deploy(
        "doubler",
        name="cors",
        score=str(tmp_path / "score.py"),
        auth="key",
        cors={"allow_origins": [allowed]},
        workspace=ws,
    )
    try:
        yield svc, allowed
    finally:
        svc.delete()
        shutdown_warm_server(ws)


def _fetch_from(browser: Any, origin: str, uri: str, key: str) -> dict[str, Any]:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(origin + "/")
        result: dict[str, Any] = page.evaluate(FETCH, {"uri": uri, "key": key})
        return result
    finally:
        context.close()


def test_cross_origin_fetch_with_a_key(
    browser: Any, service: tuple[Webservice, str], page_origin: Any
) -> None:
    svc, allowed = service
    assert svc.scoring_uri
    key = svc.get_keys()[0]

    result = _fetch_from(browser, allowed, svc.scoring_uri, key)
    assert result.get("error") is None, result
    assert result["status"] == 200
    assert result["body"] == [2, 4, 6]
    assert result["requestId"]  # exposed to the page

    wrong = _fetch_from(browser, allowed, svc.scoring_uri, "not-a-key")
    assert wrong["status"] == 401, wrong
    assert wrong["body"]["message"].startswith("invalid key")  # readable: CORS on the 401

    refused = _fetch_from(browser, page_origin(), svc.scoring_uri, key)
    assert refused.get("error") == "TypeError", refused
