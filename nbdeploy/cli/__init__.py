"""The ``nbdeploy`` command, one module per command group.

:mod:`~nbdeploy.cli.main` builds the parser and runs a command;
:mod:`~nbdeploy.cli.models`, :mod:`~nbdeploy.cli.services`,
:mod:`~nbdeploy.cli.profile`, :mod:`~nbdeploy.cli.package`, :mod:`~nbdeploy.cli.ray`
and :mod:`~nbdeploy.cli.serve` each add their commands. Every command is one call
into :mod:`nbdeploy.api` or the SDK.
"""

from __future__ import annotations

from .main import build_parser as build_parser
from .main import main as main

__all__ = ["build_parser", "main"]
