"""Controlled rollout: versions of one service behind its endpoint, with traffic weights.

The functions behind :meth:`Webservice.add_version`, :meth:`Webservice.set_traffic`,
:meth:`Webservice.remove_version`, :meth:`Webservice.rollback` and
:attr:`Webservice.traffic`. They build bundles the way :mod:`nbdeploy.workflows.build` does and
hand them to the service's target, which must support versions (the local target
does: :mod:`nbdeploy.targets.local.traffic`).

A service deployed with :func:`nbdeploy.deploy` has one version and no router. The
first ``add_version`` names the running one ``"v1"`` (``current_name``) and puts a
router on the service's port; the scoring URI stays the same. Answers carry the
header ``x-nbdeploy-version`` (and ``azureml-model-deployment``) naming the version
that served them; a request sending that header goes to the version it names.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from nbdeploy.core.bundle import Bundle, InferenceConfig
from nbdeploy.exceptions import TargetUnavailableError
from nbdeploy.workflows.build import inference_config_for, new_bundle, resolve_models

if TYPE_CHECKING:
    from nbdeploy.core.services import ServiceRecord
    from nbdeploy.core.workspace import Workspace

__all__ = [
    "TrafficTarget",
    "add_version",
    "remove_version",
    "rollback",
    "set_traffic",
    "traffic",
]


@runtime_checkable
class TrafficTarget(Protocol):
    """What a target offers to run several versions of a service behind one endpoint.

    A target supports versions when it has these methods (the local target does); the
    functions below check with ``isinstance(target, TrafficTarget)``.

    Examples
    --------
    >>> from nbdeploy.targets.local import LocalTarget
    >>> issubclass(LocalTarget, TrafficTarget)
    True
    """

    def add_version(
        self,
        name: str,
        version: str,
        bundle: Any,
        weight: int = 0,
        *,
        current_name: str = "v1",
        show_output: bool = False,
    ) -> ServiceRecord:
        """Serve ``bundle`` as version ``version`` of service ``name`` with ``weight`` %."""
        ...

    def set_traffic(self, name: str, weights: Mapping[str, int]) -> ServiceRecord:
        """New weights (percent, summing to 100) for the versions of service ``name``."""
        ...

    def remove_version(self, name: str, version: str) -> ServiceRecord:
        """Stop one version (it must have weight 0) of service ``name``."""
        ...

    def rollback(self, name: str) -> ServiceRecord:
        """All traffic back to the primary version; the other versions stop."""
        ...

    def traffic(self, name: str) -> dict[str, int]:
        """``{version: weight}`` of service ``name``; empty with a single version."""
        ...


def _target(workspace: Workspace, record: ServiceRecord) -> TrafficTarget:
    from nbdeploy.targets import get_target

    target = get_target(record.target, workspace)
    if not isinstance(target, TrafficTarget):
        raise TargetUnavailableError(
            f"target {record.target!r} of service {record.name!r} cannot split traffic "
            "between versions yet",
            hint="use the local target, or deploy the new version as its own service",
        )
    return target


def _primary_models(record: ServiceRecord) -> list[str]:
    """The models of the record's primary version. Every target with versions keeps
    ``config["versions"]`` as dicts with at least ``name`` and ``models``, and
    ``config["primary"]``."""
    primary = record.config.get("primary")
    for version in record.config.get("versions") or ():
        if isinstance(version, dict) and version.get("name") == primary:
            return [str(m) for m in version.get("models", ())]
    return list(record.models)


def _endpoint_settings(record: ServiceRecord) -> dict[str, Any]:
    """The server settings of the running bundle — auth (the same keys), CORS, limits:
    every version behind one endpoint answers under the same rules."""
    settings: dict[str, Any] = {}
    if record.bundle_path:
        settings = Bundle.load(record.bundle_path).settings
    settings["service_name"] = record.name
    return settings


def add_version(
    workspace: Workspace,
    record: ServiceRecord,
    version: str,
    models: Any = None,
    *,
    score: Any = None,
    inference_config: InferenceConfig | None = None,
    environment: Any = None,
    source_directory: Any = None,
    weight: int = 0,
    current_name: str = "v1",
    show_output: bool = False,
) -> ServiceRecord:
    """Deploy ``models`` (default: the primary version's) with ``score`` (default: the
    primary version's script or built-in scorer) as version ``version`` of the service,
    with ``weight`` percent of its traffic; the service's updated record.

    Examples
    --------
    >>> svc = nbdeploy.get_service("churn")                                # doctest: +SKIP
    >>> record = add_version(svc.workspace, svc.record, "v2", ["churn:2"], weight=10)
    ... # doctest: +SKIP
    >>> [v["name"] for v in record.config["versions"]]                     # doctest: +SKIP
    ['v1', 'v2']
    """
    target = _target(workspace, record)
    versions = resolve_models(workspace, models if models is not None else _primary_models(record))
    current = Bundle.load(record.bundle_path) if record.bundle_path else None
    config = inference_config_for(
        current,
        inference_config,
        score=score,
        environment=environment,
        source_directory=source_directory,
    )
    bundle = new_bundle(workspace, record.name, versions, config, _endpoint_settings(record))
    try:
        return target.add_version(
            record.name,
            version,
            bundle,
            weight,
            current_name=current_name,
            show_output=show_output,
        )
    except BaseException:
        shutil.rmtree(bundle.path, ignore_errors=True)
        raise


def set_traffic(
    workspace: Workspace, record: ServiceRecord, weights: Mapping[str, int]
) -> ServiceRecord:
    """New weights for the versions of a service.

    Examples
    --------
    >>> set_traffic(svc.workspace, svc.record, {"v1": 50, "v2": 50})  # doctest: +SKIP
    """
    return _target(workspace, record).set_traffic(record.name, weights)


def remove_version(workspace: Workspace, record: ServiceRecord, version: str) -> ServiceRecord:
    """Stop one version (with weight 0) of a service.

    Examples
    --------
    >>> svc.set_traffic({"v2": 100})                                   # doctest: +SKIP
    >>> remove_version(svc.workspace, svc.record, "v1")               # doctest: +SKIP
    """
    return _target(workspace, record).remove_version(record.name, version)


def rollback(workspace: Workspace, record: ServiceRecord) -> ServiceRecord:
    """All traffic back to the primary version; the other versions stop.

    Examples
    --------
    >>> rollback(svc.workspace, svc.record).config["primary"]          # doctest: +SKIP
    'v1'
    """
    return _target(workspace, record).rollback(record.name)


def traffic(workspace: Workspace, record: ServiceRecord) -> dict[str, int]:
    """``{version: weight}``; empty for a service with a single version.

    Examples
    --------
    >>> traffic(svc.workspace, svc.record)                             # doctest: +SKIP
    {'v1': 90, 'v2': 10}
    """
    from nbdeploy.targets import get_target

    target = get_target(record.target, workspace)
    if not isinstance(target, TrafficTarget):
        return {}
    return target.traffic(record.name)
