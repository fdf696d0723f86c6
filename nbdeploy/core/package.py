"""Packages: a bundle turned into a Docker build context anyone can read, edit and build.

A build context is a plain folder::

    <context>/
      Dockerfile          multi-stage: a venv from wheels, then venv + bundle, non-root
      .dockerignore
      README.md           how to build and run it by hand
      requirements.txt    what the image installs next to the scoring server
      wheels/             every dependency's wheel (offline builds; else empty)
      server/             nbdeploy-<version>-py3-none-any.whl: the scoring server, zipped
                          here from the installed source (no build backend, no network)
      models/<name>/<version>/<files>     the model files (their own image layer)
      bundle/             the rest of the bundle: bundle.json, score.py, src/, requirements.txt

``docker build -t myimage <context>`` then ``docker run -p 6789:5001 myimage`` serves
``http://localhost:6789/score``. The Dockerfile copies ``requirements.txt`` and
``wheels/`` before anything else, so the dependency layer is rebuilt only when the
dependencies change — never for a new scoring script, model version or nbdeploy
release — and the final image stacks the venv, the scoring server (a small layer of
its own), the models and the scoring script, most stable first.

Offline builds (``DockerfileSpec(offline=True)`` + :func:`download_wheels`) put every
wheel into ``wheels/`` on the host, with the host's pip configuration, for the image's
Python version and platform; the image then installs with ``--no-index`` and builds
with ``docker build --network none``.

This module only writes files and runs ``pip`` on the host: it imports the standard
library only (no Docker SDK); building images is the Docker target's job
(:mod:`nbdeploy.targets.docker`).

Examples
--------
>>> spec = DockerfileSpec("python:3.11-slim", "nbdeploy-0.1-py3-none-any.whl")
>>> "FROM ${BASE_IMAGE} AS build" in spec.render()
True
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import json
import os
import platform as _platform
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from nbdeploy.core.hashing import hash_files
from nbdeploy.exceptions import EnvironmentSpecError, InvalidArgumentError, NbdeployError

if TYPE_CHECKING:
    from nbdeploy.core.bundle import Bundle

__all__ = [
    "APP_BUNDLE",
    "DEFAULT_PORT",
    "USER_ID",
    "VENV",
    "BuildContext",
    "DockerfileSpec",
    "build_nbdeploy_wheel",
    "check_image_reference",
    "default_base_image",
    "download_wheels",
    "image_tag",
    "manylinux_platforms",
    "nbdeploy_wheel_name",
    "server_requirements",
    "write_build_context",
]

#: The port the scoring server listens on inside the image (unless ``PORT`` says otherwise).
DEFAULT_PORT = 5001
#: Where the virtual environment lives in the image.
VENV = "/opt/venv"
#: Where the bundle lives in the image.
APP_BUNDLE = "/app/bundle"
#: The unprivileged user (and group) the server runs as; numeric, so no ``useradd``
#: is needed in the base image.
USER_ID = 10001

DOCKERFILE = "Dockerfile"
REQUIREMENTS = "requirements.txt"
WHEELS_DIR = "wheels"
SERVER_DIR = "server"
MODELS_DIR = "models"
BUNDLE_DIR = "bundle"

#: glibc of Debian bookworm, the base of ``python:3.11-slim`` (and of the local image
#: the tests build): wheels for this glibc or older run in the image.
DEFAULT_GLIBC = (2, 36)

_NAME_RE = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?")
_IMAGE_NAME_RE = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".DS_Store")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _short_python(version: str) -> str:
    """``"3.11.7"`` → ``"3.11"``; refuses what is not a Python version."""
    parts = str(version).split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise InvalidArgumentError(
            f"invalid Python version {version!r} for the image",
            hint="use a version such as '3.11'",
        )
    return f"{parts[0]}.{parts[1]}"


def default_base_image(python_version: str) -> str:
    """The official slim image for the bundle's Python version.

    Examples
    --------
    >>> default_base_image("3.11.7")
    'python:3.11-slim'
    """
    return f"python:{_short_python(python_version)}-slim"


@dataclass(frozen=True)
class DockerfileSpec:
    """What the generated ``Dockerfile`` says.

    Parameters
    ----------
    base_image:
        The default of the ``BASE_IMAGE`` build argument (``--build-arg
        BASE_IMAGE=...`` overrides it at build time). It must have Python and its
        ``venv`` module; Debian's and the official ``python:*-slim`` images do.
    nbdeploy_wheel:
        The file name of the scoring server's wheel in ``server/``.
    port:
        The port the server listens on inside the container (``EXPOSE``).
    offline:
        Install with ``--no-index`` from ``wheels/`` only (they must all be there);
        otherwise pip may also use the package index during the build.
    labels:
        Image labels, as ``(key, value)`` pairs.

    Examples
    --------
    >>> spec = DockerfileSpec("python:3.11-slim", "nbdeploy-0.1.0-py3-none-any.whl", offline=True)
    >>> DockerfileSpec.from_dict(spec.to_dict()) == spec
    True
    >>> "--no-index" in spec.render()
    True
    """

    base_image: str
    nbdeploy_wheel: str
    port: int = DEFAULT_PORT
    offline: bool = False
    labels: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.base_image, str) or not self.base_image.strip():
            raise InvalidArgumentError(
                f"invalid base image {self.base_image!r}",
                hint="name an image with Python, e.g. 'python:3.11-slim'",
            )
        if any(c.isspace() for c in self.base_image):
            raise InvalidArgumentError(f"invalid base image {self.base_image!r}: it has spaces")
        wheel = self.nbdeploy_wheel
        if not isinstance(wheel, str) or "/" in wheel or not wheel.endswith(".whl"):
            raise InvalidArgumentError(
                f"invalid nbdeploy wheel name {wheel!r}",
                hint="give the file name of a wheel in wheels/",
            )
        if (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not 1 <= self.port <= 65535
        ):
            raise InvalidArgumentError(
                f"invalid port {self.port!r} for the image",
                hint="use a port between 1 and 65535, e.g. 5001",
            )
        labels = tuple((str(k), str(v)) for k, v in self.labels)
        for key, _ in labels:
            if not key or any(c.isspace() or c in "\"'=" for c in key):
                raise InvalidArgumentError(f"invalid image label key {key!r}")
        object.__setattr__(self, "labels", labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_image": self.base_image,
            "nbdeploy_wheel": self.nbdeploy_wheel,
            "port": self.port,
            "offline": self.offline,
            "labels": [list(pair) for pair in self.labels],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DockerfileSpec:
        known = {"base_image", "nbdeploy_wheel", "port", "offline", "labels"}
        unknown = set(data) - known
        if unknown:
            raise InvalidArgumentError(
                f"unknown Dockerfile settings {sorted(unknown)}",
                hint=f"known settings: {', '.join(sorted(known))}",
            )
        values = dict(data)
        values["labels"] = tuple(tuple(pair) for pair in values.get("labels", ()))
        return cls(**values)

    def render(self) -> str:
        """The text of the ``Dockerfile``.

        Examples
        --------
        >>> text = DockerfileSpec("python:3.11-slim", "nbdeploy-0.1.0-py3-none-any.whl").render()
        >>> text.splitlines()[-1].startswith("CMD [")
        True
        """
        lines = [*self._header(), *self._build_stage(), *self._final_stage()]
        return "\n".join(lines) + "\n"

    def _header(self) -> list[str]:
        """How to build and run the image, and the base image argument."""
        build_hint = (
            "docker build --network none --build-arg BASE_IMAGE=<local image> -t myimage ."
            if self.offline
            else "docker build -t myimage ."
        )
        return [
            "# A scoring service made by nbdeploy: python -m nbdeploy.server serving bundle/.",
            f"#   build: {build_hint}",
            f"#   run:   docker run -p 6789:{self.port} myimage   ->  http://localhost:6789/score",
            "# HOST and PORT (or NBDEPLOY_HOST / NBDEPLOY_PORT) choose the address the server",
            f"# binds inside the container (default 0.0.0.0:{self.port}).",
            f"ARG BASE_IMAGE={self.base_image}",
            "",
        ]

    def _build_stage(self) -> list[str]:
        """The stage that installs the dependencies into a venv."""
        index = "--no-index " if self.offline else ""
        wheels = f"/build/{WHEELS_DIR}"
        return [
            "# Build stage: a virtual environment with the scoring server and the model's",
            "# packages. Only requirements.txt and wheels/ are copied here, so this stage is",
            "# rebuilt when dependencies change, not when the model or the script does.",
            "FROM ${BASE_IMAGE} AS build",
            "ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1",
            f"COPY {REQUIREMENTS} /build/{REQUIREMENTS}",
            f"COPY {WHEELS_DIR}/ {wheels}/",
            f"RUN python -m venv {VENV} \\",
            f" && {VENV}/bin/pip install --no-cache-dir {index}--find-links {wheels} \\",
            f"        -r /build/{REQUIREMENTS}",
            "",
        ]

    def _final_stage(self) -> list[str]:
        """The image itself: venv, server, models, bundle, then how it runs."""
        lines = [
            "# Final stage: the venv, the scoring server, the models, then the scoring script",
            "# and settings, each in its own layer, most stable first (a new nbdeploy only",
            "# rebuilds its small layer); no compilers, no build files, not root.",
            "FROM ${BASE_IMAGE}",
            f"ENV PATH={VENV}/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp",
            f"COPY --from=build {VENV} {VENV}",
            f"COPY {SERVER_DIR}/ /tmp/nbdeploy-{SERVER_DIR}/",
            "RUN pip install --no-cache-dir --disable-pip-version-check --no-index --no-deps \\",
            f"        /tmp/nbdeploy-{SERVER_DIR}/{self.nbdeploy_wheel} \\",
            f" && rm -rf /tmp/nbdeploy-{SERVER_DIR}",
            f"COPY {MODELS_DIR}/ {APP_BUNDLE}/{MODELS_DIR}/",
            f"COPY {BUNDLE_DIR}/ {APP_BUNDLE}/",
            f"WORKDIR {APP_BUNDLE}",
            f"USER {USER_ID}:{USER_ID}",
            f"EXPOSE {self.port}",
            "HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \\",
            f"    CMD {json.dumps(['python', '-c', self._health_probe()])}",
        ]
        labels = "".join(
            f" \\\n    {json.dumps(key)}={json.dumps(value)}" for key, value in self.labels
        )
        if labels:
            lines.append(f"LABEL{labels}")
        lines.append(f"CMD {json.dumps(['sh', '-c', self._server_command()])}")
        return lines

    def _health_probe(self) -> str:
        """Python code that fails unless the server answers ``GET /`` on its port."""
        return (
            "import os, urllib.request; "
            "port = os.environ.get('PORT') or os.environ.get('NBDEPLOY_PORT') or "
            f"'{self.port}'; "
            "urllib.request.urlopen('http://127.0.0.1:%s/' % port, timeout=3)"
        )

    def _server_command(self) -> str:
        """The shell command that starts the server on ``HOST``/``PORT`` (or defaults)."""
        return (
            f"exec python -m nbdeploy.server {APP_BUNDLE} "
            f'--host "${{HOST:-${{NBDEPLOY_HOST:-0.0.0.0}}}}" '
            f'--port "${{PORT:-${{NBDEPLOY_PORT:-{self.port}}}}}"'
        )


def _nbdeploy_version() -> str:
    try:
        return importlib.metadata.version("nbdeploy")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "0.0.0"


def nbdeploy_wheel_name() -> str:
    """The file name :func:`build_nbdeploy_wheel` gives the wheel.

    Examples
    --------
    >>> nbdeploy_wheel_name().endswith("-py3-none-any.whl")
    True
    """
    return f"nbdeploy-{_nbdeploy_version()}-py3-none-any.whl"


def _base_requirements() -> list[str]:
    """nbdeploy's own requirements without extras (what the scoring server needs)."""
    try:
        declared = importlib.metadata.requires("nbdeploy") or []
    except importlib.metadata.PackageNotFoundError:
        declared = []
    kept = [r for r in declared if "extra ==" not in r.replace('"', "'").replace("  ", " ")]
    return kept or [
        "numpy>=1.24",
        "pandas>=2.0",
        "cloudpickle>=3.0",
        "orjson>=3.9",
        "starlette>=0.37",
        "uvicorn[standard]>=0.29",
        "requests>=2.31",
        "psutil>=5.9",
        "tomli>=2.0; python_version < '3.11'",
    ]


def server_requirements(*, pin: bool = True) -> list[str]:
    """The scoring server's requirements, pinned to this kernel's installed versions.

    Pinning makes the image run the versions the local target ran (and the tests
    passed with); a requirement not installed here keeps its range.

    Examples
    --------
    >>> any(r.startswith("starlette") for r in server_requirements())
    True
    """
    result = []
    for requirement in _base_requirements():
        spec, _, marker = requirement.partition(";")
        match = _NAME_RE.match(spec)
        if not pin or match is None:
            result.append(requirement)
            continue
        name, extras = match.group(1), match.group(2) or ""
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            result.append(requirement)
            continue
        pinned = f"{name}{extras}=={version}"
        result.append(f"{pinned}; {marker.strip()}" if marker.strip() else pinned)
    return result


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def _package_files(source: Path) -> list[tuple[str, Path]]:
    """(archive name, file) for every file of the nbdeploy package the image needs."""
    files = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if not path.is_file() or "__pycache__" in rel.parts or path.suffix in {".pyc", ".pyo"}:
            continue
        if rel.parts[0] == "labextension":  # the JupyterLab extension: no use in a server
            continue
        files.append(((PurePosixPath("nbdeploy") / rel.as_posix()).as_posix(), path))
    return files


def build_nbdeploy_wheel(dest_dir: str | os.PathLike[str], source: Path | None = None) -> Path:
    """Write a wheel of the nbdeploy package this kernel runs into ``dest_dir``.

    No build backend, no network: the wheel is zipped from the installed source
    (without the JupyterLab extension's assets), with nbdeploy's own requirements as
    its dependencies. Entries are sorted and dated 1980-01-01, so the same source gives
    the same bytes — and Docker reuses the layer that installs it.

    Returns
    -------
    Path
        The wheel file.

    Examples
    --------
    >>> import tempfile
    >>> build_nbdeploy_wheel(tempfile.mkdtemp()).name.startswith("nbdeploy-")
    True
    """
    root = Path(source) if source is not None else Path(__file__).resolve().parents[1]
    if not (root / "__init__.py").is_file():
        raise NbdeployError(f"cannot find nbdeploy's source in {str(root)!r} to package it")
    version = _nbdeploy_version()
    dist_info = f"nbdeploy-{version}.dist-info"
    metadata = "\n".join(
        [
            "Metadata-Version: 2.1",
            "Name: nbdeploy",
            f"Version: {version}",
            "Summary: nbdeploy scoring server (packaged by nbdeploy for a container image)",
            "Requires-Python: >=3.10",
            *(f"Requires-Dist: {r}" for r in _base_requirements()),
            "",
        ]
    )
    wheel_meta = (
        "Wheel-Version: 1.0\nGenerator: nbdeploy\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    entries: list[tuple[str, bytes]] = [
        (name, path.read_bytes()) for name, path in _package_files(root)
    ]
    entries += [
        (f"{dist_info}/METADATA", metadata.encode("utf-8")),
        (f"{dist_info}/WHEEL", wheel_meta.encode("utf-8")),
        (f"{dist_info}/top_level.txt", b"nbdeploy\n"),
    ]
    record = io.StringIO()
    for name, data in entries:
        record.write(f"{name},{_record_hash(data)},{len(data)}\n")
    record.write(f"{dist_info}/RECORD,,\n")
    entries.append((f"{dist_info}/RECORD", record.getvalue().encode("utf-8")))

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / nbdeploy_wheel_name()
    tmp = wheel.with_suffix(".whl.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    os.replace(tmp, wheel)
    return wheel


def manylinux_platforms(
    machine: str | None = None, glibc: tuple[int, int] = DEFAULT_GLIBC
) -> list[str]:
    """pip ``--platform`` tags for a glibc Linux image: every manylinux up to ``glibc``.

    pip does not widen one ``--platform`` to the older manylinux tags, so all are given.

    Examples
    --------
    >>> manylinux_platforms("x86_64", (2, 17))[:2]
    ['manylinux_2_17_x86_64', 'manylinux_2_16_x86_64']
    >>> "manylinux2014_x86_64" in manylinux_platforms("x86_64")
    True
    """
    arch = machine or _platform.machine() or "x86_64"
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch.lower(), arch.lower())
    major, minor = glibc
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 4, -1)]
    legacy = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
    tags += [f"{name}_{arch}" for (ma, mi), name in legacy.items() if (ma, mi) <= glibc]
    return tags


def download_wheels(
    requirement_files: Sequence[str | os.PathLike[str]],
    dest: str | os.PathLike[str],
    *,
    python_version: str,
    platforms: Sequence[str] | None = None,
    extra: Sequence[str | os.PathLike[str]] = (),
    pip: Sequence[str] | None = None,
    timeout: float = 900.0,
) -> list[Path]:
    """Download wheels for an image's Python and platform into ``dest`` (on the host).

    Runs ``pip download --only-binary=:all:`` with this machine's pip configuration
    (its indexes and find-links), for ``python_version`` and the manylinux
    ``platforms``, so the image installs them with ``--no-index`` and needs no network.

    Parameters
    ----------
    requirement_files:
        ``requirements.txt`` files (``-r``).
    dest:
        The wheel folder (``<context>/wheels``).
    python_version:
        The image's Python (``"3.11"``).
    platforms:
        pip ``--platform`` tags; default :func:`manylinux_platforms` of this machine.
    extra:
        More requirements or wheel files (e.g. the nbdeploy wheel).
    pip:
        The pip command (default: this interpreter's ``python -m pip``).

    Returns
    -------
    list of Path
        The wheels now in ``dest``.

    Raises
    ------
    EnvironmentSpecError
        pip could not find a wheel for a requirement (the message has pip's reason).

    Examples
    --------
    >>> download_wheels(["requirements.txt"], "ctx/wheels", python_version="3.11")  # doctest: +SKIP
    """
    folder = Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    short = _short_python(python_version)
    command = [*(pip or [sys.executable, "-m", "pip"]), "download", "--quiet"]
    command += ["--dest", str(folder), "--only-binary=:all:", "--python-version", short]
    command += ["--implementation", "cp", "--abi", "cp" + short.replace(".", "")]
    for tag in platforms or manylinux_platforms():
        command += ["--platform", tag]
    for file in requirement_files:
        command += ["-r", str(file)]
    command += [str(e) for e in extra]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentSpecError(
            f"could not run pip to download wheels: {exc}",
            hint="check that pip works in this kernel: python -m pip --version",
        ) from None
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
        reason = "; ".join(errors) or result.stderr.strip()[-2000:] or "no output"
        raise EnvironmentSpecError(
            f"pip could not download wheels for Python {short} ({reason})",
            hint="every requirement needs a wheel for the image's Python and platform; "
            "pin a version that has one, or build without offline=True (the image then "
            "installs from the package index during the build)",
        )
    return sorted(folder.glob("*.whl"))


def _requirement_names(lines: Iterable[str]) -> set[str]:
    names = set()
    for line in lines:
        text = line.strip()
        if not text or text.startswith(("#", "-")) or "://" in text.split(";")[0]:
            continue
        match = _NAME_RE.match(text)
        if match:
            names.add(_canonical(match.group(1)))
    return names


def _context_requirements(bundle_requirements: str, pin: bool) -> str:
    """The image's requirements: the bundle's, plus the server's where the bundle is silent."""
    bundle_lines = bundle_requirements.splitlines()
    named = _requirement_names(bundle_lines)
    server = [
        r
        for r in server_requirements(pin=pin)
        if (m := _NAME_RE.match(r)) is None or _canonical(m.group(1)) not in named
    ]
    parts = [
        "# Installed into the image's virtual environment with the scoring server",
        "# (wheels/nbdeploy-*.whl). Edit freely; the Dockerfile installs this file first,",
        "# so changing it rebuilds only the dependency layer.",
        "#",
        "# The scoring server's packages (pinned to the kernel that made this package):",
        *server,
        "#",
        "# The model's environment (bundle/requirements.txt, without its comments, so",
        "# equal requirements give an equal file and Docker reuses the layer):",
        *[line for line in bundle_lines if line.strip() and not line.lstrip().startswith("#")],
    ]
    return "\n".join(parts) + "\n"


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy files (not links into the artifact store) and make them readable by all,
    so the unprivileged user of the image can read them."""
    shutil.copytree(src, dst, ignore=_IGNORED, dirs_exist_ok=True)
    for path in [dst, *dst.rglob("*")]:
        if path.is_symlink():
            continue
        path.chmod(0o755 if path.is_dir() else 0o644)


def _readme(spec: DockerfileSpec, models: Sequence[str]) -> str:
    wheels_note = (
        "All wheels are here: the build needs no network (`--no-index`)."
        if spec.offline
        else "pip uses the package index during the build."
    )
    build = (
        "docker build --network none --build-arg BASE_IMAGE=python:3.11-slim -t myimage ."
        if spec.offline
        else "docker build -t myimage ."
    )
    return f"""# nbdeploy package

A Docker build context for a scoring service of {", ".join(models) or "no model"}.

    {build}
    docker run -p 6789:{spec.port} myimage
    curl -X POST http://localhost:6789/score \\
         -H 'Content-Type: application/json' -d '{{"data": ...}}'

`GET /` answers `Healthy` once `init()` ran; `GET /swagger.json`, `/openapi.json` and
`/docs` document the service. The base image is a build argument (`--build-arg
BASE_IMAGE=...`, default `{spec.base_image}`); it needs Python and its `venv` module.

- `requirements.txt` and `wheels/`: installed into `/opt/venv` in a build stage.
  {wheels_note}
- `server/`: the nbdeploy scoring server's wheel, installed next (`--no-deps`).
- `models/`: the model files; `bundle/`: the scoring script (`score.py`), its
  manifest (`bundle.json`) and source folder. Both go to `/app/bundle` in the image.
- The server runs as user {USER_ID}, listens on `$HOST:$PORT` (default
  `0.0.0.0:{spec.port}`), and stops gracefully on SIGTERM.
"""


@dataclass(frozen=True)
class BuildContext:
    """A written build context (see the module docstring).

    ``digest`` covers every file written (models included) except dependency wheels
    added later, so equal bundles and settings give equal digests — the Docker
    target names images by it and reuses an image that already exists.

    Examples
    --------
    >>> spec = DockerfileSpec("python:3.11-slim", "nbdeploy-0.1.0-py3-none-any.whl")
    >>> ctx = BuildContext(Path("/tmp/ctx"), spec, "sha256:" + "0" * 64, "3.11", ("m:1",))
    >>> BuildContext.from_dict(ctx.to_dict()) == ctx
    True
    """

    path: Path
    spec: DockerfileSpec
    digest: str
    python_version: str
    models: tuple[str, ...] = field(default=())

    @property
    def dockerfile(self) -> Path:
        return self.path / DOCKERFILE

    @property
    def wheels_dir(self) -> Path:
        return self.path / WHEELS_DIR

    @property
    def requirements_txt(self) -> Path:
        return self.path / REQUIREMENTS

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "spec": self.spec.to_dict(),
            "digest": self.digest,
            "python_version": self.python_version,
            "models": list(self.models),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildContext:
        return cls(
            path=Path(data["path"]),
            spec=DockerfileSpec.from_dict(data["spec"]),
            digest=str(data["digest"]),
            python_version=str(data["python_version"]),
            models=tuple(data.get("models", ())),
        )

    def download_wheels(
        self, *, platforms: Sequence[str] | None = None, pip: Sequence[str] | None = None
    ) -> list[Path]:
        """Put every dependency's wheel into ``wheels/`` (for an offline build)."""
        return download_wheels(
            [self.requirements_txt],
            self.wheels_dir,
            python_version=self.python_version,
            platforms=platforms,
            pip=pip,
        )


def _check_context_dest(dest: Path) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise InvalidArgumentError(
            f"package folder {str(dest)!r} exists and is not a folder",
            hint="choose another folder",
        )
    if dest.is_dir() and any(dest.iterdir()):
        raise InvalidArgumentError(
            f"package folder {str(dest)!r} exists and is not empty",
            hint="choose a new folder, or delete the old package first",
        )


def write_build_context(
    bundle: Bundle,
    dest: str | os.PathLike[str],
    *,
    base_image: str | None = None,
    port: int = DEFAULT_PORT,
    offline: bool = False,
    settings: Mapping[str, Any] | None = None,
    pin_server: bool = True,
    labels: Mapping[str, str] | None = None,
) -> BuildContext:
    """Write a Docker build context for ``bundle`` into the new folder ``dest``.

    Parameters
    ----------
    bundle:
        The bundle to serve (left untouched: its files are copied).
    dest:
        The new context folder; must not exist or be empty.
    base_image:
        Default of the ``BASE_IMAGE`` build argument; ``python:<bundle's
        Python>-slim`` when ``None``.
    port:
        The server's port inside the container.
    offline:
        Write a Dockerfile that installs with ``--no-index`` (call
        :meth:`BuildContext.download_wheels` to fill ``wheels/``).
    settings:
        Server settings merged into the copied ``bundle.json`` (``auth_enabled`` ...).
    pin_server:
        Pin the scoring server's requirements to this kernel's versions.
    labels:
        Image labels (the models are always recorded as ``nbdeploy.models``).

    Raises
    ------
    InvalidArgumentError
        ``dest`` is not empty, or a bad base image, port or setting.

    Examples
    --------
    >>> ctx = write_build_context(bundle, "iris-image")  # doctest: +SKIP
    >>> sorted(p.name for p in ctx.path.iterdir())       # doctest: +SKIP
    ['.dockerignore', 'Dockerfile', 'README.md', 'bundle', 'models', 'requirements.txt', 'wheels']
    """
    from nbdeploy.core.bundle import MANIFEST_NAME, BundleManifest

    target = Path(dest)
    _check_context_dest(target)
    python_version = _short_python(bundle.environment.python_version)
    refs = tuple(m.ref for m in bundle.models)
    all_labels = {"nbdeploy.models": ",".join(refs), "nbdeploy.version": _nbdeploy_version()}
    all_labels.update(labels or {})
    wheel = build_nbdeploy_wheel(target / SERVER_DIR)
    (target / WHEELS_DIR).mkdir()
    spec = DockerfileSpec(
        base_image=base_image or default_base_image(python_version),
        nbdeploy_wheel=wheel.name,
        port=port,
        offline=offline,
        labels=tuple(sorted(all_labels.items())),
    )
    target.mkdir(parents=True, exist_ok=True)
    models_src = bundle.path / MODELS_DIR
    (target / MODELS_DIR).mkdir()
    if models_src.is_dir():
        _copy_tree(models_src, target / MODELS_DIR)
    bundle_dst = target / BUNDLE_DIR
    bundle_dst.mkdir()
    for item in sorted(bundle.path.iterdir()):
        if item.name == MODELS_DIR:
            continue
        if item.is_dir():
            _copy_tree(item, bundle_dst / item.name)
        else:
            shutil.copy2(item, bundle_dst / item.name)
            (bundle_dst / item.name).chmod(0o644)
    if settings:
        manifest = BundleManifest.read(bundle_dst / MANIFEST_NAME)
        merged = {**manifest.settings, **json.loads(json.dumps(dict(settings)))}
        data = manifest.to_dict()
        data["settings"] = merged
        (bundle_dst / MANIFEST_NAME).write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    requirements = bundle.requirements_txt.read_text(encoding="utf-8")
    (target / REQUIREMENTS).write_text(_context_requirements(requirements, pin_server), "utf-8")
    (target / DOCKERFILE).write_text(spec.render(), encoding="utf-8")
    (target / ".dockerignore").write_text(
        "**/__pycache__\n**/*.pyc\n**/.ipynb_checkpoints\nREADME.md\n", encoding="utf-8"
    )
    (target / "README.md").write_text(_readme(spec, refs), encoding="utf-8")
    files = sorted(
        p.relative_to(target).as_posix()
        for p in target.rglob("*")
        if p.is_file() and p.name != "README.md"
    )
    return BuildContext(target, spec, hash_files(target, files), python_version, refs)


def image_tag(name: str, digest: str, repository: str = "nbdeploy") -> str:
    """A Docker image reference ``<repository>/<name>:<first 16 hex digits of digest>``.

    Examples
    --------
    >>> image_tag("Iris_Svc", "sha256:" + "ab" * 32)
    'nbdeploy/iris_svc:abababababababab'
    """
    base = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("._-") or "service"
    base = re.sub(r"[._-]{2,}", "-", base)
    reference = f"{repository}/{base}" if repository else base
    if not _IMAGE_NAME_RE.match(reference):
        raise InvalidArgumentError(
            f"cannot make a Docker image name from {name!r}",
            hint="use letters, digits, '.', '_' and '-'",
        )
    tag = digest.split(":", 1)[-1][:16]
    if not _TAG_RE.match(tag):
        raise InvalidArgumentError(f"cannot make a Docker image tag from digest {digest!r}")
    return f"{reference}:{tag}"


def check_image_reference(reference: str) -> str:
    """``reference`` if it is a valid ``name[:tag]`` Docker image reference.

    Examples
    --------
    >>> check_image_reference("myorg/iris:1.0")
    'myorg/iris:1.0'
    """
    name, sep, tag = (
        reference.rpartition(":")
        if ":" in reference.split("/")[-1]
        else (
            reference,
            "",
            "",
        )
    )
    host_part, _, _ = name.partition("/")
    path = name
    if "." in host_part or ":" in host_part or host_part == "localhost":
        path = name.split("/", 1)[1] if "/" in name else ""
    if not path or not _IMAGE_NAME_RE.match(path) or (sep and not _TAG_RE.match(tag)):
        raise InvalidArgumentError(
            f"invalid Docker image name {reference!r}",
            hint="use lowercase 'name' or 'repository/name', optionally ':tag'",
        )
    return reference
