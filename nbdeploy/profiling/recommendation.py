"""The sizing rules: :func:`recommend` (CPU and memory) and :func:`replicas_for`.

:func:`recommend` turns what a profile measured into ``requestedCpu`` /
``requestedMemoryInGb``; :func:`replicas_for` is the reference's autoscaling formula.
Pure functions: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nbdeploy.exceptions import InvalidArgumentError

from .sampling import SAMPLE_INTERVAL_S

__all__ = [
    "GIB",
    "MEMORY_BASE_GB",
    "MEMORY_HEADROOM",
    "MIN_CPU",
    "Recommendation",
    "recommend",
    "replicas_for",
]

#: Bytes in the "GB" of ``requestedMemoryInGb`` (a GiB, as Docker's and Kubernetes' ``Gi``).
GIB = 2**30
#: Memory rule: peak resident memory x this headroom ...
MEMORY_HEADROOM = 1.25
#: ... plus this many GB for the allocator, buffers of large requests, log bursts.
MEMORY_BASE_GB = 0.1
#: The smallest CPU recommendation (cores); Kubernetes schedules in 0.1-core steps too.
MIN_CPU = 0.1


def _ceil_tenth(value: float) -> float:
    """Round up to a multiple of 0.1 (tolerating float noise: 0.30000000004 -> 0.3)."""
    return math.ceil(round(value * 10, 6)) / 10


def replicas_for(
    target_rps: float,
    request_seconds: float,
    target_utilization: float = 0.7,
    max_concurrent_per_replica: int = 1,
) -> int:
    """How many replicas serve ``target_rps`` — the reference's autoscaling formula.

    ``ceil(target_rps * request_seconds / target_utilization / max_concurrent_per_replica)``:
    the requests in flight at the target rate (Little's law), inflated so each replica
    stays at ``target_utilization``, divided by what one replica handles at once.

    Parameters
    ----------
    target_rps:
        Requests per second the service must sustain (> 0).
    request_seconds:
        Time one request takes, in seconds (> 0) — e.g. a profile's mean latency.
    target_utilization:
        Fraction of its capacity a replica should run at, in (0, 1]; default 70 %.
    max_concurrent_per_replica:
        Requests one replica serves at the same time (>= 1).

    Examples
    --------
    The reference's example: 20 requests/s of 10 s each at 70 % utilization.

    >>> replicas_for(20, 10)
    286
    >>> replicas_for(100, 0.02)
    3
    >>> replicas_for(100, 0.02, target_utilization=1.0, max_concurrent_per_replica=2)
    1
    """
    for what, value in (("target_rps", target_rps), ("request_seconds", request_seconds)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise InvalidArgumentError(f"{what} must be a positive number, got {value!r}")
    if not (0 < target_utilization <= 1):
        raise InvalidArgumentError(
            f"target_utilization must be in (0, 1], got {target_utilization!r}",
            hint="write 70 % as 0.7",
        )
    if int(max_concurrent_per_replica) != max_concurrent_per_replica or (
        max_concurrent_per_replica < 1
    ):
        raise InvalidArgumentError(
            f"max_concurrent_per_replica must be an integer >= 1, "
            f"got {max_concurrent_per_replica!r}"
        )
    concurrent = target_rps * request_seconds / target_utilization
    return max(1, math.ceil(round(concurrent / max_concurrent_per_replica, 9)))


@dataclass(frozen=True)
class Recommendation:
    """The resources a service needs, with the rule that produced them.

    Parameters
    ----------
    cpu:
        ``requestedCpu``: cores (multiples of 0.1), or ``None`` when no serving process
        could be measured.
    memory_gb:
        ``requestedMemoryInGb``: GB of 2**30 bytes (multiples of 0.1), or ``None``.
    explanation:
        How the figures were derived, in words, with the measured inputs.

    Examples
    --------
    >>> r = Recommendation(cpu=1.0, memory_gb=0.5, explanation="measured")
    >>> Recommendation.from_dict(r.to_dict()) == r
    True
    """

    cpu: float | None
    memory_gb: float | None
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "memory_gb": self.memory_gb, "explanation": self.explanation}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recommendation:
        cpu, mem = data.get("cpu"), data.get("memory_gb")
        return cls(
            cpu=None if cpu is None else float(cpu),
            memory_gb=None if mem is None else float(mem),
            explanation=str(data.get("explanation", "")),
        )

    def as_tags(self) -> dict[str, str]:
        """The reference's model tags: ``{"requestedCpu": ..., "requestedMemoryInGb": ...}``."""
        tags: dict[str, str] = {}
        if self.cpu is not None:
            tags["requestedCpu"] = f"{self.cpu:g}"
        if self.memory_gb is not None:
            tags["requestedMemoryInGb"] = f"{self.memory_gb:g}"
        return tags


def recommend(
    *,
    peak_memory_bytes: int | None,
    load_cpu_cores: float | None,
    p95_cpu_cores: float | None,
    measured_rps: float,
    target_rps: float | None = None,
) -> Recommendation:
    """Size a service from what a profile measured.

    Memory
        ``requestedMemoryInGb = ceil_0.1(peak_gb x 1.25 + 0.1)`` where ``peak_gb`` is
        the larger of the peak resident memory sampled during the profile and the
        processes' resident high-water mark since they started (``VmHWM``), so the
        model's load at ``init()`` counts too. 25 % headroom covers requests larger
        than the sample and allocator fragmentation; the 0.1 GB floor covers small
        bursts (buffers, logging) that a short profile may not meet.
    CPU
        With ``target_rps``: ``requestedCpu = ceil_0.1(cores x target_rps / measured_rps)``
        — the CPU one successful request costs (the mean cores used during the load
        divided by the successful requests per second), times the rate to sustain.
        Without it: ``ceil_0.1(p95 of the sampled cores during the load)`` — enough for
        the load the profile applied (at saturation that is the most the service can
        use); a load shorter than one sample interval uses the mean cores instead.
        Never below 0.1 core.

    Examples
    --------
    >>> r = recommend(peak_memory_bytes=300 * 2**20, load_cpu_cores=1.0,
    ...               p95_cpu_cores=1.02, measured_rps=50.0)
    >>> r.cpu, r.memory_gb
    (1.1, 0.5)
    >>> recommend(peak_memory_bytes=300 * 2**20, load_cpu_cores=1.0, p95_cpu_cores=1.02,
    ...           measured_rps=50.0, target_rps=10).cpu
    0.2
    """
    memory_gb, memory_text = _memory(peak_memory_bytes)
    cpu, cpu_text = _cpu(load_cpu_cores, p95_cpu_cores, measured_rps, target_rps)
    return Recommendation(cpu=cpu, memory_gb=memory_gb, explanation=f"{memory_text}; {cpu_text}.")


def _memory(peak_memory_bytes: int | None) -> tuple[float | None, str]:
    """The memory figure (GB) and how it was reached."""
    if peak_memory_bytes is None or peak_memory_bytes <= 0:
        return None, "memory: no serving process could be measured, so no memory figure"
    peak_gb = peak_memory_bytes / GIB
    memory_gb = _ceil_tenth(peak_gb * MEMORY_HEADROOM + MEMORY_BASE_GB)
    return memory_gb, (
        f"memory: peak resident memory {peak_memory_bytes / 2**20:.0f} MiB "
        f"({peak_gb:.3f} GB; the larger of the peak sampled during the profile and "
        f"the processes' high-water mark since start) x {MEMORY_HEADROOM:g} headroom "
        f"+ {MEMORY_BASE_GB:g} GB, rounded up to 0.1 GB = {memory_gb:g} GB"
    )


def _cpu(
    load_cpu_cores: float | None,
    p95_cpu_cores: float | None,
    measured_rps: float,
    target_rps: float | None,
) -> tuple[float | None, str]:
    """The CPU figure (cores) and how it was reached: from the cost of a request times
    the target rate, else the 95th percentile of the samples, else the mean."""
    if target_rps is not None and load_cpu_cores is not None and measured_rps > 0:
        raw = load_cpu_cores * target_rps / measured_rps
        basis = (
            f"{load_cpu_cores:.2f} cores used while serving {measured_rps:.1f} "
            f"successful requests/s = {load_cpu_cores / measured_rps * 1000:.2f} ms of CPU "
            f"per request; x {target_rps:g} target requests/s = {raw:.2f} cores"
        )
        advice = ""
    elif p95_cpu_cores is not None:
        raw = p95_cpu_cores
        basis = (
            f"95th percentile of the cores sampled every {SAMPLE_INTERVAL_S:g} s "
            f"during the load = {raw:.2f}"
        )
        advice = "; pass target_rps= to size for a request rate instead"
    elif load_cpu_cores is not None:
        raw = load_cpu_cores
        basis = (
            f"the load was too short for {SAMPLE_INTERVAL_S:g} s samples; mean cores "
            f"during the load = {raw:.2f}"
        )
        advice = "; profile longer for a firmer figure"
    else:
        return None, "cpu: no serving process could be measured, so no CPU figure"
    cpu = max(MIN_CPU, _ceil_tenth(raw))
    return cpu, f"cpu: {basis}, rounded up to 0.1 (at least {MIN_CPU:g}) = {cpu:g} cores{advice}"
