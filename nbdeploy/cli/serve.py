"""``nbdeploy serve BUNDLE``: a bundle's scoring server in the foreground."""

from __future__ import annotations

import argparse
from typing import Any

from nbdeploy.api import serve_bundle

from .common import add_command

__all__ = ["add_serve_command"]


def _cmd_serve(args: argparse.Namespace) -> int:
    return serve_bundle(args.bundle, host=args.host, port=args.port)


def add_serve_command(sub: Any) -> None:
    """Add this group's commands to ``sub`` (the ``nbdeploy`` subparsers action)."""
    p = add_command(sub, "serve", _cmd_serve, "run a bundle's scoring server in the foreground")
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5001)
