"""Every Azure ML SDK v1 name a notebook imports, in one module.

Code written for Azure ML runs with only its imports changed::

    from azureml.core import Workspace, Model, Environment      # before
    from azureml.core.model import InferenceConfig
    from azureml.core.webservice import AciWebservice, AksWebservice, LocalWebservice, Webservice
    from azureml.core.conda_dependencies import CondaDependencies
    from azureml.core.resource_configuration import ResourceConfiguration

    from nbdeploy.aml import Workspace, Model, Environment      # after
    from nbdeploy.aml import InferenceConfig
    from nbdeploy.aml import AciWebservice, AksWebservice, LocalWebservice, Webservice
    from nbdeploy.aml import CondaDependencies
    from nbdeploy.aml import ResourceConfiguration

``AksWebservice`` deploys to any Kubernetes cluster your kubeconfig reaches (the
cluster is named by its context, ``compute_target_name=`` or ``context=``).

The names that only make sense with an Azure subscription — ``AksCompute``,
``ComputeTarget``, ``ContainerImage``/``Image``, ``Datastore``,
``Dataset``, the ``*Authentication`` classes, ``Experiment`` — are here too, so such
code imports; any use of them raises one
:class:`~nbdeploy.exceptions.CloudOnlyError` saying what to use instead.

Examples
--------
>>> from nbdeploy.aml import AksCompute
>>> AksCompute.provisioning_configuration()  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
nbdeploy.exceptions.CloudOnlyError: AksCompute.provisioning_configuration creates or attaches ...
"""

from __future__ import annotations

from .core.bundle import InferenceConfig as InferenceConfig
from .core.cloud import CloudOnly
from .sdk.environment import CondaDependencies as CondaDependencies
from .sdk.environment import Environment as Environment
from .sdk.model import Model as Model
from .sdk.model import ResourceConfiguration as ResourceConfiguration
from .sdk.webservice import AciWebservice as AciWebservice
from .sdk.webservice import AksWebservice as AksWebservice
from .sdk.webservice import DockerWebservice as DockerWebservice
from .sdk.webservice import LocalWebservice as LocalWebservice
from .sdk.webservice import Webservice as Webservice
from .sdk.workspace import Workspace as Workspace

__all__ = [
    "AciWebservice",
    "AksCompute",
    "AksWebservice",
    "ComputeTarget",
    "CondaDependencies",
    "ContainerImage",
    "Dataset",
    "Datastore",
    "DockerWebservice",
    "Environment",
    "Experiment",
    "Image",
    "InferenceConfig",
    "InteractiveLoginAuthentication",
    "LocalWebservice",
    "Model",
    "ResourceConfiguration",
    "ServicePrincipalAuthentication",
    "Webservice",
    "Workspace",
    "dataset_type_definitions",
]

_CONTAINERS = (
    "deploy with AksWebservice.deploy_configuration(..., compute_target_name=<kubeconfig "
    "context>) to a Kubernetes cluster you have, AciWebservice.deploy_configuration("
    "cpu_cores=..., memory_gb=...) to a container on your Docker engine, or "
    "LocalWebservice.deploy_configuration() to a process on this machine"
)
_PACKAGE = (
    "Model.package(ws, [model], inference_config) builds the image on your Docker engine; "
    "generate_dockerfile=True and package.save(folder) give its Dockerfile"
)
_FILES = (
    "use local files: Model.profile takes a list of request strings, a DataFrame or a file "
    "with one request per line; Model.register takes a file or a folder"
)
_LOGIN = "there is nothing to log in to: Workspace() opens a local workspace folder"


class AksCompute(CloudOnly):
    what = "creates or attaches Azure Kubernetes Service compute"
    instead = _CONTAINERS


class ComputeTarget(CloudOnly):
    what = "creates or attaches compute in an Azure workspace"
    instead = _CONTAINERS


class ContainerImage(CloudOnly):
    what = "builds an image in the workspace's Azure Container Registry"
    instead = _PACKAGE


class Image(CloudOnly):
    what = "manages images in the workspace's Azure Container Registry"
    instead = _PACKAGE


class Datastore(CloudOnly):
    what = "reads and writes Azure storage"
    instead = _FILES


class Dataset(CloudOnly):
    what = "reads data sets kept in Azure storage"
    instead = _FILES


class InteractiveLoginAuthentication(CloudOnly):
    what = "logs in to Azure"
    instead = _LOGIN


class ServicePrincipalAuthentication(CloudOnly):
    what = "logs in to Azure with a service principal"
    instead = _LOGIN


class Experiment(CloudOnly):
    what = "tracks training runs in an Azure workspace"
    instead = (
        "train in the notebook and register the result: Model.register(ws, model_path=..., "
        "model_name=...) or nbdeploy.register(model, name)"
    )


class dataset_type_definitions(CloudOnly):
    what = "describes data sets kept in Azure storage"
    instead = _FILES
