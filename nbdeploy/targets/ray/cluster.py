"""The workspace's embedded Ray cluster: one head per workspace, started on first use,
found again by any later process, stopped by its own PIDs.

No Ray import: the head is the ``ray start --head --block`` command, run detached
(its own session and process group) with

- every address on 127.0.0.1 and every port it would otherwise fix (GCS, Ray Client,
  dashboard, dashboard agent) chosen free, so two workspaces' heads never clash;
- usage statistics off, and Ray's "usage disabled" report pointed at a closed
  loopback port (it would otherwise resolve Ray's collector), and a private ``HOME``
  holding ``ray_bootstrap_config.yaml`` = ``{}`` (without it, Ray's dashboard probes
  the cloud metadata addresses to guess a cloud provider). Replicas get the user's
  ``HOME`` back through their runtime environment (:mod:`.application`);
- its own temporary folder ``/tmp/nbdeploy-<uid>/ray-<hash>`` (short: Ray's unix
  sockets live there), so nothing reads or writes ``/tmp/ray`` (Ray's default, whose
  ``ray_current_cluster`` file would make a plain ``ray.init()`` join whatever
  cluster last ran on the machine);
- token authentication on, with a token file of its own: a shared machine's other
  users cannot drive the cluster, and a token lying in ``~/.ray`` does not change how
  nbdeploy connects.

The record ``<workspace>/run/ray-head.json`` holds the address, the token file and the
head's processes (PID and start time each, the start time guarding against reused
PIDs). :func:`stop_cluster` ends them — the ``ray start`` process first (it shuts its
children down), then whatever is left of its process group — and never runs ``ray
stop``, which kills every Ray process of the machine by name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbdeploy.exceptions import TargetUnavailableError
from nbdeploy.targets.process.processes import private_socket_dir, read_log_tail
from nbdeploy.targets.process.supervisor import ProcessId, terminate_all

__all__ = ["EmbeddedCluster", "HeadRecord", "cluster_status", "free_port", "stop_cluster"]

#: Seconds a head may take to start (2 shared cores: usually 5-15 s).
START_TIMEOUT = 180.0
#: The line ``ray start`` prints once the head runs.
_STARTED = "Ray runtime started"
#: The object store of the embedded head (bytes): requests and answers are small.
OBJECT_STORE_BYTES = 256 * 1024 * 1024
#: The file and the ``ray start`` output in the workspace's ``run/`` folder.
RECORD_NAME = "ray-head.json"
#: The ``ray start`` processes this process started, by PID (see ``_start``).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
LOG_NAME = "ray-head.log"


def free_port() -> int:
    """A port free on 127.0.0.1 now (for a daemon that binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _NotStarted(TargetUnavailableError):
    """The head's ``ray start`` failed or timed out (its processes are ended)."""


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _group_of(pgid: int) -> list[ProcessId]:
    """The processes of process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _pgid(int(entry.name)) == pgid:
            found.append(ProcessId.of(int(entry.name)))
    return [p for p in found if p.start_time is not None]


def _group(leader: ProcessId) -> list[ProcessId]:
    """The processes of ``leader``'s process group (Ray's daemons and workers), while
    the leader is the process recorded (else the group id may belong to another)."""
    return _group_of(leader.pid)


@dataclass(frozen=True)
class HeadRecord:
    """A running embedded head (see the module docstring).

    Examples
    --------
    >>> head = HeadRecord("127.0.0.1:41000", ProcessId(1, 2), "/tmp/x", "/tmp/x/token",
    ...                   "/home/me", ())
    >>> HeadRecord.from_dict(head.to_dict()) == head
    True
    """

    address: str
    process: ProcessId
    temp_dir: str
    token_file: str
    user_home: str
    processes: tuple[ProcessId, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "process": self.process.to_dict(),
            "temp_dir": self.temp_dir,
            "token_file": self.token_file,
            "user_home": self.user_home,
            "processes": [p.to_dict() for p in self.processes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadRecord:
        return cls(
            str(data["address"]),
            ProcessId.from_dict(data["process"]),
            str(data["temp_dir"]),
            str(data["token_file"]),
            str(data["user_home"]),
            tuple(ProcessId.from_dict(p) for p in data.get("processes", ())),
        )

    def alive(self) -> bool:
        """Whether the head's ``ray start`` process still runs."""
        return self.process.alive()

    def driver_env(self) -> dict[str, str]:
        """What a process connecting to this head needs in its environment."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": self.token_file}


class EmbeddedCluster:
    """The embedded cluster of the workspace whose ``run/`` folder is ``run_dir``.

    Examples
    --------
    >>> import tempfile
    >>> EmbeddedCluster(tempfile.mkdtemp()).current() is None
    True
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.record_path = self.run_dir / RECORD_NAME
        self.log_path = self.run_dir / LOG_NAME

    @property
    def temp_dir(self) -> Path:
        """Ray's temporary folder for this workspace: short, private to this user."""
        digest = hashlib.sha256(str(self.run_dir.absolute()).encode()).hexdigest()[:10]
        return private_socket_dir() / f"ray-{digest}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "ray-head.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def current(self) -> HeadRecord | None:
        """The recorded head if its process still runs."""
        try:
            record = HeadRecord.from_dict(json.loads(self.record_path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return record if record.alive() else None

    def ensure(self, show_output: bool = False, timeout: float = START_TIMEOUT) -> HeadRecord:
        """The running head, started first if there is none (one process at a time).

        Raises
        ------
        TargetUnavailableError
            Ray is not installed, or the head did not start (with its output's end).
        """
        with self._locked():
            running = self.current()
            if running is not None:
                return running
            self._clean_leftovers()
            if show_output:
                print(f"starting the workspace's Ray cluster (temp dir {self.temp_dir})")
            try:
                head = self._start(timeout)
            except _NotStarted:
                # Ray gives its raylet a fixed 30 s to register with the GCS; on a
                # busy machine (2 shared cores) that can pass: once more, then say so.
                head = self._start(timeout)
            self._write(head)
            if show_output:
                print(f"Ray cluster running at {head.address}", flush=True)
            return head

    def _write(self, head: HeadRecord) -> None:
        partial = self.record_path.with_suffix(".tmp")
        partial.write_text(json.dumps(head.to_dict(), indent=1))
        os.chmod(partial, 0o600)
        partial.replace(self.record_path)

    def _clean_leftovers(self) -> None:
        """Stop what a dead head left (its recorded processes) and drop its record."""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            _terminate(HeadRecord.from_dict(json.loads(self.record_path.read_text())))
        self.record_path.unlink(missing_ok=True)

    def _command(self, gcs_port: int) -> list[str]:
        ray = Path(sys.executable).with_name("ray")
        executable = str(ray) if ray.exists() else shutil.which("ray")
        if executable is None:
            raise TargetUnavailableError(
                "the Ray target needs Ray, which is not installed",
                hint='pip install "nbdeploy[ray]"',
            )
        return [
            executable,
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={gcs_port}",
            f"--ray-client-server-port={free_port()}",
            "--include-dashboard=false",
            f"--dashboard-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            "--disable-usage-stats",
            f"--object-store-memory={OBJECT_STORE_BYTES}",
            f"--temp-dir={self.temp_dir}",
            "--log-style=record",
            "--log-color=false",
        ]

    def _environment(self, token_file: Path, home: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
        env.update(
            RAY_USAGE_STATS_ENABLED="0",
            RAY_USAGE_STATS_REPORT_URL="http://127.0.0.1:9/",
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN_PATH=str(token_file),
            HOME=str(home),
        )
        return env

    def _start(self, timeout: float) -> HeadRecord:
        temp = self.temp_dir
        temp.mkdir(mode=0o700, parents=True, exist_ok=True)
        home = temp / "home"
        home.mkdir(mode=0o700, exist_ok=True)
        (home / "ray_bootstrap_config.yaml").write_text("{}\n")
        # One token for all of this user's embedded clusters: Ray loads the token once
        # per process, so a kernel that used one workspace's cluster could not
        # authenticate to another's with a different token.
        token_file = private_socket_dir() / "ray-auth-token"
        if not token_file.exists():
            token_file.write_text(secrets.token_hex(32))
            os.chmod(token_file, 0o600)
        gcs_port = free_port()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            child = subprocess.Popen(
                self._command(gcs_port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=temp,
                env=self._environment(token_file, home),
                start_new_session=True,
            )
        finally:
            log.close()
        # Kept referenced: the head outlives this call, and a dropped Popen of a
        # running process warns; stop() reaps it when this process stops it.
        _CHILDREN[child.pid] = child
        leader = ProcessId.of(child.pid)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._await_start(child, offset, timeout)
        return HeadRecord(
            f"127.0.0.1:{gcs_port}",
            leader,
            str(temp),
            str(token_file),
            os.path.expanduser("~"),
            tuple(_group(leader)),
        )

    def _await_start(self, child: subprocess.Popen[bytes], offset: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while time.monotonic() < deadline:
            if child.poll() is not None:
                # Its daemons may still run (the GCS): the group goes with it. The
                # group's id cannot be reused while a member lives.
                terminate_all(_group_of(child.pid), 30.0)
                _CHILDREN.pop(child.pid, None)
                raise _NotStarted(
                    f"the workspace's Ray cluster did not start (ray start exited with "
                    f"code {child.returncode}): {self._log_end()}",
                    hint=f"the whole output is in {self.log_path}",
                )
            with contextlib.suppress(OSError), open(self.log_path, "rb") as fh:
                fh.seek(offset)
                if _STARTED.encode() in fh.read():
                    return
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        _terminate_group(ProcessId.of(child.pid))
        raise _NotStarted(
            f"the workspace's Ray cluster did not start within {timeout:g} s: {self._log_end()}",
            hint=f"the whole output is in {self.log_path}",
        )

    def _log_end(self) -> str:
        lines = read_log_tail(self.log_path, 5).strip().splitlines()
        return " | ".join(line.strip() for line in lines) or "(no output)"

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the head and every process of its group, by PID; True if one ran."""
        with self._locked():
            try:
                head = HeadRecord.from_dict(json.loads(self.record_path.read_text()))
            except (OSError, ValueError, KeyError, TypeError):
                return False
            running = head.alive()
            # This process leaves the cluster first: a Ray driver whose cluster is gone
            # ends its own process a minute later (the kernel that stopped it).
            from . import session

            session.disconnect(head.address)
            _terminate(head, timeout)
            child = _CHILDREN.pop(head.process.pid, None)
            if child is not None:
                child.wait(timeout)
            self.record_path.unlink(missing_ok=True)
            # Its sockets, object spill and session logs: nothing of the cluster is
            # left once its processes are gone (the head's own output stays in run/).
            if Path(head.temp_dir) == self.temp_dir and not any(
                p.alive() for p in _group(head.process)
            ):
                shutil.rmtree(head.temp_dir, ignore_errors=True)
            return running


def _terminate_group(leader: ProcessId, timeout: float = 30.0) -> None:
    members = _group(leader) if leader.alive() else []
    _terminate_processes(leader, members, timeout)


def _terminate(head: HeadRecord, timeout: float = 30.0) -> None:
    members = _group(head.process) if head.alive() else []
    _terminate_processes(head.process, [*head.processes, *members], timeout)


def _terminate_processes(leader: ProcessId, others: list[ProcessId], timeout: float) -> None:
    """SIGTERM the ``ray start`` process (it stops its children), wait, then SIGTERM
    and finally SIGKILL every other recorded or grouped process still there."""
    deadline = time.monotonic() + timeout
    if leader.signal(signal.SIGTERM):
        leader.wait_gone(timeout / 2)
    left = [p for p in {*others, leader} if p.alive()]
    terminate_all(left, max(0.0, deadline - time.monotonic()))


def stop_cluster(workspace: Any) -> bool:
    """Stop the embedded Ray cluster of ``workspace`` (its services stop with it);
    True if one was running. Never Ray's own stop command: only this workspace's processes.

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> stop_cluster(Workspace(tempfile.mkdtemp()))
    False
    """
    return EmbeddedCluster(workspace.run_dir).stop()


def cluster_status(workspace: Any) -> dict[str, Any] | None:
    """The embedded cluster of ``workspace`` (address, PIDs), or ``None`` if it does
    not run.

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> cluster_status(Workspace(tempfile.mkdtemp())) is None
    True
    """
    head = EmbeddedCluster(workspace.run_dir).current()
    if head is None:
        return None
    alive = [p.pid for p in head.processes if p.alive()]
    return {"address": head.address, "pid": head.process.pid, "pids": alive}
