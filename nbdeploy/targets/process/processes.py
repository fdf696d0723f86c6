"""Logs, sockets and the code fingerprint of the process-based targets.

Standard library only: this module is imported by the kernel (cheap imports matter)
and by the warm-start server before it forks. How processes are started, known,
stopped and restarted is :mod:`.supervisor`.

- :class:`LogFollower` — reads what a server appended to its log since an offset
  (following one rotation of the :class:`~.supervisor.RotatingLog`), which is how
  the target sees ``NBDEPLOY-READY``; :func:`read_log_tail`;
- :func:`private_socket_dir`, :func:`peer_credentials`, :func:`check_port_free`;
- :func:`code_fingerprint` — a cheap fingerprint of the installed code, so a warm
  server that pre-imported older code is replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import stat
import struct
import sys
import sysconfig
from pathlib import Path

from .supervisor import LOG_BACKUP_SUFFIX

__all__ = [
    "LogFollower",
    "check_port_free",
    "code_fingerprint",
    "peer_credentials",
    "private_socket_dir",
    "read_log_tail",
]

#: The ``nbdeploy`` package folder (``nbdeploy/targets/process/processes.py``).
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


#: Where unix sockets go when the workspace path is too long for one (tests move it).
SOCKET_DIR_BASE = "/tmp"


def private_socket_dir() -> Path:
    """A folder for this user's unix sockets that no other user can enter or replace:
    ``/tmp/nbdeploy-<uid>``, created 0700, and refused unless it is a real folder
    owned by this user with no group or other permissions.

    A socket at a predictable path in ``/tmp`` itself could be bound first by another
    user, who would then receive what is sent to it; inside this folder it cannot.
    The warm server's socket goes here when the workspace path is too long for one,
    and so does an embedded Ray cluster's temporary folder (its sockets).

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
            hint=f"remove {folder} (another user may have created it on purpose)",
        )
    return folder


def peer_credentials(conn: socket.socket) -> tuple[int, int, int]:
    """``(pid, uid, gid)`` of the process at the other end of a unix socket, as the
    kernel recorded them (``SO_PEERCRED``; what the peer cannot lie about)."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return int(pid), int(uid), int(gid)


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
