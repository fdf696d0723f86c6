"""nbdeploy's stand-in for ``inference_schema.parameter_types.standard_py_parameter_type``."""

from __future__ import annotations

from nbdeploy.compat._schema import StandardPythonParameterType as StandardPythonParameterType

__all__ = ["StandardPythonParameterType"]
