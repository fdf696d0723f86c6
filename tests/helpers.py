"""Small helpers several test packages share (free ports, the system Chromium)."""

from __future__ import annotations

import os
import socket

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "free_port"]

#: The system Chromium the browser tests drive (never a Playwright browser download).
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
#: Headless, offline-quiet flags for it.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (the OS's pick for port 0)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
