"""``ModelRef``: the ``"name"`` / ``"name:3"`` way of naming a model version."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nbdeploy.exceptions import InvalidArgumentError

__all__ = ["NAME_PATTERN", "ModelRef", "check_name"]

#: Model and service names: start with a letter or digit, then letters, digits, ``_.-``.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_name(name: object, what: str = "model") -> str:
    """Return ``name`` if it is a valid model/service name, else raise a clear error.

    The whole string must match (``fullmatch``): ``re.match`` with ``$`` would accept a
    trailing newline, a name no later lookup finds again.

    Examples
    --------
    >>> check_name("iris-2")
    'iris-2'
    >>> check_name("iris\\n")
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: invalid model name 'iris\\n'
    Hint: use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidArgumentError(
            f"invalid {what} name {name!r}",
            hint="use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit",
        )
    return name


@dataclass(frozen=True, order=True)
class ModelRef:
    """A model name with an optional version (``None`` means the latest).

    Examples
    --------
    >>> ModelRef.parse("diabetes:3")
    ModelRef(name='diabetes', version=3)
    >>> str(ModelRef("diabetes"))
    'diabetes'
    """

    name: str
    version: int | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.version is not None and (
            isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1
        ):
            raise InvalidArgumentError(
                f"invalid model version {self.version!r} for {self.name!r}",
                hint="versions are whole numbers starting at 1",
            )

    @classmethod
    def parse(cls, text: str | ModelRef) -> ModelRef:
        """Parse ``"name"`` or ``"name:version"``."""
        if isinstance(text, ModelRef):
            return text
        if not isinstance(text, str):
            raise InvalidArgumentError(f"expected a model reference like 'name:3', got {text!r}")
        name, sep, version = text.strip().partition(":")
        if not sep:
            return cls(name)
        if not version.isdigit():
            raise InvalidArgumentError(
                f"invalid model reference {text!r}: version {version!r} is not a number",
                hint="write 'name' for the latest version or 'name:3' for version 3",
            )
        return cls(name, int(version))

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRef:
        return cls(data["name"], data.get("version"))
