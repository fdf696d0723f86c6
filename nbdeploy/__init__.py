"""nbdeploy: turn a model in a Jupyter kernel into a documented, measured web service.

Two ways in, one core underneath:

- notebook-short: :func:`register`, :func:`deploy`, :func:`models`, :func:`services`;
- the object model of Azure ML SDK v1: :class:`Workspace`, :class:`Model`,
  :class:`Environment`, :class:`InferenceConfig`, :class:`LocalWebservice`,
  :class:`Webservice`.

Heavy imports (uvicorn, scikit-learn, docker ...) happen where they are used, so
``import nbdeploy`` stays fast.
"""

from __future__ import annotations

from ._api import delete_service as delete_service
from ._api import deploy as deploy
from ._api import get_model as get_model
from ._api import get_service as get_service
from ._api import models as models
from ._api import register as register
from ._api import services as services
from ._environment import Environment as Environment
from ._model import Model as Model
from ._package import Package as Package
from ._package import package as package
from ._profile import ProfileReport as ProfileReport
from ._profile import profile as profile
from ._service import AciWebservice as AciWebservice
from ._service import AksWebservice as AksWebservice
from ._service import DockerWebservice as DockerWebservice
from ._service import LocalWebservice as LocalWebservice
from ._service import RayWebservice as RayWebservice
from ._service import Webservice as Webservice
from ._workspace import Workspace as Workspace
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
