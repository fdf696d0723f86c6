"""The whole measurement: :func:`run_profile`.

Sends the load (:mod:`~nbdeploy.profiling.loadgen`) while sampling the serving
processes (:mod:`~nbdeploy.profiling.sampling`), then builds the
:class:`~nbdeploy.profiling.report.ProfileResult` with its recommendation.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from nbdeploy.exceptions import InvalidArgumentError, TargetUnavailableError

from .loadgen import (
    DEAD_AFTER,
    Endpoint,
    Load,
    build_messages,
    check_loopback,
    drive,
    run_load,
)
from .recommendation import recommend
from .report import ProfileResult
from .sampling import SAMPLE_INTERVAL_S, ProcessSampler

__all__ = ["DEFAULT_DURATION_S", "MAX_DURATION_S", "MAX_REQUESTS", "run_profile"]

#: Seconds a profile runs when neither ``duration`` nor ``count`` is given.
DEFAULT_DURATION_S = 10.0
#: A profile never sends load for longer than this (seconds), whatever was asked.
MAX_DURATION_S = 600.0
#: A profile never sends more requests than this.
MAX_REQUESTS = 1_000_000


def run_profile(
    scoring_uri: str,
    requests: Sequence[bytes],
    *,
    concurrency: int = 1,
    duration: float | None = None,
    count: int | None = None,
    pids: Sequence[int] = (),
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    target_rps: float | None = None,
    name: str = "profile",
    service: str | None = None,
    models: Sequence[str] = (),
    sample_interval: float = SAMPLE_INTERVAL_S,
) -> ProfileResult:
    """Send ``requests`` to ``scoring_uri`` and measure the serving processes.

    Each of ``concurrency`` workers opens one keep-alive HTTP/1.1 connection and sends
    one unmeasured warm-up request; then the clock starts and the workers send the
    bodies in turn (cycling) until ``count`` requests were sent or ``duration`` seconds
    passed (in-flight requests finish). Without either, the load runs
    :data:`DEFAULT_DURATION_S` seconds; it never runs longer than
    :data:`MAX_DURATION_S` or sends more than :data:`MAX_REQUESTS`.

    Parameters
    ----------
    scoring_uri:
        An ``http://`` URI on a loopback address (others are refused).
    requests:
        Request bodies (see :func:`prepare_requests`).
    concurrency:
        Requests in flight at once.
    duration, count:
        Bounds of the load: seconds, requests.
    pids:
        The serving processes; they and their children are sampled for CPU and memory.
    headers:
        Extra request headers (e.g. ``Authorization``).
    timeout:
        Seconds one request may take before it counts as a ``timeout`` error.
    target_rps:
        Size the CPU recommendation for this many requests per second.
    name, service, models:
        Labels carried into the result.
    sample_interval:
        Seconds between process samples.

    Returns
    -------
    ProfileResult

    Raises
    ------
    InvalidArgumentError
        A non-loopback URI, bad bounds, an empty sample, an unknown PID.
    TargetUnavailableError
        The endpoint refused every connection.

    Examples
    --------
    >>> result = run_profile(svc.scoring_uri, [b'{"data": [[1, 2]]}'], count=100,
    ...                      pids=[svc.record.config["pid"]])          # doctest: +SKIP
    >>> result.get_details()["latencyPercentile50InMs"]                 # doctest: +SKIP
    1.42
    """
    host, port, path = check_loopback(scoring_uri)
    bodies = tuple(requests)
    duration, count = _check_bounds(bodies, concurrency, count, duration, target_rps, timeout)
    host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    endpoint = Endpoint(host=host, port=port, path=path, host_header=host_header)
    messages = build_messages(bodies, endpoint, headers or {})
    load = Load(bodies, count, duration)
    sampler = ProcessSampler(pids, sample_interval) if pids else None
    marks = _Marks(sampler)
    if sampler is not None:
        sampler.start()
    try:
        run_load(
            drive(load, endpoint, messages, concurrency, timeout, marks.on_start, marks.on_end)
        )
    finally:
        if sampler is not None:
            sampler.stop()
    if load.dead:
        raise TargetUnavailableError(
            f"{scoring_uri} refused every connection ({DEAD_AFTER} in a row)",
            hint="is the service running? check service.state and service.get_logs()",
        )
    draft = ProfileResult(
        name=name,
        scoring_uri=scoring_uri,
        service=service,
        models=tuple(models),
        concurrency=concurrency,
        pids=tuple(pids),
        target_rps=target_rps,
        **_load_fields(load, marks),
        **_sample_fields(sampler, marks),
    )
    rec = recommend(
        peak_memory_bytes=draft.peak_memory_bytes,
        load_cpu_cores=draft.load_cpu_cores,
        p95_cpu_cores=draft.p95_cpu_cores,
        measured_rps=draft.success_rps,
        target_rps=target_rps,
    )
    return dataclasses.replace(draft, recommendation=rec)


def _check_bounds(
    bodies: tuple[Any, ...],
    concurrency: int,
    count: int | None,
    duration: float | None,
    target_rps: float | None,
    timeout: float,
) -> tuple[float, int]:
    """Check :func:`run_profile`'s arguments; return the (duration, count) bounds to use."""
    if not bodies or not all(isinstance(b, bytes) for b in bodies):
        raise InvalidArgumentError(
            "requests must be a non-empty sequence of bytes bodies",
            hint="build them with nbdeploy.profiling.prepare_requests(...)",
        )
    if not isinstance(concurrency, int) or not 1 <= concurrency <= 1024:
        raise InvalidArgumentError(
            f"concurrency must be an integer in 1..1024, got {concurrency!r}"
        )
    if count is not None and (not isinstance(count, int) or count < 1):
        raise InvalidArgumentError(f"count must be an integer >= 1, got {count!r}")
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise InvalidArgumentError(
            f"duration must be a positive number of seconds, got {duration!r}"
        )
    if target_rps is not None and not (math.isfinite(target_rps) and target_rps > 0):
        raise InvalidArgumentError(f"target_rps must be a positive number, got {target_rps!r}")
    if not timeout > 0:
        raise InvalidArgumentError(f"timeout must be positive, got {timeout!r}")
    if duration is None:
        duration = DEFAULT_DURATION_S if count is None else MAX_DURATION_S
    return min(float(duration), MAX_DURATION_S), min(
        count if count is not None else MAX_REQUESTS, MAX_REQUESTS
    )


class _Marks:
    """The clock and CPU readings taken as the load starts and ends."""

    def __init__(self, sampler: ProcessSampler | None) -> None:
        self.sampler = sampler
        self.values: dict[str, float] = {}

    def on_start(self) -> float:
        if self.sampler is not None:
            now, cpu, _ = self.sampler.sample()
            self.values["cpu0"] = cpu
        else:
            now = time.perf_counter()
        self.values["t0"] = now
        self.values["wall0"] = time.time()
        return now

    def on_end(self) -> None:
        if self.sampler is not None:
            self.values["t1"], self.values["cpu1"], _ = self.sampler.sample()

    @property
    def t0(self) -> float:
        return self.values.get("t0", time.perf_counter())


def _load_fields(load: Load, marks: _Marks) -> dict[str, Any]:
    """The per-request figures of a finished load, on the profile's clock (0 = start)."""
    t0 = marks.t0
    starts = np.array(load.starts) - t0
    ends = np.array(load.ends) - t0
    return {
        "started": datetime.fromtimestamp(marks.values.get("wall0", time.time()), timezone.utc),
        "duration_s": float(ends.max()) if len(ends) else 0.0,
        "request_starts_s": starts,
        "latencies_s": ends - starts,
        "statuses": np.array(load.statuses, dtype=np.int64),
    }


def _sample_fields(sampler: ProcessSampler | None, marks: _Marks) -> dict[str, Any]:
    """The CPU and memory figures of the sampled processes (empty without a sampler)."""
    fields: dict[str, Any] = {
        "sample_t_s": np.zeros(0),
        "sample_cpu_cores": np.zeros(0),
        "sample_rss_bytes": np.zeros(0, dtype=np.int64),
        "load_cpu_cores": None,
        "peak_rss_bytes": None,
        "hwm_bytes": None,
    }
    if sampler is None:
        return fields
    t0 = marks.t0
    t_abs = np.array(sampler.t)
    cum = np.array(sampler.cpu)
    dt = np.diff(t_abs, prepend=t_abs[0])
    dcpu = np.diff(cum, prepend=cum[0])
    sample_rss = np.array(sampler.rss, dtype=np.int64)
    fields["sample_t_s"] = t_abs - t0
    fields["sample_cpu_cores"] = np.divide(dcpu, dt, out=np.zeros_like(dcpu), where=dt > 0)
    fields["sample_rss_bytes"] = sample_rss
    fields["peak_rss_bytes"] = int(sample_rss.max()) if len(sample_rss) else None
    fields["hwm_bytes"] = sampler.hwm_bytes
    # CPU over the load, from the samples taken as it started and ended.
    values = marks.values
    if "cpu1" in values and values["t1"] > t0:
        fields["load_cpu_cores"] = float((values["cpu1"] - values["cpu0"]) / (values["t1"] - t0))
    return fields
