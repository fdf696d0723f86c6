"""``nbdeploy register`` and ``nbdeploy models list|show|download|delete``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from nbdeploy.api import get_model, models, register
from nbdeploy.exceptions import InvalidArgumentError

from .common import add_command, key_value, load_sample, model_row, print_table

__all__ = ["add_model_commands"]


def _cmd_register(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if not path.exists():
        raise InvalidArgumentError(f"no file or folder at {args.path!r}")
    m = register(
        path,
        args.name,
        description=args.description or "",
        tags=dict(args.tag),
        properties=dict(args.property),
        sample_input=load_sample(args.sample),
        framework=args.framework,
        workspace=args.workspace,
    )
    print(f"registered {m.name}:{m.version} ({m.framework})")
    return 0


def _cmd_models_list(args: argparse.Namespace) -> int:
    found = models(
        args.name, tags=dict(args.tag) or None, latest=args.latest, workspace=args.workspace
    )
    rows = [model_row(m) for m in found]
    if args.json:
        print(json.dumps([m.model_version.to_dict() for m in found], default=str, indent=2))
    else:
        print_table(rows, ["name", "version", "framework", "tags", "created"])
    return 0


def _cmd_models_show(args: argparse.Namespace) -> int:
    m = get_model(args.ref, workspace=args.workspace)
    print(json.dumps(m.model_version.to_dict(), default=str, indent=2))
    return 0


def _cmd_models_download(args: argparse.Namespace) -> int:
    path = get_model(args.ref, workspace=args.workspace).download(args.dest, exist_ok=args.exist_ok)
    print(path)
    return 0


def _cmd_models_delete(args: argparse.Namespace) -> int:
    m = get_model(args.ref, workspace=args.workspace)
    m.delete(force=args.force)
    print(f"deleted {m.name}:{m.version}")
    return 0


def add_model_commands(sub: Any) -> None:
    """Add this group's commands to ``sub`` (the ``nbdeploy`` subparsers action)."""
    p = add_command(
        sub, "register", _cmd_register, "register a model file or folder as a new version"
    )
    p.add_argument("path", help="model file or folder")
    p.add_argument("--name", required=True, help="model name")
    p.add_argument("--description", help="free text")
    p.add_argument("--tag", action="append", type=key_value, default=[], metavar="KEY=VALUE")
    p.add_argument("--property", action="append", type=key_value, default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--sample", metavar="FILE", help="sample input (.csv, .parquet, .json) for the schema"
    )
    p.add_argument("--framework", help="override the detected framework")

    group = sub.add_parser("models", help="list, show, download and delete models")
    msub = group.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = add_command(msub, "list", _cmd_models_list, "list registered models")
    p.add_argument("--name")
    p.add_argument("--tag", action="append", type=key_value, default=[], metavar="KEY=VALUE")
    p.add_argument("--latest", action="store_true", help="only the latest version of each name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add_command(msub, "show", _cmd_models_show, "show one model version as JSON")
    p.add_argument("ref", help="NAME or NAME:VERSION")
    p = add_command(msub, "download", _cmd_models_download, "copy a model's files to a folder")
    p.add_argument("ref", help="NAME or NAME:VERSION")
    p.add_argument("dest", help="target folder")
    p.add_argument("--exist-ok", action="store_true")
    p = add_command(msub, "delete", _cmd_models_delete, "delete a model version")
    p.add_argument("ref", help="NAME:VERSION")
    p.add_argument("--force", action="store_true", help="even if a service uses it")
