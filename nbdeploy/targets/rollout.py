"""The one update algorithm of the targets that replace a running generation.

An update builds the new generation, starts it, waits until it is ready, switches
traffic to it and stops the old one. When the new generation fails, it is removed
and the old one is restored; the caller learns which of two things is true:

- the previous version keeps serving (the record is unchanged), or
- it could not be restored: the record says ``Failed`` with both reasons.

Nothing here knows processes or containers. A target supplies the primitives by
subclassing :class:`Rollout` (:mod:`nbdeploy.targets.local.generations`,
:mod:`nbdeploy.targets.docker.generations`); :meth:`Rollout.run` is the sequence,
written once. A service with no running generation to hand over from is deployed
afresh instead (:func:`redeploy`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbdeploy.core.services import ServiceRecord, ServiceState
from nbdeploy.exceptions import DeploymentError

from .base import Target
from .records import Outcome, logs_hint

__all__ = ["Rollout", "redeploy"]


class Rollout(ABC):
    """One update of service ``record.name`` to the bundle at ``bundle``.

    Subclasses supply the primitives; :meth:`run` calls them in order:
    :meth:`prepare` → :meth:`make_room` → :meth:`start` → :meth:`wait_ready` →
    :meth:`switch` → :meth:`stop_old` → :meth:`commit`; on a failed start
    :meth:`discard_new` and, when room was made, :meth:`restore_old`.

    Parameters
    ----------
    target:
        The target whose service is updated (its workspace holds the record).
    record:
        The service's live record before the update.
    bundle:
        The new generation's bundle folder.
    timeout:
        Seconds the new generation may take to become ready (for messages).
    show_output:
        Print progress.
    """

    #: Names the new generation's output in the hint of a failed update.
    output_hint = "see the full output with"
    #: What a failed update says when the old generation still serves.
    kept = "the previous version keeps serving"

    def __init__(
        self,
        target: Target,
        record: ServiceRecord,
        bundle: Path,
        *,
        timeout: float,
        show_output: bool,
    ) -> None:
        self.target = target
        self.record = record
        self.bundle = bundle
        self.timeout = timeout
        self.show_output = show_output

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def generation(self) -> int:
        """The number of the new generation."""
        return self.record.generation + 1

    def prepare(self) -> None:
        """Build what the new generation needs (an image, ...); nothing runs yet.
        Raising here leaves the old generation untouched."""
        return

    def make_room(self) -> bool:
        """Stop what must stop before the new generation can start (a published port);
        ``True`` when something was stopped and :meth:`restore_old` must undo it."""
        return False

    @abstractmethod
    def start(self) -> None:
        """Start the new generation (and note it in the record, so a delete from
        another process stops it)."""

    @abstractmethod
    def wait_ready(self) -> Outcome:
        """Wait until the new generation is ready, failed, or out of time."""

    def switch(self) -> None:
        """Send traffic to the new generation (nothing to do where both generations
        serve one socket or port and the new one is already taking connections)."""
        return

    @abstractmethod
    def stop_old(self) -> None:
        """Stop the old generation, giving it time to finish its requests."""

    @abstractmethod
    def discard_new(self) -> None:
        """Stop and remove a new generation that failed, and forget it in the record."""

    def restore_old(self) -> None:
        """Start the old generation again after :meth:`make_room` stopped it, and wait
        until it serves. Raises with the reason when it does not."""
        return

    @abstractmethod
    def commit(self) -> ServiceRecord:
        """Store (and return) the record of the new generation, ``Healthy``."""

    def retire_bundles(self, updated: ServiceRecord) -> None:
        """Remove the bundle folders the old generation used and the new one does not
        (those the workspace owns)."""
        if self.record.bundle_path != updated.bundle_path:
            self.target._remove_bundle(self.record.bundle_path)

    def run(self) -> ServiceRecord:
        """The update: the record of the new generation.

        Raises
        ------
        DeploymentError
            The new generation failed. The message says whether the previous version
            keeps serving, or could not be restored (then the record is ``Failed``).
            Also raised, after the new record is stored, when the old generation
            could not be stopped.
        """
        if self.show_output:
            print(f"{self.name}: updating to generation {self.generation}", flush=True)
        self.prepare()
        made_room = self.make_room()
        try:
            self.start()
            outcome = self.wait_ready()
        except BaseException as exc:
            self._undo(made_room, str(exc) or type(exc).__name__)
            raise
        if not outcome.ready:
            reason = outcome.reason or f"not ready within {self.timeout:g} s"
            self._fail(made_room, reason)
        self.switch()
        leftover = _attempt(self.stop_old)
        updated = self.commit()
        self.retire_bundles(updated)
        if self.show_output:
            print(f"{self.name}: {updated.state.value} (generation {updated.generation})")
        if leftover is not None:
            raise DeploymentError(
                f"service {self.name!r} now serves generation {updated.generation}, but the "
                f"previous generation could not be stopped: {leftover}",
                hint="stop it by hand; delete() of the service stops every generation",
            )
        return updated

    def _undo(self, made_room: bool, reason: str) -> tuple[str | None, str | None]:
        """Remove the new generation and restore the old one: why the old one could not
        be restored (``None`` when it serves) and why the new one could not be removed
        (``None`` when it was). A failed restore marks the service ``Failed``."""
        leaked = _attempt(self.discard_new)
        if not made_room:
            return None, leaked
        broken = _attempt(self.restore_old)
        if broken is None:
            return None, leaked
        why = f"update failed: {reason}; the previous version could not be restarted: {broken}"
        if leaked is not None:
            why += f"; the new generation could not be removed: {leaked}"
        store = self.target.workspace.services
        store.put(store.get(self.name).with_state(ServiceState.FAILED, why))
        return broken, leaked

    def _fail(self, made_room: bool, reason: str) -> None:
        broken, leaked = self._undo(made_room, reason)
        if broken is not None:
            outcome = f"the previous version could not be restarted: {broken}"
        else:
            outcome = self.kept
        if leaked is not None:
            outcome += f"; the new generation could not be removed: {leaked}"
        if self.show_output:
            print(f"{self.name}: update failed ({reason}); {outcome}")
        raise DeploymentError(
            f"update of service {self.name!r} failed: {reason}; {outcome}",
            hint=logs_hint(self.name, self.output_hint),
        )


def _attempt(step: Callable[[], object]) -> str | None:
    """Run ``step``; what went wrong (``None`` when nothing did)."""
    try:
        step()
    except Exception as exc:
        return str(exc) or type(exc).__name__
    return None


def redeploy(
    target: Target,
    record: ServiceRecord,
    bundle: Path,
    config: Any,
    *,
    clear: Callable[[], None],
    show_output: bool,
) -> ServiceRecord:
    """Update a service with no running generation to hand over from: ``clear()`` what
    is left of it, deploy ``bundle`` afresh under the same name, and keep the record's
    creation time with the next generation number."""
    store = target.workspace.services
    clear()
    store.delete(record.name)
    fresh = target.deploy(record.name, bundle, config, wait=True, show_output=show_output)
    fresh = store.put(fresh.replace(created=record.created, generation=record.generation + 1))
    if record.bundle_path != str(bundle):
        target._remove_bundle(record.bundle_path)
    return fresh
