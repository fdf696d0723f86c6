"""Deploy and update: models + inference config → bundle → target → service record.

The one path every front takes (``nbdeploy.deploy``, ``Model.deploy``, ``%deploy``,
``nbdeploy deploy``), so they all behave the same.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.auth import (
    AuthMode,
    CorsPolicy,
    ServiceAuth,
    auth_file_path,
    default_auth,
    normalize_auth,
    read_auth_file,
    write_auth_file,
)
from .core.bundle import Bundle, InferenceConfig, build_bundle
from .core.refs import ModelRef, check_name
from .core.registry import ModelVersion
from .core.services import ServiceRecord
from .core.serving import serving_settings
from .exceptions import (
    InvalidArgumentError,
    NbdeployError,
    ServiceExistsError,
    ServiceNotFoundError,
)

if TYPE_CHECKING:
    from ._service import Webservice
    from .core.workspace import Workspace

__all__ = [
    "access_settings",
    "deploy_models",
    "keep_input_mode",
    "resolve_models",
    "update_service",
]


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


def _config_auth(config: Any) -> AuthMode | bool | None:
    """The auth a deployment configuration asks for; ``False`` when it has no say."""
    if config is None or not hasattr(config, "auth_enabled"):
        return False
    if getattr(config, "token_auth_enabled", False):
        return "token"
    return "key" if config.auth_enabled else None


def access_settings(
    workspace: Workspace,
    name: str,
    target: str,
    config: Any,
    *,
    auth: Any = None,
    cors: Any = None,
    current: Mapping[str, Any] | None = None,
    fresh: bool,
) -> tuple[Any, dict[str, Any]]:
    """Decide a service's auth and CORS, write its auth file; (config, bundle settings).

    Auth: an explicit ``auth`` (``"key"``, ``"token"``, ``"none"``/``False``) wins, then
    the deployment configuration's ``auth_enabled`` / ``token_auth_enabled`` fields,
    then (updates) the running bundle's settings, then the target's default
    (:func:`~nbdeploy.core.auth.default_auth`: none locally, keys elsewhere). CORS
    likewise: ``cors`` (``False`` turns it off), the configuration's ``cors`` field,
    the running bundle's. Explicit choices are written into configurations that have
    those fields, so the service record tells the truth.

    With auth on, the service's auth file (``services/<name>/auth.json``, 0600) gets
    new keys on a fresh deploy and keeps its keys on an update; with auth off it is
    removed. Every target passes the returned settings through the bundle, so every
    server enforces the same thing.
    """
    from_config = _config_auth(config)
    if auth is not None:
        mode = normalize_auth(auth)
    elif from_config is not False:
        mode = from_config if isinstance(from_config, str) else None
    elif current is not None:
        mode = (
            "key"
            if current.get("auth_enabled")
            else ("token" if current.get("token_auth_enabled") else None)
        )
    else:
        mode = default_auth(target)
    if cors is False:
        policy = None
    elif cors is not None:
        policy = CorsPolicy.from_value(cors)
    elif config is not None and hasattr(config, "cors"):
        policy = CorsPolicy.from_value(config.cors)
    elif current is not None:
        policy = CorsPolicy.from_value(current.get("cors"))
    else:
        policy = None
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        changes: dict[str, Any] = {}
        if auth is not None and hasattr(config, "auth_enabled"):
            changes["auth_enabled"] = mode == "key"
            changes["token_auth_enabled"] = mode == "token"
        if cors is not None and hasattr(config, "cors"):
            changes["cors"] = policy
        if changes:
            config = dataclasses.replace(config, **changes)

    path = auth_file_path(workspace.services_dir, name)
    settings: dict[str, Any] = {"service_name": name}
    if mode is None:
        path.unlink(missing_ok=True)
    else:
        existing = None if fresh else read_auth_file(path)
        secrets = ServiceAuth.generate(name, mode) if existing is None else existing
        write_auth_file(path, secrets.with_mode(mode))
        settings["auth_enabled"] = mode == "key"
        settings["token_auth_enabled"] = mode == "token"
        settings["auth_file"] = str(path)
    if policy is not None:
        settings["cors"] = policy.to_dict()
    # Per-replica concurrency, queue wait and scoring timeout: from the configuration,
    # else kept from the running bundle; the server enforces them on every target.
    settings.update(serving_settings(config, current))
    return config, settings


def keep_input_mode(config: InferenceConfig, current: Bundle) -> InferenceConfig:
    """``config`` with the running bundle's input mode when it names none (a built-in
    scorer's bundle says nothing about how a new script wants its requests)."""
    if current.manifest.builtin_scorer is not None:
        return config
    return config.with_default_input_mode(current.input_mode)


def _keep_access(record: ServiceRecord, auth: Any, cors: Any) -> tuple[Any, Any]:
    """``auth`` / ``cors`` as given, else what the running bundle of ``record`` has."""
    try:
        current = Bundle.load(record.bundle_path).settings if record.bundle_path else {}
    except (NbdeployError, OSError, ValueError):  # unreadable: the configuration decides
        return auth, cors
    if auth is None:
        if current.get("auth_enabled"):
            auth = "key"
        elif current.get("token_auth_enabled"):
            auth = "token"
        else:
            auth = "none"
    if cors is None:
        cors = current.get("cors") or False
    return auth, cors


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
) -> Webservice:
    """Deploy ``models`` as service ``name``; an existing service of that name is updated.

    ``auth`` and ``cors`` are described in :func:`access_settings`.
    """
    from ._service import Webservice

    check_name(name, "service")
    versions = resolve_models(workspace, models)
    config_target, config = _target_of(deployment_config, target)
    # One deploy of a name at a time, across processes: the check below and the
    # deploy or update it leads to must not interleave with another's.
    with workspace.service_lock(name):
        record = _deploy_locked(
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
    return Webservice._from_record(workspace, record)


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
    from .targets import get_target

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
                auth, cors = _keep_access(existing, auth, cors)
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
    bundle = _new_bundle(workspace, name, versions, inference_config or InferenceConfig(), settings)
    return get_target(config_target, workspace).deploy(
        name, bundle, config, wait=wait, show_output=show_output
    )


def update_service(
    workspace: Workspace,
    record: ServiceRecord,
    *,
    models: Any = None,
    inference_config: InferenceConfig | None = None,
    deployment_config: Any = None,
    score: str | None = None,
    show_output: bool = False,
    auth: Any = None,
    cors: Any = None,
) -> ServiceRecord:
    """Build a new bundle from what changed (the rest is taken from the running one)
    and switch the service to it. Auth and CORS stay as they are unless ``auth``,
    ``cors`` or the deployment configuration change them (:func:`access_settings`);
    so does the input mode, unless the new inference config names one.

    Runs holding the service's lock, on the record as stored then (another process
    may have changed or deleted the service since ``record`` was read); a bundle
    built for an update that failed is removed."""
    with workspace.service_lock(record.name):
        record = workspace.services.get(record.name)  # ServiceNotFoundError if deleted
        return _update_locked(
            workspace,
            record,
            models=models,
            inference_config=inference_config,
            deployment_config=deployment_config,
            score=score,
            show_output=show_output,
            auth=auth,
            cors=cors,
        )


def _update_locked(
    workspace: Workspace,
    record: ServiceRecord,
    *,
    models: Any,
    inference_config: InferenceConfig | None,
    deployment_config: Any,
    score: str | None,
    show_output: bool,
    auth: Any,
    cors: Any,
) -> ServiceRecord:
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
    if current is not None:
        inference_config = keep_input_mode(inference_config, current)
    deployment_config, settings = access_settings(
        workspace,
        record.name,
        record.target,
        deployment_config,
        auth=auth,
        cors=cors,
        current=current.settings if current is not None else None,
        fresh=False,
    )
    bundle = _new_bundle(workspace, record.name, versions, inference_config, settings)
    try:
        return get_target(record.target, workspace).update(
            record.name, bundle, deployment_config, wait=True, show_output=show_output
        )
    except BaseException:
        _drop_unused_bundle(workspace, record.name, bundle)
        raise


def _drop_unused_bundle(workspace: Workspace, name: str, bundle: Bundle) -> None:
    """Remove a bundle built for ``name`` that its record does not point at (an update
    that failed), so a failed update leaves nothing behind."""
    import shutil

    try:
        used = workspace.services.get(name).bundle_path
    except ServiceNotFoundError:
        used = None
    if used != str(bundle.path):
        shutil.rmtree(bundle.path, ignore_errors=True)
