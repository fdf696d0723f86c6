"""Staging folders for registrations in progress, and file locks that die with their owner.

A registration copies files into a private folder under ``staging/`` before it moves
them into the artifact store; :func:`sweep_staging` removes the folders whose owner
died. :func:`lock_file` is the ``flock`` both this and the workspace's per-service
locks use: the operating system releases it when the holding process dies.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from pathlib import Path

__all__ = [
    "LOCK_NAME",
    "STAGING_GRACE_SECONDS",
    "StagingFolder",
    "lock_file",
    "remove_tree",
    "sweep_staging",
]

#: A staging folder without a lock file is only removed once it is this old (seconds):
#: its owner may be between ``mkdir`` and creating the lock.
STAGING_GRACE_SECONDS = 600.0


def remove_tree(path: Path) -> None:
    """Remove a file or folder tree, including read-only files; missing is fine."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
        return
    if not path.exists():
        return

    def _retry_writable(func: object, target: str, _exc: object) -> None:
        os.chmod(target, 0o700)
        if callable(func):
            func(target)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=_retry_writable)
    else:
        shutil.rmtree(path, onerror=_retry_writable)


LOCK_NAME = ".lock"


class StagingFolder:
    """A private folder under ``staging/`` for one registration in progress.

    Its owner holds an exclusive ``flock`` on ``<folder>/.lock`` for as long as it
    lives; the operating system releases the lock when the process dies, even by
    SIGKILL, which is how :func:`sweep_staging` tells abandoned folders from live
    ones without trusting PIDs (which get reused). The owner writes its PID into the
    lock file *after* locking it, so an empty lock file means "owner starting up".
    """

    def __init__(self, staging_dir: Path) -> None:
        staging_dir.mkdir(parents=True, exist_ok=True)
        self.path = staging_dir / uuid.uuid4().hex
        self.path.mkdir()
        self._lock_fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        lock_file(self._lock_fd, blocking=True)
        os.write(self._lock_fd, str(os.getpid()).encode())

    def cleanup(self) -> None:
        """Remove the folder and release the lock; idempotent."""
        if self._lock_fd < 0:
            return
        try:
            remove_tree(self.path)
        finally:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> StagingFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def lock_file(fd: int, *, blocking: bool) -> bool:
    """Take an exclusive lock on ``fd``; ``False`` when non-blocking and held elsewhere."""
    if sys.platform == "win32":  # pragma: no cover - no flock on Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def sweep_staging(staging_dir: Path, *, grace: float = STAGING_GRACE_SECONDS) -> list[Path]:
    """Remove staging folders whose owning process is gone; return what was removed.

    Examples
    --------
    >>> import tempfile
    >>> sweep_staging(Path(tempfile.mkdtemp()))
    []
    """
    removed: list[Path] = []
    if not staging_dir.is_dir():
        return removed
    now = time.time()
    for folder in staging_dir.iterdir():
        lock_path = folder / LOCK_NAME
        try:
            fd = os.open(lock_path, os.O_RDWR)
        except FileNotFoundError:
            # No lock file: an owner between mkdir and open(), or one killed there.
            try:
                old = now - folder.stat().st_mtime > grace
            except FileNotFoundError:
                continue
            if old:
                remove_tree(folder)
                removed.append(folder)
            continue
        except OSError:
            continue
        try:
            if not lock_file(fd, blocking=False):
                continue  # its owner is alive
            owner_started = os.fstat(fd).st_size > 0
            if owner_started or now - os.fstat(fd).st_mtime > grace:
                remove_tree(folder)
                removed.append(folder)
        finally:
            os.close(fd)
    return removed
