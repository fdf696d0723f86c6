"""Built-in scoring script for scikit-learn models (no-code deployment).

nbdeploy serves a scikit-learn estimator or pipeline with this script when it is
deployed without one (``nbdeploy.deploy("iris", name="iris-svc")``). It is an ordinary
scoring script: print it with ``nbdeploy.scorers.show("sklearn")``, copy it, change it
and deploy the copy with ``score="score.py"``.

Requests
    ``{"data": <rows>}``, converted by the model's input schema when it was registered
    with a sample (a DataFrame, an ndarray ...); without a schema, a list of rows, a
    list of ``{column: value}`` records or a ``{column: [values]}`` table. An optional
    ``"method"`` picks the estimator's prediction method: ``predict_proba``,
    ``predict``, ``predict_log_proba``, ``decision_function``, ``transform`` or
    ``score_samples`` — whichever of these the estimator has. Any other name is
    refused (400) with the list of the allowed ones.

Answers
    The method's result as plain JSON lists: ``predict_proba`` gives one list of class
    probabilities per row, in the order of ``model.classes_`` (as Azure ML's no-code
    deployment did); ``predict`` one label or value per row. Classifiers answer with
    ``predict_proba`` by default (when they have it), every other estimator with
    ``predict`` (then ``transform``, ``decision_function``, ``score_samples``).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

import nbdeploy
from nbdeploy.exceptions import BadRequestError

#: The public prediction methods a request may ask for, in the order a default is chosen.
PREDICTION_METHODS = (
    "predict_proba",
    "predict",
    "transform",
    "decision_function",
    "score_samples",
    "predict_log_proba",
)
_MODEL_FILES = ("*.pkl", "*.pickle", "*.joblib", "*.cloudpickle")

model: Any = None
methods: tuple[str, ...] = ()
default_method: str = "predict"


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
    except pickle.UnpicklingError:
        import joblib  # joblib.dump(model, "model.pkl"), as Azure ML's samples save models

        return joblib.load(path)


def init() -> None:
    """Load the estimator and learn which prediction methods it has."""
    global model, methods, default_method
    model = _load(_model_file())
    # sklearn hides methods an estimator lacks (SVC(probability=False).predict_proba),
    # so "callable attribute" is exactly "the estimator can do it".
    methods = tuple(m for m in PREDICTION_METHODS if callable(getattr(model, m, None)))
    if not methods:
        raise TypeError(
            f"{type(model).__name__} has none of the prediction methods "
            f"{', '.join(PREDICTION_METHODS)}; deploy it with a scoring script"
        )
    default_method = methods[0]


def _features(data: Any) -> Any:
    """Request data as something an estimator takes (a DataFrame passes through)."""
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        import pandas as pd

        return pd.DataFrame.from_records(data)
    if isinstance(data, dict):
        import pandas as pd

        return pd.DataFrame(data)
    if hasattr(data, "iloc") or hasattr(data, "tocsr"):  # pandas, scipy.sparse
        return data
    array = np.asarray(data)
    if array.ndim == 1:  # one row, or one value per row for a single-feature model
        single = getattr(model, "n_features_in_", None) == 1
        array = array.reshape(-1, 1) if single else array.reshape(1, -1)
    names = getattr(model, "feature_names_in_", None)
    if names is not None and array.ndim == 2 and array.shape[1] == len(names):
        # Fitted on a DataFrame: give plain rows its column names (in that order).
        import pandas as pd

        return pd.DataFrame(array, columns=list(names))
    return array


def _plain(result: Any) -> Any:
    if hasattr(result, "toarray"):  # a sparse matrix from transform()
        result = result.toarray()
    if isinstance(result, np.ndarray):
        return result.tolist()
    return result


def run(data: Any, method: str | None = None) -> Any:
    """Answer with ``model.<method>(data)`` (``method`` from the request's ``"method"``)."""
    chosen = default_method if method is None else method
    if chosen not in methods:
        raise BadRequestError(
            f"method {chosen!r} is not available for this {type(model).__name__}; "
            f"allowed: {', '.join(methods)}",
            hint=f'send e.g. {{"data": ..., "method": "{methods[0]}"}}',
        )
    return _plain(getattr(model, chosen)(_features(data)))
