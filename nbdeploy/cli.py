"""The ``nbdeploy`` command: the same public calls as the magics, outside notebooks.

::

    nbdeploy register model.pkl --name diabetes --tag team=ml
    nbdeploy models list
    nbdeploy deploy diabetes:1 --name diabetes-svc --score score.py
    nbdeploy services list
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
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .exceptions import InvalidArgumentError, NbdeployError

__all__ = ["main"]


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        print("(none)")
        return
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _model_row(m: Any) -> dict[str, Any]:
    return {
        "name": m.name,
        "version": m.version,
        "framework": f"{m.framework} {m.framework_version or ''}".strip(),
        "tags": ",".join(f"{k}={v}" for k, v in sorted(m.tags.items())),
        "created": m.created_time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _load_sample(path: str | None) -> Any:
    if path is None:
        return None
    import pandas as pd

    p = Path(path)
    if p.suffix == ".csv":
        return pd.read_csv(p)
    if p.suffix == ".parquet":
        return pd.read_parquet(p)
    if p.suffix == ".json":
        return json.loads(p.read_text())
    raise InvalidArgumentError(
        f"cannot read sample file {path!r}", hint="use a .csv, .parquet or .json file"
    )


# -- commands ----------------------------------------------------------------------
def _cmd_register(args: argparse.Namespace) -> int:
    from ._api import register

    path = Path(args.path)
    if not path.exists():
        raise InvalidArgumentError(f"no file or folder at {args.path!r}")
    m = register(
        path,
        args.name,
        description=args.description or "",
        tags=dict(args.tag),
        properties=dict(args.property),
        sample_input=_load_sample(args.sample),
        framework=args.framework,
        workspace=args.workspace,
    )
    print(f"registered {m.name}:{m.version} ({m.framework})")
    return 0


def _cmd_models_list(args: argparse.Namespace) -> int:
    from ._api import models

    found = models(
        args.name, tags=dict(args.tag) or None, latest=args.latest, workspace=args.workspace
    )
    rows = [_model_row(m) for m in found]
    if args.json:
        print(json.dumps([m.model_version.to_dict() for m in found], default=str, indent=2))
    else:
        _print_table(rows, ["name", "version", "framework", "tags", "created"])
    return 0


def _cmd_models_show(args: argparse.Namespace) -> int:
    from ._api import get_model

    m = get_model(args.ref, workspace=args.workspace)
    print(json.dumps(m.model_version.to_dict(), default=str, indent=2))
    return 0


def _cmd_models_download(args: argparse.Namespace) -> int:
    from ._api import get_model

    path = get_model(args.ref, workspace=args.workspace).download(args.dest, exist_ok=args.exist_ok)
    print(path)
    return 0


def _cmd_models_delete(args: argparse.Namespace) -> int:
    from ._api import get_model

    m = get_model(args.ref, workspace=args.workspace)
    m.delete(force=args.force)
    print(f"deleted {m.name}:{m.version}")
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from ._api import deploy

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
    from ._api import services

    found = services(workspace=args.workspace)
    rows = []
    for s in found:
        s.refresh()
        rows.append(s.record.to_dict())
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
    else:
        _print_table(
            [{**r, "models": ",".join(r["models"])} for r in rows],
            ["name", "target", "state", "models", "scoring_uri"],
        )
    return 0


def _cmd_services_show(args: argparse.Namespace) -> int:
    from ._api import get_service

    svc = get_service(args.name, workspace=args.workspace)
    svc.refresh()
    print(json.dumps(svc.record.to_dict(), default=str, indent=2))
    return 0


def _cmd_logs(args: argparse.Namespace) -> int:
    from ._api import get_service

    sys.stdout.write(get_service(args.name, workspace=args.workspace).get_logs(tail=args.tail))
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    from ._api import get_service

    # Unlike delete_service() (idempotent for scripts), a name that matches no service
    # is an error here: a typo must not print "deleted" and exit 0.
    get_service(args.name, workspace=args.workspace).delete()
    print(f"deleted service {args.name}")
    return 0


def _cmd_invoke(args: argparse.Namespace) -> int:
    from ._api import get_service

    body = Path(args.file).read_text() if args.file else args.body
    if body is None:
        raise InvalidArgumentError("nothing to send", hint="give a JSON body or --file PATH")
    result = get_service(args.name, workspace=args.workspace).run(body)
    print(json.dumps(result) if not isinstance(result, (bytes, str)) else result)
    return 0


def _cmd_ray(args: argparse.Namespace) -> int:
    """The workspace's embedded Ray cluster: where it runs, or stop it by its PIDs
    (never ``ray stop``, which ends every Ray process of the machine)."""
    from ._workspace import get_workspace
    from .targets.ray import cluster_status, stop_cluster

    workspace = get_workspace(args.workspace)
    if args.ray_command == "stop":
        stopped = stop_cluster(workspace)
        print("stopped the workspace's Ray cluster" if stopped else "no Ray cluster was running")
        return 0
    status = cluster_status(workspace)
    if status is None:
        print("no Ray cluster running for this workspace")
    else:
        pids = " ".join(str(pid) for pid in status["pids"])
        print(f"Ray cluster at {status['address']} (head pid {status['pid']}; pids {pids})")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .server import main as serve_main

    argv = [args.bundle, "--host", args.host, "--port", str(args.port)]
    return int(serve_main(argv) or 0)


# -- parser ------------------------------------------------------------------------
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

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help: str, parent: Any = sub
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = add("register", _cmd_register, "register a model file or folder as a new version")
    p.add_argument("path", help="model file or folder")
    p.add_argument("--name", required=True, help="model name")
    p.add_argument("--description", help="free text")
    p.add_argument("--tag", action="append", type=_key_value, default=[], metavar="KEY=VALUE")
    p.add_argument("--property", action="append", type=_key_value, default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--sample", metavar="FILE", help="sample input (.csv, .parquet, .json) for the schema"
    )
    p.add_argument("--framework", help="override the detected framework")

    models = sub.add_parser("models", help="list, show, download and delete models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = add("list", _cmd_models_list, "list registered models", msub)
    p.add_argument("--name")
    p.add_argument("--tag", action="append", type=_key_value, default=[], metavar="KEY=VALUE")
    p.add_argument("--latest", action="store_true", help="only the latest version of each name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("show", _cmd_models_show, "show one model version as JSON", msub)
    p.add_argument("ref", help="NAME or NAME:VERSION")
    p = add("download", _cmd_models_download, "copy a model's files to a folder", msub)
    p.add_argument("ref", help="NAME or NAME:VERSION")
    p.add_argument("dest", help="target folder")
    p.add_argument("--exist-ok", action="store_true")
    p = add("delete", _cmd_models_delete, "delete a model version", msub)
    p.add_argument("ref", help="NAME:VERSION")
    p.add_argument("--force", action="store_true", help="even if a service uses it")

    p = add("deploy", _cmd_deploy, "deploy models as a web service")
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

    services = sub.add_parser("services", help="list and show services")
    ssub = services.add_subparsers(dest="services_command", metavar="ACTION", required=True)
    p = add("list", _cmd_services_list, "list services with their live state", ssub)
    p.add_argument("--json", action="store_true")
    p = add("show", _cmd_services_show, "show one service as JSON", ssub)
    p.add_argument("name")

    p = add("logs", _cmd_logs, "print a service's logs")
    p.add_argument("name")
    p.add_argument("--tail", type=int, default=None, metavar="N", help="only the last N lines")

    p = add("delete", _cmd_delete, "stop and delete a service")
    p.add_argument("name")

    p = add("invoke", _cmd_invoke, "send one request to a service and print the answer")
    p.add_argument("name")
    p.add_argument("body", nargs="?", help="JSON, e.g. '{\"data\": [[1, 2]]}'")
    p.add_argument("--file", metavar="PATH", help="read the JSON body from a file")

    ray = sub.add_parser("ray", help="the workspace's embedded Ray cluster (target ray)")
    rsub = ray.add_subparsers(dest="ray_command", metavar="ACTION", required=True)
    add("status", _cmd_ray, "where the workspace's Ray cluster runs, and its PIDs", rsub)
    add("stop", _cmd_ray, "stop the Ray cluster nbdeploy started, by its PIDs", rsub)

    from ._profile import add_profile_command

    add_profile_command(sub)

    from ._package import add_package_command

    add_package_command(sub)

    p = add("serve", _cmd_serve, "run a bundle's scoring server in the foreground")
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5001)
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


if __name__ == "__main__":
    raise SystemExit(main())
