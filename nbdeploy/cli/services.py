"""``nbdeploy deploy``, ``services list|show``, ``logs``, ``delete``, ``invoke``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nbdeploy.api import deploy, get_service, services
from nbdeploy.exceptions import InvalidArgumentError

from .common import add_command, print_table

__all__ = ["add_service_commands"]


def _cmd_deploy(args: argparse.Namespace) -> int:
    svc = deploy(
        list(args.models),
        name=args.name,
        score=args.score,
        environment=args.environment,
        source_directory=args.source_dir,
        target=args.target,
        port=args.port,
        show_output=not args.quiet,
        workspace=args.workspace,
    )
    print(f"{svc.name}: {svc.record.state.value}")
    print(f"scoring URI: {svc.scoring_uri}")
    print(f"swagger URI: {svc.swagger_uri}")
    return 0


def _cmd_services_list(args: argparse.Namespace) -> int:
    found = services(workspace=args.workspace)
    rows = []
    for s in found:
        s.refresh()
        rows.append(s.record.to_dict())
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
    else:
        print_table(
            [{**r, "models": ",".join(r["models"])} for r in rows],
            ["name", "target", "state", "models", "scoring_uri"],
        )
    return 0


def _cmd_services_show(args: argparse.Namespace) -> int:
    svc = get_service(args.name, workspace=args.workspace)
    svc.refresh()
    print(json.dumps(svc.record.to_dict(), default=str, indent=2))
    return 0


def _cmd_logs(args: argparse.Namespace) -> int:
    sys.stdout.write(get_service(args.name, workspace=args.workspace).get_logs(tail=args.tail))
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    # Unlike delete_service() (idempotent for scripts), a name that matches no service
    # is an error here: a typo must not print "deleted" and exit 0.
    get_service(args.name, workspace=args.workspace).delete()
    print(f"deleted service {args.name}")
    return 0


def _cmd_invoke(args: argparse.Namespace) -> int:
    body = Path(args.file).read_text() if args.file else args.body
    if body is None:
        raise InvalidArgumentError("nothing to send", hint="give a JSON body or --file PATH")
    result = get_service(args.name, workspace=args.workspace).run(body)
    print(json.dumps(result) if not isinstance(result, (bytes, str)) else result)
    return 0


def add_service_commands(sub: Any) -> None:
    """Add this group's commands to ``sub`` (the ``nbdeploy`` subparsers action)."""
    p = add_command(sub, "deploy", _cmd_deploy, "deploy models as a web service")
    p.add_argument("models", nargs="+", metavar="MODEL", help="NAME or NAME:VERSION")
    p.add_argument("--name", required=True, help="service name")
    p.add_argument("--score", metavar="PATH", help="scoring script with init() and run(data)")
    p.add_argument("--environment", metavar="FILE", help="requirements.txt or environment.yml")
    p.add_argument("--source-dir", metavar="DIR", help="folder of extra files for the script")
    p.add_argument(
        "--target", default=None, help="deployment target: local (default), docker, kubernetes, ray"
    )
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--quiet", action="store_true", help="no progress output")

    group = sub.add_parser("services", help="list and show services")
    ssub = group.add_subparsers(dest="services_command", metavar="ACTION", required=True)
    p = add_command(ssub, "list", _cmd_services_list, "list services with their live state")
    p.add_argument("--json", action="store_true")
    p = add_command(ssub, "show", _cmd_services_show, "show one service as JSON")
    p.add_argument("name")

    p = add_command(sub, "logs", _cmd_logs, "print a service's logs")
    p.add_argument("name")
    p.add_argument("--tail", type=int, default=None, metavar="N", help="only the last N lines")

    p = add_command(sub, "delete", _cmd_delete, "stop and delete a service")
    p.add_argument("name")

    p = add_command(
        sub, "invoke", _cmd_invoke, "send one request to a service and print the answer"
    )
    p.add_argument("name")
    p.add_argument("body", nargs="?", help="JSON, e.g. '{\"data\": [[1, 2]]}'")
    p.add_argument("--file", metavar="PATH", help="read the JSON body from a file")
