"""``Model``: the reference's model object, over the core registry."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdeploy.core.registry import ModelVersion, Resources
from nbdeploy.exceptions import CloudOnlyError, InvalidArgumentError
from nbdeploy.sdk.rendering import mimebundle

if TYPE_CHECKING:
    from nbdeploy.core.bundle import InferenceConfig
    from nbdeploy.core.workspace import Workspace
    from nbdeploy.sdk.profile import ProfileReport
    from nbdeploy.sdk.webservice import Webservice
    from nbdeploy.workflows.package import Package

__all__ = ["Model"]


class _Framework:
    """The reference's ``Model.Framework`` names, for ``model_framework=``."""

    SCIKITLEARN = "ScikitLearn"
    ONNX = "Onnx"
    TENSORFLOW = "TensorFlow"
    PYTORCH = "PyTorch"
    CUSTOM = "Custom"
    MULTI = "Multi"


#: ``Model.Framework`` value -> the framework name nbdeploy records.
_FRAMEWORKS = {
    "ScikitLearn": "sklearn",
    "Onnx": "onnx",
    "TensorFlow": "tensorflow",
    "PyTorch": "torch",
    "Custom": "custom",
    "Multi": "custom",
}


class Model:
    """A registered model version, as Azure ML's ``Model``.

    ``Model(workspace, name)`` gets the latest version, ``Model(workspace, name,
    version=3)`` or ``Model(workspace, id="name:3")`` a given one;
    ``Model.register(...)`` registers, ``Model.deploy(...)`` deploys,
    ``Model.get_model_path(name)`` finds the files inside a scoring script.
    ``Model.Framework.SCIKITLEARN`` (``ONNX``, ``PYTORCH``, ``TENSORFLOW``,
    ``CUSTOM``) names a framework for ``Model.register(model_framework=...)``.

    Examples
    --------
    >>> import tempfile
    >>> ws = tempfile.mkdtemp()
    >>> m = Model.register(ws, model={"w": [1, 2]}, model_name="demo", tags={"stage": "dev"})
    >>> (m.id, m.framework, m.tags)
    ('demo:1', 'python', {'stage': 'dev'})
    >>> Model(ws, "demo").load()
    {'w': [1, 2]}
    """

    Framework = _Framework

    def __init__(
        self,
        workspace: Workspace | None = None,
        name: str | None = None,
        version: int | None = None,
        *,
        id: str | None = None,
        _version: ModelVersion | None = None,
    ) -> None:
        from nbdeploy.sdk.workspace import get_workspace

        self.workspace = get_workspace(workspace)
        if _version is None:
            if name is None and id is None:
                raise InvalidArgumentError(
                    "Model() needs a name (or an id 'name:version')",
                    hint="Model(ws, name='diabetes', version=1) or Model(ws, id='diabetes:1')",
                )
            ref = id if id is not None else name if version is None else f"{name}:{version}"
            _version = self.workspace.registry.get(str(ref))
        self.model_version = _version

    @property
    def name(self) -> str:
        """The model's name."""
        return self.model_version.name

    @property
    def version(self) -> int:
        """The version number (1, 2, 3 …; never reused)."""
        return self.model_version.version

    @property
    def id(self) -> str:
        """``name:version``, the reference's model id."""
        return f"{self.name}:{self.version}"

    @property
    def framework(self) -> str:
        """The framework it was registered as (``"sklearn"``, ``"python"`` …)."""
        return self.model_version.framework

    @property
    def framework_version(self) -> str | None:
        """The framework's version at registration, if known."""
        return self.model_version.framework_version

    @property
    def description(self) -> str:
        """The description given at registration."""
        return self.model_version.description

    @property
    def tags(self) -> dict[str, str]:
        """A copy of the version's tags."""
        return dict(self.model_version.tags)

    @property
    def properties(self) -> dict[str, str]:
        """A copy of the version's properties."""
        return dict(self.model_version.properties)

    @property
    def created_time(self) -> Any:
        """When the version was registered (aware UTC ``datetime``)."""
        return self.model_version.created

    @property
    def resource_configuration(self) -> Resources | None:
        """CPU, memory and GPUs the model asks for, if given."""
        return self.model_version.resources

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, version={self.version}, framework={self.framework!r})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """The model card (drawn by :mod:`nbdeploy.display.cards`)."""
        return mimebundle("model", self, include, exclude)

    @staticmethod
    def register(
        workspace: Workspace | None = None,
        model_path: Any = None,
        model_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        properties: Mapping[str, str] | None = None,
        description: str | None = None,
        *,
        sample_input: Any = None,
        sample_output: Any = None,
        resource_configuration: Resources | Mapping[str, float] | None = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        model: Any = None,
    ) -> Model:
        """Register a file, a folder or an in-memory object (``model=``) as a new version.

        ``model_framework`` is a ``Model.Framework`` value or an nbdeploy framework
        name (``"sklearn"``, ``"onnx"`` ...); ``model_framework_version`` is recorded as
        given (else the installed version is).

        Examples
        --------
        >>> import tempfile
        >>> ws = tempfile.mkdtemp()
        >>> Model.register(ws, model=[1, 2], model_name="demo").version
        1
        >>> Model.register(ws, model_path="model.pkl", model_name="diabetes")  # doctest: +SKIP
        Model(name='diabetes', version=1, framework='python')
        """
        from nbdeploy.sdk.workspace import get_workspace

        ws = get_workspace(workspace)
        source = model if model is not None else model_path
        if source is None or model_name is None:
            raise TypeError("Model.register needs model_path (or model=) and model_name")
        mv = ws.registry.register(
            source,
            model_name,
            description=description or "",
            tags=dict(tags or {}),
            properties=dict(properties or {}),
            sample_input=sample_input,
            sample_output=sample_output,
            resources=_resources(resource_configuration),
            framework=_FRAMEWORKS.get(model_framework or "", model_framework),
            framework_version=model_framework_version,
        )
        return Model(ws, _version=mv)

    @staticmethod
    def list(
        workspace: Workspace | None = None,
        name: str | None = None,
        tags: Any = None,
        properties: Any = None,
        latest: bool = False,
    ) -> list[Model]:
        """Registered models, filtered by name, tags and properties.

        Examples
        --------
        >>> import tempfile
        >>> ws = tempfile.mkdtemp()
        >>> _ = Model.register(ws, model=1, model_name="a")
        >>> _ = Model.register(ws, model=2, model_name="a")
        >>> [m.id for m in Model.list(ws, "a", latest=True)]
        ['a:2']
        """
        from nbdeploy.sdk.workspace import get_workspace

        ws = get_workspace(workspace)
        found = ws.registry.list(name=name, tags=tags, properties=properties, latest_only=latest)
        return [Model(ws, _version=mv) for mv in found]

    def add_tags(self, tags: Mapping[str, str]) -> None:
        """Add (or overwrite) tags of this version, in the registry and on this object.

        Examples
        --------
        >>> import tempfile
        >>> m = Model.register(tempfile.mkdtemp(), model=1, model_name="demo")
        >>> m.add_tags({"requestedCpu": "0.5"})
        >>> m.tags
        {'requestedCpu': '0.5'}
        """
        self.model_version = self.workspace.registry.add_tags(self.model_version.ref, tags)

    def remove_tags(self, tags: Sequence[str]) -> None:
        """Remove tags by key (missing keys are ignored).

        Examples
        --------
        >>> import tempfile
        >>> m = Model.register(tempfile.mkdtemp(), model=1, model_name="demo", tags={"a": "1"})
        >>> m.remove_tags(["a"])
        >>> m.tags
        {}
        """
        self.model_version = self.workspace.registry.remove_tags(self.model_version.ref, tags)

    def download(self, target_dir: str | os.PathLike[str] = ".", exist_ok: bool = False) -> str:
        """Copy the model's files into ``target_dir``; return the path of the model
        (its single file, or the folder).

        The copy is checked against the registered hash; existing files are an error
        unless ``exist_ok``.

        Examples
        --------
        >>> import os, tempfile
        >>> m = Model.register(tempfile.mkdtemp(), model=1, model_name="demo")
        >>> os.path.basename(m.download(tempfile.mkdtemp()))
        'model.pkl'
        """
        path = self.workspace.registry.download(
            self.model_version.ref, Path(target_dir), exist_ok=exist_ok
        )
        return str(path)

    def delete(self, force: bool = False) -> None:
        """Delete this version (refused while a service uses it, unless ``force``).

        Examples
        --------
        >>> import tempfile
        >>> ws = tempfile.mkdtemp()
        >>> Model.register(ws, model=1, model_name="demo").delete()
        >>> Model.list(ws)
        []
        """
        self.workspace.registry.delete(self.model_version.ref, force=force)

    def load(self) -> Any:
        """Load the model object (after checking its files against their hash).

        Examples
        --------
        >>> import tempfile
        >>> Model.register(tempfile.mkdtemp(), model={"w": 1}, model_name="demo").load()
        {'w': 1}
        """
        return self.model_version.load()

    @staticmethod
    def get_model_path(
        model_name: str, version: int | None = None, _workspace: Workspace | None = None
    ) -> str:
        """The path of a model's files.

        Inside a scoring script (a running service) it finds the model in the service's
        bundle; elsewhere, pass ``_workspace`` to look in the artifact store.

        Examples
        --------
        >>> path = Model.get_model_path("diabetes")   # in score.py's init()  # doctest: +SKIP
        >>> import os, tempfile
        >>> from nbdeploy.sdk.workspace import get_workspace
        >>> ws = get_workspace(tempfile.mkdtemp())
        >>> _ = Model.register(ws, model=1, model_name="demo")
        >>> os.path.basename(Model.get_model_path("demo", _workspace=ws))
        'model.pkl'
        """
        if _workspace is None:
            from nbdeploy.core.modelpath import get_model_path

            return str(get_model_path(model_name, version))
        mv = _workspace.registry.get(model_name if version is None else f"{model_name}:{version}")
        files = mv.files
        return str(mv.path / files[0]) if len(files) == 1 else str(mv.path)

    @staticmethod
    def deploy(
        workspace: Workspace | None,
        name: str,
        models: Sequence[Any],
        inference_config: InferenceConfig | None = None,
        deployment_config: Any = None,
        deployment_target: Any = None,
        overwrite: bool = False,
        show_output: bool = False,
    ) -> Webservice:
        """Deploy ``models`` as web service ``name`` (the reference's ``Model.deploy``).

        Returns once the service is ``Healthy``; raises when it ends ``Failed``. As in
        Azure ML, an undecorated ``run(raw_data)`` of the entry script receives the
        request body as ``str`` unless the inference config says
        ``input_mode="decoded"`` (see :class:`~nbdeploy.core.scoring.RunCall`).
        ``deployment_target`` (an AKS compute target) has no local meaning: pass a
        deployment configuration instead.

        Examples
        --------
        >>> config = InferenceConfig(entry_script="score.py")                 # doctest: +SKIP
        >>> svc = Model.deploy(ws, "diabetes-svc", [model], config,
        ...                    LocalWebservice.deploy_configuration(port=6789))  # doctest: +SKIP
        >>> svc.wait_for_deployment(show_output=True)                          # doctest: +SKIP
        >>> svc.state                                                          # doctest: +SKIP
        'Healthy'
        """
        from nbdeploy.sdk.webservice import Webservice
        from nbdeploy.sdk.workspace import get_workspace
        from nbdeploy.workflows.deploy import deploy_models

        if deployment_target is not None:
            raise CloudOnlyError(
                "Model.deploy(deployment_target=...) names an Azure compute target",
                hint="pass deployment_config= instead: LocalWebservice.deploy_configuration(), "
                "AciWebservice/DockerWebservice.deploy_configuration() (a Docker engine)",
            )
        ws = get_workspace(workspace)
        record = deploy_models(
            ws,
            name,
            list(models),
            _azure_style(inference_config),
            deployment_config,
            overwrite=overwrite,
            show_output=show_output,
        )
        return Webservice._from_record(ws, record)

    @staticmethod
    def package(
        workspace: Workspace | None,
        models: Sequence[Any],
        inference_config: InferenceConfig | None = None,
        generate_dockerfile: bool = False,
        *,
        image_name: str | None = None,
        image_label: str | None = None,
        base_image: str | None = None,
        offline: bool | None = None,
        show_output: bool = False,
    ) -> Package:
        """Package ``models`` as a Docker image (the reference's ``Model.package``).

        With ``generate_dockerfile=False`` (the reference's default) the image is built
        before this returns (``package.location`` is its tag); with ``True`` only the
        build context is made: ``package.save(folder)`` writes it for ``docker build``.
        See :mod:`nbdeploy.workflows.package`.

        Examples
        --------
        >>> pkg = Model.package(ws, [model], config, generate_dockerfile=True)  # doctest: +SKIP
        >>> pkg.save("./imagefiles")                                            # doctest: +SKIP
        """
        from nbdeploy.sdk.workspace import get_workspace
        from nbdeploy.workflows.package import package_models

        return package_models(
            get_workspace(workspace),
            list(models),
            _azure_style(inference_config),
            generate_dockerfile=generate_dockerfile,
            image_name=image_name,
            image_label=image_label,
            base_image=base_image,
            offline=offline,
            show_output=show_output,
        )

    @staticmethod
    def profile(
        workspace: Workspace | None,
        profile_name: str,
        models: Sequence[Any],
        inference_config: InferenceConfig | None = None,
        input_dataset: Any = None,
        **options: Any,
    ) -> ProfileReport:
        """Profile ``models`` (the reference's ``Model.profile``): deploy them
        temporarily, send ``input_dataset``, measure latency, CPU and memory.

        ``get_details()`` of the result has ``requestedCpu`` and ``requestedMemoryInGb``.
        See :func:`_profile_reference` for the options.

        Examples
        --------
        >>> profile = Model.profile(ws, "diabetes-profile", [model], inference_config,
        ...                         input_dataset=requests)          # doctest: +SKIP
        >>> profile.get_details()["requestedCpu"]                    # doctest: +SKIP
        1.1
        """
        config = _azure_style(inference_config)
        return _profile_reference(workspace, profile_name, models, config, input_dataset, **options)


def _azure_style(config: InferenceConfig | None) -> InferenceConfig | None:
    """The reference's rule for the object-model API: an undecorated ``run`` gets the
    raw body unless the config says otherwise."""
    return None if config is None else config.with_default_input_mode("raw")


def _resources(value: Resources | Mapping[str, float] | None) -> Resources | None:
    if value is None or isinstance(value, Resources):
        return value
    return Resources(cpu=value.get("cpu"), memory_gb=value.get("memory_gb"))


def ResourceConfiguration(
    cpu: float | None = None, memory_in_gb: float | None = None, gpu: int | None = None
) -> Resources:
    """The reference's ``ResourceConfiguration(cpu=1, memory_in_gb=0.5)``: a model's
    CPU and memory needs (:class:`~nbdeploy.core.registry.Resources`). GPUs are not
    scheduled by nbdeploy's targets; asking for some is an error.

    Examples
    --------
    >>> ResourceConfiguration(cpu=1, memory_in_gb=0.5)
    Resources(cpu=1.0, memory_gb=0.5)
    """
    if gpu:
        raise InvalidArgumentError(
            f"ResourceConfiguration(gpu={gpu!r}): nbdeploy's targets do not schedule GPUs",
            hint="leave gpu out; a container sees the host's GPUs only if its engine gives them",
        )
    return Resources(cpu=cpu, memory_gb=memory_in_gb)


def _profile_reference(
    workspace: Workspace | None,
    profile_name: str,
    models: Sequence[Any],
    inference_config: InferenceConfig | None = None,
    input_dataset: Any = None,
    *,
    concurrency: int = 1,
    duration: float | None = None,
    count: int | None = None,
    target_rps: float | None = None,
    store_tags: bool = False,
) -> ProfileReport:
    """The reference's ``Model.profile(ws, name, [model], inference_config, input_dataset)``.

    Deploys ``models`` temporarily with ``inference_config``, sends ``input_dataset``
    (a list of request strings, a one-column DataFrame of request strings as the
    reference's dataset, a DataFrame of rows, or a file with one request per line) and
    returns the :class:`ProfileReport`; its ``get_details()``
    has the reference's ``requestedCpu`` and ``requestedMemoryInGb``.

    Examples
    --------
    >>> profile = Model.profile(ws, "unique_name", [model], inference_config,
    ...                         input_dataset=requests)            # doctest: +SKIP
    >>> profile.wait_for_completion(True)                          # doctest: +SKIP
    >>> details = profile.get_details()                            # doctest: +SKIP
    >>> model.add_tags({"requestedCpu": details["requestedCpu"],
    ...                 "requestedMemoryInGb": details["requestedMemoryInGb"]})  # doctest: +SKIP
    """
    from nbdeploy.profiling import prepare_requests
    from nbdeploy.sdk.client import encode_request
    from nbdeploy.sdk.profile import ProfileReport
    from nbdeploy.sdk.workspace import get_workspace
    from nbdeploy.workflows.profile import profile_models

    if input_dataset is None:
        raise InvalidArgumentError(
            "Model.profile needs input_dataset: the sample requests to send",
            hint="pass a list of JSON request strings, a DataFrame or a file path",
        )
    bodies = prepare_requests(input_dataset, batch_size=1, orient="split", encode=encode_request)
    result = profile_models(
        get_workspace(workspace),
        list(models),
        inference_config,
        bodies,
        name=profile_name,
        store=store_tags,
        concurrency=concurrency,
        duration=duration,
        count=count,
        target_rps=target_rps,
    )
    return ProfileReport.from_result(result)
