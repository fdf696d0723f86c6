"""``binder/`` gives a working environment: built the way repo2docker builds it, from
``binder/`` alone, it runs every tutorial that needs neither Docker nor Ray.

repo2docker (mybinder.org) starts from its base environment (Python from
``binder/runtime.txt``, with JupyterLab 4, Notebook 7, ipywidgets 8 and Node.js),
copies the repository, runs ``pip install -r binder/requirements.txt`` from the
repository's root, then ``binder/postBuild``. This test does the same in a fresh
virtual environment, on a copy of the repository holding only what a clone holds
(``git ls-files``: no ``.venv``, no built extension), so nbdeploy's JupyterLab
extension is built from source as on Binder. It then executes the tutorials whose
metadata requires neither Docker nor Ray (Binder's environment has neither; the Ray
tutorials run only in a private network namespace) with
``scripts/execute_notebooks.py`` (nbclient), in a kernel of that environment.
Packages come from the package index through pip's cache, as for ``make setup``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from .scan import REPO

pytestmark = pytest.mark.integration

#: What a tutorial may require (``metadata.nbdeploy.requires``) that Binder lacks.
NOT_ON_BINDER = ("docker", "ray")

#: What repo2docker's base environment holds before binder/ is read (its
#: ``buildpacks/conda/environment.py-3.11.yml``; Node.js comes from this machine).
REPO2DOCKER_BASE = ["jupyterlab==4.*", "notebook==7.*", "ipywidgets==8.*", "jupyter_server==2.*"]


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, (
        f"{' '.join(command)} failed ({done.returncode}):\n{output[-4000:]}"
    )
    return output


def _clone(dest: Path) -> Path:
    """The repository's files as a clone of this tree would hold them."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    assert listing.returncode == 0, (
        f"`git ls-files` failed in {REPO}: the Binder test copies the repository as a clone "
        f"holds it, so it needs git and a git checkout\n{listing.stderr.decode()}"
    )
    for name in listing.stdout.decode().split("\0"):
        source = REPO / name
        if name and source.is_file():  # deleted but not yet committed: skipped
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _environment(venv: Path, tmp: Path) -> dict[str, str]:
    """The variables of a process in the Binder environment, kept apart from this
    machine's Jupyter settings and kernels."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VIRTUAL_ENV"))}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        JUPYTER_CONFIG_DIR=str(tmp / "jupyter-config"),
        JUPYTER_DATA_DIR=str(tmp / "jupyter-data"),
        PYTHONNOUSERSITE="1",
    )
    env.pop("NBDEPLOY_HOME", None)
    return env


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path``, emptied afterwards: the environment takes about 1 GB."""
    yield tmp_path
    for child in tmp_path.iterdir():
        shutil.rmtree(child, ignore_errors=True)


def test_binder_environment_runs_the_tutorials_without_docker_or_ray(scratch: Path) -> None:
    binder = REPO / "binder"
    assert (binder / "requirements.txt").is_file(), "binder/requirements.txt is missing"
    assert os.access(binder / "postBuild", os.X_OK), "binder/postBuild must be executable"
    runtime = (binder / "runtime.txt").read_text().strip()
    assert runtime == f"python-{sys.version_info.major}.{sys.version_info.minor}", (
        f"binder/runtime.txt asks for {runtime}; this test can only build it with the "
        f"Python it runs on ({sys.version.split()[0]})"
    )
    repo = _clone(scratch / "repo")
    assert not (repo / "nbdeploy" / "labextension").exists()
    venv = scratch / "binder-env"
    _run([sys.executable, "-m", "venv", str(venv)], scratch, dict(os.environ), 120)
    env = _environment(venv, scratch)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _run([*pip, *REPO2DOCKER_BASE], repo, env, 900)
    _run([*pip, "-r", "binder/requirements.txt"], repo, env, 1200)
    built = _run(["bash", "binder/postBuild"], repo, env, 300)
    assert "postBuild: nbdeploy" in built, built

    # The tutorials' kernel is the environment's own Python, with nbdeploy installed.
    probe = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from jupyter_client.manager import KernelManager as M; import nbdeploy; "
            "print(M(kernel_name='python3').format_kernel_cmd()[0]); print(nbdeploy.__file__)",
        ],
        repo / "notebooks",
        env,
        60,
    ).split()
    assert all(Path(os.path.abspath(p)).is_relative_to(venv) for p in probe[-2:]), probe

    out = scratch / "executed"
    out.mkdir()
    ran = _run(
        [
            str(venv / "bin" / "python"),
            "scripts/execute_notebooks.py",
            *(arg for need in NOT_ON_BINDER for arg in ("--skip-requiring", need)),
            "--output-dir",
            str(out),
        ],
        repo,
        env,
        1800,
    )
    tutorials = sorted((repo / "notebooks").glob("*.ipynb"))
    runnable = [
        p.name
        for p in tutorials
        if not set(NOT_ON_BINDER)
        & set(nbformat.read(p, 4).metadata.get("nbdeploy", {}).get("requires", []))
    ]
    assert len(runnable) >= 5, runnable
    assert sorted(p.name for p in out.glob("*.ipynb")) == runnable, ran
