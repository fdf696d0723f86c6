"""The notebook-short API: ``register``, ``deploy``, ``models``, ``services``,
``profile``, ``package`` …

Each function is one call into the workflows (:mod:`nbdeploy.workflows`) or the SDK
(:mod:`nbdeploy.sdk`); the magics, the CLI and the lab extension are thin fronts over
these.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdeploy.core.bundle import InferenceConfig
from nbdeploy.core.environment import Environment
from nbdeploy.core.refs import ModelRef
from nbdeploy.core.scoring import InputMode
from nbdeploy.exceptions import InvalidArgumentError, ServiceNotFoundError
from nbdeploy.profiling import prepare_requests
from nbdeploy.sdk.client import encode_request
from nbdeploy.sdk.model import Model
from nbdeploy.sdk.profile import ProfileReport
from nbdeploy.sdk.webservice import LocalWebservice, Webservice
from nbdeploy.sdk.workspace import get_workspace
from nbdeploy.workflows.availability import TargetAvailability
from nbdeploy.workflows.availability import target_availability as _target_availability
from nbdeploy.workflows.build import as_environment
from nbdeploy.workflows.deploy import deploy_models
from nbdeploy.workflows.package import Package, package_models
from nbdeploy.workflows.profile import profile_models, profile_service
from nbdeploy.workflows.profile import store_tags as _store_tags

if TYPE_CHECKING:
    from nbdeploy.core.workspace import Workspace

__all__ = [
    "delete_service",
    "deploy",
    "get_model",
    "get_service",
    "models",
    "package",
    "profile",
    "ray_cluster_status",
    "register",
    "serve_bundle",
    "services",
    "stop_ray_cluster",
    "target_availability",
    "target_names",
]


def register(
    model: Any,
    name: str,
    *,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    properties: Mapping[str, str] | None = None,
    sample_input: Any = None,
    sample_output: Any = None,
    resources: Mapping[str, float] | None = None,
    framework: str | None = None,
    workspace: Workspace | str | os.PathLike[str] | None = None,
) -> Model:
    """Register ``model`` — an object in the kernel, a file or a folder — as the next
    version of ``name``.

    ``sample_input`` (a DataFrame, ndarray or plain data) gives the model its schema,
    so a service validates requests and documents itself.

    Examples
    --------
    >>> m = nbdeploy.register(ridge, "diabetes", sample_input=X.head())  # doctest: +SKIP
    >>> m.version                                                       # doctest: +SKIP
    1
    """
    ws = get_workspace(workspace)
    return Model.register(
        ws,
        model=model,
        model_name=name,
        tags=tags,
        properties=properties,
        description=description,
        sample_input=sample_input,
        sample_output=sample_output,
        resource_configuration=resources,
        model_framework=framework,
    )


def deploy(
    model: Any,
    name: str | None = None,
    *,
    score: str | os.PathLike[str] | None = None,
    environment: Environment | str | os.PathLike[str] | None = None,
    source_directory: str | os.PathLike[str] | None = None,
    target: str | None = None,
    port: int | None = None,
    config: Any = None,
    overwrite: bool = True,
    wait: bool = True,
    show_output: bool = False,
    auth: str | bool | None = None,
    cors: Any = None,
    input_mode: InputMode | None = None,
    workspace: Workspace | str | os.PathLike[str] | None = None,
) -> Webservice:
    """Deploy a registered model (``"name"``, ``"name:3"``, a ``Model`` or a list of
    them) as a web service, and wait until it is ``Healthy``.

    ``score`` is the scoring script (``init()`` / ``run(data)``); ``environment`` an
    :class:`Environment` or a ``requirements.txt`` / ``environment.yml`` path (default:
    captured from this kernel). ``target`` defaults to ``local``; ``port`` picks the
    port of a local service; ``config`` is a target's deployment configuration. An
    existing service of the same name is updated in place.

    ``auth`` is ``"key"`` (primary/secondary keys, ``service.get_keys()``), ``"token"``
    (short-lived tokens, ``service.get_token()``) or ``"none"``; by default the
    configuration's ``auth_enabled`` / ``token_auth_enabled`` decide (local services:
    off; remote targets: keys). ``cors`` lists the browser origins allowed to call the
    service (``["http://localhost:3000"]``, or a dict of
    :class:`~nbdeploy.core.auth.CorsPolicy` settings; ``False`` turns CORS off).
    ``service.run()`` sends the credentials itself.

    ``input_mode`` says what an undecorated ``run()`` receives: ``"decoded"`` (the
    default here: ``"data"`` as the DataFrame / ndarray the model's schema describes)
    or ``"raw"`` (the request body as ``str``, as Azure ML calls entry scripts).

    Examples
    --------
    >>> svc = nbdeploy.deploy("diabetes", name="diabetes-svc", score="score.py")  # doctest: +SKIP
    >>> svc.state                                                                # doctest: +SKIP
    'Healthy'
    """
    ws = get_workspace(workspace)
    if name is None:
        first = model[0] if isinstance(model, (list, tuple)) and model else model
        if isinstance(first, (str, ModelRef)):
            name = ModelRef.parse(first).name
        elif isinstance(first, Model):
            name = first.name
        else:
            raise TypeError("deploy() needs name= for this model")
    if config is None and port is not None:
        config = _config_with_port(target, port)
    record = deploy_models(
        ws,
        name,
        model,
        InferenceConfig(
            entry_script=None if score is None else Path(score),
            environment=as_environment(environment),
            source_directory=None if source_directory is None else Path(source_directory),
            input_mode=input_mode or "decoded",
        ),
        config,
        target=target,
        overwrite=overwrite,
        wait=wait,
        show_output=show_output,
        auth=auth,
        cors=cors,
    )
    return Webservice._from_record(ws, record)


def _config_with_port(target: str | None, port: int) -> Any:
    """The default configuration of ``target`` (default: the ``target`` setting)
    serving on ``port``."""
    from nbdeploy import config as settings
    from nbdeploy.targets import default_config

    target_name = target or str(settings.resolve("target"))
    if target_name == "local":
        # The other local settings (NBDEPLOY_WARM_START ...) still apply.
        return LocalWebservice.deploy_configuration(port=port)
    return default_config(target_name, port=port)


def models(
    name: str | None = None,
    *,
    tags: Any = None,
    properties: Any = None,
    latest: bool = False,
    workspace: Workspace | str | os.PathLike[str] | None = None,
) -> list[Model]:
    """Registered models (every version, or only the latest with ``latest=True``).

    ``tags`` and ``properties`` filter like the registry's ``list``: a list of keys that
    must be present, or ``[(key, value)]`` pairs / a dict that must match.

    Examples
    --------
    >>> import tempfile
    >>> ws = tempfile.mkdtemp()
    >>> _ = register({"w": 1}, "demo", tags={"stage": "dev"}, workspace=ws)
    >>> _ = register({"w": 2}, "demo", workspace=ws)
    >>> [m.version for m in models("demo", workspace=ws)]
    [1, 2]
    >>> [m.version for m in models(tags=["stage"], workspace=ws)]
    [1]
    """
    return Model.list(get_workspace(workspace), name, tags, properties, latest)


def get_model(ref: str, *, workspace: Workspace | str | os.PathLike[str] | None = None) -> Model:
    """A registered model: ``"name"`` (latest) or ``"name:3"``.

    Raises :class:`~nbdeploy.exceptions.ModelNotFoundError` naming what there is.

    Examples
    --------
    >>> import tempfile
    >>> ws = tempfile.mkdtemp()
    >>> _ = register({"w": 1}, "demo", workspace=ws)
    >>> get_model("demo:1", workspace=ws).id
    'demo:1'
    """
    ws = get_workspace(workspace)
    return Model(ws, _version=ws.registry.get(ref))


def services(
    *, target: str | None = None, workspace: Workspace | str | os.PathLike[str] | None = None
) -> list[Webservice]:
    """The services recorded in the workspace (with their last known state).

    Examples
    --------
    >>> import tempfile
    >>> services(workspace=tempfile.mkdtemp())
    []
    >>> [s.name for s in services(target="local")]   # doctest: +SKIP
    ['diabetes-svc']
    """
    ws = get_workspace(workspace)
    return [Webservice._from_record(ws, r) for r in ws.services.list(target=target)]


def get_service(
    name: str, *, workspace: Workspace | str | os.PathLike[str] | None = None
) -> Webservice:
    """The service called ``name`` — also from a new kernel after a restart.

    Raises :class:`~nbdeploy.exceptions.ServiceNotFoundError` when there is none.

    Examples
    --------
    >>> svc = get_service("diabetes-svc")   # doctest: +SKIP
    >>> svc.state                           # doctest: +SKIP
    'Healthy'
    """
    return Webservice(get_workspace(workspace), name)


def delete_service(
    name: str, *, workspace: Workspace | str | os.PathLike[str] | None = None
) -> None:
    """Stop and forget service ``name``; nothing happens if there is none.

    Examples
    --------
    >>> import tempfile
    >>> delete_service("no-such-service", workspace=tempfile.mkdtemp())  # a no-op
    >>> delete_service("diabetes-svc")                                   # doctest: +SKIP
    """
    ws = get_workspace(workspace)
    try:
        Webservice(ws, name).delete()
    except ServiceNotFoundError:
        return


def package(
    model: Any,
    name: str | None = None,
    *,
    score: str | os.PathLike[str] | None = None,
    environment: Any = None,
    source_directory: str | os.PathLike[str] | None = None,
    generate_dockerfile: bool = True,
    base_image: str | None = None,
    offline: bool | None = None,
    image_name: str | None = None,
    image_label: str | None = None,
    engine: str | None = None,
    show_output: bool = False,
    input_mode: InputMode | None = None,
    workspace: Workspace | str | os.PathLike[str] | None = None,
) -> Package:
    """Package a registered model (``"name"``, ``"name:3"``, a ``Model`` or a list) as
    a Docker build context — or, with ``generate_dockerfile=False``, an image.

    ``score``, ``environment``, ``source_directory`` and ``input_mode`` are those of
    :func:`nbdeploy.deploy`. ``offline=True`` puts every wheel into the context
    (``docker build --network none`` works); ``base_image`` is the default of the
    Dockerfile's ``BASE_IMAGE`` argument.

    Examples
    --------
    >>> pkg = nbdeploy.package("diabetes", score="score.py")   # doctest: +SKIP
    >>> pkg.save("diabetes-image")                             # doctest: +SKIP
    PosixPath('diabetes-image')
    >>> # docker build -t diabetes diabetes-image && docker run -p 6789:5001 diabetes
    """
    config = InferenceConfig(
        entry_script=None if score is None else Path(score),
        environment=as_environment(environment),
        source_directory=None if source_directory is None else Path(source_directory),
        input_mode=input_mode or "decoded",
    )
    return package_models(
        get_workspace(workspace),
        model,
        config,
        name=name,
        generate_dockerfile=generate_dockerfile,
        base_image=base_image,
        offline=offline,
        image_name=image_name,
        image_label=image_label,
        engine=engine,
        show_output=show_output,
    )


def profile(
    service_or_model: Any,
    requests: Any,
    concurrency: int = 1,
    duration: float | None = None,
    count: int | None = None,
    inference_config: InferenceConfig | None = None,
    store_tags: bool = False,
    target_rps: float | None = None,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    *,
    batch_size: int = 1,
    orient: str = "split",
    timeout: float = 60.0,
    name: str | None = None,
) -> ProfileReport:
    """Measure how fast a service serves ``requests`` and what CPU and memory it needs.

    Sends ``requests`` over ``concurrency`` keep-alive connections (cycling through
    them) for ``duration`` seconds (default 10) or ``count`` requests, whichever ends
    first, while sampling the serving process's CPU and memory every 0.1 s. Only
    services on this machine (loopback addresses) are profiled.

    Parameters
    ----------
    service_or_model:
        A :class:`~nbdeploy.Webservice` (profiled in place), or a registered model —
        ``"name"``, ``"name:3"``, a :class:`~nbdeploy.Model` or a list of them — which
        is deployed on the local target with ``inference_config`` under a temporary
        name, profiled, and deleted again (also when the profile fails).
    requests:
        A list of JSON strings; a DataFrame whose rows (``batch_size`` at a time)
        become ``{"data": ...}`` requests; an ndarray (rows likewise); or the path of
        a file with one request per line. See
        :func:`nbdeploy.profiling.prepare_requests`.
    concurrency:
        Requests in flight at once. Use 1 for the latency of one request; 2-4 x the
        cores the service may use to find its throughput at saturation.
    duration, count:
        Seconds and requests bounding the load (at most 600 s and 1,000,000 requests).
    inference_config:
        Scoring script, environment and source folder for a temporary deployment.
    store_tags:
        Store ``requestedCpu`` / ``requestedMemoryInGb`` as tags on the profiled
        models, as the reference suggests.
    target_rps:
        Size the CPU recommendation for this many requests per second.
    workspace:
        The workspace (default: ``$NBDEPLOY_HOME`` or ``~/.nbdeploy``).
    batch_size, orient:
        Rows per request and JSON layout (``"split"``/``"records"``) for DataFrames.
    timeout:
        Seconds one request may take before it counts as a ``timeout`` error.
    name:
        The profile's name (default: ``profile-<service>``).

    Returns
    -------
    ProfileReport
        A :class:`~nbdeploy.profiling.ProfileResult`: latency percentiles,
        throughput, errors by status, CPU and memory series and the recommendation;
        it renders as a report in a notebook.

    Examples
    --------
    >>> result = nbdeploy.profile(svc, X_test, concurrency=2, duration=3)  # doctest: +SKIP
    >>> result.get_details()["requestedCpu"], result.latency_ms(99)       # doctest: +SKIP
    (1.1, 24.8)
    """
    bodies = prepare_requests(requests, batch_size=batch_size, orient=orient, encode=encode_request)
    options: dict[str, Any] = {
        "concurrency": concurrency,
        "duration": duration,
        "count": count,
        "target_rps": target_rps,
        "timeout": timeout,
    }
    if not isinstance(service_or_model, Webservice):
        result = profile_models(
            get_workspace(workspace),
            service_or_model,
            inference_config,
            bodies,
            name=name,
            store=store_tags,
            **options,
        )
        return ProfileReport.from_result(result)
    if inference_config is not None:
        raise InvalidArgumentError(
            "inference_config is only used when profiling a model, not a deployed service",
            hint="update the service first, or pass the model to profile a new deployment",
        )
    service = service_or_model
    result = profile_service(
        service.workspace,
        service.refresh(),
        bodies,
        name=name or f"profile-{service.name}",
        headers=service._auth_headers(),
        **options,
    )
    if store_tags:
        _store_tags(service.workspace, service.models, result)
    return ProfileReport.from_result(result)


def ray_cluster_status(
    *, workspace: Workspace | str | os.PathLike[str] | None = None
) -> dict[str, Any] | None:
    """Where the workspace's embedded Ray cluster runs (address, PIDs); ``None`` when
    none runs.

    Examples
    --------
    >>> import tempfile
    >>> ray_cluster_status(workspace=tempfile.mkdtemp()) is None
    True
    """
    from nbdeploy.targets.ray import cluster_status

    return cluster_status(get_workspace(workspace))


def stop_ray_cluster(*, workspace: Workspace | str | os.PathLike[str] | None = None) -> bool:
    """Stop the workspace's embedded Ray cluster by its PIDs (never Ray's own
    stop command, which ends every Ray process of the machine); whether one was running."""
    from nbdeploy.targets.ray import stop_cluster

    return bool(stop_cluster(get_workspace(workspace)))


def serve_bundle(
    bundle: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 5001
) -> int:
    """Run the scoring server of ``bundle`` (a bundle folder) in the foreground until
    it is stopped; its exit status."""
    from nbdeploy.server import main as serve_main

    return int(serve_main([str(bundle), "--host", host, "--port", str(port)]) or 0)


def target_names() -> list[str]:
    """The deployment targets this installation knows (``"local"``, ``"docker"`` ...).

    Examples
    --------
    >>> "local" in target_names()
    True
    """
    from nbdeploy import targets

    return list(targets.target_names())


def target_availability() -> list[TargetAvailability]:
    """Every deployment target this installation knows, ``local`` first, each with
    whether it can be used from this Python and, if not, why and how to get it.

    The lab panel's target selector and the other fronts show this list.

    Examples
    --------
    >>> [(t.name, t.usable) for t in target_availability()][0]
    ('local', True)
    """
    return _target_availability()
