"""``nbdeploy targets``: the deployment targets, and why one cannot be used here."""

from __future__ import annotations

import argparse
from typing import Any

from nbdeploy.api import target_availability

from .common import add_command, print_table

__all__ = ["add_targets_command"]


def _cmd_targets(args: argparse.Namespace) -> int:
    """List every target ``--target`` accepts; an unusable one says why and how to get it."""
    rows = [
        {
            "name": target.name,
            "usable": "yes" if target.usable else "no",
            "where / why not": target.description if target.usable else target.reason,
        }
        for target in target_availability()
    ]
    print_table(rows, ["name", "usable", "where / why not"])
    return 0


def add_targets_command(sub: Any) -> None:
    """Add ``targets`` to ``sub`` (the ``nbdeploy`` subparsers action)."""
    add_command(
        sub, "targets", _cmd_targets, "the deployment targets, and why one cannot be used here"
    )
