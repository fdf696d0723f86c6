"""Process helpers shared by the local target, the warm server and the launcher.

Standard library only: this module is imported by the kernel (cheap imports matter),
by the warm-start server before it forks, and by the launcher of the plain path.

- :class:`ProcessId` — a PID plus its start time from ``/proc/<pid>/stat``, so a
  recycled PID is never mistaken for the service that once had it.
- :func:`terminate` — SIGTERM, wait with a deadline, SIGKILL if needed.
- :class:`RotatingLog` — the ``sys.stdout`` / ``sys.stderr`` of a server process:
  unbuffered appends to ``server.log`` that rotate to ``server.log.1`` past a cap, so a
  long-running service cannot fill the disk.
- :class:`LogFollower` — reads what a server appended to its log since an offset
  (following one rotation), which is how the target sees ``NBDEPLOY-READY``.
- :func:`code_fingerprint` — a cheap fingerprint of the installed code, so a warm
  server that pre-imported older code is replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import socket
import stat
import struct
import sys
import sysconfig
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LOG_BACKUP_SUFFIX",
    "LOG_MAX_BYTES",
    "LogFollower",
    "ProcessId",
    "RotatingLog",
    "check_port_free",
    "code_fingerprint",
    "parent_pid",
    "peer_credentials",
    "private_socket_dir",
    "process_uid",
    "read_exit_status",
    "read_log_tail",
    "terminate",
    "terminate_all",
    "write_exit_status",
]

#: A server log rotates to ``server.log.1`` once it is larger than this many bytes.
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUP_SUFFIX = ".1"
#: The ``nbdeploy`` package folder (``nbdeploy/targets/process/processes.py``).
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


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


#: Where unix sockets go when the workspace path is too long for one (tests move it).
SOCKET_DIR_BASE = "/tmp"


def private_socket_dir() -> Path:
    """A folder for this user's unix sockets that no other user can enter or replace:
    ``/tmp/nbdeploy-<uid>``, created 0700, and refused unless it is a real folder
    owned by this user with no group or other permissions.

    A socket at a predictable path in ``/tmp`` itself could be bound first by another
    user, who would then receive what is sent to it; inside this folder it cannot.

    Raises
    ------
    TargetUnavailableError
        The folder exists but belongs to another user, is a link, or is open to
        others (someone may be trying to intercept the sockets).

    Examples
    --------
    >>> oct(private_socket_dir().stat().st_mode & 0o777)
    '0o700'
    """
    from nbdeploy.exceptions import TargetUnavailableError

    folder = Path(SOCKET_DIR_BASE) / f"nbdeploy-{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    st = os.lstat(folder)
    if (
        not stat.S_ISDIR(st.st_mode)
        or st.st_uid != os.geteuid()
        or stat.S_IMODE(st.st_mode) & 0o077
    ):
        raise TargetUnavailableError(
            f"{folder} is not a private folder of this user (owner uid {st.st_uid}, mode "
            f"{oct(stat.S_IMODE(st.st_mode))}); its sockets could be intercepted",
            hint=f"remove {folder} (another user may have created it on purpose), or use "
            "a workspace with a shorter path",
        )
    return folder


def peer_credentials(conn: socket.socket) -> tuple[int, int, int]:
    """``(pid, uid, gid)`` of the process at the other end of a unix socket, as the
    kernel recorded them (``SO_PEERCRED``; what the peer cannot lie about)."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return int(pid), int(uid), int(gid)


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


def check_port_free(host: str, port: int) -> bool:
    """True if nothing listens on ``(host, port)`` (a bind probe, not a connect).

    ``SO_REUSEADDR`` lets the probe ignore connections in TIME_WAIT, so only a real
    listener (or another bound socket) makes the port busy.

    Examples
    --------
    >>> check_port_free("127.0.0.1", 0)
    True
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


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

    encoding = "utf-8"
    errors = "backslashreplace"


def read_log_tail(path: Path, tail: int | None = None, *, max_bytes: int = 2_000_000) -> str:
    """The last ``tail`` lines (all when ``None``) of a log and its rotated backup.

    At most ``max_bytes`` are read from the end, so a huge log never floods memory.

    Examples
    --------
    >>> read_log_tail(Path("/nonexistent/server.log"))
    ''
    """
    chunks: list[bytes] = []
    budget = max_bytes
    for candidate in (path, Path(str(path) + LOG_BACKUP_SUFFIX)):
        if budget <= 0:
            break
        try:
            with candidate.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                start = max(0, size - budget)
                fh.seek(start)
                data = fh.read()
        except OSError:
            continue
        if start > 0:
            # Drop the partial first line.
            data = data.split(b"\n", 1)[-1]
        chunks.insert(0, data)
        budget -= len(data)
        if tail is not None and b"".join(chunks).count(b"\n") >= tail:
            break
    text = b"".join(chunks).decode("utf-8", "replace")
    if tail is None:
        return text
    if tail <= 0:
        return ""
    lines = text.splitlines(keepends=True)
    return "".join(lines[-tail:])


class LogFollower:
    """Reads the lines appended to a log since a given point, across one rotation.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "server.log"
    >>> follower = LogFollower(path)
    >>> _ = path.write_text("NBDEPLOY-READY\\n")
    >>> follower.read_lines()
    ['NBDEPLOY-READY']
    """

    def __init__(self, path: Path, offset: int = 0, inode: int | None = None) -> None:
        self.path = path
        self.offset = offset
        self.inode = inode
        self._partial = b""

    @classmethod
    def at_end(cls, path: Path) -> LogFollower:
        """A follower that only sees what is written from now on."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return cls(path, 0, None)
        return cls(path, st.st_size, st.st_ino)

    def _read_from(self, path: Path, offset: int) -> tuple[bytes, int, int | None]:
        try:
            with path.open("rb") as fh:
                inode = os.fstat(fh.fileno()).st_ino
                fh.seek(offset)
                data = fh.read()
        except OSError:
            return b"", offset, None
        return data, offset + len(data), inode

    def read_lines(self) -> list[str]:
        """Complete lines written since the last call (without line ends)."""
        data = b""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is not None and self.inode is not None and st.st_ino != self.inode:
            # Rotated: finish the old file (now the backup), then start the new one.
            backup = Path(str(self.path) + LOG_BACKUP_SUFFIX)
            old, _, old_inode = self._read_from(backup, self.offset)
            if old_inode == self.inode:
                data += old
            self.offset, self.inode = 0, st.st_ino
        if st is not None:
            if st.st_size < self.offset:
                self.offset = 0
            new, self.offset, inode = self._read_from(self.path, self.offset)
            if self.inode is None:
                self.inode = inode
            data += new
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return [line.decode("utf-8", "replace").rstrip("\r") for line in lines]


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


def code_fingerprint() -> str:
    """A fingerprint of the code a warm server would pre-import.

    It covers the interpreter and the mtime/size of every nbdeploy ``.py`` file (the
    version is in one of them), plus the mtimes of the site-packages folders (which change
    when a package is installed, upgraded or removed). Costs about a millisecond.

    Examples
    --------
    >>> code_fingerprint() == code_fingerprint()
    True
    """
    digest = hashlib.sha256()
    digest.update(sys.executable.encode())
    root = _PACKAGE_ROOT
    entries: list[str] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name != "__pycache__" and not entry.name.startswith("."):
                            stack.append(Path(entry.path))
                    elif entry.name.endswith(".py"):
                        st = entry.stat()
                        entries.append(f"{entry.path}:{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            continue
    for line in sorted(entries):
        digest.update(line.encode())
    paths = sysconfig.get_paths()
    for key in ("purelib", "platlib"):
        with contextlib.suppress(KeyError, OSError):
            digest.update(f"{key}:{os.stat(paths[key]).st_mtime_ns}".encode())
    return digest.hexdigest()[:24]
