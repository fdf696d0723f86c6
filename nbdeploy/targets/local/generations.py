"""The local target's primitives of the update algorithm (:mod:`nbdeploy.targets.rollout`).

The new generation serves on the running generation's own listening socket (same
address) — both accept from one queue until the old one is retired — or binds the new
address. No traffic switch is needed: the new servers take connections once ready.
"""

from __future__ import annotations

import builtins
from pathlib import Path

from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.exceptions import InvalidArgumentError
from nbdeploy.targets.base import Target
from nbdeploy.targets.process.processes import LogFollower, check_port_free
from nbdeploy.targets.records import Outcome, uri
from nbdeploy.targets.rollout import Rollout

from .bundles import bundle_models, bundle_settings
from .config import LocalConfig
from .replicas import Replicas
from .servers import Server, servers_config, servers_of

__all__ = ["LocalRollout"]


class LocalRollout(Rollout):
    """One update of a local service to ``bundle`` with ``config``.

    Examples
    --------
    >>> LocalRollout(target, record, path, cfg, show_output=False).run()  # doctest: +SKIP
    """

    def __init__(
        self,
        target: Target,
        record: ServiceRecord,
        bundle: Path,
        config: LocalConfig,
        *,
        show_output: bool,
    ) -> None:
        super().__init__(target, record, bundle, timeout=config.timeout, show_output=show_output)
        self.config = config
        self.current = LocalConfig.from_record(record)
        self.replicas = Replicas(target.workspace)
        self.old = servers_of(record)
        self.new: builtins.list[Server] = []
        self.port = config.port
        self.mode = "warm"
        self.outcome = Outcome(False)
        self.models = bundle_models(bundle)

    @property
    def same_address(self) -> bool:
        cfg, current = self.config, self.current
        return cfg.bind_host == current.bind_host and cfg.port == current.port

    def prepare(self) -> None:
        cfg = self.config
        if not self.same_address and cfg.port and not check_port_free(cfg.bind_host, cfg.port):
            raise InvalidArgumentError(
                f"port {cfg.port} on {cfg.bind_host} is already in use",
                hint="pick another port, or keep the service's port",
            )

    def start(self) -> None:
        """Start every replica of the new generation (on the running generation's
        socket at the same address) and wait for them: the local target starts
        replicas in waves, each wave waiting for the one before."""
        live = [s for s in self.old if s.process.alive() and s.handover]
        take_over = live[0].handover if self.same_address and live else None
        self.new, self.port, self.mode, self.outcome = self.replicas.start(
            self.name,
            self.bundle,
            self.config,
            self.config.port,
            self.config.replica_count,
            self.show_output,
            take_over=take_over,
            on_spawn=self._remember,
        )

    def _remember(self, started: builtins.list[Server]) -> None:
        # Recorded before waiting, so a delete from a kernel that died here stops them.
        nexts = [s.process.to_dict() for s in started]
        store = self.target.workspace.services
        store.put(self.record.replace(config={**self.record.config, "next": nexts}))

    def wait_ready(self) -> Outcome:
        return self.outcome

    def stop_old(self) -> None:
        # It answers what it accepted, given the time its settings allow a request.
        self.replicas.retire(self.name, self.old, bundle_settings(self.record.bundle_path))

    def discard_new(self) -> None:
        # A failed start stopped its servers already (Replicas.start).
        config = {k: v for k, v in self.record.config.items() if k != "next"}
        self.target.workspace.services.put(self.record.replace(config=config))

    def commit(self) -> ServiceRecord:
        cfg, port = self.config, self.port
        log = LogFollower.at_end(self.replicas.log_file(self.name))
        return self.target.workspace.services.put(
            self.record.replace(
                state=ServiceState.HEALTHY,
                error=None,
                models=self.models,
                bundle_path=str(self.bundle),
                scoring_uri=uri(cfg.bind_host, port, "/score"),
                swagger_uri=uri(cfg.bind_host, port, "/swagger.json"),
                generation=self.generation,
                config={
                    **cfg.to_dict(),
                    "port": port,
                    "bound_port": port,
                    "mode": self.mode,
                    **servers_config(self.new),
                    "log_offset": log.offset,
                    "log_inode": log.inode,
                },
            )
        )
