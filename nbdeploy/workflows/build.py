"""The bundles a workflow builds: which models, which inference configuration.

Deploy, update, traffic and package all turn "these models with this script" into a
bundle the same way; the choices they share live here.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdeploy.core.bundle import Bundle, InferenceConfig, build_bundle
from nbdeploy.core.refs import ModelRef
from nbdeploy.core.registry import ModelVersion
from nbdeploy.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from nbdeploy.core.environment import Environment
    from nbdeploy.core.workspace import Workspace

__all__ = [
    "as_environment",
    "inference_config_for",
    "keep_input_mode",
    "new_bundle",
    "resolve_models",
]


def resolve_models(workspace: Workspace, models: Any) -> list[ModelVersion]:
    """Turn refs (``"name"``, ``"name:3"``), ``ModelRef``s, ``Model``s or ``ModelVersion``s
    — one or a list — into registered model versions."""
    items: Iterable[Any] = (
        models if isinstance(models, (list, tuple)) else [models]  # a single model
    )
    resolved: list[ModelVersion] = []
    for item in items:
        if isinstance(item, ModelVersion):
            resolved.append(item)
        elif isinstance(item, (str, ModelRef)):
            resolved.append(workspace.registry.get(item))
        elif hasattr(item, "model_version") and isinstance(item.model_version, ModelVersion):
            resolved.append(item.model_version)  # a nbdeploy.Model
        else:
            raise InvalidArgumentError(
                f"cannot deploy {type(item).__name__!r} objects as a model reference",
                hint="pass a registered model: 'name', 'name:3', a Model, or register the "
                "object first with nbdeploy.register(obj, name=...)",
            )
    if not resolved:
        raise InvalidArgumentError("no model to deploy", hint="pass at least one model")
    return resolved


def as_environment(value: Environment | str | os.PathLike[str] | None) -> Environment | None:
    """``value`` as an environment: an :class:`~nbdeploy.core.environment.Environment`
    as given, or a ``requirements.txt`` / ``environment.yml`` path read into one."""
    from nbdeploy.core.environment import Environment

    if value is None or isinstance(value, Environment):
        return value
    path = Path(value)
    if path.suffix in {".yml", ".yaml"}:
        return Environment.from_conda_specification(path.stem, path)
    return Environment.from_pip_requirements(path.stem, path)


def new_bundle(
    workspace: Workspace,
    service: str,
    models: Sequence[ModelVersion],
    inference_config: InferenceConfig,
    settings: dict[str, Any],
) -> Bundle:
    dest = Path(workspace.bundles_dir) / service / uuid.uuid4().hex[:12]
    dest.parent.mkdir(parents=True, exist_ok=True)
    return build_bundle(models, inference_config, dest, settings=settings)


def keep_input_mode(config: InferenceConfig, current: Bundle) -> InferenceConfig:
    """``config`` with the running bundle's input mode when it names none (a built-in
    scorer's bundle says nothing about how a new script wants its requests)."""
    if current.manifest.builtin_scorer is not None:
        return config
    return config.with_default_input_mode(current.input_mode)


def inference_config_for(
    current: Bundle | None,
    given: InferenceConfig | None = None,
    *,
    score: Any = None,
    environment: Any = None,
    source_directory: Any = None,
) -> InferenceConfig:
    """The inference configuration of a new bundle for a service running ``current``.

    ``given`` wins; else ``score`` / ``environment`` / ``source_directory`` make one;
    else the running bundle's script, environment and source folder are kept (a
    built-in scorer is chosen again for the new models, whose framework may differ).
    Unless the result names an input mode, the running bundle's is kept: every
    version of a service is called the same way.
    """
    if given is not None:
        config = given
    elif score is not None or environment is not None or source_directory is not None:
        config = InferenceConfig(
            entry_script=score,
            environment=as_environment(environment),
            source_directory=source_directory,
        )
    elif current is None:
        return InferenceConfig()
    else:
        config = InferenceConfig(
            entry_script=None if current.manifest.builtin_scorer else current.entry_script,
            environment=current.environment,
            source_directory=current.source_dir,
        )
    return config if current is None else keep_input_mode(config, current)
