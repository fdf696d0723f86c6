"""Package models without deploying them: a Docker build context, or a built image.

``nbdeploy.package(...)`` and ``Model.package(...)`` (the reference's form) build a
bundle in the workspace (``<workspace>/packages/<name>/<id>/bundle``) and return a
:class:`Package`. ``package.save(folder)`` writes a build context anyone can read,
edit and build by hand (``docker build -t myimage folder``; ``docker run -p
6789:5001 myimage`` serves ``http://localhost:6789/score``); ``package.build()`` builds
the image in a Docker engine and records its tag and size. See
:mod:`nbdeploy.core.package` for the folder's layout and the Dockerfile.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from nbdeploy.core.bundle import Bundle, InferenceConfig, build_bundle
from nbdeploy.core.cloud import CloudAttributes
from nbdeploy.core.package import (
    DEFAULT_PORT,
    BuildContext,
    check_image_reference,
    image_tag,
    write_build_context,
)
from nbdeploy.core.refs import check_name
from nbdeploy.exceptions import DeploymentError, InvalidArgumentError
from nbdeploy.workflows.build import resolve_models

if TYPE_CHECKING:
    from nbdeploy.core.workspace import Workspace

__all__ = ["Package", "kubernetes_config", "package_models"]


class Package(CloudAttributes):
    """A packaged model service: its bundle, and once built, its Docker image.

    The reference's ``ModelPackage``: ``wait_for_creation(show_output=True)``,
    ``get_logs()``, ``location`` (the image), ``save(folder)``; plus :meth:`build`,
    :attr:`image_size_bytes` and :attr:`dockerfile`.

    Parameters
    ----------
    workspace:
        The workspace the bundle lives in.
    name:
        The package's name (image ``nbdeploy/<name>`` unless ``image_name``).
    bundle:
        The bundle to serve.
    base_image:
        Default base image (``python:<bundle's Python>-slim`` when ``None``).
    offline:
        Put every wheel into the build context and build with ``--network none``.
    image_name, image_label:
        The image's name and tag (default ``nbdeploy/<name>`` and the content digest).
    engine:
        The Docker engine URL to build in (default ``$DOCKER_HOST``).

    Examples
    --------
    >>> pkg = nbdeploy.package("diabetes", score="score.py")  # doctest: +SKIP
    >>> pkg.save("diabetes-image")                            # doctest: +SKIP
    PosixPath('diabetes-image')
    """

    _CLOUD_ONLY: ClassVar[Mapping[str, tuple[str, str]]] = {
        "get_container_registry": (
            "returns the credentials of an Azure Container Registry",
            "the image is on your Docker engine (package.location); push it with "
            "`docker tag` + `docker push` to any registry you log in to",
        ),
    }

    def __init__(
        self,
        workspace: Workspace,
        name: str,
        bundle: Bundle,
        *,
        base_image: str | None = None,
        offline: bool = False,
        image_name: str | None = None,
        image_label: str | None = None,
        engine: str | None = None,
        port: int = DEFAULT_PORT,
    ) -> None:
        check_name(name, "package")
        if image_name is not None:
            check_image_reference(image_name)
        if image_label is not None:
            check_image_reference(f"x:{image_label}")
        self.workspace = workspace
        self.name = name
        self.bundle = bundle
        self.base_image = base_image
        self.offline = offline
        self.image_name = image_name
        self.image_label = image_label
        self.engine = engine
        self.port = port
        self.location: str | None = None
        self.image_id: str | None = None
        self.image_size_bytes: int | None = None
        self.state = "NotStarted"
        self.error: str | None = None
        self._log: list[str] = []
        #: Server settings baked into the image's bundle.json (set by :meth:`kubernetes`).
        self.settings: dict[str, Any] | None = None

    @property
    def models(self) -> tuple[str, ...]:
        """The ``name:version`` of every model in the package."""
        return tuple(m.ref for m in self.bundle.models)

    @property
    def image(self) -> str | None:
        """The image tag once built (same as :attr:`location`)."""
        return self.location

    @property
    def dockerfile(self) -> str:
        """The text of the Dockerfile :meth:`save` writes.

        Examples
        --------
        >>> print(pkg.dockerfile)  # doctest: +SKIP
        """
        from nbdeploy.core.package import DockerfileSpec, default_base_image, nbdeploy_wheel_name

        python = self.bundle.environment.python_version
        return DockerfileSpec(
            base_image=self.base_image or default_base_image(python),
            nbdeploy_wheel=nbdeploy_wheel_name(),
            port=self.port,
            offline=self.offline,
        ).render()

    def _scratch(self) -> Path:
        return self.bundle.path.parent

    def __repr__(self) -> str:
        return (
            f"Package(name={self.name!r}, models={list(self.models)!r}, "
            f"state={self.state!r}, location={self.location!r})"
        )

    def save(self, folder: str | os.PathLike[str], *, wheels: bool | None = None) -> Path:
        """Write the Docker build context into the new folder ``folder``.

        Parameters
        ----------
        folder:
            Must not exist or be empty.
        wheels:
            Download every dependency's wheel into ``wheels/`` (for this machine's pip
            configuration, the image's Python and Linux), so ``docker build --network
            none`` works; default: the package's ``offline`` setting.

        Returns
        -------
        Path
            The folder.

        Examples
        --------
        >>> pkg.save("diabetes-image", wheels=True)  # doctest: +SKIP
        PosixPath('diabetes-image')
        """
        context = self._write(Path(folder), self.offline if wheels is None else wheels)
        return context.path

    def _write(self, folder: Path, offline: bool) -> BuildContext:
        context = write_build_context(
            self.bundle,
            folder,
            base_image=self.base_image,
            port=self.port,
            offline=offline,
            settings=self.settings,
        )
        if offline:
            context.download_wheels()
        return context

    def build(
        self,
        *,
        show_output: bool = False,
        engine: str | None = None,
        base_image: str | None = None,
    ) -> str:
        """Build the image in a Docker engine; its tag (also :attr:`location`).

        The build output is streamed when ``show_output`` and kept for
        :meth:`get_logs`; :attr:`image_size_bytes` is the image's size. An image with
        the same content digest is reused. nbdeploy never pulls: the base image must
        be in the engine.

        Raises
        ------
        TargetUnavailableError
            The engine cannot be reached.
        DeploymentError
            The base image is missing or the build failed (``state`` is ``Failed``).

        Examples
        --------
        >>> pkg.build(show_output=True)  # doctest: +SKIP
        'nbdeploy/diabetes:5f0c1e2a9b7d3c4e'
        """
        from nbdeploy.targets.docker.engine import connect
        from nbdeploy.targets.docker.images import build_image

        base = base_image or self.base_image
        build_dir = self._scratch() / f"context-{uuid.uuid4().hex[:8]}"
        self.state = "Running"
        self.error = None
        self._log = []
        try:
            context = write_build_context(
                self.bundle,
                build_dir,
                base_image=base,
                port=self.port,
                offline=self.offline,
                settings=self.settings,
            )
            tag = self._tag(context.digest)
            with connect(engine or self.engine) as client:
                if self.offline:
                    self._say(
                        f"downloading wheels for Python {context.python_version}", show_output
                    )
                    context.download_wheels()
                built = build_image(
                    client,
                    context,
                    tag,
                    base_image=base or context.spec.base_image,
                    show_output=show_output,
                    on_line=self._log.append,
                )
        except Exception as exc:
            self.state = "Failed"
            self.error = str(exc)
            raise
        finally:
            shutil.rmtree(build_dir, ignore_errors=True)
        self.location = built.tag
        self.image_id = built.id
        self.image_size_bytes = built.size_bytes
        self.state = "Succeeded"
        self._say(f"built {built.tag} ({built.size_bytes / 1e6:.0f} MB)", show_output)
        return built.tag

    def kubernetes(self, config: Any = None, *, image: str | None = None) -> Any:
        """Kubernetes manifests that run this package
        (:class:`~nbdeploy.targets.kubernetes.manifests.Manifests`).

        ``config`` is a :class:`~nbdeploy.targets.kubernetes.config.KubernetesConfig`
        (or ``AksWebservice.deploy_configuration(...)``). From then on the package's
        image reads its keys from the Secret the manifests mount, so build (or
        :meth:`save`) it after this call; the manifests name that image — ``image``,
        the configuration's, the built one, or the tag a build will give it. The
        Secret with the keys is not included (the notes say how to create it).

        Examples
        --------
        >>> pkg.kubernetes(AksWebservice.deploy_configuration(num_replicas=2)).save("k8s")
        ... # doctest: +SKIP
        """
        from nbdeploy.targets.kubernetes.config import KubernetesConfig
        from nbdeploy.targets.kubernetes.manifests import Workload, build, image_settings

        cfg = KubernetesConfig.coerce(config)
        settings = image_settings(cfg, cfg.auth_mode)
        if settings != self.settings:
            self.settings = settings
            self.location = None  # an image built before has other settings
        reference = image or cfg.image or self.location or self._future_tag()
        workload = Workload(self.name, reference, models=self.models)
        return build(cfg, [workload], auth_mode=cfg.auth_mode)

    def _future_tag(self) -> str:
        """The tag :meth:`build` will give the image (from the context's digest)."""
        scratch = self._scratch() / f"digest-{uuid.uuid4().hex[:8]}"
        try:
            context = write_build_context(
                self.bundle,
                scratch,
                base_image=self.base_image,
                port=self.port,
                offline=self.offline,
                settings=self.settings,
            )
            return self._tag(context.digest)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _tag(self, digest: str) -> str:
        if self.image_name is None:
            tag = image_tag(self.name, digest)
            return (
                tag if self.image_label is None else f"{tag.rsplit(':', 1)[0]}:{self.image_label}"
            )
        return f"{self.image_name}:{self.image_label or digest.split(':', 1)[-1][:16]}"

    def _say(self, line: str, show_output: bool) -> None:
        self._log.append(line)
        if show_output:
            print(line, flush=True)

    def wait_for_creation(self, show_output: bool = False) -> None:
        """Block until the image exists (the reference's call). A package made with
        ``generate_dockerfile=False`` was built when it was made; one made with
        ``generate_dockerfile=True`` has nothing to wait for.

        Raises
        ------
        DeploymentError
            The build failed.

        Examples
        --------
        >>> package.wait_for_creation(show_output=True)  # doctest: +SKIP
        """
        if self.state == "Failed":
            raise DeploymentError(
                f"package {self.name!r} failed: {self.error}",
                hint="see package.get_logs() for the build output",
            )
        if show_output:
            for line in self._log:
                print(line, flush=True)
            print(f"{self.name}: {self.state}", flush=True)

    def get_logs(self) -> str:
        """The output of the last image build ('' before one)."""
        return "\n".join(self._log)

    def serialize(self) -> dict[str, Any]:
        """What the package is, as a plain dict."""
        return {
            "name": self.name,
            "models": list(self.models),
            "bundle": str(self.bundle.path),
            "state": self.state,
            "location": self.location,
            "image_id": self.image_id,
            "image_size_bytes": self.image_size_bytes,
            "base_image": self.base_image,
            "offline": self.offline,
            "error": self.error,
        }


def package_models(
    workspace: Workspace,
    models: Any,
    inference_config: InferenceConfig | None = None,
    *,
    name: str | None = None,
    generate_dockerfile: bool = True,
    base_image: str | None = None,
    offline: bool | None = None,
    image_name: str | None = None,
    image_label: str | None = None,
    engine: str | None = None,
    show_output: bool = False,
) -> Package:
    """Bundle ``models`` with ``inference_config`` into a :class:`Package`; with
    ``generate_dockerfile=False`` also build its image (blocking). ``base_image`` and
    ``offline`` default to the ``base_image`` / ``offline_builds`` settings.

    Examples
    --------
    >>> package_models(ws, ["diabetes:1"], InferenceConfig("score.py"))  # doctest: +SKIP
    Package(name='diabetes', models=['diabetes:1'], state='NotStarted', location=None)
    """
    versions = resolve_models(workspace, models)
    package_name = name or versions[0].name
    check_name(package_name, "package")
    if not isinstance(generate_dockerfile, bool):
        raise InvalidArgumentError(
            f"generate_dockerfile must be True or False, got {generate_dockerfile!r}"
        )
    dest = Path(workspace.path) / "packages" / package_name / uuid.uuid4().hex[:12] / "bundle"
    dest.parent.mkdir(parents=True, exist_ok=True)
    bundle = build_bundle(
        versions,
        inference_config or InferenceConfig(),
        dest,
        settings={"service_name": package_name},
    )
    from nbdeploy import config

    pkg = Package(
        workspace,
        package_name,
        bundle,
        base_image=config.resolve("base_image", base_image) or None,
        offline=bool(config.resolve("offline_builds", offline)),
        image_name=image_name,
        image_label=image_label,
        engine=engine,
    )
    if not generate_dockerfile:
        pkg.build(show_output=show_output)
    return pkg


def kubernetes_config(namespace: str = "default", replicas: int | None = None) -> Any:
    """A Kubernetes configuration for :meth:`Package.kubernetes`: the ``namespace``,
    and a fixed number of ``replicas`` (``None``: autoscaling).

    Examples
    --------
    >>> kubernetes_config("ml", 2).namespace
    'ml'
    """
    from nbdeploy.targets.kubernetes.config import KubernetesConfig

    return KubernetesConfig(namespace=namespace, num_replicas=replicas)
