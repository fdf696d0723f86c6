"""What every target's deployment configuration shares: dict and mapping input."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from nbdeploy.exceptions import InvalidArgumentError

__all__ = ["TargetConfig"]

C = TypeVar("C", bound="TargetConfig")


class TargetConfig:
    """What the targets' deployment configurations share: dict and mapping input.

    Subclasses are frozen dataclasses naming their ``target``, a ``label`` for
    messages and a ``coerce_hint`` saying how to make one.
    """

    target: ClassVar[str]
    label: ClassVar[str]
    coerce_hint: ClassVar[str]

    def __init__(self, **values: Any) -> None:  # replaced by each dataclass's own
        raise NotImplementedError

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Build a config from its ``to_dict()`` output (unknown keys are an error)."""
        values = dict(data)
        given = values.pop("target", cls.target)
        if given != cls.target:
            raise InvalidArgumentError(
                f"configuration for target {given!r} given to the {cls.target} target"
            )
        known = set(inspect.signature(cls).parameters)
        unknown = set(values) - known
        if unknown:
            raise InvalidArgumentError(
                f"unknown {cls.label} deployment setting(s): {', '.join(sorted(unknown))}",
                hint=f"known settings: {', '.join(sorted(known))}",
            )
        return cls(**values)

    @classmethod
    def coerce(cls: type[C], config: Any) -> C:
        """``config`` as this configuration (from ``None``, a mapping or itself)."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, Mapping):
            return cls.from_dict(config)
        raise InvalidArgumentError(
            f"expected a {cls.__name__} for the {cls.target} target, got {type(config).__name__}",
            hint=cls.coerce_hint,
        )
