"""The workspace: a folder with an SQLite database, the model registry and services.

:class:`Workspace` is a :class:`~nbdeploy.core.store.Store` (layout, database,
locks; see that module for the on-disk layout and how connections are shared) with
its two parts on top: :attr:`Workspace.registry` (the models) and
:attr:`Workspace.services` (the service records).
"""

from __future__ import annotations

from functools import cached_property

from .registry import Registry
from .services import ServiceStore
from .store import Store

__all__ = ["Workspace"]


class Workspace(Store):
    """A workspace folder: model registry, service records and artifact store.

    Takes the workspace folder, as :class:`~nbdeploy.core.store.Store` does.

    Examples
    --------
    >>> import tempfile
    >>> ws = Workspace(tempfile.mkdtemp())
    >>> ws.registry.list()
    []
    >>> ws.services.list()
    []
    >>> ws.close()
    """

    @cached_property
    def registry(self) -> Registry:
        """The model registry of this workspace."""
        return Registry(self)

    @cached_property
    def services(self) -> ServiceStore:
        """The service records of this workspace."""
        return ServiceStore(self)
