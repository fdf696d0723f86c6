"""`make demo`: train, register, deploy locally, call with plain `requests`, clean up.

Uses the default workspace ($NBDEPLOY_HOME, else ~/.nbdeploy) and the local target.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import nbdeploy
from nbdeploy.targets import shutdown_warm_server

HERE = Path(__file__).parent
REQUEST = {"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]}


def main() -> None:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge(alpha=0.5).fit(X, y)
    print(f"trained Ridge on {len(X)} rows, R^2 = {model.score(X, y):.3f}")

    registered = nbdeploy.register(
        model,
        "diabetes-ridge",
        sample_input=X.head(3),
        sample_output=model.predict(X.head(3)),
        tags={"dataset": "diabetes"},
        description="Ridge regression on scikit-learn's diabetes data",
    )
    print(f"registered {registered.name}:{registered.version} ({registered.framework})")

    started = time.perf_counter()
    service = nbdeploy.deploy(
        registered, name="diabetes-demo", score=str(HERE / "score_diabetes.py")
    )
    print(f"deployed {service.name} in {time.perf_counter() - started:.2f} s: {service.state}")
    try:
        response = requests.post(
            service.scoring_uri,
            data=json.dumps(REQUEST),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        response.raise_for_status()
        predictions = response.json()
        print(f"request:     {json.dumps(REQUEST)}")
        print(f"predictions: {predictions}")
        print(f"scoring URI: {service.scoring_uri}")
        print(f"swagger URI: {service.swagger_uri}")
    finally:
        service.delete()
        shutdown_warm_server(service.workspace)
        print("cleaned up: service deleted, no server process left")


if __name__ == "__main__":
    main()
