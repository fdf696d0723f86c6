"""Service records: validation, round trips, and the store in the workspace database."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from nbdeploy.core.refs import ModelRef
from nbdeploy.core.services import ServiceRecord, ServiceState, ServiceStore
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import InvalidArgumentError, ServiceNotFoundError

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def _record(**changes: Any) -> ServiceRecord:
    values: dict[str, Any] = {
        "name": "iris-svc",
        "target": "local",
        "state": ServiceState.HEALTHY,
        "scoring_uri": "http://127.0.0.1:5001/score",
        "swagger_uri": "http://127.0.0.1:5001/swagger.json",
        "models": ("iris:1", "other:3"),
        "bundle_path": "/tmp/bundles/iris-svc/1",
        "config": {"host": "127.0.0.1", "port": 5001, "pid": 42, "nested": {"a": [1, 2]}},
        "error": None,
        "created": T0,
        "updated": T0,
        "generation": 1,
    }
    values.update(changes)
    return ServiceRecord(**values)


def test_states_are_the_reference_ones() -> None:
    assert [s.value for s in ServiceState] == [
        "Transitioning",
        "Healthy",
        "Unhealthy",
        "Unschedulable",
        "Failed",
    ]
    assert ServiceState.HEALTHY == "Healthy"
    assert str(ServiceState.FAILED) == "Failed"
    assert not ServiceState.TRANSITIONING.is_final
    assert all(s.is_final for s in ServiceState if s is not ServiceState.TRANSITIONING)


def test_round_trip_through_dict_and_json() -> None:
    record = _record(error="nope", generation=4)
    data = json.loads(json.dumps(record.to_dict()))
    assert data["state"] == "Healthy"
    assert data["models"] == ["iris:1", "other:3"]
    again = ServiceRecord.from_dict(data)
    assert again == record
    assert again.to_dict() == record.to_dict()


def test_defaults() -> None:
    record = ServiceRecord("svc", "docker")
    assert record.state is ServiceState.TRANSITIONING
    assert record.models == ()
    assert dict(record.config) == {}
    assert record.generation == 1
    assert record.created.tzinfo is not None
    assert ServiceRecord.from_dict(record.to_dict()) == record


def test_values_are_normalised() -> None:
    record = _record(
        state="Failed",
        models=[ModelRef("iris", 2)],
        created="2024-05-01T14:00:00+02:00",
    )
    assert record.state is ServiceState.FAILED
    assert record.models == ("iris:2",)
    assert record.model_refs == (ModelRef("iris", 2),)
    assert record.created == T0
    assert record.created.utcoffset() == timedelta(0)


def test_records_are_immutable() -> None:
    record = _record()
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.state = ServiceState.FAILED  # type: ignore[misc]
    with pytest.raises(TypeError):
        record.config["port"] = 1  # type: ignore[index]
    source = {"port": 1}
    copied = _record(config=source)
    source["port"] = 2
    assert copied.config["port"] == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"name": "bad name"}, "invalid service name", id="name"),
        pytest.param({"target": ""}, "invalid service target", id="target"),
        pytest.param({"state": "Running"}, "invalid service state 'Running'", id="state"),
        pytest.param({"models": ("iris",)}, "has no version", id="model-without-version"),
        pytest.param({"models": "iris:1"}, "must be a sequence", id="models-string"),
        pytest.param({"config": {"f": object()}}, "not JSON-serializable", id="config"),
        pytest.param({"config": {"x": float("nan")}}, "not JSON-serializable", id="nan"),
        pytest.param({"config": [1]}, "must be a mapping", id="config-list"),
        pytest.param({"created": datetime(2024, 1, 1)}, "has no time zone", id="naive"),
        pytest.param({"updated": "yesterday"}, "not an ISO 8601", id="bad-date"),
        pytest.param({"generation": 0}, "generation", id="generation-zero"),
        pytest.param({"generation": True}, "generation", id="generation-bool"),
        pytest.param({"scoring_uri": 5}, "scoring_uri", id="uri"),
    ],
)
def test_invalid_records_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        _record(**changes)


def test_from_dict_refuses_unknown_fields() -> None:
    data = _record().to_dict()
    data["colour"] = "blue"
    with pytest.raises(InvalidArgumentError, match="colour"):
        ServiceRecord.from_dict(data)


def test_with_state_and_replace() -> None:
    record = _record(error="old")
    failed = record.with_state(ServiceState.FAILED, error="crashed")
    assert (failed.state, failed.error) == (ServiceState.FAILED, "crashed")
    assert failed.updated > record.updated
    assert record.state is ServiceState.HEALTHY  # the original is untouched
    healthy = failed.with_state("Healthy")
    assert healthy.error is None
    bumped = record.replace(generation=2, bundle_path="/b/2")
    assert (bumped.generation, bumped.bundle_path) == (2, "/b/2")
    with pytest.raises(InvalidArgumentError):
        record.replace(state="bogus")


def test_repr_is_short() -> None:
    text = repr(_record())
    assert text.startswith("ServiceRecord(name='iris-svc', target='local', state='Healthy'")
    assert "config" not in text


@pytest.fixture
def store(workspace: Workspace) -> ServiceStore:
    return workspace.services


def test_put_and_get(store: ServiceStore) -> None:
    record = _record()
    stored = store.put(record)
    assert stored.updated > record.updated
    assert stored.replace(updated=record.updated) == record
    assert store.get("iris-svc") == stored


def test_put_upserts(store: ServiceStore) -> None:
    store.put(_record())
    store.put(_record(state="Failed", error="boom", generation=2))
    got = store.get("iris-svc")
    assert (got.state, got.error, got.generation) == (ServiceState.FAILED, "boom", 2)
    assert len(store.list()) == 1


def test_put_refuses_other_objects(store: ServiceStore) -> None:
    with pytest.raises(InvalidArgumentError, match="expected a ServiceRecord"):
        store.put({"name": "x"})  # type: ignore[arg-type]


def test_get_missing_lists_known_names(store: ServiceStore) -> None:
    with pytest.raises(ServiceNotFoundError, match="no service named 'x'") as info:
        store.get("x")
    assert info.value.hint == "there are no services yet; deploy one first"
    store.put(_record(name="b"))
    store.put(_record(name="a"))
    with pytest.raises(ServiceNotFoundError) as info:
        store.get("x")
    assert info.value.hint == "known services: a, b"


def test_list_by_target(store: ServiceStore) -> None:
    store.put(_record(name="z", target="local"))
    store.put(_record(name="y", target="docker"))
    store.put(_record(name="x", target="local"))
    assert [r.name for r in store.list()] == ["x", "y", "z"]
    assert [r.name for r in store.list(target="local")] == ["x", "z"]
    assert [r.name for r in store.list(target="ray")] == []


def test_delete_is_idempotent(store: ServiceStore) -> None:
    store.put(_record())
    assert store.delete("iris-svc") is True
    assert store.delete("iris-svc") is False
    with pytest.raises(ServiceNotFoundError):
        store.get("iris-svc")


def test_models_in_use(store: ServiceStore) -> None:
    assert store.models_in_use() == set()
    store.put(_record(name="a", models=("iris:1", "other:3")))
    store.put(_record(name="b", models=("iris:2",)))
    store.put(_record(name="c", models=()))
    assert store.models_in_use() == {("iris", 1), ("iris", 2), ("other", 3)}
    assert store.users_of([("iris", 1), ("iris", 2)]) == ["a", "b"]
    store.delete("a")
    assert store.models_in_use() == {("iris", 2)}


def test_records_survive_a_new_workspace_object(workspace: Workspace) -> None:
    workspace.services.put(_record())
    assert Workspace(workspace.path).services.get("iris-svc").models == ("iris:1", "other:3")
