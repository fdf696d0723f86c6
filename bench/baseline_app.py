"""The baseline for the serving bench: a minimal hand-written FastAPI endpoint.

What a careful engineer writes by hand to serve one scikit-learn model: uvloop,
orjson, one worker, no validation beyond what numpy does. `BASELINE_MODEL` names the
cloudpickle file to serve.
"""

import os

import cloudpickle
import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

with open(os.environ["BASELINE_MODEL"], "rb") as fh:
    model = cloudpickle.load(fh)

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.post("/score")
async def score(request: Request) -> Response:
    data = orjson.loads(await request.body())["data"]
    result = model.predict(np.asarray(data, dtype=np.float64))
    return Response(
        orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
    )
