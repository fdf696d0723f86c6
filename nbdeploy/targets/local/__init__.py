"""The local target: a service is a server process on this machine, bound to loopback.

Two ways to start the process, same server, same bundle:

- **warm start** (default): the workspace's warm-start server
  (:mod:`nbdeploy.targets.process.warm`), which has already imported Starlette,
  uvicorn, pandas and scikit-learn, forks a child that goes straight to ``init()`` —
  a scikit-learn model answers in a fraction of a second instead of the 1-2 s a
  fresh interpreter spends importing;
- **plain**: ``python -m nbdeploy.server BUNDLE`` in a new process (through a tiny
  launcher that detaches it), used with ``warm_start=False`` or when the warm server
  cannot run (no ``fork``).

Either way the server runs in its own session — a KeyboardInterrupt in the kernel
does not reach it, and it is never the kernel's child (no zombies) — writes its
output to ``<workspace>/services/<name>/server.log`` (rotated past 10 MB), and its
PID *and start time* are recorded in the service record, so any later Python process
finds the service, checks it is still that process (PIDs are reused) and probes
``GET /`` for its live state.

Updates keep the scoring URI answering, without dropping a request: every server
offers its listening socket on a unix socket (``--handover-socket``, the path is
recorded as ``config["handover"]``), and the new generation serves on that very
socket (``--take-over``; :mod:`nbdeploy.server.handover`). It runs ``init()`` first
and takes no connection before; once it reports ``NBDEPLOY-READY`` both generations
accept from the one accept queue, and the old one gets SIGTERM: it stops accepting,
answers every connection it already accepted and finishes its requests in flight.
No connection is ever queued on a socket that closes — the race of two sockets
bound with ``SO_REUSEPORT``, whose closing one resets the connections still queued
on it. (A service started before hand-over sockets existed, or one whose socket
cannot be taken, is updated the old way: the new generation binds the port with
``SO_REUSEPORT``.) If the new generation fails, the old one keeps serving. The old
generation gets the time its settings allow a request (queue wait + scoring
timeout, :func:`~nbdeploy.core.serving.drain_seconds`) before it is killed.

Replicas (``replicas=N`` or ``"auto"``): N server processes accept from the one
listening socket (the first binds it, the others take it over the same way as an
update), recorded as ``config["servers"]``. State, logs, update, traffic and delete
cover all of them. A replica found dead when the service is looked at (``get``,
``list``, ``state`` ...) is restarted on that socket — at most :data:`RESTART_LIMIT`
times per deployed generation, each restart with its reason in
``config["restarts"]``; past the limit the service is ``Failed`` (or ``Unhealthy``
while other replicas still serve) and says why.

Every change of a service (deploy, update, delete, versions and traffic) holds the
service's lock in the workspace, so two processes never change one service at once,
and a refresh only writes its state when no change runs.

Where things live:

- :mod:`.config` — :class:`LocalConfig`;
- :mod:`.target` — :class:`LocalTarget` (deploy, get, list, logs, delete, restarts);
- :mod:`.replicas` — starting, waiting for and stopping server processes;
- :mod:`.servers` — the servers as the service record keeps them;
- :mod:`.generations` — the update primitives (:mod:`nbdeploy.targets.rollout`);
- :mod:`.traffic` — versions behind a router;
- :mod:`.bundles` — what the target reads from a bundle folder.
"""

from __future__ import annotations

from .config import LocalConfig as LocalConfig
from .target import LocalTarget as LocalTarget

__all__ = ["LocalConfig", "LocalTarget"]
