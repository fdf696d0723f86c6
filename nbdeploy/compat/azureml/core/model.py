"""nbdeploy's stand-in for ``azureml.core.model``: ``Model.get_model_path()``."""

from __future__ import annotations

from nbdeploy.compat._aml import Model as Model

__all__ = ["Model"]
