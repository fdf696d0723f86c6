"""Bundles: the plain folder every target runs with ``python -m nbdeploy.server``.

::

    <bundle>/
      bundle.json            manifest (BundleManifest)
      score.py               the scoring script (copied; or a built-in scorer)
      src/...                the inference config's source directory, if any
      models/<name>/<version>/<files>   (hard links into the artifact store when possible)
      requirements.txt

The scoring script finds its models in ``NBDEPLOY_MODEL_DIR`` (and
``AZUREML_MODEL_DIR``): ``models/<name>/<version>`` when the bundle holds one model,
``models`` when it holds several (or none).

:func:`build_bundle` builds into a hidden sibling folder and renames it into place, so
a half-built bundle is never visible under its final name.

Examples
--------
>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> _ = (root / "score.py").write_text("def init(): pass\\ndef run(data): return data\\n")
>>> config = InferenceConfig(entry_script=root / "score.py", environment=Environment(name="e"))
>>> bundle = build_bundle([], config, root / "bundle")
>>> sorted(p.name for p in bundle.path.iterdir())
['bundle.json', 'models', 'requirements.txt', 'score.py']
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from nbdeploy.core.environment import Environment
from nbdeploy.core.schema import Schema
from nbdeploy.core.scoring import InputMode, check_input_mode, check_script
from nbdeploy.exceptions import (
    IntegrityError,
    InvalidArgumentError,
    NbdeployError,
    ScoringScriptError,
)

if TYPE_CHECKING:
    from nbdeploy.core.registry import ModelVersion

__all__ = [
    "BUILTIN_SCORERS",
    "BUNDLE_FORMAT",
    "MANIFEST_NAME",
    "Bundle",
    "BundleManifest",
    "BundleModel",
    "InferenceConfig",
    "build_bundle",
    "builtin_scorer",
]

#: The version of the bundle layout and manifest this code writes and reads.
BUNDLE_FORMAT = 1
MANIFEST_NAME = "bundle.json"
ENTRY_SCRIPT = "score.py"
SOURCE_DIR = "src"
MODELS_DIR = "models"
REQUIREMENTS = "requirements.txt"

#: Left out when a source directory is copied into a bundle.
_IGNORED_SOURCES = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".ipynb_checkpoints", ".git", ".DS_Store"
)


@dataclass(frozen=True)
class InferenceConfig:
    """Scoring script + environment (+ a folder of extra files), as in Azure ML.

    When ``source_directory`` is set, a relative ``entry_script`` is relative to it.
    Both are checked when the config is made, so a typo fails at once, in the cell
    that made it, not minutes later during a deployment.

    Parameters
    ----------
    entry_script:
        The scoring script, or ``None`` for a built-in scorer (no-code deployment).
    environment:
        What to install; ``None`` captures it from the kernel when the bundle is built.
    source_directory:
        A folder copied into the bundle (``src/``) and put on the script's
        ``sys.path``.
    input_mode:
        How an undecorated ``run()`` receives a request: ``"raw"`` — the body as
        ``str``, Azure ML's rule; ``"decoded"`` — ``"data"`` converted by the model's
        schema. ``None`` leaves it to the API that deploys: ``Model.deploy`` /
        ``Model.package`` / ``Model.profile`` mean ``"raw"``, ``nbdeploy.deploy``
        ``"decoded"``. Decorated scripts (``@rawhttp``, ``@input_schema``) are called as
        their decorators say (see :class:`~nbdeploy.core.scoring.RunCall`).
    runtime, conda_file, description:
        The reference's older arguments: ``runtime`` must be ``"python"``;
        ``conda_file`` (relative to ``source_directory`` when that is set) becomes the
        environment, as :meth:`Environment.from_conda_specification` reads it.

    Raises
    ------
    ScoringScriptError
        The entry script does not exist or is not a file.
    InvalidArgumentError
        The source directory does not exist, the environment is not one, an unknown
        ``input_mode`` or ``runtime``, or both ``environment`` and ``conda_file``.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "score.py").write_text("def init(): pass\\ndef run(data): return data\\n")
    >>> InferenceConfig("score.py", source_directory=root).entry_script_path == root / "score.py"
    True
    """

    entry_script: str | Path | None = None
    environment: Environment | None = None
    source_directory: str | Path | None = None
    input_mode: InputMode | None = None
    runtime: str | None = None
    conda_file: str | Path | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        check_input_mode(self.input_mode)
        if self.runtime is not None and str(self.runtime).lower() != "python":
            raise InvalidArgumentError(
                f"runtime {self.runtime!r} is not supported; nbdeploy serves Python scripts",
                hint='use runtime="python" (or leave it out)',
            )
        # Paths are kept as Path objects, so configs compare equal however they were given.
        for name in ("entry_script", "source_directory"):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, (str, os.PathLike)):
                    raise InvalidArgumentError(
                        f"{name} must be a path, got {type(value).__name__}",
                        hint="pass a str or pathlib.Path",
                    )
                object.__setattr__(self, name, Path(value))
        if self.environment is not None and not isinstance(self.environment, Environment):
            raise InvalidArgumentError(
                f"environment must be an Environment, got {type(self.environment).__name__}",
                hint="use Environment.from_pip_requirements(...) or Environment(...)",
            )
        if self.source_directory is not None:
            source = Path(self.source_directory)
            if not source.is_dir():
                raise InvalidArgumentError(
                    f"source_directory {str(source)!r} is not a folder",
                    hint="pass the folder that holds the scoring script's helper files",
                )
        if self.conda_file is not None:
            self._environment_from_conda_file()
        script = self.entry_script_path
        if script is not None and not script.is_file():
            where = (
                f" (looked in source_directory {str(self.source_directory)!r})"
                if self.source_directory is not None
                and not Path(str(self.entry_script)).is_absolute()
                else ""
            )
            raise ScoringScriptError(
                f"entry script {str(self.entry_script)!r} does not exist{where}",
                hint="write it first (e.g. with %%writefile-score score.py) or fix the path",
            )

    def _environment_from_conda_file(self) -> None:
        if self.environment is not None:
            raise InvalidArgumentError(
                "InferenceConfig got both environment= and conda_file=",
                hint="pass one of them: environment=Environment.from_conda_specification(...)",
            )
        conda = Path(self.conda_file or "")
        if self.source_directory is not None and not conda.is_absolute():
            conda = Path(self.source_directory) / conda
        env = Environment.from_conda_specification(conda.stem, conda)
        object.__setattr__(self, "environment", env)
        object.__setattr__(self, "conda_file", None)  # now it is the environment

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (paths as strings); :meth:`from_dict` reads it back.

        Examples
        --------
        >>> InferenceConfig().to_dict()
        {'entry_script': None, 'environment': None, 'source_directory': None, 'input_mode': None}
        """
        return {
            "entry_script": None if self.entry_script is None else str(self.entry_script),
            "environment": None if self.environment is None else self.environment.to_dict(),
            "source_directory": (
                None if self.source_directory is None else str(self.source_directory)
            ),
            "input_mode": self.input_mode,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InferenceConfig:
        """Read what :meth:`to_dict` wrote (the files must still exist)."""
        unknown = set(data) - {"entry_script", "environment", "source_directory", "input_mode"}
        if unknown:
            raise InvalidArgumentError(
                f"unknown inference config fields {sorted(unknown)}",
                hint="use entry_script, environment, source_directory, input_mode",
            )
        environment = data.get("environment")
        return cls(
            entry_script=data.get("entry_script"),
            environment=None if environment is None else Environment.from_dict(environment),
            source_directory=data.get("source_directory"),
            input_mode=data.get("input_mode"),
        )

    def with_default_input_mode(self, mode: InputMode) -> InferenceConfig:
        """This config, with ``input_mode=mode`` when it has none and runs a script of
        its own (built-in scorers always get decoded data).

        Examples
        --------
        >>> InferenceConfig().with_default_input_mode("raw").input_mode is None
        True
        """
        if self.input_mode is not None or self.entry_script is None:
            return self
        return dataclasses.replace(self, input_mode=mode)

    @property
    def entry_script_path(self) -> Path | None:
        """The entry script's path, resolved against ``source_directory``."""
        if self.entry_script is None:
            return None
        script = Path(self.entry_script)
        if self.source_directory is not None and not script.is_absolute():
            script = Path(self.source_directory) / script
        return script


#: Built-in scoring script (in ``nbdeploy/scorers/``) for each framework that has one.
#: A ``python`` model is inspected first (:func:`_python_scorer`): a scikit-learn
#: estimator gets ``sklearn``, an object with ``predict`` or a function ``python``.
BUILTIN_SCORERS: dict[str, str] = {
    "sklearn": "sklearn",
    "xgboost": "sklearn",
    "lightgbm": "sklearn",
    "onnx": "onnx",
    "python": "python",
}
_SCORERS_DIR = Path(__file__).resolve().parent.parent / "scorers"


def builtin_scorer(framework: str) -> Path | None:
    """The built-in scoring script for models of ``framework``, if there is one.

    The hook for no-code deployment: :func:`build_bundle` copies it as ``score.py``
    when the inference config has no entry script (and records its name as
    ``"builtin_scorer"`` in the manifest). The scripts live in :mod:`nbdeploy.scorers`,
    where ``nbdeploy.scorers.show(name)`` prints them.

    Examples
    --------
    >>> builtin_scorer("sklearn").name
    'sklearn_scorer.py'
    >>> builtin_scorer("custom") is None
    True
    """
    name = BUILTIN_SCORERS.get(framework)
    return None if name is None else _SCORERS_DIR / f"{name}_scorer.py"


def _invalid(where: str, message: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"invalid bundle manifest {where}: {message}",
        hint="rebuild the bundle with build_bundle(); bundle.json is written by nbdeploy",
    )


def _field(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise _invalid(where, f"missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _invalid(where, f"field {key!r} must be {names}, got {value!r}")
    return value


def _check_relative(rel: str, where: str) -> str:
    pure = PurePosixPath(rel)
    if not rel or pure.is_absolute() or ".." in pure.parts or "\\" in rel:
        raise _invalid(where, f"file {rel!r} is not a relative path inside the model")
    return rel


@dataclass(frozen=True)
class BundleModel:
    """One model of a bundle, as the manifest records it.

    Examples
    --------
    >>> m = BundleModel("iris", 2, "sklearn", "1.4.0", ("model.pkl",), "sha256:00")
    >>> BundleModel.from_dict(m.to_dict()) == m
    True
    """

    name: str
    version: int
    framework: str
    framework_version: str | None
    files: tuple[str, ...]
    content_hash: str

    @property
    def ref(self) -> str:
        """``"name:version"``."""
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "framework": self.framework,
            "framework_version": self.framework_version,
            "files": list(self.files),
            "content_hash": self.content_hash,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "") -> BundleModel:
        if not isinstance(data, Mapping):
            raise _invalid(where, f"a model entry must be an object, got {data!r}")
        name = _field(data, "name", str, where)
        version = _field(data, "version", int, where)
        framework = _field(data, "framework", str, where)
        framework_version = _field(data, "framework_version", (str, type(None)), where)
        files = _field(data, "files", list, where)
        for rel in files:
            if not isinstance(rel, str):
                raise _invalid(where, f"field 'files' must hold strings, got {rel!r}")
            _check_relative(rel, where)
        return cls(
            name=name,
            version=version,
            framework=framework,
            framework_version=framework_version,
            files=tuple(files),
            content_hash=_field(data, "content_hash", str, where),
        )


@dataclass(frozen=True)
class BundleManifest:
    """The content of ``bundle.json`` (format 1).

    Schemas and the environment are kept as dicts here, exactly as stored; the
    :class:`Bundle` properties turn them into objects. ``builtin_scorer`` names the
    built-in scoring script ``score.py`` is a copy of (no-code deployment), else
    ``None``.

    Examples
    --------
    >>> m = BundleManifest(models=(), environment=Environment("e", "3.11").to_dict())
    >>> BundleManifest.from_dict(m.to_dict()) == m
    True
    """

    models: tuple[BundleModel, ...]
    environment: dict[str, Any]
    entry_script: str = ENTRY_SCRIPT
    source_dir: str | None = None
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    original_entry_script: str | None = None
    builtin_scorer: str | None = None
    input_mode: InputMode = "decoded"
    format: int = BUNDLE_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "models": [m.to_dict() for m in self.models],
            "entry_script": self.entry_script,
            "original_entry_script": self.original_entry_script,
            "builtin_scorer": self.builtin_scorer,
            "input_mode": self.input_mode,
            "source_dir": self.source_dir,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
            "environment": self.environment,
            "settings": self.settings,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "") -> BundleManifest:
        """Validate and read a manifest dict; errors name the missing or bad field."""
        if not isinstance(data, Mapping):
            raise _invalid(where, f"expected a JSON object, got {type(data).__name__}")
        fmt = _field(data, "format", int, where)
        if fmt != BUNDLE_FORMAT:
            raise InvalidArgumentError(
                f"bundle {where} has format {fmt}; this nbdeploy reads format {BUNDLE_FORMAT}",
                hint="rebuild the bundle with this version of nbdeploy",
            )
        models = tuple(
            BundleModel.from_dict(m, where=f"{where} (models[{i}])")
            for i, m in enumerate(_field(data, "models", list, where))
        )
        seen: set[tuple[str, int]] = set()
        for m in models:
            if (m.name, m.version) in seen:
                raise _invalid(where, f"model {m.ref} is listed twice")
            seen.add((m.name, m.version))
        entry = _check_relative(_field(data, "entry_script", str, where), where)
        source_dir = data.get("source_dir")
        if source_dir is not None:
            source_dir = _check_relative(_field(data, "source_dir", str, where), where)
        optional_dict = (dict, type(None))
        # Bundles made before the field existed meant "decoded".
        raw_mode = _field(data, "input_mode", str, where) if "input_mode" in data else None
        mode = check_input_mode(raw_mode, f"bundle {where}: field 'input_mode'") or "decoded"
        return cls(
            input_mode=mode,
            format=fmt,
            models=models,
            entry_script=entry,
            original_entry_script=data.get("original_entry_script"),
            builtin_scorer=_field(data, "builtin_scorer", (str, type(None)), where)
            if "builtin_scorer" in data
            else None,
            source_dir=source_dir,
            input_schema=_field(data, "input_schema", optional_dict, where)
            if "input_schema" in data
            else None,
            output_schema=_field(data, "output_schema", optional_dict, where)
            if "output_schema" in data
            else None,
            environment=_field(data, "environment", dict, where),
            settings=_field(data, "settings", dict, where) if "settings" in data else {},
        )

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> BundleManifest:
        """Read and validate a ``bundle.json`` file.

        Raises
        ------
        InvalidArgumentError
            The file is missing, is not JSON, or lacks a field (named in the message).
        """
        file = Path(path)
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidArgumentError(
                f"{str(file.parent)!r} is not an nbdeploy bundle: it has no {file.name}",
                hint="pass the folder build_bundle() created (it holds bundle.json)",
            ) from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise _invalid(str(file), f"cannot read it: {exc}") from None
        return cls.from_dict(data, where=str(file))


@dataclass(frozen=True)
class Bundle:
    """A built bundle folder and its manifest. Use :meth:`load` or :func:`build_bundle`.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "s.py").write_text("def init(): pass\\ndef run(data): return data\\n")
    >>> config = InferenceConfig(root / "s.py", Environment("e"))
    >>> b = build_bundle([], config, root / "b")
    >>> Bundle.load(root / "b").entry_script.name
    'score.py'
    """

    path: Path
    manifest: BundleManifest

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Bundle:
        """Read a bundle folder, checking its manifest and that its files are there.

        Raises
        ------
        InvalidArgumentError
            Not a bundle folder, a bad manifest, or a file the manifest names is
            missing; the message names the field or file.
        """
        root = Path(path).resolve()
        if not root.is_dir():
            raise InvalidArgumentError(
                f"bundle folder {str(path)!r} does not exist",
                hint="pass the folder build_bundle() created",
            )
        manifest = BundleManifest.read(root / MANIFEST_NAME)
        bundle = cls(root, manifest)
        where = str(root / MANIFEST_NAME)
        if not bundle.entry_script.is_file():
            raise _invalid(where, f"its entry script {manifest.entry_script!r} is missing")
        if manifest.source_dir is not None and not (root / manifest.source_dir).is_dir():
            raise _invalid(where, f"its source folder {manifest.source_dir!r} is missing")
        for model in manifest.models:
            folder = root / MODELS_DIR / model.name / str(model.version)
            for rel in model.files:
                if not (folder / rel).is_file():
                    raise _invalid(
                        where, f"file {rel!r} of model {model.ref} is missing from {folder}"
                    )
        return bundle

    @property
    def models(self) -> tuple[BundleModel, ...]:
        """The models of the bundle, in the order they were given."""
        return self.manifest.models

    @property
    def model_dir(self) -> Path:
        """What ``NBDEPLOY_MODEL_DIR`` points to: one model's folder, or ``models``."""
        if len(self.models) == 1:
            only = self.models[0]
            return self.path / MODELS_DIR / only.name / str(only.version)
        return self.path / MODELS_DIR

    @property
    def entry_script(self) -> Path:
        """The scoring script in the bundle (``score.py``)."""
        return self.path / self.manifest.entry_script

    @property
    def source_dir(self) -> Path | None:
        """The copied source directory (``src``), or ``None``."""
        return None if self.manifest.source_dir is None else self.path / self.manifest.source_dir

    @property
    def requirements_txt(self) -> Path:
        """The bundle's ``requirements.txt``."""
        return self.path / REQUIREMENTS

    @property
    def input_schema(self) -> Schema | None:
        """The schema requests are validated against, if any."""
        data = self.manifest.input_schema
        return None if data is None else Schema.from_dict(data)

    @property
    def output_schema(self) -> Schema | None:
        """The schema of ``run()``'s answers, if any."""
        data = self.manifest.output_schema
        return None if data is None else Schema.from_dict(data)

    @property
    def input_mode(self) -> InputMode:
        """How an undecorated ``run()`` receives requests (``"raw"`` / ``"decoded"``)."""
        return self.manifest.input_mode

    @property
    def settings(self) -> dict[str, Any]:
        """Server settings recorded at build time (a copy)."""
        return json.loads(json.dumps(self.manifest.settings))  # type: ignore[no-any-return]

    @property
    def environment(self) -> Environment:
        """What the service needs installed."""
        return Environment.from_dict(self.manifest.environment)

    def model_env(self) -> dict[str, str]:
        """The environment variables the scoring process gets (the scoring contract).

        Examples
        --------
        >>> sorted(Bundle(Path("/b"), BundleManifest((), {})).model_env())
        ['AZUREML_MODEL_DIR', 'NBDEPLOY_BUNDLE_DIR', 'NBDEPLOY_MODEL_DIR']
        """
        model_dir = str(self.model_dir)
        return {
            "NBDEPLOY_MODEL_DIR": model_dir,
            "AZUREML_MODEL_DIR": model_dir,
            "NBDEPLOY_BUNDLE_DIR": str(self.path),
        }


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same filesystem, no bytes copied), else copy it."""
    try:
        os.link(src, dst)
    except OSError:  # EXDEV across filesystems, EPERM where links are not allowed ...
        shutil.copy2(src, dst)


def _schema_dict(value: Schema | Mapping[str, Any] | None, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Schema):
        return value.to_dict()
    if isinstance(value, Mapping):
        return Schema.from_dict(dict(value)).to_dict()  # validates it
    raise InvalidArgumentError(
        f"{what} must be a Schema, got {type(value).__name__}",
        hint="infer one from a sample with nbdeploy.core.schema.infer_schema(sample)",
    )


def _check_models(models: Sequence[ModelVersion]) -> None:
    seen: set[tuple[str, int]] = set()
    for mv in models:
        key = (mv.name, mv.version)
        if key in seen:
            raise InvalidArgumentError(
                f"model {mv.name}:{mv.version} is given twice",
                hint="list each model version once",
            )
        seen.add(key)


def _add_model(mv: ModelVersion, models_root: Path, *, verify: bool) -> BundleModel:
    where = f"model {mv.name}:{mv.version}"
    files = tuple(_check_relative(f, where) for f in mv.files)
    source = Path(mv.path)
    missing = [f for f in files if not (source / f).is_file()]
    if missing:
        raise IntegrityError(
            f"{where}: files {missing} are missing from {str(source)!r}",
            hint="the artifact store was changed by hand; register the model again",
        )
    if verify:
        mv.verify()  # IntegrityError: never ship files the registry did not register
    target = models_root / mv.name / str(mv.version)
    for rel in files:
        dst = target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(source / rel, dst)
    target.mkdir(parents=True, exist_ok=True)
    return BundleModel(
        name=mv.name,
        version=mv.version,
        framework=mv.framework,
        framework_version=mv.framework_version,
        files=files,
        content_hash=mv.content_hash,
    )


def _entry_script(
    models: Sequence[ModelVersion], config: InferenceConfig
) -> tuple[Path, str | None]:
    """The script to copy as ``score.py`` and the built-in scorer's name, if it is one."""
    script = config.entry_script_path
    if script is not None:
        return script, None
    hint = (
        "write a scoring script with init() and run(data) and pass "
        "InferenceConfig(entry_script='score.py') (or score='score.py'); "
        "nbdeploy.scorers.show('sklearn') prints a built-in one to start from"
    )
    if len(models) != 1:
        what = (
            f"{len(models)} models (a multi-model endpoint)"
            if models
            else "a bundle without models"
        )
        raise ScoringScriptError(
            f"the inference config has no entry script, and there is no built-in scoring "
            f"script for {what}",
            hint=hint,
        )
    mv = models[0]
    name = BUILTIN_SCORERS.get(mv.framework)
    if name == "python":
        name = _python_scorer(mv, hint)
    if name is None:
        raise ScoringScriptError(
            f"the inference config has no entry script, and there is no built-in scoring "
            f"script for model {mv.name}:{mv.version} of framework {mv.framework!r} "
            f"(built-in: {', '.join(sorted(BUILTIN_SCORERS))})",
            hint=hint,
        )
    return _SCORERS_DIR / f"{name}_scorer.py", name


def _python_scorer(mv: ModelVersion, hint: str) -> str:
    """Which built-in scorer serves the ``python`` model ``mv``: ``sklearn`` for a
    scikit-learn estimator, ``python`` for an object with ``predict`` or a function.

    The model is loaded to look at it (a ``.pkl`` file says "pickle", not what is in
    it); :meth:`ModelVersion.load` checks its content hash first. Loading it here makes
    a model no built-in scorer can serve fail now, at deploy time, in the kernel.
    """
    where = f"model {mv.name}:{mv.version} (framework 'python')"
    try:
        obj = mv.load()
    except NbdeployError:
        raise
    except Exception as exc:
        raise ScoringScriptError(
            f"no-code deployment: cannot load {where} to choose a built-in scoring script: "
            f"{type(exc).__name__}: {exc}",
            hint=hint,
        ) from exc
    sklearn_base = sys.modules.get("sklearn.base")
    estimator = getattr(sklearn_base, "BaseEstimator", None)
    if isinstance(estimator, type) and isinstance(obj, estimator):
        return "sklearn"
    if callable(getattr(obj, "predict", None)):
        return "python"
    if callable(obj) and not isinstance(obj, type):
        return "python"
    raise ScoringScriptError(
        f"no-code deployment: {where} is a {type(obj).__qualname__}, which has no "
        "predict() method and is not callable, so no built-in scoring script can serve it",
        hint=hint,
    )


def _json_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise InvalidArgumentError(
            f"settings must be a dict, got {type(settings).__name__}",
            hint="pass server settings like {'service_name': 'iris'}",
        )
    try:
        return json.loads(json.dumps(dict(settings)))  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"settings must be JSON-serializable: {exc}",
            hint="use strings, numbers, booleans, lists and dicts",
        ) from None


def _check_dest(dest: Path) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise InvalidArgumentError(
            f"bundle destination {str(dest)!r} exists and is not a folder",
            hint="choose another destination",
        )
    if dest.is_dir() and any(dest.iterdir()):
        raise InvalidArgumentError(
            f"bundle destination {str(dest)!r} exists and is not empty",
            hint="choose a new folder, or delete the old bundle first",
        )


def build_bundle(
    models: Sequence[ModelVersion],
    inference_config: InferenceConfig,
    dest: str | os.PathLike[str],
    *,
    settings: Mapping[str, Any] | None = None,
    input_schema: Schema | Mapping[str, Any] | None = None,
    output_schema: Schema | Mapping[str, Any] | None = None,
    verify: bool = True,
) -> Bundle:
    """Lay out a bundle folder for ``models`` served by ``inference_config``.

    Model files are checked against their registered hash (``verify``), then
    hard-linked into ``models/<name>/<version>/`` (copied across filesystems); the entry
    script is copied to ``score.py`` (its original name is kept in the manifest), the
    source directory to ``src/``; ``requirements.txt`` comes from the environment —
    captured from the kernel (script imports + model frameworks) when the config has
    none. Schemas: explicit arguments, else the first model's — so a multi-model bundle
    validates requests only when its first model has an input schema (pass
    ``input_schema`` to choose another).

    No-code deployment: with no entry script and exactly one model whose framework has
    a built-in scorer (:data:`BUILTIN_SCORERS`; see :mod:`nbdeploy.scorers`), that
    script becomes ``score.py`` and the manifest records its name. A ``python`` model is
    loaded (hash checked) to choose: a scikit-learn estimator gets the ``sklearn``
    scorer, an object with ``predict`` or a function the ``python`` one, anything else
    fails here with a :class:`ScoringScriptError` asking for a scoring script.

    The bundle is built in a hidden sibling folder and renamed to ``dest`` at the end:
    a failed build leaves nothing behind, and ``dest`` never shows a half bundle.

    Parameters
    ----------
    models:
        Registered model versions (``ModelVersion``s).
    inference_config:
        Scoring script, environment and source directory.
    dest:
        The new bundle folder; must not exist or be empty.
    settings:
        Server settings recorded in the manifest (JSON-serializable).
    input_schema, output_schema:
        Override the models' schemas.
    verify:
        Check model files against their content hash before bundling them.

    Raises
    ------
    InvalidArgumentError
        ``dest`` exists and is not empty, a model is given twice, bad settings.
    ScoringScriptError
        No entry script (and no built-in one), or the script has errors
        (:func:`~nbdeploy.core.scoring.check_script`).
    IntegrityError
        Model files are missing or do not match their hash.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "s.py").write_text("def init(): pass\\ndef run(data): return data\\n")
    >>> b = build_bundle([], InferenceConfig(root / "s.py", Environment("e")), root / "b")
    >>> b.manifest.original_entry_script
    's.py'
    """
    target = Path(dest)
    _check_models(models)
    _check_dest(target)
    script, builtin = _entry_script(models, inference_config)
    check_script(script).raise_for_errors()
    input_mode = _input_mode(inference_config, builtin)
    settings_dict = _json_settings(settings)
    if models:  # explicit schemas win over the first model's
        input_schema = input_schema if input_schema is not None else models[0].input_schema
        output_schema = output_schema if output_schema is not None else models[0].output_schema
    input_dict = _schema_dict(input_schema, "input_schema")
    output_dict = _schema_dict(output_schema, "output_schema")

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.building-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        models_root = staging / MODELS_DIR
        models_root.mkdir()
        entries = [_add_model(mv, models_root, verify=verify) for mv in models]
        shutil.copy2(script, staging / ENTRY_SCRIPT)
        source_dir: str | None = None
        if inference_config.source_directory is not None:
            shutil.copytree(
                inference_config.source_directory, staging / SOURCE_DIR, ignore=_IGNORED_SOURCES
            )
            source_dir = SOURCE_DIR
        environment = inference_config.environment or _capture_environment(
            script, models, inference_config
        )
        (staging / REQUIREMENTS).write_text(environment.to_requirements_txt(), encoding="utf-8")
        manifest = BundleManifest(
            models=tuple(entries),
            environment=environment.to_dict(),
            entry_script=ENTRY_SCRIPT,
            original_entry_script=script.name,
            builtin_scorer=builtin,
            input_mode=input_mode,
            source_dir=source_dir,
            input_schema=input_dict,
            output_schema=output_dict,
            settings=settings_dict,
        )
        # The manifest is written last: a folder with bundle.json is a complete bundle.
        (staging / MANIFEST_NAME).write_text(
            json.dumps(manifest.to_dict(), indent=2) + "\n", encoding="utf-8"
        )
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Bundle.load(target)


def _input_mode(config: InferenceConfig, builtin: str | None) -> InputMode:
    """The bundle's input mode: the config's, ``"decoded"`` by default and always for
    a built-in scorer (nbdeploy's own scripts take decoded data)."""
    if builtin is not None and config.input_mode == "raw":
        raise InvalidArgumentError(
            "input_mode='raw' needs a scoring script of your own: the built-in scorers "
            "take decoded data",
            hint="drop input_mode, or pass entry_script= (score=) with a run(raw_data)",
        )
    return config.input_mode or "decoded"


def _capture_environment(
    script: Path, models: Iterable[ModelVersion], config: InferenceConfig
) -> Environment:
    local = [Path(config.source_directory)] if config.source_directory is not None else []
    return Environment.from_kernel(
        script=script,
        frameworks=sorted({mv.framework for mv in models}),
        local_paths=local,
    )


def _move_into_place(staging: Path, target: Path) -> None:
    if target.is_dir():
        try:
            target.rmdir()  # an empty folder the caller prepared
        except OSError:
            raise InvalidArgumentError(
                f"bundle destination {str(target)!r} was filled while the bundle was built",
                hint="build into a new folder",
            ) from None
    try:
        os.rename(staging, target)
    except OSError as exc:
        raise NbdeployError(
            f"cannot move the built bundle into {str(target)!r}: {exc}",
            hint="build into a new folder",
        ) from None
