"""The Docker target's :class:`DockerTarget` (see :mod:`nbdeploy.targets.docker`)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from nbdeploy.core.bundle import Bundle
from nbdeploy.core.package import DEFAULT_PORT
from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.exceptions import (
    DeploymentError,
    InvalidArgumentError,
    NbdeployError,
)
from nbdeploy.targets.base import Target, bundle_folder
from nbdeploy.targets.probe import PROBE_TIMEOUT, probe
from nbdeploy.targets.process.processes import check_port_free
from nbdeploy.targets.records import conclude_wait, settled, uri
from nbdeploy.targets.rollout import redeploy

from .access import access, server_settings
from .config import DockerConfig
from .containers import (
    STOP_TIMEOUT,
    auth_tar,
    await_container,
    exit_reason,
    probe_host,
    remove_container,
    run_container,
)
from .engine import (
    DockerClient,
    check_resources,
    connect,
    docker_module,
    engine_host,
    engine_url,
    find_container,
    free_port,
)
from .generations import DockerRollout
from .images import ensure_image

__all__ = ["DockerTarget"]


class DockerTarget(Target):
    """Services as Docker containers (see :mod:`nbdeploy.targets.docker`).

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> target = DockerTarget(Workspace(tempfile.mkdtemp()))
    >>> target.list()
    []
    >>> target.delete("nothing-here")  # idempotent
    """

    name = "docker"
    config_class = DockerConfig

    @property
    def _services_dir(self) -> Path:
        return Path(self.workspace.services_dir)

    def _build_log(self, name: str) -> Path:
        return self._service_dir(name) / "build.log"

    def sync_auth(self, name: str) -> None:
        """Copy the service's auth file into its running container(s) again — after
        ``regen_key`` — so the server picks up the new secrets at the next request.

        Examples
        --------
        >>> target.sync_auth("diabetes")  # doctest: +SKIP
        """
        record = self._stored(name)
        cfg = DockerConfig.from_record(record)
        if not record.bundle_path:
            return
        _, path = access(self._services_dir, name, Bundle.load(record.bundle_path), cfg)
        if path is None:
            return
        with connect(self._engine(record)) as client:
            for key in ("container", "next_container"):
                container = find_container(client, record.config.get(key))
                if container is not None:
                    container.put_archive("/run", auth_tar(path.read_bytes()))

    def _engine(self, record: ServiceRecord) -> str:
        return str(record.config.get("engine_url") or engine_url(record.config.get("engine")))

    def _deploy(
        self,
        name: str,
        path: Path,
        cfg: Any,
        existing: ServiceRecord | None,
        *,
        wait: bool,
        show_output: bool,
    ) -> ServiceRecord:
        """Build (or reuse) the image of the bundle and run it as service ``name``.

        Raises
        ------
        TargetUnavailableError
            The Docker engine cannot be reached (or the SDK is missing).
        DeploymentError
            The image build failed, the engine cannot place the container
            (``Unschedulable``), or the service failed or timed out (``Failed``).

        Examples
        --------
        >>> target.deploy("diabetes", bundle, DockerConfig(memory_gb=1))  # doctest: +SKIP
        ServiceRecord(name='diabetes', target='docker', state='Healthy', ...)
        """
        loaded = Bundle.load(path)
        store = self.workspace.services
        url = engine_url(cfg.engine)
        record = ServiceRecord(
            name,
            self.name,
            ServiceState.TRANSITIONING,
            models=tuple(m.ref for m in loaded.models),
            bundle_path=str(path),
            config={**cfg.to_dict(), "engine_url": url},
        )
        if existing is not None:
            record = record.replace(created=existing.created)
        deadline = time.monotonic() + float(cfg.timeout)
        with connect(url) as client:
            if existing is not None:
                self._remove_containers(client, existing)
            store.put(record)
            if show_output:
                print(f"{name}: {record.state.value}", flush=True)
            port = self._place(client, record, cfg, url)
            started = self._start_first(client, record, loaded, cfg, port, show_output)
            uri_host = probe_host(cfg, url)
            record = store.put(
                record.replace(
                    scoring_uri=uri(uri_host, port, "/score"),
                    swagger_uri=uri(uri_host, port, "/swagger.json"),
                    config={**record.config, "port": port, **started},
                )
            )
            if not wait:
                return record
            remaining = max(deadline - time.monotonic(), 1.0)
            return self._wait_record(client, record, remaining, show_output)

    def _place(
        self, client: DockerClient, record: ServiceRecord, cfg: DockerConfig, url: str
    ) -> int:
        """The port the first container serves on, once the engine has the CPUs and
        memory asked for (else the record says ``Unschedulable``) and a port asked
        for on this machine is free (else the record is removed)."""
        store, name = self.workspace.services, record.name
        problem = check_resources(client, cfg.cpu_cores, cfg.memory_gb)
        if problem is not None:
            store.put(record.with_state(ServiceState.UNSCHEDULABLE, problem))
            raise DeploymentError(
                f"Docker service {name!r} cannot be placed: {problem}",
                hint="ask for fewer CPUs or less memory",
            )
        host = cfg.bind_host
        local_engine = engine_host(url) is None
        if (
            cfg.port
            and local_engine
            and not check_port_free("127.0.0.1" if host == "0.0.0.0" else host, cfg.port)
        ):
            store.delete(name)
            raise InvalidArgumentError(
                f"port {cfg.port} on {host} is already in use",
                hint="pick another port, or port=0 for a free one",
            )
        return cfg.port or (free_port(host) if local_engine else DEFAULT_PORT)

    def _start_first(
        self,
        client: DockerClient,
        record: ServiceRecord,
        loaded: Bundle,
        cfg: DockerConfig,
        port: int,
        show_output: bool,
    ) -> dict[str, Any]:
        """Build (or reuse) the image and start the first container; the record's
        ``config`` entries naming them. A failure is recorded as ``Failed``."""
        name, store = record.name, self.workspace.services
        try:
            mode, auth = access(self._services_dir, name, loaded, cfg)
            image = ensure_image(
                client,
                self._service_dir(name),
                name,
                loaded,
                settings=server_settings(mode, loaded, cfg),
                base_image=cfg.base_image,
                offline=cfg.offline,
                show_output=show_output,
            )
            container = run_container(
                client,
                Path(self.workspace.path),
                name,
                image.tag,
                cfg,
                port,
                record.generation,
                auth=auth,
                handover=False,
            )
        except NbdeployError as exc:
            store.put(record.with_state(ServiceState.FAILED, exc.message))
            raise
        except Exception as exc:
            store.put(record.with_state(ServiceState.FAILED, str(exc)))
            if isinstance(exc, OSError):
                raise
            raise DeploymentError(f"Docker service {name!r} could not start: {exc}") from None
        return {
            "container": container.id,
            "container_name": container.name,
            "image": image.tag,
            "image_id": image.id,
            "image_size_bytes": image.size_bytes,
            "image_reused": image.reused,
            "auth_enabled": mode == "key",
            "token_auth_enabled": mode == "token",
        }

    def wait(
        self, name: str, timeout: float | None = None, show_output: bool = False
    ) -> ServiceRecord:
        """Block until service ``name`` leaves ``Transitioning``; its record.

        Raises
        ------
        DeploymentError
            The service failed or timed out (the record says why).

        Examples
        --------
        >>> target.wait("diabetes", 60, show_output=True)  # doctest: +SKIP
        """
        record = self._stored(name)
        with connect(self._engine(record)) as client:
            return self._wait_record(client, record, timeout, show_output)

    def _wait_record(
        self,
        client: DockerClient,
        record: ServiceRecord,
        timeout: float | None,
        show_output: bool,
    ) -> ServiceRecord:
        name = record.name
        done = settled(record, lambda r: self._refresh_with(client, r), show_output)
        if done is not None:
            return done
        cfg = DockerConfig.from_record(record)
        limit = float(timeout if timeout is not None else cfg.timeout)
        container = find_container(client, record.config.get("container"))
        if container is None:
            reason = "its container no longer exists"
            record = self.workspace.services.put(record.with_state(ServiceState.FAILED, reason))
            raise DeploymentError(f"service {name!r} failed: {reason}")
        host = probe_host(cfg, self._engine(record))
        port = int(record.config["port"])
        deadline = time.monotonic() + limit
        outcome = await_container(
            container, host, port, deadline, show_output, cfg.memory_gb, ready_line=False
        )

        def stop() -> None:
            if outcome.reason is None:  # timed out while running: stop it
                try:
                    container.stop(timeout=STOP_TIMEOUT)
                except docker_module().errors.NotFound:
                    pass  # gone already

        return conclude_wait(self, record, outcome, limit, show_output, stop)

    def update(
        self,
        name: str,
        bundle: Any,
        config: Any = None,
        *,
        wait: bool = True,
        show_output: bool = False,
    ) -> ServiceRecord:
        """Switch service ``name`` to ``bundle`` (and ``config``).

        See :mod:`nbdeploy.targets.docker.generations`: with host networking the
        scoring URI keeps answering; with bridge networking the old container stops
        first and is started again if the new one fails.

        Raises
        ------
        DeploymentError
            The new version failed; the message says whether the old one keeps serving
            (state unchanged) or could not be started again (``Failed``, with why).

        Examples
        --------
        >>> target.update("diabetes", "bundles/diabetes/2")  # doctest: +SKIP
        """
        del wait  # the switch completes in this call
        record = self.get(name)
        path = bundle_folder(bundle)
        current = DockerConfig.from_record(record)
        cfg = DockerConfig.coerce(config) if config is not None else current
        if cfg.port == 0:
            cfg = DockerConfig.from_dict({**cfg.to_dict(), "port": int(record.config["port"])})
        url = self._engine(record)
        if engine_url(cfg.engine) != url:
            raise InvalidArgumentError(
                f"service {name!r} runs on the Docker engine {url}; an update cannot move it",
                hint="delete the service and deploy it on the other engine",
            )
        with connect(url) as client:
            old = find_container(client, record.config.get("container"))
            if old is None or record.state is ServiceState.FAILED:
                return redeploy(
                    self,
                    record,
                    path,
                    cfg,
                    clear=lambda: self._remove_containers(client, record),
                    show_output=show_output,
                )
            rollout = DockerRollout(self, record, path, cfg, client, url, old, show_output)
            return rollout.run()

    def logs(self, name: str, tail: int | None = None) -> str:
        """The container's output (server log incl. tracebacks; last ``tail`` lines);
        the image build's output when there is no container.

        Examples
        --------
        >>> print(target.logs("diabetes", tail=5))  # doctest: +SKIP
        """
        record = self._stored(name)
        with connect(self._engine(record)) as client:
            container = find_container(client, record.config.get("container"))
            if container is not None:
                raw = container.logs(tail="all" if tail is None else int(tail))
                return str(raw.decode("utf-8", "replace"))
        build_log = self._build_log(name)
        if build_log.is_file():
            lines = build_log.read_text(encoding="utf-8", errors="replace").splitlines()
            return "\n".join(lines if tail is None else lines[-tail:])
        return ""

    def delete(self, name: str, *, remove_image: bool = False) -> None:
        """Remove the service's container(s) and record (and, with ``remove_image``,
        its image). Deleting a service that does not exist does nothing.

        Examples
        --------
        >>> target.delete("diabetes", remove_image=True)  # doctest: +SKIP
        """
        self._delete(name, lambda record: self._stop(record, remove_image=remove_image))

    def _stop(self, record: ServiceRecord, *, remove_image: bool = False) -> None:
        with connect(self._engine(record)) as client:
            self._remove_containers(client, record)
            image = record.config.get("image")
            if remove_image and image:
                with contextlib.suppress(docker_module().errors.ImageNotFound):
                    client.images.remove(str(image), force=True)

    def _remove_containers(self, client: DockerClient, record: ServiceRecord) -> None:
        for key in ("next_container", "container"):
            container = find_container(client, record.config.get(key))
            if container is not None:
                remove_container(container)

    def _refresh(self, record: ServiceRecord) -> ServiceRecord:
        if record.state is ServiceState.FAILED or not record.config.get("container"):
            return record
        with connect(self._engine(record)) as client:
            return self._refresh_with(client, record)

    def _refresh_with(self, client: DockerClient, record: ServiceRecord) -> ServiceRecord:
        """The record with its live state (stored when it changed)."""
        if record.state is ServiceState.FAILED or not record.config.get("container"):
            return record
        cfg = DockerConfig.from_record(record)
        container = find_container(client, record.config.get("container"))
        if container is None:
            return self.workspace.services.put(
                record.with_state(ServiceState.FAILED, "its container no longer exists")
            )
        status = container.attrs.get("State", {}).get("Status")
        if status in {"exited", "dead"}:
            reason = exit_reason(container, cfg.memory_gb)
            return self.workspace.services.put(record.with_state(ServiceState.FAILED, reason))
        host = probe_host(cfg, self._engine(record))
        answer = probe(host, int(record.config["port"])) if status == "running" else None
        if answer == 200:
            state, error = ServiceState.HEALTHY, None
        elif record.state is ServiceState.TRANSITIONING or status in {"created", "restarting"}:
            return record
        else:
            state = ServiceState.UNHEALTHY
            error = (
                f"GET / answered {answer}"
                if answer is not None
                else f"GET / did not answer within {PROBE_TIMEOUT:g} s (container {status})"
            )
        if state is record.state and error == record.error:
            return record
        return self.workspace.services.put(record.with_state(state, error))
