"""The one update algorithm (nbdeploy.targets.rollout) with fake primitives: the order
of the steps, and what a failed update reports — never a success it did not have."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import DeploymentError
from nbdeploy.targets.local import LocalTarget
from nbdeploy.targets.records import Outcome
from nbdeploy.targets.rollout import Rollout


class FakeRollout(Rollout):
    """Primitives that record their calls and fail where told to."""

    def __init__(
        self,
        target: LocalTarget,
        record: ServiceRecord,
        *,
        ready: bool = True,
        room: bool = False,
        start_error: str | None = None,
        restore_error: str | None = None,
        discard_error: str | None = None,
        stop_error: str | None = None,
    ) -> None:
        super().__init__(target, record, Path("/bundles/iris/2"), timeout=5.0, show_output=False)
        self.ready, self.room = ready, room
        self.start_error, self.restore_error = start_error, restore_error
        self.discard_error, self.stop_error = discard_error, stop_error
        self.calls: list[str] = []

    def prepare(self) -> None:
        self.calls.append("prepare")

    def make_room(self) -> bool:
        self.calls.append("make_room")
        return self.room

    def start(self) -> None:
        self.calls.append("start")
        if self.start_error:
            raise RuntimeError(self.start_error)

    def wait_ready(self) -> Outcome:
        self.calls.append("wait_ready")
        return Outcome(True) if self.ready else Outcome(False, "init() failed: boom")

    def switch(self) -> None:
        self.calls.append("switch")

    def stop_old(self) -> None:
        self.calls.append("stop_old")
        if self.stop_error:
            raise RuntimeError(self.stop_error)

    def discard_new(self) -> None:
        self.calls.append("discard_new")
        if self.discard_error:
            raise RuntimeError(self.discard_error)

    def restore_old(self) -> None:
        self.calls.append("restore_old")
        if self.restore_error:
            raise DeploymentError(self.restore_error)

    def commit(self) -> ServiceRecord:
        self.calls.append("commit")
        store = self.target.workspace.services
        return store.put(
            self.record.replace(
                state=ServiceState.HEALTHY, generation=self.generation, bundle_path=str(self.bundle)
            )
        )


@pytest.fixture
def target(tmp_path: Path) -> LocalTarget:
    return LocalTarget(Workspace(tmp_path / "ws"))


@pytest.fixture
def record(target: LocalTarget) -> ServiceRecord:
    healthy = ServiceRecord(
        "iris", "local", ServiceState.HEALTHY, models=("iris:1",), bundle_path="/bundles/iris/1"
    )
    return target.workspace.services.put(healthy)


def test_an_update_runs_the_steps_in_order(target: LocalTarget, record: ServiceRecord) -> None:
    rollout = FakeRollout(target, record)
    updated = rollout.run()
    assert rollout.calls == [
        "prepare",
        "make_room",
        "start",
        "wait_ready",
        "switch",
        "stop_old",
        "commit",
    ]
    assert updated.generation == record.generation + 1
    assert target.workspace.services.get("iris").state is ServiceState.HEALTHY


def test_a_failed_start_keeps_the_old_version(target: LocalTarget, record: ServiceRecord) -> None:
    rollout = FakeRollout(target, record, ready=False)
    with pytest.raises(DeploymentError, match=r"boom; the previous version keeps serving"):
        rollout.run()
    assert rollout.calls[-1] == "discard_new"
    assert "restore_old" not in rollout.calls
    stored = target.workspace.services.get("iris")
    assert stored.state is ServiceState.HEALTHY
    assert stored.generation == record.generation


def test_the_old_version_is_restored_when_room_was_made(
    target: LocalTarget, record: ServiceRecord
) -> None:
    rollout = FakeRollout(target, record, ready=False, room=True)
    with pytest.raises(DeploymentError, match="the previous version keeps serving"):
        rollout.run()
    assert rollout.calls[-2:] == ["discard_new", "restore_old"]
    assert target.workspace.services.get("iris").state is ServiceState.HEALTHY


def test_a_failed_restore_is_failed_with_the_reason(
    target: LocalTarget, record: ServiceRecord
) -> None:
    rollout = FakeRollout(
        target, record, ready=False, room=True, restore_error="port 8890 is taken"
    )
    with pytest.raises(DeploymentError) as raised:
        rollout.run()
    message = str(raised.value)
    assert "could not be restarted: port 8890 is taken" in message
    assert "keeps serving" not in message
    stored = target.workspace.services.get("iris")
    assert stored.state is ServiceState.FAILED
    assert stored.error is not None
    assert "init() failed: boom" in stored.error
    assert "port 8890 is taken" in stored.error


def test_a_new_generation_that_cannot_be_removed_is_reported(
    target: LocalTarget, record: ServiceRecord
) -> None:
    rollout = FakeRollout(target, record, ready=False, discard_error="engine went away")
    with pytest.raises(DeploymentError, match="could not be removed: engine went away"):
        rollout.run()


def test_an_error_while_starting_undoes_and_propagates(
    target: LocalTarget, record: ServiceRecord
) -> None:
    rollout = FakeRollout(target, record, room=True, start_error="no such image")
    with pytest.raises(RuntimeError, match="no such image"):
        rollout.run()
    assert rollout.calls[-2:] == ["discard_new", "restore_old"]
    assert target.workspace.services.get("iris").state is ServiceState.HEALTHY


def test_an_old_generation_that_cannot_be_stopped_is_reported(
    target: LocalTarget, record: ServiceRecord
) -> None:
    rollout = FakeRollout(target, record, stop_error="permission denied")
    with pytest.raises(DeploymentError, match="could not be stopped: permission denied"):
        rollout.run()
    stored = target.workspace.services.get("iris")
    assert stored.generation == record.generation + 1  # the new one serves and is recorded
    assert stored.state is ServiceState.HEALTHY
