"""Resource sampling: CPU time and resident memory of the serving processes.

A sampler thread reads the CPU time and resident memory of the serving process and
its children every ~100 ms (psutil, imported where it is used), and the kernel's
``VmHWM`` (the resident high-water mark since the process started).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nbdeploy.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    import psutil

__all__ = ["SAMPLE_INTERVAL_S", "ProcessSampler"]

#: Seconds between two samples of the serving processes' CPU time and memory.
SAMPLE_INTERVAL_S = 0.1


class ProcessSampler:
    """Samples the CPU time and resident memory of processes and their children.

    CPU is the sum of user + system time over the process tree; a child first seen
    after sampling began counts from zero (it was started during the profile), one seen
    at the start counts from then. Memory is the sum of RSS over the tree; the high-water
    mark is the sum over processes of the largest ``VmHWM`` each reported.
    """

    def __init__(self, pids: Sequence[int], interval: float) -> None:
        import psutil

        self._psutil = psutil
        self.interval = interval
        self.roots: list[psutil.Process] = []
        for pid in pids:
            try:
                self.roots.append(psutil.Process(pid))
            except psutil.Error:
                raise InvalidArgumentError(
                    f"no serving process with PID {pid}",
                    hint="is the service running? check service.state and service.get_logs()",
                ) from None
        self._known: dict[tuple[int, float], psutil.Process] = {}
        self._base: dict[tuple[int, float], float] = {}
        self._last_cpu: dict[tuple[int, float], float] = {}
        self._hwm: dict[tuple[int, float], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t: list[float] = []
        self.cpu: list[float] = []
        self.rss: list[int] = []
        self._first = True

    def _tree(self) -> list[psutil.Process]:
        procs: list[psutil.Process] = []
        for root in self.roots:
            try:
                procs.append(root)
                procs.extend(root.children(recursive=True))
            except self._psutil.Error:
                continue
        return procs

    def sample(self) -> tuple[float, float, int]:
        """Take one sample now: (perf_counter time, cumulative CPU seconds, RSS bytes)."""
        with self._lock:
            now = time.perf_counter()
            rss_total = 0
            for proc in self._tree():
                try:
                    with proc.oneshot():
                        times = proc.cpu_times()
                        rss = proc.memory_info().rss
                    key = (proc.pid, proc.create_time())
                except self._psutil.Error:
                    continue
                cpu = times.user + times.system
                if key not in self._base:
                    self._base[key] = cpu if self._first else 0.0
                self._last_cpu[key] = cpu
                rss_total += rss
                hwm = _vm_hwm(proc.pid)
                if hwm is not None:
                    self._hwm[key] = max(hwm, self._hwm.get(key, 0))
            self._first = False
            used = sum(self._last_cpu[k] - self._base[k] for k in self._last_cpu)
            self.t.append(now)
            self.cpu.append(used)
            self.rss.append(rss_total)
            return now, used, rss_total

    @property
    def hwm_bytes(self) -> int | None:
        return sum(self._hwm.values()) if self._hwm else None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> None:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="nbdeploy-profile", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


def _vm_hwm(pid: int) -> int | None:
    """The resident high-water mark of ``pid`` in bytes (Linux ``VmHWM``), if known."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        return None
    return None
