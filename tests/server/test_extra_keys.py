"""Top-level request keys besides "data" reach run() as keyword arguments when its
signature takes them (the interface built-in scorers use for "method")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from nbdeploy.server.runtime import keyword_parameters

Serve = Callable[..., TestClient]

NAMED = """
def init():
    pass

def run(data, method="predict_proba", *, top=None):
    return {"type": type(data).__name__, "method": method, "top": top}
"""

ANY = """
def init():
    pass

def run(data, **options):
    return {"n": len(data), "options": options}
"""

PLAIN = """
def init():
    pass

def run(data):
    return {"n": len(data)}
"""


@pytest.mark.parametrize(
    ("score", "body", "expected"),
    [
        pytest.param(
            NAMED,
            {"data": [[1.0, 2.0]], "method": "predict"},
            {"type": "ndarray", "method": "predict", "top": None},
            id="named",
        ),
        pytest.param(
            NAMED,
            {"data": [[1.0, 2.0]], "top": 2, "unknown": 1},
            {"type": "ndarray", "method": "predict_proba", "top": 2},
            id="keyword-only-and-unknown-ignored",
        ),
        pytest.param(
            ANY,
            {"data": [[1.0, 2.0]], "method": "predict", "k": [1]},
            {"n": 1, "options": {"method": "predict", "k": [1]}},
            id="kwargs",
        ),
        pytest.param(PLAIN, {"data": [[1.0, 2.0]], "method": "predict"}, {"n": 1}, id="plain"),
    ],
)
def test_extra_keys(
    make_bundle: Callable[..., Path],
    serve_app: Serve,
    score: str,
    body: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    client = serve_app(make_bundle(score, input_sample=np.zeros((2, 2))))
    r = client.post("/score", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == expected


def test_keyword_parameters() -> None:
    def named(data: Any, method: str = "x", *, top: int = 1) -> None: ...

    def anything(data: Any, **kw: Any) -> None: ...

    def plain(data: Any) -> None: ...

    assert keyword_parameters(named) == (False, frozenset({"method", "top"}), "data")
    assert keyword_parameters(anything) == (True, frozenset(), "data")
    assert keyword_parameters(plain) == (False, frozenset(), "data")
    assert keyword_parameters(print)[0] is True or keyword_parameters(print)[2] is None
