"""Built-in scoring script for plain Python models (no-code deployment).

nbdeploy serves a pickled Python object with this script when it is deployed without
one and is not a scikit-learn estimator: an object with a ``predict`` method gets
``model.predict(data)``, a function (any callable) gets ``model(data)``. Print it with
``nbdeploy.scorers.show("python")``, copy it and change it.

Requests
    ``{"data": ...}``, converted by the model's input schema when it was registered
    with a sample (a DataFrame, an ndarray ...), else the decoded JSON as it is.

Answers
    Whatever the model returns (numpy arrays and pandas objects become JSON).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbdeploy

_MODEL_FILES = ("*.pkl", "*.pickle", "*.joblib", "*.cloudpickle")

model: Any = None
predict: Callable[[Any], Any] | None = None


def _model_file() -> Path:
    """The model's pickle: the only file of the model, or the one pickle in its folder."""
    path = Path(nbdeploy.get_model_path())
    if path.is_file():
        return path
    found = sorted({p for pattern in _MODEL_FILES for p in path.rglob(pattern)})
    if len(found) != 1:
        raise FileNotFoundError(f"expected one pickled model in {path}, found {len(found)}")
    return found[0]


def _load(path: Path) -> Any:
    if path.suffix.lower() == ".joblib":
        import joblib

        return joblib.load(path)
    try:
        with path.open("rb") as fh:
            return pickle.load(fh)  # the files the registry registered and hashed
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError):
        # joblib.dump(model, "model.pkl"), as the reference saves models, is not a
        # plain pickle: its arrays follow the stream, or the file is compressed.
        import joblib

        return joblib.load(path)


def init() -> None:
    """Load the object and pick what to call: ``predict``, or the object itself."""
    global model, predict
    model = _load(_model_file())
    if callable(getattr(model, "predict", None)):
        predict = model.predict
    elif callable(model) and not isinstance(model, type):
        predict = model
    else:
        raise TypeError(
            f"the model is a {type(model).__name__}: it has no predict() method and is not "
            "callable; deploy it with a scoring script"
        )


def run(data: Any) -> Any:
    """Answer with ``model.predict(data)`` or ``model(data)``."""
    assert predict is not None, "init() has not run"
    return predict(data)
