"""The stored-output scan itself: it finds each kind of machine-dependent value, leaves
stable text alone, and looks at exactly what nbval compares."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat import v4
from nbval import plugin

from .scan import SANITIZE_CFG, SKIP_COMPARE, load_sanitizer, scan_notebook

SANITIZER = load_sanitizer()


def _notebook(tmp_path: Path, *cells: Any) -> Path:
    path = tmp_path / "t.ipynb"
    nbformat.write(v4.new_notebook(cells=list(cells)), path)
    return path


def _cell(*outputs: Any, source: str = "x", tags: list[str] | None = None, ran: bool = True) -> Any:
    cell = v4.new_code_cell(source, execution_count=1 if ran else None, outputs=list(outputs))
    if tags:
        cell.metadata["tags"] = tags
    return cell


def _text(text: str, mime: str = "text/plain") -> Any:
    return v4.new_output("execute_result", data={mime: text}, execution_count=1)


def _kinds(path: Path, rules: Any = ()) -> list[tuple[int, str, str, str]]:
    return [(f.cell, f.key, f.kind, f.value) for f in scan_notebook(path, rules)]


FLOAT = "float with more than 6 significant digits"


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("[182.6733542068342, 90.99]", FLOAT, "182.6733542068342"),
        ('{"age": -0.038075906433423026}', FLOAT, "0.038075906433423026"),
        ("loss 1.23456789e-05", FLOAT, "1.23456789e-05"),
        ("model at /home/alice/m.pkl", "absolute path", "/home/alice/m.pkl"),
        ("cd /work/wt/12/notebooks", "absolute path", "/work/wt/12/notebooks"),
        ("workspace /tmp/nbdeploy-x1/workspace", "absolute path", "/tmp/nbdeploy-x1/workspace"),
        ("GET http://127.0.0.1:41234/score", "loopback port", "127.0.0.1:41234"),
        ("open localhost:8888/lab", "loopback port", "localhost:8888"),
        ("NBDEPLOY-LISTENING 127.0.0.1 49689", "loopback port", "127.0.0.1 49689"),
        ("listening on port 41234", "port number", "port 41234"),
        ('{"port": 41234}', "port number", 'port": 41234'),
        ("server pid 12345 started", "pid", "pid 12345"),
        ("PID: 4242", "pid", "PID: 4242"),
        ("created 2026-11-21 UTC", "timestamp", "2026-11-21"),
        ("at 05:55:40", "timestamp", "05:55:40"),
        ("Date: Sat, 21 Nov 2026", "timestamp", "Sat, 21 Nov 2026"),
        ("Healthy after 0.12s", "duration", "0.12s"),
        ("mean 2.85 ms", "duration", "2.85 ms"),
        ("701.8 requests/s", "rate", "701.8 requests/s"),
        ("<object object at 0x7fe8a1b2c3d0>", "memory address", "0x7fe8a1b2c3d0"),
        ("image nbdeploy/pk:3f2a1b4c5d6e", "random id", "3f2a1b4c5d6e"),
        ("id 9f0e1d2c3b4a5968776655443322110f", "random id", "9f0e1d2c3b4a5968776655443322110f"),
        ("profile-808686934849", "long integer", "808686934849"),
        ("started at 1763704540", "long integer", "1763704540"),
        ("sklearn 1.9.1", "package version", "sklearn 1.9.1"),
        ("Python 3.11.7", "package version", "Python 3.11.7"),
        ("scikit-learn==1.9.1\nnumpy==2.3.4", "package version", "==2.3.4"),
    ],
)
def test_finds_each_kind(tmp_path: Path, text: str, kind: str, value: str) -> None:
    path = _notebook(tmp_path, _cell(_text(text)))
    assert (0, "text/plain", kind, value) in _kinds(path)


@pytest.mark.parametrize(
    "text",
    [
        "(200, [182.67, 90.99, 166.11])",
        "np.allclose: True",
        "shape (442, 10), dtype float64",
        "1e-05, 2.5e+03, 0.000123",
        "host 127.0.0.1, bound to 0.0.0.0 inside (default 0.0.0.0:5001)",
        "nbdeploy 0.1.0 (this repository's own version), nbdeploy==0.1.0",
        "('3.1.0', ['/', '/score']) (the OpenAPI version), widgets 2.0.0",
        "FROM ${BASE_IMAGE}\nWORKDIR /app\nCMD /opt/venv/bin/python -m nbdeploy.server",
        "POST /score, GET /swagger.json, /nbdeploy/ping",
        "http://127.0.0.1:PORT/score",
        "content hash sha256:HASH, colour #2e7d32",
        "ARG BASE_IMAGE=python:3.11-slim",
        "requestedCpu=1.0 requestedMemoryInGb=0.5; 1.25 headroom",
        "3 requests, 0 failed; weights {'v1': 90, 'v2': 10}",
        "key: abcd…wxyz (masked)",
    ],
)
def test_leaves_stable_text_alone(tmp_path: Path, text: str) -> None:
    assert _kinds(_notebook(tmp_path, _cell(_text(text)))) == []


def test_applies_the_sanitizer_first(tmp_path: Path) -> None:
    text = (
        "http://127.0.0.1:41234/score in /tmp/nbdeploy-quick1/workspace/server.log "
        "at 2026-11-21 05:55:40, model /home/alice/model.pkl"
    )
    path = _notebook(tmp_path, _cell(_text(text)))
    unsanitized = {kind for _, _, kind, _ in _kinds(path)}
    assert {"loopback port", "absolute path", "timestamp"} <= unsanitized
    # The repository's sanitizer takes care of the port, the temp folder and the time;
    # the home folder is still there.
    assert _kinds(path, SANITIZER) == [(0, "text/plain", "absolute path", "/home/alice/model.pkl")]


def test_scans_what_nbval_compares_and_only_that(tmp_path: Path) -> None:
    long = "0.12345678"
    outputs = [
        v4.new_output("stream", name="stdout", text=f"a {long}\n"),
        v4.new_output("stream", name="stderr", text=f"b {long}\n"),
        v4.new_output(
            "display_data",
            data={
                "text/html": f"<b>{long}</b>",
                "text/markdown": f"*{long}*",
                "image/svg+xml": f"<svg><text>{long}</text></svg>",
                "application/vnd.jupyter.widget-view+json": {"model_id": "f" * 32 + long},
                "image/png": f"iVBOR{long}",
            },
            metadata={"note": long},
        ),
        v4.new_output("error", ename="ValueError", evalue=f"bad {long}", traceback=[long]),
    ]
    path = _notebook(
        tmp_path,
        v4.new_markdown_cell(f"text {long}"),
        _cell(_text(long), tags=["nbval-ignore-output"]),
        _cell(_text(long), source="# NBVAL_IGNORE_OUTPUT\nx"),
        _cell(_text(long), tags=["nbval-skip"]),
        _cell(_text(long), source="# NBVAL_SKIP\nx"),
        _cell(_text(long), ran=False),
        _cell(*outputs),
    )
    found = {(cell, key) for cell, key, _, _ in _kinds(path)}
    # Code cells count from 0, markdown cells not at all; the compared cell is the 6th.
    assert found == {
        (5, "stdout"),
        (5, "stderr"),
        (5, "text/html"),
        (5, "text/markdown"),
        (5, "image/svg+xml"),
        (5, "evalue"),
    }


def test_streams_are_coalesced_before_they_are_scanned(tmp_path: Path) -> None:
    # nbval joins the pieces of a stream and applies carriage returns first: a progress
    # line overwritten by "\r" is not compared, the joined "0.1234" + "5678" is.
    path = _notebook(
        tmp_path,
        _cell(
            v4.new_output("stream", name="stdout", text="elapsed 1.23456789\r"),
            v4.new_output("stream", name="stdout", text="done 0.1234"),
            v4.new_output("stream", name="stdout", text="5678\n"),
        ),
    )
    assert _kinds(path) == [(0, "stdout", FLOAT, "0.12345678")]


def test_json_data_is_compared_unsanitized(tmp_path: Path) -> None:
    # nbval sanitizes strings only; a dict is compared as it is, port and all.
    output = v4.new_output(
        "execute_result", data={"application/json": {"uri": "http://127.0.0.1:41234/"}}
    )
    path = _notebook(tmp_path, _cell(output))
    assert _kinds(path, SANITIZER) == [(0, "application/json", "loopback port", "127.0.0.1:41234")]


def test_skip_list_is_nbvals_own() -> None:
    """The keys nbval never compares, read from its source (``self.skip_compare``)."""
    source = inspect.getsource(plugin.IPyNbFile.__init__)
    skipped = set()
    for node in ast.walk(ast.parse(textwrap.dedent(source))):
        if isinstance(node, ast.Assign) and "skip_compare" in ast.unparse(node.targets[0]):
            skipped |= {
                c.value
                for c in ast.walk(node.value)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            }
    assert skipped == SKIP_COMPARE


def test_every_sanitizer_section_is_a_rule_nbval_reads() -> None:
    """nbval silently drops a rule whose ``replace:`` line does not follow its
    ``regex:`` line; every ``[section]`` of the file must give one rule."""
    text = SANITIZE_CFG.read_text(encoding="utf-8")
    sections = re.findall(r"^\[[\w-]+\]$", text, flags=re.MULTILINE)
    assert len(SANITIZER) == len(sections) > 0
