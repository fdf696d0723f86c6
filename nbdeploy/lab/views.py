"""What the Deployments panel shows, as plain JSON-able dicts.

The route handlers (:mod:`nbdeploy.lab.handlers`) are thin: they call these functions
off the server's event loop and send the result. Keeping the reading of the workspace
here makes it testable without a Jupyter server, and keeps the JSON shapes in one
place — the TypeScript interfaces in ``labextension/src/api.ts`` mirror them:

``ModelSummary``
    ``{"name", "latest_version", "versions": [int], "framework",
    "framework_version", "description", "tags": {str: str}, "created"}``
``ServiceSummary``
    ``{"name", "target", "state", "scoring_uri", "swagger_uri", "docs_uri",
    "models": ["name:version"], "error", "probe_error", "created", "updated",
    "generation"}``
``TargetSummary``
    ``{"name", "usable", "description", "reason"}`` (``reason``: why not usable and
    how to get it, else ``null``)

Everything goes through the public API (:func:`nbdeploy.models`,
:func:`nbdeploy.services`, :func:`nbdeploy.api.target_availability`,
:class:`nbdeploy.Webservice`), imported where used so the
server extension loads even when optional parts are missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbdeploy.exceptions import NbdeployError, ServiceNotFoundError

if TYPE_CHECKING:
    from nbdeploy.core.services import ServiceRecord
    from nbdeploy.core.workspace import Workspace
    from nbdeploy.sdk.webservice import Webservice

__all__ = [
    "SERVICE_MIMETYPE",
    "SWAGGER_MIMETYPE",
    "delete_service",
    "docs_uri",
    "list_models",
    "list_services",
    "list_targets",
    "service_detail",
    "service_logs",
    "service_summary",
    "swagger_payload",
]

#: Rendered by the lab extension as a service card; payload: :func:`service_summary`.
SERVICE_MIMETYPE = "application/vnd.nbdeploy.service+json"
#: Rendered by the lab extension as OpenAPI tables; payload: :func:`swagger_payload`.
SWAGGER_MIMETYPE = "application/vnd.nbdeploy.swagger+json"

#: Lines of log sent when the client does not say how many.
DEFAULT_TAIL = 200


def list_models(workspace: Workspace) -> dict[str, Any]:
    """The registered models, one entry per name with its latest version.

    Parameters
    ----------
    workspace:
        The workspace to read.

    Returns
    -------
    dict
        ``{"workspace": str, "models": [ModelSummary, ...]}`` sorted by name.

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> list_models(Workspace(tempfile.mkdtemp()))["models"]
    []
    """
    from nbdeploy.api import models

    by_name: dict[str, list[Any]] = {}
    for model in models(workspace=workspace):
        by_name.setdefault(model.name, []).append(model)
    summaries = []
    for name in sorted(by_name):
        versions = sorted(by_name[name], key=lambda m: int(m.version))
        latest = versions[-1]
        summaries.append(
            {
                "name": name,
                "latest_version": int(latest.version),
                "versions": [int(m.version) for m in versions],
                "framework": str(latest.framework),
                "framework_version": latest.framework_version,
                "description": latest.description or "",
                "tags": {str(k): str(v) for k, v in latest.tags.items()},
                "created": latest.created_time.isoformat(),
            }
        )
    return {"workspace": str(workspace.path), "models": summaries}


def list_targets() -> dict[str, Any]:
    """The deployment targets the panel's selector offers, ``local`` (the default)
    first, each with whether it can be used from this server and, if not, why.

    Returns
    -------
    dict
        ``{"default": "local", "targets": [TargetSummary, ...]}``.

    Examples
    --------
    >>> listed = list_targets()
    >>> listed["default"], listed["targets"][0]["name"], listed["targets"][0]["usable"]
    ('local', 'local', True)
    """
    from nbdeploy.api import target_availability

    return {"default": "local", "targets": [t.to_dict() for t in target_availability()]}


def docs_uri(record: ServiceRecord) -> str | None:
    """Where the service's Swagger UI page (``GET /docs``) is, if it can be told.

    The scoring server serves ``/docs`` next to ``/swagger.json`` and ``/score``.

    Examples
    --------
    >>> from nbdeploy.core.services import ServiceRecord
    >>> docs_uri(ServiceRecord("s", "local", scoring_uri="http://127.0.0.1:5001/score"))
    'http://127.0.0.1:5001/docs'
    >>> docs_uri(ServiceRecord("s", "local")) is None
    True
    """
    for uri, suffix in ((record.swagger_uri, "/swagger.json"), (record.scoring_uri, "/score")):
        if uri and uri.endswith(suffix):
            return uri[: -len(suffix)] + "/docs"
    return None


def service_summary(record: ServiceRecord, probe_error: str | None = None) -> dict[str, Any]:
    """The JSON the panel and the service card show for ``record``.

    Also the payload of :data:`SERVICE_MIMETYPE`, so a notebook display object renders
    as the same card as the panel's.

    Examples
    --------
    >>> from nbdeploy.core.services import ServiceRecord
    >>> card = service_summary(ServiceRecord("iris", "local", "Healthy", models=("iris:1",)))
    >>> card["state"], card["models"], card["docs_uri"]
    ('Healthy', ['iris:1'], None)
    """
    return {
        "name": record.name,
        "target": record.target,
        "state": record.state.value,
        "scoring_uri": record.scoring_uri,
        "swagger_uri": record.swagger_uri,
        "docs_uri": docs_uri(record),
        "models": list(record.models),
        "error": record.error,
        "probe_error": probe_error,
        "created": record.created.isoformat(),
        "updated": record.updated.isoformat(),
        "generation": record.generation,
    }


def swagger_payload(
    spec: dict[str, Any], *, name: str | None = None, docs: str | None = None
) -> dict[str, Any]:
    """The payload of :data:`SWAGGER_MIMETYPE`: an OpenAPI document (Swagger 2.0 or
    OpenAPI 3) with the service's name and its Swagger UI page, if known.

    Examples
    --------
    >>> swagger_payload({"swagger": "2.0", "paths": {}}, name="iris")["name"]
    'iris'
    """
    return {"name": name, "docs_uri": docs, "spec": spec}


def _live(service: Webservice, refresh: bool) -> tuple[ServiceRecord, str | None]:
    """The service's live record, or its last known one and why probing failed."""
    if not refresh:
        return service.record, None
    try:
        return service.refresh(), None
    except ServiceNotFoundError:
        raise
    except NbdeployError as exc:
        return service.record, str(exc)


def list_services(workspace: Workspace, *, refresh: bool = True) -> dict[str, Any]:
    """The recorded services, with their live state when ``refresh`` is true.

    A service whose target cannot be asked (a Docker engine that is down ...) keeps
    its last recorded state and says why in ``probe_error``; a service deleted while
    the list was read is left out.

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> list_services(Workspace(tempfile.mkdtemp()))["services"]
    []
    """
    from nbdeploy.api import services

    summaries = []
    for service in services(workspace=workspace):
        try:
            record, probe_error = _live(service, refresh)
        except ServiceNotFoundError:
            continue
        summaries.append(service_summary(record, probe_error))
    return {"workspace": str(workspace.path), "services": summaries}


def service_detail(workspace: Workspace, name: str, *, refresh: bool = True) -> dict[str, Any]:
    """One service's summary; :class:`ServiceNotFoundError` if there is none.

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> service_detail(Workspace(tempfile.mkdtemp()), "nope")
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.ServiceNotFoundError: no service named 'nope' in this workspace
    Hint: there are no services yet; deploy one first
    """
    from nbdeploy.sdk.webservice import Webservice

    record, probe_error = _live(Webservice(workspace, name), refresh)
    return service_summary(record, probe_error)


def service_logs(workspace: Workspace, name: str, tail: int = DEFAULT_TAIL) -> dict[str, Any]:
    """The last ``tail`` lines of service ``name``'s log.

    Returns
    -------
    dict
        ``{"name": str, "tail": int, "logs": str}``.

    Examples
    --------
    >>> svc_logs = service_logs(ws, "diabetes", tail=50)  # doctest: +SKIP
    >>> svc_logs["logs"].splitlines()[-1]                 # doctest: +SKIP
    'INFO:     Application startup complete.'
    """
    from nbdeploy.sdk.webservice import Webservice

    logs = Webservice(workspace, name).get_logs(tail=tail)
    return {"name": name, "tail": tail, "logs": logs}


def delete_service(workspace: Workspace, name: str) -> dict[str, Any]:
    """Stop and forget service ``name``; :class:`ServiceNotFoundError` if unknown.

    Unlike :func:`nbdeploy.delete_service` (which ignores unknown names), the panel
    must tell the user that the service it showed is already gone.

    Examples
    --------
    >>> delete_service(ws, "diabetes")  # doctest: +SKIP
    {'name': 'diabetes', 'deleted': True}
    """
    from nbdeploy.sdk.webservice import Webservice

    Webservice(workspace, name).delete()
    return {"name": name, "deleted": True}
