"""Build contexts without a Docker engine: the Dockerfile, the server wheel, the folder."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from nbdeploy.core.bundle import Bundle, InferenceConfig, build_bundle
from nbdeploy.core.environment import Environment
from nbdeploy.core.package import (
    USER_ID,
    BuildContext,
    DockerfileSpec,
    build_nbdeploy_wheel,
    check_image_reference,
    default_base_image,
    download_wheels,
    image_tag,
    manylinux_platforms,
    server_requirements,
    write_build_context,
)
from nbdeploy.core.workspace import Workspace
from nbdeploy.exceptions import EnvironmentSpecError, InvalidArgumentError

SCORE = """
import os

def init():
    global folder
    folder = os.environ["AZUREML_MODEL_DIR"]

def run(data):
    return {"tag": TAG, "data": data}
"""


def _bundle(
    workspace: Workspace, tmp_path: Path, tag: str = "v1", env: Environment | None = None
) -> Bundle:
    model = tmp_path / "model.bin"
    if not model.exists():
        model.write_bytes(b"\x00model-bytes" * 100)
    if not workspace.registry.list(name="m"):
        workspace.registry.register(model, "m")
    mv = workspace.registry.get("m")
    script = tmp_path / f"score-{tag}.py"
    script.write_text(textwrap.dedent(SCORE).replace("TAG", repr(tag)), encoding="utf-8")
    env = env or Environment("test", "3.11", ("scikit-learn==1.5.0",))
    return build_bundle(
        [mv],
        InferenceConfig(script, env),
        tmp_path / f"bundle-{tag}",
        settings={"service_name": "s"},
    )


def _spec(**values: object) -> DockerfileSpec:
    base = {"base_image": "python:3.11-slim", "nbdeploy_wheel": "nbdeploy-0.1.0-py3-none-any.whl"}
    return DockerfileSpec(**{**base, **values})  # type: ignore[arg-type]


def test_dockerfile_installs_dependencies_before_copying_model_and_script() -> None:
    lines = _spec(offline=True).render().splitlines()
    index = {name: i for i, name in enumerate(lines)}

    def at(prefix: str) -> int:
        return next(i for i, line in enumerate(lines) if line.startswith(prefix))

    assert at("ARG BASE_IMAGE=python:3.11-slim") < at("FROM ${BASE_IMAGE} AS build")
    assert at("COPY requirements.txt") < at("RUN python -m venv /opt/venv")
    assert at("COPY wheels/") < at("RUN python -m venv /opt/venv")
    final = lines.index("FROM ${BASE_IMAGE}")
    assert at("RUN python -m venv") < final
    # Final stage: venv, then the server (a new nbdeploy keeps the dependency layer),
    # then the models, then the script.
    order = [
        final,
        at("COPY --from=build /opt/venv /opt/venv"),
        at("COPY server/"),
        at("RUN pip install --no-cache-dir --disable-pip-version-check --no-index --no-deps"),
        at("COPY models/"),
        at("COPY bundle/"),
    ]
    assert order == sorted(order)
    assert at(f"USER {USER_ID}:{USER_ID}") > at("COPY bundle/")
    assert "EXPOSE 5001" in index
    assert lines[-1].startswith('CMD ["sh", "-c", "exec python -m nbdeploy.server /app/bundle')


def test_dockerfile_offline_flag_healthcheck_and_no_curl() -> None:
    offline = _spec(offline=True).render()
    online = _spec(offline=False).render()
    assert "--no-index --find-links /build/wheels" in offline
    assert "--no-index --find-links" not in online
    assert "--no-cache-dir" in offline
    assert "curl" not in offline
    assert "wget" not in offline
    health = next(
        line for line in offline.splitlines() if line.lstrip().startswith('CMD ["python"')
    )
    command = json.loads(health.strip()[len("CMD ") :])
    assert command[:2] == ["python", "-c"]
    assert "urllib.request.urlopen('http://127.0.0.1:%s/'" in command[2]
    compile(command[2], "<healthcheck>", "exec")  # valid Python


def test_dockerfile_cmd_reads_host_and_port_from_the_environment() -> None:
    cmd_line = _spec(port=6000).render().splitlines()[-1]
    command = json.loads(cmd_line[len("CMD ") :])
    assert command[:2] == ["sh", "-c"]
    script = command[2]
    assert script.startswith("exec ")
    for env, value in [({}, "0.0.0.0 6000"), ({"HOST": "127.0.0.1", "PORT": "7"}, "127.0.0.1 7"),
                       ({"NBDEPLOY_PORT": "9"}, "0.0.0.0 9")]:  # fmt: skip
        echo = script.replace("exec python -m nbdeploy.server /app/bundle --host", "echo").replace(
            "--port ", ""
        )
        out = subprocess.run(
            ["sh", "-c", echo], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == value


def test_dockerfile_labels_and_round_trip() -> None:
    spec = _spec(labels=(("nbdeploy.models", "m:1"),), port=8080, offline=True)
    assert DockerfileSpec.from_dict(spec.to_dict()) == spec
    assert '"nbdeploy.models"="m:1"' in spec.render()
    assert "EXPOSE 8080" in spec.render()


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        pytest.param({"base_image": ""}, "invalid base image", id="empty-base"),
        pytest.param({"base_image": "a b"}, "has spaces", id="space-base"),
        pytest.param({"port": 0}, "invalid port 0", id="port-0"),
        pytest.param({"port": True}, "invalid port True", id="port-bool"),
        pytest.param({"nbdeploy_wheel": "x/y.whl"}, "invalid nbdeploy wheel", id="wheel-path"),
        pytest.param({"labels": (("a b", "x"),)}, "invalid image label key", id="label"),
    ],
)
def test_dockerfile_spec_refuses_bad_values(values: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment):
        _spec(**values)


def test_default_base_image_follows_the_python_version() -> None:
    assert default_base_image("3.12.1") == "python:3.12-slim"
    with pytest.raises(InvalidArgumentError, match="invalid Python version"):
        default_base_image("three")


def test_server_wheel_is_reproducible_valid_and_lean(tmp_path: Path) -> None:
    first = build_nbdeploy_wheel(tmp_path / "a")
    second = build_nbdeploy_wheel(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()  # same source, same bytes
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        assert "nbdeploy/server/__main__.py" in names
        assert "nbdeploy/py.typed" in names
        assert not [n for n in names if "labextension" in n or "__pycache__" in n]
        dist = next(n.split("/")[0] for n in names if n.endswith(".dist-info/RECORD"))
        metadata = archive.read(f"{dist}/METADATA").decode()
        assert "Requires-Dist: starlette" in metadata
        assert "extra ==" not in metadata
        rows = list(csv.reader(io.StringIO(archive.read(f"{dist}/RECORD").decode())))
        for name, digest, size in rows:
            if name.endswith("RECORD"):
                continue
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode()
            assert int(size) == len(data)
        assert {r[0] for r in rows} == set(names)


def test_server_wheel_installs_and_runs_the_server_entry_point(tmp_path: Path) -> None:
    wheel = build_nbdeploy_wheel(tmp_path / "wheel")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(target), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", "import nbdeploy.server, sys; print(nbdeploy.server.__file__)"],
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert out.stdout.strip().startswith(str(target))


def test_server_requirements_are_pinned_to_this_kernel() -> None:
    import starlette

    pinned = server_requirements()
    assert f"starlette=={starlette.__version__}" in pinned
    assert any(r.startswith("uvicorn[standard]==") for r in pinned)
    assert any(r.startswith("starlette>=") for r in server_requirements(pin=False))


def test_build_context_layout_modes_and_settings(workspace: Workspace, tmp_path: Path) -> None:
    bundle = _bundle(workspace, tmp_path)
    for path in bundle.path.rglob("*"):  # the store's read-only files must become readable
        if path.is_file():
            path.chmod(0o600)
    ctx = write_build_context(
        bundle, tmp_path / "ctx", settings={"auth_enabled": True}, base_image="local/py:1"
    )
    names = sorted(p.name for p in ctx.path.iterdir())
    assert names == [
        ".dockerignore", "Dockerfile", "README.md", "bundle", "models", "requirements.txt",
        "server", "wheels",
    ]  # fmt: skip
    assert (ctx.path / "models" / "m" / "1" / "model.bin").read_bytes() == (
        bundle.model_dir / "model.bin"
    ).read_bytes()
    assert not (ctx.path / "bundle" / "models").exists()  # models only in their own layer
    assert (ctx.path / "bundle" / "score.py").is_file()
    for path in ctx.path.rglob("*"):
        mode = path.stat().st_mode
        assert mode & stat.S_IROTH, path  # the image's unprivileged user reads everything
    manifest = json.loads((ctx.path / "bundle" / "bundle.json").read_text())
    assert manifest["settings"] == {"service_name": "s", "auth_enabled": True}
    assert json.loads((bundle.path / "bundle.json").read_text())["settings"] == {
        "service_name": "s"
    }  # the bundle itself is untouched
    assert ctx.spec.base_image == "local/py:1"
    assert "ARG BASE_IMAGE=local/py:1" in ctx.dockerfile.read_text()
    assert (ctx.path / "server" / ctx.spec.nbdeploy_wheel).is_file()
    assert list(ctx.wheels_dir.iterdir()) == []
    labels = dict(ctx.spec.labels)
    assert labels["nbdeploy.models"] == "m:1"
    assert BuildContext.from_dict(ctx.to_dict()) == ctx


def test_requirements_keep_the_bundle_pins_over_the_servers(
    workspace: Workspace, tmp_path: Path
) -> None:
    env = Environment("test", "3.11", ("numpy==1.26.4", "scikit-learn==1.5.0"))
    ctx = write_build_context(_bundle(workspace, tmp_path, env=env), tmp_path / "ctx")
    lines = [
        line
        for line in ctx.requirements_txt.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert "numpy==1.26.4" in lines
    assert not [line for line in lines if line.startswith("numpy") and line != "numpy==1.26.4"]
    assert "scikit-learn==1.5.0" in lines
    assert any(line.startswith("starlette==") for line in lines)


def test_digest_is_stable_and_follows_the_script(workspace: Workspace, tmp_path: Path) -> None:
    one = write_build_context(_bundle(workspace, tmp_path, "v1"), tmp_path / "c1")
    again = write_build_context(Bundle.load(tmp_path / "bundle-v1"), tmp_path / "c2")
    other = write_build_context(_bundle(workspace, tmp_path, "v2"), tmp_path / "c3")
    offline = write_build_context(
        Bundle.load(tmp_path / "bundle-v1"), tmp_path / "c4", offline=True
    )
    assert one.digest == again.digest
    assert len({one.digest, other.digest, offline.digest}) == 3


def test_context_refuses_a_folder_that_is_not_empty(workspace: Workspace, tmp_path: Path) -> None:
    bundle = _bundle(workspace, tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(InvalidArgumentError, match="is not empty"):
        write_build_context(bundle, tmp_path / "busy")


def test_download_wheels_reports_pips_reason(tmp_path: Path) -> None:
    fake_pip = [
        sys.executable,
        "-c",
        "import sys; sys.stderr.write('ERROR: No matching distribution found for zzz\\n'); "
        "sys.exit(1)",
    ]
    (tmp_path / "r.txt").write_text("zzz\n")
    with pytest.raises(EnvironmentSpecError, match="No matching distribution found for zzz"):
        download_wheels([tmp_path / "r.txt"], tmp_path / "w", python_version="3.11", pip=fake_pip)


def test_download_wheels_asks_pip_for_the_images_python_and_platform(tmp_path: Path) -> None:
    record = tmp_path / "argv.json"
    fake_pip = [
        sys.executable,
        "-c",
        f"import json, sys; json.dump(sys.argv[1:], open({str(record)!r}, 'w'))",
    ]
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "a-1-py3-none-any.whl").write_bytes(b"")
    found = download_wheels(
        ["req.txt"], tmp_path / "w", python_version="3.12.4", pip=fake_pip,
        platforms=manylinux_platforms("x86_64", (2, 28)),
    )  # fmt: skip
    argv = json.loads(record.read_text())
    assert argv[0] == "download"
    assert "--only-binary=:all:" in argv
    assert argv[argv.index("--python-version") + 1] == "3.12"
    assert argv[argv.index("--abi") + 1] == "cp312"
    platforms = [argv[i + 1] for i, a in enumerate(argv) if a == "--platform"]
    assert platforms[0] == "manylinux_2_28_x86_64"
    assert "manylinux2014_x86_64" in platforms
    assert "manylinux_2_29_x86_64" not in platforms
    assert found == [tmp_path / "w" / "a-1-py3-none-any.whl"]


def test_image_names() -> None:
    assert image_tag("My_Svc.v2", "sha256:" + "c" * 64) == "nbdeploy/my_svc.v2:cccccccccccccccc"
    assert check_image_reference("localhost:5000/team/iris:1.0") == "localhost:5000/team/iris:1.0"
    for bad in ["Iris", "iris:bad tag", "/x", ""]:
        with pytest.raises(InvalidArgumentError):
            check_image_reference(bad)
