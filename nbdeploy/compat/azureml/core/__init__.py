"""nbdeploy's stand-in for ``azureml.core``: only ``Model`` (see :mod:`nbdeploy.compat`)."""

from __future__ import annotations

from .model import Model as Model

__all__ = ["Model"]
