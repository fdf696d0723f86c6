"""The built-in scoring scripts of no-code deployment, as ordinary files to read and copy.

When a model is deployed without a scoring script, its bundle gets one of these as
``score.py`` (the bundle manifest records which, as ``"builtin_scorer"``):

========== ====================== ==================================================
name       file                   serves
========== ====================== ==================================================
sklearn    ``sklearn_scorer.py``  scikit-learn estimators and pipelines (and
                                  xgboost/lightgbm models, or a ``python`` model that
                                  is a scikit-learn estimator): ``predict_proba`` for
                                  classifiers, ``"method"`` in the request to choose
onnx       ``onnx_scorer.py``     ONNX graphs, with onnxruntime
python     ``python_scorer.py``   pickled objects with ``predict``, and functions
========== ====================== ==================================================

They are plain scoring scripts (``init()`` / ``run(data)`` with
``nbdeploy.get_model_path()``): print one with :func:`show`, copy it with :func:`copy`
and deploy your changed copy with ``score=...``.

Examples
--------
>>> path("onnx").name
'onnx_scorer.py'
>>> "def run(" in source("sklearn")
True
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from nbdeploy.exceptions import InvalidArgumentError

__all__ = ["NAMES", "copy", "path", "show", "source"]

#: The built-in scorers, by name.
NAMES: tuple[str, ...] = ("sklearn", "onnx", "python")

_HERE = Path(__file__).resolve().parent


def path(name: str) -> Path:
    """The file of built-in scorer ``name`` (``"sklearn"``, ``"onnx"`` or ``"python"``).

    Raises
    ------
    InvalidArgumentError
        No built-in scorer has that name.

    Examples
    --------
    >>> path("sklearn").is_file()
    True
    """
    if name not in NAMES:
        raise InvalidArgumentError(
            f"there is no built-in scorer {name!r}",
            hint=f"built-in scorers: {', '.join(NAMES)}",
        )
    return _HERE / f"{name}_scorer.py"


def source(name: str) -> str:
    """The source code of built-in scorer ``name``.

    Examples
    --------
    >>> source("python").splitlines()[0]
    '\"\"\"Built-in scoring script for plain Python models (no-code deployment).'
    """
    return path(name).read_text(encoding="utf-8")


def show(name: str) -> None:
    """Print the source of built-in scorer ``name`` — to read, or to copy into a cell.

    Examples
    --------
    >>> show("onnx")  # doctest: +ELLIPSIS
    \"\"\"Built-in scoring script for ONNX models ...
    """
    print(source(name), end="")


def copy(name: str, dest: str | os.PathLike[str] = "score.py") -> Path:
    """Copy built-in scorer ``name`` to ``dest`` (a file, or a folder) to change it.

    Raises
    ------
    InvalidArgumentError
        ``dest`` already exists as a file (nothing is overwritten).

    Examples
    --------
    >>> import tempfile
    >>> copy("sklearn", Path(tempfile.mkdtemp()) / "score.py").name
    'score.py'
    """
    target = Path(dest)
    if target.is_dir():
        target = target / path(name).name
    if target.exists():
        raise InvalidArgumentError(
            f"{str(target)!r} already exists", hint="choose another file name, or delete it"
        )
    shutil.copyfile(path(name), target)
    return target
