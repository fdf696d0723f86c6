"""The notebook-short API: ``register``, ``deploy``, ``models``, ``services`` …

Each function is one call into the core; the magics and the CLI are thin fronts over
these.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._model import Model
from ._service import Webservice
from ._workspace import get_workspace
from .core.bundle import InferenceConfig
from .core.environment import Environment
from .core.scoring import InputMode

if TYPE_CHECKING:
    from .core.workspace import Workspace

__all__ = [
    "delete_service",
    "deploy",
    "get_model",
    "get_service",
    "models",
    "register",
    "services",
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
    from ._deploy import deploy_models
    from .core.refs import ModelRef

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
        from .targets import default_config

        config = default_config(target or "local", port=port)
    return deploy_models(
        ws,
        name,
        model,
        InferenceConfig(
            entry_script=None if score is None else Path(score),
            environment=_environment(environment),
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


def _environment(value: Environment | str | os.PathLike[str] | None) -> Environment | None:
    if value is None or isinstance(value, Environment):
        return value
    path = Path(value)
    if path.suffix in {".yml", ".yaml"}:
        return Environment.from_conda_specification(path.stem, path)
    return Environment.from_pip_requirements(path.stem, path)


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
    from .exceptions import ServiceNotFoundError

    ws = get_workspace(workspace)
    try:
        Webservice(ws, name).delete()
    except ServiceNotFoundError:
        return
