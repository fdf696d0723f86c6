"""The ``nbdeploy`` command: the same public calls as the magics, outside notebooks.

::

    nbdeploy register model.pkl --name diabetes --tag team=ml
    nbdeploy models list
    nbdeploy deploy diabetes:1 --name diabetes-svc --score score.py
    nbdeploy services list
    nbdeploy targets
    nbdeploy invoke diabetes-svc '{"data": [[1,2,3,4,5,6,7,8,9,10]]}'
    nbdeploy logs diabetes-svc
    nbdeploy delete diabetes-svc
    nbdeploy serve path/to/bundle --port 5001
    nbdeploy package diabetes:1 --score score.py --output diabetes-image

Errors are one line on stderr and a non-zero exit status (1: the operation failed,
2: bad arguments).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nbdeploy.exceptions import NbdeployError

from .models import add_model_commands
from .package import add_package_command
from .profile import add_profile_command
from .ray import add_ray_commands
from .serve import add_serve_command
from .services import add_service_commands
from .targets import add_targets_command

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and the tests)."""
    parser = argparse.ArgumentParser(
        prog="nbdeploy",
        description="Register models and deploy them as web services.",
    )
    parser.add_argument(
        "--workspace",
        metavar="PATH",
        help="workspace folder (default: $NBDEPLOY_HOME or ~/.nbdeploy)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_model_commands(sub)
    add_service_commands(sub)
    add_targets_command(sub)
    add_ray_commands(sub)
    add_profile_command(sub)
    add_package_command(sub)
    add_serve_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Text from the workspace (tags, descriptions, logs) may hold characters the
    # terminal cannot encode; show them escaped instead of failing the command.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        return int(args.func(args))
    except NbdeployError as exc:
        hint = f" (hint: {exc.hint})" if exc.hint else ""
        print(f"nbdeploy: error: {exc.message}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
