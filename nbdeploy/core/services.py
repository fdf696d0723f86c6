"""Service records: what every front reads to know which services exist and how they are.

A target writes a :class:`ServiceRecord` when it deploys, updates or deletes a
service; notebooks, the CLI and the lab extension read them back from the workspace
database (table ``services``), also after a kernel restart. Records are immutable
values; change one with :meth:`ServiceRecord.replace` / :meth:`ServiceRecord.with_state`
and store the result with :meth:`ServiceStore.put`.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from types import MappingProxyType
from typing import Any

from nbdeploy.exceptions import InvalidArgumentError, ServiceNotFoundError

from .refs import ModelRef, check_name
from .store import Store

__all__ = ["ServiceRecord", "ServiceState", "ServiceStore"]


class ServiceState(str, Enum):
    """The state of a deployed service (the states of the reference).

    Examples
    --------
    >>> ServiceState("Healthy") is ServiceState.HEALTHY
    True
    >>> ServiceState.TRANSITIONING.is_final
    False
    """

    TRANSITIONING = "Transitioning"
    """Being deployed or updated."""
    HEALTHY = "Healthy"
    """Up; the endpoint answers."""
    UNHEALTHY = "Unhealthy"
    """Deployed but not answering."""
    UNSCHEDULABLE = "Unschedulable"
    """Cannot be placed for lack of resources."""
    FAILED = "Failed"
    """Crashed or could not deploy; final."""

    @property
    def is_final(self) -> bool:
        """Whether waiting for the deployment can stop (anything but Transitioning)."""
        return self is not ServiceState.TRANSITIONING

    def __str__(self) -> str:
        return self.value


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def _aware_utc(value: object, what: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidArgumentError(
                f"{what} {value!r} is not an ISO 8601 date-time",
                hint="use e.g. '2024-05-01T12:00:00+00:00'",
            ) from None
    if not isinstance(value, datetime):
        raise InvalidArgumentError(f"{what} must be a datetime, got {value!r}")
    if value.tzinfo is None:
        raise InvalidArgumentError(
            f"{what} {value.isoformat()} has no time zone",
            hint="use an aware datetime, e.g. datetime.now(timezone.utc)",
        )
    return value.astimezone(timezone.utc)


def _model_string(model: object) -> str:
    ref = ModelRef.parse(model)  # type: ignore[arg-type]
    if ref.version is None:
        raise InvalidArgumentError(
            f"service model {str(model)!r} has no version",
            hint="a service runs a specific model version: write 'name:3'",
        )
    return str(ref)


@dataclass(frozen=True)
class ServiceRecord:
    """One service as recorded in the workspace.

    Parameters
    ----------
    name:
        The service name (letters, digits, ``_.-``).
    target:
        The target that runs it: ``local``, ``docker``, ``kubernetes``, ``ray`` ...
    state:
        A :class:`ServiceState` (or its string value).
    scoring_uri, swagger_uri:
        Where to ``POST /score`` and ``GET /swagger.json``; ``None`` until known.
    models:
        The model versions it serves, as ``"name:version"`` strings.
    bundle_path:
        The bundle folder the service runs, if any.
    config:
        The target's settings (host, port, pid, replicas ...): JSON-able values.
    error:
        Why the service is ``Failed`` / ``Unhealthy``, if known.
    created, updated:
        Aware UTC datetimes; :meth:`ServiceStore.put` sets ``updated``.
    generation:
        1 for the first deployment, bumped by every update.

    Examples
    --------
    >>> record = ServiceRecord("iris", "local", "Healthy", models=("iris:1",))
    >>> ServiceRecord.from_dict(record.to_dict()) == record
    True
    >>> record.with_state("Failed", error="boom").state
    <ServiceState.FAILED: 'Failed'>
    """

    name: str
    target: str
    state: ServiceState = ServiceState.TRANSITIONING
    scoring_uri: str | None = None
    swagger_uri: str | None = None
    models: tuple[str, ...] = ()
    bundle_path: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict, hash=False)
    error: str | None = None
    created: datetime = field(default_factory=utcnow)
    updated: datetime = field(default_factory=utcnow)
    generation: int = 1

    def __post_init__(self) -> None:
        check_name(self.name, "service")
        if not isinstance(self.target, str) or not self.target:
            raise InvalidArgumentError(
                f"invalid service target {self.target!r} for service {self.name!r}",
                hint="use a target name such as 'local', 'docker', 'kubernetes' or 'ray'",
            )
        try:
            state = ServiceState(self.state)
        except ValueError:
            known = ", ".join(s.value for s in ServiceState)
            raise InvalidArgumentError(
                f"invalid service state {self.state!r} for service {self.name!r}",
                hint=f"use one of {known}",
            ) from None
        object.__setattr__(self, "state", state)
        models: object = self.models
        if isinstance(models, str):
            raise InvalidArgumentError(
                f"models of service {self.name!r} must be a sequence of 'name:version', "
                f"got the string {self.models!r}",
                hint=f"write models=({self.models!r},)",
            )
        object.__setattr__(self, "models", tuple(_model_string(m) for m in self.models))
        for attr in ("scoring_uri", "swagger_uri", "bundle_path", "error"):
            value = getattr(self, attr)
            if value is not None and not isinstance(value, str):
                if attr == "bundle_path" and hasattr(value, "__fspath__"):
                    object.__setattr__(self, attr, str(value))
                    continue
                raise InvalidArgumentError(
                    f"{attr} of service {self.name!r} must be a string or None, got {value!r}"
                )
        if not isinstance(self.config, Mapping):
            raise InvalidArgumentError(
                f"config of service {self.name!r} must be a mapping, got {self.config!r}"
            )
        try:
            # A deep copy through JSON: stored verbatim, and immune to later mutation.
            config = json.loads(json.dumps(dict(self.config), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"config of service {self.name!r} is not JSON-serializable: {exc}",
                hint="use str, int, float, bool, None, lists and dicts with str keys",
            ) from None
        object.__setattr__(self, "config", MappingProxyType(config))
        object.__setattr__(self, "created", _aware_utc(self.created, "created"))
        object.__setattr__(self, "updated", _aware_utc(self.updated, "updated"))
        if (
            isinstance(self.generation, bool)
            or not isinstance(self.generation, int)
            or self.generation < 1
        ):
            raise InvalidArgumentError(
                f"generation of service {self.name!r} must be an int >= 1, got {self.generation!r}"
            )

    def __repr__(self) -> str:
        return (
            f"ServiceRecord(name={self.name!r}, target={self.target!r}, "
            f"state={self.state.value!r}, scoring_uri={self.scoring_uri!r})"
        )

    @property
    def model_refs(self) -> tuple[ModelRef, ...]:
        """:attr:`models` as :class:`ModelRef` values."""
        return tuple(ModelRef.parse(m) for m in self.models)

    def replace(self, **changes: Any) -> ServiceRecord:
        """A copy with ``changes`` applied (validated like a new record).

        Examples
        --------
        >>> r = ServiceRecord("svc", "local")
        >>> r.replace(generation=2).generation
        2
        """
        return dataclasses.replace(self, **changes)

    def with_state(self, state: ServiceState | str, error: str | None = None) -> ServiceRecord:
        """A copy in ``state`` with ``error`` (cleared when not given), ``updated`` now.

        Examples
        --------
        >>> ServiceRecord("svc", "local").with_state("Healthy").state.value
        'Healthy'
        """
        return self.replace(state=ServiceState(state), error=error, updated=utcnow())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reverses it."""
        return {
            "name": self.name,
            "target": self.target,
            "state": self.state.value,
            "scoring_uri": self.scoring_uri,
            "swagger_uri": self.swagger_uri,
            "models": list(self.models),
            "bundle_path": self.bundle_path,
            "config": json.loads(json.dumps(dict(self.config))),
            "error": self.error,
            "created": self.created.isoformat(),
            "updated": self.updated.isoformat(),
            "generation": self.generation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceRecord:
        """Build a record from :meth:`to_dict` output."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidArgumentError(
                f"unknown service record field(s): {', '.join(sorted(unknown))}",
                hint=f"known fields: {', '.join(sorted(known))}",
            )
        values = dict(data)
        if "models" in values and values["models"] is not None:
            values["models"] = tuple(values["models"])
        return cls(**values)


def usage(conn: sqlite3.Connection) -> dict[tuple[str, int], builtins.list[str]]:
    """Which services use which model versions, read on ``conn`` (inside its transaction).

    The registry calls this inside its delete transaction so that the check and the
    delete see the same state.
    """
    used: dict[tuple[str, int], builtins.list[str]] = {}
    for row in conn.execute("SELECT name, record FROM services ORDER BY name"):
        for model in json.loads(row["record"]).get("models", []):
            ref = ModelRef.parse(model)
            if ref.version is not None:
                used.setdefault((ref.name, ref.version), []).append(row["name"])
    return used


class ServiceStore:
    """The service records of a workspace (table ``services`` of its database).

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> store = Workspace(tempfile.mkdtemp()).services
    >>> _ = store.put(ServiceRecord("iris", "local", "Healthy", models=("iris:1",)))
    >>> [r.name for r in store.list()]
    ['iris']
    >>> store.models_in_use()
    {('iris', 1)}
    """

    def __init__(self, workspace: Store) -> None:
        self.workspace = workspace

    def __repr__(self) -> str:
        return f"ServiceStore({self.workspace!r})"

    def put(self, record: ServiceRecord) -> ServiceRecord:
        """Insert or replace ``record`` (by name); returns it with ``updated`` set to now.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> store = Workspace(tempfile.mkdtemp()).services
        >>> store.put(ServiceRecord("svc", "local")).name
        'svc'
        """
        if not isinstance(record, ServiceRecord):
            raise InvalidArgumentError(
                f"expected a ServiceRecord, got {type(record).__qualname__}",
                hint="build one with ServiceRecord(name, target, state, ...)",
            )
        stored = record.replace(updated=max(utcnow(), record.created))
        with self.workspace.write() as conn:
            conn.execute(
                "INSERT INTO services (name, target, state, created, updated, record) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET target = excluded.target, "
                "state = excluded.state, created = excluded.created, "
                "updated = excluded.updated, record = excluded.record",
                (
                    stored.name,
                    stored.target,
                    stored.state.value,
                    stored.created.isoformat(),
                    stored.updated.isoformat(),
                    json.dumps(stored.to_dict()),
                ),
            )
        return stored

    def get(self, name: str) -> ServiceRecord:
        """The record of service ``name``; :class:`ServiceNotFoundError` if there is none.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> Workspace(tempfile.mkdtemp()).services.get("nope")
        Traceback (most recent call last):
        ...
        nbdeploy.exceptions.ServiceNotFoundError: no service named 'nope' in this workspace
        Hint: there are no services yet; deploy one first
        """
        with self.workspace.read() as conn:
            row = conn.execute("SELECT record FROM services WHERE name = ?", (name,)).fetchone()
            if row is None:
                names = [r[0] for r in conn.execute("SELECT name FROM services ORDER BY name")]
        if row is None:
            hint = (
                f"known services: {', '.join(names)}"
                if names
                else "there are no services yet; deploy one first"
            )
            raise ServiceNotFoundError(f"no service named {name!r} in this workspace", hint=hint)
        return ServiceRecord.from_dict(json.loads(row[0]))

    def list(self, target: str | None = None) -> builtins.list[ServiceRecord]:
        """All records (of one ``target`` if given), ordered by name.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> Workspace(tempfile.mkdtemp()).services.list(target="docker")
        []
        """
        with self.workspace.read() as conn:
            if target is None:
                rows = conn.execute("SELECT record FROM services ORDER BY name").fetchall()
            else:
                rows = conn.execute(
                    "SELECT record FROM services WHERE target = ? ORDER BY name", (target,)
                ).fetchall()
        return [ServiceRecord.from_dict(json.loads(row[0])) for row in rows]

    def delete(self, name: str) -> bool:
        """Forget service ``name``; ``True`` if it was recorded (deleting twice is fine).

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> Workspace(tempfile.mkdtemp()).services.delete("gone")
        False
        """
        with self.workspace.write() as conn:
            cursor = conn.execute("DELETE FROM services WHERE name = ?", (name,))
            return cursor.rowcount > 0

    def models_in_use(self) -> set[tuple[str, int]]:
        """The ``(model name, version)`` pairs any recorded service uses.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> Workspace(tempfile.mkdtemp()).services.models_in_use()
        set()
        """
        with self.workspace.read() as conn:
            return set(usage(conn))

    def users_of(self, models: Iterable[tuple[str, int]]) -> builtins.list[str]:
        """The names of the services that use any of ``models``, sorted."""
        wanted = set(models)
        with self.workspace.read() as conn:
            used = usage(conn)
        return sorted({svc for key, names in used.items() if key in wanted for svc in names})
