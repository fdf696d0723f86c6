"""The shared deployment core: registry, schemas, scoring contract, environments, bundles.

Imports only the standard library, numpy and pandas (plus what a feature needs, at the
point of use). Never IPython, ipywidgets, FastAPI, docker, kubernetes or ray: a test
checks this in a fresh interpreter.
"""
