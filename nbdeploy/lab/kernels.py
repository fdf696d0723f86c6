"""Which workspace each kernel uses, so the Deployments panel follows the notebook.

A notebook can point nbdeploy at its own workspace (the tutorials set
``NBDEPLOY_HOME`` to a temporary folder); the Jupyter server's panel would otherwise
show the server's default workspace, where a service of the same name is another
service — and its Delete and Logs would act on that one.

The kernel side (``%load_ext nbdeploy`` → :func:`note_workspace` after every cell)
writes ``nbdeploy-kernel-<kernel id>.json`` (``{"home": "/path"}``) next to the
kernel's connection file, only when the workspace changed. The server side
(:func:`kernel_home`) reads it from the kernel manager's connection folder for a
kernel it runs, when the panel asks with ``?kernel=<id>``. Standard library only.
"""

from __future__ import annotations

import atexit
import json
import os
import re
from pathlib import Path

__all__ = ["kernel_home", "note_path", "note_workspace", "noted_homes"]

_KERNEL_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,127}$")
_PREFIX = "nbdeploy-kernel-"
_written: dict[str, str] = {}


def note_path(folder: str | os.PathLike[str], kernel_id: str) -> Path | None:
    """Where the note of ``kernel_id`` lives in ``folder`` (None for a bad id).

    Examples
    --------
    >>> note_path("/run/jupyter", "4a7c-11")
    PosixPath('/run/jupyter/nbdeploy-kernel-4a7c-11.json')
    >>> note_path("/run/jupyter", "../etc") is None
    True
    """
    if not _KERNEL_ID.match(kernel_id):
        return None
    return Path(folder) / f"{_PREFIX}{kernel_id}.json"


def note_workspace(connection_file: str | os.PathLike[str], home: str | os.PathLike[str]) -> bool:
    """Record (kernel side) that the kernel of ``connection_file`` uses workspace
    ``home``; writes only when it changed. Returns whether it wrote.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> note_workspace(f"{folder}/kernel-abc.json", "/data/ws")
    True
    >>> note_workspace(f"{folder}/kernel-abc.json", "/data/ws")
    False
    >>> kernel_home(folder, "abc")
    PosixPath('/data/ws')
    """
    connection = Path(connection_file)
    kernel_id = connection.stem.removeprefix("kernel-")
    path = note_path(connection.parent, kernel_id)
    text = str(Path(home).expanduser().absolute())
    if path is None or _written.get(str(path)) == text:
        return False
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"home": text}), encoding="utf-8")
    os.replace(tmp, path)
    if str(path) not in _written:
        atexit.register(path.unlink, missing_ok=True)
    _written[str(path)] = text
    return True


def kernel_home(folder: str | os.PathLike[str], kernel_id: str) -> Path | None:
    """(server side) The workspace the kernel ``kernel_id`` noted, or None."""
    path = note_path(folder, kernel_id)
    if path is None:
        return None
    try:
        home = json.loads(path.read_text(encoding="utf-8")).get("home")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(home) if isinstance(home, str) and home else None


def noted_homes(folder: str | os.PathLike[str], kernel_ids: list[str]) -> list[Path]:
    """The workspaces the kernels ``kernel_ids`` noted (running kernels only)."""
    homes = (kernel_home(folder, k) for k in kernel_ids)
    return list(dict.fromkeys(h for h in homes if h is not None))
