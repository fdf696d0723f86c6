"""nbdeploy's stand-in for ``azureml.contrib.services.aml_request``."""

from __future__ import annotations

from nbdeploy.compat._aml import AMLRequest as AMLRequest
from nbdeploy.core.rawhttp import rawhttp as rawhttp

__all__ = ["AMLRequest", "rawhttp"]
