"""Built-in scoring script for ONNX models (no-code deployment), run with onnxruntime.

nbdeploy serves an ONNX model with this script when it is deployed without one. Print
it with ``nbdeploy.scorers.show("onnx")``, copy it and change it.

Requests
    The graph's inputs decide: a graph with one input takes ``{"data": [[...], ...]}``
    (the rows of that input); a graph with several takes
    ``{"data": {"<input name>": [...], ...}}``, one entry per input. Values are cast
    to each input's element type (``float``, ``int64`` ...); a single row for a 2-D
    input may be sent flat.

Answers
    A graph with one output answers with that output as plain JSON lists; several
    outputs answer with ``{"<output name>": ..., ...}``. (A scikit-learn classifier
    converted by skl2onnx answers ``{"output_label": [...], "output_probability":
    [{label: probability, ...}, ...]}``.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import nbdeploy
from nbdeploy.exceptions import BadRequestError

#: onnxruntime's element types → numpy dtypes.
DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}

session: Any = None
inputs: list[Any] = []
outputs: list[Any] = []


def init() -> None:
    """Open an onnxruntime session on the model and read its inputs and outputs."""
    global session, inputs, outputs
    import onnxruntime

    path = Path(nbdeploy.get_model_path())
    if path.is_dir():
        found = sorted(path.rglob("*.onnx"))
        if len(found) != 1:
            raise FileNotFoundError(f"expected one .onnx file in {path}, found {len(found)}")
        path = found[0]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = list(session.get_inputs())
    outputs = list(session.get_outputs())


def _signature() -> str:
    return ", ".join(f"{i.name}: {i.type} {list(i.shape)}" for i in inputs)


def _array(value: Any, spec: Any) -> Any:
    dtype = DTYPES.get(spec.type)
    if hasattr(value, "to_numpy"):  # a DataFrame from the input schema
        value = value.to_numpy()
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise BadRequestError(
            f"input {spec.name!r} must hold {spec.type} values: {exc}",
            hint=f"the model takes {_signature()}",
        ) from None
    if array.ndim == 1 and len(spec.shape) == 2:
        array = array.reshape(1, -1)  # one row sent flat
    return array


def _feeds(data: Any) -> dict[str, Any]:
    names = [i.name for i in inputs]
    if isinstance(data, dict) and not hasattr(data, "to_numpy"):
        missing = [n for n in names if n not in data]
        unknown = [k for k in data if k not in names]
        if missing or unknown:
            raise BadRequestError(
                f"the model's inputs are {', '.join(names)}; "
                f"missing: {', '.join(missing) or 'none'}, "
                f"unknown: {', '.join(map(str, unknown)) or 'none'}",
                hint=f'send {{"data": {{{", ".join(repr(n) + ": [...]" for n in names)}}}}}',
            )
        return {i.name: _array(data[i.name], i) for i in inputs}
    if len(inputs) != 1:
        raise BadRequestError(
            f"this model has {len(inputs)} inputs ({_signature()}); send one entry per input",
            hint=f'send {{"data": {{{", ".join(repr(n) + ": [...]" for n in names)}}}}}',
        )
    return {inputs[0].name: _array(data, inputs[0])}


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):  # skl2onnx's ZipMap: {label: probability}
        return {(k if isinstance(k, str) else str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def run(data: Any) -> Any:
    """Run the graph on the request's inputs; one output's value or a dict of them."""
    feeds = _feeds(data)
    try:
        results = session.run(None, feeds)
    except Exception as exc:
        # onnxruntime reports shape and type mismatches as InvalidArgument.
        if type(exc).__name__ in {"InvalidArgument", "InvalidShape"}:
            raise BadRequestError(
                f"the model refused the input: {exc}", hint=f"the model takes {_signature()}"
            ) from None
        raise
    if len(outputs) == 1:
        return _plain(results[0])
    return {o.name: _plain(r) for o, r in zip(outputs, results, strict=True)}
