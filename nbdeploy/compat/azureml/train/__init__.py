"""An empty ``azureml.train``: Azure ML's Power BI sample script imports
``azureml.train.automl`` (for unpickling AutoML models, which nbdeploy does not
support); the import succeeds so other models load."""
