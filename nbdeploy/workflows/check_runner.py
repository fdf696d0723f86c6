"""Run a bundle's scoring script once, in a clean process: ``init()`` then ``run(sample)``.

``%%writefile-score PATH --model NAME`` starts::

    python -m nbdeploy.workflows.check_runner BUNDLE REQUEST_JSON RESULT_JSON

with a bundle built for the registered model, so the script sees exactly what a
service would: ``NBDEPLOY_MODEL_DIR``/``AZUREML_MODEL_DIR`` pointing at the bundle's
model folder, the bundle's ``src/`` on ``sys.path``, and ``run()`` called the way the
server calls it (:class:`nbdeploy.core.scoring.RunCall`: the request object for
``@rawhttp``, typed parameters for schema decorators, the body as ``str`` or the
converted data for undecorated scripts, by the bundle's ``input_mode``). Nothing from
the notebook's namespace exists here, which is the point.

The outcome goes to ``RESULT_JSON`` (never stdout, which belongs to the script's own
prints)::

    {"ok": true,  "phase": "done", "result": <run's answer as JSON>, ...}
    {"ok": false, "phase": "load" | "init" | "convert" | "run" | "serialize",
     "error": "ValueError: ...", "script_line": 12, "traceback": "..."}

This module imports only nbdeploy.core and the server's JSON encoder — never IPython.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["main", "script_line"]


def script_line(exc: BaseException, script: Path) -> int | None:
    """The line of ``script`` where ``exc`` (or the exception it wraps) was raised.

    The deepest frame that runs in the script file wins: that is the line of the
    user's code nearest to the failure.

    Examples
    --------
    >>> script_line(ValueError("x"), Path("/nowhere.py")) is None
    True
    """
    target = os.path.realpath(script)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found: int | None = None
        tb: TracebackType | None = current.__traceback__
        while tb is not None:
            if os.path.realpath(tb.tb_frame.f_code.co_filename) == target:
                found = tb.tb_lineno
            tb = tb.tb_next
        if (
            found is None
            and isinstance(current, SyntaxError)
            and current.filename
            and os.path.realpath(current.filename) == target
        ):
            found = current.lineno
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def _describe(exc: BaseException) -> str:
    root: BaseException = exc
    # load_script wraps import errors in ScoringScriptError; show the user's error.
    if exc.__cause__ is not None and type(exc).__name__ == "ScoringScriptError":
        root = exc.__cause__
    text = str(root).strip().splitlines()
    return f"{type(root).__name__}: {text[0] if text else ''}".rstrip(": ")


def _failure(phase: str, exc: BaseException, script: Path, started: float) -> dict[str, Any]:
    return {
        "ok": False,
        "phase": phase,
        "error": _describe(exc),
        "script_line": script_line(exc, script),
        "traceback": "".join(traceback.format_exception(exc)),
        "seconds": time.perf_counter() - started,
    }


def _arguments(call: Any, body: bytes) -> tuple[Any, dict[str, Any]]:
    """What the server would pass to ``run`` for ``body`` (a ``POST /score``)."""
    from nbdeploy.core.rawhttp import Request
    from nbdeploy.server.runtime import decode_request

    if call.style == "rawhttp":
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        return Request("POST", "/score", query_string=b"", headers=headers, body=body), {}
    if call.style == "raw":
        return call.text_argument(body), {}
    data, extras = call.arguments(decode_request(body, call.data_keys))
    return data, extras


def _answer(result: Any) -> Any:
    """``run``'s result as the JSON a client gets (a raw response's body decoded)."""
    from nbdeploy.server.serialization import dumps

    get_data = getattr(result, "get_data", None)
    if callable(get_data) and isinstance(getattr(result, "status_code", None), int):
        body = get_data()
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        try:
            return {"status": result.status_code, "body": json.loads(text)}
        except ValueError:
            return {"status": result.status_code, "body": text}
    return json.loads(dumps(result))


def _check(bundle_dir: Path, request_file: Path) -> dict[str, Any]:
    from nbdeploy import compat
    from nbdeploy.core.bundle import Bundle
    from nbdeploy.core.scoring import RunCall, load_script

    # The check runs the script as the server would, Azure ML stand-ins included.
    compat.install()
    started = time.perf_counter()
    bundle = Bundle.load(bundle_dir)
    os.environ.update(bundle.model_env())
    script_path = bundle.entry_script
    phase = "load"
    try:
        script = load_script(script_path, source_dir=bundle.source_dir)
        phase = "init"
        script.init()
        phase = "convert"
        call = RunCall.plan(
            script,
            input_mode=bundle.input_mode,
            model_input_schema=bundle.input_schema,
            model_output_schema=bundle.output_schema,
            decorations=compat.decorations(script.run),
        )
        data, extras = _arguments(call, request_file.read_bytes())
        phase = "run"
        try:
            result = call.run(data, **extras)
        except Exception as exc:
            fault = call.request_error(exc, data)
            if fault is None:
                raise
            phase = "convert"  # the decorator refused the sample, as the server would
            raise fault from exc
        phase = "serialize"
        encoded = _answer(result)
    except Exception as exc:
        return _failure(phase, exc, script_path, started)
    return {
        "ok": True,
        "phase": "done",
        "result": encoded,
        "seconds": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``BUNDLE REQUEST_JSON RESULT_JSON``; exit 0 when the outcome was
    written (whether the script worked or not), 2 on bad arguments."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m nbdeploy.workflows.check_runner BUNDLE REQUEST RESULT")
        return 2
    bundle_dir, request_file, result_file = (Path(a) for a in args)
    outcome = _check(bundle_dir, request_file)
    sys.stdout.flush()
    sys.stderr.flush()
    result_file.write_text(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
