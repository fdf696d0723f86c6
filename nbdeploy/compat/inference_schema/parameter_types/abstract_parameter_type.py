"""nbdeploy's stand-in for ``inference_schema.parameter_types.abstract_parameter_type``."""

from __future__ import annotations

from nbdeploy.compat._schema import AbstractParameterType as AbstractParameterType

__all__ = ["AbstractParameterType"]
