"""``nbdeploy.profile``: how fast a service serves, and the CPU and memory it needs.

The public front of :mod:`nbdeploy.profiling`. It finds what the core needs from
a service record — the scoring URI, the serving process (its PID), the auth header —
or deploys a model temporarily to profile it, and tears that deployment down again
even when the profile fails. It also holds the reference's form
(:func:`profile_models`, wired as ``Model.profile``) and the ``nbdeploy profile``
command.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdeploy.exceptions import DeploymentError, InvalidArgumentError
from nbdeploy.profiling import ProfileResult, prepare_requests, run_profile

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nbdeploy._service import Webservice
    from nbdeploy.core.bundle import InferenceConfig
    from nbdeploy.core.workspace import Workspace

__all__ = ["ProfileReport", "add_profile_command", "profile", "profile_models", "service_pids"]


class ProfileReport(ProfileResult):
    """A :class:`~nbdeploy.profiling.ProfileResult` that renders as a report.

    The core result knows its figures, ``summary()`` and a cheap ``repr``; drawing the
    HTML report (percentiles table, latency histogram, CPU and memory charts, the
    recommendation) is a front's job, so it lives in
    :mod:`nbdeploy.notebook.profile_view` and is imported only when a notebook asks
    to display the result. :func:`profile`, ``Model.profile`` and ``%profile`` return
    this class; it is still a ``ProfileResult`` (same fields, equality, round trip).

    Examples
    --------
    >>> from nbdeploy.profiling.report import example_dict
    >>> report = ProfileReport.from_dict(example_dict())
    >>> sorted(report._repr_mimebundle_())
    ['text/html', 'text/plain']
    >>> ProfileReport.from_result(ProfileResult.from_dict(example_dict())) == report
    True
    """

    @classmethod
    def from_result(cls, result: ProfileResult) -> ProfileReport:
        """The report of ``result`` (the same figures; ``result`` itself if it is one).

        Examples
        --------
        >>> from nbdeploy.profiling.report import example_dict
        >>> type(ProfileReport.from_result(ProfileResult.from_dict(example_dict()))).__name__
        'ProfileReport'
        """
        if isinstance(result, cls):
            return result
        return cls(**{f.name: getattr(result, f.name) for f in dataclasses.fields(result)})

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, str]:
        """``text/plain`` (the summary) and ``text/html`` (inline SVG charts, escaped)."""
        from nbdeploy.notebook.profile_view import mimebundle

        return mimebundle(self, include=include, exclude=exclude)


def service_pids(service: Webservice) -> list[int]:
    """The serving processes of ``service`` that a profile samples (its children too).

    The local target records its server process in ``record.config["process"]``
    (``{"pid", "start_time"}``); a PID whose start time no longer matches belongs to
    another process now and is not returned. Targets that record no local process
    (a remote Docker engine, a cluster) give an empty list: the profile then
    measures latency and throughput only.

    Examples
    --------
    >>> service_pids(nbdeploy.get_service("diabetes-svc"))   # doctest: +SKIP
    [48213]
    """
    config = service.record.config
    process = config.get("process")
    entries: list[Any] = []
    if isinstance(process, dict) and "pid" in process:
        entries.append(process)
    elif "pid" in config:
        entries.append({"pid": config["pid"]})
    pids: list[int] = []
    for entry in entries:
        try:
            pid = int(entry["pid"])
        except (TypeError, ValueError):
            continue
        start = entry.get("start_time")
        if start is not None:
            from nbdeploy.targets.process.processes import ProcessId

            if not ProcessId(pid, int(start)).alive():
                continue
        pids.append(pid)
    return pids


def _encoder() -> Any:
    from nbdeploy._client import encode_request

    return encode_request


def _profile_service(
    service: Webservice,
    bodies: Sequence[bytes],
    *,
    name: str,
    concurrency: int,
    duration: float | None,
    count: int | None,
    target_rps: float | None,
    timeout: float,
) -> ProfileReport:
    record = service.refresh()
    if record.state.value != "Healthy":
        raise DeploymentError(
            f"service {service.name!r} is {record.state.value}, not Healthy: cannot profile it",
            hint=f"see nbdeploy.get_service({service.name!r}).get_logs()",
        )
    if not service.scoring_uri:
        raise DeploymentError(f"service {service.name!r} has no scoring URI")
    result = run_profile(
        service.scoring_uri,
        bodies,
        concurrency=concurrency,
        duration=duration,
        count=count,
        pids=service_pids(service),
        headers=service._auth_headers(),
        timeout=timeout,
        target_rps=target_rps,
        name=name,
        service=service.name,
        models=service.models,
    )
    return ProfileReport.from_result(result)


def _store_tags(workspace: Workspace, models: Sequence[str], result: ProfileResult) -> None:
    tags = result.recommendation.as_tags()
    if not tags:
        raise InvalidArgumentError(
            f"profile {result.name!r} measured no serving process: no recommendation to store",
            hint="profile a local service (its process is sampled) to get one",
        )
    for ref in models:
        workspace.registry.add_tags(ref, tags)


def profile(
    service_or_model: Any,
    requests: Any,
    concurrency: int = 1,
    duration: float | None = None,
    count: int | None = None,
    inference_config: InferenceConfig | None = None,
    store_tags: bool = False,
    target_rps: float | None = None,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    *,
    batch_size: int = 1,
    orient: str = "split",
    timeout: float = 60.0,
    name: str | None = None,
) -> ProfileReport:
    """Measure how fast a service serves ``requests`` and what CPU and memory it needs.

    Sends ``requests`` over ``concurrency`` keep-alive connections (cycling through
    them) for ``duration`` seconds (default 10) or ``count`` requests, whichever ends
    first, while sampling the serving process's CPU and memory every 0.1 s. Only
    services on this machine (loopback addresses) are profiled.

    Parameters
    ----------
    service_or_model:
        A :class:`~nbdeploy.Webservice` (profiled in place), or a registered model —
        ``"name"``, ``"name:3"``, a :class:`~nbdeploy.Model` or a list of them — which
        is deployed on the local target with ``inference_config`` under a temporary
        name, profiled, and deleted again (also when the profile fails).
    requests:
        A list of JSON strings; a DataFrame whose rows (``batch_size`` at a time)
        become ``{"data": ...}`` requests; an ndarray (rows likewise); or the path of
        a file with one request per line. See
        :func:`nbdeploy.profiling.prepare_requests`.
    concurrency:
        Requests in flight at once. Use 1 for the latency of one request; 2-4 x the
        cores the service may use to find its throughput at saturation.
    duration, count:
        Seconds and requests bounding the load (at most 600 s and 1,000,000 requests).
    inference_config:
        Scoring script, environment and source folder for a temporary deployment.
    store_tags:
        Store ``requestedCpu`` / ``requestedMemoryInGb`` as tags on the profiled
        models, as the reference suggests.
    target_rps:
        Size the CPU recommendation for this many requests per second.
    workspace:
        The workspace (default: ``$NBDEPLOY_HOME`` or ``~/.nbdeploy``).
    batch_size, orient:
        Rows per request and JSON layout (``"split"``/``"records"``) for DataFrames.
    timeout:
        Seconds one request may take before it counts as a ``timeout`` error.
    name:
        The profile's name (default: ``profile-<service>``).

    Returns
    -------
    ProfileReport
        A :class:`~nbdeploy.profiling.ProfileResult`: latency percentiles,
        throughput, errors by status, CPU and memory series and the recommendation;
        it renders as a report in a notebook.

    Examples
    --------
    >>> result = nbdeploy.profile(svc, X_test, concurrency=2, duration=3)  # doctest: +SKIP
    >>> result.get_details()["requestedCpu"], result.latency_ms(99)       # doctest: +SKIP
    (1.1, 24.8)
    """
    from nbdeploy._service import Webservice
    from nbdeploy._workspace import get_workspace

    bodies = prepare_requests(requests, batch_size=batch_size, orient=orient, encode=_encoder())
    options: dict[str, Any] = {
        "concurrency": concurrency,
        "duration": duration,
        "count": count,
        "target_rps": target_rps,
        "timeout": timeout,
    }
    if isinstance(service_or_model, Webservice):
        if inference_config is not None:
            raise InvalidArgumentError(
                "inference_config is only used when profiling a model, not a deployed service",
                hint="update the service first, or pass the model to profile a new deployment",
            )
        service = service_or_model
        result = _profile_service(
            service, bodies, name=name or f"profile-{service.name}", **options
        )
        if store_tags:
            _store_tags(service.workspace, service.models, result)
        return result
    ws = get_workspace(workspace)
    return _profile_temporary(
        ws, service_or_model, inference_config, bodies, name, store_tags, options
    )


def _profile_temporary(
    workspace: Workspace,
    models: Any,
    inference_config: InferenceConfig | None,
    bodies: Sequence[bytes],
    name: str | None,
    store_tags: bool,
    options: dict[str, Any],
) -> ProfileReport:
    from nbdeploy._deploy import deploy_models, resolve_models
    from nbdeploy._service import Webservice

    versions = resolve_models(workspace, models)  # fail before deploying anything
    service_name = f"profile-{uuid.uuid4().hex[:12]}"
    service: Webservice | None = None
    try:
        service = deploy_models(
            workspace, service_name, versions, inference_config, None, target="local"
        )
        result = _profile_service(service, bodies, name=name or service_name, **options)
    finally:
        if service is not None:
            service.delete()
        else:  # a failed deploy may have left a record behind
            with contextlib.suppress(Exception):
                Webservice(workspace, service_name).delete()
    if store_tags:
        _store_tags(workspace, [str(v.ref) for v in versions], result)
    return result


def profile_models(
    workspace: Workspace | None,
    profile_name: str,
    models: Sequence[Any],
    inference_config: InferenceConfig | None = None,
    input_dataset: Any = None,
    *,
    concurrency: int = 1,
    duration: float | None = None,
    count: int | None = None,
    target_rps: float | None = None,
    store_tags: bool = False,
) -> ProfileReport:
    """The reference's ``Model.profile(ws, name, [model], inference_config, input_dataset)``.

    Deploys ``models`` temporarily with ``inference_config``, sends ``input_dataset``
    (a list of request strings, a one-column DataFrame of request strings as the
    reference's dataset, a DataFrame of rows, or a file with one request per line) and
    returns the :class:`ProfileReport`; its ``get_details()``
    has the reference's ``requestedCpu`` and ``requestedMemoryInGb``.

    Examples
    --------
    >>> profile = Model.profile(ws, "unique_name", [model], inference_config,
    ...                         input_dataset=requests)            # doctest: +SKIP
    >>> profile.wait_for_completion(True)                          # doctest: +SKIP
    >>> details = profile.get_details()                            # doctest: +SKIP
    >>> model.add_tags({"requestedCpu": details["requestedCpu"],
    ...                 "requestedMemoryInGb": details["requestedMemoryInGb"]})  # doctest: +SKIP
    """
    from nbdeploy._workspace import get_workspace

    if input_dataset is None:
        raise InvalidArgumentError(
            "Model.profile needs input_dataset: the sample requests to send",
            hint="pass a list of JSON request strings, a DataFrame or a file path",
        )
    return profile(
        list(models),
        input_dataset,
        concurrency=concurrency,
        duration=duration,
        count=count,
        inference_config=inference_config,
        store_tags=store_tags,
        target_rps=target_rps,
        workspace=get_workspace(workspace),
        name=profile_name,
    )


# -- the command line ------------------------------------------------------------------------
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
    from nbdeploy._api import get_service

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
