"""nbdeploy: turn a model in a Jupyter kernel into a documented, measured web service.

Two ways in, one core underneath (the layers: ``docs/architecture.md``):

- notebook-short: :func:`register`, :func:`deploy`, :func:`models`, :func:`services`;
- the object model of Azure ML SDK v1: :class:`Workspace`, :class:`Model`,
  :class:`Environment`, :class:`InferenceConfig`, :class:`LocalWebservice`,
  :class:`Webservice`.

Heavy imports (uvicorn, scikit-learn, docker ...) happen where they are used, so
``import nbdeploy`` stays fast.
"""

from __future__ import annotations

# Importing the display layer registers how the objects render in a notebook.
from . import display as display
from .api import delete_service as delete_service
from .api import deploy as deploy
from .api import get_model as get_model
from .api import get_service as get_service
from .api import models as models
from .api import package as package
from .api import profile as profile
from .api import register as register
from .api import services as services
from .core.bundle import InferenceConfig as InferenceConfig
from .core.modelpath import get_model_path as get_model_path
from .core.rawhttp import Request as Request
from .core.rawhttp import Response as Response
from .core.rawhttp import rawhttp as rawhttp
from .core.refs import ModelRef as ModelRef
from .core.registry import ModelVersion as ModelVersion
from .core.registry import Resources as Resources
from .core.scoring import check_script as check_script
from .core.services import ServiceState as ServiceState
from .exceptions import NbdeployError as NbdeployError
from .sdk.environment import Environment as Environment
from .sdk.model import Model as Model
from .sdk.profile import ProfileReport as ProfileReport
from .sdk.webservice import AciWebservice as AciWebservice
from .sdk.webservice import AksWebservice as AksWebservice
from .sdk.webservice import DockerWebservice as DockerWebservice
from .sdk.webservice import LocalWebservice as LocalWebservice
from .sdk.webservice import RayWebservice as RayWebservice
from .sdk.webservice import Webservice as Webservice
from .sdk.workspace import Workspace as Workspace
from .workflows.package import Package as Package

__version__ = "0.1.0"


# Entry points for IPython and Jupyter, importing their front only when called.
def load_ipython_extension(ipython: object) -> None:
    """``%load_ext nbdeploy``: register the magics (see :mod:`nbdeploy.notebook`)."""
    from .notebook import load_ipython_extension as load

    load(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    from .lab import _jupyter_labextension_paths as paths

    return paths()


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    from .lab import _jupyter_server_extension_points as points

    return points()


__all__ = [
    "AciWebservice",
    "AksWebservice",
    "DockerWebservice",
    "Environment",
    "InferenceConfig",
    "LocalWebservice",
    "Model",
    "ModelRef",
    "ModelVersion",
    "NbdeployError",
    "Package",
    "ProfileReport",
    "RayWebservice",
    "Request",
    "Resources",
    "Response",
    "ServiceState",
    "Webservice",
    "Workspace",
    "__version__",
    "check_script",
    "delete_service",
    "deploy",
    "get_model",
    "get_model_path",
    "get_service",
    "load_ipython_extension",
    "models",
    "package",
    "profile",
    "rawhttp",
    "register",
    "services",
]
