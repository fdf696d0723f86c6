"""nbdeploy's stand-in for ``inference_schema.schema_decorators``."""

from __future__ import annotations

from nbdeploy.compat._schema import input_schema as input_schema
from nbdeploy.compat._schema import output_schema as output_schema

__all__ = ["input_schema", "output_schema"]
