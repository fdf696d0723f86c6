"""nbdeploy's stand-in for ``inference_schema.parameter_types.pandas_parameter_type``."""

from __future__ import annotations

from nbdeploy.compat._schema import PandasParameterType as PandasParameterType

__all__ = ["PandasParameterType"]
