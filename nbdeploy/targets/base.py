"""The interface every deployment target implements, and the table of targets.

A target runs bundles somewhere (a local process, a container, a pod, a Ray
deployment) and keeps one :class:`~nbdeploy.core.services.ServiceRecord` per service
in the workspace. Every front (public API, CLI, magics, lab extension) goes through
this interface, so a new target plugs in with :func:`register_target` and is found by
name with :func:`get_target`.

Targets are looked up lazily (``"module:attribute"``), so ``import nbdeploy.targets``
stays cheap and a target's heavy client library is only imported when it is used.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from nbdeploy.core.refs import check_name
from nbdeploy.core.services import ServiceState
from nbdeploy.exceptions import (
    InvalidArgumentError,
    ServiceExistsError,
    ServiceNotFoundError,
    TargetUnavailableError,
)

from .config import TargetConfig

if TYPE_CHECKING:
    from nbdeploy.core.services import ServiceRecord
    from nbdeploy.core.workspace import Workspace

_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = [
    "Target",
    "bundle_folder",
    "default_config",
    "get_target",
    "get_target_name",
    "register_target",
    "target_names",
]


def bundle_folder(bundle: Any) -> Path:
    """The absolute folder of ``bundle`` (a :class:`~nbdeploy.core.bundle.Bundle` or a
    path).

    Examples
    --------
    >>> bundle_folder("/tmp/bundles/iris/1").as_posix()
    '/tmp/bundles/iris/1'
    >>> bundle_folder(42)
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: expected a bundle or a bundle folder, got int
    Hint: build one with nbdeploy.core.bundle.build_bundle(...)
    """
    raw = getattr(bundle, "path", bundle)
    if not isinstance(raw, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"expected a bundle or a bundle folder, got {type(bundle).__name__}",
            hint="build one with nbdeploy.core.bundle.build_bundle(...)",
        )
    return Path(raw).expanduser().absolute()


def _serialized(method: _F) -> _F:
    """``method(self, name, ...)`` run holding the lock of service ``name``."""

    @functools.wraps(method)
    def locked(self: Target, name: str, *args: Any, **kwargs: Any) -> Any:
        # str(): a bad name gets its lock too; the method then reports what is wrong.
        with self.workspace.service_lock(str(name)):
            return method(self, name, *args, **kwargs)

    return cast("_F", locked)


class Target(ABC):
    """A place that runs services: deploy, update, inspect and delete them.

    Every method returns typed :class:`~nbdeploy.core.services.ServiceRecord` values
    and keeps the workspace's record up to date. ``deploy`` and ``update`` block
    until the service reaches a final state unless ``wait=False``; ``delete`` is
    idempotent.

    ``deploy``, ``get``, ``list`` and ``delete`` are written here once; a target
    supplies the primitives they call: :meth:`_deploy` (start a new service),
    :meth:`_refresh` (its live state) and :meth:`_stop` (stop what runs). ``update``,
    ``logs`` and ``wait`` are the target's own.

    Parameters
    ----------
    workspace:
        The workspace whose service records this target reads and writes.
    """

    #: The target's name in records and configs (``"local"``, ``"docker"`` ...).
    name: ClassVar[str]
    #: Its deployment configuration (``label`` names the target in messages).
    config_class: ClassVar[type[TargetConfig]]

    #: Methods that change a service; each runs holding the service's lock
    #: (:meth:`~nbdeploy.core.workspace.Workspace.service_lock`).
    SERIALIZED: ClassVar[tuple[str, ...]] = (
        "deploy",
        "update",
        "delete",
        "add_version",
        "set_traffic",
        "remove_version",
        "rollback",
        "update_version",
    )

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Serialize every target's changes to one service across processes.

        Two processes deploying, updating or deleting the same name at once would
        each start a server and only one record would survive (the others' servers
        keep answering, untracked). Each method of :attr:`SERIALIZED` a target
        defines is wrapped to run under the service's lock, so every target —
        those plugged in later included — gets it without repeating it.
        """
        super().__init_subclass__(**kwargs)
        for method in cls.SERIALIZED:
            if method in cls.__dict__:
                setattr(cls, method, _serialized(cls.__dict__[method]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.workspace!r})"

    def _service_dir(self, name: str) -> Path:
        """The folder of service ``name``'s runtime files in the workspace."""
        return Path(self.workspace.services_dir) / name

    def _check_mine(self, record: ServiceRecord) -> None:
        """Refuse a record of another target (with the target to use instead)."""
        if record.target != self.name:
            raise InvalidArgumentError(
                f"service {record.name!r} runs on target {record.target!r}, not {self.name!r}",
                hint=f"use get_target({record.target!r}, workspace)",
            )

    def _owned_bundle(self, path: str | None) -> Path | None:
        """``path`` if it lies under the workspace's bundles folder (ours to delete)."""
        if not path:
            return None
        bundles = Path(self.workspace.bundles_dir).absolute()
        candidate = Path(path).absolute()
        return candidate if candidate.is_relative_to(bundles) and candidate != bundles else None

    def _remove_bundle(self, path: str | None) -> None:
        """Delete a bundle folder the workspace owns, and its parents once empty."""
        owned = self._owned_bundle(path)
        if owned is None:
            return
        shutil.rmtree(owned, ignore_errors=True)
        bundles = Path(self.workspace.bundles_dir).absolute()
        parent = owned.parent
        while parent != bundles and parent.is_relative_to(bundles):
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break
            parent = parent.parent

    @_serialized
    def deploy(
        self,
        name: str,
        bundle: Any,
        config: Any = None,
        *,
        wait: bool = True,
        show_output: bool = False,
    ) -> ServiceRecord:
        """Run ``bundle`` (a :class:`~nbdeploy.core.bundle.Bundle` or its folder) as
        service ``name`` with this target's ``config``; the record once final.

        Raises
        ------
        InvalidArgumentError
            A bad name, bundle or configuration.
        ServiceExistsError
            A live service of that name exists (update or delete it first), or the
            name belongs to another target's service.
        TargetUnavailableError
            The target's engine, cluster or client library cannot be reached.
        DeploymentError
            The service failed to start or timed out (the record says why).

        Examples
        --------
        >>> target.deploy("diabetes", bundle, config)  # doctest: +SKIP
        ServiceRecord(name='diabetes', state='Healthy', ...)
        """
        check_name(name, "service")
        cfg = self.config_class.coerce(config)
        path = self._bundle_path(bundle)
        existing = self._replaceable(name)
        return self._deploy(name, path, cfg, existing, wait=wait, show_output=show_output)

    @abstractmethod
    def _deploy(
        self,
        name: str,
        path: Path,
        cfg: Any,
        existing: ServiceRecord | None,
        *,
        wait: bool,
        show_output: bool,
    ) -> ServiceRecord:
        """Start service ``name`` from the bundle folder ``path`` with the checked
        configuration ``cfg``, replacing ``existing`` (a ``Failed`` record of this
        target, or ``None``)."""

    def _replaceable(self, name: str) -> ServiceRecord | None:
        """The stored record of service ``name`` a deploy may replace (``None`` if none).

        Raises
        ------
        ServiceExistsError
            The name belongs to another target's service, or to a live (not
            ``Failed``) service of this target.
        """
        try:
            existing = self.workspace.services.get(name)
        except ServiceNotFoundError:
            return None
        if existing.target != self.name:
            raise ServiceExistsError(
                f"service {name!r} already runs on target {existing.target!r}",
                hint="delete it first, or pick another name",
            )
        if self._refresh_existing(existing).state is not ServiceState.FAILED:
            raise ServiceExistsError(
                f"{self.config_class.label} service {name!r} already exists and is running",
                hint="update it with update(), or delete it first",
            )
        return existing

    def _bundle_path(self, bundle: Any) -> Path:
        """The folder of ``bundle`` as this target accepts it."""
        return bundle_folder(bundle)

    def _refresh_existing(self, record: ServiceRecord) -> ServiceRecord:
        """The live record of a service a deploy may replace (``Failed``: it may)."""
        return self._refresh(record)

    @abstractmethod
    def update(
        self,
        name: str,
        bundle: Any,
        config: Any = None,
        *,
        wait: bool = True,
        show_output: bool = False,
    ) -> ServiceRecord:
        """Switch service ``name`` to ``bundle`` (and ``config``), keeping it answering
        where the target allows; the record with ``generation`` bumped."""

    def get(self, name: str) -> ServiceRecord:
        """The live record of service ``name`` (:class:`ServiceNotFoundError` if none).

        Examples
        --------
        >>> target.get("diabetes").state  # doctest: +SKIP
        <ServiceState.HEALTHY: 'Healthy'>
        """
        return self._refresh(self._stored(name))

    def list(self) -> builtins.list[ServiceRecord]:
        """Live records of every service of this target in the workspace (the stored
        record when its engine or cluster cannot be reached).

        Examples
        --------
        >>> [r.name for r in target.list()]  # doctest: +SKIP
        ['diabetes']
        """
        records = []
        for record in self.workspace.services.list(target=self.name):
            try:
                records.append(self._refresh(record))
            except TargetUnavailableError:
                records.append(record)
        return records

    @abstractmethod
    def _refresh(self, record: ServiceRecord) -> ServiceRecord:
        """``record`` with its live state (stored when it changed)."""

    def _stored(self, name: str) -> ServiceRecord:
        """The stored record of service ``name``, refused when another target runs it."""
        record = self.workspace.services.get(name)
        self._check_mine(record)
        return record

    @abstractmethod
    def logs(self, name: str, tail: int | None = None) -> str:
        """The service's server output (the last ``tail`` lines when given)."""

    @_serialized
    def delete(self, name: str) -> None:
        """Stop service ``name`` and forget it: its record, runtime files and the
        bundles the workspace owns. Nothing happens if it does not exist.

        Examples
        --------
        >>> target.delete("diabetes")  # doctest: +SKIP
        """
        self._delete(name, self._stop)

    def _delete(self, name: str, stop: Callable[[ServiceRecord], None]) -> None:
        try:
            record = self._stored(name)
        except ServiceNotFoundError:
            return
        stop(record)
        self.workspace.services.delete(name)
        for bundle in self._bundles(record):
            self._remove_bundle(bundle)
        shutil.rmtree(self._service_dir(name), ignore_errors=True)

    @abstractmethod
    def _stop(self, record: ServiceRecord) -> None:
        """Stop everything service ``record`` runs (its record is deleted after)."""

    def _bundles(self, record: ServiceRecord) -> set[str]:
        """The bundle folders a record uses: its own and every version's."""
        versions = record.config.get("versions")
        entries = versions if isinstance(versions, builtins.list) else []
        paths = {record.bundle_path, *(v.get("bundle_path") for v in entries)}
        return {str(p) for p in paths if p}

    @abstractmethod
    def wait(
        self, name: str, timeout: float | None = None, show_output: bool = False
    ) -> ServiceRecord:
        """Block until service ``name`` is in a final state (printing progress when
        ``show_output``); its record."""


# name -> "module:attribute" of the Target class / the config class.
_TARGETS: dict[str, str | Callable[[Workspace], Target]] = {
    "local": "nbdeploy.targets.local.target:LocalTarget",
}
_CONFIGS: dict[str, str | type] = {
    "local": "nbdeploy.targets.local.config:LocalConfig",
}


def _load(spec: str | Any) -> Any:
    if not isinstance(spec, str):
        return spec
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)


def register_target(
    name: str,
    factory: str | Callable[[Workspace], Target],
    config_class: str | type | None = None,
) -> None:
    """Make a target available to :func:`get_target` under ``name``.

    Parameters
    ----------
    name:
        The target's name.
    factory:
        A callable taking the workspace and returning a :class:`Target` (usually the
        class), or ``"module:attribute"`` naming it (imported on first use).
    config_class:
        Its deployment-configuration class (or ``"module:attribute"``), which
        :func:`default_config` builds and :func:`get_target_name` recognises.

    Examples
    --------
    >>> register_target("local", "nbdeploy.targets.local:LocalTarget")
    """
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"invalid target name {name!r}", hint="use e.g. 'docker'")
    _TARGETS[name] = factory
    if config_class is not None:
        _CONFIGS[name] = config_class


def target_names() -> builtins.list[str]:
    """The names of the registered targets.

    Examples
    --------
    >>> "local" in target_names()
    True
    """
    return sorted(_TARGETS)


def _unknown(name: object) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"unknown deployment target {name!r}",
        hint=f"known targets: {', '.join(target_names())}",
    )


def get_target(name: str, workspace: Workspace) -> Target:
    """The target called ``name`` working on ``workspace``.

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> get_target("local", Workspace(tempfile.mkdtemp())).name
    'local'
    """
    try:
        factory = _TARGETS[name]
    except (KeyError, TypeError):
        raise _unknown(name) from None
    target = _load(factory)(workspace)
    if not isinstance(target, Target):
        raise InvalidArgumentError(f"target {name!r} is not a Target: {target!r}")
    return target


def default_config(name: str, **values: Any) -> Any:
    """A deployment configuration for target ``name`` built from ``values``.

    Examples
    --------
    >>> default_config("local", port=8890).port
    8890
    """
    try:
        spec = _CONFIGS[name]
    except (KeyError, TypeError):
        raise _unknown(name) from None
    return _load(spec)(**values)


def get_target_name(config: Any) -> str:
    """The target a deployment configuration is for.

    Accepts a config object with a ``target`` attribute (such as
    :class:`~nbdeploy.targets.local.LocalConfig`) or a mapping with a ``"target"`` key.

    Examples
    --------
    >>> get_target_name({"target": "local", "port": 0})
    'local'
    """
    name = config.get("target") if isinstance(config, Mapping) else getattr(config, "target", None)
    if not isinstance(name, str):
        raise InvalidArgumentError(
            f"cannot tell the target of deployment configuration {config!r}",
            hint="pass a configuration such as LocalConfig(port=8890), or target='local'",
        )
    if name not in _TARGETS:
        raise _unknown(name)
    return name
