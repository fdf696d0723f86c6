"""The workspace the fronts use when none is given: ``$NBDEPLOY_HOME`` or ``~/.nbdeploy``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from nbdeploy import config
from nbdeploy.core.cloud import CloudAttributes
from nbdeploy.core.workspace import Workspace as _CoreWorkspace
from nbdeploy.exceptions import InvalidArgumentError

__all__ = ["Workspace", "get_workspace"]


_CLOUD = (
    "belongs to an Azure workspace (subscription, resource group, registry, storage)",
    "a local workspace is a folder: ws.path; register models with Model.register, "
    "keep files on disk, build images with Model.package",
)


class Workspace(CloudAttributes, _CoreWorkspace):
    """A workspace: a folder with the registry database and the artifact store.

    The reference's ``Workspace`` object. ``Workspace()`` (or ``Workspace.from_config()``)
    opens the default workspace — the ``home`` setting: ``$NBDEPLOY_HOME``, else
    ``~/.nbdeploy``; ``Workspace(path)`` opens (and creates) the one at ``path``.
    The reference's cloud-only attributes (``get_details()``, ``subscription_id``
    ...) raise :class:`~nbdeploy.exceptions.CloudOnlyError`.

    Examples
    --------
    >>> ws = Workspace("/tmp/nbdeploy-doc-ws")
    >>> ws.path.name
    'nbdeploy-doc-ws'
    """

    _CLOUD_ONLY: ClassVar[Mapping[str, tuple[str, str]]] = dict.fromkeys(
        (
            "get_details",
            "subscription_id",
            "resource_group",
            "location",
            "get_default_datastore",
            "datastores",
            "compute_targets",
            "get_mlflow_tracking_uri",
            "service_context",
            "set_default_datastore",
            "get_default_keyvault",
        ),
        _CLOUD,
    )

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(Path(config.resolve("home", path)))

    @classmethod
    def from_config(
        cls, path: str | os.PathLike[str] | None = None, auth: object = None, _logger: object = None
    ) -> Workspace:
        """Open the default workspace, like Azure ML's ``Workspace.from_config()``.

        ``path`` may be a workspace folder, or a JSON config file (Azure ML's
        ``config.json`` with ``subscription_id``/``workspace_name``): its ``"home"``
        key, relative to the file, names the workspace folder; without one the
        default workspace opens, so an Azure config file works unchanged. ``auth`` is
        accepted and ignored (there is nothing to log in to).

        Raises
        ------
        InvalidArgumentError
            A ``.json`` path that does not exist or is not a JSON object.

        Examples
        --------
        >>> import json, tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "ws_config.json").write_text(json.dumps({"home": "ws"}))
        >>> Workspace.from_config(path=folder / "ws_config.json").path == folder / "ws"
        True
        """
        del auth, _logger
        if path is None or Path(path).suffix.lower() != ".json":
            return cls(path)
        return cls(_home_from_config_file(Path(path)))


def _home_from_config_file(file: Path) -> Path | None:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidArgumentError(
            f"workspace config file {str(file)!r} does not exist",
            hint='write it (e.g. {"home": "my-workspace"}), or call Workspace.from_config() '
            "for the default workspace",
        ) from None
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(f"cannot read workspace config {str(file)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"workspace config {str(file)!r} is not a JSON object")
    home = data.get("home")
    return None if home is None else file.parent / str(home)


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
