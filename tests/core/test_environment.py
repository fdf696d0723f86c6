"""Environments: requirements and conda files, capture from the kernel, round-trips."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from pathlib import Path

import pytest

from nbdeploy.core import environment as environment_module
from nbdeploy.core.environment import Environment, imported_modules, parse_requirements
from nbdeploy.exceptions import EnvironmentSpecError, InvalidArgumentError

CONDA_YML = """\
# A realistic conda file, as `conda env export --from-history` and people write them.
name: diabetes-env
channels:
  - conda-forge
  - defaults
dependencies:
- python=3.11
- numpy=1.26.*          # arrays
- "scikit-learn>=1.3"
- conda-forge::pandas
- pip
- pip:
    - azureml-defaults
    - requests>=2.31 ; python_version >= "3.8"
    - --extra-index-url https://example.org/simple
variables:
  OMP_NUM_THREADS: 1
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_requirements_comments_continuations_markers_and_includes(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub" / "base.txt", "pandas==2.2.0\n-r more.txt\n")
    _write(tmp_path / "sub" / "more.txt", "requests\n")
    req = _write(
        tmp_path / "requirements.txt",
        "# header comment\n"
        "\n"
        "numpy>=1.24,<3  # inline comment\n"
        "scikit-learn\\\n"
        "==1.4.0\n"
        'tomli>=2; python_version < "3.11"\n'
        "-r sub/base.txt\n"
        "--index-url https://pypi.org/simple\n"
        "-i https://mirror.example/simple\n"
        "--extra-index-url=https://example.org/simple\n"
        "--pre\n"
        "-e git+https://github.com/x/y.git#egg=y\n"
        "pkg @ https://example.org/pkg-1.0-py3-none-any.whl\n"
        "https://example.org/other.tar.gz#egg=other\n"
        "hashed==1.0 --hash=sha256:abcd\n",
    )
    env = Environment.from_pip_requirements("prod", req)
    assert env.name == "prod"
    assert env.requirements == (
        "numpy>=1.24,<3",
        "scikit-learn==1.4.0",
        'tomli>=2; python_version < "3.11"',
        "pandas==2.2.0",
        "requests",
        "--index-url https://pypi.org/simple",
        "--index-url https://mirror.example/simple",
        "--extra-index-url https://example.org/simple",
        "--pre",
        "-e git+https://github.com/x/y.git#egg=y",
        "pkg @ https://example.org/pkg-1.0-py3-none-any.whl",
        "https://example.org/other.tar.gz#egg=other",
        "hashed==1.0 --hash=sha256:abcd",
    )
    text = env.to_requirements_txt()
    assert text.endswith("hashed==1.0 --hash=sha256:abcd\n")
    assert text.splitlines()[0].startswith("#")
    # What we write parses back to the same requirements.
    assert parse_requirements(text) == list(env.requirements)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param("-c constraints.txt\n", "constraints", id="constraints"),
        pytest.param("./local/pkg\n", "local path", id="local-path"),
        pytest.param("-e .\n", "editable local", id="editable-local"),
        pytest.param("--find-links ./wheels\n", "local --find-links", id="local-find-links"),
        pytest.param("--no-deps\n", "unsupported option '--no-deps'", id="unknown-option"),
        pytest.param("!!\n", "'!!' is not a requirement", id="garbage"),
        pytest.param("file:///tmp/x.whl\n", "local file requirement", id="file-url"),
        pytest.param("-r\n", "needs a file name", id="include-without-file"),
        pytest.param("-r missing.txt\n", "does not exist", id="include-missing"),
    ],
)
def test_bad_requirements_are_refused_with_file_and_line(
    tmp_path: Path, text: str, needle: str
) -> None:
    req = _write(tmp_path / "requirements.txt", "numpy\n" + text)
    with pytest.raises(EnvironmentSpecError) as info:
        Environment.from_pip_requirements("e", req)
    assert needle in str(info.value)
    if "does not exist" not in needle:
        assert f"{req}, line 2" in str(info.value)
    assert info.value.hint


def test_requirements_include_cycle_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "a.txt", "-r b.txt\n")
    _write(tmp_path / "b.txt", "-r a.txt\n")
    with pytest.raises(EnvironmentSpecError, match="cycle"):
        Environment.from_pip_requirements("e", tmp_path / "a.txt")


def test_missing_and_undecodable_requirements_files(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentSpecError, match="does not exist"):
        Environment.from_pip_requirements("e", tmp_path / "nope.txt")
    bad = tmp_path / "bin.txt"
    bad.write_bytes(b"\xff\xfe\x00numpy")
    with pytest.raises(EnvironmentSpecError, match="cannot read"):
        Environment.from_pip_requirements("e", bad)


def test_conda_specification(tmp_path: Path) -> None:
    env = Environment.from_conda_specification("d", _write(tmp_path / "env.yml", CONDA_YML))
    assert env.name == "d"
    assert env.python_version == "3.11"
    assert env.requirements == (
        "azureml-defaults",
        'requests>=2.31 ; python_version >= "3.8"',
        "--extra-index-url https://example.org/simple",
    )
    assert env.conda is not None
    assert env.conda["name"] == "diabetes-env"
    assert env.conda["channels"] == ["conda-forge", "defaults"]
    assert env.conda["dependencies"][1] == "numpy=1.26.*"
    assert env.conda["variables"] == {"OMP_NUM_THREADS": 1}
    assert Environment.from_dict(env.to_dict()) == env


def test_conda_subset_reader_agrees_with_pyyaml_on_conda_files() -> None:
    """The fallback reader (used when PyYAML is absent) reads conda files like PyYAML."""
    yaml = importlib.import_module("yaml")  # installed in the test environment
    texts = [
        CONDA_YML,
        "name: x\ndependencies:\n  - python==3.10.4\n  - pip:\n      - numpy\n",
        "channels: [conda-forge, defaults]\ndependencies: []\nprefix: /opt/conda/envs/x\n",
        "dependencies:\n  -   numpy\n  - 'quoted # not a comment'\n  - pip:\n    - a\n    - b\n",
        "name: 'q'\nvariables:\n  A: 'x y'\n  B: 1.5\n  C: true\n  D:\n",
    ]
    for text in texts:
        ours = environment_module._YamlSubset(text, "t.yml").parse()
        assert ours == yaml.safe_load(text), text


def test_conda_without_pyyaml_uses_the_subset_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` fail
    env = Environment.from_conda_specification("d", _write(tmp_path / "env.yml", CONDA_YML))
    assert env.python_version == "3.11"
    assert env.requirements[0] == "azureml-defaults"
    with pytest.raises(EnvironmentSpecError, match="line 2"):
        Environment.from_conda_specification(
            "d", _write(tmp_path / "bad.yml", "name: x\n   oops: 1\n")
        )
    with pytest.raises(EnvironmentSpecError, match="install PyYAML"):
        Environment.from_conda_specification(
            "d", _write(tmp_path / "block.yml", "name: |\n  multi\n")
        )


def test_conda_python_unpinned_uses_running_version(tmp_path: Path) -> None:
    path = _write(tmp_path / "env.yml", "dependencies:\n  - python\n  - numpy\n")
    env = Environment.from_conda_specification("d", path)
    assert env.python_version == "{}.{}.{}".format(*sys.version_info[:3])
    assert env.requirements == ()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param("- just\n- a list\n", "expected a mapping", id="not-a-mapping"),
        pytest.param("dependencies: numpy\n", "must be a list", id="deps-not-list"),
        pytest.param("dependencies:\n  - {conda: x}\n", "cannot read dependency", id="bad-dep"),
        pytest.param("dependencies:\n  - pip: numpy\n", "'pip' dependency", id="pip-not-list"),
        pytest.param("dependencies:\n  - python=latest\n", "Python version", id="bad-python"),
        pytest.param("dependencies: [a, b\n", "not valid YAML", id="bad-yaml"),
        pytest.param("dependencies:\n  - pip:\n    - ./local\n", "local path", id="pip-local-path"),
    ],
)
def test_bad_conda_files(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(EnvironmentSpecError, match=needle):
        Environment.from_conda_specification("d", _write(tmp_path / "env.yml", text))


def test_missing_conda_file(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentSpecError, match="does not exist"):
        Environment.from_conda_specification("d", tmp_path / "environment.yml")


def _pin(dist: str) -> str:
    return f"{dist}=={importlib.metadata.version(dist)}"


def test_capture_pins_exactly_what_the_script_imports(tmp_path: Path) -> None:
    script = _write(
        tmp_path / "score.py",
        "from __future__ import annotations\n"
        "import json, os.path\n"
        "import numpy as np\n"
        "from . import sibling\n"
        "from .pkg import thing\n"
        "import helpers\n"  # a local module next to the script
        "import nbdeploy\n"
        "def init():\n"
        "    global model\n"
        "    import pandas as pd\n"
        "    from sklearn.linear_model import Ridge\n"
        "    model = Ridge()\n"
        "def run(data):\n"
        "    return np.asarray(data).tolist()\n",
    )
    _write(tmp_path / "helpers.py", "X = 1\n")
    env = Environment.from_kernel(script=script)
    assert env.requirements == (_pin("numpy"), _pin("pandas"), _pin("scikit-learn"))
    assert not any(r.lower().startswith(("fastapi", "uvicorn")) for r in env.requirements)
    assert env.missing == ()
    assert env.name == "captured"
    assert env.python_version == "{}.{}.{}".format(*sys.version_info[:3])


def test_capture_frameworks_modules_and_missing() -> None:
    env = Environment.from_kernel(
        source="import json\nimport surely_not_installed_xyz.sub\n",
        frameworks=["onnx", "python"],
        modules=["pandas.io"],
    )
    assert env.requirements == (_pin("onnx"), _pin("onnxruntime"), _pin("pandas"))
    assert env.missing == ("surely_not_installed_xyz",)
    assert Environment.from_dict(env.to_dict()) == env


def test_capture_local_paths_and_argument_errors(tmp_path: Path) -> None:
    (tmp_path / "mypkg").mkdir()
    env = Environment.from_kernel(source="import mypkg\n", local_paths=[tmp_path])
    assert env.requirements == ()
    assert env.missing == ()
    with pytest.raises(InvalidArgumentError, match="not both"):
        Environment.from_kernel(script=tmp_path / "s.py", source="import numpy")
    with pytest.raises(EnvironmentSpecError, match="cannot read scoring script"):
        Environment.from_kernel(script=tmp_path / "nope.py")
    with pytest.raises(EnvironmentSpecError, match="line 1"):
        Environment.from_kernel(source="import (\n")


def test_imported_modules_order_and_relative_imports() -> None:
    src = "import a.b as x\nfrom c.d import e\nfrom . import f\nfrom .g import h\nimport a\n"
    assert imported_modules(src) == ["a", "c"]


def test_round_trip_and_validation() -> None:
    env = Environment(
        name="e",
        python_version="3.10",
        requirements=["numpy==2.0.0"],  # type: ignore[arg-type]
        conda={"name": "e", "dependencies": ["python=3.10"]},
        missing=("foo",),
    )
    assert env.requirements == ("numpy==2.0.0",)
    assert Environment.from_dict(env.to_dict()) == env
    assert Environment().python_version == "{}.{}.{}".format(*sys.version_info[:3])
    with pytest.raises(InvalidArgumentError, match="python_version"):
        Environment(python_version="three")
    with pytest.raises(InvalidArgumentError, match="list of lines"):
        Environment(requirements="numpy")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="invalid requirement"):
        Environment(requirements=("a\nb",))
    with pytest.raises(InvalidArgumentError, match="name"):
        Environment(name=" ")
    with pytest.raises(InvalidArgumentError, match="JSON-safe"):
        Environment(conda={"x": object()})
    with pytest.raises(EnvironmentSpecError, match="unknown environment fields"):
        Environment.from_dict({"name": "e", "pyhton_version": "3.11"})
    with pytest.raises(EnvironmentSpecError, match="python_version"):
        Environment.from_dict({"python_version": "x"})


def test_with_requirements_and_merge() -> None:
    env = Environment(python_version="3.11", requirements=("NumPy==2.0.0", "--pre"))
    assert env.with_requirements("numpy>=1", "fastapi", "--pre").requirements == (
        "NumPy==2.0.0",
        "--pre",
        "fastapi",
    )
    assert env.with_requirements("numpy>=1", override=True).requirements[0] == "numpy>=1"
    other = Environment(python_version="3.12", requirements=("pandas",), missing=("m",))
    merged = env.merge(other)
    assert merged.python_version == "3.11"
    assert merged.requirements == ("NumPy==2.0.0", "--pre", "pandas")
    assert merged.missing == ("m",)
