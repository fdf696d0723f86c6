"""Azure ML SDK v1 calls that only make sense in the cloud, answered with one clear error.

Code written for Azure ML runs with only its imports changed, so the calls that need
an Azure subscription (creating AKS compute, logging in, the workspace's container
registry, datastores ...) must not end in an ``AttributeError`` or a ``NameError``:
they raise :class:`~nbdeploy.exceptions.CloudOnlyError` naming the call and saying
what to use instead.

Two tools: :class:`CloudOnly`, the base of stand-in classes such as ``AksCompute``
whose every use raises, and :class:`CloudAttributes`, a mixin for nbdeploy's own
classes (``Workspace``, ``Webservice`` ...) listing the attributes of the reference
that are cloud-only.

Examples
--------
>>> class AksCompute(CloudOnly):
...     what = "creates Azure Kubernetes Service compute"
...     instead = "use LocalWebservice or AciWebservice deployment configurations"
>>> AksCompute.provisioning_configuration()
Traceback (most recent call last):
...
nbdeploy.exceptions.CloudOnlyError: AksCompute.provisioning_configuration creates Azure Kubernetes Service compute, which needs an Azure subscription
Hint: use LocalWebservice or AciWebservice deployment configurations
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn

from nbdeploy.exceptions import CloudOnlyError

__all__ = ["CloudAttributes", "CloudOnly", "cloud_only"]


def cloud_only(call: str, what: str, instead: str) -> CloudOnlyError:
    """The error for ``call``, which ``what`` (in the cloud); ``instead`` is the hint."""
    return CloudOnlyError(f"{call} {what}, which needs an Azure subscription", hint=instead)


class _CloudOnlyMeta(type):
    def __getattr__(cls, name: str) -> NoReturn:
        if name.startswith("_"):  # Python's own protocols (copy, pickle, inspect ...)
            raise AttributeError(name)
        raise cloud_only(f"{cls.__name__}.{name}", cls.what, cls.instead)

    what: str
    instead: str


class CloudOnly(metaclass=_CloudOnlyMeta):
    """A reference class with no local meaning: constructing it or using any of its
    attributes raises :class:`CloudOnlyError`. Subclasses set ``what`` and ``instead``."""

    what: ClassVar[str] = "is an Azure service"
    instead: ClassVar[str] = "see the README's Azure ML table for the local equivalent"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise cloud_only(f"{type(self).__name__}(...)", self.what, self.instead)


class CloudAttributes:
    """Mixin: the reference's cloud-only attributes of a class raise CloudOnlyError.

    ``_CLOUD_ONLY`` maps an attribute name to ``(what it does, what to use instead)``.
    Other unknown attributes still raise ``AttributeError``.
    """

    _CLOUD_ONLY: ClassVar[Mapping[str, tuple[str, str]]] = {}

    def __getattr__(self, name: str) -> Any:
        reason = type(self)._CLOUD_ONLY.get(name)
        if reason is None or name.startswith("__"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        raise cloud_only(f"{type(self).__name__}.{name}", *reason)
