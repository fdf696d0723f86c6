"""The ``%profile`` line magic: parse the line, call :func:`nbdeploy.profile`, show
the report while a progress bar follows the load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbdeploy.api import get_service
from nbdeploy.api import profile as run
from nbdeploy.display.profile import format_ms
from nbdeploy.exceptions import InvalidArgumentError
from nbdeploy.sdk.profile import ProfileReport

from .arguments import argument, magic_arguments, parse_line
from .progress import Progress

__all__ = ["register_profile_magic"]


def register_profile_magic(ipython: Any) -> None:
    """Register the ``%profile`` line magic on ``ipython`` (an ``InteractiveShell``).

    The magic is a thin front for :func:`nbdeploy.profile`.

    Examples
    --------
    >>> register_profile_magic(get_ipython())                # doctest: +SKIP
    >>> %profile diabetes-svc --data X_test --duration 3     # doctest: +SKIP
    """

    @magic_arguments()
    @argument("service", help="name of a deployed service")
    @argument(
        "--data",
        required=True,
        metavar="VAR",
        help="notebook variable with the requests (list of JSON strings, DataFrame, "
        "ndarray) or a file with one request per line",
    )
    @argument("--concurrency", type=int, default=1, help="requests in flight at once")
    @argument("--duration", type=float, default=None, help="seconds of load (default 10)")
    @argument("--count", type=int, default=None, help="stop after this many requests")
    @argument("--batch-size", type=int, default=1, help="DataFrame/array rows per request")
    @argument("--target-rps", type=float, default=None, help="size the CPU for this rate")
    @argument(
        "--store-tags",
        action="store_true",
        help="store requestedCpu / requestedMemoryInGb as tags on the service's models",
    )
    def profile(line: str) -> ProfileReport | None:
        """Profile a deployed service: latency, throughput, errors, CPU and memory.

        Sends the requests in ``--data`` to the service and shows the report with
        the recommended ``requestedCpu`` and ``requestedMemoryInGb``; a progress bar
        follows the load while it runs.
        """
        args = parse_line(profile, line)
        return None if args is None else _profile(ipython.user_ns, args)

    ipython.register_magic_function(profile, "line", "profile")


def _requests(namespace: dict[str, Any], name: str) -> Any:
    """The notebook variable ``name``, else the file of that name."""
    if name in namespace:
        return namespace[name]
    if not Path(name).is_file():
        raise InvalidArgumentError(
            f"--data {name!r} is neither a notebook variable nor a file",
            hint="define the variable first, e.g. requests = X_test.head(100)",
        )
    return Path(name)


def _profile(namespace: dict[str, Any], args: Any) -> ProfileReport:
    """Run ``%profile``'s parsed ``args`` with a progress bar; the report."""
    from nbdeploy.profiling import DEFAULT_DURATION_S

    data = _requests(namespace, args.data)
    service = get_service(args.service)
    # Like nbdeploy.profile: --count alone runs until that many requests are done.
    seconds = args.duration
    if seconds is None and args.count is None:
        seconds = DEFAULT_DURATION_S
    bounds = [f"{args.count} requests"] if args.count else []
    bounds += [f"{seconds:g} s"] if seconds is not None else []
    with Progress(f"profiling {args.service}", total=seconds, timed=True) as progress:
        progress.update(
            text=f"sending requests, concurrency {args.concurrency}, {' or '.join(bounds)}"
        )
        report = run(
            service,
            data,
            concurrency=args.concurrency,
            duration=args.duration,
            count=args.count,
            batch_size=args.batch_size,
            target_rps=args.target_rps,
            store_tags=args.store_tags,
        )
        progress.final = (
            f"{report.total} requests, {report.throughput_rps:.0f} requests/s, "
            f"p50 {format_ms(report.latency_summary_ms['p50'])} ms"
        )
    return report
