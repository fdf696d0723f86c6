"""Scoring script for the diabetes Ridge regressor (used by `make demo`).

init() runs once when the service starts; run(data) once per request. `data` arrives
as a pandas DataFrame with the columns of the sample the model was registered with.
"""

import cloudpickle

import nbdeploy

model = None


def init():
    global model
    with open(nbdeploy.get_model_path("diabetes-ridge"), "rb") as fh:
        model = cloudpickle.load(fh)


def run(data):
    return model.predict(data).tolist()
