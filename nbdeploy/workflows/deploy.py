"""Deploy: models + inference config → bundle → target → service record.

The one path every front takes (``nbdeploy.deploy``, ``Model.deploy``, ``%deploy``,
``nbdeploy deploy``), so they all behave the same. It returns the service's record;
the SDK wraps it in a :class:`~nbdeploy.Webservice`. A service that exists already on
the same target is updated (:mod:`nbdeploy.workflows.update`).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from nbdeploy.core.auth import auth_file_path
from nbdeploy.core.bundle import InferenceConfig
from nbdeploy.core.refs import check_name
from nbdeploy.core.registry import ModelVersion
from nbdeploy.core.services import ServiceRecord
from nbdeploy.exceptions import InvalidArgumentError, ServiceExistsError, ServiceNotFoundError
from nbdeploy.workflows.access import access_settings, keep_access
from nbdeploy.workflows.build import new_bundle, resolve_models
from nbdeploy.workflows.update import update_service

if TYPE_CHECKING:
    from nbdeploy.core.workspace import Workspace

__all__ = ["delete_service", "deploy_models", "local_configuration"]


def local_configuration(
    port: int | None = None,
    host: str | None = None,
    warm_start: bool | None = None,
    **settings: Any,
) -> Any:
    """The local target's deployment configuration; ``None`` takes the setting
    (``NBDEPLOY_PORT``, ``NBDEPLOY_HOST``, ``NBDEPLOY_WARM_START``)."""
    from nbdeploy import config
    from nbdeploy.targets.local import LocalConfig

    return LocalConfig(
        port=int(config.resolve("port", port)),
        host=str(config.resolve("host", host)),
        warm_start=bool(config.resolve("warm_start", warm_start)),
        **settings,
    )


def _target_of(deployment_config: Any, target: str | None) -> tuple[str, Any]:
    """The target and its configuration; without one, the settings decide
    (``NBDEPLOY_TARGET``; for a local service ``NBDEPLOY_PORT``, ``NBDEPLOY_HOST``,
    ``NBDEPLOY_WARM_START``, as :meth:`LocalWebservice.deploy_configuration`)."""
    from nbdeploy import config as settings
    from nbdeploy.targets import default_config, get_target_name

    if deployment_config is None:
        name = target or str(settings.resolve("target"))
        if name == "local":
            return name, local_configuration()
        return name, default_config(name)
    name = get_target_name(deployment_config)
    if target is not None and target != name:
        raise InvalidArgumentError(
            f"target {target!r} does not match the deployment configuration for {name!r}",
            hint="pass either target= or a deployment configuration of that target",
        )
    return name, deployment_config


def deploy_models(
    workspace: Workspace,
    name: str,
    models: Any,
    inference_config: InferenceConfig | None = None,
    deployment_config: Any = None,
    *,
    target: str | None = None,
    overwrite: bool = True,
    wait: bool = True,
    show_output: bool = False,
    auth: Any = None,
    cors: Any = None,
) -> ServiceRecord:
    """Deploy ``models`` as service ``name``; an existing service of that name is updated.

    ``auth`` and ``cors`` are described in :func:`access_settings`. Returns the
    service's record.
    """
    check_name(name, "service")
    versions = resolve_models(workspace, models)
    config_target, config = _target_of(deployment_config, target)
    # One deploy of a name at a time, across processes: the check below and the
    # deploy or update it leads to must not interleave with another's.
    with workspace.service_lock(name):
        return _deploy_locked(
            workspace,
            name,
            versions,
            inference_config,
            deployment_config,
            config_target,
            config,
            overwrite=overwrite,
            wait=wait,
            show_output=show_output,
            auth=auth,
            cors=cors,
        )


def _deploy_locked(
    workspace: Workspace,
    name: str,
    versions: list[ModelVersion],
    inference_config: InferenceConfig | None,
    deployment_config: Any,
    config_target: str,
    config: Any,
    *,
    overwrite: bool,
    wait: bool,
    show_output: bool,
    auth: Any,
    cors: Any,
) -> ServiceRecord:
    from nbdeploy.targets import get_target

    try:
        existing: ServiceRecord | None = workspace.services.get(name)
    except ServiceNotFoundError:
        existing = None
    if existing is not None:
        if not overwrite:
            raise ServiceExistsError(
                f"a service named {name!r} already exists "
                f"({existing.target}, {existing.state.value})",
                hint="pick another name, pass overwrite=True, or delete it first",
            )
        if existing.target == config_target:
            if deployment_config is None:
                # Only a new configuration changes how callers authenticate.
                auth, cors = keep_access(existing, auth, cors)
            return update_service(
                workspace,
                existing,
                models=versions,
                inference_config=inference_config,
                deployment_config=config,
                show_output=show_output,
                auth=auth,
                cors=cors,
            )
        get_target(existing.target, workspace).delete(name)

    config, settings = access_settings(
        workspace, name, config_target, config, auth=auth, cors=cors, fresh=True
    )
    bundle = new_bundle(workspace, name, versions, inference_config or InferenceConfig(), settings)
    return get_target(config_target, workspace).deploy(
        name, bundle, config, wait=wait, show_output=show_output
    )


def delete_service(
    workspace: Workspace, record: ServiceRecord, *, remove_image: bool = False
) -> None:
    """Stop the service of ``record`` and forget it, with its auth file.

    ``remove_image`` also removes its container image on targets that build one.
    """
    from nbdeploy.targets import get_target

    delete: Any = get_target(record.target, workspace).delete
    if remove_image and "remove_image" in inspect.signature(delete).parameters:
        delete(record.name, remove_image=True)
    else:
        delete(record.name)
    # Targets that keep the service's folder leave the file behind.
    auth_file_path(workspace.services_dir, record.name).unlink(missing_ok=True)
