"""nbdeploy's stand-in for ``inference_schema.parameter_types.numpy_parameter_type``."""

from __future__ import annotations

from nbdeploy.compat._schema import NumpyParameterType as NumpyParameterType

__all__ = ["NumpyParameterType"]
