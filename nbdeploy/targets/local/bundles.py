"""What the local target reads from a bundle folder: its path, models and settings."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nbdeploy.exceptions import InvalidArgumentError
from nbdeploy.targets.base import bundle_folder

__all__ = ["bundle_log_level", "bundle_models", "bundle_path", "bundle_settings"]


def bundle_path(bundle: Any) -> Path:
    """The folder of ``bundle`` (see :func:`~nbdeploy.targets.base.bundle_folder`),
    which must hold a ``bundle.json``: the local target reads it before it starts."""
    path = bundle_folder(bundle)
    if not (path / "bundle.json").is_file():
        raise InvalidArgumentError(
            f"bundle folder {str(path)!r} does not exist or has no bundle.json",
            hint="build the bundle with build_bundle(...) and pass its folder",
        )
    return path


def bundle_models(path: Path) -> tuple[str, ...]:
    try:
        manifest = json.loads((path / "bundle.json").read_text(encoding="utf-8"))
        return tuple(f"{m['name']}:{m['version']}" for m in manifest.get("models", []))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidArgumentError(
            f"cannot read the manifest {str(path / 'bundle.json')!r}: {exc}",
            hint="rebuild the bundle with build_bundle(...)",
        ) from None


def bundle_settings(bundle: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The server settings recorded in a bundle's manifest (empty when unreadable)."""
    if not bundle:
        return {}
    try:
        manifest = json.loads((Path(bundle) / "bundle.json").read_text(encoding="utf-8"))
        settings = manifest.get("settings") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return dict(settings) if isinstance(settings, Mapping) else {}


def bundle_log_level(bundle: Path) -> str:
    try:
        manifest = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
        level = (manifest.get("settings") or {}).get("log_level")
    except (OSError, ValueError, AttributeError):
        level = None
    return str(level) if level else "info"
