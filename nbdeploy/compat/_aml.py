"""What the ``azureml`` shim modules provide (see :mod:`nbdeploy.compat`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nbdeploy.core.modelpath import get_model_path
from nbdeploy.core.rawhttp import Request, Response
from nbdeploy.exceptions import InvalidArgumentError

__all__ = ["AMLRequest", "AMLResponse", "Model"]

#: Azure ML's request class is Flask's; nbdeploy's :class:`Request` has the same API.
AMLRequest = Request


class AMLResponse(Response):
    """Azure ML's response: ``AMLResponse(message, status_code, response_headers=None,
    json_str=False)``.

    ``message`` is sent as it is (``str`` as UTF-8); as in Azure ML (a Flask response)
    the content type is ``text/html; charset=utf-8`` unless ``json_str=True`` makes it
    ``application/json``. A message that is neither ``str`` nor ``bytes`` is sent as
    JSON.

    Examples
    --------
    >>> r = AMLResponse(b"hello", 200)
    >>> r.status_code, r.get_data(), r.content_type
    (200, b'hello', 'text/html; charset=utf-8')
    >>> AMLResponse('{"a": 1}', 200, json_str=True).content_type
    'application/json'
    """

    def __init__(
        self,
        message: Any,
        status_code: int,
        response_headers: Mapping[str, str] | None = None,
        json_str: bool = False,
        run_function_failed: bool = False,
    ) -> None:
        del run_function_failed  # Azure ML's telemetry flag; nothing to do here
        if json_str:
            content_type = "application/json"
        elif isinstance(message, (str, bytes, bytearray)):
            content_type = "text/html; charset=utf-8"
        else:
            content_type = None
        super().__init__(message, status_code, response_headers, content_type)


class Model:
    """The part of Azure ML's ``Model`` a scoring script uses: :meth:`get_model_path`.

    Inside a service the workspace is not reachable; constructing a ``Model`` raises.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise InvalidArgumentError(
            "azureml.core.model.Model(...) is not available inside an nbdeploy service",
            hint="use Model.get_model_path(model_name, version=None) to find the model's "
            "files, or nbdeploy.get_model_path()",
        )

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace: Any = None) -> str:
        """The path of a deployed model's file (one file) or folder (several files).

        Examples
        --------
        >>> Model.get_model_path("sklearn_mnist")  # doctest: +SKIP
        '.../models/sklearn_mnist/1/sklearn_mnist_model.pkl'
        """
        del _workspace
        path: Path = get_model_path(model_name, None if version is None else int(version))
        return str(path)
