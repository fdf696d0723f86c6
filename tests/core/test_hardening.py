"""Regression tests of issue 14 for the core: each reproduces an attack or a misuse.

Names with a trailing newline, undecodable tags, symbolic links at registration,
world-readable registered files and workspace folders, unbounded token lifetimes and
a 401 that echoed part of a key.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from nbdeploy.cli import main as cli_main
from nbdeploy.core.auth import ServiceAuth, authenticate, sign_token
from nbdeploy.core.refs import ModelRef, check_name
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import AuthenticationError, InvalidArgumentError


@pytest.mark.parametrize("name", ["iris\n", "iris\r\n", "iris ", "\niris", "iris\x00"])
def test_names_must_match_whole(name: str) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid service name"):
        check_name(name, "service")
    with pytest.raises(InvalidArgumentError, match="invalid model name"):
        ModelRef(name)


def test_a_model_named_with_a_newline_is_refused_at_registration(workspace: Workspace) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid model name"):
        workspace.registry.register([1], "iris\n")
    assert workspace.registry.list() == []


def test_an_undecodable_tag_is_refused(workspace: Workspace) -> None:
    # What argv holds for a --tag whose bytes are not UTF-8 (surrogateescape).
    bad = b"team=\xff".decode("utf-8", "surrogateescape").split("=")[1]
    with pytest.raises(InvalidArgumentError, match="not valid Unicode text"):
        workspace.registry.register([1], "m", tags={"team": bad})
    assert workspace.registry.list() == []


def test_an_undecodable_stored_tag_does_not_break_models_list(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace.registry.register([1], "m", tags={"team": "ml"})
    # Another tool (or an older version) wrote bytes that are not UTF-8.
    with sqlite3.connect(workspace.db_path) as conn:
        conn.execute("UPDATE models SET tags = CAST(x'7b227465616d223a2022ff227d' AS TEXT)")
    assert cli_main(["--workspace", str(workspace.path), "models", "list"]) == 0
    out = capsys.readouterr().out
    assert "team=\ufffd" in out or "team=\\ufffd" in out


def test_cli_delete_of_an_unknown_service_fails(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["--workspace", str(workspace.path), "delete", "nonexistent"]) == 1
    captured = capsys.readouterr()
    assert "deleted" not in captured.out
    assert "nonexistent" in captured.err


def test_directory_links_inside_the_folder_are_registered(
    workspace: Workspace, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "w.bin").write_bytes(b"w")
    (folder / "current").symlink_to("weights", target_is_directory=True)
    (folder / "alias.bin").symlink_to("weights/w.bin")
    mv = workspace.registry.register(folder, "linked")
    assert set(mv.files) == {"weights/w.bin", "current/w.bin", "alias.bin"}
    assert not any((mv.path / f).is_symlink() for f in mv.files)  # copies, not links
    mv.verify()


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_links_leading_outside_the_folder_are_refused(
    workspace: Workspace, tmp_path: Path, kind: str
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "id_rsa").write_text("PRIVATE")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"m")
    if kind == "file":
        (folder / "extra").symlink_to(secret / "id_rsa")
    else:
        (folder / "extra").symlink_to(secret, target_is_directory=True)
    with pytest.raises(InvalidArgumentError, match="outside the folder"):
        workspace.registry.register(folder, "m")
    assert workspace.registry.list() == []
    assert not any(workspace.artifacts_dir.rglob("id_rsa"))


def test_a_link_loop_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.bin").write_bytes(b"a")
    (folder / "sub" / "again").symlink_to("..", target_is_directory=True)
    with pytest.raises(InvalidArgumentError, match="links back"):
        workspace.registry.register(folder, "m")


def test_registered_files_keep_their_mode_and_the_workspace_is_private(
    workspace: Workspace, tmp_path: Path
) -> None:
    private = tmp_path / "private.bin"
    private.write_bytes(b"secret weights")
    os.chmod(private, 0o600)
    mv = workspace.registry.register(private, "private")
    assert stat.S_IMODE((mv.path / "private.bin").stat().st_mode) == 0o400
    for folder in (
        workspace.path,
        workspace.artifacts_dir,
        workspace.samples_dir,
        workspace.bundles_dir,
        workspace.services_dir,
        workspace.run_dir,
    ):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    out = tmp_path / "out"
    downloaded = workspace.registry.download("private", out)
    assert stat.S_IMODE(downloaded.stat().st_mode) == 0o600


def test_an_existing_workspace_is_made_private(tmp_path: Path) -> None:
    root = tmp_path / "old"
    Workspace(root).registry.list()
    os.chmod(root, 0o755)
    os.chmod(root / "artifacts", 0o755)
    Workspace(root).registry.list()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "artifacts").stat().st_mode) == 0o700


@pytest.mark.parametrize("ttl", [float("inf"), float("nan"), 1e300, 0, -1])
def test_token_lifetimes_must_be_finite(ttl: float) -> None:
    auth = ServiceAuth.generate("iris", "token")
    with pytest.raises(InvalidArgumentError, match="bad token lifetime"):
        sign_token(auth, ttl=ttl)
    with pytest.raises(InvalidArgumentError, match="bad token lifetime"):
        ServiceAuth.generate("iris", "token", token_ttl=ttl)


def test_a_key_sent_without_bearer_is_not_echoed() -> None:
    auth = ServiceAuth.generate("iris", "key")
    with pytest.raises(AuthenticationError) as caught:
        authenticate(auth.primary_key, auth)
    shown = str(caught.value)
    assert auth.primary_key[:8] not in shown
    assert "Bearer" in shown
    with pytest.raises(AuthenticationError, match="not 'Basic'"):
        authenticate("Basic dXNlcjpwYXNz", auth)
