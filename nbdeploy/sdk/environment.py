"""``Environment`` as Azure ML's object model writes it, and ``CondaDependencies``.

:class:`Environment` is the core :class:`~nbdeploy.core.environment.Environment`
(Python version + pip requirements, frozen) with the reference's workspace calls on
top: ``register(workspace)`` gives it the next version of its name in the workspace
(``<workspace>/environments/<name>/<version>.json``), ``Environment.get(workspace,
name, version=None)`` reads it back, ``Environment.list(workspace)`` lists them, and
``env.python.conda_dependencies = CondaDependencies.create(...)`` sets its packages.

Examples
--------
>>> import tempfile
>>> ws = tempfile.mkdtemp()
>>> env = Environment("myenv")
>>> env.python.conda_dependencies = CondaDependencies.create(pip_packages=["numpy"])
>>> env.register(workspace=ws).version
'1'
>>> Environment.get(workspace=ws, name="myenv").requirements
('numpy',)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, cast

from nbdeploy.core.cloud import CloudAttributes
from nbdeploy.core.environment import Environment as _CoreEnvironment
from nbdeploy.core.environment import _load_yaml
from nbdeploy.core.refs import check_name
from nbdeploy.exceptions import EnvironmentSpecError, InvalidArgumentError, NotFoundError

__all__ = ["CondaDependencies", "Environment"]

_BUILD = (
    "builds the environment's image or conda environment in an Azure workspace",
    "nothing to build ahead: local services run in this kernel's Python, containers get "
    "the environment's requirements when Model.package / a docker deployment builds them",
)


class CondaDependencies:
    """The reference's conda specification builder: pip and conda packages and a
    Python version, serialized as an ``environment.yml``.

    Conda packages become pip requirements when an :class:`Environment` is made from
    it (``numpy=1.26`` → ``numpy==1.26``): nbdeploy installs with pip.

    Examples
    --------
    >>> cd = CondaDependencies.create(pip_packages=["inference-schema[numpy-support]"],
    ...                               conda_packages=["scikit-learn=1.5"])
    >>> cd.add_pip_package("joblib")
    >>> cd.pip_packages, cd.conda_packages
    (['inference-schema[numpy-support]', 'joblib'], ['scikit-learn=1.5'])
    """

    def __init__(
        self,
        conda_dependencies_file_path: str | os.PathLike[str] | None = None,
        _underlying_structure: Mapping[str, Any] | None = None,
    ) -> None:
        self._conda: list[str] = []
        self._pip: list[str] = []
        self._python: str | None = None
        spec: Any = _underlying_structure
        if conda_dependencies_file_path is not None:
            path = Path(conda_dependencies_file_path)
            try:
                spec = _load_yaml(path.read_text(encoding="utf-8"), str(path))
            except OSError as exc:
                raise EnvironmentSpecError(f"cannot read {str(path)!r}: {exc}") from None
        if spec is not None:
            self._read(spec)

    def _read(self, spec: Any) -> None:
        dependencies = spec.get("dependencies") if isinstance(spec, Mapping) else None
        for entry in dependencies or []:
            if isinstance(entry, str):
                if _name(entry) == "python":
                    self._python = entry.partition("=")[2] or None
                elif _name(entry) != "pip":
                    self._conda.append(entry)
            elif isinstance(entry, Mapping) and isinstance(entry.get("pip"), list):
                self._pip.extend(str(p) for p in entry["pip"])

    @staticmethod
    def create(
        pip_packages: Iterable[str] | None = None,
        conda_packages: Iterable[str] | None = None,
        python_version: str | None = None,
        pin_sdk_version: bool = True,
        pip_indexurl: str | None = None,
    ) -> CondaDependencies:
        """A specification with these packages (``pin_sdk_version``, ``pip_indexurl``
        are accepted; nbdeploy adds no Azure SDK)."""
        del pin_sdk_version, pip_indexurl
        cd = CondaDependencies()
        for package in pip_packages or ():
            cd.add_pip_package(package)
        for package in conda_packages or ():
            cd.add_conda_package(package)
        if python_version is not None:
            cd.set_python_version(python_version)
        return cd

    def add_pip_package(self, pip_package: str) -> None:
        """Add (or replace, by name) a pip requirement."""
        self._pip = [p for p in self._pip if _name(p) != _name(pip_package)] + [pip_package]

    def add_conda_package(self, conda_package: str) -> None:
        """Add (or replace, by name) a conda package."""
        self._conda = [p for p in self._conda if _name(p) != _name(conda_package)]
        self._conda.append(conda_package)

    def remove_pip_package(self, pip_package: str) -> None:
        self._pip = [p for p in self._pip if _name(p) != _name(pip_package)]

    def remove_conda_package(self, conda_package: str) -> None:
        self._conda = [p for p in self._conda if _name(p) != _name(conda_package)]

    def set_python_version(self, version: str) -> None:
        self._python = str(version)

    def get_python_version(self) -> str | None:
        return self._python

    @property
    def pip_packages(self) -> list[str]:
        return list(self._pip)

    @property
    def conda_packages(self) -> list[str]:
        return list(self._conda)

    def as_dict(self) -> dict[str, Any]:
        """The specification as the dict of an ``environment.yml``."""
        dependencies: list[Any] = [f"python={self._python}"] if self._python else []
        dependencies += [*self._conda, "pip", {"pip": list(self._pip)}]
        return {"name": "project_environment", "dependencies": dependencies}

    def serialize_to_string(self) -> str:
        """The ``environment.yml`` text."""
        lines = ["name: project_environment", "dependencies:"]
        for entry in self.as_dict()["dependencies"]:
            if isinstance(entry, dict):
                lines.append("- pip:")
                lines += [f"  - {p}" for p in entry["pip"]]
            else:
                lines.append(f"- {entry}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the ``environment.yml``; return its path."""
        Path(path).write_text(self.serialize_to_string(), encoding="utf-8")
        return str(path)

    def requirements(self) -> tuple[str, ...]:
        """pip requirement lines for every package (conda ``a=1`` → ``a==1``)."""
        converted = [_conda_to_pip(p) for p in self._conda]
        return tuple(dict.fromkeys([*converted, *self._pip]))


def _name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9_.\-]+)", requirement)
    return (match.group(1) if match else requirement).lower().replace("_", "-")


def _conda_to_pip(package: str) -> str:
    name, sep, version = package.partition("=")
    version = version.lstrip("=")
    if not sep or not version:
        return name.strip()
    return f"{name.strip()}=={version.strip()}"


class _PythonSection:
    """``env.python``: the reference's ``conda_dependencies`` (and the accepted, unused
    ``user_managed_dependencies`` / ``interpreter_path``)."""

    user_managed_dependencies = False
    interpreter_path = "python"

    def __init__(self, env: Environment) -> None:
        self._env = env

    @property
    def conda_dependencies(self) -> CondaDependencies:
        conda = self._env.conda
        return CondaDependencies(_underlying_structure=conda) if conda else CondaDependencies()

    @conda_dependencies.setter
    def conda_dependencies(self, value: CondaDependencies) -> None:
        if not isinstance(value, CondaDependencies):
            raise InvalidArgumentError(
                f"conda_dependencies must be a CondaDependencies, got {type(value).__name__}",
                hint="CondaDependencies.create(pip_packages=[...], conda_packages=[...])",
            )
        self._env._set_dependencies(value)


class Environment(CloudAttributes, _CoreEnvironment):
    """An environment: Python version and requirements, registrable in a workspace.

    See the module docstring; everything else is the core
    :class:`~nbdeploy.core.environment.Environment`. ``version`` is ``None`` until
    :meth:`register` (or :meth:`get`) gives one.
    """

    _CLOUD_ONLY: ClassVar[Mapping[str, tuple[str, str]]] = dict.fromkeys(
        ("build", "build_local", "get_image_details", "docker"), _BUILD
    )

    @property
    def version(self) -> str | None:
        """The registered version (``"1"``, ``"2"`` …), or ``None``."""
        return self.__dict__.get("_version")

    @property
    def python(self) -> _PythonSection:
        """The reference's ``env.python`` section (``conda_dependencies``)."""
        return _PythonSection(self)

    def _set_dependencies(self, conda: CondaDependencies) -> None:
        # The reference's Environment is mutable here; the rest of nbdeploy treats
        # environments as values, so this is the one place that changes one.
        object.__setattr__(self, "requirements", conda.requirements())
        object.__setattr__(self, "conda", conda.as_dict())
        version = conda.get_python_version()
        if version:
            object.__setattr__(self, "python_version", version)

    def register(self, workspace: Any) -> Environment:
        """Store this environment as the next version of its name in ``workspace``;
        return the registered copy (``.version`` set).

        Examples
        --------
        >>> myenv.register(workspace=ws).version      # doctest: +SKIP
        '1'
        """
        check_name(self.name, "environment")
        folder = _folder(workspace, self.name)
        with _locked(folder):
            version = str(max(_versions(folder), default=0) + 1)
            target = folder / f"{version}.json"
            staging = target.with_suffix(".json.tmp")
            staging.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
            os.replace(staging, target)
        return _with_version(cast(Environment, Environment.from_dict(self.to_dict())), version)

    @classmethod
    def get(cls, workspace: Any, name: str, version: str | int | None = None) -> Environment:
        """A registered environment: ``version`` (``"1"``), or the latest.

        Raises
        ------
        NotFoundError
            No environment of that name (or version); the message lists what there is.
        """
        folder = _folder(workspace, name)
        versions = sorted(_versions(folder))
        if not versions:
            have = ", ".join(e.name for e in cls.list(workspace)) or "none"
            raise NotFoundError(
                f"no environment {name!r} in this workspace (it has: {have})",
                hint="register it first: Environment.from_pip_requirements(...)"
                ".register(workspace=ws)",
            )
        wanted = versions[-1] if version is None else int(version)
        file = folder / f"{wanted}.json"
        if wanted not in versions:
            raise NotFoundError(
                f"environment {name!r} has no version {version} (it has "
                f"{', '.join(str(v) for v in versions)})",
            )
        env = cast(Environment, cls.from_dict(json.loads(file.read_text(encoding="utf-8"))))
        return _with_version(env, str(wanted))

    @classmethod
    def list(cls, workspace: Any) -> list[Environment]:
        """The latest version of every registered environment."""
        root = _root(workspace)
        names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        return [cls.get(workspace, name) for name in names if _versions(root / name)]


def _with_version(env: Environment, version: str) -> Environment:
    env.__dict__["_version"] = version  # not a field: equality ignores it
    return env


def _root(workspace: Any) -> Path:
    from nbdeploy.sdk.workspace import get_workspace

    return Path(get_workspace(workspace).path) / "environments"


def _folder(workspace: Any, name: str) -> Path:
    check_name(name, "environment")
    return _root(workspace) / name


def _versions(folder: Path) -> Iterator[int]:
    if folder.is_dir():
        for file in folder.glob("*.json"):
            if file.stem.isdigit():
                yield int(file.stem)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Two kernels registering the same name never get the same version."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
