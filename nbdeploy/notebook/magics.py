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
``%profile SVC --data VAR``    :func:`nbdeploy.profile` (see :mod:`.profile_view`)
=============================  =============================================

Bad arguments are one ``UsageError`` line, and the errors a user can fix (an unknown
model, a script that fails) render as one line with a hint — no traceback.
``%%writefile-score`` is also registered as ``%%writefile_score``, because IPython's
``?`` help does not work with a hyphen after the name.
"""

from __future__ import annotations

import contextlib
import inspect
import shlex
from collections.abc import Callable, Iterator
from typing import Any

from IPython.core import magic as _magic
from IPython.core import magic_arguments as _magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class

from nbdeploy.exceptions import NbdeployError, UserError

from .progress import Progress

__all__ = ["MagicFailure", "NbdeployMagics", "load_ipython_extension"]


class MagicFailure(UserError):
    """An nbdeploy operation a magic started failed (a service that did not start, a
    script whose ``run()`` raised); shown as one line and a hint, like a user error.

    ``original`` is the exception nbdeploy raised; its type name leads the line.
    """

    def __init__(self, original: NbdeployError) -> None:
        super().__init__(original.message, hint=original.hint)
        self.original = original

    def _render_traceback_(self) -> list[str]:
        lines = [f"{type(self.original).__name__}: {self.message}"]
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        return lines


_Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
# IPython's argument decorators carry no annotations (and its magic markers are typed
# as unions mypy cannot call); these typed fronts keep mypy --strict meaningful below.
_untyped: Any = _magic_arguments
_untyped_magic: Any = _magic


def line_magic(name: str) -> _Decorator:
    """IPython's ``@line_magic(name)`` for a method of a ``Magics`` class."""
    decorate: _Decorator = _untyped_magic.line_magic(name)
    return decorate


def cell_magic(name: str) -> _Decorator:
    """IPython's ``@cell_magic(name)`` for a method of a ``Magics`` class."""
    decorate: _Decorator = _untyped_magic.cell_magic(name)
    return decorate


def magic_arguments() -> _Decorator:
    """IPython's ``@magic_arguments()``: builds the parser and the ``?`` help text."""
    decorate: _Decorator = _untyped.magic_arguments()
    return decorate


def argument(*args: Any, **kwargs: Any) -> _Decorator:
    """IPython's ``@argument(...)``: one argparse argument of a magic."""
    decorate: _Decorator = _untyped.argument(*args, **kwargs)
    return decorate


def parse_argstring(magic: Callable[..., Any], line: str) -> Any:
    """Parse a magic's argument line with its ``@magic_arguments`` parser.

    Like IPython's ``parse_argstring`` (argparse errors become one ``UsageError``
    line), but split the shell's way, so ``--description "a ridge"`` gives ``a ridge``
    without the quotes.
    """
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"cannot split the arguments {line!r}: {exc}") from None
    parser: Any = getattr(magic, "parser")  # noqa: B009 - set by @magic_arguments
    return parser.parse_args(argv)


@contextlib.contextmanager
def _one_line() -> Iterator[None]:
    """Let nbdeploy's operational errors (``DeploymentError`` ...) render as one line."""
    try:
        yield
    except UserError:
        raise
    except NbdeployError as exc:
        raise MagicFailure(exc) from exc


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _parse(magic: Callable[..., Any], line: str) -> Any:
    """Parse ``line`` for ``magic``; ``-h``/``--help`` prints the help and gives None."""
    if any(token in ("-h", "--help") for token in line.split()):
        print(inspect.cleandoc(magic.__doc__ or ""))
        return None
    return parse_argstring(magic, line)


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
        args = _parse(self.writefile_score, line)
        if args is None:
            return None
        from .scriptcheck import write_score

        names = [n for n in self.shell.user_ns if not n.startswith("_")] if self.shell else []
        with _one_line():
            return write_score(
                args.path, cell, model=args.model, known_names=names, input_mode=args.input_mode
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
        args = _parse(self.register, line)
        if args is None:
            return None
        from nbdeploy import _api as nbdeploy

        obj = self._user_value(args.var, "the model")
        sample = None if args.sample is None else self._user_value(args.sample, "--sample")
        out = (
            None
            if args.sample_output is None
            else self._user_value(args.sample_output, "--sample-output")
        )
        with _one_line():
            return nbdeploy.register(
                obj,
                args.name,
                description=args.description,
                tags=dict(_key_value(t) for t in args.tag),
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
        args = _parse(self.deploy, line)
        if args is None:
            return None
        from nbdeploy import _api as nbdeploy

        extra: dict[str, Any] = {}
        if args.auth is not None:
            extra["auth"] = args.auth
        if args.input_mode is not None:
            extra["input_mode"] = args.input_mode
        models = args.model if len(args.model) > 1 else args.model[0]
        label = args.name or args.model[0].partition(":")[0]
        progress = Progress(f"deploying {label}")
        try:
            with _one_line():
                service = nbdeploy.deploy(
                    models,
                    name=args.name,
                    score=args.score,
                    target=args.target,
                    port=args.port,
                    show_output=False,
                    **extra,
                )
        except BaseException as exc:
            progress.done(f"failed: {type(exc).__name__}", ok=False)
            raise
        progress.done(service.record.state.value)
        return service

    @line_magic("models")
    @magic_arguments()
    @argument("name", nargs="?", default=None, help="only versions of this model")
    @argument("--tag", "-t", action="append", default=[], metavar="KEY=VALUE", help="filter")
    @argument("--latest", action="store_true", help="only the latest version of each model")
    def models(self, line: str) -> Any:
        """List the registered models (as a table)."""
        args = _parse(self.models, line)
        if args is None:
            return None
        from nbdeploy import _api as nbdeploy

        from .views import ModelList

        tags = dict(_key_value(t) for t in args.tag) or None
        with _one_line():
            return ModelList(nbdeploy.models(args.name, tags=tags, latest=args.latest))

    @line_magic("services")
    @magic_arguments()
    @argument("--target", default=None, help="only services of this target")
    def services(self, line: str) -> Any:
        """List the deployed services with their last known state (as a table)."""
        args = _parse(self.services, line)
        if args is None:
            return None
        from nbdeploy import _api as nbdeploy

        from .views import ServiceList

        with _one_line():
            return ServiceList(nbdeploy.services(target=args.target))

    @line_magic("logs")
    @magic_arguments()
    @argument("service", help="the service name")
    @argument("--tail", type=int, default=None, help="only the last N lines")
    def logs(self, line: str) -> Any:
        """Show a service's log (server output, tracebacks of failed requests)."""
        args = _parse(self.logs, line)
        if args is None:
            return None
        from nbdeploy import _api as nbdeploy

        from .views import ServiceLogs

        with _one_line():
            text = nbdeploy.get_service(args.service).get_logs(tail=args.tail)
        return ServiceLogs(args.service, text)

    @line_magic("swagger")
    @magic_arguments()
    @argument("service", help="the service name")
    @argument("--openapi", action="store_true", help="the OpenAPI 3 document instead")
    def swagger(self, line: str) -> Any:
        """Show a service's OpenAPI document as tables, with a link to its Swagger UI."""
        args = _parse(self.swagger, line)
        if args is None:
            return None
        from nbdeploy import _api as nbdeploy

        from .views import SwaggerView

        with _one_line():
            return SwaggerView(nbdeploy.get_service(args.service), openapi=args.openapi)

    @line_magic("undeploy")
    @magic_arguments()
    @argument("service", help="the service name")
    def undeploy(self, line: str) -> None:
        """Stop a service and forget it."""
        args = _parse(self.undeploy, line)
        if args is None:
            return
        from nbdeploy import _api as nbdeploy

        with _one_line():
            nbdeploy.get_service(args.service).delete()
        print(f"service {args.service!r} stopped and deleted")


def load_ipython_extension(ipython: Any) -> None:
    """Register nbdeploy's magics in ``ipython`` (what ``%load_ext nbdeploy`` calls).

    Examples
    --------
    >>> from IPython.testing.globalipapp import start_ipython  # doctest: +SKIP
    >>> load_ipython_extension(start_ipython())                # doctest: +SKIP
    """
    from nbdeploy.notebook.profile_view import register_profile_magic

    ipython.register_magics(NbdeployMagics)
    register_profile_magic(ipython)
