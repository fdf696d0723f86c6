"""The one process supervisor of the process-based targets: start a child, know it by
PID and start time, stop it, and restart it when it exits.

Every process the local target runs — a server started plainly, a server forked by
the warm-start server (:mod:`.warm`), the traffic router (:mod:`.router`) — goes
through the same lifecycle, written here once:

- **identity**: :class:`ProcessId` (a PID plus its start time from
  ``/proc/<pid>/stat``, so a recycled PID is never mistaken for the process that
  once had it), :func:`parent_pid`, :func:`process_uid`;
- **start**: :func:`run_child` is the child's side (own session, no stdin, output to
  the capped :class:`RotatingLog`, exit code recorded with :func:`write_exit_status`);
  :func:`detach` forks it off and prints its identity, so the caller reaps the
  launcher at once and never holds the child as a zombie. :func:`launch` runs this
  module as that launcher (``python -m nbdeploy.targets.process.supervisor`` for a
  server, ``python -I supervisor.py`` by path for the router) and returns the
  child's :class:`ProcessId` (:func:`launch_nowait` does not wait for it: the warm
  server, started where a caller must not block); the warm server calls
  :func:`run_child` in each child it forks itself (it is the parent and reaps);
- **stop**: :func:`terminate` / :func:`terminate_all` — SIGTERM, a grace period,
  SIGKILL, and wait until the process is gone (reaped by its parent). The Ray
  target knows and stops the processes of its embedded head the same way;
- **why it ended**: :func:`exit_reason` reads the exit record (waiting a moment for
  the parent to write it);
- **restart**: :class:`Supervisor` keeps a group of children running within a
  restart budget — a child that exits is replaced, at most ``limit`` times; past
  the limit (or when a restart fails) it reports the failure with the reason.
  :class:`Watcher` is the one background thread that notices an exit as it happens
  (no status needs to be read first) and hands it to whoever supervises the group.

Readiness is the caller's (a server prints ``NBDEPLOY-READY``, the router writes its
applied file): :class:`Supervisor` takes a ``start`` callable that returns once the
new children are ready, or raises.

Standard library only and no import of nbdeploy: the kernel imports this cheaply,
the warm server before it forks, and the router's launcher runs this file by path
(``python -I``) so the router starts without loading nbdeploy.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "LOG_BACKUP_SUFFIX",
    "LOG_MAX_BYTES",
    "SUPERVISOR_SCRIPT",
    "LaunchError",
    "ProcessId",
    "RotatingLog",
    "Supervisor",
    "Watcher",
    "detach",
    "exit_reason",
    "launch",
    "launch_nowait",
    "main",
    "parent_pid",
    "process_start_time",
    "process_uid",
    "read_exit_status",
    "reap_launchers",
    "run_child",
    "terminate",
    "terminate_all",
    "write_exit_status",
]

#: A server log rotates to ``server.log.1`` once it is larger than this many bytes.
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUP_SUFFIX = ".1"
#: This file: the router's launcher runs it by path (``python -I supervisor.py``).
SUPERVISOR_SCRIPT = Path(__file__).resolve()
#: ... and ``python -m`` runs it under this name (the plain start of a server).
_MODULE = "nbdeploy.targets.process.supervisor"


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces or ')'.
    close = raw.rfind(")")
    if close < 0:
        return None
    return raw[close + 2 :].split()


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or ``None`` if it is gone.

    Examples
    --------
    >>> process_start_time(os.getpid()) is not None
    True
    """
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    # fields[0] is field 3 (state); starttime is field 22.
    return int(fields[19])


@dataclass(frozen=True)
class ProcessId:
    """A process identified by PID and start time (guards against PID reuse).

    Examples
    --------
    >>> me = ProcessId.of(os.getpid())
    >>> me.alive()
    True
    >>> ProcessId.from_dict(me.to_dict()) == me
    True
    """

    pid: int
    start_time: int | None

    @classmethod
    def of(cls, pid: int) -> ProcessId:
        """The process ``pid`` as it is now."""
        return cls(pid, process_start_time(pid))

    def state(self) -> str | None:
        """The one-letter state from ``/proc`` (``R``, ``S``, ``T``, ``Z`` ...), or
        ``None`` when the PID is gone or now belongs to another process."""
        fields = _stat_fields(self.pid)
        if fields is None or len(fields) < 20:
            return None
        if self.start_time is not None and int(fields[19]) != self.start_time:
            return None
        return fields[0]

    def alive(self) -> bool:
        """True while the process runs (a zombie counts as dead)."""
        state = self.state()
        return state is not None and state not in {"Z", "X", "x"}

    def signal(self, signum: int) -> bool:
        """Send ``signum`` if the process is still this one; False when it is gone."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            return False
        return True

    def wait_gone(self, timeout: float) -> bool:
        """Poll until the process is gone (or a zombie); True if it went in time."""
        deadline = time.monotonic() + timeout
        delay = 0.002
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "start_time": self.start_time}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessId:
        start = data.get("start_time")
        return cls(int(data["pid"]), None if start is None else int(start))


def terminate(proc: ProcessId, timeout: float = 10.0) -> bool:
    """Stop ``proc``: SIGTERM, wait up to ``timeout`` s, then SIGKILL.

    Returns True if the process was running when called. A process that is gone (or
    whose PID now belongs to another process) is left alone.

    Examples
    --------
    >>> terminate(ProcessId(2**22 + 1, 0))
    False
    """
    if not proc.signal(signal.SIGTERM):
        return False
    if not proc.wait_gone(timeout):
        proc.signal(signal.SIGKILL)
        proc.wait_gone(5.0)
    return True


def terminate_all(procs: list[ProcessId], timeout: float = 10.0) -> None:
    """:func:`terminate` several processes at once: SIGTERM to all, one shared
    deadline, then SIGKILL to those still running (they stop in parallel).

    Examples
    --------
    >>> terminate_all([ProcessId(2**22 + 1, 0), ProcessId(2**22 + 2, 0)])
    """
    running = [p for p in procs if p.signal(signal.SIGTERM)]
    deadline = time.monotonic() + timeout
    for proc in running:
        if not proc.wait_gone(max(0.0, deadline - time.monotonic())):
            proc.signal(signal.SIGKILL)
            proc.wait_gone(5.0)


def parent_pid(pid: int) -> int | None:
    """The parent of process ``pid`` (from ``/proc``), or ``None`` when it is gone."""
    fields = _stat_fields(pid)
    return int(fields[1]) if fields is not None and len(fields) > 1 else None


def process_uid(pid: int) -> int | None:
    """The real uid of process ``pid``, or ``None`` when it is gone."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def write_exit_status(path: Path, pid: int, status: int) -> None:
    """Record how process ``pid`` ended (``status`` as from ``os.waitpid``).

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "exit-1.json"
    >>> write_exit_status(target, 1, 3 << 8)
    >>> read_exit_status(target)["returncode"]
    3
    """
    info: dict[str, Any] = {"pid": pid, "time": time.time()}
    if os.WIFSIGNALED(status):
        info["signal"] = os.WTERMSIG(status)
        info["returncode"] = -os.WTERMSIG(status)
    else:
        info["returncode"] = os.WEXITSTATUS(status)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(info), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def read_exit_status(path: Path) -> dict[str, Any] | None:
    """The exit record :func:`write_exit_status` wrote, or ``None``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def exit_code(exc: SystemExit) -> int:
    """The process exit code a ``SystemExit`` stands for.

    Examples
    --------
    >>> exit_code(SystemExit(None)), exit_code(SystemExit(3)), exit_code(SystemExit("x"))
    (0, 3, 1)
    """
    if isinstance(exc.code, int):
        return exc.code
    return 0 if exc.code is None else 1


def exit_reason(
    proc: ProcessId, exit_dir: Path, *, what: str = "process", wait: float = 0.0
) -> str:
    """Why ``proc`` ended, from its ``exit-<pid>.json`` in ``exit_dir`` (waiting up to
    ``wait`` s for its parent to write it).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_exit_status(folder / "exit-7.json", 7, signal.SIGKILL)
    >>> exit_reason(ProcessId(7, 0), folder, what="server process")
    'the server process (pid 7) was killed by SIGKILL'
    >>> exit_reason(ProcessId(8, 0), folder)
    'the process (pid 8) is gone (exit status unknown)'
    """
    path = exit_dir / f"exit-{proc.pid}.json"
    deadline = time.monotonic() + wait
    status = read_exit_status(path)
    while status is None and time.monotonic() < deadline:
        time.sleep(0.01)
        status = read_exit_status(path)
    if status is None:
        return f"the {what} (pid {proc.pid}) is gone (exit status unknown)"
    if "signal" in status:
        try:
            signame = signal.Signals(int(status["signal"])).name
        except ValueError:
            signame = str(status["signal"])
        return f"the {what} (pid {proc.pid}) was killed by {signame}"
    return f"the {what} (pid {proc.pid}) exited with code {status.get('returncode')}"


class RotatingLog(io.TextIOBase):
    """An unbuffered text stream appending to a log file that rotates past a cap.

    Used as ``sys.stdout`` and ``sys.stderr`` of a server process: every write is one
    ``os.write`` on an ``O_APPEND`` descriptor, so lines of two processes sharing the
    log (the old and the new generation during an update) never tear, and each line
    is on disk at once (the target watches for ``NBDEPLOY-READY``). Past ``max_bytes``
    the file is renamed to ``<path>.1`` (replacing the previous backup) and a new one
    is started; descriptors 1 and 2 follow, so output written below Python (C
    libraries, ``faulthandler``) lands in the same file.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "server.log"
    >>> log = RotatingLog(path, max_bytes=10, redirect_fds=False)
    >>> _ = log.write("0123456789abc\\n"); _ = log.write("next\\n")
    >>> path.read_text(), Path(str(path) + ".1").read_text()
    ('next\\n', '0123456789abc\\n')
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = LOG_MAX_BYTES,
        redirect_fds: bool = True,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._redirect = redirect_fds
        self._fd = -1
        self._open()

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        if self._redirect:
            os.dup2(fd, 1)
            os.dup2(fd, 2)

    def _rotate_if_needed(self) -> None:
        try:
            mine = os.fstat(self._fd)
        except OSError:
            return
        if mine.st_size <= self.max_bytes:
            return
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        # Another process sharing the log may have rotated it already: then only
        # follow it to the new file.
        if current is not None and current.st_ino == mine.st_ino:
            os.replace(self.path, str(self.path) + LOG_BACKUP_SUFFIX)
        self._open()

    def write(self, text: str) -> int:
        if self._fd < 0:
            raise ValueError("I/O operation on a closed log")
        data = text.encode("utf-8", "backslashreplace")
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self._fd >= 0 and len(data):
            self._rotate_if_needed()
        return len(text)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd

    def flush(self) -> None:
        return None

    def close(self) -> None:
        """Close the log's descriptor (a process forked from one that logs here —
        the warm server's children — drops its copy this way)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        super().close()

    encoding = "utf-8"
    errors = "backslashreplace"


def run_child(
    log_file: str | os.PathLike[str], body: Callable[[], int], exit_dir: str | None = None
) -> NoReturn:
    """The child's side of a start, in a process just forked: its own session (a
    KeyboardInterrupt in the kernel does not reach it), no stdin, output to the
    capped log; run ``body`` and exit with its code — recorded in
    ``<exit_dir>/exit-<pid>.json`` when given (a child whose parent is init has no
    one else to record it)."""
    code = 1
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        sys.stdout = sys.stderr = RotatingLog(log_file)
        code = body()
    except SystemExit as exc:
        code = exit_code(exc)
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        if exit_dir:
            with contextlib.suppress(Exception):
                me = os.getpid()
                write_exit_status(Path(exit_dir) / f"exit-{me}.json", me, (code & 0xFF) << 8)
        os._exit(code)


def detach(log_file: str, exit_dir: str, body: Callable[[], int]) -> int:
    """Fork ``body`` off into :func:`run_child`; the parent prints the child's
    ``{"pid", "start_time"}`` and returns 0 (its caller reaps it at once, and the
    child is adopted by init)."""
    pid = os.fork()
    if pid > 0:
        print(json.dumps(ProcessId.of(pid).to_dict()), flush=True)
        return 0
    run_child(log_file, body, exit_dir)


def _runner(program: Sequence[str]) -> Callable[[], int]:
    """``-m MODULE ARGS`` or ``SCRIPT ARGS`` run in this process as ``__main__``."""
    if program[:1] == ["-m"] and len(program) > 1:
        module, args = program[1], list(program[2:])

        def run() -> int:
            sys.argv = [module, *args]
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            return 0

        return run
    script, args = program[0], list(program[1:])

    def run_script() -> int:
        sys.argv = [script, *args]
        runpy.run_path(script, run_name="__main__")
        return 0

    return run_script


def main(argv: Sequence[str] | None = None) -> int:
    """``supervisor --log FILE --exit-dir DIR -- (-m MODULE | SCRIPT) [ARGS]``: start
    the program detached (see :func:`detach`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        split = args.index("--")
    except ValueError:
        split = -1
    options = dict(zip(args[:split:2], args[1:split:2], strict=False)) if split > 0 else {}
    program = args[split + 1 :]
    if split < 0 or not program or not {"--log", "--exit-dir"} <= options.keys():
        print(
            "usage: supervisor --log FILE --exit-dir DIR -- (-m MODULE | SCRIPT) [ARGS]",
            file=sys.stderr,
        )
        return 2
    return detach(options["--log"], options["--exit-dir"], _runner(program))


class LaunchError(RuntimeError):
    """The launcher could not start the program (its error output is the message)."""


def _launcher_command(
    program: Sequence[str], log_file: Path, exit_dir: Path, isolated: bool
) -> list[str]:
    launcher = [str(SUPERVISOR_SCRIPT)] if isolated else ["-m", _MODULE]
    return [
        sys.executable,
        *(["-I"] if isolated else []),
        *launcher,
        "--log",
        str(log_file),
        "--exit-dir",
        str(exit_dir),
        "--",
        *program,
    ]


def launch(
    program: Sequence[str],
    *,
    log_file: Path,
    exit_dir: Path,
    cwd: Path,
    isolated: bool = False,
    timeout: float = 60.0,
) -> ProcessId:
    """Start ``program`` (``["-m", MODULE, ...]`` or ``[SCRIPT, ...]``) detached, its
    output in ``log_file``; its :class:`ProcessId`.

    ``isolated``: run the launcher as ``python -I`` by path — no nbdeploy import, no
    user site (the router). Otherwise ``python -m`` with this environment.

    Raises
    ------
    LaunchError
        The launcher did not report a child.
    """
    result = subprocess.run(
        _launcher_command(program, log_file, exit_dir, isolated),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=str(cwd),
        start_new_session=True,
        check=False,
        timeout=timeout,
    )
    try:
        return ProcessId.from_dict(
            json.loads(result.stdout.decode("utf-8").strip().splitlines()[-1])
        )
    except (ValueError, IndexError, KeyError, TypeError):
        raise LaunchError(result.stderr.decode("utf-8", "replace").strip() or "no output") from None


# Launchers started by launch_nowait, reaped by later calls and at exit.
_launchers: list[subprocess.Popen[bytes]] = []
_launchers_lock = threading.Lock()


def reap_launchers(wait: float = 0.0) -> None:
    """Reap the launchers :func:`launch_nowait` started that have exited (waiting up
    to ``wait`` seconds for each), so none is left a zombie."""
    with _launchers_lock:
        for proc in list(_launchers):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait) if wait else proc.poll()
            if proc.returncode is not None:
                _launchers.remove(proc)


# A launcher exits right after forking; reap it at the latest when this interpreter
# exits, so no zombie is left and Popen does not warn about it.
atexit.register(reap_launchers, 5.0)


def launch_nowait(
    program: Sequence[str],
    *,
    log_file: Path,
    exit_dir: Path,
    cwd: Path,
    pass_fds: Sequence[int] = (),
) -> None:
    """Start ``program`` detached like :func:`launch`, without waiting for the
    launcher (it is reaped later by :func:`reap_launchers`): for a caller that must
    not block — the warm server started at the notebook extension's load — and
    learns of the child another way. ``pass_fds`` are inherited by the child (the
    warm server's lock)."""
    reap_launchers()
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(
            _launcher_command(program, log_file, exit_dir, False),
            stdin=subprocess.DEVNULL,
            stdout=devnull,
            stderr=devnull,
            cwd=str(cwd),
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    with _launchers_lock:
        _launchers.append(proc)


class Supervisor:
    """Keeps a group of child processes running, within a restart budget.

    :meth:`check` looks once: the children that exited are replaced by ``start(n)``
    (which returns the ``n`` new children once they are ready, or raises), each
    restart recorded in :attr:`history` as ``{"time", "pid", "reason"}`` with the
    reason ``describe(child)`` gives (its exit code or signal, the last lines it
    logged). Restarts are bounded: when ``history`` would grow past ``limit``, or a
    restart fails, nothing more is started and :attr:`failure` says why.
    :meth:`watch` makes the looking active (a :class:`Watcher` calls :meth:`check` as
    soon as a child is gone); :meth:`stop` stops watching, waits for a restart in
    progress and stops every child, the new ones included — nothing is left behind.

    ``history`` may come from an earlier supervisor of the same group (a service
    record keeps it), so the budget holds across the processes that look at it.

    Examples
    --------
    >>> sup = Supervisor([], start=lambda n: [], describe=str, limit=3)
    >>> sup.check(), sup.failure
    (False, None)
    """

    def __init__(
        self,
        children: Sequence[ProcessId],
        *,
        start: Callable[[int], list[ProcessId]],
        describe: Callable[[ProcessId], str],
        limit: int,
        history: Sequence[Mapping[str, Any]] = (),
        limit_note: str = "",
        on_change: Callable[[Supervisor], None] | None = None,
    ) -> None:
        self.children = list(children)
        self.history: list[dict[str, Any]] = [dict(item) for item in history]
        self.failure: str | None = None
        self.limit = limit
        self._start = start
        self._describe = describe
        self._limit_note = limit_note
        self._on_change = on_change
        self._lock = threading.RLock()
        self._stopped = False
        self._watcher: Watcher | None = None
        self._key: Hashable = id(self)

    @property
    def stopped(self) -> bool:
        return self._stopped

    def check(self) -> bool:
        """Restart the children that exited (see the class); True if any had."""
        with self._lock:
            if self._stopped or self.failure is not None:
                return False
            dead = [child for child in self.children if not child.alive()]
            if not dead:
                return False
            self._replace(dead)
        if self._on_change is not None:
            self._on_change(self)
        return True

    def _replace(self, dead: list[ProcessId]) -> None:
        reasons = "; ".join(self._describe(child) for child in dead)
        self.children = [child for child in self.children if child not in dead]
        if len(self.history) + len(dead) > self.limit:
            note = f" {self._limit_note}" if self._limit_note else ""
            self.failure = (
                f"{reasons}; not restarted: {len(self.history)} restart(s) already "
                f"(the limit is {self.limit}{note})"
            )
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.history += [
            {"time": now, "pid": child.pid, "reason": self._describe(child)} for child in dead
        ]
        try:
            self.children += self._start(len(dead))
        except Exception as exc:
            self.failure = f"{reasons}; the restart failed: {exc}"

    def watch(self, watcher: Watcher | None = None, *, key: Hashable | None = None) -> None:
        """Restart children as soon as they exit, until :meth:`stop` or a failure."""
        self._watcher = watcher or Watcher.shared()
        self._key = id(self) if key is None else key
        self._watcher.watch(self._key, self.children, self._on_exit)

    def _on_exit(self) -> list[ProcessId] | None:
        self.check()
        if self._stopped or self.failure is not None:
            return None
        return self.children

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching and stop every child (SIGTERM, ``timeout`` s, SIGKILL); a
        restart in progress finishes first and its children are stopped too."""
        self._stopped = True
        if self._watcher is not None:
            self._watcher.unwatch(self._key)
        with self._lock:
            terminate_all(self.children, timeout)


@dataclass
class _Watched:
    procs: list[ProcessId]
    on_exit: Callable[[], list[ProcessId] | None]
    lock: threading.RLock


class Watcher:
    """One daemon thread that looks at the watched groups every ``poll`` s and calls a
    group's ``on_exit`` as soon as one of its processes is gone.

    ``on_exit`` runs holding the group's lock (:meth:`lock`; other threads that act on
    the group take it too) and returns the processes to watch from then on, or
    ``None`` to stop watching the group.

    Examples
    --------
    >>> watcher = Watcher(poll=0.01)
    >>> gone = ProcessId(2**22 + 1, 0)
    >>> seen = threading.Event()
    >>> watcher.watch("g", [gone], lambda: seen.set())
    >>> seen.wait(10)
    True
    """

    _shared: Watcher | None = None
    _shared_guard = threading.Lock()

    def __init__(self, poll: float = 0.2) -> None:
        self.poll = poll
        self._groups: dict[Hashable, _Watched] = {}
        self._locks: dict[Hashable, threading.RLock] = {}
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    @classmethod
    def shared(cls) -> Watcher:
        """The watcher of this process (one thread for every supervised group)."""
        with cls._shared_guard:
            # A forked child has no watcher thread: it gets a watcher of its own.
            if cls._shared is None or cls._shared._pid != os.getpid():
                cls._shared = cls()
            return cls._shared

    def lock(self, key: Hashable) -> threading.RLock:
        """The lock of group ``key``: held while its ``on_exit`` runs."""
        with self._guard:
            return self._locks.setdefault(key, threading.RLock())

    def watch(
        self,
        key: Hashable,
        procs: Sequence[ProcessId],
        on_exit: Callable[[], list[ProcessId] | None],
    ) -> None:
        """Watch ``procs`` as group ``key`` (replacing what was watched under it)."""
        lock = self.lock(key)
        with self._guard:
            self._groups[key] = _Watched(list(procs), on_exit, lock)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="nbdeploy-supervisor", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def unwatch(self, key: Hashable) -> None:
        with self._guard:
            self._groups.pop(key, None)

    def watching(self, key: Hashable) -> bool:
        with self._guard:
            return key in self._groups

    def _run(self) -> None:
        while True:
            with self._guard:
                if not self._groups:
                    self._thread = None
                    return
                groups = list(self._groups.items())
            for key, group in groups:
                if all(proc.alive() for proc in group.procs):
                    continue
                self._exited(key, group)
            self._wake.wait(self.poll)
            self._wake.clear()

    def _exited(self, key: Hashable, group: _Watched) -> None:
        with group.lock:
            with self._guard:
                if self._groups.get(key) is not group:
                    return  # replaced or unwatched meanwhile
            try:
                procs = group.on_exit()
            except Exception:
                traceback.print_exc()
                procs = None
            with self._guard:
                if self._groups.get(key) is not group:
                    return
                if procs is None:
                    del self._groups[key]
                else:
                    group.procs = list(procs)


if __name__ == "__main__":
    sys.exit(main())
