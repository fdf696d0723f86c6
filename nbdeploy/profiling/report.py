"""The report of a profile: :class:`ProfileResult`.

Holds every figure a profile measured (latency percentiles, throughput, errors by
status, CPU and memory time series, the per-request latencies) and the
:class:`~nbdeploy.profiling.recommendation.Recommendation`; it round-trips through
:meth:`ProfileResult.to_dict` / :meth:`ProfileResult.from_dict`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from nbdeploy.exceptions import InvalidArgumentError

from .loadgen import status_label
from .recommendation import GIB, Recommendation, recommend, replicas_for

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["ProfileResult", "example_dict"]


def _readonly(values: Any, dtype: Any) -> npt.NDArray[Any]:
    arr = np.array(values, dtype=dtype)
    arr.flags.writeable = False
    return arr


_ARRAYS = {
    "request_starts_s": np.float64,
    "latencies_s": np.float64,
    "statuses": np.int64,
    "sample_t_s": np.float64,
    "sample_cpu_cores": np.float64,
    "sample_rss_bytes": np.int64,
}


@dataclass(frozen=True, eq=False)
class ProfileResult:
    """What a profile measured, and the resources it recommends.

    The reference's ``ModelProfile``: :meth:`get_details` gives its keys
    (``requestedCpu``, ``requestedMemoryInGb``, ``latencyPercentile99InMs`` ...),
    :meth:`get_results` its short ``{"cpu": ..., "memoryInGB": ...}``. The core keeps
    to figures and text (:meth:`summary`, a cheap ``repr``); the notebook report
    (percentiles table, latency histogram, CPU and memory over time, the
    recommendation) is drawn by the front's ``nbdeploy.ProfileReport``, which is what
    ``nbdeploy.profile`` returns.

    Parameters
    ----------
    name:
        The profile's name.
    scoring_uri:
        The endpoint that was profiled.
    service:
        The service's name, if it was a recorded service.
    models:
        The ``name:version`` of the models served.
    concurrency:
        Requests in flight at once (one keep-alive connection each).
    started:
        When the load started (aware UTC).
    duration_s:
        Seconds from the load's start to its last answer.
    request_starts_s, latencies_s, statuses:
        Per request (in the order they completed): start offset from the load's start,
        latency in seconds, and HTTP status (``-1`` connection error, ``-2`` timeout).
    sample_t_s, sample_cpu_cores, sample_rss_bytes:
        The process samples: time from the load's start (negative during the warm-up),
        CPU in cores over the interval ending at that time (the first is 0), and the
        resident memory of the process tree.
    pids:
        The serving processes (roots) that were sampled; empty when none was known.
    load_cpu_cores:
        Mean cores used by the process tree from the load's start to its end.
    peak_rss_bytes:
        The largest resident memory sampled during the profile (warm-up included).
    hwm_bytes:
        The processes' resident high-water mark since they started (``VmHWM``).
    target_rps:
        The request rate the CPU recommendation is sized for, if given.
    recommendation:
        The :class:`Recommendation` (see :func:`recommend` for the rule).
    """

    name: str
    scoring_uri: str
    service: str | None
    models: tuple[str, ...]
    concurrency: int
    started: datetime
    duration_s: float
    request_starts_s: npt.NDArray[np.float64]
    latencies_s: npt.NDArray[np.float64]
    statuses: npt.NDArray[np.int64]
    sample_t_s: npt.NDArray[np.float64]
    sample_cpu_cores: npt.NDArray[np.float64]
    sample_rss_bytes: npt.NDArray[np.int64]
    pids: tuple[int, ...] = ()
    load_cpu_cores: float | None = None
    peak_rss_bytes: int | None = None
    hwm_bytes: int | None = None
    target_rps: float | None = None
    recommendation: Recommendation = field(
        default_factory=lambda: Recommendation(None, None, "not computed")
    )

    def __post_init__(self) -> None:
        for name, dtype in _ARRAYS.items():
            object.__setattr__(self, name, _readonly(getattr(self, name), dtype))
        n = len(self.latencies_s)
        if len(self.statuses) != n or len(self.request_starts_s) != n:
            raise InvalidArgumentError(
                "request_starts_s, latencies_s and statuses must have the same length, got "
                f"{len(self.request_starts_s)}, {n} and {len(self.statuses)}"
            )
        if not (len(self.sample_t_s) == len(self.sample_cpu_cores) == len(self.sample_rss_bytes)):
            raise InvalidArgumentError("the sample arrays must have the same length")
        if self.concurrency < 1:
            raise InvalidArgumentError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.started.tzinfo is None:
            raise InvalidArgumentError("started must be an aware datetime")
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "pids", tuple(int(p) for p in self.pids))

    @property
    def total(self) -> int:
        """Requests sent during the load (warm-up excluded)."""
        return len(self.statuses)

    @property
    def success_mask(self) -> npt.NDArray[np.bool_]:
        """Which requests got a 2xx answer."""
        return (self.statuses >= 200) & (self.statuses < 300)

    @property
    def success_count(self) -> int:
        return int(self.success_mask.sum())

    @property
    def success_rate(self) -> float:
        """Successful requests / requests sent (1.0 when nothing failed)."""
        return self.success_count / self.total if self.total else 0.0

    @property
    def error_counts(self) -> dict[str, int]:
        """Failed requests by HTTP status (``"500"``) or ``"connection"`` / ``"timeout"``."""
        failed = self.statuses[~self.success_mask]
        codes, counts = np.unique(failed, return_counts=True)
        return {status_label(int(c)): int(k) for c, k in zip(codes, counts, strict=True)}

    @property
    def status_counts(self) -> dict[str, int]:
        """Every request by status, successes included."""
        codes, counts = np.unique(self.statuses, return_counts=True)
        return {status_label(int(c)): int(k) for c, k in zip(codes, counts, strict=True)}

    @property
    def throughput_rps(self) -> float:
        """Answered requests per second (any status; connection errors and timeouts not)."""
        answered = int((self.statuses > 0).sum())
        return answered / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def success_rps(self) -> float:
        """Successful requests per second."""
        return self.success_count / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def success_latencies_ms(self) -> npt.NDArray[np.float64]:
        """Latencies of the successful requests, in ms (what the percentiles describe)."""
        return np.asarray(self.latencies_s[self.success_mask] * 1000.0)

    def latency_ms(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of successful requests' latency, in ms (NaN if none).

        Examples
        --------
        >>> r = ProfileResult.from_dict(example_dict())
        >>> r.latency_ms(50)
        20.0
        """
        lat = self.success_latencies_ms
        return float(np.percentile(lat, q)) if len(lat) else math.nan

    @property
    def latency_summary_ms(self) -> dict[str, float]:
        """Mean, p50, p90, p95, p99, p99.9 and max latency of successful requests, in ms."""
        lat = self.success_latencies_ms
        if not len(lat):
            keys = ("mean", "p50", "p90", "p95", "p99", "p99.9", "max")
            return dict.fromkeys(keys, math.nan)
        p50, p90, p95, p99, p999 = np.percentile(lat, [50, 90, 95, 99, 99.9])
        return {
            "mean": float(lat.mean()),
            "p50": float(p50),
            "p90": float(p90),
            "p95": float(p95),
            "p99": float(p99),
            "p99.9": float(p999),
            "max": float(lat.max()),
        }

    def _load_window(self) -> npt.NDArray[np.bool_]:
        t = self.sample_t_s
        return (t > 0) & (t <= self.duration_s + 1e-9)

    @property
    def p95_cpu_cores(self) -> float | None:
        """95th percentile of the cores sampled during the load (``None`` without samples)."""
        window = self.sample_cpu_cores[self._load_window()]
        return float(np.percentile(window, 95)) if len(window) else None

    @property
    def max_cpu_cores(self) -> float | None:
        """The most cores any sample interval of the load used."""
        window = self.sample_cpu_cores[self._load_window()]
        return float(window.max()) if len(window) else None

    @property
    def peak_memory_bytes(self) -> int | None:
        """The larger of the sampled peak RSS and the high-water mark (what sizing uses)."""
        known = [v for v in (self.peak_rss_bytes, self.hwm_bytes) if v is not None]
        return max(known) if known else None

    @property
    def state(self) -> str:
        """``Succeeded`` when at least one request succeeded, else ``Failed`` (as the reference)."""
        return "Succeeded" if self.success_count else "Failed"

    def replicas(
        self,
        target_rps: float,
        target_utilization: float = 0.7,
        max_concurrent_per_replica: int = 1,
    ) -> int:
        """Replicas for ``target_rps`` at this profile's mean latency (:func:`replicas_for`)."""
        mean_s = self.latency_summary_ms["mean"] / 1000.0
        if not math.isfinite(mean_s) or mean_s <= 0:
            raise InvalidArgumentError(
                f"profile {self.name!r} has no successful request to size replicas from"
            )
        return replicas_for(target_rps, mean_s, target_utilization, max_concurrent_per_replica)

    def get_details(self) -> dict[str, Any]:
        """The reference's ``ModelProfile.get_details()`` keys.

        Examples
        --------
        >>> d = ProfileResult.from_dict(example_dict()).get_details()
        >>> d["requestedCpu"], d["requestedMemoryInGb"], d["successRate"]
        (1.1, 0.5, 0.75)
        >>> d["errors"]
        {'500': 1}
        """
        lat = self.latency_summary_ms

        def ms(key: str) -> float | None:
            value = lat[key]
            return None if math.isnan(value) else round(value, 3)

        peak = self.peak_memory_bytes
        return {
            "name": self.name,
            "state": self.state,
            "scoringUri": self.scoring_uri,
            "service": self.service,
            "models": list(self.models),
            "concurrency": self.concurrency,
            "durationInSeconds": round(self.duration_s, 3),
            "requestedCpu": self.recommendation.cpu,
            "requestedMemoryInGb": self.recommendation.memory_gb,
            "requestedQueriesPerSecond": self.target_rps,
            "maxUtilizedCpu": None if self.max_cpu_cores is None else round(self.max_cpu_cores, 3),
            "averageUtilizedCpu": (
                None if self.load_cpu_cores is None else round(self.load_cpu_cores, 3)
            ),
            "maxUtilizedMemoryInGB": None if peak is None else round(peak / GIB, 4),
            "totalQueries": self.total,
            "successQueries": self.success_count,
            "successRate": round(self.success_rate, 6),
            "averageLatencyInMs": ms("mean"),
            "latencyPercentile50InMs": ms("p50"),
            "latencyPercentile90InMs": ms("p90"),
            "latencyPercentile95InMs": ms("p95"),
            "latencyPercentile99InMs": ms("p99"),
            "latencyPercentile999InMs": ms("p99.9"),
            "maxLatencyInMs": ms("max"),
            "measuredQueriesPerSecond": round(self.throughput_rps, 3),
            "errors": self.error_counts,
            "recommendation": self.recommendation.explanation,
        }

    def get_results(self) -> dict[str, float | None]:
        """The reference's short result: ``{"cpu": ..., "memoryInGB": ...}``."""
        return {"cpu": self.recommendation.cpu, "memoryInGB": self.recommendation.memory_gb}

    def wait_for_completion(self, show_output: bool = False) -> str:
        """The reference waits for a cloud run; a local profile is already done.

        Returns the state; prints the summary when ``show_output``.
        """
        if show_output:
            print(self.summary())
        return self.state

    wait_for_profiling = wait_for_completion

    @property
    def requests(self) -> Any:
        """Per request: ``start_s``, ``latency_ms``, ``status`` (a pandas DataFrame)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "start_s": self.request_starts_s,
                "latency_ms": self.latencies_s * 1000.0,
                "status": self.statuses,
            }
        )

    @property
    def timeseries(self) -> Any:
        """The process samples: ``t_s``, ``cpu_cores``, ``rss_bytes`` (a pandas DataFrame)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "t_s": self.sample_t_s,
                "cpu_cores": self.sample_cpu_cores,
                "rss_bytes": self.sample_rss_bytes,
            }
        )

    def summary(self) -> str:
        """A plain-text report (what ``text/plain`` and the CLI show)."""
        lat = self.latency_summary_ms
        lines = [
            f"Profile {self.name!r} of {self.service or self.scoring_uri}: {self.state}",
            f"  {self.total} requests in {self.duration_s:.2f} s at concurrency "
            f"{self.concurrency}: {self.throughput_rps:.1f} requests/s, "
            f"success rate {self.success_rate:.1%}",
            "  latency ms: "
            + "  ".join(f"{k} {v:.2f}" for k, v in lat.items() if not math.isnan(v)),
        ]
        if self.error_counts:
            lines.append(
                "  errors: " + ", ".join(f"{k}: {v}" for k, v in self.error_counts.items())
            )
        if self.load_cpu_cores is not None:
            lines.append(f"  cpu: {self.load_cpu_cores:.2f} cores on average during the load")
        peak = self.peak_memory_bytes
        if peak is not None:
            lines.append(
                f"  memory: peak {_mib(self.peak_rss_bytes)} during the profile, "
                f"high-water mark {_mib(self.hwm_bytes)}"
            )
        rec = self.recommendation
        lines.append(
            f"  recommendation: requestedCpu={rec.cpu} requestedMemoryInGb={rec.memory_gb}"
        )
        lines.append(f"  ({rec.explanation})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        p50 = self.latency_ms(50)
        return (
            f"ProfileResult(name={self.name!r}, requests={self.total}, "
            f"p50_ms={p50:.2f}, rps={self.throughput_rps:.1f}, "
            f"success_rate={self.success_rate:.3f}, requestedCpu={self.recommendation.cpu}, "
            f"requestedMemoryInGb={self.recommendation.memory_gb})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProfileResult):
            return NotImplemented
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name in _ARRAYS:
                if not np.array_equal(a, b):
                    return False
            elif a != b:
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (arrays as lists); :meth:`from_dict` reads it back."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _ARRAYS:
                out[f.name] = value.tolist()
            elif f.name == "started":
                out[f.name] = value.isoformat()
            elif f.name == "recommendation":
                out[f.name] = value.to_dict()
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProfileResult:
        """Rebuild a result from :meth:`to_dict` output."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidArgumentError(
                f"unknown ProfileResult fields: {', '.join(sorted(unknown))}"
            )
        kwargs = dict(data)
        started = kwargs.get("started")
        if isinstance(started, str):
            kwargs["started"] = datetime.fromisoformat(started)
        rec = kwargs.get("recommendation")
        if isinstance(rec, Mapping):
            kwargs["recommendation"] = Recommendation.from_dict(rec)
        for key in ("models", "pids"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f} MiB"


def example_dict() -> dict[str, Any]:
    """A small, fixed result (for doctests and documentation)."""
    rec = recommend(
        peak_memory_bytes=300 * 2**20,
        load_cpu_cores=1.0,
        p95_cpu_cores=1.02,
        measured_rps=50.0,
    )
    return {
        "name": "example",
        "scoring_uri": "http://127.0.0.1:5001/score",
        "service": "example-svc",
        "models": ["example:1"],
        "concurrency": 1,
        "started": "2024-05-01T12:00:00+00:00",
        "duration_s": 0.08,
        "request_starts_s": [0.0, 0.02, 0.04, 0.06],
        "latencies_s": [0.02, 0.02, 0.02, 0.001],
        "statuses": [200, 200, 200, 500],
        "sample_t_s": [-0.01, 0.05, 0.08],
        "sample_cpu_cores": [0.0, 1.0, 1.02],
        "sample_rss_bytes": [300 * 2**20, 300 * 2**20, 300 * 2**20],
        "pids": [12345],
        "load_cpu_cores": 1.0,
        "peak_rss_bytes": 300 * 2**20,
        "hwm_bytes": 290 * 2**20,
        "recommendation": rec.to_dict(),
    }
