"""nbdeploy's stand-in for ``azureml.contrib.services.aml_response``."""

from __future__ import annotations

from nbdeploy.compat._aml import AMLResponse as AMLResponse

__all__ = ["AMLResponse"]
