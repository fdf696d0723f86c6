"""Run the benchmarks and print one table: ``python bench/run.py [name-filter ...]``.

Imports every ``bench/bench_*.py`` module whose name contains one of the filters (all
of them without filters), calls its ``run() -> list[Result]`` and prints the results
together. A module that fails is reported and the others still run; the exit status
is 1 when any failed.

Examples::

    make bench                         # everything
    .venv/bin/python bench/run.py schema
    .venv/bin/python bench/run.py serving register
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import Result, print_table  # noqa: E402


def discover(filters: list[str]) -> list[str]:
    """The benchmark module names matching any of ``filters`` (all when empty)."""
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if not filters:
        return names
    return [n for n in names if any(f in n for f in filters)]


def main(argv: list[str]) -> int:
    names = discover(argv)
    if not names:
        available = ", ".join(discover([])) or "none"
        print(f"no benchmark matches {argv}; available: {available}", file=sys.stderr)
        return 2
    results: list[Result] = []
    failures: list[str] = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(name)
            results.extend(module.run())
        except Exception as exc:
            traceback.print_exc()
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
        print(f"  {name} took {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    print()
    print_table(results, failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
