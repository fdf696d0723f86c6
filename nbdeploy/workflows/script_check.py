"""Run a scoring script once against a registered model, in a clean Python process.

A bundle is built for the model in a temporary folder, the model's registered sample
input is encoded as a client would send it, and :mod:`nbdeploy.workflows.check_runner`
calls ``init()`` and ``run(sample)`` in a new interpreter, exactly as a service
would. ``%%writefile-score PATH --model NAME`` shows the outcome.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdeploy.core.bundle import InferenceConfig, build_bundle
from nbdeploy.core.environment import Environment
from nbdeploy.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from nbdeploy.core.scoring import InputMode
    from nbdeploy.core.workspace import Workspace

__all__ = ["check_against_model"]


def check_against_model(
    workspace: Workspace,
    path: str | os.PathLike[str],
    model: str,
    *,
    encode: Callable[[Any], bytes],
    timeout: float = 300.0,
    input_mode: InputMode | None = None,
) -> dict[str, Any]:
    """Run ``init()`` and ``run(sample)`` of the script at ``path`` against registered
    ``model``, its sample input sent as ``encode`` turns it into a request body; the
    outcome (``ok``, ``phase``, ``error``, ``result`` ..., ``model``,
    ``output``) as :mod:`~nbdeploy.workflows.check_runner` reports it.

    Raises :class:`~nbdeploy.exceptions.ModelNotFoundError` for no such model and
    :class:`~nbdeploy.exceptions.InvalidArgumentError` when it has no sample input.
    """
    mv = workspace.registry.get(model)
    ref = f"{mv.name}:{mv.version}"
    sample = mv.load_sample_input()
    if sample is None:
        raise InvalidArgumentError(
            f"model {ref!r} has no sample input to run the script with",
            hint="register it with sample_input=..., or drop --model to only check the script",
        )
    with tempfile.TemporaryDirectory(prefix="nbdeploy-check-") as tmp:
        root = Path(tmp)
        config = InferenceConfig(
            entry_script=Path(path),
            environment=Environment(name="check"),
            input_mode=input_mode or "decoded",
        )
        bundle = build_bundle([mv], config, root / "bundle", verify=True)
        request = root / "request.json"
        request.write_bytes(encode(sample))
        outcome = _run(bundle.path, request, root / "result.json", timeout)
    return {**outcome, "model": ref}


def _run(bundle: Path, request: Path, result: Path, timeout: float) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "nbdeploy.workflows.check_runner",
        str(bundle),
        str(request),
        str(result),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {
            "ok": False,
            "phase": "process",
            "error": f"the check did not finish within {timeout:.0f} s",
        }
    output = proc.stdout + proc.stderr
    if not result.is_file():
        last = output.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return {
            "ok": False,
            "phase": "process",
            "error": f"the check process failed: {last[0]}",
            "traceback": output,
        }
    return {**json.loads(result.read_text()), "output": output}
