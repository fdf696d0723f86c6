"""``nbdeploy ray status|stop``: the workspace's embedded Ray cluster."""

from __future__ import annotations

import argparse
from typing import Any

from nbdeploy.api import ray_cluster_status, stop_ray_cluster

from .common import add_command

__all__ = ["add_ray_commands"]


def _cmd_ray(args: argparse.Namespace) -> int:
    """The workspace's embedded Ray cluster: where it runs, or stop it by its PIDs
    (never Ray's own stop command, which ends every Ray process of the machine)."""
    if args.ray_command == "stop":
        stopped = stop_ray_cluster(workspace=args.workspace)
        print("stopped the workspace's Ray cluster" if stopped else "no Ray cluster was running")
        return 0
    status = ray_cluster_status(workspace=args.workspace)
    if status is None:
        print("no Ray cluster running for this workspace")
    else:
        pids = " ".join(str(pid) for pid in status["pids"])
        print(f"Ray cluster at {status['address']} (head pid {status['pid']}; pids {pids})")
    return 0


def add_ray_commands(sub: Any) -> None:
    """Add this group's commands to ``sub`` (the ``nbdeploy`` subparsers action)."""
    ray = sub.add_parser("ray", help="the workspace's embedded Ray cluster (target ray)")
    rsub = ray.add_subparsers(dest="ray_command", metavar="ACTION", required=True)
    add_command(rsub, "status", _cmd_ray, "where the workspace's Ray cluster runs, and its PIDs")
    add_command(rsub, "stop", _cmd_ray, "stop the Ray cluster nbdeploy started, by its PIDs")
