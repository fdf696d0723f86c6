"""nbdeploy's stand-in for ``azureml.contrib`` (see :mod:`nbdeploy.compat`)."""
