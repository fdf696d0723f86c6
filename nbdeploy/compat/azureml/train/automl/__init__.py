"""An empty ``azureml.train.automl`` (see ``azureml.train``)."""
