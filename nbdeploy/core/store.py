"""The workspace store: a folder with an SQLite database and the model artifact store.

:class:`Store` owns the folder layout, the database connections, migrations and the
per-service locks. :class:`~nbdeploy.core.workspace.Workspace` adds the registry and
the service records on top; those two take a :class:`Store`, so neither needs the
other nor the workspace module.

Layout (created lazily, on first use)::

    <home>/
      nbdeploy.db                         SQLite (WAL): models, services
      artifacts/<name>/<version>/files... model files, read-only once committed
      samples/<name>/<version>/{input,output}.pkl
      staging/<uuid>/                     registrations in progress (swept when stale)
      bundles/<service>/<generation>/     bundles built for services
      services/<service>/                 logs, pid files of local services
      run/                                warm-start server socket and pid

Several kernels (processes) may use one workspace at the same time. The database is
the only source of truth; a folder under ``artifacts/`` that no row points at is an
orphan left by a killed process and is removed by :meth:`Store.gc`.

Connections
-----------
:meth:`Store.connect` opens a new connection; :meth:`Store.read` and
:meth:`Store.write` reuse one connection per thread (and open a new one in a
forked child), because closing the last connection of a WAL database checkpoints it —
a few fsyncs on every call. Connections are in autocommit mode
(``isolation_level=None``); writes run inside an explicit ``BEGIN IMMEDIATE``
(:meth:`Store.write`), which takes the database's write lock up front, so two
writers never both read "the last version is 3" and then both write 4. Readers never
block writers in WAL mode. ``busy_timeout`` is 30 s: a writer waits for another
writer instead of failing.

Schema migrations are a list of SQL scripts; ``PRAGMA user_version`` says how many
have run. They are applied under ``BEGIN IMMEDIATE`` so two processes opening a new
workspace at once apply each migration exactly once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nbdeploy.exceptions import NbdeployError, TargetUnavailableError

from .refs import NAME_PATTERN
from .staging import lock_file, remove_tree, sweep_staging

__all__ = ["LOCK_TIMEOUT", "MIGRATIONS", "SCHEMA_VERSION", "Store"]

#: SQL scripts, in order; migration ``i`` takes ``user_version`` from ``i`` to ``i + 1``.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE model_names (
        name         TEXT PRIMARY KEY,
        last_version INTEGER NOT NULL      -- never decreases: versions are not reused
    );
    CREATE TABLE models (
        name              TEXT NOT NULL REFERENCES model_names(name),
        version           INTEGER NOT NULL CHECK (version >= 1),
        framework         TEXT NOT NULL,
        framework_version TEXT,
        description       TEXT NOT NULL DEFAULT '',
        tags              TEXT NOT NULL DEFAULT '{}',   -- JSON object str -> str
        properties        TEXT NOT NULL DEFAULT '{}',   -- JSON object str -> str
        content_hash      TEXT NOT NULL,
        created           TEXT NOT NULL,                -- ISO 8601, UTC
        files             TEXT NOT NULL,                -- JSON list of relative paths
        input_schema      TEXT,                         -- JSON (Schema.to_dict) or NULL
        output_schema     TEXT,
        resources         TEXT,                         -- JSON (Resources.to_dict) or NULL
        samples           TEXT NOT NULL DEFAULT '{}',   -- JSON {"input": hash, ...}
        PRIMARY KEY (name, version)
    );
    CREATE TABLE services (
        name    TEXT PRIMARY KEY,
        target  TEXT NOT NULL,
        state   TEXT NOT NULL,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        record  TEXT NOT NULL                           -- JSON (ServiceRecord.to_dict)
    );
    CREATE INDEX services_by_target ON services(target);
    """,
)

#: Seconds a deploy, update or delete waits for another one of the same service.
LOCK_TIMEOUT = 600.0

#: The ``user_version`` of a database with every migration applied.
SCHEMA_VERSION = len(MIGRATIONS)

_BUSY_TIMEOUT_MS = 30_000


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the database to WAL journaling (a no-op once it is).

    The first switch of a new database needs an exclusive lock, and SQLite answers
    "database is locked" at once — without its busy handler — when another connection
    (a thread or a process opening the same new workspace) holds one. Retry within the
    busy timeout, as the busy handler would.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class Store:
    """A workspace folder: its layout, database and locks.

    Use :class:`~nbdeploy.core.workspace.Workspace`, which adds the model registry
    and the service records.

    Parameters
    ----------
    path:
        The workspace folder. Created (with its database) on first use. Resolving the
        default home (``$NBDEPLOY_HOME`` or ``~/.nbdeploy``) is the fronts' job
        (``nbdeploy.config.resolve("home")``); the core takes an explicit path.

    Examples
    --------
    >>> import tempfile
    >>> store = Store(tempfile.mkdtemp())
    >>> store.db_path.name
    'nbdeploy.db'
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser().absolute()
        self._migrated = False
        self._migrate_lock = threading.Lock()
        self._local = threading.local()
        self._pool: list[_Session] = []
        self._pool_lock = threading.Lock()
        weakref.finalize(self, _close_all, self._pool, self._pool_lock)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Store) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def db_path(self) -> Path:
        """The SQLite database file."""
        return self.path / "nbdeploy.db"

    @property
    def artifacts_dir(self) -> Path:
        """Committed model files: ``artifacts/<name>/<version>/``."""
        return self.path / "artifacts"

    @property
    def samples_dir(self) -> Path:
        """Pickled sample input/output: ``samples/<name>/<version>/``."""
        return self.path / "samples"

    @property
    def staging_dir(self) -> Path:
        """Registrations in progress: ``staging/<uuid>/``."""
        return self.path / "staging"

    @property
    def bundles_dir(self) -> Path:
        """Bundles built for services: ``bundles/<service>/<generation>/``."""
        return self.path / "bundles"

    @property
    def services_dir(self) -> Path:
        """Runtime files (logs, pid files) of services: ``services/<service>/``."""
        return self.path / "services"

    @property
    def locks_dir(self) -> Path:
        """Lock files serializing changes to one service across processes (never
        removed: a lock file deleted while held would let a second holder in)."""
        return self.path / "locks"

    @property
    def run_dir(self) -> Path:
        """The warm-start server's socket and pid."""
        return self.path / "run"

    def connect(self) -> sqlite3.Connection:
        """Open a new connection to the workspace database (creating it if needed).

        The connection is in autocommit mode with WAL journaling, a 30 s busy
        timeout, foreign keys on and rows as :class:`sqlite3.Row`. Use
        :meth:`write` / :meth:`read` for transactions; close the connection when done.

        Examples
        --------
        >>> import tempfile
        >>> ws = Store(tempfile.mkdtemp())
        >>> conn = ws.connect()
        >>> conn.execute("PRAGMA journal_mode").fetchone()[0]
        'wal'
        >>> conn.close()
        """
        self._make_private()
        conn = sqlite3.connect(
            self.db_path,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.row_factory = sqlite3.Row
            # A value that is not valid UTF-8 (written by another tool, or an older
            # version) must not make every listing fail: it reads with U+FFFD instead.
            conn.text_factory = _decode_text
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            _enable_wal(conn)
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _make_private(self) -> None:
        """Create the workspace readable by its owner only (0700), with its folders.

        Model files, samples, auth files, logs and runtime sockets live here; nothing
        in it is meant for other users of the machine. A folder that already was a
        workspace is tightened if it is ours; an existing folder that is not yet a
        workspace (a project folder, say) keeps its mode, and the workspace's own
        folders inside it are private.
        """
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        folders = [self.artifacts_dir, self.samples_dir, self.staging_dir]
        folders += [self.bundles_dir, self.services_dir, self.run_dir, self.locks_dir]
        names = {p.name for p in folders} | {self.db_path.name}
        names |= {self.db_path.name + "-wal", self.db_path.name + "-shm"}
        with contextlib.suppress(OSError):
            if all(entry in names for entry in os.listdir(self.path)):
                folders.insert(0, self.path)  # holds nothing but a workspace
        for folder in folders:
            folder.mkdir(exist_ok=True, mode=0o700)
            _tighten(folder)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        with self._migrate_lock:
            if self._migrated:
                return
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current < SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # Re-read under the write lock: another process may have migrated.
                    current = conn.execute("PRAGMA user_version").fetchone()[0]
                    for index in range(current, SCHEMA_VERSION):
                        for statement in _split_sql(MIGRATIONS[index]):
                            conn.execute(statement)
                        conn.execute(f"PRAGMA user_version = {index + 1}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            elif current > SCHEMA_VERSION:
                raise NbdeployError(
                    f"workspace database {self.db_path} has schema version {current}, "
                    f"newer than this nbdeploy understands ({SCHEMA_VERSION})",
                    hint="upgrade nbdeploy, or use another workspace folder",
                )
            self._migrated = True

    def _session(self) -> _Session:
        """This thread's reusable connection (a new one after ``fork``)."""
        session: _Session | None = getattr(self._local, "session", None)
        if session is None or session.pid != os.getpid():
            session = _Session(self.connect(), os.getpid())
            self._local.session = session
            with self._pool_lock:
                self._pool.append(session)
        return session

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection inside one (deferred) read transaction.

        Reentrant: inside another :meth:`read` or :meth:`write` block it joins that
        transaction.

        Examples
        --------
        >>> import tempfile
        >>> with Store(tempfile.mkdtemp()).read() as conn:
        ...     conn.execute("SELECT count(*) FROM models").fetchone()[0]
        0
        """
        session = self._session()
        if session.mode is not None:
            yield session.conn
            return
        session.conn.execute("BEGIN")
        session.mode = "read"
        try:
            yield session.conn
        finally:
            session.mode = None
            session.conn.execute("ROLLBACK")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection inside ``BEGIN IMMEDIATE``: committed on success.

        Holding the write lock from the first read makes read-modify-write sequences
        (allocate the next version, update tags) safe across processes. On an
        exception the transaction is rolled back. Inside another :meth:`write` block
        it joins that transaction; inside a :meth:`read` block it is an error (a read
        transaction cannot safely be upgraded under contention).

        Examples
        --------
        >>> import tempfile
        >>> with Store(tempfile.mkdtemp()).write() as conn:
        ...     _ = conn.execute("INSERT INTO model_names VALUES ('m', 0)")
        """
        session = self._session()
        if session.mode == "write":
            yield session.conn
            return
        if session.mode == "read":
            raise NbdeployError(
                "Workspace.write() was called inside a Workspace.read() block",
                hint="open the write transaction first; it can read as well",
            )
        conn = session.conn
        conn.execute("BEGIN IMMEDIATE")
        session.mode = "write"
        try:
            yield conn
        except BaseException:
            session.mode = None
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        session.mode = None
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def service_lock(self, name: str, *, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the lock of service ``name``: one deploy, update or delete of a name at a
        time, across threads and processes.

        An exclusive ``flock`` on ``locks/service-<name>.lock`` (released by the kernel
        when the holder dies, so a killed process never leaves it locked), taken
        again without waiting by the thread that holds it (a deploy that updates, or
        deletes, inside its own lock).

        Raises
        ------
        TargetUnavailableError
            Another process held the lock for ``timeout`` seconds (its PID is named).

        Examples
        --------
        >>> import tempfile
        >>> ws = Store(tempfile.mkdtemp())
        >>> with ws.service_lock("iris"), ws.service_lock("iris"):
        ...     pass
        """
        held = _name_lock(self._lock_path(name))
        held.acquire(timeout, f"service {name!r}")
        try:
            yield
        finally:
            held.release()

    def _lock_path(self, name: str) -> Path:
        if not NAME_PATTERN.fullmatch(name):  # never a path outside locks/
            name = "hash-" + hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:24]
        return self.locks_dir / f"service-{name}.lock"

    def close(self) -> None:
        """Close the connections this object keeps (one per thread); reopened on use.

        Connections are kept because closing the last connection to a WAL database
        checkpoints it, which would cost every registry call a few fsyncs.

        Examples
        --------
        >>> import tempfile
        >>> store = Store(tempfile.mkdtemp())
        >>> with store.read() as conn:
        ...     conn.execute("SELECT count(*) FROM services").fetchone()[0]
        0
        >>> store.close()
        """
        _close_all(self._pool, self._pool_lock)
        self._local = threading.local()

    def gc(self) -> list[Path]:
        """Remove what killed processes left behind; return the removed paths.

        Removes staging folders whose owner is gone (their lock is free), and
        artifact and sample folders no database row refers to (a registration killed
        after moving its files but before committing, or a delete killed after
        committing). Runs under the write lock, so it never races a registration
        that is between moving its files and committing.

        Examples
        --------
        >>> import tempfile
        >>> Store(tempfile.mkdtemp()).gc()
        []
        """
        removed = sweep_staging(self.staging_dir)
        with self.write() as conn:
            rows = conn.execute("SELECT name, version, samples FROM models").fetchall()
            known = {(row[0], row[1]) for row in rows}
            with_samples = {(row[0], row[1]) for row in rows if row[2] not in ("", "{}")}
            removed.extend(_remove_orphans(self.artifacts_dir, known))
            removed.extend(_remove_orphans(self.samples_dir, with_samples))
        return removed

    def __fspath__(self) -> str:
        return str(self.path)


@dataclass
class _Session:
    """A thread's connection, the process that opened it, and its open transaction."""

    conn: sqlite3.Connection
    pid: int
    mode: Literal["read", "write"] | None = None


class _NameLock:
    """A lock file held with ``flock`` by at most one thread of one process at a time.

    Threads of this process queue on a ``threading.RLock``; the thread that owns it
    holds the ``flock`` (one open file per process: two descriptors of one process
    would block each other) and may take it again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._threads = threading.RLock()
        self._owner: int | None = None
        self._depth = 0
        self._fd = -1

    def acquire(self, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        if not self._threads.acquire(timeout=timeout):
            raise TargetUnavailableError(
                f"{what} is being changed by another thread of this process",
                hint="wait for that call to finish",
            )
        try:
            if self._depth == 0:
                self._fd = self._lock_file(deadline, what)
            self._owner = threading.get_ident()
            self._depth += 1
        except BaseException:
            self._threads.release()
            raise

    def _lock_file(self, deadline: float, what: str) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        delay = 0.002
        while not lock_file(fd, blocking=False):
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise TargetUnavailableError(
                    f"{what} is being changed by another process (pid {holder})",
                    hint="wait for that deploy, update or delete to finish, then try again",
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            fd, self._fd = self._fd, -1
            os.close(fd)  # releases the flock
        self._threads.release()


_NAME_LOCKS: dict[Path, _NameLock] = {}
_NAME_LOCKS_GUARD = threading.Lock()


def _name_lock(path: Path) -> _NameLock:
    with _NAME_LOCKS_GUARD:
        lock = _NAME_LOCKS.get(path)
        if lock is None:
            lock = _NAME_LOCKS[path] = _NameLock(path)
        return lock


def _tighten(folder: Path) -> None:
    """Remove group and other permissions from a folder this user owns."""
    try:
        st = folder.stat()
        if st.st_uid == os.geteuid() and st.st_mode & 0o077:
            os.chmod(folder, st.st_mode & 0o700)
    except OSError:
        pass  # not ours, or gone: leave it


def _decode_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _close_all(pool: list[_Session], lock: threading.Lock) -> None:
    """Close the pooled connections this process opened (never those inherited by fork)."""
    pid = os.getpid()
    with lock:
        for session in pool:
            if session.pid == pid:
                session.conn.close()
        pool[:] = [session for session in pool if session.pid != pid]


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (no ``;`` inside literals there)."""
    statements = []
    for chunk in script.split(";"):
        lines = [line.split("--", 1)[0] for line in chunk.splitlines()]
        text = "\n".join(lines).strip()
        if text:
            statements.append(text)
    return statements


def _remove_orphans(base: Path, known: set[tuple[str, int]]) -> list[Path]:
    removed: list[Path] = []
    if not base.is_dir():
        return removed
    for name_dir in base.iterdir():
        if not name_dir.is_dir():
            continue
        for version_dir in name_dir.iterdir():
            version = int(version_dir.name) if version_dir.name.isdigit() else None
            if version is None or (name_dir.name, version) not in known:
                remove_tree(version_dir)
                removed.append(version_dir)
        if not any(name_dir.iterdir()):
            name_dir.rmdir()
    return removed
