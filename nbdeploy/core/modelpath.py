"""Where a model's files are inside a running service: :func:`get_model_path`.

Scoring scripts call it (as ``nbdeploy.get_model_path()`` or Azure ML's
``Model.get_model_path()``) from ``init()``; it reads the bundle manifest the
service was built with, or falls back to the folder layout.
"""

from __future__ import annotations

import os
from pathlib import Path

from nbdeploy.core.bundle import BundleManifest
from nbdeploy.exceptions import InvalidArgumentError, ModelNotFoundError

__all__ = ["get_model_path"]


def _find_manifest(model_dir: Path, bundle_dir: Path | None) -> Path | None:
    """The bundle.json for ``model_dir``: ``bundle_dir``'s, else 1 to 3 levels up."""
    if bundle_dir is not None:
        candidate = bundle_dir / "bundle.json"
        return candidate if candidate.is_file() else None
    for parent in list(model_dir.parents)[:3]:
        candidate = parent / "bundle.json"
        if candidate.is_file():
            return candidate
    return None


def _pick_version(name: str, versions: list[int], version: int | None) -> int:
    if version is None:
        return max(versions)
    if version not in versions:
        have = ", ".join(str(v) for v in sorted(versions))
        raise ModelNotFoundError(
            f"model {name!r} has no version {version} in this service (it has {have})",
            hint="deploy that version, or call get_model_path(name) for the one deployed",
        )
    return version


def get_model_path(
    model_name: str | None = None,
    version: int | None = None,
    *,
    model_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Where a model's files are inside a running service.

    Like Azure ML's ``Model.get_model_path``: a model made of a single file gives the
    path of that file, any other model its folder. With one model in the service,
    ``model_name`` may be omitted; ``version=None`` means the only (or highest) version
    of that name the service holds.

    How it finds things. ``model_dir`` defaults to ``$NBDEPLOY_MODEL_DIR``, else
    ``$AZUREML_MODEL_DIR``. The bundle manifest (``bundle.json``, which lists the models
    and their files) is taken from ``$NBDEPLOY_BUNDLE_DIR`` when ``model_dir`` is not
    given and that variable is set, else from the first of the 1 to 3 folders above
    ``model_dir`` that has one (``models/<name>/<version>`` for one model, ``models``
    for several). Without a manifest the folder layout alone is used.

    Raises
    ------
    InvalidArgumentError
        No model folder is known (not inside a service, and no ``model_dir``), or
        several models and no ``model_name``.
    ModelNotFoundError
        No model of that name or version; the message lists what there is.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "m" / "1").mkdir(parents=True)
    >>> get_model_path("m", model_dir=root) == root / "m" / "1"
    True
    """
    # The one place the core reads os.environ: this function runs inside the scoring
    # process, where the server exports these variables for the user's script.
    bundle_dir: Path | None = None
    if model_dir is None:
        env_dir = os.environ.get("NBDEPLOY_MODEL_DIR") or os.environ.get("AZUREML_MODEL_DIR")
        if not env_dir:
            raise InvalidArgumentError(
                "no model folder: NBDEPLOY_MODEL_DIR (or AZUREML_MODEL_DIR) is not set",
                hint="get_model_path() works inside a running service; elsewhere pass "
                "model_dir=, or use the registry to download the model",
            )
        model_dir = env_dir
        if os.environ.get("NBDEPLOY_BUNDLE_DIR"):
            bundle_dir = Path(os.environ["NBDEPLOY_BUNDLE_DIR"])
    root = Path(model_dir)
    manifest_path = _find_manifest(root, bundle_dir)
    if manifest_path is None:
        return _model_path_from_layout(root, model_name, version)

    manifest = BundleManifest.read(manifest_path)
    models = manifest.models
    if model_name is None:
        if len(models) != 1:
            names = ", ".join(f"{m.name}:{m.version}" for m in models) or "none"
            raise InvalidArgumentError(
                f"this service holds {len(models)} models ({names}); say which one",
                hint="call get_model_path('<model name>')",
            )
        chosen = models[0]
    else:
        same = [m for m in models if m.name == model_name]
        if not same:
            names = ", ".join(sorted({m.name for m in models})) or "none"
            raise ModelNotFoundError(
                f"no model {model_name!r} in this service; it holds: {names}",
                hint="deploy the service with that model, or fix the name",
            )
        wanted = _pick_version(model_name, [m.version for m in same], version)
        chosen = next(m for m in same if m.version == wanted)
    folder = manifest_path.parent / "models" / chosen.name / str(chosen.version)
    if len(chosen.files) == 1:
        return folder / chosen.files[0]
    return folder


def _model_path_from_layout(root: Path, model_name: str | None, version: int | None) -> Path:
    """No manifest (a hand-made folder): ``<root>/<name>/<version>`` or ``<root>`` itself."""
    if model_name is None:
        return root
    if root.parent.name == model_name and root.name.isdigit():
        # A single-model folder models/<name>/<version> handed over directly.
        _pick_version(model_name, [int(root.name)], version)
        return root
    folder = root / model_name
    versions = (
        [int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()]
        if folder.is_dir()
        else []
    )
    if not versions:
        present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise ModelNotFoundError(
            f"no model {model_name!r} under {str(root)!r}; it holds: "
            + (", ".join(present) or "nothing"),
            hint="check the model name, or the model folder",
        )
    return folder / str(_pick_version(model_name, versions, version))
