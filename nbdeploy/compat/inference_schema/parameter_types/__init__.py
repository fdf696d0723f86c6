"""nbdeploy's stand-in for ``inference_schema.parameter_types``."""
