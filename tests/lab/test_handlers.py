"""The ``/nbdeploy/api/...`` routes, on an in-process Jupyter server (pytest-jupyter).

The workspace is real: models go through the core registry, services are either
records put in the store or real local services (a server process on 127.0.0.1).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse
from traitlets.config import Config, Configurable

from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.core.workspace import Workspace
from nbdeploy.lab import (
    _jupyter_labextension_paths,
    _jupyter_server_extension_points,
    workspace_home,
)

Fetch = Callable[..., Awaitable[HTTPResponse]]

API = ("nbdeploy", "api")


def body(response: HTTPResponse) -> Any:
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


@pytest.fixture
def ws(lab_home: Path) -> Workspace:
    return Workspace(lab_home)


# -- extension wiring -------------------------------------------------------------------


def test_extension_points_name_the_lab_module() -> None:
    assert _jupyter_server_extension_points() == [{"module": "nbdeploy.lab"}]
    assert _jupyter_labextension_paths() == [{"src": "labextension", "dest": "nbdeploy"}]


def test_entry_points_import_no_jupyter() -> None:
    # nbdeploy/__init__.py re-exports them: `import nbdeploy` must not pull these in.
    code = (
        "import sys, nbdeploy; before = set(sys.modules); import nbdeploy.lab; "
        "print(sorted(m for m in set(sys.modules) - before "
        "if m.split('.')[0] in ('traitlets', 'tornado', 'jupyter_server')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_home_trait_wins_over_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBDEPLOY_HOME", str(tmp_path / "from-env"))
    parent = Configurable(config=Config({"NbdeployLab": {"home": str(tmp_path / "trait")}}))
    assert workspace_home(parent) == tmp_path / "trait"


def test_home_defaults_to_the_kernel_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBDEPLOY_HOME", str(tmp_path / "from-env"))
    assert workspace_home(Configurable(config=Config())) == tmp_path / "from-env"


# -- reading the workspace -----------------------------------------------------------------


async def test_empty_workspace(jp_fetch: Fetch, lab_home: Path) -> None:
    models = body(await jp_fetch(*API, "models"))
    services = body(await jp_fetch(*API, "services"))
    assert models == {"workspace": str(lab_home), "source": "server", "models": []}
    assert services == {"workspace": str(lab_home), "source": "server", "services": []}


async def test_models_show_latest_version_framework_and_tags(
    jp_fetch: Fetch, ws: Workspace
) -> None:
    ws.registry.register({"w": 1}, "doubler", tags={"stage": "dev"})
    ws.registry.register({"w": 2}, "doubler", tags={"stage": "prod"}, description="second")
    ws.registry.register([1, 2], "another")

    models = body(await jp_fetch(*API, "models"))["models"]

    assert [m["name"] for m in models] == ["another", "doubler"]
    doubler = models[1]
    assert doubler["latest_version"] == 2
    assert doubler["versions"] == [1, 2]
    assert doubler["framework"] == "python"
    assert doubler["tags"] == {"stage": "prod"}
    assert doubler["description"] == "second"
    assert doubler["created"].endswith("+00:00")


async def test_recorded_service_is_listed_with_its_uris(jp_fetch: Fetch, ws: Workspace) -> None:
    ws.services.put(
        ServiceRecord(
            "stored",
            "local",
            ServiceState.HEALTHY,
            scoring_uri="http://127.0.0.1:5999/score",
            swagger_uri="http://127.0.0.1:5999/swagger.json",
        )
    )
    services = body(await jp_fetch(*API, "services", params={"refresh": "0"}))["services"]
    assert len(services) == 1
    service = services[0]
    assert service["name"] == "stored"
    assert service["target"] == "local"
    assert service["state"] == "Healthy"
    assert service["scoring_uri"] == "http://127.0.0.1:5999/score"
    assert service["docs_uri"] == "http://127.0.0.1:5999/docs"
    assert service["probe_error"] is None

    detail = body(await jp_fetch(*API, "services", "stored", params={"refresh": "0"}))
    assert detail == service


async def test_unreachable_target_keeps_the_recorded_state(jp_fetch: Fetch, ws: Workspace) -> None:
    ws.services.put(ServiceRecord("remote", "no-such-target", ServiceState.HEALTHY))
    services = body(await jp_fetch(*API, "services"))["services"]
    assert [s["state"] for s in services] == ["Healthy"]
    assert "no-such-target" in services[0]["probe_error"]


# -- the deployment targets ----------------------------------------------------------------


async def test_targets_list_every_target_local_first(jp_fetch: Fetch) -> None:
    listed = body(await jp_fetch(*API, "targets"))
    assert listed["default"] == "local"
    names = [t["name"] for t in listed["targets"]]
    assert names[:4] == ["local", "docker", "kubernetes", "ray"]
    local = listed["targets"][0]
    assert local == {
        "name": "local",
        "usable": True,
        "description": "a process on this machine",
        "reason": None,
    }
    for target in listed["targets"]:
        assert set(target) == {"name", "usable", "description", "reason"}
        assert (target["reason"] is None) == target["usable"], target


async def test_unusable_targets_say_why_and_how(
    jp_fetch: Fetch, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Ray not importable (what `import ray` sees when it is not installed), no Docker
    # engine at DOCKER_HOST, no kubeconfig.
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    targets = {t["name"]: t for t in body(await jp_fetch(*API, "targets"))["targets"]}

    assert targets["local"]["usable"] is True
    assert targets["ray"]["usable"] is False
    assert targets["ray"]["reason"] == 'Ray is not installed: pip install "nbdeploy[ray]"'
    assert targets["docker"]["usable"] is False
    assert f"no Docker engine socket at {tmp_path}/no-engine.sock" in targets["docker"]["reason"]
    assert "DOCKER_HOST" in targets["docker"]["reason"]
    assert targets["kubernetes"]["usable"] is False
    kubernetes = targets["kubernetes"]["reason"]
    assert f"no Kubernetes configuration at {tmp_path}/no-kubeconfig" in kubernetes


# -- errors --------------------------------------------------------------------------------


async def test_routes_need_authentication(jp_fetch: Fetch) -> None:
    for path, method in [
        ("models", "GET"),
        ("services", "GET"),
        ("targets", "GET"),
        ("services/x/logs", "GET"),
        ("services/x", "DELETE"),
    ]:
        response = await jp_fetch(
            *API, path, method=method, headers={"Authorization": ""}, raise_error=False
        )
        assert response.code == 403, path


@pytest.mark.parametrize(
    ("method", "parts"),
    [
        ("GET", ("services", "nope")),
        ("GET", ("services", "nope", "logs")),
        ("DELETE", ("services", "nope")),
    ],
)
async def test_unknown_service_is_404(jp_fetch: Fetch, method: str, parts: tuple[str, ...]) -> None:
    response = await jp_fetch(*API, *parts, method=method, raise_error=False)
    assert response.code == 404
    assert "'nope'" in body(response)["message"]


@pytest.mark.parametrize("tail", ["abc", "0", "-3", "100001"])
async def test_bad_tail_is_400(jp_fetch: Fetch, ws: Workspace, tail: str) -> None:
    ws.services.put(ServiceRecord("stored", "local", ServiceState.HEALTHY))
    response = await jp_fetch(
        *API, "services", "stored", "logs", params={"tail": tail}, raise_error=False
    )
    assert response.code == 400
    assert f"tail={tail!r}" in body(response)["message"]


# -- a real local service ------------------------------------------------------------------

SCORE = """
def init():
    global factor
    factor = 2


def run(data):
    return [x * factor for x in data]
"""


@pytest.fixture
def live_service(ws: Workspace, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A real local service ``doubler-svc`` (a plain server process, no warm start)."""
    from nbdeploy.api import delete_service, deploy, register
    from nbdeploy.sdk.webservice import LocalWebservice
    from nbdeploy.targets import shutdown_warm_server

    score = tmp_path / "score.py"
    score.write_text(textwrap.dedent(SCORE), encoding="utf-8")
    register({"factor": 2}, "doubler", sample_input=[1, 2, 3], workspace=ws)
    try:
        svc = deploy(
            "doubler",
            "doubler-svc",
            score=score,
            config=LocalWebservice.deploy_configuration(warm_start=False),
            workspace=ws,
        )
        yield {"name": svc.name, "scoring_uri": svc.scoring_uri}
    finally:
        delete_service("doubler-svc", workspace=ws)
        shutdown_warm_server(ws)


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


@pytest.mark.integration
async def test_live_service_state_logs_and_delete(
    jp_fetch: Fetch, live_service: dict[str, Any]
) -> None:
    services = body(await jp_fetch(*API, "services"))["services"]
    assert [(s["name"], s["state"]) for s in services] == [("doubler-svc", "Healthy")]
    service = services[0]
    assert service["scoring_uri"] == live_service["scoring_uri"]
    assert service["models"] == ["doubler:1"]
    assert _status(service["docs_uri"]) == 200

    logs = body(await jp_fetch(*API, "services", "doubler-svc", "logs", params={"tail": "50"}))
    assert logs["name"] == "doubler-svc"
    assert logs["tail"] == 50
    assert 0 < len(logs["logs"].splitlines()) <= 50
    assert "init()" in logs["logs"]

    deleted = body(await jp_fetch(*API, "services", "doubler-svc", method="DELETE"))
    assert deleted == {"name": "doubler-svc", "deleted": True}
    assert body(await jp_fetch(*API, "services"))["services"] == []
    assert _status(service["scoring_uri"].rsplit("/", 1)[0] + "/") is None
    again = await jp_fetch(*API, "services", "doubler-svc", method="DELETE", raise_error=False)
    assert again.code == 404


# -- the workspace of the notebook's kernel ------------------------------------------------


async def test_kernel_param_reads_the_workspace_that_kernel_noted(
    jp_fetch: Fetch, jp_serverapp: Any, ws: Workspace, tmp_path: Path
) -> None:
    """A notebook whose kernel uses another workspace (the tutorials' temporary one)
    sees that one in the panel, and Delete acts there — not on a same-named service
    of the server's workspace."""
    from nbdeploy.lab.kernels import note_workspace

    other = Workspace(tmp_path / "notebook-ws")
    for store in (ws, other):
        store.services.put(ServiceRecord("same-name", "local", ServiceState.FAILED))
    other.registry.register([1, 2], "only-in-notebook-ws")

    manager = jp_serverapp.kernel_manager
    kernel_id = await manager.start_kernel()
    try:
        connection = manager.get_kernel(kernel_id).connection_file
        note_workspace(connection, other.path)  # what %load_ext nbdeploy does in the kernel
        params = {"kernel": kernel_id, "refresh": "0"}
        models = body(await jp_fetch(*API, "models", params=params))
        assert models["workspace"] == str(other.path)
        assert models["source"] == "kernel"
        assert [m["name"] for m in models["models"]] == ["only-in-notebook-ws"]

        await jp_fetch(*API, "services", "same-name", method="DELETE", params=params)
        assert [r.name for r in other.services.list()] == []
        assert [r.name for r in ws.services.list()] == ["same-name"]  # untouched

        # Without the parameter (or with a kernel the server does not run): the server's.
        plain = body(await jp_fetch(*API, "models"))
        assert (plain["workspace"], plain["source"]) == (str(ws.path), "server")
        unknown = body(await jp_fetch(*API, "models", params={"kernel": "not-a-kernel"}))
        assert unknown["source"] == "server"
    finally:
        await manager.shutdown_kernel(kernel_id, now=True)


# -- the proxy -----------------------------------------------------------------------------


@pytest.mark.integration
async def test_proxy_forwards_to_the_service_only(
    jp_fetch: Fetch, live_service: dict[str, Any]
) -> None:
    """Links work when JupyterLab is not on the service's host: the Jupyter server
    forwards /nbdeploy/proxy/<port>/... to the service, and to nothing else."""
    from tests.helpers import free_port

    port = live_service["scoring_uri"].split(":")[2].split("/")[0]
    docs = await jp_fetch("nbdeploy", "proxy", port, "docs")
    assert docs.code == 200
    assert b"docs/static/swagger-ui-bundle.js" in docs.body
    asset = await jp_fetch("nbdeploy", "proxy", port, "docs", "static", "swagger-ui.css")
    assert asset.headers["Content-Type"].startswith("text/css")
    document = json.loads((await jp_fetch("nbdeploy", "proxy", port, "openapi.json")).body)
    assert "/score" in document["paths"]

    scored = await jp_fetch(
        "nbdeploy",
        "proxy",
        port,
        "score",
        method="POST",
        body=json.dumps({"data": [1, 2]}),
        headers={"Content-Type": "application/json"},
    )
    assert json.loads(scored.body) == [2, 4]
    bad = await jp_fetch(
        "nbdeploy",
        "proxy",
        port,
        "score",
        method="POST",
        body="not json",
        headers={"Content-Type": "application/json"},
        raise_error=False,
    )
    assert bad.code == 400  # the service's own answer, passed through
    assert json.loads(bad.body)["status_code"] == 400

    # Not an open proxy: a port no service uses is refused.
    other = await jp_fetch("nbdeploy", "proxy", str(free_port()), "docs", raise_error=False)
    assert other.code == 404
    assert b"no nbdeploy service listens on port" in other.body
