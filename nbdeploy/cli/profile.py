"""``nbdeploy profile SERVICE --data FILE ...``: a service's latency, throughput, CPU
and memory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from nbdeploy.api import get_service, profile
from nbdeploy.exceptions import InvalidArgumentError

__all__ = ["add_profile_command"]


def _read_data(path: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise InvalidArgumentError(
            f"no request file at {path!r}",
            hint="give a file with one JSON request per line, or a .csv/.parquet of rows",
        )
    if p.suffix == ".csv":
        import pandas as pd

        return pd.read_csv(p)
    if p.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(p)
    return p


def _cmd_profile(args: argparse.Namespace) -> int:
    result = profile(
        get_service(args.name, workspace=args.workspace),
        _read_data(args.data),
        concurrency=args.concurrency,
        duration=args.duration,
        count=args.count,
        batch_size=args.batch_size,
        target_rps=args.target_rps,
        store_tags=args.store_tags,
    )
    if args.json:
        print(json.dumps(result.get_details(), indent=2))
    else:
        print(result.summary())
    return 0 if result.state == "Succeeded" else 1


def add_profile_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``nbdeploy profile SERVICE --data FILE ...`` to the CLI's subcommands.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="nbdeploy")
    >>> _ = parser.add_argument("--workspace")
    >>> _ = add_profile_command(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["profile", "svc", "--data", "r.txt", "--concurrency", "4"])
    >>> args.name, args.data, args.concurrency
    ('svc', 'r.txt', 4)
    """
    help_text = "measure a service's latency, throughput, CPU and memory"
    p: argparse.ArgumentParser = subparsers.add_parser(
        "profile", help=help_text, description=help_text
    )
    p.set_defaults(func=_cmd_profile)
    p.add_argument("name", help="service name")
    p.add_argument(
        "--data",
        required=True,
        metavar="FILE",
        help="requests: one JSON body per line, or a .csv/.parquet whose rows become requests",
    )
    p.add_argument("--concurrency", type=int, default=1, help="requests in flight at once")
    p.add_argument("--duration", type=float, default=None, help="seconds of load (default 10)")
    p.add_argument("--count", type=int, default=None, help="stop after this many requests")
    p.add_argument("--batch-size", type=int, default=1, help="rows per request for .csv/.parquet")
    p.add_argument("--target-rps", type=float, default=None, help="size the CPU for this rate")
    p.add_argument(
        "--store-tags", action="store_true", help="store the recommendation as model tags"
    )
    p.add_argument("--json", action="store_true", help="print get_details() as JSON")
    return p
