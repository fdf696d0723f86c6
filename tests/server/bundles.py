"""Bundles for the scoring-server tests, built as plain folders on disk.

A bundle is the stable interface between the packaging code and the server, so the
tests write one by hand exactly as ``docs/architecture.md`` describes it
(``bundle.json`` + ``score.py`` + ``models/<name>/<version>/model.pkl``).
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle

from nbdeploy.core.hashing import hash_files
from nbdeploy.core.schema import infer_schema
from nbdeploy.server import ScoringApp

MODEL_NAME = "diabetes"
MODEL_VERSION = 1

#: A scoring script written the Azure ML way: the model file from AZUREML_MODEL_DIR.
DIABETES_SCORE = """
import os

import cloudpickle
import numpy as np
import pandas as pd

model = None
init_calls = 0


def init():
    global model, init_calls
    init_calls += 1
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl")
    with open(path, "rb") as fh:
        model = cloudpickle.load(fh)


def run(data):
    if isinstance(data, pd.DataFrame):
        kind = "DataFrame"
        dtypes = {str(c): str(t) for c, t in data.dtypes.items()}
        columns = [str(c) for c in data.columns]
    elif isinstance(data, np.ndarray):
        kind = "ndarray"
        dtypes = {"array": str(data.dtype)}
        columns = None
    else:
        kind = type(data).__name__
        dtypes = None
        columns = None
    return {
        "predictions": model.predict(np.asarray(data, dtype=float)),
        "kind": kind,
        "dtypes": dtypes,
        "columns": columns,
        "init_calls": init_calls,
    }
"""


def write_bundle(
    root: Path,
    score: str,
    *,
    model: Any = None,
    input_sample: Any = None,
    output_sample: Any = None,
    settings: dict[str, Any] | None = None,
    name: str = MODEL_NAME,
    version: int = MODEL_VERSION,
    source_files: dict[str, str] | None = None,
) -> Path:
    """Write a bundle folder under ``root`` and return its path."""
    bundle = root / "bundle"
    model_dir = bundle / "models" / name / str(version)
    model_dir.mkdir(parents=True)
    (model_dir / "model.pkl").write_bytes(cloudpickle.dumps(model))
    (bundle / "score.py").write_text(textwrap.dedent(score), encoding="utf-8")
    source_dir = None
    if source_files:
        source_dir = "src"
        for rel, text in source_files.items():
            target = bundle / "src" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(text), encoding="utf-8")
    (bundle / "requirements.txt").write_text("scikit-learn\ncloudpickle\n", encoding="utf-8")
    manifest = {
        "format": 1,
        "models": [
            {
                "name": name,
                "version": version,
                "framework": "sklearn",
                "framework_version": None,
                "files": ["model.pkl"],
                "content_hash": hash_files(model_dir, ["model.pkl"]),
            }
        ],
        "entry_script": "score.py",
        "source_dir": source_dir,
        "input_schema": None if input_sample is None else infer_schema(input_sample).to_dict(),
        "output_schema": None if output_sample is None else infer_schema(output_sample).to_dict(),
        "environment": {
            "name": "test",
            "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
            "requirements": ["scikit-learn", "cloudpickle"],
            "conda": None,
        },
        "settings": settings or {},
    }
    (bundle / "bundle.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return bundle


def wait_settled(app: ScoringApp, timeout: float = 30.0) -> None:
    """Block until the app's init() finished (either way), failing after ``timeout``."""
    assert app.runtime.wait_settled(timeout), "init() did not finish in time"


def poll(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Call ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.01)
