"""How a target sees that a server process is ready: its status lines and ``GET /``.

The server (:mod:`nbdeploy.server.launcher`) prints one machine-readable line when it
serves, fails its ``init()`` or cannot bind; a target reads them from the process's
log (local) or the container's output (Docker), and probes ``GET /``.
"""

from __future__ import annotations

import http.client

__all__ = ["BIND_FAILED", "INIT_FAILED", "LISTENING", "PROBE_TIMEOUT", "READY", "probe"]

READY = "NBDEPLOY-READY"
INIT_FAILED = "NBDEPLOY-INIT-FAILED"
BIND_FAILED = "NBDEPLOY-BIND-FAILED"
LISTENING = "NBDEPLOY-LISTENING"

#: Seconds a probe of ``GET /`` may take before the service counts as not answering.
PROBE_TIMEOUT = 1.0


def probe(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> int | None:
    """Status of ``GET /`` on ``host:port``, or ``None`` when nothing answers in time.

    Examples
    --------
    >>> probe("127.0.0.1", 9, timeout=0.2) is None
    True
    """
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
