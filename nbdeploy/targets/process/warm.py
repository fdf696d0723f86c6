"""The warm-start server: a pre-imported process that forks one child per service.

A plain ``python -m nbdeploy.server`` spends more than a second importing Starlette,
uvicorn, pandas and scikit-learn before it can load a model. The warm server pays
that once per workspace: it imports everything up front, then waits on a unix socket.
A deployment asks it for a server process; it binds the TCP socket itself (so the
port is reserved and known at once, even for port 0), forks, and the child — already
holding every import — goes straight to ``init()``.

Layout (under ``<workspace>/run/``)::

    warm.sock   unix socket (or a short path under /tmp when that is too long)
    warm.pid    {"pid", "start_time", "fingerprint", "socket"} of the running server
    warm.lock   held (flock) by the warm server for its whole life
    warm.log    its own output (capped: it rotates to warm.log.1)
    exit-<pid>.json   how a warm server ended (its launcher's record)

Protocol: one JSON object per connection, one JSON reply::

    {"op": "ping"}                    -> {"ok": true, "pid", "fingerprint", "children"}
    {"op": "spawn", "bundle", "host", "port", "log_file", "exit_dir", "env_file", "cwd",
     "log_level", "reuse_port", "init_before_listen", "handover_socket", "take_over",
     "fingerprint"}
                                      -> {"ok": true, "pid", "port", "start_time"}
                                       | {"ok": false, "error", "kind"}

A spawn binds the TCP socket here, before the fork — except with ``take_over`` (the
running generation's hand-over socket, see :mod:`nbdeploy.server.handover`) and a
fixed port: the child then receives the running generation's listening socket
itself, so this single-threaded server never waits on another process (whose event
loop may be busy in a long ``run()``).
    {"op": "shutdown"}                -> {"ok": true}

The server stays single-threaded (``fork`` from a threaded process can deadlock the
child), reaps its children on SIGCHLD and writes each one's exit status to the file
the request named, so the target can tell "crashed" from "never started". It exits by
itself after ``idle_timeout`` seconds with no live child and no request. Stopping it
never stops the services it started: they run in their own sessions.

Concurrency: a client that finds no live server takes ``warm.lock`` with ``flock``
and hands the locked descriptor to the new server, which keeps it until it exits. A
second client finds the lock taken and waits for the socket instead of starting
another server.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from nbdeploy.exceptions import DeploymentError, InvalidArgumentError, TargetUnavailableError

from .processes import code_fingerprint, peer_credentials, private_socket_dir
from .supervisor import (
    ProcessId,
    launch_nowait,
    parent_pid,
    process_uid,
    run_child,
    terminate,
    write_exit_status,
)

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "PREIMPORTS",
    "WarmPaths",
    "ensure_warm_server",
    "shutdown_warm_server",
    "spawn",
    "warm_server_status",
]

#: Seconds a warm server with no live child and no request waits before exiting.
DEFAULT_IDLE_TIMEOUT = 1800.0

#: Modules the warm server imports before it accepts requests (missing ones are
#: skipped). Chosen with ``python -X importtime``: the server stack, the data stack,
#: and the scikit-learn modules that unpickling common estimators pulls in.
PREIMPORTS: tuple[str, ...] = (
    "asyncio",
    "numpy",
    "pandas",
    "orjson",
    "cloudpickle",
    "starlette.requests",
    "starlette.responses",
    "uvicorn",
    "uvicorn.config",
    "uvicorn.server",
    "uvicorn.main",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.lifespan.on",
    "uvloop",
    "httptools",
    "nbdeploy.core",
    "nbdeploy.core.bundle",
    "nbdeploy.core.scoring",
    "nbdeploy.core.schema",
    "nbdeploy.core.openapi",
    "nbdeploy.core.frameworks",
    "nbdeploy.server",
    "nbdeploy.server.app",
    "sklearn",
    "sklearn.base",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.tree",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.compose",
    "sklearn.impute",
    "sklearn.neighbors",
    "sklearn.svm",
    "joblib",
)

_MAX_REQUEST_BYTES = 1 << 20
_SOCKET_PATH_LIMIT = 100  # AF_UNIX paths are limited to 108 bytes including the NUL.


@dataclass(frozen=True)
class WarmPaths:
    """Where the warm server of one workspace keeps its socket, pid, lock and log.

    Examples
    --------
    >>> paths = WarmPaths.for_workspace("/tmp/ws")
    >>> paths.pid_file.name, paths.socket.endswith(".sock")
    ('warm.pid', True)
    """

    run_dir: Path
    socket: str
    #: Why no socket can be used (a hostile private socket folder), or ``None``.
    problem: str | None = None

    @classmethod
    def for_workspace(cls, workspace: Any) -> WarmPaths:
        """Paths for ``workspace`` (a :class:`~nbdeploy.core.workspace.Workspace` or a
        folder). The socket is ``<workspace>/run/warm.sock`` (the workspace is 0700);
        when that path is too long for a unix socket it goes into this user's private
        socket folder (:func:`~nbdeploy.targets.process.processes.private_socket_dir`), named by
        a hash of the workspace path — never at a predictable path others can bind."""
        root = Path(getattr(workspace, "path", workspace)).expanduser().absolute()
        run_dir = root / "run"
        sock = str(run_dir / "warm.sock")
        if len(os.fsencode(sock)) > _SOCKET_PATH_LIMIT:
            key = hashlib.sha256(os.fsencode(str(root))).hexdigest()[:16]
            try:
                sock = str(private_socket_dir() / f"warm-{key}.sock")
            except TargetUnavailableError as exc:
                return cls(run_dir, "", exc.message)
        return cls(run_dir, sock)

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "warm.pid"

    @property
    def lock_file(self) -> Path:
        return self.run_dir / "warm.lock"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "warm.log"


def _request(paths: WarmPaths, message: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send one request and read the reply (with ``"peer_pid"`` added: the server's
    PID as the kernel reports it); OSError / ValueError when unreachable.

    Raises
    ------
    TargetUnavailableError
        The process listening there runs as another user: nothing is sent to it.
    """
    if paths.problem:
        raise TargetUnavailableError(paths.problem, hint="deploy with warm_start=False")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(paths.socket)
        peer_pid, peer_uid, _ = peer_credentials(conn)
        if peer_uid != os.geteuid():
            raise TargetUnavailableError(
                f"the warm-start server socket {paths.socket} is held by uid {peer_uid} "
                f"(pid {peer_pid}), not by this user; nothing was sent to it",
                hint=f"remove {paths.socket} if you do not know that process",
            )
        conn.sendall(json.dumps(message).encode("utf-8") + b"\n")
        conn.shutdown(socket.SHUT_WR)
        chunks: list[bytes] = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    reply = json.loads(b"".join(chunks) or b"null")
    if not isinstance(reply, dict):
        raise ValueError(f"unexpected reply from the warm server: {reply!r}")
    reply["peer_pid"] = peer_pid
    return reply


def _read_pid_file(paths: WarmPaths) -> dict[str, Any] | None:
    try:
        data = json.loads(paths.pid_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "pid" in data else None


def _lock_is_held(paths: WarmPaths) -> bool:
    """True while some process (a warm server, or a client starting one) holds the lock."""
    try:
        fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def warm_server_status(workspace: Any, *, timeout: float = 2.0) -> dict[str, Any] | None:
    """Ping the warm server of ``workspace``: its pid, fingerprint and live children,
    or ``None`` when none answers.

    Examples
    --------
    >>> import tempfile
    >>> warm_server_status(tempfile.mkdtemp()) is None
    True
    """
    paths = WarmPaths.for_workspace(workspace)
    try:
        return _request(paths, {"op": "ping"}, timeout)
    except (OSError, ValueError):
        return None


def _start(paths: WarmPaths, lock_fd: int, idle_timeout: float, fingerprint: str) -> None:
    """Launch a detached warm server that inherits the locked ``lock_fd`` (without
    waiting: the caller learns of it from its socket)."""
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    for stale in (paths.socket, paths.pid_file):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stale)
    launch_nowait(
        [
            "-m",
            "nbdeploy.targets.process.warm",
            "--run-dir",
            str(paths.run_dir),
            "--socket",
            paths.socket,
            "--lock-fd",
            str(lock_fd),
            "--idle-timeout",
            repr(float(idle_timeout)),
            "--fingerprint",
            fingerprint,
        ],
        log_file=paths.log_file,
        exit_dir=paths.run_dir,
        cwd=paths.run_dir,
        pass_fds=(lock_fd,),
    )


def _start_unless_starting(paths: WarmPaths, idle_timeout: float, fingerprint: str) -> None:
    """Start a server unless another process holds the lock (it starts or runs one)."""
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)  # A server is starting or running: wait for its socket.
        return
    try:
        _start(paths, fd, idle_timeout, fingerprint)
    finally:
        os.close(fd)  # The server's inherited copy keeps the lock.


def _await_socket(workspace: Any, paths: WarmPaths, deadline: float, timeout: float) -> None:
    """Poll for the server's socket until it answers; return early when the lock is
    free (the server died).

    Raises
    ------
    TargetUnavailableError
        Nothing answered by ``deadline``.
    """
    while time.monotonic() < deadline:
        if os.path.exists(paths.socket):
            status = warm_server_status(workspace, timeout=1.0)
            if status is not None and status.get("ok"):
                return
        if not _lock_is_held(paths):
            return
        time.sleep(0.01)
    raise TargetUnavailableError(
        f"the warm-start server did not answer within {timeout:g} s",
        hint=f"see {paths.log_file}, or deploy with warm_start=False",
    )


def ensure_warm_server(
    workspace: Any,
    *,
    wait: bool = False,
    timeout: float = 60.0,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> dict[str, Any] | None:
    """Make sure the warm-start server of ``workspace`` runs current code.

    Starts one (detached) if none runs, replaces one that pre-imported other code, and
    otherwise does nothing — cheap enough to call at import of the notebook extension
    and before every deploy. Two processes calling it at once start one server.

    Parameters
    ----------
    workspace:
        A :class:`~nbdeploy.core.workspace.Workspace` or its folder.
    wait:
        Block until the server answers (it needs over a second for its imports).
        With ``False`` it returns at once; a deploy waits later if needed.
    timeout:
        Seconds to wait when ``wait`` is true.
    idle_timeout:
        Seconds a new server lingers with no live child and no request.

    Returns
    -------
    dict or None
        The server's ping reply (``pid``, ``fingerprint``, ``children``) when it
        answers, else ``None`` (still starting).

    Raises
    ------
    TargetUnavailableError
        ``wait`` is true and no server answered within ``timeout`` (see
        ``run/warm.log`` of the workspace).

    Examples
    --------
    >>> import tempfile
    >>> ws = tempfile.mkdtemp()
    >>> ensure_warm_server(ws, wait=True)["ok"]   # doctest: +SKIP
    True
    >>> shutdown_warm_server(ws)                  # doctest: +SKIP
    True
    """
    if not hasattr(os, "fork"):
        raise TargetUnavailableError(
            "warm start needs os.fork, which this platform lacks",
            hint="deploy with warm_start=False",
        )
    paths = WarmPaths.for_workspace(workspace)
    fingerprint = code_fingerprint()
    deadline = time.monotonic() + (timeout if wait else 0.0)
    replaced = False
    starts = 0
    while True:
        status = warm_server_status(workspace, timeout=1.0)
        if _runs(status, fingerprint):
            return status
        if status is not None and status.get("ok") and not replaced:
            # It pre-imported other code: replace it (its services keep running).
            replaced = True
            shutdown_warm_server(workspace)
            continue
        _start_unless_starting(paths, idle_timeout, fingerprint)
        if not wait:
            return None
        _await_socket(workspace, paths, deadline, timeout)
        status = warm_server_status(workspace, timeout=1.0)
        if _runs(status, fingerprint):
            return status
        starts += 1
        if time.monotonic() >= deadline or starts >= 3:
            raise TargetUnavailableError(
                "the warm-start server exited during start-up",
                hint=f"see {paths.log_file}, or deploy with warm_start=False",
            )


def _runs(status: dict[str, Any] | None, fingerprint: str) -> bool:
    """Whether a ping reply comes from a warm server that pre-imported this code."""
    return (
        status is not None and bool(status.get("ok")) and status.get("fingerprint") == fingerprint
    )


def shutdown_warm_server(workspace: Any, *, timeout: float = 10.0) -> bool:
    """Stop the warm-start server of ``workspace`` by its PID; True if one ran.

    The services it started keep running (they live in their own sessions).

    Examples
    --------
    >>> import tempfile
    >>> shutdown_warm_server(tempfile.mkdtemp())
    False
    """
    paths = WarmPaths.for_workspace(workspace)
    info = _read_pid_file(paths)
    if info is None:
        return False
    proc = ProcessId.from_dict(info)
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    except OSError:
        cmdline = b""
    if b"nbdeploy.targets.process.warm" not in cmdline or not proc.alive():
        return False
    stopped = terminate(proc, timeout)
    # Wait for the lock to be released so a new server can start right away.
    deadline = time.monotonic() + timeout
    while _lock_is_held(paths) and time.monotonic() < deadline:
        time.sleep(0.005)
    return stopped


def spawn(workspace: Any, request: dict[str, Any], *, timeout: float = 60.0) -> dict[str, Any]:
    """Ask the warm server to start one server process; returns ``{"pid", "port",
    "start_time"}``.

    Starts (and waits for) the warm server if needed.

    Raises
    ------
    InvalidArgumentError
        The port cannot be bound (in use, or a bad host).
    TargetUnavailableError
        No warm server could be reached; the caller falls back to a plain process.
    DeploymentError
        The warm server could not fork.
    """
    fingerprint = code_fingerprint()
    message = {"op": "spawn", "fingerprint": fingerprint, **request}
    paths = WarmPaths.for_workspace(workspace)
    # Ask directly first (the usual case: the server is up and current); start or
    # replace it only when that fails.
    for attempt in range(3):
        try:
            reply = _request(paths, message, timeout=30.0)
        except (OSError, ValueError) as exc:
            if attempt == 2:
                raise TargetUnavailableError(
                    f"the warm-start server did not answer: {exc}",
                    hint="deploy with warm_start=False",
                ) from None
            ensure_warm_server(workspace, wait=True, timeout=timeout)
            continue
        if reply.get("ok"):
            reply["process"] = _own_child(reply)
            return reply
        kind = reply.get("kind")
        if kind == "stale" and attempt < 2:
            shutdown_warm_server(workspace)
            ensure_warm_server(workspace, wait=True, timeout=timeout)
            continue
        error = str(reply.get("error", "unknown error"))
        if kind == "bind":
            raise InvalidArgumentError(error, hint="pick another port, or port=0 for a free one")
        raise DeploymentError(f"the warm-start server could not start the service: {error}")
    raise TargetUnavailableError(
        "the warm-start server kept running other code", hint="deploy with warm_start=False"
    )


def _own_child(reply: dict[str, Any]) -> ProcessId:
    """The process a spawn reply names, checked — never taken on the server's word:
    it must be a child of the server we talked to (the kernel told us its PID) and
    run as this user. Its start time is read here, not from the reply. A child that
    already exited cannot be checked and is recorded as gone (it is never signalled).

    Raises
    ------
    TargetUnavailableError
        The PID belongs to a process the warm-start server did not start.
    """
    pid = int(reply["pid"])
    parent, uid = parent_pid(pid), process_uid(pid)
    proc = ProcessId.of(pid)
    if parent is None or uid is None or proc.start_time is None:
        return ProcessId(pid, -1)  # gone already: its exit status tells why
    if parent != reply["peer_pid"] or uid != os.geteuid():
        raise TargetUnavailableError(
            f"the warm-start server named pid {pid}, which it did not start "
            f"(parent {parent}, uid {uid})",
            hint="deploy with warm_start=False, and check the processes of this machine",
        )
    return proc


class _WarmServer:
    def __init__(
        self,
        run_dir: Path,
        socket_path: str,
        lock_fd: int,
        idle_timeout: float,
        fingerprint: str,
    ) -> None:
        self.run_dir = run_dir
        self.socket_path = socket_path
        self.lock_fd = lock_fd
        self.idle_timeout = idle_timeout
        self.fingerprint = fingerprint
        self.children: dict[int, str | None] = {}  # pid -> folder for exit-<pid>.json
        self.last_activity = time.monotonic()
        self.stop = False
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.wake_r, self.wake_w = socket.socketpair()

    # The pre-imports: each failure is only logged (an optional library is missing).
    @staticmethod
    def preimport() -> None:
        import importlib

        started = time.perf_counter()
        for module in PREIMPORTS:
            try:
                importlib.import_module(module)
            except Exception as exc:
                print(f"warm: skipped {module}: {type(exc).__name__}: {exc}", flush=True)
        print(f"warm: pre-imported in {time.perf_counter() - started:.2f} s", flush=True)

    def listen(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        old_umask = os.umask(0o077)
        try:
            self.listener.bind(self.socket_path)
        finally:
            os.umask(old_umask)
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.last_activity = time.monotonic()  # idle time counts from now, not launch

    def _on_stop(self, *_: object) -> None:
        self.stop = True

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            exit_dir = self.children.pop(pid, None)
            if exit_dir:
                write_exit_status(Path(exit_dir) / f"exit-{pid}.json", pid, status)
            self.last_activity = time.monotonic()

    def serve_forever(self) -> None:
        while not self.stop:
            self.reap()
            idle_for = time.monotonic() - self.last_activity
            if not self.children and idle_for >= self.idle_timeout:
                print("warm: idle, exiting", flush=True)
                break
            wait = max(0.05, min(60.0, self.idle_timeout - idle_for))
            for key, _ in self.selector.select(timeout=wait):
                if key.fileobj is self.wake_r:
                    with contextlib.suppress(OSError):
                        while self.wake_r.recv(4096):
                            pass
                elif key.fileobj is self.listener:
                    self.accept()

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        self.last_activity = time.monotonic()
        with conn:
            conn.setblocking(True)
            conn.settimeout(5.0)
            _, uid, _ = peer_credentials(conn)
            try:
                data = b""
                while len(data) < _MAX_REQUEST_BYTES:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                # Read first, refuse then: closing with unread bytes would reset the
                # connection before the refusal is read.
                if uid not in (os.geteuid(), 0):
                    print(f"warm: refused a request from uid {uid}", flush=True)
                    reply = {"ok": False, "kind": "peer", "error": "not your server"}
                else:
                    reply = self.handle(json.loads(data), conn)
            except Exception as exc:  # a bad request must not stop the server
                reply = {"ok": False, "kind": "request", "error": f"{type(exc).__name__}: {exc}"}
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(reply).encode("utf-8"))

    def handle(self, request: Any, conn: socket.socket) -> dict[str, Any]:
        if not isinstance(request, dict):
            return {"ok": False, "kind": "request", "error": "expected a JSON object"}
        op = request.get("op")
        if op == "ping":
            return {
                "ok": True,
                "pid": os.getpid(),
                "fingerprint": self.fingerprint,
                "children": sorted(self.children),
            }
        if op == "shutdown":
            self.stop = True
            return {"ok": True}
        if op == "spawn":
            if request.get("fingerprint") != self.fingerprint:
                return {
                    "ok": False,
                    "kind": "stale",
                    "error": "the warm server pre-imported other code",
                }
            return self.spawn(request, conn)
        return {"ok": False, "kind": "request", "error": f"unknown op {op!r}"}

    def spawn(self, request: dict[str, Any], conn: socket.socket) -> dict[str, Any]:
        host = str(request["host"])
        port = int(request["port"])
        if request.get("take_over") and port:
            # The child takes the running generation's socket (or binds the port).
            return self._fork(request, None, port, conn)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if request.get("reuse_port"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            if not request.get("init_before_listen"):
                # Listening now queues the first requests while init() runs.
                sock.listen(2048)
        except OSError as exc:
            sock.close()
            return {
                "ok": False,
                "kind": "bind",
                "error": f"cannot bind {host}:{port}: {exc.strerror or exc}",
            }
        return self._fork(request, sock, sock.getsockname()[1], conn)

    def _fork(
        self,
        request: dict[str, Any],
        sock: socket.socket | None,
        bound_port: int,
        conn: socket.socket,
    ) -> dict[str, Any]:
        try:
            pid = os.fork()
        except OSError as exc:
            if sock is not None:
                sock.close()
            return {"ok": False, "kind": "fork", "error": f"fork failed: {exc}"}
        if pid == 0:  # pragma: no cover - runs in the child, measured by the tests
            self._child(request, sock, bound_port, conn)
        if sock is not None:
            sock.close()
        self.children[pid] = request.get("exit_dir")
        return {
            "ok": True,
            "pid": pid,
            "port": bound_port,
            "start_time": ProcessId.of(pid).start_time,
        }

    def _child(
        self,
        request: dict[str, Any],
        sock: socket.socket | None,
        port: int,
        conn: socket.socket,
    ) -> NoReturn:
        """In the forked child: let go of the warm server (its signal handlers and
        descriptors — above all the lock, or a dead warm server could never be
        replaced), then run the service through the supervisor's :func:`run_child`.
        The warm server, its parent, reaps it and records how it ended."""
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
            self.selector.close()
            for obj in (self.listener, self.wake_r, self.wake_w, conn):
                obj.close()
            os.close(self.lock_fd)
        except BaseException:
            os._exit(1)  # never return into the warm server's loop
        run_child(request["log_file"], lambda: _serve(request, sock, port))


def _serve(request: dict[str, Any], sock: socket.socket | None, port: int) -> int:
    """Run the server a spawn request asks for, in the child (the exit code)."""
    env = _read_env_file(request.get("env_file"))
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    cwd = request.get("cwd")
    if cwd:
        os.chdir(cwd)
    if "numpy" in sys.modules:
        # Forked children share the parent's global numpy random state.
        sys.modules["numpy"].random.seed()
    from nbdeploy.server import serve

    # Only ask for the hand-over options when needed (a plain deploy does not).
    options: dict[str, Any] = {}
    if request.get("reuse_port"):
        options["reuse_port"] = True
    if request.get("init_before_listen"):
        options["init_before_listen"] = True
    for key in ("handover_socket", "take_over"):
        if request.get(key):
            options[key] = str(request[key])
    return serve(
        request["bundle"],
        str(request["host"]),
        port,
        sock=sock,
        log_level=str(request.get("log_level") or "info"),
        **options,
    )


def write_env_file(folder: Path) -> Path:
    """This process's environment in a new file readable by this user only (0600), for
    a spawned child to read (:func:`_read_env_file`). The environment (tokens,
    passwords) never crosses the warm server's socket: only this path does."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f".env-{secrets.token_hex(8)}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(dict(os.environ), fh)
    return path


def _read_env_file(path: object) -> dict[str, str] | None:
    """The environment a deploy left for this child, read once and removed."""
    if not isinstance(path, str) or not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


def _main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m nbdeploy.targets.process.warm")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--lock-fd", type=int, required=True)
    parser.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT)
    parser.add_argument("--fingerprint", required=True)
    args = parser.parse_args(argv)

    # Started by the supervisor's launcher (see _start): already detached, in its own
    # session, its output in the capped warm.log.
    run_dir = Path(args.run_dir)
    me = ProcessId.of(os.getpid())
    info = {**me.to_dict(), "fingerprint": args.fingerprint, "socket": args.socket}
    tmp = run_dir / "warm.pid.tmp"
    tmp.write_text(json.dumps(info), encoding="utf-8")
    os.replace(tmp, run_dir / "warm.pid")
    print(f"warm: pid {me.pid} starting (fingerprint {args.fingerprint})", flush=True)
    server = _WarmServer(run_dir, args.socket, args.lock_fd, args.idle_timeout, args.fingerprint)
    try:
        server.preimport()
        import threading

        if threading.active_count() != 1:
            print("warm: a pre-import started a thread; refusing to fork from it", flush=True)
            return 2
        server.listen()
        print(f"warm: listening on {args.socket}", flush=True)
        server.serve_forever()
    finally:
        with contextlib.suppress(OSError):
            if os.stat(args.socket) and _pid_file_is_mine(run_dir, me.pid):
                os.unlink(args.socket)
        if _pid_file_is_mine(run_dir, me.pid):
            with contextlib.suppress(OSError):
                os.unlink(run_dir / "warm.pid")
        print(f"warm: pid {me.pid} stopped", flush=True)
    return 0


def _pid_file_is_mine(run_dir: Path, pid: int) -> bool:
    try:
        return bool(json.loads((run_dir / "warm.pid").read_text())["pid"] == pid)
    except (OSError, ValueError, KeyError, TypeError):
        return False


if __name__ == "__main__":
    sys.exit(_main())
