"""``nbdeploy package MODEL... --output DIR | --build | --kubernetes DIR``."""

from __future__ import annotations

import argparse
from typing import Any

from nbdeploy.api import package
from nbdeploy.exceptions import InvalidArgumentError
from nbdeploy.workflows.package import kubernetes_config

__all__ = ["add_package_command"]


def add_package_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``nbdeploy package MODEL... --output DIR | --build`` to the CLI's subcommands.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="nbdeploy")
    >>> _ = parser.add_argument("--workspace")
    >>> _ = add_package_command(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["package", "iris:1", "--output", "img", "--wheels"])
    >>> args.models, args.output, args.wheels
    (['iris:1'], 'img', True)
    """
    help_text = "package models as a Docker build context (or build the image)"
    p: argparse.ArgumentParser = subparsers.add_parser(
        "package", help=help_text, description=help_text
    )
    p.set_defaults(func=_cmd_package)
    p.add_argument("models", nargs="+", metavar="MODEL", help="NAME or NAME:VERSION")
    p.add_argument("--name", help="package name (default: the first model's)")
    p.add_argument("--score", metavar="PATH", help="scoring script with init() and run(data)")
    p.add_argument("--environment", metavar="FILE", help="requirements.txt or environment.yml")
    p.add_argument("--source-dir", metavar="DIR", help="folder of extra files for the script")
    p.add_argument("--output", metavar="DIR", help="write the build context into this new folder")
    p.add_argument(
        "--wheels", action="store_true", help="put every wheel into it (build with no network)"
    )
    p.add_argument("--build", action="store_true", help="build the image in the Docker engine")
    p.add_argument("--base-image", help="the Dockerfile's default BASE_IMAGE")
    p.add_argument("--image-name", help="image name (default nbdeploy/<name>)")
    p.add_argument("--engine", help="Docker engine URL (default $DOCKER_HOST)")
    p.add_argument("--quiet", action="store_true", help="no build output")
    p.add_argument(
        "--kubernetes",
        metavar="DIR",
        help="write Kubernetes manifests running the image into this folder",
    )
    p.add_argument("--namespace", default="default", help="Kubernetes namespace (--kubernetes)")
    p.add_argument(
        "--replicas", type=int, help="a fixed number of replicas (default: autoscaling 1-10)"
    )
    p.add_argument("--image", help="the image the manifests run (default: the package's)")
    return p


def _cmd_package(args: argparse.Namespace) -> int:
    if not args.output and not args.build and not args.kubernetes:
        raise InvalidArgumentError(
            "nothing to do: give --output DIR (a build context), --build (an image) "
            "and/or --kubernetes DIR (manifests)"
        )
    pkg = package(
        list(args.models),
        args.name,
        score=args.score,
        environment=args.environment,
        source_directory=args.source_dir,
        base_image=args.base_image,
        offline=bool(args.wheels),
        image_name=args.image_name,
        engine=args.engine,
        workspace=args.workspace,
    )
    manifests = None
    if args.kubernetes:
        cfg = kubernetes_config(args.namespace, args.replicas)
        manifests = pkg.kubernetes(cfg, image=args.image)
    if args.output:
        folder = pkg.save(args.output)
        print(f"build context: {folder}")
        print(f"  docker build -t {pkg.name.lower()} {folder}")
    if args.build:
        tag = pkg.build(show_output=not args.quiet)
        print(f"image: {tag} ({(pkg.image_size_bytes or 0) / 1e6:.0f} MB)")
    if manifests is not None:
        saved = manifests.save(args.kubernetes)
        image = manifests.find("Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
        print(f"kubernetes manifests: {saved} ({len(manifests)} objects, image {image['image']})")
        print(f"  push the image, create the Secret ({saved}/README.md), then:")
        print(f"  kubectl apply -f {saved}")
    return 0
