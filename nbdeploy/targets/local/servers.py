"""The server processes of a local service as its record keeps them."""

from __future__ import annotations

import builtins
import contextlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nbdeploy.core.services import ServiceRecord
from nbdeploy.targets.process.supervisor import ProcessId

__all__ = [
    "STOP_TIMEOUT",
    "Server",
    "probe_host",
    "remove_socket_file",
    "servers_config",
    "servers_of",
]

#: Seconds a stopped server gets to finish its requests before SIGKILL (an update
#: gives the old generation what its settings allow a request: ``drain_seconds``).
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Server:
    """One server process (a replica) of a service and the unix socket where it offers
    the service's listening socket (``None`` for servers that do not offer it).

    Examples
    --------
    >>> server = Server(ProcessId(10, 20), "/ws/services/s/listener-1.sock")
    >>> Server.from_dict(server.to_dict()) == server
    True
    """

    process: ProcessId
    handover: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.process.to_dict(), "handover": self.handover}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Server:
        handover = data.get("handover")
        return cls(ProcessId.from_dict(data), None if handover is None else str(handover))


def servers_of(record: ServiceRecord) -> builtins.list[Server]:
    """The server processes of a single-version local service (its replicas); empty for
    an endpoint with versions (whose ``process`` is its router)."""
    if record.config.get("versions"):
        return []
    raw = record.config.get("servers")
    if isinstance(raw, builtins.list):
        return [Server.from_dict(item) for item in raw]
    process = record.config.get("process")
    if not isinstance(process, Mapping):
        return []
    handover = record.config.get("handover")  # a record written before replicas
    return [Server(ProcessId.from_dict(process), None if handover is None else str(handover))]


def servers_config(servers: builtins.list[Server]) -> dict[str, Any]:
    """The record's ``config`` entries of a group of servers (the first one is also
    ``process`` / ``handover``, what single-process code reads)."""
    return {
        "servers": [s.to_dict() for s in servers],
        "process": servers[0].process.to_dict(),
        "handover": servers[0].handover,
    }


def probe_host(record: ServiceRecord) -> str:
    host = str(record.config.get("host", "127.0.0.1"))
    return "127.0.0.1" if host == "localhost" else host


def remove_socket_file(path: str) -> None:
    """Remove a hand-over socket left behind by a killed server (only a socket)."""
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
