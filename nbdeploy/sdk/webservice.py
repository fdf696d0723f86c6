"""The service object every front hands out: state, URIs, ``run()``, logs, update, delete."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from nbdeploy.core.auth import (
    ServiceAuth,
    auth_file_path,
    read_auth_file,
    sign_token,
    write_auth_file,
)
from nbdeploy.core.cloud import CloudAttributes, cloud_only
from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.exceptions import (
    DeploymentError,
    InvalidArgumentError,
    NbdeployError,
    TargetUnavailableError,
)
from nbdeploy.sdk.client import decode_response, encode_request, error_for_status
from nbdeploy.sdk.rendering import mimebundle

if TYPE_CHECKING:
    import requests

    from nbdeploy.core.workspace import Workspace
    from nbdeploy.targets.base import Target

__all__ = [
    "AciWebservice",
    "AksWebservice",
    "DockerWebservice",
    "LocalWebservice",
    "Webservice",
]


#: What the reference's image-based calls become: a package built on your engine.
_IMAGES = (
    "uses container images kept in an Azure workspace",
    "deploy models with Model.deploy(ws, name, [model], inference_config, deployment_config); "
    "build an image with Model.package(ws, [model], inference_config)",
)


class Webservice(CloudAttributes):
    """A deployed web service, found by name in a workspace.

    The reference's ``Webservice``: ``state``, ``scoring_uri``, ``swagger_uri``,
    ``run(input)``, ``get_logs()``, ``wait_for_deployment()``, ``update()``,
    ``delete()``. A new Python process finds the same service with
    ``Webservice(workspace, name)``; ``Webservice.list(workspace)`` lists them all.

    Examples
    --------
    >>> svc = Webservice(ws, "diabetes")                     # doctest: +SKIP
    >>> svc.run([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])           # doctest: +SKIP
    [151.3]
    """

    _CLOUD_ONLY: ClassVar[Mapping[str, tuple[str, str]]] = dict.fromkeys(
        ("image", "image_id", "deploy_from_model"), _IMAGES
    )

    def __init__(self, workspace: Workspace | None = None, name: str = "") -> None:
        from nbdeploy.sdk.workspace import get_workspace

        self.workspace = get_workspace(workspace)
        self._record = self.workspace.services.get(name)
        self._session: requests.Session | None = None
        self._token: tuple[str, datetime] | None = None

    @classmethod
    def _from_record(cls, workspace: Workspace, record: ServiceRecord) -> Webservice:
        self = cls.__new__(cls)
        self.workspace = workspace
        self._record = record
        self._session = None
        self._token = None
        return self

    @property
    def name(self) -> str:
        """The service's name."""
        return self._record.name

    @property
    def target(self) -> str:
        """The target it runs on (``"local"``, ``"docker"`` …)."""
        return self._record.target

    @property
    def compute_type(self) -> str:
        """The reference's name for the target (``Local``, ``Docker`` ...)."""
        return self._record.target.upper() if self._record.target else ""

    @property
    def scoring_uri(self) -> str | None:
        """The URL of ``POST /score`` (``None`` until the target gave one)."""
        return self._record.scoring_uri

    @property
    def swagger_uri(self) -> str | None:
        """The URL of the Swagger 2.0 document (``GET /swagger.json``)."""
        return self._record.swagger_uri

    @property
    def models(self) -> tuple[str, ...]:
        """The ``name:version`` of every model the service runs."""
        return self._record.models

    @property
    def record(self) -> ServiceRecord:
        """The last known record (no probe); see :attr:`state` for the live state."""
        return self._record

    @property
    def error(self) -> str | None:
        """Why the service is ``Failed`` (``None`` otherwise)."""
        return self._record.error

    def _target(self) -> Target:
        from nbdeploy.targets import get_target

        return get_target(self._record.target, self.workspace)

    def refresh(self) -> ServiceRecord:
        """Ask the target for the live state and remember it.

        Examples
        --------
        >>> svc.refresh().state                   # doctest: +SKIP
        <ServiceState.HEALTHY: 'Healthy'>
        """
        self._record = self._target().get(self._record.name)
        return self._record

    @property
    def state(self) -> str:
        """The live state: ``Transitioning``, ``Healthy``, ``Unhealthy``, ``Failed`` ..."""
        return str(self.refresh().state.value)

    def reload(self) -> None:
        """Read the service's record and live state again (the reference's ``reload()``).

        Examples
        --------
        >>> service.reload(); service.state      # doctest: +SKIP
        'Healthy'
        """
        self.refresh()

    @staticmethod
    def list(
        workspace: Workspace | None = None, compute_type: str | None = None, **filters: Any
    ) -> list[Webservice]:
        """The services of ``workspace`` (the reference's ``Webservice.list``);
        ``compute_type`` filters by target (``"Local"``, ``"Docker"`` / ``"ACI"`` ...).

        Examples
        --------
        >>> import tempfile
        >>> Webservice.list(tempfile.mkdtemp())
        []
        """
        from nbdeploy.sdk.workspace import get_workspace

        del filters  # image_name, model_name ... of the reference: nothing to filter here
        ws = get_workspace(workspace)
        target = _TARGETS.get(compute_type.upper(), compute_type.lower()) if compute_type else None
        return [Webservice._from_record(ws, r) for r in ws.services.list(target=target)]

    @classmethod
    def deploy_from_image(cls, *args: Any, **kwargs: Any) -> Webservice:
        """The reference's image-based deployment: cloud-only (see the hint)."""
        raise cloud_only("Webservice.deploy_from_image", *_IMAGES)

    def _http(self) -> requests.Session:
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session

    def run(self, input_data: Any, *, timeout: float = 60.0) -> Any:
        """Send ``input_data`` to ``/score`` and return the decoded answer.

        ``input_data`` may be a JSON string, a dict (sent whole when it has a
        ``"data"`` key), a DataFrame, an ndarray or lists (wrapped as ``{"data": ...}``).
        Error answers raise the matching nbdeploy exception with the service's message.
        Key and token auth headers are added for the caller.

        Examples
        --------
        >>> svc.run([[0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.002, 0.02, -0.02]])
        ... # doctest: +SKIP
        [206.1]
        >>> svc.run('{"data": [[1, 2, 3]], "method": "predict_proba"}')  # doctest: +SKIP
        [[0.2, 0.8]]
        """
        import requests

        uri = self._record.scoring_uri
        if not uri:
            raise DeploymentError(f"service {self.name!r} has no scoring URI (state {self.state})")
        body = encode_request(input_data)
        try:
            response = self._http().post(
                uri,
                data=body,
                headers={"Content-Type": "application/json", **self._auth_headers()},
                timeout=timeout,
            )
        except requests.ConnectionError as exc:
            raise TargetUnavailableError(
                f"service {self.name!r} at {uri} does not answer: {exc}",
                hint=f"check nbdeploy.get_service({self.name!r}).state and .get_logs()",
            ) from None
        if response.status_code >= 400:
            error = error_for_status(response.status_code, response.content, uri)
            if error.status_code >= 500 and error.hint is None:
                where = self._failed_line(error.message)
                error.hint = (
                    (f"{where}; " if where else "")
                    + f"the traceback is in the service log: %logs {self.name} "
                    f"(or nbdeploy.get_service({self.name!r}).get_logs())"
                )
            raise error
        return decode_response(response.content, response.headers.get("content-type"))

    @property
    def _auth_path(self) -> Path:
        return auth_file_path(self.workspace.services_dir, self._record.name)

    def _auth(self) -> ServiceAuth | None:
        return read_auth_file(self._auth_path)

    def _require_auth(self, mode: str, what: str) -> ServiceAuth:
        auth = self._auth()
        if auth is None or auth.mode != mode:
            has = "no auth" if auth is None else f"{auth.mode} auth"
            raise InvalidArgumentError(
                f"service {self.name!r} has {has}; {what} needs {mode} auth",
                hint=f"deploy it with auth={mode!r} (or LocalWebservice.deploy_configuration("
                f"{'auth_enabled' if mode == 'key' else 'token_auth_enabled'}=True))",
            )
        return auth

    @property
    def auth_enabled(self) -> bool:
        """Whether ``/score`` needs one of the service's keys (key auth)."""
        auth = self._auth()
        return auth is not None and auth.mode == "key"

    @property
    def token_auth_enabled(self) -> bool:
        """Whether ``/score`` needs a token from :meth:`get_token` (token auth)."""
        auth = self._auth()
        return auth is not None and auth.mode == "token"

    def get_keys(self) -> tuple[str, str]:
        """The service's primary and secondary keys (key auth).

        Send either as ``Authorization: Bearer <key>``. The keys are stored in the
        workspace (``services/<name>/auth.json``, readable by you only); notebook
        output shows them masked.

        Raises
        ------
        InvalidArgumentError
            The service does not use key auth.

        Examples
        --------
        >>> primary, secondary = service.get_keys()  # doctest: +SKIP
        >>> requests.post(service.scoring_uri, json={"data": rows},  # doctest: +SKIP
        ...               headers={"Authorization": f"Bearer {primary}"})
        """
        auth = self._require_auth("key", "get_keys()")
        return auth.primary_key, auth.secondary_key

    def regen_key(self, key: str, set_key: str | None = None) -> None:
        """Replace the ``"Primary"`` or ``"Secondary"`` key (with ``set_key``, or a new
        random one).

        The running service picks the new key up at its next request — no restart;
        the old value of that key stops working then, the other key keeps working.
        Targets whose servers cannot read the workspace's auth file get it again
        through their ``sync_auth(name)`` (the Docker target copies it into the
        container).

        Raises
        ------
        InvalidArgumentError
            Unknown key name, or the service does not use key auth.

        Examples
        --------
        >>> service.regen_key("Secondary")  # doctest: +SKIP
        """
        auth = self._require_auth("key", "regen_key()")
        write_auth_file(self._auth_path, auth.regenerate(key, set_key))
        # Targets whose servers cannot see the workspace copy the file over again.
        sync = getattr(self._target(), "sync_auth", None)
        if callable(sync):
            sync(self._record.name)

    def get_token(self, ttl: float | None = None) -> tuple[str, datetime]:
        """A new short-lived token (token auth) and when to refresh it.

        Parameters
        ----------
        ttl:
            The token's lifetime in seconds (default: the service's, one hour).

        Returns
        -------
        (token, refresh_by)
            Send the token as ``Authorization: Bearer <token>``; get a new one after
            ``refresh_by`` (an aware UTC datetime halfway through its life). An expired
            token is answered with 401 ``token expired at ...``.

        Raises
        ------
        InvalidArgumentError
            The service does not use token auth.

        Examples
        --------
        >>> token, refresh_by = service.get_token()  # doctest: +SKIP
        """
        auth = self._require_auth("token", "get_token()")
        issued = datetime.now(timezone.utc)
        token, expires = sign_token(auth, ttl=ttl, now=issued.timestamp())
        return token, issued + (expires - issued) / 2

    def _auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header :meth:`run` sends (none without auth)."""
        auth = self._auth()
        if auth is None:
            return {}
        if auth.mode == "key":
            return {"Authorization": f"Bearer {auth.primary_key}"}
        now = datetime.now(timezone.utc)
        if self._token is None or now >= self._token[1] - timedelta(seconds=1):
            self._token = self.get_token()
        return {"Authorization": f"Bearer {self._token[0]}"}

    def _failed_line(self, message: str) -> str | None:
        """``score.py line 6, in run: raise ValueError(...)``: where the request whose
        500 answer says ``message`` failed in the user's code, from the service log."""
        match = re.search(r"request id ([0-9a-f]+)", message)
        if match is None:
            return None
        try:
            log = self.get_logs(tail=400).splitlines()
        except NbdeployError:
            return None
        starts = [i for i, line in enumerate(log) if match.group(1) in line]
        if not starts:
            return None
        where = None
        for i in range(starts[-1] + 1, len(log)):
            frame = re.match(r'  File "([^"]+)", line (\d+), in (\S+)', log[i])
            if frame:
                code = log[i + 1].strip() if i + 1 < len(log) else ""
                where = f"{frame[1]} line {frame[2]}, in {frame[3]}: {code}".rstrip(": ")
            elif not log[i].startswith(" ") and not log[i].startswith("Traceback"):
                break
        return where

    def get_logs(self, tail: int | None = None) -> str:
        """The service's log: one line per request, what ``init()`` and ``run()``
        printed or logged, tracebacks of failed requests and of ``init()``.

        The servers' machine-readable status lines (``NBDEPLOY-READY`` ...), which
        the targets read, are left out.

        Examples
        --------
        >>> print(svc.get_logs(tail=20))          # doctest: +SKIP
        """
        text = self._target().logs(self._record.name, tail=tail)
        return "\n".join(line for line in text.splitlines() if not line.startswith("NBDEPLOY-"))

    def wait_for_deployment(self, show_output: bool = False, timeout: float | None = None) -> str:
        """Block until the service reaches a final state; return it.

        Raises :class:`~nbdeploy.exceptions.DeploymentError` when it ends ``Failed``.

        Examples
        --------
        >>> svc.wait_for_deployment(show_output=True)   # doctest: +SKIP
        'Healthy'
        """
        from nbdeploy import config

        limit = float(config.resolve("deploy_timeout", timeout))
        self._record = self._target().wait(self._record.name, limit, show_output)
        if self._record.state is ServiceState.FAILED:
            raise DeploymentError(
                f"service {self.name!r} failed: {self._record.error}",
                hint="see service.get_logs() for the full output",
            )
        return str(self._record.state.value)

    def update(
        self,
        models: Sequence[Any] | None = None,
        inference_config: Any = None,
        deployment_config: Any = None,
        *,
        score: str | None = None,
        show_output: bool = False,
        image: Any = None,
    ) -> Webservice:
        """Switch the service to new models, script, environment or settings.

        The service keeps answering during the switch where the target allows it; if
        the new version fails to start, the old one keeps serving and this raises.

        Examples
        --------
        >>> svc.update(models=["diabetes:2"]).state      # doctest: +SKIP
        'Healthy'
        >>> svc.update(score="score_v2.py")              # doctest: +SKIP
        Webservice(name='diabetes-svc', target='local', state='Healthy')
        """
        from nbdeploy.workflows.update import update_service

        if image is not None:
            raise cloud_only("Webservice.update(image=...)", *_IMAGES)
        self._record = update_service(
            self.workspace,
            self._record,
            models=models,
            inference_config=inference_config,
            deployment_config=deployment_config,
            score=score,
            show_output=show_output,
        )
        return self

    @property
    def traffic(self) -> dict[str, int]:
        """``{version: percent}`` of the versions behind the endpoint; empty while the
        service has a single version.

        Examples
        --------
        >>> svc.traffic                                           # doctest: +SKIP
        {'v1': 90, 'v2': 10}
        """
        from nbdeploy.workflows.traffic import traffic

        return traffic(self.workspace, self._record)

    def add_version(
        self,
        version: str,
        models: Any = None,
        *,
        score: Any = None,
        inference_config: Any = None,
        environment: Any = None,
        source_directory: Any = None,
        weight: int = 0,
        current_name: str = "v1",
        show_output: bool = False,
    ) -> Webservice:
        """Deploy another version behind this service's endpoint with ``weight`` % of
        the traffic (the other versions' weights shrink to make room).

        ``models`` and ``score`` default to those of the primary version. The first
        call names the running version ``current_name`` and puts a router on the
        service's port (same scoring URI, no request dropped). Answers carry the
        header ``x-nbdeploy-version`` naming the version that served them.

        Examples
        --------
        >>> svc.add_version("v2", models="churn:2", weight=10)   # doctest: +SKIP
        >>> svc.traffic                                           # doctest: +SKIP
        {'v1': 90, 'v2': 10}
        """
        from nbdeploy.workflows.traffic import add_version

        self._record = add_version(
            self.workspace,
            self._record,
            version,
            models,
            score=score,
            inference_config=inference_config,
            environment=environment,
            source_directory=source_directory,
            weight=weight,
            current_name=current_name,
            show_output=show_output,
        )
        return self

    def set_traffic(self, weights: Any) -> Webservice:
        """Shift traffic between the versions at runtime: percentages adding up to 100
        (versions left out get 0). Holds for every request sent after it returns.

        Examples
        --------
        >>> svc.set_traffic({"v1": 50, "v2": 50})                 # doctest: +SKIP
        """
        from nbdeploy.workflows.traffic import set_traffic

        self._record = set_traffic(self.workspace, self._record, weights)
        return self

    def remove_version(self, version: str) -> Webservice:
        """Stop a version that gets no traffic (weight 0).

        Examples
        --------
        >>> svc.set_traffic({"v2": 100}).remove_version("v1")     # doctest: +SKIP
        """
        from nbdeploy.workflows.traffic import remove_version

        self._record = remove_version(self.workspace, self._record, version)
        return self

    def rollback(self) -> Webservice:
        """Send all traffic back to the primary version (the one that served before
        versions were added) and stop the others — one call.

        Examples
        --------
        >>> svc.rollback().traffic                                # doctest: +SKIP
        {'v1': 100}
        """
        from nbdeploy.workflows.traffic import rollback

        self._record = rollback(self.workspace, self._record)
        return self

    def delete(self, *, remove_image: bool = False) -> None:
        """Stop the service and forget it. Deleting twice is fine.

        ``remove_image`` also removes the service's container image (targets that
        build one, such as Docker; elsewhere there is none to remove).

        Examples
        --------
        >>> svc.delete()                          # doctest: +SKIP
        >>> [s.name for s in nbdeploy.services()] # doctest: +SKIP
        []
        """
        from nbdeploy.workflows.deploy import delete_service

        delete_service(self.workspace, self._record, remove_image=remove_image)
        self._token = None
        if self._session is not None:
            self._session.close()
            self._session = None

    def manifests(self, path: str | os.PathLike[str] | None = None) -> Any:
        """The service's Kubernetes objects (Kubernetes services only), as applied but
        without the Secret's keys; with ``path``, also written there as YAML that
        ``kubectl apply -f`` accepts (a ``.yaml`` file, or a folder of files).

        Examples
        --------
        >>> print(svc.manifests())                     # doctest: +SKIP
        >>> svc.manifests("k8s/")                      # doctest: +SKIP
        """
        export = getattr(self._target(), "manifests", None)
        if not callable(export):
            raise InvalidArgumentError(
                f"service {self.name!r} runs on target {self.target!r}, which has no manifests",
                hint="deploy it with AksWebservice.deploy_configuration(...), or write "
                "manifests for a model with `nbdeploy package MODEL --kubernetes DIR`",
            )
        result = export(self._record.name)
        if path is not None:
            result.save(path)
        return result

    def __repr__(self) -> str:
        r = self._record
        return f"Webservice(name={r.name!r}, target={r.target!r}, state={r.state.value!r})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """The service card (drawn by :mod:`nbdeploy.display.cards`)."""
        return mimebundle("service", self, include, exclude)

    def serialize(self) -> dict[str, Any]:
        """The record as a plain dict (the reference's ``serialize()``).

        Examples
        --------
        >>> svc.serialize()["state"]              # doctest: +SKIP
        'Healthy'
        """
        return self._record.to_dict()


#: The reference's compute types -> nbdeploy targets.
_TARGETS = {"LOCAL": "local", "ACI": "docker", "DOCKER": "docker"}


class LocalWebservice(Webservice):
    """A service on this machine; the reference's ``LocalWebservice``.

    Examples
    --------
    >>> LocalWebservice.deploy_configuration(port=8890).port
    8890
    """

    @staticmethod
    def deploy_configuration(
        port: int | None = None,
        host: str | None = None,
        *,
        warm_start: bool | None = None,
        auth_enabled: bool = False,
        token_auth_enabled: bool = False,
        cors: Any = None,
        replicas: int | str = 1,
        replica_max_concurrent_requests: int | None = None,
        max_request_wait_time: int | None = None,
        scoring_timeout_ms: int | None = None,
    ) -> Any:
        """The local target's deployment configuration (``port=None`` picks a free one).

        ``auth_enabled`` turns on key auth, ``token_auth_enabled`` token auth (not
        both; local services default to none); ``cors`` lists the browser origins
        allowed to call the service (a list, or a dict of
        :class:`~nbdeploy.core.auth.CorsPolicy` settings). ``replicas`` server
        processes (``"auto"``: one per usable core) share the port; the last three
        are each replica's limits, with the reference's names (see
        :class:`~nbdeploy.targets.local.LocalConfig`).

        Examples
        --------
        >>> cfg = LocalWebservice.deploy_configuration(port=8890, auth_enabled=True)
        >>> cfg.auth_enabled
        True
        """
        from nbdeploy.workflows.deploy import local_configuration

        return local_configuration(
            port,
            host,
            warm_start,
            auth_enabled=auth_enabled,
            token_auth_enabled=token_auth_enabled,
            cors=cors,
            replicas=replicas,
            replica_max_concurrent_requests=replica_max_concurrent_requests,
            max_request_wait_time=max_request_wait_time,
            scoring_timeout_ms=scoring_timeout_ms,
        )


class DockerWebservice(Webservice):
    """A service in a Docker container; the Docker target's configuration.

    Examples
    --------
    >>> cfg = DockerWebservice.deploy_configuration(cpu_cores=0.5, memory_gb=1)
    >>> cfg.target, cfg.cpu_cores, cfg.auth_enabled
    ('docker', 0.5, True)
    """

    @staticmethod
    def deploy_configuration(
        port: int | None = None,
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        base_image: str | None = None,
        engine: str | None = None,
        auth_enabled: bool = True,
        *,
        token_auth_enabled: bool = False,
        host: str = "127.0.0.1",
        network: str = "host",
        offline: bool = True,
        cors: Any = None,
        timeout: float = 600.0,
    ) -> Any:
        """The Docker target's deployment configuration
        (:class:`~nbdeploy.targets.docker.DockerConfig`).

        ``engine`` is any Docker engine URL (``unix://``, ``tcp://``, ``ssh://``;
        default ``$DOCKER_HOST``); key auth is on by default, as for every remote
        target (``token_auth_enabled=True`` with ``auth_enabled=False`` for tokens).

        Examples
        --------
        >>> cfg = DockerWebservice.deploy_configuration(port=6789, memory_gb=0.5)
        >>> cfg.port, cfg.memory_gb
        (6789, 0.5)
        """
        from nbdeploy import config
        from nbdeploy.targets.docker.config import DockerConfig

        base_image = config.resolve("base_image", base_image) or None
        return DockerConfig(
            port=0 if port is None else port,
            host=host,
            cpu_cores=cpu_cores,
            memory_gb=memory_gb,
            base_image=base_image,
            engine=engine,
            network=network,
            offline=offline,
            auth_enabled=auth_enabled,
            token_auth_enabled=token_auth_enabled,
            cors=cors,
            timeout=timeout,
        )


class AciWebservice(DockerWebservice):
    """Azure Container Instances in the reference; here a container on a Docker engine.

    Code written for Azure ML keeps working: ``AciWebservice.deploy_configuration(
    cpu_cores=1, memory_gb=1, auth_enabled=True)`` is a Docker deployment configuration.

    Examples
    --------
    >>> AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1).memory_gb
    1.0
    """

    @staticmethod
    def deploy_configuration(  # type: ignore[override]
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        auth_enabled: bool = True,
        *,
        token_auth_enabled: bool = False,
        port: int | None = None,
        engine: str | None = None,
        base_image: str | None = None,
        cors: Any = None,
    ) -> Any:
        """The reference's ACI settings mapped onto the Docker target.

        Examples
        --------
        >>> AciWebservice.deploy_configuration(cpu_cores=1, auth_enabled=False).auth_enabled
        False
        """
        return DockerWebservice.deploy_configuration(
            port=port,
            cpu_cores=cpu_cores,
            memory_gb=memory_gb,
            base_image=base_image,
            engine=engine,
            auth_enabled=auth_enabled,
            token_auth_enabled=token_auth_enabled,
            cors=cors,
        )


class RayWebservice(Webservice):
    """A service as a Ray Serve application: the workspace's embedded Ray cluster by
    default, or an existing one (target ``ray``).

    Examples
    --------
    >>> cfg = RayWebservice.deploy_configuration(num_replicas=2)
    >>> cfg.target, cfg.replica_range, cfg.auth_enabled
    ('ray', (2, 2), True)
    """

    @staticmethod
    def deploy_configuration(**settings: Any) -> Any:
        """The Ray target's deployment configuration
        (:class:`~nbdeploy.targets.ray.config.RayConfig`, whose docstring says what
        each setting becomes): ``address``, ``num_replicas`` or ``autoscaling``,
        ``ray_actor_options``, ``max_ongoing_requests``, ``route_prefix``, ``auth``
        and ``cors`` settings, and the sizing helper's ``target_rps`` /
        ``request_seconds``.

        Examples
        --------
        >>> RayWebservice.deploy_configuration(
        ...     autoscaling=True, target_rps=100, request_seconds=0.05).replica_range
        (1, 8)
        """
        from nbdeploy.targets.ray.config import RayConfig

        return RayConfig(**settings)


class AksWebservice(Webservice):
    """Azure Kubernetes Service in the reference; here any Kubernetes cluster (EKS,
    GKE, AKS, OpenShift, kind, k3d, minikube) reached through your kubeconfig.

    Examples
    --------
    >>> cfg = AksWebservice.deploy_configuration(cpu_cores=1, memory_gb=1)
    >>> cfg.target, cfg.cpu_cores, cfg.auth_enabled, cfg.autoscaling
    ('kubernetes', 1.0, True, True)
    """

    @staticmethod
    def deploy_configuration(
        autoscale_enabled: bool | None = None,
        autoscale_min_replicas: int | None = None,
        autoscale_max_replicas: int | None = None,
        autoscale_refresh_seconds: int | None = None,
        autoscale_target_utilization: int | None = None,
        collect_model_data: bool | None = None,
        auth_enabled: bool | None = None,
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        enable_app_insights: bool | None = None,
        scoring_timeout_ms: int | None = None,
        replica_max_concurrent_requests: int | None = None,
        max_request_wait_time: int | None = None,
        num_replicas: int | None = None,
        primary_key: str | None = None,
        secondary_key: str | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        gpu_cores: int | None = None,
        period_seconds: int | None = None,
        initial_delay_seconds: int | None = None,
        timeout_seconds: int | None = None,
        success_threshold: int | None = None,
        failure_threshold: int | None = None,
        namespace: str | None = None,
        token_auth_enabled: bool | None = None,
        compute_target_name: str | None = None,
        cpu_cores_limit: float | None = None,
        memory_gb_limit: float | None = None,
        blobfuse_enabled: bool | None = None,
        **cluster: Any,
    ) -> Any:
        """The reference's AKS settings as a Kubernetes configuration
        (:class:`~nbdeploy.targets.kubernetes.config.KubernetesConfig`, whose
        docstring says what each becomes). ``None`` keeps the reference's default;
        ``compute_target_name`` names the kubeconfig context. Keyword arguments beyond
        the reference's (``context=``, ``image=``, ``registry=``, ``load_into=``,
        ``service_type=``, ``public_url=``, ``target_rps=`` ...) are the cluster's.

        Examples
        --------
        >>> AksWebservice.deploy_configuration(autoscale_enabled=True,
        ...     autoscale_target_utilization=30, autoscale_min_replicas=1,
        ...     autoscale_max_replicas=4).replica_range
        (1, 4)
        """
        from nbdeploy.targets.kubernetes.config import from_reference

        settings = {k: v for k, v in locals().items() if k not in {"cluster", "from_reference"}}
        return from_reference(**settings, **cluster)
