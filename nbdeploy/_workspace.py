"""The workspace the fronts use when none is given: ``$NBDEPLOY_HOME`` or ``~/.nbdeploy``."""

from __future__ import annotations

import os
from pathlib import Path

from . import config
from .core.workspace import Workspace as _CoreWorkspace

__all__ = ["Workspace", "get_workspace"]


class Workspace(_CoreWorkspace):
    """A workspace: a folder with the registry database and the artifact store.

    The reference's ``Workspace`` object. ``Workspace()`` (or ``Workspace.from_config()``)
    opens the default workspace — the ``home`` setting: ``$NBDEPLOY_HOME``, else
    ``~/.nbdeploy``; ``Workspace(path)`` opens (and creates) the one at ``path``.

    Examples
    --------
    >>> ws = Workspace("/tmp/nbdeploy-doc-ws")
    >>> ws.path.name
    'nbdeploy-doc-ws'
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(Path(config.resolve("home", path)))

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None) -> Workspace:
        """Open the default workspace (or the one at ``path``), like Azure ML's."""
        return cls(path)


_cache: dict[Path, Workspace] = {}


def get_workspace(
    workspace: _CoreWorkspace | str | os.PathLike[str] | None = None,
) -> _CoreWorkspace:
    """Return ``workspace`` itself, the one at that path, or the default one (cached)."""
    if isinstance(workspace, _CoreWorkspace):
        return workspace
    path = Path(config.resolve("home", workspace)).expanduser().resolve()
    found = _cache.get(path)
    if found is None:
        found = _cache[path] = Workspace(path)
    return found
