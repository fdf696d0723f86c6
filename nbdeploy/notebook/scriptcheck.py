"""Write a scoring script from a notebook cell and check it at once.

:func:`write_score` is the public function behind ``%%writefile-score``: it writes the
cell, checks it statically (:func:`nbdeploy.core.scoring.check_script`, with the
notebook's names so "only defined in the notebook" is caught), and — given a model —
runs ``init()`` and ``run(sample)`` against that registered model in a separate, clean
Python process (:mod:`nbdeploy.workflows.check_runner`). Errors point at the line of
the cell, which is what the user sees.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdeploy.core.scoring import InputMode, ScriptReport, check_script
from nbdeploy.display.html import ERROR_COLOUR, OK_COLOUR, escape, pre_style, round_floats
from nbdeploy.exceptions import InvalidArgumentError, ScoringScriptError
from nbdeploy.sdk.rendering import select_mimetypes

from .progress import Progress

if TYPE_CHECKING:
    from nbdeploy.core.workspace import Workspace

__all__ = ["RunCheck", "ScriptCheck", "run_check", "write_score"]

#: In a ``%%writefile-score`` cell, line 1 is the magic line: script line N is cell line N+1.
CELL_LINE_OFFSET = 1

_PRE = pre_style(wrap=True)


@dataclass(frozen=True)
class RunCheck:
    """What happened when the script ran against a registered model.

    Attributes
    ----------
    model:
        The model version used (``name:version``).
    ok:
        Whether ``init()`` and ``run(sample)`` both worked and the answer has a JSON form.
    phase:
        ``"done"``, or where it failed: ``"load"``, ``"init"``, ``"convert"``, ``"run"``,
        ``"serialize"``, ``"process"`` (the check process itself failed).
    result:
        ``run(sample)``'s answer as JSON data (when ``ok``).
    error:
        ``"<Type>: <message>"`` (when not ``ok``).
    script_line:
        The line of the script where the error was raised, when it was in the script.
    traceback:
        The full traceback text from the check process.
    output:
        What the script printed.
    seconds:
        How long init + run took in the check process.
    """

    model: str
    ok: bool
    phase: str
    result: Any = None
    error: str | None = None
    script_line: int | None = None
    traceback: str = ""
    output: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "ok": self.ok,
            "phase": self.phase,
            "result": self.result,
            "error": self.error,
            "script_line": self.script_line,
            "traceback": self.traceback,
            "output": self.output,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunCheck:
        return cls(
            model=str(data["model"]),
            ok=bool(data["ok"]),
            phase=str(data["phase"]),
            result=data.get("result"),
            error=data.get("error"),
            script_line=data.get("script_line"),
            traceback=str(data.get("traceback") or ""),
            output=str(data.get("output") or ""),
            seconds=float(data.get("seconds") or 0.0),
        )


@dataclass(frozen=True)
class ScriptCheck:
    """The outcome of :func:`write_score`: the static report and the optional run.

    Displays as a short verdict; ``ok`` says whether the script is fit to deploy.
    """

    path: str
    report: ScriptReport
    run: RunCheck | None = None
    line_offset: int = field(default=CELL_LINE_OFFSET)

    @property
    def ok(self) -> bool:
        """True when the static check found no error and the run (if any) worked."""
        return self.report.ok and (self.run is None or self.run.ok)

    def cell_line(self, script_line: int | None) -> int | None:
        """The cell line of a script line (the magic line comes first)."""
        return None if script_line is None else script_line + self.line_offset

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "report": self.report.to_dict(),
            "run": None if self.run is None else self.run.to_dict(),
            "line_offset": self.line_offset,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScriptCheck:
        run = data.get("run")
        return cls(
            path=str(data["path"]),
            report=ScriptReport.from_dict(data["report"]),
            run=None if run is None else RunCheck.from_dict(run),
            line_offset=int(data.get("line_offset", CELL_LINE_OFFSET)),
        )

    def _where(self, line: int | None) -> str:
        if line is None:
            return ""
        return f"line {line} of {self.path} (cell line {self.cell_line(line)}): "

    def _excerpt(self, line: int | None) -> list[str]:
        """The script line itself, numbered as the cell shows it."""
        if line is None:
            return []
        try:
            text = Path(self.path).read_text().splitlines()[line - 1]
        except (OSError, UnicodeDecodeError, IndexError):
            return []
        return [f"    cell line {self.cell_line(line)} | {text.rstrip()}"]

    @property
    def problems(self) -> list[str]:
        """One line per thing to fix: static errors, then a failed run."""
        out = [f"{self._where(e.line)}{e.message}" for e in self.report.errors]
        run = self.run
        if run is not None and not run.ok:
            out.append(
                f"{self._where(run.script_line)}{run.error} "
                f"(in {run.phase}, run against {run.model})"
            )
        return out

    def lines(self) -> list[str]:
        """The verdict as plain text lines: a heading that agrees with the outcome,
        then each error (with the cell line and its code), warnings and the result."""
        count = len(self.problems)
        if count:
            out = [f"{self.path}: {count} problem{'s' if count > 1 else ''}"]
        else:
            out = [f"{self.path}: init() and run() found, no problems"]
        for e in self.report.errors:
            out.append(f"  error: {self._where(e.line)}{e.message}")
            out += self._excerpt(e.line)
        out += [f"  warning: {self._where(w.line)}{w.message}" for w in self.report.warnings]
        run = self.run
        if run is not None:
            if run.ok:
                out.append(f"ran init() and run(sample) against {run.model}: ok")
                out.append(f"  result: {_short_json(run.result)}")
            else:
                out.append(
                    f"ran against {run.model}: failed in {run.phase}: "
                    f"{self._where(run.script_line)}{run.error}"
                )
                out += self._excerpt(run.script_line)
        return out

    def __repr__(self) -> str:
        return f"ScriptCheck(path={self.path!r}, ok={self.ok})"

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, str]:
        colour = OK_COLOUR if self.ok else ERROR_COLOUR
        verdict = "ok" if self.ok else "problems"
        items = "".join(
            f'<pre style="margin:0;white-space:pre-wrap;background:none;border:0;padding:0">'
            f"{escape(line)}</pre>"
            if line.startswith("    cell line")
            else f"<div>{escape(line)}</div>"
            for line in self.lines()[1:]
        )
        output = ""
        if self.run is not None and self.run.output.strip():
            output = f"<div>script output:</div><pre {_PRE}>{escape(self.run.output)}</pre>"
        if self.run is not None and not self.run.ok and self.run.traceback:
            output += (
                "<details><summary>traceback</summary>"
                f"<pre {_PRE}>{escape(self.run.traceback)}</pre></details>"
            )
        mark = "✔" if self.ok else "✘"
        html = (
            f'<div class="nbdeploy-script-check" data-ok="{str(self.ok).lower()}" '
            f'style="border-left:4px solid {colour};padding-left:8px">'
            f"<b>{escape(mark)} {escape(self.lines()[0])}</b> "
            f"<span>({escape(verdict)})</span>{items}{output}</div>"
        )
        return select_mimetypes(
            {"text/plain": "\n".join(self.lines()), "text/html": html}, include, exclude
        )


def _short_json(value: Any, limit: int = 300) -> str:
    text = json.dumps(round_floats(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_check(
    path: str | os.PathLike[str],
    model: str,
    *,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    timeout: float = 300.0,
    input_mode: InputMode | None = None,
) -> RunCheck:
    """Run ``init()`` and ``run(sample)`` of the script at ``path`` against a registered
    model, in a separate Python process, and report what happened.

    The model's registered sample input is the request (encoded to JSON as a client
    would send it), and ``run`` is called exactly as a service deployed with the same
    ``input_mode`` would call it (default ``"decoded"``, as ``%deploy`` /
    ``nbdeploy.deploy``; ``"raw"`` as ``Model.deploy``): see
    :class:`nbdeploy.core.scoring.RunCall`. The bundle is built in a temporary folder
    and removed afterwards.

    Raises
    ------
    ModelNotFoundError
        No such model.
    InvalidArgumentError
        The model was registered without ``sample_input``.

    Examples
    --------
    >>> run_check("score.py", "diabetes").result[:1]          # doctest: +SKIP
    [206.1]
    """
    from nbdeploy.sdk.client import encode_request
    from nbdeploy.sdk.workspace import get_workspace
    from nbdeploy.workflows.script_check import check_against_model

    outcome = check_against_model(
        get_workspace(workspace),
        path,
        model,
        encode=encode_request,
        timeout=timeout,
        input_mode=input_mode,
    )
    return RunCheck.from_dict(outcome)


def write_score(
    path: str | os.PathLike[str],
    source: str,
    *,
    model: str | None = None,
    known_names: Iterable[str] = (),
    workspace: Workspace | str | os.PathLike[str] | None = None,
    show_progress: bool = True,
    input_mode: InputMode | None = None,
) -> ScriptCheck:
    """Write ``source`` to ``path`` as a scoring script and check it.

    Parameters
    ----------
    path:
        Where to write the script (parent folders are created).
    source:
        The script's text (the cell).
    model:
        ``"name"`` or ``"name:version"``: also run ``init()`` and ``run(sample)``
        against that registered model in a separate process. Skipped when the static
        check already found errors.
    known_names:
        Names the notebook defines; a script using one of them (and not defining it)
        would fail in the service, so it is reported.
    workspace:
        The workspace holding ``model`` (default: the default workspace).
    show_progress:
        Show a :class:`~nbdeploy.notebook.progress.Progress` while the run check goes on.
    input_mode:
        How the service will call an undecorated ``run()``: ``"decoded"`` (default,
        as ``%deploy``) or ``"raw"`` (the body as ``str``, as ``Model.deploy``).

    Examples
    --------
    >>> check = write_score("score.py", "def init(): pass\\ndef run(data): return data\\n")
    ... # doctest: +SKIP
    >>> check.ok                                                         # doctest: +SKIP
    True
    """
    target = Path(path)
    if target.is_dir():
        raise InvalidArgumentError(
            f"{str(target)!r} is a folder", hint="give a file name such as score.py"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source)
    except OSError as exc:
        raise ScoringScriptError(
            f"cannot write scoring script {str(target)!r}: {exc.strerror or exc}",
            hint="pick a writable path",
        ) from None
    report = check_script(target, known_names=known_names)
    run: RunCheck | None = None
    if model is not None and report.ok:
        progress = Progress(f"running {target.name} against {model}") if show_progress else None
        try:
            run = run_check(target, model, workspace=workspace, input_mode=input_mode)
        finally:
            if progress is not None:
                ok = run is not None and run.ok
                progress.done("ok" if ok else "failed", ok=ok)
    return ScriptCheck(path=str(path), report=report, run=run)
