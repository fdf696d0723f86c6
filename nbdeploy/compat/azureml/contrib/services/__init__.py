"""nbdeploy's stand-in for ``azureml.contrib.services`` (see :mod:`nbdeploy.compat`)."""
