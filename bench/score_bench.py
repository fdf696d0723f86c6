"""Scoring script of the serving bench: the same work as baseline_app.py."""

import cloudpickle

import nbdeploy

model = None


def init():
    global model
    with open(nbdeploy.get_model_path(), "rb") as fh:
        model = cloudpickle.load(fh)


def run(data):
    return model.predict(data)
