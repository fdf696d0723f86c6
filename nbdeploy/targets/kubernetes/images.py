"""Getting a service's image where a cluster can run it.

The image is built by the Docker target's packaging
(:func:`nbdeploy.targets.docker.ensure_image`: same build context, same content
digest, reused when it exists), with the server settings the pod needs baked into its
``bundle.json``. Then, by configuration:

- ``registry="registry.example.com/team"``: tagged
  ``registry.example.com/team/nbdeploy/<svc>:<digest>`` and pushed (the engine's
  ``docker login`` credentials apply); pods pull it (``IfNotPresent``).
- ``load_into="kind[:NAME]"``, ``"k3d:NAME"``, ``"minikube[:PROFILE]"``: copied into the
  local cluster's nodes with ``kind load docker-image`` / ``k3d image import`` /
  ``minikube image load`` (these tools must be on ``PATH``).
- neither: the image stays in the engine that built it, and pods use it only if
  their nodes share that engine (Docker Desktop, ``minikube docker-env``):
  ``imagePullPolicy: Never``, so a node without it says ``ErrImageNeverPull`` at once
  instead of trying a registry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdeploy.exceptions import DeploymentError, InvalidArgumentError

from .config import KubernetesConfig
from .manifests import image_settings

if TYPE_CHECKING:
    from nbdeploy.core.bundle import Bundle

__all__ = ["loader_command", "provide_image"]

_DEFAULT_CLUSTERS = {"kind": "kind", "k3d": "k3s-default", "minikube": "minikube"}


def loader_command(load_into: str, image: str) -> list[str]:
    """The command that copies ``image`` into a local cluster.

    Examples
    --------
    >>> loader_command("kind", "nbdeploy/iris:1")
    ['kind', 'load', 'docker-image', 'nbdeploy/iris:1', '--name', 'kind']
    >>> loader_command("k3d:dev", "nbdeploy/iris:1")
    ['k3d', 'image', 'import', 'nbdeploy/iris:1', '-c', 'dev']
    >>> loader_command("minikube", "nbdeploy/iris:1")
    ['minikube', 'image', 'load', 'nbdeploy/iris:1', '-p', 'minikube']
    """
    tool, _, cluster = load_into.partition(":")
    cluster = cluster or _DEFAULT_CLUSTERS.get(tool, "")
    if tool == "kind":
        return ["kind", "load", "docker-image", image, "--name", cluster]
    if tool == "k3d":
        return ["k3d", "image", "import", image, "-c", cluster]
    if tool == "minikube":
        return ["minikube", "image", "load", image, "-p", cluster]
    raise InvalidArgumentError(f"cannot load images into {load_into!r}")


def _load(cfg: KubernetesConfig, image: str, show_output: bool) -> None:
    assert cfg.load_into is not None
    command = loader_command(cfg.load_into, image)
    if shutil.which(command[0]) is None:
        raise DeploymentError(
            f"load_into={cfg.load_into!r} needs the {command[0]!r} command, which is not on PATH",
            hint=f"install {command[0]}, or push to a registry with registry=...",
        )
    env = dict(os.environ)
    if cfg.engine:
        env["DOCKER_HOST"] = cfg.engine
    if show_output:
        print(" ".join(command), flush=True)
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=cfg.timeout, check=False
    )
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()[-2000:]
        raise DeploymentError(
            f"{' '.join(command)} failed ({done.returncode}): {output}",
            hint="check that the cluster exists (kind get clusters / k3d cluster list / "
            "minikube profile list)",
        )


def _push(client: Any, tag: str, registry: str, show_output: bool) -> str:
    """Tag ``tag`` under ``registry`` and push it; the pushed reference."""
    reference = f"{registry.rstrip('/')}/{tag}"
    repository, _, label = reference.rpartition(":")
    client.images.get(tag).tag(repository, label)
    if show_output:
        print(f"pushing {reference}", flush=True)
    for line in client.images.push(repository, tag=label, stream=True, decode=True):
        if "error" in line:
            raise DeploymentError(
                f"pushing {reference} failed: {line['error']}",
                hint="docker login to the registry with the same engine, or check its name",
            )
        if show_output and line.get("status") and line.get("id") is None:
            print(line["status"], flush=True)
    return reference


def provide_image(
    service: str,
    bundle: Bundle,
    cfg: KubernetesConfig,
    auth_mode: str | None,
    service_dir: Path,
    *,
    show_output: bool = False,
) -> tuple[str, str]:
    """``(image reference, imagePullPolicy)`` of ``bundle`` for the cluster (see the
    module docstring).

    Raises
    ------
    TargetUnavailableError
        The Docker engine that builds the image cannot be reached.
    DeploymentError
        The build, push or load failed.
    """
    if cfg.image:
        return cfg.image, "IfNotPresent"
    from nbdeploy.targets.docker.engine import connect
    from nbdeploy.targets.docker.images import ensure_image

    with connect(cfg.engine) as client:
        built = ensure_image(
            client,
            service_dir,
            service,
            bundle,
            settings=image_settings(cfg, auth_mode),
            base_image=cfg.base_image,
            offline=cfg.offline,
            show_output=show_output,
        )
        if cfg.registry:
            return _push(client, built.tag, cfg.registry, show_output), "IfNotPresent"
    if cfg.load_into:
        _load(cfg, built.tag, show_output)
        return built.tag, "IfNotPresent"
    return built.tag, "Never"
