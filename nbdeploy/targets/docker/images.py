"""The image of a service: built offline in the engine, or reused by content digest.

The image comes from :mod:`nbdeploy.core.package`: a build context with a
multi-stage ``Dockerfile`` (a venv from wheels, then the models, then the scoring
script), named ``nbdeploy/<service>:<content digest>`` — a redeploy of the same bundle
reuses the image, and a new scoring script reuses the dependency layers. By default
the build is **offline**: the wheels are downloaded on this machine with its pip
configuration and the image builds with ``--network none``; the base image must
already be in the engine (nbdeploy never pulls).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbdeploy.core.bundle import Bundle
from nbdeploy.core.package import BuildContext, image_tag, write_build_context
from nbdeploy.exceptions import DeploymentError

from .engine import DockerClient, docker_module

__all__ = ["LOCAL_BASE_PREFIX", "BuiltImage", "available_base", "build_image", "ensure_image"]


@dataclass(frozen=True)
class BuiltImage:
    """An image built (or found) in an engine.

    Examples
    --------
    >>> img = BuiltImage("nbdeploy/iris:0123", "sha256:ab", 123, True, "")
    >>> BuiltImage.from_dict(img.to_dict()) == img
    True
    """

    tag: str
    id: str
    size_bytes: int
    reused: bool
    log: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "id": self.id,
            "size_bytes": self.size_bytes,
            "reused": self.reused,
            "log": self.log,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuiltImage:
        return cls(
            tag=str(data["tag"]),
            id=str(data["id"]),
            size_bytes=int(data["size_bytes"]),
            reused=bool(data["reused"]),
            log=str(data.get("log", "")),
        )


def find_image(client: DockerClient, reference: str) -> Any | None:
    docker = docker_module()
    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None


#: The documented local base: ``scripts/docker-env.sh up`` builds it with debootstrap.
LOCAL_BASE_PREFIX = "local/"


def available_base(client: DockerClient, base: str) -> str:
    """The base image to build on: ``base`` when the engine has it; else, for an
    official ``python:X.Y-slim``, the local base ``local/python:X.Y-slim`` that
    ``scripts/docker-env.sh up`` builds without any registry. Never pulls.

    Raises
    ------
    DeploymentError
        Neither is in the engine; the hint says how to get one.
    """
    if find_image(client, base) is not None:
        return base
    local = LOCAL_BASE_PREFIX + base
    if base.startswith("python:") and find_image(client, local) is not None:
        return local
    raise DeploymentError(
        f"the base image {base!r} is not in the Docker engine, and nbdeploy never pulls "
        "images from a registry",
        hint=f"build the local base once with `bash scripts/docker-env.sh up` (Debian's "
        f"debootstrap, no registry; it makes {local} and nbdeploy uses it instead of "
        f"{base}), or load an image with Python and venv into the engine "
        "(`docker load -i image.tar`) and pass "
        "DockerWebservice.deploy_configuration(base_image='that:tag')",
    )


def build_image(
    client: DockerClient,
    context: BuildContext,
    tag: str,
    *,
    base_image: str | None = None,
    offline: bool | None = None,
    show_output: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> BuiltImage:
    """Build ``context`` into image ``tag`` in the engine, streaming the build output.

    Never pulls: the base image must already be in the engine (checked first, with
    a hint). Offline contexts build with ``network_mode="none"``.

    Raises
    ------
    DeploymentError
        The base image is missing or the build failed (the message ends with the
        build's last lines).

    Examples
    --------
    >>> with connect() as client:  # doctest: +SKIP
    ...     build_image(client, ctx, "nbdeploy/iris:1", base_image="local/python:3.11-slim")
    """
    docker = docker_module()
    base = available_base(client, base_image or context.spec.base_image)
    offline = context.spec.offline if offline is None else offline
    lines: list[str] = []

    def emit(text: str) -> None:
        for line in text.splitlines():
            lines.append(line)
            if show_output:
                print(line, flush=True)
            if on_line is not None:
                on_line(line)

    try:
        stream = client.api.build(
            path=str(context.path),
            tag=tag,
            buildargs={"BASE_IMAGE": base},
            network_mode="none" if offline else None,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for chunk in stream:
            if "stream" in chunk:
                emit(str(chunk["stream"]))
            elif "status" in chunk:
                emit(str(chunk["status"]))
            if "error" in chunk:
                emit(str(chunk["error"]))
                tail = "\n".join(lines[-15:])
                raise DeploymentError(
                    f"docker build of {tag} failed: {str(chunk['error']).strip()}\n{tail}",
                    hint="read the build output above; the Dockerfile is in the package folder",
                )
    except docker.errors.APIError as exc:
        raise DeploymentError(f"docker build of {tag} failed: {exc}") from None
    image = client.images.get(tag)
    return BuiltImage(
        tag, str(image.id), int(image.attrs.get("Size") or 0), False, "\n".join(lines)
    )


def ensure_image(
    client: DockerClient,
    service_dir: Path,
    name: str,
    bundle: Bundle,
    *,
    settings: Mapping[str, Any],
    base_image: str | None = None,
    offline: bool = True,
    show_output: bool = False,
) -> BuiltImage:
    """The image of ``bundle`` with server ``settings`` for service ``name``: built
    in the engine (offline: wheels downloaded here first), or reused when an image
    with the same content digest exists. The build output goes to
    ``<service_dir>/build.log``; the build context is removed after.

    The Docker target and the targets that run its images elsewhere (Kubernetes)
    build through here.

    Examples
    --------
    >>> with connect() as client:  # doctest: +SKIP
    ...     ensure_image(client, Path("ws/services/iris"), "iris", bundle, settings={})
    """
    service_dir.mkdir(parents=True, exist_ok=True)
    context_dir = service_dir / f"build-{uuid.uuid4().hex[:8]}"
    log = service_dir / "build.log"
    try:
        context = write_build_context(
            bundle, context_dir, base_image=base_image, offline=offline, settings=settings
        )
        tag = image_tag(name, context.digest)
        found = find_image(client, tag)
        if found is not None:
            message = f"{name}: reusing image {tag} (same bundle, settings and base image)"
            log.write_text(message + "\n", encoding="utf-8")
            if show_output:
                print(message, flush=True)
            return BuiltImage(tag, str(found.id), int(found.attrs.get("Size") or 0), True, "")
        if show_output:
            print(f"{name}: building image {tag}", flush=True)
        if offline:
            if show_output:
                print(f"{name}: downloading wheels for Python {context.python_version}")
            context.download_wheels()
        with log.open("w", encoding="utf-8") as fh:
            return build_image(
                client,
                context,
                tag,
                base_image=base_image or context.spec.base_image,
                show_output=show_output,
                on_line=lambda line: print(line, file=fh),
            )
    finally:
        shutil.rmtree(context_dir, ignore_errors=True)
