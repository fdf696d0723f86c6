"""Framework handlers: how a model object is detected, saved and loaded again.

A table of handlers, tried in order by :func:`detect_handler`. Each handler knows one
kind of model: its ``name`` (recorded as the model's framework), how to ``detect`` an
in-memory object, the installed ``version()`` of its library, how to ``save`` an
object into a folder (returning the file names it wrote) and how to ``load`` it from
the registered files. Detection never imports a framework: an object can only be a
scikit-learn estimator if ``sklearn`` is already in ``sys.modules``.

Built in, in detection order:

========== =============== ======================================================
name       saved as        detects
========== =============== ======================================================
torch      ``model.pt``    ``torch.nn.Module`` (``torch.save``, cloudpickle inside)
onnx       ``model.onnx``  ``onnx.ModelProto``
xgboost    ``model.pkl``   objects of the ``xgboost`` package (cloudpickle)
lightgbm   ``model.pkl``   objects of the ``lightgbm`` package (cloudpickle)
sklearn    ``model.pkl``   ``sklearn.base.BaseEstimator`` incl. pipelines (cloudpickle)
python     ``model.pkl``   anything else cloudpickle can pickle — functions and
                           classes defined in ``__main__`` too (pickled by value, so
                           another process can load them)
custom     as registered   never detected; files of unknown kind
========== =============== ======================================================

Files and folders are registered as they are; :func:`detect_files` names their
framework from the file names (``.onnx`` → onnx, ``.pt``/``.pth`` → torch,
``.pkl``/``.pickle``/``.joblib`` → python) when exactly one file looks like a model,
else ``custom``.

Loading (:meth:`FrameworkHandler.load`): when exactly one registered file matches
the handler's ``file_patterns`` (or the model is a single file), the handler loads it
and returns the object. Otherwise — a folder of several files with no single model
file, or a ``custom`` model — ``load`` returns the :class:`~pathlib.Path` of the
model folder (``custom`` with a single file: the file's path), and the scoring script
reads what it needs from there.

Security: loading a pickle runs code. The registry verifies the content hash before it
calls any handler's ``load``; never call ``load`` on files you did not register.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import importlib.util
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from nbdeploy.exceptions import InvalidArgumentError

from .hashing import HashingWriter

__all__ = [
    "HANDLERS",
    "CustomHandler",
    "FrameworkHandler",
    "ModuleHandler",
    "OnnxHandler",
    "PythonHandler",
    "SklearnHandler",
    "TorchHandler",
    "detect_files",
    "detect_handler",
    "dist_version",
    "dump_pickle",
    "get_handler",
    "handler_for",
    "load_pickle",
    "register_handler",
]


def dist_version(dist: str) -> str | None:
    """The installed version of distribution ``dist`` (without importing it), or ``None``.

    Examples
    --------
    >>> dist_version("no-such-distribution-xyz") is None
    True
    """
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _module_version(module: str, dist: str) -> str | None:
    """The version of an imported module, else of its installed distribution."""
    mod = sys.modules.get(module)
    version = getattr(mod, "__version__", None)
    if isinstance(version, str):
        return version
    return dist_version(dist)


def _root_module(obj: object) -> str:
    return (type(obj).__module__ or "").partition(".")[0]


class FrameworkHandler:
    """Base class of framework handlers (the protocol, with shared defaults).

    Subclasses set ``name`` and ``file_patterns`` and override :meth:`detect`,
    :meth:`version`, :meth:`save` and :meth:`load_file`.

    Examples
    --------
    >>> import tempfile
    >>> handler = get_handler("python")
    >>> folder = Path(tempfile.mkdtemp())
    >>> handler.save({"w": [1, 2]}, folder)
    ['model.pkl']
    >>> handler.load(folder, ["model.pkl"])
    {'w': [1, 2]}
    """

    name: str = ""
    #: ``fnmatch`` patterns of the file names this framework saves / can load.
    file_patterns: tuple[str, ...] = ()
    #: Whether :func:`detect_files` may name this framework from file names alone
    #: (a ``.pkl`` file says "pickle", not "scikit-learn").
    claims_files: bool = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def detect(self, obj: object) -> bool:
        """Whether ``obj`` is a model of this framework (never imports the framework)."""
        return False

    def version(self) -> str | None:
        """The installed version of the framework, ``None`` when unknown."""
        return None

    def save(self, obj: object, folder: Path) -> list[str]:
        """Write ``obj`` into the empty ``folder``; return the relative file names."""
        return list(self.save_hashed(obj, folder))

    def save_hashed(self, obj: object, folder: Path) -> dict[str, bytes]:
        """Like :meth:`save`, returning each file's raw SHA-256 digest as well.

        Built-in handlers hash while they write, so a 50 MB model is not read back.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot save objects")

    def matches(self, filename: str) -> bool:
        """Whether a file name (not path) matches :attr:`file_patterns`."""
        lowered = filename.lower()
        return any(fnmatch.fnmatch(lowered, pattern) for pattern in self.file_patterns)

    def primary_file(self, files: Sequence[str]) -> str | None:
        """The one file to load: the only match, else the only file, else ``None``."""
        candidates = [f for f in files if self.matches(Path(f).name)]
        if len(candidates) == 1:
            return candidates[0]
        if len(files) == 1:
            return files[0]
        return None

    def load(self, folder: Path, files: Sequence[str]) -> object:
        """Load the model in ``folder`` (files already verified) or return the folder."""
        primary = self.primary_file(files)
        if primary is None:
            return folder
        return self.load_file(folder / primary)

    def load_file(self, path: Path) -> object:
        """Load one model file."""
        raise NotImplementedError(f"{type(self).__name__} cannot load files")


def dump_pickle(obj: object, path: Path, what: str = "the model") -> bytes:
    """Pickle ``obj`` with cloudpickle into the new file ``path``; return its digest.

    The pickle is hashed as it is written and fsync-ed (see
    :class:`~nbdeploy.core.hashing.HashingWriter`).

    Examples
    --------
    >>> import tempfile
    >>> len(dump_pickle([1, 2], Path(tempfile.mkdtemp()) / "x.pkl"))
    32
    """
    import pickle

    import cloudpickle

    try:
        with HashingWriter(path) as out:
            cloudpickle.dump(obj, out, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise InvalidArgumentError(
            f"cannot pickle {what} (a {type(obj).__qualname__} object): {exc}",
            hint="register an object cloudpickle can serialize (no open files, locks, "
            "sockets or generators), or save it to a file yourself and register the file",
        ) from exc
    return out.digest


def load_pickle(path: Path) -> object:
    """Load a pickle (cloudpickle; ``.joblib`` files with joblib). Runs code: trust it.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.pkl"
    >>> _ = dump_pickle({"a": 1}, p)
    >>> load_pickle(p)
    {'a': 1}
    """
    if path.suffix.lower() == ".joblib":
        import joblib

        return joblib.load(path)
    import pickle

    import cloudpickle

    try:
        with path.open("rb") as fh:
            return cloudpickle.load(fh)
    except pickle.UnpicklingError:
        # joblib.dump(model, "model.pkl") - how Azure ML's samples save models - writes
        # arrays in joblib's own frames, which only joblib reads.
        if importlib.util.find_spec("joblib") is None:
            raise
        import joblib

        return joblib.load(path)


class PythonHandler(FrameworkHandler):
    """Any picklable Python object, via cloudpickle, saved as ``model.pkl``."""

    name = "python"
    file_patterns = ("*.pkl", "*.pickle", "*.joblib", "*.cloudpickle")
    filename = "model.pkl"

    def detect(self, obj: object) -> bool:
        return True

    def version(self) -> str | None:
        return platform.python_version()

    def save_hashed(self, obj: object, folder: Path) -> dict[str, bytes]:
        return {self.filename: dump_pickle(obj, folder / self.filename)}

    def load_file(self, path: Path) -> object:
        return load_pickle(path)


class SklearnHandler(PythonHandler):
    """scikit-learn estimators and pipelines, pickled with cloudpickle."""

    name = "sklearn"
    claims_files = False

    def detect(self, obj: object) -> bool:
        sklearn_base = sys.modules.get("sklearn.base")
        base = getattr(sklearn_base, "BaseEstimator", None)
        return isinstance(base, type) and isinstance(obj, base)

    def version(self) -> str | None:
        return _module_version("sklearn", "scikit-learn")


class ModuleHandler(PythonHandler):
    """Objects of one package (xgboost, lightgbm ...) pickled like plain Python.

    The framework name and version are recorded so no-code scorers and environment
    capture know what the model needs.
    """

    claims_files = False

    def __init__(self, name: str, module: str | None = None, dist: str | None = None) -> None:
        self.name = name
        self.module = module or name
        self.dist = dist or name

    def detect(self, obj: object) -> bool:
        return self.module in sys.modules and _root_module(obj) == self.module

    def version(self) -> str | None:
        return _module_version(self.module, self.dist)


class OnnxHandler(FrameworkHandler):
    """ONNX ``ModelProto`` objects and ``.onnx`` files."""

    name = "onnx"
    file_patterns = ("*.onnx",)
    filename = "model.onnx"

    def detect(self, obj: object) -> bool:
        onnx = sys.modules.get("onnx")
        proto = getattr(onnx, "ModelProto", None)
        return isinstance(proto, type) and isinstance(obj, proto)

    def version(self) -> str | None:
        return _module_version("onnx", "onnx")

    def save_hashed(self, obj: object, folder: Path) -> dict[str, bytes]:
        serialize = getattr(obj, "SerializeToString", None)
        if serialize is None:
            raise InvalidArgumentError(
                f"framework 'onnx' needs an onnx.ModelProto, got {type(obj).__qualname__}",
                hint="pass framework=None to detect the framework, or convert the model "
                "to ONNX first (e.g. skl2onnx.to_onnx)",
            )
        with HashingWriter(folder / self.filename) as out:
            out.write(serialize())
        return {self.filename: out.digest}

    def load_file(self, path: Path) -> object:
        import onnx

        return onnx.load(str(path))


class TorchHandler(FrameworkHandler):
    """PyTorch ``nn.Module`` objects (``torch.save`` with cloudpickle) and ``.pt`` files.

    Only used when ``torch`` is already imported: detection never imports it.
    """

    name = "torch"
    file_patterns = ("*.pt", "*.pth")
    filename = "model.pt"

    def detect(self, obj: object) -> bool:
        torch = sys.modules.get("torch")
        module_type = getattr(getattr(torch, "nn", None), "Module", None)
        return isinstance(module_type, type) and isinstance(obj, module_type)

    def version(self) -> str | None:
        return _module_version("torch", "torch")

    def save_hashed(self, obj: object, folder: Path) -> dict[str, bytes]:
        import cloudpickle
        import torch

        with HashingWriter(folder / self.filename) as out:
            torch.save(obj, out, pickle_module=cloudpickle)
        return {self.filename: out.digest}

    def load_file(self, path: Path) -> object:
        import torch

        # The registry verified the content hash first; a full unpickle is intended.
        return torch.load(str(path), weights_only=False)


class CustomHandler(FrameworkHandler):
    """Files of a kind nbdeploy does not know: loading returns their path."""

    name = "custom"

    def load(self, folder: Path, files: Sequence[str]) -> object:
        if len(files) == 1:
            return folder / files[0]
        return folder


#: The handler table, in detection order (``python`` last: it detects anything).
HANDLERS: list[FrameworkHandler] = [
    TorchHandler(),
    OnnxHandler(),
    ModuleHandler("xgboost"),
    ModuleHandler("lightgbm"),
    SklearnHandler(),
    PythonHandler(),
]

_CUSTOM = CustomHandler()


def register_handler(handler: FrameworkHandler) -> None:
    """Add (or replace, by name) a handler; it is tried before the built-in ones.

    Examples
    --------
    >>> class Mine(PythonHandler):
    ...     name = "mine"
    ...     def detect(self, obj): return getattr(obj, "is_mine", False)
    >>> register_handler(Mine())
    >>> get_handler("mine").name
    'mine'
    >>> HANDLERS[:] = [h for h in HANDLERS if h.name != "mine"]
    """
    HANDLERS[:] = [h for h in HANDLERS if h.name != handler.name]
    HANDLERS.insert(0, handler)


def get_handler(name: str) -> FrameworkHandler | None:
    """The handler called ``name`` (``"custom"`` included), or ``None``.

    Examples
    --------
    >>> get_handler("sklearn").name
    'sklearn'
    >>> get_handler("tensorflow") is None
    True
    """
    if name == _CUSTOM.name:
        return _CUSTOM
    for handler in HANDLERS:
        if handler.name == name:
            return handler
    return None


def detect_handler(obj: object) -> FrameworkHandler:
    """The first handler in :data:`HANDLERS` that detects ``obj``.

    Examples
    --------
    >>> detect_handler(lambda x: x).name
    'python'
    """
    for handler in HANDLERS:
        if handler.detect(obj):
            return handler
    return get_handler("python") or PythonHandler()


def detect_files(files: Sequence[str]) -> str:
    """The framework of registered files, from their names (else ``"custom"``).

    A framework is named when exactly one file matches one handler's patterns.

    Examples
    --------
    >>> detect_files(["model.onnx", "labels.txt"])
    'onnx'
    >>> detect_files(["a.bin", "b.bin"])
    'custom'
    """
    found: list[tuple[str, str]] = []
    for rel in files:
        filename = Path(rel).name
        for handler in HANDLERS:
            if handler.claims_files and handler.file_patterns and handler.matches(filename):
                found.append((handler.name, rel))
                break
    if len(found) == 1:
        return found[0][0]
    return _CUSTOM.name


def handler_for(framework: str, files: Sequence[str]) -> FrameworkHandler:
    """The handler that loads a registered model of ``framework`` with ``files``.

    A framework name without a handler (say ``"tensorflow"``, given at registration)
    falls back to what the file names say.

    Examples
    --------
    >>> handler_for("tensorflow", ["saved_model.pb"]).name
    'custom'
    >>> handler_for("xgboost", ["model.pkl"]).name
    'xgboost'
    """
    handler = get_handler(framework)
    if handler is not None:
        return handler
    return get_handler(detect_files(files)) or _CUSTOM
