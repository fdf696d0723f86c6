"""Fixtures shared by every test package.

Each test gets its own workspace under ``tmp_path``; models are small and fitted once
per session (they are never mutated by tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbdeploy.core.workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A fresh, empty workspace in this test's temporary folder."""
    return Workspace(tmp_path / "ws")


@pytest.fixture(scope="session")
def iris_frame() -> pd.DataFrame:
    """A small, deterministic 4-feature classification table (column ``target``)."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 4))
    target = (features[:, 0] + features[:, 1] > 0).astype("int64")
    frame = pd.DataFrame(
        features, columns=["sepal_length", "sepal_width", "petal_length", "petal_width"]
    )
    frame["target"] = target
    return frame


@pytest.fixture(scope="session")
def sklearn_model(iris_frame: pd.DataFrame) -> Any:
    """A fitted scikit-learn ``LogisticRegression`` on :func:`iris_frame`."""
    from sklearn.linear_model import LogisticRegression

    x = iris_frame.drop(columns="target")
    return LogisticRegression(max_iter=200).fit(x, iris_frame["target"])


@pytest.fixture(scope="session")
def sklearn_pipeline(iris_frame: pd.DataFrame) -> Any:
    """A fitted scikit-learn ``Pipeline`` (scaler + logistic regression)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = iris_frame.drop(columns="target")
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(
        x, iris_frame["target"]
    )
