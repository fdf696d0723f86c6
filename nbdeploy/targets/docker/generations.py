"""The Docker target's primitives of the update algorithm (:mod:`nbdeploy.targets.rollout`).

With host networking on an unchanged address, the new container joins the port
(``SO_REUSEPORT``) once its ``init()`` succeeded and the old one is then stopped: the
scoring URI keeps answering. With bridge networking the published port must be free,
so the old container is stopped first (:meth:`DockerRollout.make_room`) and started
again when the new one fails — if that restart fails too, the service is ``Failed``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nbdeploy.core.bundle import Bundle
from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.exceptions import DeploymentError
from nbdeploy.targets.base import Target
from nbdeploy.targets.records import Outcome, uri
from nbdeploy.targets.rollout import Rollout

from .access import access, server_settings
from .config import DockerConfig
from .containers import (
    STOP_TIMEOUT,
    await_container,
    probe_host,
    remove_container,
    run_container,
)
from .engine import Container, DockerClient, check_resources
from .images import BuiltImage, ensure_image

__all__ = ["DockerRollout"]


class DockerRollout(Rollout):
    """One update of a Docker service whose container ``old`` runs.

    Examples
    --------
    >>> DockerRollout(target, record, path, cfg, client, url, old, False).run()  # doctest: +SKIP
    """

    output_hint = "see the new container's output with"

    def __init__(
        self,
        target: Target,
        record: ServiceRecord,
        bundle: Path,
        config: DockerConfig,
        client: DockerClient,
        url: str,
        old: Container,
        show_output: bool,
    ) -> None:
        super().__init__(
            target, record, bundle, timeout=float(config.timeout), show_output=show_output
        )
        self.config = config
        self.current = DockerConfig.from_record(record)
        self.client = client
        self.old = old
        self.loaded = Bundle.load(bundle)
        self.url = url
        self.host = probe_host(config, self.url)
        self.new: Container | None = None
        self.mode: str | None = None
        self.auth: Path | None = None
        self.image: BuiltImage | None = None

    @property
    def same_address(self) -> bool:
        """Host networking on the running address: the new container joins the port."""
        cfg = self.config
        return (
            cfg.network == self.current.network == "host"
            and cfg.bind_host == self.current.bind_host
            and cfg.port == int(self.record.config["port"])
        )

    def prepare(self) -> None:
        cfg = self.config
        problem = check_resources(self.client, cfg.cpu_cores, cfg.memory_gb)
        if problem is not None:
            raise DeploymentError(
                f"update of Docker service {self.name!r} cannot be placed: {problem}; "
                "the previous version keeps serving",
                hint="ask for fewer CPUs or less memory",
            )
        services_dir = Path(self.target.workspace.services_dir)
        self.mode, self.auth = access(services_dir, self.name, self.loaded, cfg)
        self.image = ensure_image(
            self.client,
            services_dir / self.name,
            self.name,
            self.loaded,
            settings=server_settings(self.mode, self.loaded, cfg),
            base_image=cfg.base_image,
            offline=cfg.offline,
            show_output=self.show_output,
        )

    def make_room(self) -> bool:
        if self.config.network == "bridge" == self.current.network and not self.same_address:
            self.old.stop(timeout=STOP_TIMEOUT)  # the published port must be free
            return True
        return False

    def start(self) -> None:
        assert self.image is not None  # prepare() ran
        self.new = run_container(
            self.client,
            Path(self.target.workspace.path),
            self.name,
            self.image.tag,
            self.config,
            self.config.port,
            self.generation,
            auth=self.auth,
            handover=self.same_address,
        )
        config = {**self.record.config, "next_container": self.new.id}
        self.target.workspace.services.put(self.record.replace(config=config))

    def wait_ready(self) -> Outcome:
        assert self.new is not None  # start() ran
        deadline = time.monotonic() + self.timeout
        return await_container(
            self.new,
            self.host,
            self.config.port,
            deadline,
            self.show_output,
            self.config.memory_gb,
            ready_line=self.same_address,
        )

    def discard_new(self) -> None:
        config = {k: v for k, v in self.record.config.items() if k != "next_container"}
        self.target.workspace.services.put(self.record.replace(config=config))
        if self.new is not None:
            self.new.remove(force=True)

    def restore_old(self) -> None:
        """Start the old container again and wait until it answers."""
        self.old.start()
        deadline = time.monotonic() + float(self.current.timeout)
        outcome = await_container(
            self.old,
            probe_host(self.current, self.url),
            int(self.record.config["port"]),
            deadline,
            False,
            self.current.memory_gb,
            ready_line=False,
        )
        if not outcome.ready:
            raise DeploymentError(
                outcome.reason or f"it did not answer within {self.current.timeout:g} s"
            )

    def stop_old(self) -> None:
        remove_container(self.old)

    def commit(self) -> ServiceRecord:
        assert self.new is not None  # start() ran
        assert self.image is not None
        port, image = self.config.port, self.image
        return self.target.workspace.services.put(
            self.record.replace(
                state=ServiceState.HEALTHY,
                error=None,
                models=tuple(m.ref for m in self.loaded.models),
                bundle_path=str(self.bundle),
                scoring_uri=uri(self.host, port, "/score"),
                swagger_uri=uri(self.host, port, "/swagger.json"),
                generation=self.generation,
                config=self._config(self.new, image),
            )
        )

    def _config(self, container: Container, image: BuiltImage) -> dict[str, Any]:
        return {
            **self.config.to_dict(),
            "engine_url": self.url,
            "port": self.config.port,
            "container": container.id,
            "container_name": container.name,
            "image": image.tag,
            "image_id": image.id,
            "image_size_bytes": image.size_bytes,
            "image_reused": image.reused,
            "auth_enabled": self.mode == "key",
            "token_auth_enabled": self.mode == "token",
        }
