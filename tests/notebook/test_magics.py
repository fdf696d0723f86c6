"""The magics, through a real IPython shell."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import DeploymentError, ModelNotFoundError, ScoringScriptError
from nbdeploy.notebook.magics import strip_comment

from .conftest import SCORE

BROKEN_INIT = """\
import pickle

from nbdeploy.core.modelpath import get_model_path


def init():
    global model
    with open(get_model_path("diabetes"), "rb") as fh:
        model = pickle.load(fh)
    raise RuntimeError("no GPU here")


def run(data):
    return model.predict(data).tolist()
"""

BROKEN_RUN = """\
def init():
    pass


def run(data):
    rows = len(data)
    return rows / 0
"""


def _cell(ip: InteractiveShell, source: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run a cell like a notebook does; return what it printed (stdout + stderr)."""
    ip.run_cell(source, store_history=False)
    out = capsys.readouterr()
    return out.out + out.err


PROGRESS_PREFIXES = ("deploying ", "running ")


def _one_line_error(text: str, expected: str) -> None:
    """The error is one line, then at most a hint and the cell line that raised it,
    after any progress lines — never a traceback into nbdeploy."""
    lines = [
        line
        for line in text.strip().splitlines()
        if line.strip() and not line.startswith(PROGRESS_PREFIXES)
    ]
    assert "Traceback" not in text, text
    assert "site-packages" not in text, text
    assert "nbdeploy/" not in text, text
    assert lines, "nothing was printed"
    assert expected in lines[0], text
    rest = lines[1:]
    if rest and rest[0].startswith("Hint: "):
        rest = rest[1:]
    assert len(rest) <= 1, text
    assert not rest or rest[0].startswith("Cell"), text


# -- registration and help ------------------------------------------------------------


def test_every_magic_is_registered(shell: InteractiveShell) -> None:
    magics = shell.magics_manager.magics
    for name in ("writefile-score", "writefile_score"):
        assert name in magics["cell"], name
    for name in ("register", "deploy", "models", "services", "logs", "swagger", "undeploy"):
        assert name in magics["line"], name
    assert "profile" in magics["line"]


def test_load_ext_nbdeploy_registers_the_magics() -> None:
    import nbdeploy

    # `%load_ext nbdeploy` calls nbdeploy.load_ipython_extension.
    assert callable(getattr(nbdeploy, "load_ipython_extension", None)), (
        "nbdeploy/__init__.py must export load_ipython_extension"
    )
    ip = InteractiveShell.instance()
    nbdeploy.load_ipython_extension(ip)
    assert "writefile-score" in ip.magics_manager.magics["cell"]


@pytest.mark.parametrize("name", ["writefile-score", "writefile_score"])
def test_cell_magic_docstring_is_the_help(shell: InteractiveShell, name: str) -> None:
    doc = shell.find_cell_magic(name).__doc__
    assert "Write the cell to a scoring script" in doc
    assert "--model" in doc


def test_question_mark_help_works_for_both_spellings(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    for cell in ("?%%writefile-score", "%%writefile_score?"):
        text = _cell(shell, cell, capsys)
        assert "Write the cell to a scoring script" in text, (cell, text)


def test_dash_dash_help_prints_usage(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _cell(ip, "%deploy --help", capsys)
    assert "Deploy registered model(s) as a web service" in text
    assert "%deploy [--name NAME] [--score PATH]" in text
    assert "Traceback" not in text


# -- bad arguments: one line ----------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        pytest.param("%register", "UsageError", id="missing-args"),
        pytest.param("%register nothere --name m", "no variable 'nothere'", id="unknown-var"),
        pytest.param("%deploy m --port many", "invalid int value", id="bad-port"),
        pytest.param("%deploy m --bogus", "unrecognized arguments", id="unknown-option"),
        pytest.param("%deploy m --auth basic", "invalid choice", id="bad-auth"),
        pytest.param("%deploy nosuchmodel", "ModelNotFoundError", id="unknown-model"),
        pytest.param("%logs nosuchservice", "ServiceNotFoundError", id="unknown-service"),
        pytest.param("%undeploy nosuchservice", "ServiceNotFoundError", id="undeploy-unknown"),
        pytest.param("%models --tag notkeyvalue", "expected KEY=VALUE", id="bad-tag"),
    ],
)
def test_bad_arguments_are_one_line_without_traceback(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str], cell: str, expected: str
) -> None:
    _one_line_error(_cell(ip, cell, capsys), expected)


def test_unknown_sample_variable_is_a_usage_error(
    ip: InteractiveShell, diabetes: tuple[Any, Any]
) -> None:
    ip.user_ns["ridge"] = diabetes[0]
    with pytest.raises(UsageError, match="no variable 'X_missing'"):
        ip.run_line_magic("register", "ridge --name diabetes --sample X_missing")


# -- %register, %models ---------------------------------------------------------------


def test_register_from_the_namespace_returns_the_model(
    ip: InteractiveShell, diabetes: tuple[Any, Any], home: Workspace
) -> None:
    ip.user_ns["ridge"], ip.user_ns["X"] = diabetes
    model = ip.run_line_magic(
        "register", 'ridge --name diabetes --sample X --tag team=ml --tag stage=dev -d "a ridge"'
    )
    assert (model.name, model.version, model.framework) == ("diabetes", 1, "sklearn")
    assert model.tags == {"team": "ml", "stage": "dev"}
    assert model.description == "a ridge"
    assert model.model_version.input_schema is not None
    assert "age" in model._repr_mimebundle_()["text/html"]
    again = ip.run_line_magic("register", "ridge --name diabetes")
    assert again.version == 2

    listed = ip.run_line_magic("models", "")
    assert [m.id for m in listed] == ["diabetes:2", "diabetes:1"] or sorted(
        m.id for m in listed
    ) == ["diabetes:1", "diabetes:2"]
    assert "diabetes" in listed._repr_mimebundle_()["text/plain"]
    assert [m.id for m in ip.run_line_magic("models", "--tag team=ml")] == ["diabetes:1"]
    assert len(ip.run_line_magic("models", "diabetes --latest")) == 1


def test_assignment_form_keeps_the_result(
    ip: InteractiveShell, diabetes: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ip.user_ns["ridge"] = diabetes[0]
    _cell(ip, "m = %register ridge --name diabetes", capsys)
    assert ip.user_ns["m"].id == "diabetes:1"


# -- %%writefile-score ----------------------------------------------------------------


def test_writefile_score_writes_and_checks(
    ip: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check = ip.run_cell_magic("writefile-score", "score.py", SCORE)
    assert (tmp_path / "score.py").read_text() == SCORE
    assert check.ok
    assert check.run is None
    assert "init() and run() found" in check._repr_mimebundle_()["text/plain"]


def test_writefile_score_reports_notebook_only_names_with_cell_lines(
    ip: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.user_ns["scaler"] = object()
    source = "def init():\n    pass\n\n\ndef run(data):\n    return scaler.transform(data)\n"
    with pytest.raises(ScoringScriptError, match=r"sub/score\.py failed its check"):
        ip.run_cell_magic("writefile_score", "sub/score.py", source)
    assert (tmp_path / "sub" / "score.py").is_file()
    shown = capsys.readouterr().out  # the verdict is displayed before the error
    assert (
        "line 6 of sub/score.py (cell line 7): name 'scaler' is only defined in the notebook"
        in (shown)
    )
    assert "cell line 7 |     return scaler.transform(data)" in shown  # the excerpt


def test_writefile_score_reports_missing_run(ip: InteractiveShell) -> None:
    with pytest.raises(ScoringScriptError, match="run"):
        ip.run_cell_magic("writefile-score", "score.py", "def init():\n    pass\n")


def test_failed_check_stops_run_all(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failing %%writefile-score cell errors (so "Run All" stops there), rendered as
    one line and a hint by _render_traceback_, after the verdict."""
    result = ip.run_cell("%%writefile-score score.py\ndef init():\n    pass\n")
    assert not result.success
    assert isinstance(result.error_in_exec, ScoringScriptError)
    out = capsys.readouterr()
    text = out.out + out.err
    verdict, error = text.split("ScoringScriptError:", 1)
    assert verdict.startswith("score.py: 1 problem")
    _one_line_error("ScoringScriptError:" + error, "ScoringScriptError: score.py failed its check")


@pytest.mark.integration
def test_writefile_score_runs_against_the_model_in_a_clean_process(
    ip: InteractiveShell, registered: Any, diabetes: tuple[Any, Any]
) -> None:
    ip.user_ns["model"] = "a notebook variable the script must not see"
    check = ip.run_cell_magic("writefile-score", "score.py --model diabetes:1", SCORE)
    assert check.ok, check.lines()
    assert check.run is not None
    assert check.run.model == "diabetes:1"
    expected = diabetes[0].predict(diabetes[1]).tolist()
    assert check.run.result == pytest.approx(expected)
    assert "ran init() and run(sample) against diabetes:1: ok" in check.lines()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("source", "phase", "script_line", "error"),
    [
        pytest.param(BROKEN_INIT, "init", 10, "RuntimeError: no GPU here", id="init"),
        pytest.param(BROKEN_RUN, "run", 7, "ZeroDivisionError: division by zero", id="run"),
    ],
)
def test_writefile_score_shows_the_error_with_its_cell_line(
    ip: InteractiveShell,
    registered: Any,
    source: str,
    phase: str,
    script_line: int,
    error: str,
) -> None:
    from nbdeploy.notebook.scriptcheck import write_score

    with pytest.raises(ScoringScriptError, match=f"in {phase}, run against diabetes:1"):
        ip.run_cell_magic("writefile-score", "score.py --model diabetes", source)
    check = write_score("score.py", source, model="diabetes", show_progress=False)
    assert not check.ok
    # The heading agrees with the outcome (it used to say "no problems").
    assert check.lines()[0] == "score.py: 1 problem"
    assert check.run is not None
    assert (check.run.phase, check.run.script_line, check.run.error) == (phase, script_line, error)
    text = check._repr_mimebundle_()["text/plain"]
    assert f"failed in {phase}: line {script_line} of score.py (cell line {script_line + 1})" in (
        text
    )
    assert "Traceback" in check.run.traceback  # kept, shown folded in the HTML


def test_writefile_score_with_unknown_model_is_one_line(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _cell(ip, f"%%writefile-score score.py --model ghost\n{SCORE}", capsys)
    _one_line_error(text, "ModelNotFoundError")


def test_writefile_score_needs_a_sample(
    ip: InteractiveShell, diabetes: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from nbdeploy.api import register

    register(diabetes[0], "nosample")
    text = _cell(ip, f"%%writefile-score score.py --model nosample\n{SCORE}", capsys)
    _one_line_error(text, "has no sample input")


# -- %deploy and the service magics ---------------------------------------------------


@pytest.mark.integration
def test_deploy_services_logs_swagger_undeploy(
    ip: InteractiveShell,
    registered: Any,
    score_path: Path,
    diabetes: tuple[Any, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _cell(ip, f"svc = %deploy diabetes:1 --name diabetes-svc --score {score_path}", capsys)
    # The progress says what the deploy waits for, not only the seconds.
    assert re.search(r"deploying diabetes-svc: listening on port \d+; running init\(\)", text)
    assert "deploying diabetes-svc: Healthy (" in text
    svc = ip.user_ns["svc"]
    assert svc.name == "diabetes-svc"
    assert svc.record.state.value == "Healthy"
    assert svc.run(diabetes[1]) == pytest.approx(diabetes[0].predict(diabetes[1]).tolist())
    assert "Webservice diabetes-svc [Healthy]" in svc._repr_mimebundle_()["text/plain"]

    listed = ip.run_line_magic("services", "")
    assert [s.name for s in listed] == ["diabetes-svc"]
    assert 'data-state="Healthy"' in listed._repr_mimebundle_()["text/html"]

    logs = ip.run_line_magic("logs", "diabetes-svc --tail 50")
    assert logs.service == "diabetes-svc"
    assert isinstance(logs.text, str)

    view = ip.run_line_magic("swagger", "diabetes-svc")
    assert view.document["paths"]["/score"]["post"]["operationId"] == "RunMLService"
    assert view.example_request["data"][0].keys() >= {"age", "bmi"}
    assert "data[].age" in view._repr_mimebundle_()["text/plain"]
    assert (
        ip.run_line_magic("swagger", "diabetes-svc --openapi").document["openapi"].startswith("3.")
    )

    text = _cell(ip, "%undeploy diabetes-svc", capsys)
    assert "stopped and deleted" in text
    assert ip.run_line_magic("services", "") == []


@pytest.mark.integration
def test_deploy_failure_is_one_line(
    ip: InteractiveShell,
    registered: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = tmp_path / "bad.py"
    script.write_text(BROKEN_INIT)
    text = _cell(ip, f"%deploy diabetes --name bad --score {script} --port 0", capsys)
    _one_line_error(text, "DeploymentError: service 'bad' failed to start")
    assert "no GPU here" in text, text
    # The progress line says why, not the exception class of a wrapper.
    assert "deploying bad: failed: service 'bad' failed to start" in text, text
    assert "MagicFailure" not in text
    # The hint names calls that exist.
    assert "Hint: see the full output with nbdeploy.get_service('bad').get_logs()" in text


def test_nbdeploy_errors_render_one_line_with_the_cell_line(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.user_ns["DeploymentError"] = DeploymentError
    source = "x = 1\nraise DeploymentError('service x failed', hint='see its logs')\n"
    result = ip.run_cell(source, store_history=True)
    assert isinstance(result.error_in_exec, DeploymentError)
    out = capsys.readouterr()
    lines = (out.out + out.err).strip().splitlines()
    assert lines[:2] == ["DeploymentError: service x failed", "Hint: see its logs"]
    assert lines[2].startswith("Cell In["), lines
    assert lines[2].endswith(
        ", line 2: raise DeploymentError('service x failed', hint='see its logs')"
    ), lines
    assert len(lines) == 3


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "diabetes --name d --score score.py   # ~0.1 s to Healthy",
            "diabetes --name d --score score.py",
        ),
        ("m --tag colour=#fff", "m --tag colour=#fff"),
        ("m -d 'a # b' # c", "m -d 'a # b'"),
        ('m -d "x #y"', 'm -d "x #y"'),
        ("# only a comment", ""),
    ],
)
def test_comments_after_the_arguments_are_ignored(line: str, expected: str) -> None:
    assert strip_comment(line) == expected


def test_readme_deploy_line_with_its_comment_parses(ip: InteractiveShell) -> None:
    """The README's line, pasted as written (the comment used to be an unrecognized
    argument)."""
    from nbdeploy.notebook.magics import NbdeployMagics, parse_line

    line = "diabetes --name diabetes-svc --score score.py   # ~0.1 s to Healthy"
    args = parse_line(NbdeployMagics.deploy, line)
    assert (args.model, args.name, args.score) == (["diabetes"], "diabetes-svc", "score.py")


def test_profile_help_prints_usage(
    ip: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _cell(ip, "%profile --help", capsys)
    assert "Profile a deployed service" in text
    assert "--concurrency" in text
    assert "--data VAR" in text
    assert "Traceback" not in text
    assert "Error" not in text


def test_unknown_model_raises_the_core_error(ip: InteractiveShell) -> None:
    with pytest.raises(ModelNotFoundError):
        ip.run_line_magic("deploy", "ghost")


@pytest.mark.integration
def test_a_500_from_svc_run_is_one_line_with_the_cell_line(
    ip: InteractiveShell,
    registered: Any,
    diabetes: tuple[Any, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """run() raising in the service is the user's error: one line, a hint naming
    %logs, the cell line — never a traceback through nbdeploy's client code."""
    from nbdeploy.api import deploy

    script = tmp_path / "div.py"
    script.write_text(BROKEN_RUN)
    ip.user_ns["svc"] = deploy("diabetes", name="div-svc", score=str(script))
    ip.user_ns["sample"] = diabetes[1]
    text = _cell(ip, "rows = sample.head(2)\nsvc.run(rows)", capsys)
    _one_line_error(text, "ScoringError: ")
    assert "answered 500" in text, text
    assert "ZeroDivisionError" in text, text
    # The hint names the line of the user's script, read from the service log.
    assert (
        "Hint: div.py line 7, in run: return rows / 0; "
        "the traceback is in the service log: %logs div-svc" in text
    )
    assert text.strip().splitlines()[-1].endswith("line 2: svc.run(rows)"), text


@pytest.mark.integration
def test_logs_follow_streams_new_request_lines(
    ip: InteractiveShell, registered: Any, score_path: Path, diabetes: tuple[Any, Any]
) -> None:
    import time

    from nbdeploy.api import deploy

    svc = deploy("diabetes", name="follow-svc", score=str(score_path))
    live = ip.run_line_magic("logs", "follow-svc --follow")
    try:
        assert live.running  # a background thread: the kernel stays free
        assert "POST /score" not in "\n".join(live.lines)
        svc.run(diabetes[1])
        deadline = time.monotonic() + 15
        while "POST /score 200" not in "\n".join(live.lines):
            assert time.monotonic() < deadline, live.lines
            time.sleep(0.05)
        assert "POST /score 200" in live.view.value
    finally:
        live.stop()
    assert not live.running
    assert 'data-kind="info"' in live.status.value
