"""Deploy and update: models + inference config → bundle → target → service record.

The one path every front takes (``nbdeploy.deploy``, ``Model.deploy``, ``%deploy``,
``nbdeploy deploy``), so they all behave the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.bundle import Bundle, InferenceConfig, build_bundle
from .core.refs import ModelRef, check_name
from .core.registry import ModelVersion
from .core.services import ServiceRecord
from .exceptions import InvalidArgumentError, ServiceExistsError, ServiceNotFoundError

if TYPE_CHECKING:
    from ._service import Webservice
    from .core.workspace import Workspace

__all__ = ["deploy_models", "resolve_models", "update_service"]


def resolve_models(workspace: Workspace, models: Any) -> list[ModelVersion]:
    """Turn refs (``"name"``, ``"name:3"``), ``ModelRef``s, ``Model``s or ``ModelVersion``s
    — one or a list — into registered model versions."""
    items: Iterable[Any] = (
        models if isinstance(models, (list, tuple)) else [models]  # a single model
    )
    resolved: list[ModelVersion] = []
    for item in items:
        if isinstance(item, ModelVersion):
            resolved.append(item)
        elif isinstance(item, (str, ModelRef)):
            resolved.append(workspace.registry.get(item))
        elif hasattr(item, "model_version") and isinstance(item.model_version, ModelVersion):
            resolved.append(item.model_version)  # a nbdeploy.Model
        else:
            raise InvalidArgumentError(
                f"cannot deploy {type(item).__name__!r} objects as a model reference",
                hint="pass a registered model: 'name', 'name:3', a Model, or register the "
                "object first with nbdeploy.register(obj, name=...)",
            )
    if not resolved:
        raise InvalidArgumentError("no model to deploy", hint="pass at least one model")
    return resolved


def _target_of(deployment_config: Any, target: str | None) -> tuple[str, Any]:
    from .targets import default_config, get_target_name

    if deployment_config is None:
        name = target or "local"
        return name, default_config(name)
    name = get_target_name(deployment_config)
    if target is not None and target != name:
        raise InvalidArgumentError(
            f"target {target!r} does not match the deployment configuration for {name!r}",
            hint="pass either target= or a deployment configuration of that target",
        )
    return name, deployment_config


def _new_bundle(
    workspace: Workspace,
    service: str,
    models: Sequence[ModelVersion],
    inference_config: InferenceConfig,
    settings: dict[str, Any],
) -> Bundle:
    dest = Path(workspace.bundles_dir) / service / uuid.uuid4().hex[:12]
    dest.parent.mkdir(parents=True, exist_ok=True)
    return build_bundle(models, inference_config, dest, settings=settings)


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
) -> Webservice:
    """Deploy ``models`` as service ``name``; an existing service of that name is updated."""
    from ._service import Webservice
    from .targets import get_target

    check_name(name, "service")
    versions = resolve_models(workspace, models)
    config_target, config = _target_of(deployment_config, target)
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
            record = update_service(
                workspace,
                existing,
                models=versions,
                inference_config=inference_config,
                deployment_config=config,
                show_output=show_output,
            )
            return Webservice._from_record(workspace, record)
        get_target(existing.target, workspace).delete(name)

    bundle = _new_bundle(
        workspace, name, versions, inference_config or InferenceConfig(), {"service_name": name}
    )
    record = get_target(config_target, workspace).deploy(
        name, bundle, config, wait=wait, show_output=show_output
    )
    return Webservice._from_record(workspace, record)


def update_service(
    workspace: Workspace,
    record: ServiceRecord,
    *,
    models: Any = None,
    inference_config: InferenceConfig | None = None,
    deployment_config: Any = None,
    score: str | None = None,
    show_output: bool = False,
) -> ServiceRecord:
    """Build a new bundle from what changed (the rest is taken from the running one)
    and switch the service to it."""
    from .targets import get_target

    current = Bundle.load(record.bundle_path) if record.bundle_path else None
    versions = (
        resolve_models(workspace, models)
        if models is not None
        else resolve_models(workspace, list(record.models))
    )
    if inference_config is None:
        if score is not None:
            inference_config = InferenceConfig(entry_script=score)
        elif current is not None:
            inference_config = InferenceConfig(
                # A built-in scorer is chosen again for the new models (their
                # framework may differ); a user's script is kept.
                entry_script=None if current.manifest.builtin_scorer else current.entry_script,
                environment=current.environment,
                source_directory=current.source_dir,
            )
        else:
            inference_config = InferenceConfig()
    bundle = _new_bundle(
        workspace, record.name, versions, inference_config, {"service_name": record.name}
    )
    return get_target(record.target, workspace).update(
        record.name, bundle, deployment_config, wait=True, show_output=show_output
    )
