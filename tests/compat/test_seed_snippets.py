"""The reference pages' own Python code, run with only its imports changed.

``seed_blocks.json`` holds every ``python`` block of the Azure ML "how and where to
deploy" pages (Swedish, Chinese, Czech, Polish; ``scripts/extract_seed_blocks.py``).
Each test takes blocks by page and line (``"000:582"``: page ``000_...txt``, line 582),
rewrites ``from azureml.* import X`` to ``from nbdeploy.aml import X`` and runs them in
one namespace per page flow, in a temporary folder and workspace, with the seeds' own
names and values. The few other changes are spelled out where they happen
(:func:`block`'s ``changes``, each checked to apply): a free port for the pages'
fixed ports (tests never depend on ports), ``import joblib`` for the removed
``sklearn.externals.joblib``, a local file for a cloud dataset. Entry scripts are
deployed as the pages write them. Calls that need Azure raise ``CloudOnlyError``.

``test_every_block_is_accounted_for`` keeps this honest: every block is run here (or
is the same code as one that is), or listed in :data:`NOT_RUN` with the reason.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import re
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests

import nbdeploy
from nbdeploy.exceptions import CloudOnlyError, NbdeployError, ScoringScriptError
from nbdeploy.targets import shutdown_warm_server

BLOCKS: dict[str, str] = {
    f"{b['page'][:3]}:{b['line']}": b["code"]
    for b in json.loads((Path(__file__).parent / "seed_blocks.json").read_text("utf-8"))
}

#: Blocks not run, and why (the others are run below, or are the same code).
NOT_RUN: dict[str, str] = {
    "000:88": "run.register_model: a training Run of an Azure experiment",
    "000:99": "run.register_model: an AutoML Run of an Azure experiment",
    "001:85": "run.register_model: a training Run of an Azure experiment",
    "001:94": "run.register_model: an AutoML Run of an Azure experiment",
    "001:510": "uses undefined names (test_data, true) on the page itself",
    "001:524": "not code: the printed result of the block before",
    "001:398": "the page's rawhttp script without @rawhttp: Azure ML hands it a str too",
    "003:90": "a syntax error on the page (an unmatched '}')",
    "003:419": "@input_schema('data') on run(raw_data): broken in Azure ML too",
    "000:354": "uses os without importing it (NameError in Azure ML too); 001:289 runs",
    "002:309": "uses os without importing it (NameError in Azure ML too); 001:289 runs",
    "000:249": "lines of an entry script (one model's paths); 000:278's run in a service",
    "002:229": "lines of an entry script (several models' paths); 000:278's run in a service",
    "001:209": "a line of an entry script; 003:128 runs it in a service",
    "001:127": "000:133 with another import line (the download needs the internet)",
}

#: Blocks the tests below have run (test_every_block_is_accounted_for reads the
#: source of this module and of test_azure_docker.py for them).
RUN: set[str] = set()

_AZUREML_IMPORT = re.compile(r"^(\s*)from (?:azureml|azure\.core)\.[\w.]+\s+import\s+", re.M)


def block(key: str, *changes: tuple[str, str]) -> str:
    """Block ``key`` with its ``azureml`` imports taken from ``nbdeploy.aml`` and the
    given ``(old, new)`` changes, each of which must apply."""
    RUN.add(key)
    code = BLOCKS[key]
    for old, new in changes:
        assert old in code, f"{key}: {old!r} is not in the block"
        code = code.replace(old, new)
    return _AZUREML_IMPORT.sub(r"\1from nbdeploy.aml import ", code)


def entry_script(key: str, path: str | Path) -> Path:
    """Write entry script ``key`` to ``path`` as the page has it (a ``%%writefile``
    line is the notebook magic that writes the file), except ``import joblib``."""
    RUN.add(key)
    code = BLOCKS[key]
    if code.startswith("%%writefile"):
        code = code.split("\n", 1)[1]
    code = code.replace("from sklearn.externals import joblib", "import joblib")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(code, encoding="utf-8")
    return target


def run(code: str, ns: dict[str, Any]) -> str:
    """Execute ``code`` in ``ns``; return what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<seed block>", "exec"), ns)
    return out.getvalue()


def cloud_only(code: str, ns: dict[str, Any]) -> CloudOnlyError:
    """Run ``code``, which must stop at a cloud-only call with one clear error."""
    with pytest.raises(CloudOnlyError) as caught:
        run(code, ns)
    assert caught.value.hint, "a cloud-only error says what to use instead"
    return caught.value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A notebook's namespace: cwd a temporary folder, the default workspace in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBDEPLOY_HOME", str(tmp_path / "home"))
    ns: dict[str, Any] = {"__name__": "__seed__"}
    # Later blocks use Model as imported by an earlier one (000:133's import line).
    run("from nbdeploy.aml import Model", ns)
    yield ns
    ws = nbdeploy.Workspace()
    for service in nbdeploy.services(workspace=ws):
        service.delete()
    shutdown_warm_server(ws)


@pytest.fixture(scope="module")
def digits_model() -> Any:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    return LogisticRegression(max_iter=3000).fit(x[:, :10], y)


def _mnist_pixels() -> list[float]:
    """The handwritten 2 of page 004 (line 134), as the page spells it."""
    text = BLOCKS["004:134"]
    pixels = text[text.index('"[') + 2 : text.index(']"')]
    return [float(v) for v in re.findall(r"[0-9.]+", pixels)]


def _mnist_model() -> Any:
    """A stand-in for the page's MNIST model (no download here): a logistic regression
    that learned the page's image as a 2 and noise images as other digits."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    two = np.array(_mnist_pixels())
    others = rng.random((18, two.size)) * 0.3
    x = np.vstack([two, *others])
    y = [2] + [d for d in range(10) if d != 2] * 2
    return LogisticRegression(max_iter=500).fit(x, y)


def _conda_spec() -> str:
    # The YAML is not a python block; it is the page's conda file, copied as it is.
    return textwrap.dedent(
        """\
        name: project_environment
        dependencies:
          - python=3.6.2
          - scikit-learn=0.20.0
          - pip:
              # You must list azureml-defaults as a pip dependency
            - azureml-defaults>=1.0.45
            - inference-schema[numpy-support]
        """
    )


# --------------------------------------------------------------------------- registry


def test_register_list_download_and_environments(page: dict[str, Any], digits_model: Any) -> None:
    import joblib

    # 004:220 trains and saves the diabetes model; 004:235 and 003:66 register files.
    run(block("004:220"), page)
    page["ws"] = nbdeploy.Workspace()
    run(block("004:235"), page)
    model = page["model"]
    assert (model.name, model.version, model.tags) == (
        "sklearn_regression_model",
        1,
        {"area": "diabetes", "type": "regression"},
    )
    assert model.description == "Ridge regression model to predict diabetes"
    Path("outputs").mkdir()
    joblib.dump(digits_model, "outputs/sklearn_mnist_model.pkl")
    run(block("003:66"), page)
    assert page["model"].id == "sklearn_mnist:1"
    assert page["model"].tags == {"key": "0.1"}

    # 000:133: the ONNX model zoo download needs the internet; its register call runs
    # on a local ONNX file of the same name.
    _write_onnx("mnist/model.onnx")
    code = block("000:133")
    run(code[code.index("# Register model") :], page)
    assert page["model"].framework == "onnx"
    assert page["model"].tags == {"onnx": "demo"}

    # A folder with tags, properties and a description (the reference's signature).
    Path("my_model_folder").mkdir()
    Path("my_model_folder/weights.bin").write_bytes(b"\0" * 16)
    Path("my_model_folder/vocab.txt").write_text("a\nb\n")
    folder = nbdeploy.Model.register(
        workspace=page["ws"],
        model_path="my_model_folder",
        model_name="folder_model",
        tags={"area": "nlp"},
        properties={"accuracy": "0.9"},
        description="two files, one model",
    )
    assert folder.properties == {"accuracy": "0.9"}
    assert sorted(folder.model_version.files) == ["vocab.txt", "weights.bin"]
    listed = nbdeploy.Model.list(page["ws"], tags=[["area", "nlp"]])
    assert [m.id for m in listed] == ["folder_model:1"]
    same = nbdeploy.Model(page["ws"], name="folder_model", version=1)
    assert same.id == folder.id

    # 000:865: download the registered 'mymodel' into the current folder.
    nbdeploy.Model.register(
        page["ws"], model_path="outputs/sklearn_mnist_model.pkl", model_name="mymodel"
    )
    run(block("000:865"), page)
    assert Path(page["model_path"]).name == "sklearn_mnist_model.pkl"
    assert Path(page["model_path"]).is_file()

    # Environments: from a conda file (000:210, its closing parenthesis restored),
    # registered and read back (000:416), from requirements and CondaDependencies.
    Path("path-to-conda-specification-file").write_text(_conda_spec())
    run(
        block(
            "000:210",
            ("'path-to-conda-specification-file'\n", "'path-to-conda-specification-file')\n"),
        ),
        page,
    )
    assert page["myenv"].python_version == "3.6.2"
    fixed = ("'path-to-conda-specification-file'\n", "'path-to-conda-specification-file')\n")
    run(block("002:480", fixed), page)
    assert nbdeploy.Environment.get(workspace=page["ws"], name="myenv").version == "2"
    entry_script("003:406", "myenv.yml")  # a %%writefile cell: the notebook writes the file
    polish = nbdeploy.Environment.from_conda_specification("myenv", "myenv.yml")
    assert "inference-schema[numpy-support]" in polish.requirements
    Path("path-to-score.py").write_text("def init(): pass\ndef run(raw_data): return raw_data\n")
    run(block("000:416"), page)
    assert page["myenv"].version == "1"  # 000:416 asks for version '1'
    assert "inference-schema[numpy-support]" in page["myenv"].requirements
    assert page["inference_config"].environment == page["myenv"]
    # The pages' azureml-defaults is the Azure inference server: nbdeploy's replaces it.
    assert "azureml-defaults" not in _installed(page["myenv"].to_requirements_txt())

    Path("requirements.txt").write_text("scikit-learn\njoblib\n")
    env = nbdeploy.Environment.from_pip_requirements("pipenv", "requirements.txt")
    assert env.requirements == ("scikit-learn", "joblib")
    from nbdeploy.aml import CondaDependencies

    conda = nbdeploy.Environment("condaenv")
    conda.python.conda_dependencies = CondaDependencies.create(
        pip_packages=["inference-schema[numpy-support]"], conda_packages=["scikit-learn"]
    )
    assert conda.register(workspace=page["ws"]).version == "1"
    back = nbdeploy.Environment.get(workspace=page["ws"], name="condaenv")
    assert back.requirements == ("scikit-learn", "inference-schema[numpy-support]")
    assert [e.name for e in nbdeploy.Environment.list(page["ws"])] == ["condaenv", "myenv"]

    # 001:453 (older InferenceConfig: runtime + conda_file) and 001:440.
    Path("x/y").mkdir(parents=True)
    Path("x/y/score.py").write_text("def init(): pass\ndef run(raw_data): return raw_data\n")
    Path("env").mkdir()
    Path("env/myenv.yml").write_text(_conda_spec())
    run(block("001:453"), page)
    assert page["inference_config"].environment.python_version == "3.6.2"
    run(block("001:440"), page)
    assert page["inference_config"].environment.name == "myenv"

    # 004:193 reads the model file with pickle.
    with open("sklearn_mnist_model.pkl", "wb") as fh:
        pickle.dump(digits_model, fh)
    run(block("004:193"), page)
    assert page["logistic_model"].predict(np.zeros((1, 10))).shape == (1,)


def _installed(requirements_txt: str) -> str:
    return "\n".join(
        line for line in requirements_txt.splitlines() if line and not line.startswith("#")
    )


def _write_onnx(path: str) -> Path:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(1).random((20, 4)).astype(np.float32)
    model = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(to_onnx(model, x[:1], options={"zipmap": False}).SerializeToString())
    return target


# --------------------------------------------------------------------------- deploy locally


def test_deploy_locally_page(page: dict[str, Any]) -> None:
    """Page 004 ("run and deploy locally"), in its order."""
    ws = nbdeploy.Workspace()
    with open("sklearn_mnist_model.pkl", "wb") as fh:
        pickle.dump(_mnist_model(), fh)
    nbdeploy.Model.register(ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist")
    # The page's 'tutorial-env' (version 1) exists in its workspace: register it here.
    Path("tutorial-env.yml").write_text(_conda_spec())
    nbdeploy.Environment.from_conda_specification("tutorial-env", "tutorial-env.yml").register(ws)
    entry_script("004:63", "score.py")

    port = free_port()
    out = run(
        block(
            "004:102",
            # The page uses LocalWebservice without importing it.
            (
                "from azureml.core.webservice import Webservice",
                "from azureml.core.webservice import Webservice, LocalWebservice",
            ),
            ("port=6789", f"port={port}"),
        ),
        page,
    )
    assert "sklearn-mnist-local: Healthy" in out
    assert f"Scoring URI is : http://127.0.0.1:{port}/score" in out
    out = run(block("004:134", ("localhost:6789", f"localhost:{port}")), page)
    assert "Should be predicted as '2'" in out
    assert "prediction: [2]" in out

    error = cloud_only(block("004:202"), page)
    assert "Environment.build_local" in error.message


MULTI_MODEL_SCRIPT = """
import json
import os

import joblib
from azureml.core.model import Model


def init():
    global first, second, same_paths
{paths}
    first = joblib.load(first_model_path)
    second = joblib.load(second_model_path)
    same_paths = [
        first_model_path == Model.get_model_path(first_model_name, version=1),
        second_model_path == Model.get_model_path(second_model_name),
    ]


def run(raw_data):
    data = json.loads(raw_data)['data']
    return {{"first": first.predict(data).tolist(), "second": second.predict(data).tolist(),
            "same_paths": same_paths}}
"""


def test_how_and_where_to_deploy_locally(page: dict[str, Any], digits_model: Any) -> None:
    """Page 000 (and its translations): workspace, environment, deploy, call, manage."""
    import joblib

    Path(".file-path").mkdir()
    Path(".file-path/ws_config.json").write_text(
        json.dumps({"subscription_id": "0000", "resource_group": "rg", "workspace_name": "ws"})
    )
    run(block("000:49"), page)
    ws = page["ws"]
    assert Path(ws.path) == Path(os.environ["NBDEPLOY_HOME"]).resolve()

    joblib.dump(digits_model, "sklearn_mnist_model.pkl")
    page["model"] = nbdeploy.Model.register(
        ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist"
    )
    Path("path-to-conda-specification-file").write_text(_conda_spec())
    run(
        block(
            "000:210",
            ("'path-to-conda-specification-file'\n", "'path-to-conda-specification-file')\n"),
        ),
        page,
    )
    entry_script("000:311", "path-to-score.py")  # the page's own entry script
    run(block("000:416"), page)
    run(block("000:568"), page)

    port = free_port()
    out = run(block("000:582", ("port=8890", f"port={port}")), page)
    assert out.splitlines()[-1] == "Healthy"
    out = run(block("000:648"), page)
    rows = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]
    assert out.splitlines()[0] == "{'Content-Type': 'application/json'}"  # auth is off
    assert page["response"].status_code == 200
    assert page["response"].json() == digits_model.predict(np.array(rows)).tolist()
    out = run(block("003:452"), page)
    assert out.strip().endswith("/swagger.json")
    swagger = requests.get(page["service"].swagger_uri, timeout=30).json()
    assert swagger["definitions"]["ServiceInput"]["example"] == {"data": [rows[1]]}

    # Managing it, as the reference's Webservice API does.
    service = page["service"]
    assert "NBDEPLOY-READY" in service.get_logs() or "init() finished" in service.get_logs()
    same = nbdeploy.Webservice(ws, "myservice")
    assert same.scoring_uri == service.scoring_uri
    assert [s.name for s in nbdeploy.Webservice.list(ws)] == ["myservice"]
    assert nbdeploy.Webservice.list(ws, compute_type="ACI") == []
    second = nbdeploy.Model.register(
        ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist"
    )
    service.update(models=[second])
    service.reload()
    assert service.state == "Healthy"
    assert service.models == ("sklearn_mnist:2",)
    service.delete()
    assert nbdeploy.Webservice.list(ws) == []

    # Several models (000:266) found by the script with the paths of 000:278.
    for name in ("my_first_model", "my_second_model"):
        joblib.dump(digits_model, f"{name}.pkl")
    nbdeploy.Model.register(ws, model_path="my_first_model.pkl", model_name="my_first_model")
    for _ in range(2):
        nbdeploy.Model.register(ws, model_path="my_second_model.pkl", model_name="my_second_model")
    paths = textwrap.indent(BLOCKS["000:278"], "    ")
    RUN.add("000:278")
    Path("multi_score.py").write_text(MULTI_MODEL_SCRIPT.format(paths=paths))
    page["inference_config"] = nbdeploy.InferenceConfig(entry_script="multi_score.py")
    run(block("000:266"), page)
    answer = page["service"].run(json.dumps({"data": rows}))
    expected = digits_model.predict(np.array(rows)).tolist()
    assert answer == {"first": expected, "second": expected, "same_paths": [True, True]}
    page["service"].delete()


def test_keys_and_tokens(page: dict[str, Any], digits_model: Any) -> None:
    """000:648 with auth on: the header comes from get_keys() / get_token()."""
    import joblib

    ws = page["ws"] = nbdeploy.Workspace()
    joblib.dump(digits_model, "sklearn_mnist_model.pkl")
    model = nbdeploy.Model.register(ws, model_path="sklearn_mnist_model.pkl", model_name="m")
    Path("score.py").write_text(
        "import json, os, joblib\n"
        "def init():\n"
        "    global model\n"
        "    model = joblib.load(os.path.join(os.getenv('AZUREML_MODEL_DIR'), "
        "'sklearn_mnist_model.pkl'))\n"
        "def run(raw_data):\n"
        "    return model.predict(json.loads(raw_data)['data']).tolist()\n"
    )
    config = nbdeploy.InferenceConfig(entry_script="score.py")
    keyed = nbdeploy.LocalWebservice.deploy_configuration(port=0, auth_enabled=True)
    page["service"] = nbdeploy.Model.deploy(ws, "keyed", [model], config, keyed)
    out = run(block("000:648"), page)
    primary, _ = page["service"].get_keys()
    assert f"'Authorization': 'Bearer {primary}'" in out.splitlines()[0]
    assert page["response"].status_code == 200
    page["service"].regen_key("Primary")
    assert page["service"].get_keys()[0] != primary
    stale = requests.post(
        page["service"].scoring_uri,
        data=page["test_sample"],
        headers={"Authorization": f"Bearer {primary}"},
        timeout=30,
    )
    assert stale.status_code == 401
    tokens = nbdeploy.LocalWebservice.deploy_configuration(port=0, token_auth_enabled=True)
    page["service"] = nbdeploy.Model.deploy(ws, "tokened", [model], config, tokens)
    run(block("000:648"), page)
    assert page["response"].status_code == 200
    token, refresh_by = page["service"].get_token()
    assert token
    assert refresh_by is not None
    with pytest.raises(NbdeployError, match="has token auth; get_keys"):
        page["service"].get_keys()


# 000:1164 reads example.jpg with open(...).read(), leaving the file to the collector.
@pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_raw_http_and_plain_entry_scripts(page: dict[str, Any], digits_model: Any) -> None:
    """000:1125 / 000:1182 / 003:157 (@rawhttp) and 003:128 (undecorated run(raw_data))."""
    import joblib

    ws = page["ws"] = nbdeploy.Workspace()
    joblib.dump(digits_model, "sklearn_mnist_model.pkl")
    page["model"] = nbdeploy.Model.register(
        ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist"
    )
    Path("example.jpg").write_bytes(bytes(range(256)) * 8)
    for key, cors in (("000:1125", False), ("000:1182", True), ("003:157", False)):
        entry_script(key, f"raw_{key.replace(':', '_')}.py")
        config = nbdeploy.InferenceConfig(entry_script=f"raw_{key.replace(':', '_')}.py")
        service = nbdeploy.Model.deploy(ws, "rawsvc", [page["model"]], config, overwrite=True)
        run(block("000:1164", ("'<scoring-uri>'", repr(service.scoring_uri))), page)
        res = page["res"]
        assert res.status_code == 200
        data = Path("example.jpg").read_bytes()
        assert res.content == (data[::-1] if key == "003:157" else data)
        if cors:
            assert res.headers["Access-Control-Allow-Origin"] == "http://www.example.com"
        got = requests.get(service.scoring_uri + "?size=3", timeout=30)
        assert got.content == b"/score?size=3"
    logs = service.get_logs()
    assert "This is init()" in logs
    assert "This is run()" in logs

    entry_script("003:128", "score.py")
    config = nbdeploy.InferenceConfig(entry_script="score.py")
    page["service"] = nbdeploy.Model.deploy(ws, "aci-mnist-3", [page["model"]], config)
    out = run(block("003:483"), page)
    expected = digits_model.predict(np.array([range(1, 11), range(10, 0, -1)])).tolist()
    assert out.strip() == json.dumps(expected)  # run() returns json.dumps(...): a string

    # 003:461 finds the service, then stops at the image API (Azure images).
    error = cloud_only(block("003:461"), page)
    assert "Image(...)" in error.message


def test_pandas_entry_script(page: dict[str, Any], server_schema_package: str) -> None:
    """001:289: the Power BI style script, its model registered as 'model_name'."""
    import joblib
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame(
        {
            "input_name_1": [5.1, 1.0, 6.0, 0.5],
            "input_name_2": ["value2", "other", "value2", "other"],
            "input_name_3": [3, 1, 4, 0],
        }
    )
    encode = make_column_transformer((OneHotEncoder(), ["input_name_2"]), remainder="passthrough")
    model = make_pipeline(encode, LogisticRegression()).fit(frame, [1, 0, 1, 0])
    joblib.dump(model, "model_file.pkl")
    ws = nbdeploy.Workspace()
    registered = nbdeploy.Model.register(ws, model_path="model_file.pkl", model_name="model_name")
    entry_script("001:289", "score.py")
    config = nbdeploy.InferenceConfig(entry_script="score.py")
    service = nbdeploy.Model.deploy(ws, "powerbi", [registered], config)
    assert service.run(frame.to_dict(orient="records")) == model.predict(frame).tolist()
    swagger = requests.get(service.swagger_uri, timeout=30).json()
    example = swagger["definitions"]["ServiceInput"]["example"]["data"]
    assert example == [{"input_name_1": 5.1, "input_name_2": "value2", "input_name_3": 3}]
    with pytest.raises(NbdeployError, match="input_name_3"):
        service.run([{"input_name_1": 1.0, "input_name_2": "x"}])
    assert f"schema decorators from {server_schema_package}" in service.get_logs()


# --------------------------------------------------------------------------- no-code


def test_no_code_deployments(page: dict[str, Any]) -> None:
    """000:883 (TensorFlow: no built-in scorer here), 000:903 (ONNX), 000:925 + 000:943."""
    page["ws"] = nbdeploy.Workspace()
    Path("flowers_model/variables").mkdir(parents=True)
    Path("flowers_model/saved_model.pb").write_bytes(b"\0" * 8)
    with pytest.raises(ScoringScriptError, match="no built-in scoring script for model flowers"):
        run(block("000:883"), page)
    flowers = nbdeploy.Model(page["ws"], "flowers")
    assert (flowers.framework, flowers.framework_version) == ("tensorflow", "1.14.0")

    _write_onnx("mnist-model.onnx")
    run(block("000:903"), page)
    assert page["service"].state == "Healthy"
    answer = page["service"].run({"data": [[0.9, 0.1, 0.1, 0.1]]})
    # Two outputs (the built-in ONNX scorer names them): the label and its probabilities.
    assert answer["label"] == [1]
    assert np.asarray(answer["probabilities"]).shape == (1, 2)

    run(block("004:220"), page)  # writes ./sklearn_regression_model.pkl with joblib
    run(block("000:925"), page)
    assert page["model"].resource_configuration == nbdeploy.Resources(cpu=1, memory_gb=0.5)
    assert page["model"].framework == "sklearn"
    out = run(block("000:943"), page)
    prediction = json.loads(out.replace("'", '"')) if out.startswith("[") else None
    assert prediction is not None
    assert len(prediction) == 1
    assert 100 < prediction[0] < 300  # the diabetes progression of the page's row


# --------------------------------------------------------------------------- profile, package


def test_profile(page: dict[str, Any], digits_model: Any) -> None:
    """000:464 writes the requests file, then stops at the Azure datastore; 000:499
    profiles with that file in place of the Azure dataset."""
    import joblib

    ws = page["ws"] = nbdeploy.Workspace()
    joblib.dump(digits_model, "sklearn_mnist_model.pkl")
    registered = nbdeploy.Model.register(
        ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist"
    )
    error = cloud_only(block("000:464"), page)
    assert "Datastore.get_default" in error.message
    assert len(Path("sample_request_data.txt").read_text().splitlines()) == 100
    page["model_id"] = registered.id
    page["myenv"] = nbdeploy.Environment("myenv", requirements=("scikit-learn",))
    entry_script("000:311", "path-to-score.py")
    error = cloud_only(block("000:499"), page)
    assert "Dataset.get_by_name" in error.message
    out = run(
        block(
            "000:499",
            ("Dataset.get_by_name(workspace=ws, name='sample_request_data')", "file_name"),
        ),
        page,
    )
    details = page["details"]
    assert details["requestedCpu"] > 0
    assert details["requestedMemoryInGb"] > 0
    assert "Succeeded" in out or out == ""
    assert nbdeploy.services(workspace=ws) == []  # the temporary service is gone


def test_package_saved_for_docker_build(page: dict[str, Any], digits_model: Any) -> None:
    """000:1024: the Dockerfile and files are written; the Azure registry is cloud-only."""
    import joblib

    ws = page["ws"] = nbdeploy.Workspace()
    joblib.dump(digits_model, "sklearn_mnist_model.pkl")
    page["model"] = nbdeploy.Model.register(
        ws, model_path="sklearn_mnist_model.pkl", model_name="sklearn_mnist"
    )
    entry_script("000:311", "score.py")
    page["inference_config"] = nbdeploy.InferenceConfig(
        entry_script="score.py",
        environment=nbdeploy.Environment("pkg", requirements=("scikit-learn", "joblib")),
    )
    error = cloud_only(block("000:1024"), page)
    assert "get_container_registry" in error.message
    saved = Path("imagefiles")
    assert (saved / "Dockerfile").is_file()
    assert "scikit-learn" in (saved / "requirements.txt").read_text()
    manifest = json.loads((saved / "bundle" / "bundle.json").read_text())
    assert manifest["input_mode"] == "raw"  # Model.package: Azure ML's rule travels


# --------------------------------------------------------------------------- cloud only


def test_cloud_only_calls_say_what_to_use_instead(page: dict[str, Any]) -> None:
    page["ws"] = nbdeploy.Workspace()
    run(block("000:568"), page)  # the imports work
    # AksWebservice configures the Kubernetes target (tests/targets/kubernetes).
    aks = {**page, **_imports("AksWebservice")}
    run(block("003:271"), aks)
    assert aks["aks_config"].target == "kubernetes"
    assert aks["aks_config"].replica_range == (1, 4)
    assert aks["aks_config"].autoscale_target_utilization == 30
    for key in ("003:311", "003:335"):
        error = cloud_only(block(key), page)
        assert "AksCompute" in error.message
        assert "AksWebservice.deploy_configuration" in (error.hint or "")
    # An image and a cluster made in Azure (the blocks before, which stop there).
    error = cloud_only(block("003:361"), {**page, "image": None, "aks_target": None})
    assert "deploy_from_image" in error.message
    error = cloud_only(block("003:196"), {**page, **_imports("ContainerImage")})
    assert "ContainerImage.create" in error.message
    page["image"] = None
    error = cloud_only(block("003:563"), page)
    assert "Workspace.get_details" in error.message
    for call in (
        lambda: nbdeploy.Model.deploy(page["ws"], "x", [], deployment_target="aks"),
        lambda: nbdeploy.Webservice.deploy_from_image(page["ws"], "x", None),
    ):
        with pytest.raises(CloudOnlyError):
            call()
    with pytest.raises(AttributeError):  # not a reference name: an ordinary error
        _ = page["ws"].no_such_attribute


def _imports(*names: str) -> dict[str, Any]:
    import nbdeploy.aml

    return {name: getattr(nbdeploy.aml, name) for name in names}


def test_autoscale_arithmetic() -> None:
    ns: dict[str, Any] = {}
    run(block("003:284"), ns)
    assert ns["replicas"] == 286


# --------------------------------------------------------------------------- accounting


def _used_in(module: Path) -> set[str]:
    """The blocks a test module names ("page:line" strings), NOT_RUN left out."""
    text = module.read_text(encoding="utf-8")
    if "NOT_RUN: dict[str, str] = {" in text:
        start = text.index("NOT_RUN: dict[str, str] = {")
        text = text[:start] + text[text.index("\n}\n", start) :]
    return set(re.findall(r'"(\d{3}:\d+)"', text))


def test_every_block_is_accounted_for() -> None:
    """Every python block of the pages is run by this module or the Docker one
    (test_azure_docker.py), is the same code as one that is, or has a reason in
    NOT_RUN."""
    here = Path(__file__).parent
    ran = _used_in(here / "test_seed_snippets.py") | _used_in(here / "test_azure_docker.py")
    assert ran <= set(BLOCKS), f"unknown blocks: {sorted(ran - set(BLOCKS))}"
    known = ran | set(NOT_RUN)
    same_code = {k for k, code in BLOCKS.items() if any(BLOCKS[r] == code for r in known)}
    missing = sorted(set(BLOCKS) - known - same_code)
    assert not missing, f"blocks neither run nor explained: {missing}"
    assert not set(NOT_RUN) & ran, "a block is both run and listed as not run"
