"""Update: switch a running service to new models, script, environment or settings.

What changed is built into a new bundle (the rest is taken from the running one) and
the service's target switches to it (:mod:`nbdeploy.targets`); a bundle built for an
update that failed is removed again.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

from nbdeploy.core.bundle import Bundle, InferenceConfig
from nbdeploy.core.services import ServiceRecord
from nbdeploy.exceptions import ServiceNotFoundError
from nbdeploy.workflows.access import access_settings
from nbdeploy.workflows.build import inference_config_for, new_bundle, resolve_models

if TYPE_CHECKING:
    from nbdeploy.core.workspace import Workspace

__all__ = ["update_service"]


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
    from nbdeploy.targets import get_target

    current = Bundle.load(record.bundle_path) if record.bundle_path else None
    versions = (
        resolve_models(workspace, models)
        if models is not None
        else resolve_models(workspace, list(record.models))
    )
    inference_config = inference_config_for(current, inference_config, score=score)
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
    bundle = new_bundle(workspace, record.name, versions, inference_config, settings)
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
    try:
        used = workspace.services.get(name).bundle_path
    except ServiceNotFoundError:
        used = None
    if used != str(bundle.path):
        shutil.rmtree(bundle.path, ignore_errors=True)
