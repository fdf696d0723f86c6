"""Small helpers the Ray target needs that the other targets also have in their own
private modules: a process identity that survives PID reuse, a bounded log tail, the
state a rollout is in, the weighted pick of a version.

They are kept here (and not imported from the local or Docker target's private
helpers) so that the Ray package depends only on the targets' public interface
(:mod:`nbdeploy.targets.base`), ``nbdeploy.core`` and ``nbdeploy.server``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from nbdeploy.exceptions import TargetUnavailableError

__all__ = [
    "ProcessId",
    "pick_weighted",
    "private_dir",
    "read_tail",
]


@dataclass(frozen=True)
class ProcessId:
    """A process identified by PID and creation time (a reused PID is another one).

    Examples
    --------
    >>> me = ProcessId.of(os.getpid())
    >>> me.alive(), ProcessId.from_dict(me.to_dict()) == me
    (True, True)
    """

    pid: int
    created: float | None

    @classmethod
    def of(cls, pid: int) -> ProcessId:
        try:
            return cls(pid, psutil.Process(pid).create_time())
        except psutil.Error:
            return cls(pid, None)

    def _process(self) -> psutil.Process | None:
        try:
            proc = psutil.Process(self.pid)
            if self.created is not None and proc.create_time() != self.created:
                return None
            return None if proc.status() == psutil.STATUS_ZOMBIE else proc
        except psutil.Error:
            return None

    def alive(self) -> bool:
        """True while the process runs (a zombie counts as gone)."""
        return self._process() is not None

    def signal(self, signum: int) -> bool:
        """Send ``signum`` if the process is still this one; False when it is gone."""
        proc = self._process()
        if proc is None:
            return False
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signum)
            return True
        return False

    def wait_gone(self, timeout: float) -> bool:
        """Poll until the process is gone; True if it went within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "created": self.created}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessId:
        created = data.get("created")
        return cls(int(data["pid"]), None if created is None else float(created))


def stop_processes(procs: list[ProcessId], timeout: float) -> None:
    """SIGTERM every process, one shared deadline, then SIGKILL those still there."""
    running = [p for p in procs if p.signal(signal.SIGTERM)]
    deadline = time.monotonic() + timeout
    for proc in running:
        if not proc.wait_gone(max(0.0, deadline - time.monotonic())):
            proc.signal(signal.SIGKILL)
            proc.wait_gone(5.0)


def private_dir() -> Path:
    """``/tmp/nbdeploy-<uid>``, 0700 and owned by this user (refused otherwise): Ray's
    unix sockets live in its temporary folder, where no other user may place one.

    Raises
    ------
    TargetUnavailableError
        The folder is not a private folder of this user.
    """
    folder = Path("/tmp") / f"nbdeploy-{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise TargetUnavailableError(
            f"{folder} is not a private folder of this user (owner uid {st.st_uid}, mode "
            f"{oct(stat.S_IMODE(st.st_mode))})",
            hint=f"remove {folder}; another user may have created it on purpose",
        )
    return folder


def read_tail(path: Path, tail: int | None = None, max_bytes: int = 2_000_000) -> str:
    """The last ``tail`` lines of a file (all when ``None``), reading at most
    ``max_bytes`` from its end; ``""`` when it cannot be read.

    Examples
    --------
    >>> read_tail(Path("/nonexistent"))
    ''
    """
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            start = max(0, fh.tell() - max_bytes)
            fh.seek(start)
            data = fh.read()
    except OSError:
        return ""
    if start:
        data = data.split(b"\n", 1)[-1]
    lines = data.decode("utf-8", "replace").splitlines(keepends=True)
    return "".join(lines if tail is None else lines[-tail:] if tail > 0 else [])


def pick_weighted(weights: Mapping[str, int], draw: float) -> str | None:
    """The name a uniform ``draw`` in [0, 1) falls on, each name getting its weight's
    share; ``None`` when every weight is 0.

    Examples
    --------
    >>> pick_weighted({"v1": 90, "v2": 10}, 0.95), pick_weighted({"v1": 0}, 0.5)
    ('v2', None)
    """
    live = [(name, w) for name, w in weights.items() if w > 0]
    point = draw * sum(w for _, w in live)
    for name, weight in live:
        if point < weight:
            return name
        point -= weight
    return live[-1][0] if live else None
