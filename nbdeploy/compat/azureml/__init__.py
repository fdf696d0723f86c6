"""nbdeploy's stand-in for the ``azureml`` namespace (see :mod:`nbdeploy.compat`)."""
