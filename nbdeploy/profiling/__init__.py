"""Profiling: how fast a scoring endpoint serves, and what CPU and memory it needs.

The reference (Azure ML's ``Model.profile``) sends a sample of requests to a
temporary service and answers with latencies and a recommended ``requestedCpu`` /
``requestedMemoryInGb``. This package is that measurement, done locally and in seconds:

- :mod:`.bodies` — :func:`prepare_requests` turns what the user has (JSON strings, a
  DataFrame whose rows or batches become requests, an ndarray, a file with one request
  per line) into request bodies.
- :mod:`.loadgen` — the load generator: ``concurrency`` raw HTTP/1.1 keep-alive
  connections to a loopback ``/score`` endpoint (asyncio, one event loop in its own
  thread, so it also works inside a Jupyter kernel whose loop is running), bounded by
  a request count and a duration, cycling through the bodies.
- :mod:`.sampling` — a sampler thread reads the CPU time and resident memory of the
  serving process and its children every ~100 ms (psutil), and the kernel's ``VmHWM``.
- :mod:`.recommendation` — the sizing rules: :func:`recommend` and the reference's replica
  formula :func:`replicas_for`.
- :mod:`.report` — :class:`ProfileResult` holds every figure (latency percentiles,
  throughput, errors by status, CPU and memory time series, the per-request
  latencies) and a :class:`Recommendation`.
- :mod:`.measure` — :func:`run_profile` puts them together.

Only loopback endpoints are profiled: a profile is a load test, and nbdeploy sends
load to nothing but this machine.

Imports only :mod:`nbdeploy.core` (and the standard library, numpy, pandas; psutil is
imported where it is used).
"""

from __future__ import annotations

from .bodies import prepare_requests
from .loadgen import CONNECTION_ERROR, TIMEOUT_ERROR, check_loopback, status_label
from .measure import DEFAULT_DURATION_S, MAX_DURATION_S, MAX_REQUESTS, run_profile
from .recommendation import GIB, Recommendation, recommend, replicas_for
from .report import ProfileResult

__all__ = [
    "CONNECTION_ERROR",
    "DEFAULT_DURATION_S",
    "GIB",
    "MAX_DURATION_S",
    "MAX_REQUESTS",
    "TIMEOUT_ERROR",
    "ProfileResult",
    "Recommendation",
    "check_loopback",
    "prepare_requests",
    "recommend",
    "replicas_for",
    "run_profile",
    "status_label",
]
