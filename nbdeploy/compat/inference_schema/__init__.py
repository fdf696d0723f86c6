"""nbdeploy's stand-in for ``inference_schema`` (see :mod:`nbdeploy.compat`)."""
