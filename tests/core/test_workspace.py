"""Workspace: layout, database settings, migrations, transactions, garbage collection."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from nbdeploy.core import staging as staging_module
from nbdeploy.core.registry import Registry
from nbdeploy.core.services import ServiceStore
from nbdeploy.core.staging import LOCK_NAME, StagingFolder, sweep_staging
from nbdeploy.core.store import SCHEMA_VERSION
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import NbdeployError


def test_layout_paths_follow_the_contract(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "home")
    assert ws.path == tmp_path / "home"
    assert ws.db_path == ws.path / "nbdeploy.db"
    assert ws.artifacts_dir == ws.path / "artifacts"
    assert ws.samples_dir == ws.path / "samples"
    assert ws.staging_dir == ws.path / "staging"
    assert ws.bundles_dir == ws.path / "bundles"
    assert ws.services_dir == ws.path / "services"
    assert ws.run_dir == ws.path / "run"


def test_nothing_is_created_until_first_use(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "lazy")
    assert repr(ws) == f"Workspace({str(tmp_path / 'lazy')!r})"
    assert not ws.path.exists()
    ws.connect().close()
    assert ws.db_path.is_file()


def test_relative_and_user_paths_are_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Workspace("rel").path == tmp_path / "rel"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Workspace("~/ws").path == tmp_path / "home" / "ws"


def test_connection_settings(workspace: Workspace) -> None:
    conn = workspace.connect()
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.isolation_level is None
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"models", "model_names", "services"} <= tables
    finally:
        conn.close()


def test_migrations_run_once_across_workspace_objects(workspace: Workspace) -> None:
    workspace.connect().close()
    again = Workspace(workspace.path)
    conn = again.connect()
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


def test_a_newer_database_is_refused(workspace: Workspace) -> None:
    conn = workspace.connect()
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(NbdeployError, match="newer than this nbdeploy") as info:
        Workspace(workspace.path).connect()
    assert info.value.hint is not None
    assert "upgrade nbdeploy" in info.value.hint


def test_parts_are_cached(workspace: Workspace) -> None:
    assert isinstance(workspace.registry, Registry)
    assert isinstance(workspace.services, ServiceStore)
    assert workspace.registry is workspace.registry
    assert workspace.services is workspace.services
    assert workspace.registry.workspace is workspace


def test_write_commits_on_success(workspace: Workspace) -> None:
    with workspace.write() as conn:
        conn.execute("INSERT INTO model_names VALUES ('m', 7)")
    with workspace.read() as conn:
        assert conn.execute("SELECT last_version FROM model_names").fetchone()[0] == 7


def _insert_then_fail(ws: Workspace) -> None:
    with ws.write() as conn:
        conn.execute("INSERT INTO model_names VALUES ('m', 7)")
        raise RuntimeError("boom")


def test_write_rolls_back_on_error(workspace: Workspace) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        _insert_then_fail(workspace)
    with workspace.read() as conn:
        assert conn.execute("SELECT count(*) FROM model_names").fetchone()[0] == 0


def test_write_holds_the_write_lock(workspace: Workspace) -> None:
    with workspace.write():
        other = sqlite3.connect(workspace.db_path, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()


def test_workspaces_compare_by_path(tmp_path: Path) -> None:
    assert Workspace(tmp_path) == Workspace(str(tmp_path))
    assert len({Workspace(tmp_path), Workspace(tmp_path)}) == 1
    assert os.fspath(Workspace(tmp_path)) == str(tmp_path)


def test_live_staging_folder_survives_a_sweep(workspace: Workspace) -> None:
    with StagingFolder(workspace.staging_dir) as staging:
        assert (staging.path / LOCK_NAME).read_text() == str(os.getpid())
        assert sweep_staging(workspace.staging_dir) == []
        assert workspace.gc() == []
        assert staging.path.is_dir()
    assert not staging.path.exists()


def test_abandoned_staging_folder_is_swept(workspace: Workspace) -> None:
    # What a SIGKILLed owner leaves: a lock file with its PID, and nobody holding it.
    dead = workspace.staging_dir / "dead"
    (dead / "model").mkdir(parents=True)
    (dead / LOCK_NAME).write_text("12345")
    (dead / "model" / "model.pkl").write_bytes(b"x")
    assert workspace.gc() == [dead]
    assert not dead.exists()


def test_lockless_staging_folder_is_swept_only_when_old(workspace: Workspace) -> None:
    young = workspace.staging_dir / "young"
    young.mkdir(parents=True)
    assert sweep_staging(workspace.staging_dir) == []
    old_time = young.stat().st_mtime - staging_module.STAGING_GRACE_SECONDS - 10
    os.utime(young, (old_time, old_time))
    assert sweep_staging(workspace.staging_dir) == [young]


def test_gc_removes_unreferenced_artifacts_and_keeps_registered_ones(
    workspace: Workspace,
) -> None:
    mv = workspace.registry.register({"w": 1}, "kept", sample_input=[1, 2])
    orphan = workspace.artifacts_dir / "kept" / "2"
    orphan.mkdir()
    (orphan / "model.pkl").write_bytes(b"half")
    orphan_samples = workspace.samples_dir / "ghost" / "1"
    orphan_samples.mkdir(parents=True)
    removed = workspace.gc()
    assert sorted(removed) == sorted([orphan, orphan_samples])
    assert not orphan.exists()
    assert not (workspace.samples_dir / "ghost").exists()
    assert mv.path.is_dir()
    assert workspace.registry.get("kept").load() == {"w": 1}
    assert workspace.registry.get("kept").load_sample_input() == [1, 2]


def test_gc_on_a_fresh_workspace_is_a_no_op(workspace: Workspace) -> None:
    assert workspace.gc() == []


def test_gc_removes_samples_of_a_version_registered_without_samples(
    workspace: Workspace,
) -> None:
    # A killed registration with samples, then a committed one without: the first one's
    # sample folder is at the committed version's path but no row refers to it.
    workspace.registry.register([1], "nosamples")
    stale = workspace.samples_dir / "nosamples" / "1"
    stale.mkdir(parents=True)
    (stale / "input.pkl").write_bytes(b"stale")
    assert workspace.gc() == [stale]
    assert workspace.registry.get("nosamples").load() == [1]


def test_read_joins_an_open_write(workspace: Workspace) -> None:
    with workspace.write() as conn:
        conn.execute("INSERT INTO model_names VALUES ('m', 1)")
        with workspace.read() as inner:
            assert inner is conn
            assert inner.execute("SELECT count(*) FROM model_names").fetchone()[0] == 1
        with workspace.write() as inner:
            assert inner is conn
    with workspace.read() as conn:
        assert conn.execute("SELECT count(*) FROM model_names").fetchone()[0] == 1


def test_write_inside_read_is_refused(workspace: Workspace) -> None:
    with workspace.read(), pytest.raises(NbdeployError, match=r"inside a Workspace\.read"):
        _insert_then_fail(workspace)


def test_close_and_reopen(workspace: Workspace) -> None:
    workspace.registry.register([1], "m")
    workspace.close()
    workspace.close()
    assert workspace.registry.get("m").load() == [1]


FORK_SCRIPT = """
import json, os, sys
from nbdeploy.core.workspace import Workspace

ws = Workspace(sys.argv[1])
first = ws.registry.register(["parent-before"], "m").version   # opens this thread's connection
parent_conn = ws._session().conn
read_fd, write_fd = os.pipe()
pid = os.fork()
if pid == 0:  # the child must not reuse the parent's connection
    os.close(read_fd)
    version = ws.registry.register(["child"], "m").version
    own = ws._session().conn is not parent_conn
    os.write(write_fd, json.dumps([version, own]).encode())
    os._exit(0)
os.close(write_fd)
_, status = os.waitpid(pid, 0)
child, own = json.loads(os.read(read_fd, 100))
after = ws.registry.register(["parent-after"], "m").version
print(json.dumps([first, child, own, after, os.waitstatus_to_exitcode(status)]))
"""


def test_a_forked_child_opens_its_own_connection(workspace: Workspace) -> None:
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, str(workspace.path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(out.stdout) == [1, 2, True, 3, 0]
    assert [workspace.registry.get(f"m:{v}").load() for v in (1, 2, 3)] == [
        ["parent-before"],
        ["child"],
        ["parent-after"],
    ]
