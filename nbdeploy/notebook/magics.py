"""The IPython magics of ``%load_ext nbdeploy``.

Each magic is a thin front for one public function: ``@magic_arguments`` for the
arguments (its docstring is the ``?`` help; ``--help`` prints it too), one call, and a
display object as the result, which is also returned (``svc = %deploy diabetes``).

=============================  =============================================
magic                          public function
=============================  =============================================
``%%writefile-score PATH``     :func:`nbdeploy.notebook.write_score`
``%register VAR --name N``     :func:`nbdeploy.register`
``%deploy MODEL``              :func:`nbdeploy.deploy`
``%models``                    :func:`nbdeploy.models`
``%services``                  :func:`nbdeploy.services`
``%logs SVC``                  :meth:`nbdeploy.Webservice.get_logs`
``%swagger SVC``               :class:`nbdeploy.notebook.SwaggerView`
``%undeploy SVC``              :meth:`nbdeploy.Webservice.delete`
``%profile SVC --data VAR``    :func:`nbdeploy.profile` (see :mod:`.profile_magic`)
=============================  =============================================

Bad arguments are one ``UsageError`` line, and nbdeploy's errors (an unknown model, a
service that did not start, a script that fails its check) render as one line, a hint
and the cell line (``NbdeployError._render_traceback_``) — no traceback into nbdeploy.
A ``# comment`` after the arguments is ignored, as in Python.
``%%writefile-score`` is also registered as ``%%writefile_score``, because IPython's
``?`` help does not work with a hyphen after the name.
"""

from __future__ import annotations

import contextlib
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class

from nbdeploy.exceptions import NbdeployError, ScoringScriptError

from .arguments import (
    argument,
    cell_magic,
    key_value,
    line_magic,
    magic_arguments,
    parse_line,
    show,
    strip_comment,
)
from .progress import Progress

__all__ = ["NbdeployMagics", "load_ipython_extension", "parse_line", "strip_comment"]


@magics_class
class NbdeployMagics(Magics):
    """nbdeploy's magics; registered by ``%load_ext nbdeploy``."""

    def _user_value(self, name: str, what: str) -> Any:
        namespace = self.shell.user_ns if self.shell is not None else {}
        if name not in namespace:
            raise UsageError(f"no variable {name!r} in the notebook for {what}")
        return namespace[name]

    @cell_magic("writefile-score")
    @cell_magic("writefile_score")
    @magic_arguments()
    @argument("path", help="where to write the scoring script, e.g. score.py")
    @argument(
        "--model",
        "-m",
        default=None,
        metavar="NAME[:VERSION]",
        help="also run init() and run(sample) against this registered model, in a "
        "separate clean process",
    )
    @argument(
        "--input-mode",
        choices=("decoded", "raw"),
        default=None,
        help="how the service will call an undecorated run(): decoded data (default, as "
        "%%deploy) or the raw body as str (as Model.deploy)",
    )
    def writefile_score(self, line: str, cell: str) -> Any:
        """Write the cell to a scoring script and check it at once.

        The script must parse and define ``init()`` and ``run(data)``; names it uses
        that only the notebook defines are reported (the service will not have them).
        With ``--model``, ``init()`` and ``run(sample)`` run against the registered
        model in a separate process, and the result or the error (with its cell line)
        is shown.
        """
        args = parse_line(self.writefile_score, line)
        if args is None:
            return None
        from .scriptcheck import write_score

        names = [n for n in self.shell.user_ns if not n.startswith("_")] if self.shell else []
        check = write_score(
            args.path, cell, model=args.model, known_names=names, input_mode=args.input_mode
        )
        if check.ok:
            return check
        # The verdict with its details, then an error: "Run All" stops at this cell.
        show(check)
        problems = check.problems
        more = f" (and {len(problems) - 1} more above)" if len(problems) > 1 else ""
        raise ScoringScriptError(
            f"{args.path} failed its check: {problems[0]}{more}",
            hint="fix the cell and run it again; the service would fail the same way",
        )

    @line_magic("register")
    @magic_arguments()
    @argument("var", help="the notebook variable holding the model object")
    @argument("--name", "-n", required=True, help="the model's name in the registry")
    @argument("--sample", "-s", default=None, metavar="VAR", help="variable with sample input")
    @argument("--sample-output", default=None, metavar="VAR", help="variable with sample output")
    @argument("--tag", "-t", action="append", default=[], metavar="KEY=VALUE", help="a tag")
    @argument("--description", "-d", default="", help="what the model is")
    @argument("--framework", default=None, help="force the framework (sklearn, python ...)")
    def register(self, line: str) -> Any:
        """Register a model object from the notebook as the next version of ``--name``.

        ``--sample`` (a DataFrame, array or plain data in the notebook) gives the model
        its schema, so services validate requests and document themselves.
        """
        args = parse_line(self.register, line)
        if args is None:
            return None
        from nbdeploy import api as nbdeploy

        obj = self._user_value(args.var, "the model")
        sample = None if args.sample is None else self._user_value(args.sample, "--sample")
        out = (
            None
            if args.sample_output is None
            else self._user_value(args.sample_output, "--sample-output")
        )
        return nbdeploy.register(
            obj,
            args.name,
            description=args.description,
            tags=dict(key_value(t) for t in args.tag),
            sample_input=sample,
            sample_output=out,
            framework=args.framework,
        )

    @line_magic("deploy")
    @magic_arguments()
    @argument("model", nargs="+", metavar="MODEL[:VERSION]", help="registered model(s)")
    @argument("--name", "-n", default=None, help="service name (default: the model's name)")
    @argument("--score", "-s", default=None, metavar="PATH", help="the scoring script")
    @argument("--target", default=None, help="deployment target (default: local)")
    @argument("--port", "-p", type=int, default=None, help="port of a local service")
    @argument(
        "--auth",
        choices=("key", "token", "none"),
        default=None,
        help="authentication of the service (default: the target's; none for local)",
    )
    @argument(
        "--input-mode",
        choices=("decoded", "raw"),
        default=None,
        help="what an undecorated run() receives: decoded data (default) or the raw body",
    )
    def deploy(self, line: str) -> Any:
        """Deploy registered model(s) as a web service, with live progress, and show
        the service card. An existing service of that name is updated in place.

        Without ``--score`` a model with a built-in scorer deploys with it.
        """
        args = parse_line(self.deploy, line)
        if args is None:
            return None
        from nbdeploy import api as nbdeploy

        extra: dict[str, Any] = {}
        if args.auth is not None:
            extra["auth"] = args.auth
        if args.input_mode is not None:
            extra["input_mode"] = args.input_mode
        models = args.model if len(args.model) > 1 else args.model[0]
        label = args.name or args.model[0].partition(":")[0]
        with Progress(f"deploying {label}") as progress, progress.phases():
            # show_output: the target prints what it does; the bar shows the phase.
            service = nbdeploy.deploy(
                models,
                name=args.name,
                score=args.score,
                target=args.target,
                port=args.port,
                show_output=True,
                **extra,
            )
            progress.final = service.record.state.value
        return service

    @line_magic("models")
    @magic_arguments()
    @argument("name", nargs="?", default=None, help="only versions of this model")
    @argument("--tag", "-t", action="append", default=[], metavar="KEY=VALUE", help="filter")
    @argument("--latest", action="store_true", help="only the latest version of each model")
    def models(self, line: str) -> Any:
        """List the registered models (as a table)."""
        args = parse_line(self.models, line)
        if args is None:
            return None
        from nbdeploy import api as nbdeploy
        from nbdeploy.display.views import ModelList

        tags = dict(key_value(t) for t in args.tag) or None
        return ModelList(nbdeploy.models(args.name, tags=tags, latest=args.latest))

    @line_magic("services")
    @magic_arguments()
    @argument("--target", default=None, help="only services of this target")
    def services(self, line: str) -> Any:
        """List the deployed services with their last known state (as a table)."""
        args = parse_line(self.services, line)
        if args is None:
            return None
        from nbdeploy import api as nbdeploy
        from nbdeploy.display.views import ServiceList

        return ServiceList(nbdeploy.services(target=args.target))

    @line_magic("logs")
    @magic_arguments()
    @argument("service", help="the service name")
    @argument("--tail", type=int, default=None, help="only the last N lines")
    @argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep showing new lines as they come (a Stop button ends it; the kernel stays free)",
    )
    def logs(self, line: str) -> Any:
        """Show a service's log: one line per request (method, path, status, latency),
        what ``init()`` and ``run()`` printed, tracebacks of failed requests.

        With ``--follow`` the log streams live below the cell, like ``tail -f``.
        """
        args = parse_line(self.logs, line)
        if args is None:
            return None
        from nbdeploy import api as nbdeploy
        from nbdeploy.display.views import ServiceLogs

        service = nbdeploy.get_service(args.service)
        if args.follow:
            from .widgets import LiveLogs

            return LiveLogs(service, tail=50 if args.tail is None else args.tail)
        return ServiceLogs(args.service, service.get_logs(tail=args.tail))

    @line_magic("swagger")
    @magic_arguments()
    @argument("service", help="the service name")
    @argument("--openapi", action="store_true", help="the OpenAPI 3 document instead")
    def swagger(self, line: str) -> Any:
        """Show a service's OpenAPI document as tables, with a link to its Swagger UI."""
        args = parse_line(self.swagger, line)
        if args is None:
            return None
        from nbdeploy import api as nbdeploy
        from nbdeploy.display.views import SwaggerView

        return SwaggerView(nbdeploy.get_service(args.service), openapi=args.openapi)

    @line_magic("undeploy")
    @magic_arguments()
    @argument("service", help="the service name")
    def undeploy(self, line: str) -> None:
        """Stop a service and forget it."""
        args = parse_line(self.undeploy, line)
        if args is None:
            return
        from nbdeploy import api as nbdeploy

        nbdeploy.get_service(args.service).delete()
        print(f"service {args.service!r} stopped and deleted")


def load_ipython_extension(ipython: Any) -> None:
    """Register nbdeploy's magics in ``ipython`` (what ``%load_ext nbdeploy`` calls).

    Examples
    --------
    >>> from IPython.testing.globalipapp import start_ipython  # doctest: +SKIP
    >>> load_ipython_extension(start_ipython())                # doctest: +SKIP
    """
    from .profile_magic import register_profile_magic

    ipython.register_magics(NbdeployMagics)
    register_profile_magic(ipython)
    _follow_workspace(ipython)


def _follow_workspace(ipython: Any) -> None:
    """Tell JupyterLab's Deployments panel which workspace this kernel uses, now and
    after every cell (a notebook may set ``NBDEPLOY_HOME`` later). Outside a Jupyter
    kernel (terminal IPython, tests) there is no panel and nothing is written."""
    try:
        from ipykernel.connect import get_connection_file

        connection = get_connection_file()
    except Exception:  # not a kernel started by Jupyter
        return
    from nbdeploy import config
    from nbdeploy.lab.kernels import note_workspace

    def note(*_: Any) -> None:
        # On failure the panel shows the server's workspace; nothing else breaks.
        with contextlib.suppress(OSError, NbdeployError):
            note_workspace(connection, config.resolve("home"))

    note()
    if not getattr(ipython, "_nbdeploy_follows_workspace", False):
        ipython.events.register("post_run_cell", note)
        ipython._nbdeploy_follows_workspace = True
