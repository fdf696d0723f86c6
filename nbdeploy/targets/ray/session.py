"""The only module of nbdeploy that imports Ray: this process as a Ray driver.

One connection per process (Ray allows one): :func:`connect` joins a cluster, or
keeps the connection it has to the same address; joining another one ends the
first. Everything Serve is asked — start, deploy an application, delete it, how its
replicas are doing — goes through here, in plain dicts and the :class:`~.application.
AppSpec` of :mod:`.application`, so the rest of the target never touches Ray's types.

The driver stays quiet in a notebook: Ray's logs are not streamed to it
(``log_to_driver=False``) and Ray's and Serve's loggers only pass warnings. It
outlives a cluster that stops under it (Ray would end the process a minute later):
the GCS reconnect timeout is raised when it connects, and a connection to a stopped
cluster is reported, not left (see :func:`disconnect`). Private Ray names are
used, each in one function that says why: :func:`_reload_settings`,
:func:`_forget_serve_client` and :func:`_serve_instance_details`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any

from nbdeploy.exceptions import DeploymentError, ServiceExistsError, TargetUnavailableError

from .application import AppSpec, DeploymentSpec

__all__ = [
    "application_details",
    "cluster_nodes",
    "connect",
    "delete_application",
    "deploy_application",
    "disconnect",
    "ensure_serve",
    "resources_available",
]

#: The cluster this process is a driver of, and the address that tells whether it
#: still runs (its GCS; ``None`` for Ray Client, whose driver runs on the cluster).
_ADDRESS: list[str] = []
_PROBE: list[str | None] = []

#: How long (s) a driver of this process waits for a lost cluster's GCS to come back.
#: Ray's default is 60 s, after which Ray ends the whole process: a notebook's kernel
#: would die a minute after the workspace's cluster it had used was stopped (from any
#: process). Read by Ray's core from ``RAY_gcs_rpc_server_reconnect_timeout_s`` when
#: the driver connects (``ray.init`` takes no system settings when it joins a cluster).
GCS_RECONNECT_TIMEOUT_S = 365 * 24 * 3600

#: Attempts at a Ray Client (``ray://``) connection whose server side — a driver the
#: cluster's client server starts for each client ("SpecificServer") — did not start
#: or did not answer in time: on a busy machine it misses Ray's own deadline (30 s,
#: ``RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S`` in the head's environment) now and
#: then, and the next attempt finds it started.
CLIENT_ATTEMPTS = 3
_CLIENT_SERVER_FAILED = ("Starting Ray client server failed", "Proxy failed to Connect to backend")


def _import_ray() -> Any:
    try:
        import ray
        from ray import serve  # noqa: F401 - Serve must be there too
    except ImportError as exc:
        raise TargetUnavailableError(
            f"the Ray target needs Ray Serve, which cannot be imported ({exc})",
            hint='pip install "nbdeploy[ray]"',
        ) from None
    return ray


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """``env`` in this process's environment while Ray reads it (connecting), and
    what was there before put back afterwards: a ``ray start`` or any other child this
    process starts later must not inherit a cluster's token settings (a head started
    so would demand this cluster's token from its own clients)."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _reload_settings() -> None:
    """Make an already imported Ray read its settings from the environment again:
    the authentication mode and token (a second cluster in the same process) and the
    GCS reconnect timeout.

    Ray offers no public call for this (checked against Ray 2.60.0): its own
    ``ray.init`` does the same when it turns token authentication on
    (``ray._private.authentication.authentication_token_setup._enable_token_auth``),
    and its tests reset the token cache the same way. ``tests/targets/
    test_ray_units.py`` fails if these names change.
    """
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _reachable(address: str | None, timeout: float = 3.0) -> bool:
    """Whether something accepts connections at ``host:port`` (``None``: nothing to
    check)."""
    if address is None:
        return True
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _stranded(address: str) -> TargetUnavailableError:
    return TargetUnavailableError(
        f"this process is still a driver of the Ray cluster at {address}, which has "
        "stopped; Ray ends a process that leaves a stopped cluster, so this process "
        "cannot join another one",
        hint="restart the kernel (or this process) to use a Ray cluster again",
    )


def connect(address: str, env: Mapping[str, str] | None = None) -> None:
    """Make this process a driver of the cluster at ``address`` (kept if it already
    is); ``env`` is what the cluster needs in the environment (its token).

    Raises
    ------
    TargetUnavailableError
        The cluster cannot be reached or refuses this driver, or this process is
        still a driver of a cluster that has stopped.
    """
    if _ADDRESS and _ADDRESS[0] == address and _import_ray().is_initialized():
        if _reachable(_PROBE[0]):
            return
        raise _stranded(address)
    if _ADDRESS and not disconnect(_ADDRESS[0]):
        raise _stranded(_ADDRESS[0])
    settings = {
        "RAY_gcs_rpc_server_reconnect_timeout_s": str(GCS_RECONNECT_TIMEOUT_S),
        **(env or {}),
    }
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray's C++ core writes its warnings to the process's stderr, which a notebook
    # shows under the cell (e.g. that it found no route to 8.8.8.8): errors only.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    # Around the import too: Ray reads its settings from the environment when
    # ray._raylet is first loaded, and again in _reload_settings.
    with _environment(settings):
        ray = _import_ray()
        _reload_settings()
        for name in ("ray", "ray.serve"):
            logging.getLogger(name).setLevel(logging.WARNING)
        _init(ray, address)
    probe = None if address.startswith("ray://") else str(ray.get_runtime_context().gcs_address)
    _ADDRESS[:] = [address]
    _PROBE[:] = [probe]


def _init(ray: Any, address: str) -> None:
    """``ray.init`` for this driver; a Ray Client connection is tried
    :data:`CLIENT_ATTEMPTS` times when the cluster's side of it did not start.

    Raises
    ------
    TargetUnavailableError
        It failed (Ray is then left as if it had never been called).
    """
    attempts = CLIENT_ATTEMPTS if address.startswith("ray://") else 1
    for attempt in range(1, attempts + 1):
        try:
            ray.init(
                address=address,
                log_to_driver=False,
                logging_level=logging.WARNING,
                configure_logging=False,
            )
            return
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}".strip()
            _forget_failed_init(ray)
        server_side = any(failed in text for failed in _CLIENT_SERVER_FAILED)
        if attempt < attempts and server_side:
            time.sleep(attempt)
            continue
        hint = (
            "the cluster's client server could not start a driver for this client in "
            "time; see ray_client_server*.err in the head's session logs (a busy head "
            "may need a longer RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S)"
            if server_side
            else "start the cluster or check the address; a cluster with token "
            "authentication needs RAY_AUTH_MODE=token and its token "
            "(RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN) in this process's environment"
        )
        raise TargetUnavailableError(
            f"cannot connect to the Ray cluster at {address}: {_reason(text)}", hint=hint
        )


def _reason(text: str) -> str:
    """The line of a failed ``ray.init``'s message that says why: its first, or for
    a Ray Client failure whose first line only introduces the server's traceback
    ("Initialization failure from server:"), that traceback's last line.

    Examples
    --------
    >>> _reason("ConnectionError: ray client connection timeout")
    'ConnectionError: ray client connection timeout'
    >>> _reason("ConnectionAbortedError: Initialization failure from server:\\n"
    ...         "Traceback (most recent call last):\\n  ...\\nRuntimeError: Proxy failed")
    'ConnectionAbortedError: Initialization failure from server: RuntimeError: Proxy failed'
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else text
    if first.endswith(":") and len(lines) > 1:
        first = f"{first} {lines[-1]}"
    return first[:300]


def _forget_failed_init(ray: Any) -> None:
    """Undo what a failed ``ray.init`` left: a Ray Client one stays half set up (in
    client mode), and the next ``ray.init`` of the process failed with a bare
    ``AssertionError``."""
    try:
        ray.shutdown()
    except Exception as exc:  # the failed connection's own error is the one raised
        logging.getLogger(__name__).warning("Ray did not shut down cleanly: %s", exc)
    _forget_serve_client()


def disconnect(address: str) -> bool:
    """End this process's connection to the cluster at ``address``, if it has one
    and the cluster still runs; whether it left one. Before that cluster stops: a Ray
    driver cannot leave a cluster that is gone (Ray ends the process when it tries),
    so a connection to a stopped cluster is kept, and :func:`connect` says so."""
    if not _ADDRESS or _ADDRESS[0] != address:
        return False
    ray = _import_ray()
    if ray.is_initialized() and not _reachable(_PROBE[0]):
        return False
    ray.shutdown()
    _forget_serve_client()
    _ADDRESS.clear()
    _PROBE.clear()
    return True


def _forget_serve_client() -> None:
    """Drop Serve's handle on the controller of the cluster just left.

    ``ray.shutdown()`` does not, and Serve's check that its cached handle belongs to
    the current connection does not see through Ray Client: the next cluster, joined
    by ``ray://``, was asked through the old one's handle (and failed). No public call
    resets it without shutting Serve down on the cluster (checked against Ray
    2.60.0); ``tests/targets/test_ray_units.py`` fails if the name changes.
    """
    from ray.serve.context import _set_global_client

    _set_global_client(None)  # type: ignore[no-untyped-call]


def _serve_instance_details() -> dict[str, Any]:
    """Serve's ``ServeInstanceDetails`` (a public schema: what the dashboard's REST
    API ``GET /api/serve/applications/`` serves) as a dict, or ``{}`` when Serve does
    not run on the cluster.

    Ray offers no public Python call for it (checked against Ray 2.60.0):
    ``serve.status()`` has neither the replicas (node, PID, actor name, state) nor
    the HTTP options, and the embedded cluster runs no dashboard. So this asks the
    Serve controller through Serve's private client, here and nowhere else;
    ``tests/targets/test_ray_units.py`` fails if these names change.
    """
    from ray.serve.context import _get_global_client

    client = _get_global_client(raise_if_no_controller_running=False)
    if client is None:
        return {}
    details: dict[str, Any] = client.get_serve_details()
    return details


def ensure_serve(host: str, port: int, proxy_location: str) -> tuple[str, int]:
    """Start Serve on the cluster if it does not run; where its HTTP proxy listens
    (a running Serve keeps its own address)."""
    from ray import serve

    details = _serve_instance_details()
    if not details.get("http_options"):
        serve.start(
            http_options={"host": host, "port": port},
            proxy_location=proxy_location,
        )
        details = _serve_instance_details()
    options = details.get("http_options") or {}
    return str(options.get("host") or host), int(options.get("port") or port)


def serve_address() -> tuple[str, int] | None:
    """Where the running Serve's HTTP proxy listens (``None``: Serve does not run)."""
    options = _serve_instance_details().get("http_options") or {}
    if not options:
        return None
    return str(options.get("host")), int(options.get("port") or 0)


def application_details(name: str) -> dict[str, Any] | None:
    """Serve's details of application ``name`` (status, deployments, replicas with
    node, PID and state); ``None`` when there is no such application."""
    app = (_serve_instance_details().get("applications") or {}).get(name)
    return dict(app) if app is not None else None


def application_names() -> list[str]:
    """The applications Serve runs."""
    return sorted((_serve_instance_details().get("applications") or {}).keys())


def _deployment(spec: DeploymentSpec) -> Any:
    from ray import serve

    from . import replica

    if spec.kind == "ingress":
        cls: Any = serve.ingress()(replica.ScoringReplica)
    elif spec.kind == "backend":
        cls = replica.ScoringBackend
    else:
        cls = serve.ingress()(replica.TrafficRouter)
    deployment: Any = serve.deployment(name=spec.name)(cls)
    options = dict(spec.options)
    try:
        # Serve restarts replicas only when a deployment's version changes; without one
        # every deploy would restart all of them (scaling, new keys, new weights).
        return deployment.options(version=spec.version, _internal=True, **options)
    except TypeError:  # a Serve without explicit versions: replicas restart each time
        return deployment.options(**options)


def _bound(app: AppSpec) -> Any:
    by_name = {d.name: d for d in app.deployments}
    ingress = app.ingress
    if ingress.kind != "router":
        return _deployment(ingress).bind(**ingress.init_kwargs)
    from .application import version_name

    kwargs = dict(ingress.init_kwargs)
    versions = {
        v: _deployment(by_name[version_name(v)]).bind(**by_name[version_name(v)].init_kwargs)
        for v in kwargs.pop("versions")
    }
    return _deployment(ingress).bind(versions=versions, **kwargs)


def deploy_application(app: AppSpec) -> None:
    """Hand ``app`` to Serve (without waiting for it to be running).

    Raises
    ------
    ServiceExistsError
        Another application holds the route prefix.
    DeploymentError
        Serve refused the application.
    """
    from ray import serve

    try:
        serve.run_many(
            [serve.RunTarget(target=_bound(app), name=app.name, route_prefix=app.route_prefix)],
            wait_for_ingress_deployment_creation=False,
            wait_for_applications_running=False,
        )
    except Exception as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if "prefix" in message.lower() and ("used" in message or "taken" in message):
            raise ServiceExistsError(
                f"the route prefix {app.route_prefix} is taken on this cluster: {message}",
                hint="deploy with another route_prefix=...",
            ) from None
        raise DeploymentError(
            f"Ray Serve refused application {app.name!r}: {message}",
            hint="see the message above; the cluster's Serve controller log has more",
        ) from None


def _kill_unstarted(app: Mapping[str, Any]) -> None:
    """End the replicas of ``app`` that never started (waiting for a node, or failed
    in their constructor): they have nothing to drain, and Serve would otherwise wait
    its whole graceful-shutdown timeout for each before removing the application."""
    ray = _import_ray()
    for deployment in (app.get("deployments") or {}).values():
        for replica in deployment.get("replicas") or ():
            state = str(replica.get("state") or "").rsplit(".", 1)[-1].upper()
            name = replica.get("actor_name")
            if state == "RUNNING" or not name:
                continue
            try:
                ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
            except ValueError:  # gone meanwhile
                continue


def delete_application(name: str, timeout: float = 120.0) -> None:
    """Delete application ``name`` and wait until Serve has removed it (nothing
    happens if there is none).

    Raises
    ------
    DeploymentError
        It is still there after ``timeout`` seconds.
    """
    import time

    from ray import serve

    app = application_details(name)
    if app is None:
        return
    _kill_unstarted(app)
    serve.delete(name, _blocking=False)
    deadline = time.monotonic() + timeout
    while name in application_names():
        if time.monotonic() > deadline:
            raise DeploymentError(
                f"Ray Serve has not removed application {name!r} after {timeout:g} s",
                hint="delete the service again; the Serve controller's log says why",
            )
        time.sleep(0.2)


def cluster_nodes() -> list[dict[str, Any]]:
    """The alive nodes: ``{"id", "ip", "resources" (total), "logs_dir"}`` (the logs
    folder when it is on this machine, else ``None``)."""
    ray = _import_ray()
    nodes = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        socket_path = str(node.get("ObjectStoreSocketName") or "")
        logs = os.path.join(os.path.dirname(os.path.dirname(socket_path)), "logs")
        nodes.append(
            {
                "id": node.get("NodeID"),
                "ip": node.get("NodeManagerAddress"),
                "resources": dict(node.get("Resources") or {}),
                "logs_dir": logs if socket_path and os.path.isdir(logs) else None,
            }
        )
    return nodes


def resources_available() -> dict[str, float]:
    """The cluster's free resources, all nodes together."""
    ray = _import_ray()
    return {str(k): float(v) for k, v in ray.available_resources().items()}
