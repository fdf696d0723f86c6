"""Shared pieces of the benchmarks: the ``Result`` record, a timer and the table.

Every ``bench/bench_*.py`` module defines ``run() -> list[Result]``; ``bench/run.py``
collects the results of all of them and prints one table. Modules import this file as
``from _common import Result, timeit`` (``bench/`` is the script's folder, so it is on
``sys.path``).

Benchmarks measure; they never assert on time. A ``goal`` such as ``"< 0.2 s"`` or
``">= 1.0x baseline"`` is only checked to mark the row in the table.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Result", "format_value", "print_table", "timeit"]

# Seconds per unit, to compare a value and a goal written in different time units.
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_GOAL = re.compile(r"^\s*(<=|>=|<|>)\s*([0-9.eE+-]+)\s*(x baseline|\S+)?\s*$")


@dataclass(frozen=True)
class Result:
    """One measured figure, optionally next to a baseline measured in the same run.

    Parameters
    ----------
    group, case:
        Where the figure belongs (``"schema"``) and what was measured.
    value, unit:
        The figure and its unit (``"s"``, ``"ms"``, ``"req/s"`` ...).
    baseline, baseline_name:
        The same figure for the thing we compare against, and what that thing is.
    higher_is_better:
        ``True`` for throughputs, ``False`` (the default) for times and sizes.
    goal:
        The target, e.g. ``"< 0.2 s"`` or ``">= 1.0x baseline"``.
    """

    group: str
    case: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    higher_is_better: bool = False
    goal: str | None = None

    @property
    def ratio(self) -> float | None:
        """How many times better than the baseline (> 1 means better)."""
        if self.baseline is None or self.value <= 0 or self.baseline <= 0:
            return None
        if self.higher_is_better:
            return self.value / self.baseline
        return self.baseline / self.value

    @property
    def goal_met(self) -> bool | None:
        """Whether the goal is met, or ``None`` when there is none (or it is unreadable)."""
        if not self.goal:
            return None
        match = _GOAL.match(self.goal)
        if match is None:
            return None
        op, number, unit = match.group(1), float(match.group(2)), match.group(3)
        if unit == "x baseline":
            if self.ratio is None:
                return None
            value = self.ratio
        elif unit is None or unit == self.unit:
            value = self.value
        elif unit in _TIME_UNITS and self.unit in _TIME_UNITS:
            value = self.value * _TIME_UNITS[self.unit] / _TIME_UNITS[unit]
        else:
            return None
        return {
            "<": value < number,
            "<=": value <= number,
            ">": value > number,
            ">=": value >= number,
        }[op]


def timeit(fn: Callable[[], Any], repeat: int = 5, *, warmup: int = 1) -> float:
    """Seconds one call of ``fn`` takes: the **best** (minimum) of ``repeat`` calls.

    The minimum is the least noisy estimate of what the code costs on an otherwise idle
    machine (noise only ever adds time), which matters on a small shared machine.
    ``warmup`` calls run first and are not counted (imports, caches, JIT of regexes).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def timeit_median(fn: Callable[[], Any], repeat: int = 5, *, warmup: int = 1) -> float:
    """Like :func:`timeit` but the median, for figures users will see under load."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def format_value(value: float | None, unit: str) -> str:
    """``0.0123, "s"`` → ``"12.3 ms"``: three significant digits, a readable unit."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit in _TIME_UNITS and value != 0:
        seconds = value * _TIME_UNITS[unit]
        for name in ("s", "ms", "us", "ns"):
            if abs(seconds) >= _TIME_UNITS[name] or name == "ns":
                value, unit = seconds / _TIME_UNITS[name], name
                break
    if value == 0:
        text = "0"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}"


def print_table(results: Sequence[Result], failures: Sequence[str] = ()) -> None:
    """Print the results as one aligned text table (and any modules that failed)."""
    header = ("group", "case", "value", "baseline", "vs baseline", "goal")
    rows = []
    for r in results:
        baseline = (
            f"{format_value(r.baseline, r.unit)} ({r.baseline_name or 'baseline'})"
            if r.baseline is not None
            else "-"
        )
        ratio = f"{r.ratio:.2f}x {'better' if r.ratio >= 1 else 'worse'}" if r.ratio else "-"
        met = {True: "met", False: "MISSED", None: ""}[r.goal_met]
        goal = f"{r.goal} {met}".strip() if r.goal else "-"
        rows.append((r.group, r.case, format_value(r.value, r.unit), baseline, ratio, goal))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    for failure in failures:
        print(f"FAILED {failure}")
