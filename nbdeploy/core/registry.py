"""The model registry: versioned models (files + schema + metadata) in a workspace.

Registering
-----------
:meth:`Registry.register` takes an in-memory object (serialized by its framework
handler, see :mod:`nbdeploy.core.frameworks`), a file or a folder (``pathlib.Path``
or an existing path as ``str``). Each registration of a name gets the next version:
1, 2, 3 … Version numbers are never reused, even after a version is deleted, so a
bundle or service that names ``iris:3`` never silently gets another model.

Registration is atomic:

1. the files are written (or copied) into a private ``staging/<uuid>/`` folder,
   hashed as they are written (copied files: while they are fsync-ed), fsync-ed
   and made read-only;
2. ``BEGIN IMMEDIATE`` takes the database write lock and allocates the version;
3. the staged folder is *renamed* (never copied) to ``artifacts/<name>/<version>``
   — replacing an orphan folder a killed process may have left there;
4. the row is inserted and the transaction commits.

A process killed at any point leaves at most a staging folder (swept by the next
registration once its owner is gone) or an unreferenced artifact folder (replaced by
the next registration of that version, or removed by
:meth:`~nbdeploy.core.store.Store.gc`) — never a visible half version.

Loading is running code
-----------------------
A pickle runs code when it is loaded. :meth:`ModelVersion.load` therefore first
recomputes the content hash of the stored files and refuses (:class:`IntegrityError`)
when they differ from what was registered. Only load models your workspace
registered; the hash protects against files changed afterwards, not against a
malicious object you registered yourself.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import math
import os
import sqlite3
import stat
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from nbdeploy.exceptions import (
    IntegrityError,
    InvalidArgumentError,
    ModelInUseError,
    ModelNotFoundError,
)

from . import frameworks
from .hashing import combine_digests, copy_and_hash, hash_file
from .refs import ModelRef, check_name
from .services import usage
from .staging import StagingFolder, remove_tree, sweep_staging
from .store import Store

if TYPE_CHECKING:
    from .schema import Schema

__all__ = ["ModelVersion", "Registry", "Resources"]

_SAMPLE_FILES = {"input": "input.pkl", "output": "output.pkl"}


@dataclass(frozen=True)
class Resources:
    """CPU cores and memory (GB) a model needs, e.g. from profiling.

    Examples
    --------
    >>> Resources(cpu=0.5, memory_gb=1).to_dict()
    {'cpu': 0.5, 'memory_gb': 1.0}
    >>> Resources(cpu=0)
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: resources cpu must be a number > 0, got 0
    Hint: e.g. Resources(cpu=0.5, memory_gb=1.0); None means unspecified
    """

    cpu: float | None = None
    memory_gb: float | None = None

    def __post_init__(self) -> None:
        for attr in ("cpu", "memory_gb"):
            value = getattr(self, attr)
            if value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise InvalidArgumentError(
                    f"resources {attr} must be a number > 0, got {value!r}",
                    hint="e.g. Resources(cpu=0.5, memory_gb=1.0); None means unspecified",
                )
            object.__setattr__(self, attr, float(value))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reverses it."""
        return {"cpu": self.cpu, "memory_gb": self.memory_gb}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Resources:
        """Build from :meth:`to_dict` output (unknown keys are an error)."""
        unknown = set(data) - {"cpu", "memory_gb"}
        if unknown:
            raise InvalidArgumentError(
                f"unknown resources field(s): {', '.join(sorted(unknown))}",
                hint="use cpu and memory_gb",
            )
        return cls(cpu=data.get("cpu"), memory_gb=data.get("memory_gb"))


def _schema_from_dict(data: Mapping[str, Any] | None) -> Schema | None:
    if data is None:
        return None
    from .schema import Schema

    return Schema.from_dict(dict(data))


@dataclass(frozen=True, repr=False)
class ModelVersion:
    """One registered version of a model.

    Attributes follow the contract in ``docs/architecture.md``. ``samples`` maps
    ``"input"`` / ``"output"`` to the content hash of the pickled sample, and
    ``samples_path`` is the folder holding them (``None`` without samples).

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> ws = Workspace(tempfile.mkdtemp())
    >>> mv = ws.registry.register({"weights": [1, 2]}, "demo", tags={"stage": "dev"})
    >>> (mv.name, mv.version, mv.framework, mv.files)
    ('demo', 1, 'python', ('model.pkl',))
    >>> mv.load()
    {'weights': [1, 2]}
    >>> ModelVersion.from_dict(mv.to_dict()) == mv
    True
    """

    name: str
    version: int
    framework: str
    framework_version: str | None
    description: str
    tags: Mapping[str, str] = field(hash=False)
    properties: Mapping[str, str] = field(hash=False)
    content_hash: str
    created: datetime
    files: tuple[str, ...]
    path: Path
    input_schema: Schema | None = field(default=None, hash=False)
    output_schema: Schema | None = field(default=None, hash=False)
    resources: Resources | None = None
    samples: Mapping[str, str] = field(default_factory=dict, hash=False)
    samples_path: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))
        object.__setattr__(self, "properties", MappingProxyType(dict(self.properties)))
        object.__setattr__(self, "samples", MappingProxyType(dict(self.samples)))
        object.__setattr__(self, "files", tuple(self.files))
        object.__setattr__(self, "path", Path(self.path))
        if self.samples_path is not None:
            object.__setattr__(self, "samples_path", Path(self.samples_path))

    def __repr__(self) -> str:
        return (
            f"ModelVersion(name={self.name!r}, version={self.version}, "
            f"framework={self.framework!r}, content_hash={self.content_hash[:19]!r}…)"
        )

    @property
    def ref(self) -> ModelRef:
        """This version as a :class:`ModelRef` (``name:version``)."""
        return ModelRef(self.name, self.version)

    def verify(self) -> None:
        """Raise :class:`IntegrityError` unless the stored files match the content hash.

        The folder must hold exactly the registered files, with the registered bytes.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> Workspace(tempfile.mkdtemp()).registry.register([1], "m").verify()
        """
        hint = (
            "the model's files were changed after registration; restore them, or "
            "register the model again (and delete this version)"
        )
        if not self.path.is_dir():
            raise IntegrityError(
                f"model {self.ref} has no files at {self.path}",
                hint="the artifact folder was removed; register the model again",
            )
        on_disk = set(_walk_files(self.path))
        expected = set(self.files)
        if on_disk != expected:
            extra = sorted(on_disk - expected)
            missing = sorted(expected - on_disk)
            raise IntegrityError(
                f"files of model {self.ref} at {self.path} differ from the registered "
                f"ones (unexpected: {extra or 'none'}; missing: {missing or 'none'})",
                hint=hint,
            )
        actual = combine_digests({rel: hash_file(self.path / rel) for rel in self.files})
        if actual != self.content_hash:
            raise IntegrityError(
                f"files of model {self.ref} at {self.path} do not match the registered "
                f"content hash {self.content_hash} (found {actual})",
                hint=hint,
            )

    def load(self) -> Any:
        """Verify the files, then load the model with its framework handler.

        Returns the model object; for a folder of several files with no single model
        file (or a ``custom`` model) the :class:`~pathlib.Path` of the files instead.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> ws = Workspace(tempfile.mkdtemp())
        >>> ws.registry.register(abs, "f").load()(-2)
        2
        """
        self.verify()
        handler = frameworks.handler_for(self.framework, self.files)
        return handler.load(self.path, self.files)

    def _load_sample(self, kind: str) -> Any:
        expected = self.samples.get(kind)
        if expected is None or self.samples_path is None:
            return None
        path = self.samples_path / _SAMPLE_FILES[kind]
        try:
            actual = "sha256:" + hash_file(path).hex()
        except FileNotFoundError:
            raise IntegrityError(
                f"sample {kind} of model {self.ref} is missing at {path}",
                hint="register the model again with its sample",
            ) from None
        if actual != expected:
            raise IntegrityError(
                f"sample {kind} of model {self.ref} at {path} does not match its hash",
                hint="the file was changed after registration; register the model again",
            )
        return frameworks.load_pickle(path)

    def load_sample_input(self) -> Any:
        """The sample input given at registration (verified), or ``None``.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> ws = Workspace(tempfile.mkdtemp())
        >>> ws.registry.register(abs, "f").load_sample_input() is None
        True
        """
        return self._load_sample("input")

    def load_sample_output(self) -> Any:
        """The sample output given at registration (verified), or ``None``."""
        return self._load_sample("output")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reverses it."""
        return {
            "name": self.name,
            "version": self.version,
            "framework": self.framework,
            "framework_version": self.framework_version,
            "description": self.description,
            "tags": dict(self.tags),
            "properties": dict(self.properties),
            "content_hash": self.content_hash,
            "created": self.created.isoformat(),
            "files": list(self.files),
            "path": str(self.path),
            "input_schema": None if self.input_schema is None else self.input_schema.to_dict(),
            "output_schema": None if self.output_schema is None else self.output_schema.to_dict(),
            "resources": None if self.resources is None else self.resources.to_dict(),
            "samples": dict(self.samples),
            "samples_path": None if self.samples_path is None else str(self.samples_path),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelVersion:
        """Build from :meth:`to_dict` output."""
        resources = data.get("resources")
        return cls(
            name=data["name"],
            version=int(data["version"]),
            framework=data["framework"],
            framework_version=data.get("framework_version"),
            description=data.get("description", ""),
            tags=data.get("tags") or {},
            properties=data.get("properties") or {},
            content_hash=data["content_hash"],
            created=datetime.fromisoformat(data["created"]),
            files=tuple(data["files"]),
            path=Path(data["path"]),
            input_schema=_schema_from_dict(data.get("input_schema")),
            output_schema=_schema_from_dict(data.get("output_schema")),
            resources=None if resources is None else Resources.from_dict(resources),
            samples=data.get("samples") or {},
            samples_path=None if data.get("samples_path") is None else Path(data["samples_path"]),
        )


def _check_str_mapping(value: object, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            f"{what} must be a dict of str to str, got {type(value).__qualname__} {value!r}",
            hint=f'e.g. {what}={{"team": "risk"}}',
        )
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgumentError(
                f"{what} keys must be non-empty strings, got {key!r}",
                hint=f'e.g. {what}={{"team": "risk"}}',
            )
        if not isinstance(item, str):
            raise InvalidArgumentError(
                f"{what}[{key!r}] must be a string, got {type(item).__qualname__} {item!r}",
                hint=f"convert it: {what}={{{key!r}: str(value)}}",
            )
        for text in (key, item):
            if not _is_unicode(text):
                raise InvalidArgumentError(
                    f"{what} {key!r}: {text!r} is not valid Unicode text (it holds "
                    "undecodable bytes, e.g. from a file name or a command-line argument)",
                    hint="pass text that encodes as UTF-8; decode bytes with "
                    "errors='replace' first",
                )
    return dict(value)


def _is_unicode(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (no lone surrogates from undecodable bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_FilterArg = Mapping[str, str] | Iterable[str | Sequence[str]] | None


def _normalize_filter(value: _FilterArg, what: str) -> builtins.list[tuple[str, str | None]]:
    """``{"k": "v"}`` or ``["k", ["k"], ["k", "v"]]`` → ``[(key, value or None)]``."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return list(_check_str_mapping(value, what).items())
    if isinstance(value, str):
        return [(value, None)]
    pairs: builtins.list[tuple[str, str | None]] = []
    for item in value:
        if isinstance(item, str):
            pairs.append((item, None))
            continue
        parts = list(item) if isinstance(item, list | tuple) else None
        if parts is None or len(parts) not in (1, 2) or not all(isinstance(p, str) for p in parts):
            raise InvalidArgumentError(
                f"bad {what} filter item {item!r}",
                hint=f'use a dict {{"key": "value"}}, or a list of "key", ["key"] or '
                f'["key", "value"] items, e.g. {what}=[["stage", "prod"]]',
            )
        pairs.append((parts[0], parts[1] if len(parts) == 2 else None))
    return pairs


def _check_framework(framework: object) -> str | None:
    if framework is None:
        return None
    if not isinstance(framework, str) or not check_framework_name(framework):
        raise InvalidArgumentError(
            f"invalid framework name {framework!r}",
            hint="use e.g. 'sklearn', 'onnx', 'torch', 'python' or 'custom'",
        )
    return framework


def check_framework_name(name: str) -> bool:
    """Whether ``name`` can be recorded as a framework (letters, digits, ``_.-``)."""
    return bool(name) and len(name) <= 64 and all(c.isalnum() or c in "_.-" for c in name)


def _source_path(obj: object) -> Path | None:
    """The file/folder to register, or ``None`` for an in-memory object."""
    if isinstance(obj, os.PathLike):
        path = Path(obj).expanduser()
    elif isinstance(obj, str):
        path = Path(obj).expanduser()
        if not obj or not path.exists():
            raise InvalidArgumentError(
                f"{obj!r} is not an existing file or folder (relative to {Path.cwd()})",
                hint="fix the path to register files; to register a string as a Python "
                "object, wrap it (e.g. register({'text': value}, ...)) — strings are "
                "never pickled silently",
            )
    else:
        return None
    if not path.exists():
        raise InvalidArgumentError(
            f"no such file or folder: {path}", hint="check the path (and the current folder)"
        )
    if not (path.is_file() or path.is_dir()):
        raise InvalidArgumentError(
            f"{path} is neither a regular file nor a folder", hint="register files or folders"
        )
    return path


def _walk_files(root: Path) -> builtins.list[str]:
    """Relative POSIX paths of the regular files under ``root`` (an artifact folder,
    which holds no links: registration copies their content)."""
    found: builtins.list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for filename in sorted(filenames):
            full = base / filename
            if full.is_file():
                found.append(full.relative_to(root).as_posix())
    return found


def _source_files(root: Path) -> builtins.list[tuple[str, Path]]:
    """``(relative path, file to copy)`` for every file of a folder being registered.

    Symbolic links are followed deliberately — the artifact holds a copy of what they
    point at, so the model does not change when the link does — but only links that
    stay inside ``root``: a link to a folder inside is walked like a folder (never
    silently dropped), a link leading outside (``../secrets``, ``~/.ssh/id_rsa``) is
    refused, so registering a folder never ships files from elsewhere. Broken links
    and link loops are refused too.
    """
    real_root = root.resolve()
    found: builtins.list[tuple[str, Path]] = []
    visiting: set[Path] = set()

    def inside(link: Path) -> Path:
        target = link.resolve()
        if target != real_root and not target.is_relative_to(real_root):
            raise InvalidArgumentError(
                f"{link} links to {target}, outside the folder {root} being registered",
                hint="copy that file into the folder (or register its folder instead): "
                "links leading outside a registered folder are refused",
            )
        if not target.exists():
            raise InvalidArgumentError(
                f"{link} is a broken link", hint="remove it or point it at a file"
            )
        return target

    def walk(folder: Path, rel: str) -> None:
        real = folder.resolve()
        if real in visiting:
            raise InvalidArgumentError(
                f"{folder} links back to a folder that contains it",
                hint="remove the link loop from the folder",
            )
        visiting.add(real)
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            path = f"{rel}{entry.name}"
            target = inside(entry) if entry.is_symlink() else entry
            if target.is_dir():
                walk(entry, path + "/")
            elif target.is_file():
                found.append((path, target))
        visiting.discard(real)

    walk(root, "")
    return found


def _copy_source(source: Path, dest: Path) -> dict[str, bytes]:
    if source.is_file():
        return {source.name: _copy_keeping_mode(source, dest / source.name)}
    files = _source_files(source)
    if not files:
        raise InvalidArgumentError(
            f"folder {source} holds no files", hint="register a folder with the model's files"
        )
    digests: dict[str, bytes] = {}
    for rel, original in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        digests[rel] = _copy_keeping_mode(original, target)
    return digests


def _copy_keeping_mode(source: Path, target: Path) -> bytes:
    """Copy and hash ``source``; the copy keeps its permission bits without the write
    bits (a 0600 file stays private: 0400), so registering never widens access."""
    digest = copy_and_hash(source, target)
    mode = stat.S_IMODE(source.stat().st_mode) & ~0o222 | 0o400
    os.chmod(target, mode)
    return digest


def _make_read_only(root: Path, files: Iterable[str]) -> None:
    """Drop the write bits of the files nbdeploy wrote (they stay readable by their
    owner only where the process's umask said so; copied files keep their mode)."""
    for rel in files:
        path = root / rel
        os.chmod(path, stat.S_IMODE(path.stat().st_mode) & ~0o222)


def _fsync_dir(path: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - directories cannot be fsync-ed there
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _infer(sample: Any, what: str) -> Schema:
    from .schema import infer_schema

    schema = infer_schema(sample)
    try:
        json.dumps(schema.to_dict())
    except (TypeError, ValueError) as exc:  # pragma: no cover - a schema module bug
        raise InvalidArgumentError(
            f"the schema inferred from {what} cannot be stored as JSON: {exc}"
        ) from exc
    return schema


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value.to_dict())


def _row_values(mv: ModelVersion) -> tuple[Any, ...]:
    """The ``models`` columns after name and version; :meth:`Registry._from_row` reverses it."""
    return (
        mv.framework,
        mv.framework_version,
        mv.description,
        json.dumps(dict(mv.tags)),
        json.dumps(dict(mv.properties)),
        mv.content_hash,
        mv.created.isoformat(),
        json.dumps(list(mv.files)),
        _json_or_none(mv.input_schema),
        _json_or_none(mv.output_schema),
        _json_or_none(mv.resources),
        json.dumps(dict(mv.samples)),
    )


class Registry:
    """The models of a workspace. Get one with ``Workspace(path).registry``.

    Examples
    --------
    >>> import tempfile
    >>> from nbdeploy.core.workspace import Workspace
    >>> registry = Workspace(tempfile.mkdtemp()).registry
    >>> registry.register([1, 2, 3], "numbers").version
    1
    >>> registry.register([4, 5], "numbers", tags={"stage": "prod"}).version
    2
    >>> registry.get("numbers").load()
    [4, 5]
    >>> [str(mv.ref) for mv in registry.list(tags={"stage": "prod"})]
    ['numbers:2']
    """

    def __init__(self, workspace: Store) -> None:
        self.workspace = workspace

    def __repr__(self) -> str:
        return f"Registry({self.workspace!r})"

    def register(
        self,
        obj_or_path: Any,
        name: str,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        properties: Mapping[str, str] | None = None,
        sample_input: Any = None,
        sample_output: Any = None,
        resources: Resources | Mapping[str, Any] | None = None,
        framework: str | None = None,
        framework_version: str | None = None,
    ) -> ModelVersion:
        """Register an object, file or folder as the next version of model ``name``.

        Parameters
        ----------
        obj_or_path:
            An in-memory model (scikit-learn, ONNX ``ModelProto``, torch module, or
            any picklable object, functions and classes from ``__main__`` included),
            or a ``pathlib.Path`` / existing path string naming a file or a folder
            (all its files form one model, their relative layout kept).
        name:
            The model name (letters, digits, ``_.-``; at most 128 characters).
        description, tags, properties:
            Free text and str → str dicts; tags are filterable with :meth:`list`.
        sample_input, sample_output:
            Example data: stored (pickled) with the model, and their schemas
            inferred so the service can validate requests and document itself.
        resources:
            CPU cores / memory (GB) the model needs: :class:`Resources` or a dict.
        framework:
            Override the detected framework (``"sklearn"``, ``"onnx"``, ``"torch"``,
            ``"python"``, ``"custom"`` or any name to record).
        framework_version:
            Record this framework version instead of the installed one.

        Returns
        -------
        ModelVersion
            The committed version.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> ws = Workspace(tempfile.mkdtemp())
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "weights.bin").write_bytes(b"...")
        >>> mv = ws.registry.register(folder / "weights.bin", "w")
        >>> (mv.framework, mv.files)
        ('custom', ('weights.bin',))
        """
        check_name(name)
        _check_description(description)
        tag_values = _check_str_mapping(tags, "tags")
        property_values = _check_str_mapping(properties, "properties")
        resource_value = _coerce_resources(resources)
        framework = _check_framework(framework)
        source = _source_path(obj_or_path)
        if source is None and framework == "custom":
            raise InvalidArgumentError(
                "framework 'custom' is for files and folders, not in-memory objects",
                hint="leave framework=None to detect it, or save the object to files first",
            )
        samples = {"input": sample_input, "output": sample_output}
        schemas = {
            kind: _infer(value, f"sample_{kind}")
            for kind, value in samples.items()
            if value is not None
        }

        sweep_staging(self.workspace.staging_dir)
        with StagingFolder(self.workspace.staging_dir) as staging:
            model_dir = staging.path / "model"
            model_dir.mkdir()
            staged = _stage_model(obj_or_path, source, framework, model_dir)
            version = staged.version if framework_version is None else str(framework_version)
            sample_dir = staging.path / "samples"
            sample_hashes = _stage_samples(samples, sample_dir)
            draft = ModelVersion(
                name=name,
                version=0,  # allocated by _commit
                framework=staged.framework,
                framework_version=version,
                description=description,
                tags=tag_values,
                properties=property_values,
                content_hash=staged.content_hash,
                created=datetime.now(timezone.utc),
                files=staged.files,
                path=model_dir,
                input_schema=schemas.get("input"),
                output_schema=schemas.get("output"),
                resources=resource_value,
                samples=sample_hashes,
                samples_path=sample_dir if sample_hashes else None,
            )
            number = self._commit(draft)
        return replace(
            draft,
            version=number,
            path=self._artifact_dir(name, number),
            samples_path=self._samples_dir(name, number) if sample_hashes else None,
        )

    def _commit(self, staged: ModelVersion) -> int:
        """Allocate the version, move the staged files in, insert the row: one transaction.

        ``staged`` is the new version with its files still in the staging folder
        (``path``, ``samples_path``); its ``version`` is ignored.
        """
        name = staged.name
        moved: builtins.list[Path] = []
        with self.workspace.write() as conn:
            try:
                row = conn.execute(
                    "SELECT last_version FROM model_names WHERE name = ?", (name,)
                ).fetchone()
                number = 1 if row is None else row[0] + 1
                conn.execute(
                    "INSERT INTO model_names (name, last_version) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET last_version = excluded.last_version",
                    (name, number),
                )
                self._move_into_place(name, number, staged.path, staged.samples_path, moved)
                conn.execute(
                    "INSERT INTO models (name, version, framework, framework_version, "
                    "description, tags, properties, content_hash, created, files, "
                    "input_schema, output_schema, resources, samples) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (name, number, *_row_values(staged)),
                )
            except BaseException:
                # Still under the write lock: nobody else can be using these folders.
                # (Should COMMIT itself fail, they stay behind as orphans: see gc().)
                for dest in moved:
                    remove_tree(dest)
                raise
        return int(number)

    def _move_into_place(
        self,
        name: str,
        number: int,
        model_dir: Path,
        sample_dir: Path | None,
        moved: builtins.list[Path],
    ) -> None:
        """Move the staged folders to version ``number``'s places; append each to ``moved``.

        Runs under the write lock, before the row is inserted.
        """
        # No row can point at these folders (versions are never reused): anything
        # there is an orphan of a process killed before its commit.
        remove_tree(self._artifact_dir(name, number))
        remove_tree(self._samples_dir(name, number))
        pairs = [(model_dir, self._artifact_dir(name, number))]
        if sample_dir is not None:
            pairs.append((sample_dir, self._samples_dir(name, number)))
        for src, dest in pairs:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
            moved.append(dest)
            _fsync_dir(dest.parent)

    def _artifact_dir(self, name: str, version: int) -> Path:
        return self.workspace.artifacts_dir / name / str(version)

    def _samples_dir(self, name: str, version: int) -> Path:
        return self.workspace.samples_dir / name / str(version)

    def _from_row(self, row: sqlite3.Row) -> ModelVersion:
        name, version = row["name"], row["version"]
        samples = json.loads(row["samples"])
        return ModelVersion(
            name=name,
            version=version,
            framework=row["framework"],
            framework_version=row["framework_version"],
            description=row["description"],
            tags=json.loads(row["tags"]),
            properties=json.loads(row["properties"]),
            content_hash=row["content_hash"],
            created=datetime.fromisoformat(row["created"]),
            files=tuple(json.loads(row["files"])),
            path=self._artifact_dir(name, version),
            input_schema=_schema_from_json(row["input_schema"]),
            output_schema=_schema_from_json(row["output_schema"]),
            resources=None
            if row["resources"] is None
            else Resources.from_dict(json.loads(row["resources"])),
            samples=samples,
            samples_path=self._samples_dir(name, version) if samples else None,
        )

    def _fetch(self, conn: sqlite3.Connection, ref: ModelRef) -> sqlite3.Row:
        if ref.version is None:
            row = conn.execute(
                "SELECT * FROM models WHERE name = ? ORDER BY version DESC LIMIT 1", (ref.name,)
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT * FROM models WHERE name = ? AND version = ?", (ref.name, ref.version)
            ).fetchone()
        if row is None:
            raise self._not_found(conn, ref)
        return row  # type: ignore[no-any-return]

    @staticmethod
    def _not_found(conn: sqlite3.Connection, ref: ModelRef) -> ModelNotFoundError:
        versions = [
            r[0]
            for r in conn.execute(
                "SELECT version FROM models WHERE name = ? ORDER BY version", (ref.name,)
            )
        ]
        if versions:
            listed = ", ".join(str(v) for v in versions)
            return ModelNotFoundError(
                f"model {ref.name!r} has no version {ref.version}",
                hint=f"registered versions: {listed}; write '{ref.name}' for the latest",
            )
        names = [r[0] for r in conn.execute("SELECT DISTINCT name FROM models ORDER BY name")]
        if names:
            shown = ", ".join(names[:20]) + (" …" if len(names) > 20 else "")
            hint = f"registered models: {shown}"
        else:
            hint = "no models are registered yet; register one with register(obj, name)"
        return ModelNotFoundError(f"no model named {ref.name!r} in this workspace", hint=hint)

    def get(self, ref: str | ModelRef) -> ModelVersion:
        """A model version: ``"name"`` (the latest), ``"name:3"`` or a :class:`ModelRef`.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> reg = Workspace(tempfile.mkdtemp()).registry
        >>> _ = reg.register(1, "m"); _ = reg.register(2, "m")
        >>> reg.get("m").version, reg.get("m:1").version
        (2, 1)
        """
        parsed = ModelRef.parse(ref)
        with self.workspace.read() as conn:
            return self._from_row(self._fetch(conn, parsed))

    def verify(self, model: ModelVersion | str | ModelRef) -> None:
        """Raise :class:`IntegrityError` unless the model's files match their hash.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> reg = Workspace(tempfile.mkdtemp()).registry
        >>> reg.verify(reg.register(1, "m"))
        """
        mv = model if isinstance(model, ModelVersion) else self.get(model)
        mv.verify()

    def list(
        self,
        name: str | None = None,
        tags: _FilterArg = None,
        properties: _FilterArg = None,
        latest_only: bool = False,
    ) -> builtins.list[ModelVersion]:
        """Model versions, ordered by name then version, filtered.

        Parameters
        ----------
        name:
            Only this model.
        tags, properties:
            A dict (every key must have that value), or a list whose items are a key
            (``"k"`` or ``["k"]``: must be present) or a ``["k", "v"]`` pair (must
            match) — the shape of Azure ML's ``Model.list(tags=[["k", "v"]])``.
        latest_only:
            For each name, keep only the newest version that passes the filters.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> reg = Workspace(tempfile.mkdtemp()).registry
        >>> _ = reg.register(1, "a", tags={"stage": "dev"})
        >>> _ = reg.register(2, "a", tags={"stage": "prod"})
        >>> [str(m.ref) for m in reg.list(tags=[["stage", "prod"]])]
        ['a:2']
        >>> [str(m.ref) for m in reg.list(tags=["stage"], latest_only=True)]
        ['a:2']
        """
        clauses: builtins.list[str] = []
        params: builtins.list[Any] = []
        if name is not None:
            clauses.append("name = ?")
            params.append(name)
        for column, value, what in (
            ("tags", tags, "tags"),
            ("properties", properties, "properties"),
        ):
            for key, wanted in _normalize_filter(value, what):
                if wanted is None:
                    clauses.append(
                        f"EXISTS (SELECT 1 FROM json_each(models.{column}) WHERE key = ?)"
                    )
                    params.append(key)
                else:
                    clauses.append(
                        f"EXISTS (SELECT 1 FROM json_each(models.{column}) "
                        "WHERE key = ? AND value = ?)"
                    )
                    params.extend([key, wanted])
        sql = "SELECT * FROM models"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY name, version"
        with self.workspace.read() as conn:
            rows = conn.execute(sql, params).fetchall()
        models = [self._from_row(row) for row in rows]
        if latest_only:
            newest: dict[str, ModelVersion] = {}
            for mv in models:
                newest[mv.name] = mv  # ordered by version, so the last one wins
            models = list(newest.values())
        return models

    def _update_json(
        self,
        ref: str | ModelRef,
        column: str,
        change: Callable[[dict[str, str]], dict[str, str]],
    ) -> ModelVersion:
        parsed = ModelRef.parse(ref)
        with self.workspace.write() as conn:
            row = self._fetch(conn, parsed)
            updated = change(json.loads(row[column]))
            conn.execute(
                f"UPDATE models SET {column} = ? WHERE name = ? AND version = ?",
                (json.dumps(updated), row["name"], row["version"]),
            )
            row = self._fetch(conn, ModelRef(row["name"], row["version"]))
            return self._from_row(row)

    def add_tags(self, ref: str | ModelRef, tags: Mapping[str, str]) -> ModelVersion:
        """Add (or overwrite) tags of a version (``"name"`` = latest); returns it.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> reg = Workspace(tempfile.mkdtemp()).registry
        >>> _ = reg.register(1, "m", tags={"a": "1"})
        >>> dict(reg.add_tags("m:1", {"b": "2"}).tags)
        {'a': '1', 'b': '2'}
        """
        new = _check_str_mapping(tags, "tags")
        return self._update_json(ref, "tags", lambda old: {**old, **new})

    def remove_tags(self, ref: str | ModelRef, keys: Iterable[str]) -> ModelVersion:
        """Remove tags by key (missing keys are ignored); returns the updated version.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> reg = Workspace(tempfile.mkdtemp()).registry
        >>> _ = reg.register(1, "m", tags={"a": "1", "b": "2"})
        >>> dict(reg.remove_tags("m", ["a"]).tags)
        {'b': '2'}
        """
        drop = _check_keys(keys)
        return self._update_json(
            ref, "tags", lambda old: {k: v for k, v in old.items() if k not in drop}
        )

    def add_properties(self, ref: str | ModelRef, properties: Mapping[str, str]) -> ModelVersion:
        """Add (or overwrite) properties of a version; returns the updated version.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> reg = Workspace(tempfile.mkdtemp()).registry
        >>> _ = reg.register(1, "m")
        >>> dict(reg.add_properties("m", {"auc": "0.91"}).properties)
        {'auc': '0.91'}
        """
        new = _check_str_mapping(properties, "properties")
        return self._update_json(ref, "properties", lambda old: {**old, **new})

    def download(
        self,
        ref: str | ModelRef | ModelVersion,
        target_dir: str | os.PathLike[str],
        exist_ok: bool = False,
    ) -> Path:
        """Copy a version's files into ``target_dir`` (layout kept); return the model's path.

        The returned path is the model's file when it is a single file (as Azure ML's
        ``Model.download`` does), else ``target_dir``.

        The copy is hashed as it is written and compared with the registered content
        hash; on a mismatch the copied files are removed and :class:`IntegrityError`
        is raised. Existing files are an error unless ``exist_ok=True``.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> reg = Workspace(tempfile.mkdtemp()).registry
        >>> _ = reg.register([1], "m")
        >>> reg.download("m", Path(tempfile.mkdtemp()) / "out").name
        'model.pkl'
        """
        mv = ref if isinstance(ref, ModelVersion) else self.get(ref)
        dest = Path(target_dir).expanduser()
        clashes = [rel for rel in mv.files if (dest / rel).exists()]
        if clashes and not exist_ok:
            raise InvalidArgumentError(
                f"cannot download model {mv.ref} into {dest}: {clashes[0]!r} already exists",
                hint="pass exist_ok=True to overwrite, or choose an empty folder",
            )
        dest.mkdir(parents=True, exist_ok=True)
        digests: dict[str, bytes] = {}
        written: builtins.list[Path] = []
        try:
            for rel in mv.files:
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.unlink(missing_ok=True)
                written.append(target)
                digests[rel] = copy_and_hash(mv.path / rel, target, fsync=False)
        except FileNotFoundError as exc:
            for path in written:
                path.unlink(missing_ok=True)
            raise IntegrityError(
                f"model {mv.ref} is missing file {exc.filename}",
                hint="the artifact folder was changed; register the model again",
            ) from None
        if combine_digests(digests) != mv.content_hash:
            for path in written:
                path.unlink(missing_ok=True)
            raise IntegrityError(
                f"files of model {mv.ref} at {mv.path} do not match the registered hash",
                hint="the files were changed after registration; register the model again",
            )
        for rel in mv.files:
            # The registered mode, writable again by the owner (never wider).
            os.chmod(dest / rel, stat.S_IMODE((mv.path / rel).stat().st_mode) | 0o200)
        return dest / mv.files[0] if len(mv.files) == 1 else dest

    def delete(
        self,
        ref: str | ModelRef | ModelVersion,
        force: bool = False,
        *,
        all_versions: bool = False,
    ) -> builtins.list[ModelVersion]:
        """Delete one version (``"name:3"``), or every version with ``all_versions=True``.

        A reference without a version is refused unless ``all_versions=True`` — so
        ``delete("iris")`` never removes more than the caller meant. A version used
        by a recorded service is refused with :class:`ModelInUseError` unless
        ``force=True``. Files and samples are removed; version numbers are not
        reused. Returns the deleted versions.

        Examples
        --------
        >>> import tempfile
        >>> from nbdeploy.core.workspace import Workspace
        >>> reg = Workspace(tempfile.mkdtemp()).registry
        >>> _ = reg.register(1, "m"); _ = reg.register(2, "m")
        >>> [mv.version for mv in reg.delete("m:1")]
        [1]
        >>> [mv.version for mv in reg.delete("m", all_versions=True)]
        [2]
        """
        parsed = ref.ref if isinstance(ref, ModelVersion) else ModelRef.parse(ref)
        if parsed.version is None and not all_versions:
            raise InvalidArgumentError(
                f"delete({str(parsed)!r}) names no version",
                hint=f"write '{parsed.name}:<version>' to delete one version, or pass "
                "all_versions=True to delete them all",
            )
        if parsed.version is not None and all_versions:
            raise InvalidArgumentError(
                f"delete({str(parsed)!r}, all_versions=True) names one version",
                hint=f"write '{parsed.name}' with all_versions=True, or drop all_versions",
            )
        with self.workspace.write() as conn:
            if parsed.version is None:
                rows = conn.execute(
                    "SELECT * FROM models WHERE name = ? ORDER BY version", (parsed.name,)
                ).fetchall()
                if not rows:
                    raise self._not_found(conn, parsed)
            else:
                rows = [self._fetch(conn, parsed)]
            doomed = [self._from_row(row) for row in rows]
            used = usage(conn)
            blocked = {
                str(mv.ref): used[(mv.name, mv.version)]
                for mv in doomed
                if (mv.name, mv.version) in used
            }
            if blocked and not force:
                described = "; ".join(
                    f"{model} by {', '.join(services)}" for model, services in blocked.items()
                )
                raise ModelInUseError(
                    f"model version(s) in use by services: {described}",
                    hint="delete or update those services first, or pass force=True",
                )
            conn.executemany(
                "DELETE FROM models WHERE name = ? AND version = ?",
                [(mv.name, mv.version) for mv in doomed],
            )
        # After the commit: a crash here leaves orphan folders, which gc() removes.
        for mv in doomed:
            remove_tree(mv.path)
            remove_tree(self._samples_dir(mv.name, mv.version))
            for parent in (mv.path.parent, self._samples_dir(mv.name, mv.version).parent):
                with contextlib.suppress(OSError):  # not empty (other versions), or gone
                    parent.rmdir()
        return doomed


def _check_keys(keys: Iterable[str]) -> set[str]:
    if isinstance(keys, str):
        return {keys}
    result = set()
    for key in keys:
        if not isinstance(key, str):
            raise InvalidArgumentError(
                f"tag keys must be strings, got {key!r}", hint='e.g. remove_tags("m:1", ["stage"])'
            )
        result.add(key)
    return result


def _schema_from_json(text: str | None) -> Schema | None:
    return None if text is None else _schema_from_dict(json.loads(text))


def _coerce_resources(value: Resources | Mapping[str, Any] | None) -> Resources | None:
    if value is None or isinstance(value, Resources):
        return value
    if isinstance(value, Mapping):
        return Resources.from_dict(value)
    raise InvalidArgumentError(
        f"resources must be Resources(...) or a dict, got {value!r}",
        hint="e.g. resources={'cpu': 0.5, 'memory_gb': 1.0}",
    )


def _object_handler(obj: object, framework: str | None) -> frameworks.FrameworkHandler:
    if framework is not None:
        handler = frameworks.get_handler(framework)
        if handler is not None and handler.name != "custom":
            return handler
    return frameworks.detect_handler(obj)


def _check_description(description: Any) -> None:
    if not isinstance(description, str) or not _is_unicode(description):
        raise InvalidArgumentError(
            f"description must be a string of valid Unicode text, got "
            f"{type(description).__qualname__} {description!r:.80}"
        )


@dataclass(frozen=True)
class _Staged:
    """The model files written to a staging folder, and what was detected about them."""

    files: tuple[str, ...]
    content_hash: str
    framework: str
    version: str | None


def _stage_model(
    obj_or_path: Any, source: Path | None, framework: str | None, model_dir: Path
) -> _Staged:
    """Save the object, or copy the file or folder, into ``model_dir`` (made read-only)."""
    if source is None:
        handler = _object_handler(obj_or_path, framework)
        digests = handler.save_hashed(obj_or_path, model_dir)
        recorded = framework or handler.name
        version = handler.version() if recorded == handler.name else None
    else:
        digests = _copy_source(source, model_dir)
        recorded = framework or frameworks.detect_files(sorted(digests))
        known = frameworks.get_handler(recorded)
        version = known.version() if known is not None else None
    if version is None and framework is not None:
        version = frameworks.dist_version(framework)
    files = tuple(sorted(digests))
    _make_read_only(model_dir, files)
    return _Staged(files, combine_digests(digests), recorded, version)


def _stage_samples(samples: Mapping[str, Any], sample_dir: Path) -> dict[str, str]:
    """Pickle the given samples into ``sample_dir`` (read-only); return their hashes."""
    sample_hashes: dict[str, str] = {}
    for kind, value in samples.items():
        if value is None:
            continue
        sample_dir.mkdir(exist_ok=True)
        filename = _SAMPLE_FILES[kind]
        digest = frameworks.dump_pickle(value, sample_dir / filename, f"sample_{kind}")
        sample_hashes[kind] = "sha256:" + digest.hex()
        _make_read_only(sample_dir, [filename])
    return sample_hashes
