"""The scoring-script contract: ``init()`` once, ``run(data)`` per request.

A scoring (entry) script is an ordinary Python file with two top-level functions:

- ``init()`` — no required arguments; runs once when the service starts and usually
  loads the model into a global (``global model``);
- ``run(data)`` — exactly one required positional argument, the decoded request data
  (or, when ``run`` is decorated with ``@rawhttp``, the raw request); returns anything
  JSON-serializable.

This module checks scripts statically (:func:`check_script`, no code runs), imports
them for the server (:func:`load_script`), decides how ``run()`` is called
(:class:`RunCall`, the one rule the server and ``%%writefile-score``'s dry run share)
(scripts find their model files with :func:`nbdeploy.core.modelpath.get_model_path`).

How ``run()`` is called
-----------------------
==================================  ===================================================
the script's ``run``                what it receives
==================================  ===================================================
``@rawhttp``                        the request object (method, headers, body bytes)
``@input_schema(...)`` /            the decoded, typed parameters: each request key
``@output_schema(...)``             named like a parameter, converted by its decorator
                                    (ndarray, DataFrame, Python value)
undecorated, ``input_mode="raw"``   the request body as ``str`` (Azure ML's rule; the
                                    default of ``Model.deploy`` / ``InferenceConfig``)
undecorated, ``input_mode=          ``"data"`` converted by the model's registered
"decoded"``                         schema (DataFrame/ndarray), extra keys as keyword
                                    arguments (the default of ``nbdeploy.deploy``)
==================================  ===================================================

Examples
--------
>>> report = check_script("def init():\\n    pass\\n\\ndef run(data):\\n    return data\\n")
>>> report.ok
True
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import inspect
import os
import symtable
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, ModuleType, TracebackType
from typing import Any, Literal, Protocol, cast

from nbdeploy.core.schema import Schema
from nbdeploy.exceptions import (
    BadRequestError,
    InvalidArgumentError,
    NbdeployError,
    SchemaMismatchError,
    ScoringScriptError,
)

__all__ = [
    "INPUT_MODES",
    "RAWHTTP_MARKER",
    "Decorations",
    "InputMode",
    "ParameterSpec",
    "RunCall",
    "ScoringScript",
    "ScriptIssue",
    "ScriptReport",
    "check_input_mode",
    "check_script",
    "keyword_parameters",
    "load_script",
]

#: Attribute a ``@rawhttp`` decorator sets to ``True`` on ``run``.
RAWHTTP_MARKER = "__nbdeploy_rawhttp__"
#: Attributes the schema decorators set on ``run`` (a ``Schema`` or its dict).
INPUT_SCHEMA_ATTR = "__nbdeploy_input_schema__"
OUTPUT_SCHEMA_ATTR = "__nbdeploy_output_schema__"
#: Attribute the schema decorators set on ``run``: ``{parameter name: ParameterSpec}``.
PARAMETERS_ATTR = "__nbdeploy_parameters__"

#: How an undecorated ``run()`` receives a request: the body as ``str`` (``"raw"``,
#: Azure ML's rule) or ``"data"`` decoded and converted (``"decoded"``).
InputMode = Literal["raw", "decoded"]
INPUT_MODES: tuple[InputMode, ...] = ("raw", "decoded")
#: What ``run()`` receives; see :class:`RunCall`.
CallStyle = Literal["rawhttp", "schema", "raw", "decoded"]

#: Names every module has without defining them (``__class__``: the compiler's cell
#: behind ``super()``).
_MODULE_NAMES = frozenset(
    {
        "__class__",
        "__name__",
        "__file__",
        "__doc__",
        "__spec__",
        "__loader__",
        "__package__",
        "__builtins__",
        "__cached__",
        "__annotations__",
    }
)

_SCRIPT_HINT = (
    "a scoring script defines 'def init():' (loads the model, no arguments) and "
    "'def run(data):' (one argument: the request data)"
)


@dataclass(frozen=True)
class ScriptIssue:
    """One finding of :func:`check_script`: a 1-based line (``None`` if global) and text.

    Examples
    --------
    >>> str(ScriptIssue(3, "undefined name 'x'"))
    "line 3: undefined name 'x'"
    """

    line: int | None
    message: str

    def __str__(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScriptIssue:
        return cls(line=data.get("line"), message=str(data["message"]))


@dataclass(frozen=True)
class ScriptReport:
    """What :func:`check_script` found.

    Attributes
    ----------
    path:
        The script's file, or ``None`` when checked from text.
    errors:
        Problems that make the script fail in a service (syntax, missing or misshapen
        ``init``/``run``, names that are never defined).
    warnings:
        Things worth knowing that do not fail by themselves.
    notebook_names:
        Names the script uses that only the notebook defines (sorted).
    undefined_names:
        Names the script uses that nothing defines (sorted).
    raw:
        Whether ``run`` is decorated with ``@rawhttp``.
    """

    path: str | None = None
    errors: tuple[ScriptIssue, ...] = ()
    warnings: tuple[ScriptIssue, ...] = ()
    notebook_names: tuple[str, ...] = ()
    undefined_names: tuple[str, ...] = ()
    raw: bool = False

    @property
    def ok(self) -> bool:
        """True when there is no error."""
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise :class:`ScoringScriptError` listing every error, if there is one.

        Examples
        --------
        >>> check_script("def run(data): pass").raise_for_errors()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nbdeploy.exceptions.ScoringScriptError: scoring script <text> has 1 error: ...
        """
        if self.ok:
            return
        where = self.path or "<text>"
        count = len(self.errors)
        details = "; ".join(str(e) for e in self.errors)
        hint = _SCRIPT_HINT
        if self.notebook_names:
            hint = (
                "define or load " + ", ".join(self.notebook_names) + " in the script "
                "(for a model: load it in init() from get_model_path()), or import it"
            )
        raise ScoringScriptError(
            f"scoring script {where} has {count} error{'s' if count > 1 else ''}: {details}",
            hint=hint,
        )

    def __str__(self) -> str:
        lines = [f"{self.path or '<text>'}: {'ok' if self.ok else 'errors'}"]
        lines += [f"  error: {e}" for e in self.errors]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "errors": [e.to_dict() for e in self.errors],
            "warnings": [w.to_dict() for w in self.warnings],
            "notebook_names": list(self.notebook_names),
            "undefined_names": list(self.undefined_names),
            "raw": self.raw,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScriptReport:
        return cls(
            path=data.get("path"),
            errors=tuple(ScriptIssue.from_dict(e) for e in data.get("errors", ())),
            warnings=tuple(ScriptIssue.from_dict(w) for w in data.get("warnings", ())),
            notebook_names=tuple(data.get("notebook_names", ())),
            undefined_names=tuple(data.get("undefined_names", ())),
            raw=bool(data.get("raw", False)),
        )


def _read_script(source_or_path: str | os.PathLike[str]) -> tuple[str, str | None]:
    """Return (source, path or None). See :func:`check_script` for the rule."""
    if isinstance(source_or_path, str) and (
        "\n" in source_or_path or not source_or_path.rstrip().endswith(".py")
    ):
        return source_or_path, None
    path = Path(source_or_path)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except FileNotFoundError:
        raise ScoringScriptError(
            f"scoring script {str(path)!r} does not exist",
            hint="check the path (relative paths start at the current folder)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScoringScriptError(
            f"cannot read scoring script {str(path)!r}: {exc}",
            hint="the script must be readable UTF-8 text",
        ) from None


def _decorator_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _required_positional(args: ast.arguments) -> int:
    positional = [*args.posonlyargs, *args.args]
    return len(positional) - len(args.defaults)


def _required_keyword_only(args: ast.arguments) -> list[str]:
    return [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]


def _check_function(
    funcs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef],
    name: str,
    errors: list[ScriptIssue],
) -> None:
    func = funcs.get(name)
    call = "init()" if name == "init" else "run(data)"
    if func is None:
        errors.append(ScriptIssue(None, f"the script defines no top-level {call} function"))
        return
    if isinstance(func, ast.AsyncFunctionDef):
        errors.append(ScriptIssue(func.lineno, f"{name}() must be a plain 'def', not 'async def'"))
    required = _required_positional(func.args)
    keyword_only = _required_keyword_only(func.args)
    if keyword_only:
        errors.append(
            ScriptIssue(
                func.lineno,
                f"{name}() has required keyword-only arguments {', '.join(keyword_only)}; "
                f"the server calls {call}",
            )
        )
    if name == "init" and required:
        errors.append(
            ScriptIssue(
                func.lineno,
                f"init() takes {required} required argument{'s' if required > 1 else ''}; "
                "it must take none (load the model from get_model_path() instead)",
            )
        )
    if name == "run" and not (required == 1 or (required == 0 and func.args.vararg)):
        errors.append(
            ScriptIssue(
                func.lineno,
                f"run() takes {required} required positional arguments; it must take "
                "exactly one (the request data)",
            )
        )


def _free_names(source: str, filename: str, tree: ast.Module) -> dict[str, int]:
    """Names the script reads but never defines, imports or gets as builtins → first line."""
    table = symtable.symtable(source, filename, "exec")
    defined: set[str] = set(_MODULE_NAMES) | set(dir(builtins))
    used: set[str] = set()
    stack = [table]
    while stack:
        current = stack.pop()
        is_module = current.get_type() == "module"
        for sym in current.get_symbols():
            name = sym.get_name()
            if is_module and (sym.is_assigned() or sym.is_imported()):
                defined.add(name)
            if sym.is_declared_global() and (sym.is_assigned() or sym.is_imported()):
                defined.add(name)  # `global model; model = ...` inside init()
            if sym.is_referenced() and (is_module or sym.is_global()):
                used.add(name)
        stack.extend(current.get_children())
    free = used - defined
    lines: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in free:
            lines[node.id] = min(lines.get(node.id, node.lineno), node.lineno)
    for name in free:
        lines.setdefault(name, 1)
    return lines


def _entry_points(
    tree: ast.Module, warnings: list[ScriptIssue]
) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """The script's top-level ``init`` and ``run`` (the last definition of each); warns
    about a second definition."""
    funcs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in (
            "init",
            "run",
        ):
            if node.name in funcs:
                warnings.append(
                    ScriptIssue(
                        node.lineno,
                        f"{node.name}() is defined again (first on line "
                        f"{funcs[node.name].lineno}); the last definition wins",
                    )
                )
            funcs[node.name] = node
    return funcs


def _check_names(
    source: str,
    filename: str,
    tree: ast.Module,
    known: set[str],
    errors: list[ScriptIssue],
    warnings: list[ScriptIssue],
) -> tuple[list[str], list[str]]:
    """Report the names the script uses but never defines; return them as (only defined
    in the notebook, defined nowhere). A star import makes this impossible: a warning."""
    notebook: list[str] = []
    undefined: list[str] = []
    star = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)
    ]
    if star:
        warnings.append(
            ScriptIssue(
                star[0].lineno,
                f"'from {star[0].module} import *' hides which names the script defines; "
                "undefined names are not checked",
            )
        )
        return notebook, undefined
    free = _free_names(source, filename, tree)
    for name, line in sorted(free.items(), key=lambda item: (item[1], item[0])):
        if name in known:
            notebook.append(name)
            errors.append(
                ScriptIssue(
                    line,
                    f"name {name!r} is only defined in the notebook; the service will not have it",
                )
            )
        else:
            undefined.append(name)
            errors.append(ScriptIssue(line, f"undefined name {name!r}"))
    return notebook, undefined


def check_script(
    source_or_path: str | os.PathLike[str], *, known_names: Iterable[str] = ()
) -> ScriptReport:
    """Check a scoring script without running it.

    It must parse, define a top-level ``init()`` with no required arguments and a
    top-level ``run`` with exactly one required positional argument (``run(data)``, or
    ``run(request)`` under ``@rawhttp``), and use only names it defines, imports or
    gets as builtins. Names of ``global`` statements assigned in a function (the usual
    ``global model`` in ``init()``) count as defined.

    Parameters
    ----------
    source_or_path:
        A path (``Path``, or a one-line ``str`` ending in ``.py``) or the script text.
    known_names:
        The names the notebook defines (its user namespace). A name the script uses
        that only the notebook defines is reported as "only defined in the notebook" —
        the most common mistake when a script is written from a notebook.

    Returns
    -------
    ScriptReport
        Use :attr:`ScriptReport.ok` or :meth:`ScriptReport.raise_for_errors`.

    Raises
    ------
    ScoringScriptError
        Only when a path is given and the file cannot be read.

    Examples
    --------
    >>> src = "def init():\\n    global m\\n    m = 1\\n\\ndef run(data):\\n    return m + df\\n"
    >>> report = check_script(src, known_names={"df"})
    >>> report.notebook_names
    ('df',)
    >>> [str(e) for e in report.errors]
    ["line 6: name 'df' is only defined in the notebook; the service will not have it"]
    """
    source, path = _read_script(source_or_path)
    filename = path or "<script>"
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        message = f"syntax error: {exc.msg}"
        return ScriptReport(path=path, errors=(ScriptIssue(exc.lineno, message),))

    errors: list[ScriptIssue] = []
    warnings: list[ScriptIssue] = []
    funcs = _entry_points(tree, warnings)
    _check_function(funcs, "init", errors)
    _check_function(funcs, "run", errors)
    run = funcs.get("run")
    raw = run is not None and any(_decorator_name(d) == "rawhttp" for d in run.decorator_list)
    notebook, undefined = _check_names(source, filename, tree, set(known_names), errors, warnings)
    errors.sort(key=lambda e: (e.line is not None, e.line or 0))
    return ScriptReport(
        path=path,
        errors=tuple(errors),
        warnings=tuple(warnings),
        notebook_names=tuple(sorted(notebook)),
        undefined_names=tuple(sorted(undefined)),
        raw=raw,
    )


@dataclass(frozen=True)
class ScoringScript:
    """A scoring script imported as a module, ready to serve.

    Attributes
    ----------
    path:
        The script file.
    module:
        The imported module (registered in ``sys.modules`` under a unique name).
    init, run:
        The script's functions.
    raw:
        ``run`` is decorated with ``@rawhttp``: it receives the raw request.
    input_schema, output_schema:
        Schemas the ``@input_schema``/``@output_schema`` decorators attached to ``run``.
    """

    path: Path
    module: ModuleType
    init: Callable[[], Any]
    run: Callable[[Any], Any]
    raw: bool = False
    input_schema: Schema | None = None
    output_schema: Schema | None = None


def _schema_attr(run: Callable[..., Any], attr: str, path: Path) -> Schema | None:
    value = getattr(run, attr, None)
    if value is None or isinstance(value, Schema):
        return value
    if isinstance(value, Mapping):
        try:
            return Schema.from_dict(dict(value))
        except Exception as exc:
            raise ScoringScriptError(
                f"scoring script {path}: the schema attached to run() as {attr} cannot be "
                f"read: {exc}",
                hint="use the nbdeploy schema decorators on run()",
            ) from exc
    raise ScoringScriptError(
        f"scoring script {path}: run() carries {attr} of type {type(value).__name__}, "
        "expected a Schema",
        hint="use the nbdeploy schema decorators on run()",
    )


def load_script(
    path: str | os.PathLike[str],
    *,
    module_name: str | None = None,
    source_dir: str | os.PathLike[str] | None = None,
) -> ScoringScript:
    """Import a scoring script as a module and return its ``init``/``run``.

    The script's folder (and ``source_dir``, a bundle's ``src/``, when given) are put
    at the front of ``sys.path`` and stay there, so that imports inside ``init()`` and
    pickles referring to the user's modules work later too. The module is registered
    in ``sys.modules`` under ``module_name`` (a unique ``nbdeploy_score_<hex>`` by
    default), so two scripts never clash.

    Raises
    ------
    ScoringScriptError
        The file is missing, importing it raised, or it lacks ``init``/``run``.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "score.py"
    >>> _ = p.write_text("def init():\\n    pass\\n\\ndef run(data):\\n    return data * 2\\n")
    >>> script = load_script(p)
    >>> script.init(); script.run(21)
    42
    """
    file = Path(path).resolve()
    if not file.is_file():
        raise ScoringScriptError(
            f"scoring script {str(path)!r} does not exist",
            hint="check the path (relative paths start at the current folder)",
        )
    for folder in (source_dir, file.parent):
        if folder is not None:
            entry = str(Path(folder).resolve())
            if entry not in sys.path:
                sys.path.insert(0, entry)
    name = module_name or f"nbdeploy_score_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ScoringScriptError(
            f"cannot import scoring script {str(file)!r}", hint="it must be a .py file"
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        line = ""
        tb = exc.__traceback__
        while tb is not None:
            if Path(tb.tb_frame.f_code.co_filename) == file:
                line = f" (line {tb.tb_lineno})"
            tb = tb.tb_next
        raise ScoringScriptError(
            f"importing scoring script {str(file)!r} failed{line}: {type(exc).__name__}: {exc}",
            hint="run the script on its own (python score.py) to see the full error; "
            "missing modules belong in the environment's requirements",
        ) from exc

    try:
        return _scoring_script(file, module)
    except ScoringScriptError:
        sys.modules.pop(name, None)
        raise


def _scoring_script(file: Path, module: ModuleType) -> ScoringScript:
    functions: dict[str, Callable[..., Any]] = {}
    for attr in ("init", "run"):
        value = getattr(module, attr, None)
        if not callable(value):
            what = "is not callable" if value is not None else "is not defined"
            raise ScoringScriptError(
                f"scoring script {str(file)!r}: {attr}() {what}", hint=_SCRIPT_HINT
            )
        functions[attr] = value
    run = functions["run"]
    return ScoringScript(
        path=file,
        module=module,
        init=functions["init"],
        run=run,
        raw=getattr(run, RAWHTTP_MARKER, False) is True,
        input_schema=_schema_attr(run, INPUT_SCHEMA_ATTR, file),
        output_schema=_schema_attr(run, OUTPUT_SCHEMA_ATTR, file),
    )


def check_input_mode(value: Any, what: str = "input_mode") -> InputMode | None:
    """``value`` if it is an input mode (or ``None``); else a clear error.

    Examples
    --------
    >>> check_input_mode("raw")
    'raw'
    >>> check_input_mode("json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nbdeploy.exceptions.InvalidArgumentError: input_mode must be 'raw' or 'decoded', got 'json'
    Hint: 'raw': ...
    """
    if value is None or value in INPUT_MODES:
        return cast("InputMode | None", value)
    raise InvalidArgumentError(
        f"{what} must be 'raw' or 'decoded', got {value!r}",
        hint="'raw': an undecorated run() gets the request body as str (Azure ML's rule); "
        "'decoded': it gets \"data\" converted by the model's schema",
    )


class ParameterSpec(Protocol):
    """What a schema decorator knows about one parameter of ``run``.

    ``schema`` documents it (``None``: undocumented); ``convert`` turns the decoded
    JSON value into what ``run`` receives, raising :class:`SchemaMismatchError` (or any
    exception, taken as the request's fault) when the value does not fit; ``optional``
    says whether a request may leave it out (``@input_schema(..., optional=True)``).
    """

    @property
    def schema(self) -> Schema | None: ...

    @property
    def optional(self) -> bool: ...

    def convert(self, value: Any) -> Any: ...


@dataclass(frozen=True)
class Decorations:
    """What the schema decorators on ``run`` say (``inference_schema``'s or nbdeploy's
    stand-ins; :func:`nbdeploy.compat.decorations` reads both).

    Attributes
    ----------
    decorated:
        ``run`` carries ``@input_schema`` or ``@output_schema``: it receives decoded,
        typed parameters, whatever the input mode.
    parameters:
        The described parameters and how to convert them.
    output_schema:
        What ``@output_schema`` describes.
    package_dirs:
        Folders of the decorators' own code: an exception raised there while ``run``
        never got to the script's code is a validation failure (the request's fault).
    """

    decorated: bool = False
    parameters: Mapping[str, ParameterSpec] = field(default_factory=dict)
    output_schema: Schema | None = None
    package_dirs: tuple[str, ...] = ()

    @classmethod
    def from_attributes(cls, run: Callable[..., Any]) -> Decorations:
        """The decorations nbdeploy's own decorators left on ``run`` as attributes."""
        parameters = getattr(run, PARAMETERS_ATTR, None)
        output = getattr(run, OUTPUT_SCHEMA_ATTR, None)
        if not isinstance(parameters, Mapping):
            parameters = {}
        decorated = bool(parameters) or output is not None
        return cls(
            decorated=decorated,
            parameters=dict(parameters),
            output_schema=output if isinstance(output, Schema) else None,
        )


def keyword_parameters(run: Callable[..., Any]) -> tuple[bool, frozenset[str], str | None]:
    """What extra request keys ``run`` takes: ``(takes_any, names, data_parameter)``.

    ``takes_any`` when it has ``**kwargs``; ``names`` are its parameters that can be
    passed by keyword, except the first positional one, ``data_parameter`` (which
    receives the data). Decorators made with ``functools.wraps`` (or ``wrapt``) are
    seen through.

    Examples
    --------
    >>> def run(data, method="predict", *, top=3): ...
    >>> takes_any, names, first = keyword_parameters(run)
    >>> takes_any, sorted(names), first
    (False, ['method', 'top'], 'data')
    >>> keyword_parameters(lambda data, **kw: None)
    (True, frozenset(), 'data')
    """
    try:
        parameters = list(inspect.signature(run).parameters.values())
    except (TypeError, ValueError):
        return False, frozenset(), None
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    positional_kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    first = next((p.name for p in parameters if p.kind in positional_kinds), None)
    names = frozenset(
        p.name
        for p in parameters
        if p.name != first
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )
    return takes_any, names, first


def _convert(
    convert: Callable[[Any], Any], value: Any, what: str, *, name: str | None = None
) -> Any:
    """``convert(value)``; a failure is a :class:`SchemaMismatchError` (naming the
    parameter ``name`` when the value is not the request's data)."""
    try:
        return convert(value)
    except SchemaMismatchError as exc:
        if name is None:
            raise
        raise SchemaMismatchError(
            f"parameter {name!r}: {exc.message}",
            field=name if exc.field is None else f"{name}.{exc.field}",
            row=exc.row,
            expected=exc.expected,
            hint=exc.hint,
        ) from exc
    except NbdeployError:
        raise
    except Exception as exc:  # a decorator's own check, or a conversion gap: the request's
        text = str(exc).strip()
        raise SchemaMismatchError(
            f"{what} does not fit the input schema: {type(exc).__name__}: {text}",
            field=what,
            hint="compare the request with the example in /swagger.json",
        ) from exc


def _is_empty_batch(value: Any) -> bool:
    """A list, array or frame with no rows (what a client sends by mistake)."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return len(shape) > 0 and shape[0] == 0
    return isinstance(value, (list, tuple)) and not value


def _frames(exc: BaseException) -> list[CodeType]:
    codes: list[CodeType] = []
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        codes.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    return codes


def _body_code(run: Callable[..., Any]) -> CodeType | None:
    """The code of ``run``'s own body, under its decorators (``__wrapped__`` chain)."""
    try:
        inner = inspect.unwrap(run)
    except ValueError:  # a cycle of __wrapped__
        return None
    code = getattr(inner, "__code__", None)
    return code if isinstance(code, CodeType) else None


@dataclass(frozen=True)
class RunCall:
    """How ``run()`` is called for one loaded script: the rule of the module docstring.

    Made by :meth:`plan`; the server (and ``%%writefile-score``'s dry run, so it calls
    ``run`` exactly as the server will) then use :meth:`text_argument` (``"raw"``) or
    :meth:`arguments` (``"schema"``, ``"decoded"``) for each request, call
    ``run(data, **extras)`` and hand what it raised to :meth:`request_error`.

    Attributes
    ----------
    style:
        ``"rawhttp"``, ``"schema"`` (decorated), ``"raw"`` or ``"decoded"``.
    data_keys:
        The request keys the data may come under (``"data"``, and the name of
        ``run``'s first parameter for decorated scripts).
    input_schema, output_schema, input_example, output_example:
        What the API documents say about requests and answers.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "s.py"
    >>> _ = p.write_text("import json\\ndef init(): pass\\ndef run(raw): return json.loads(raw)\\n")
    >>> call = RunCall.plan(load_script(p), input_mode="raw")
    >>> call.style, call.run(call.text_argument(b'{"data": [1]}'))
    ('raw', {'data': [1]})
    """

    run: Callable[..., Any]
    style: CallStyle
    data_keys: tuple[str, ...] = ("data",)
    data_spec: ParameterSpec | Schema | None = None
    parameters: Mapping[str, ParameterSpec] = field(default_factory=dict)
    takes_any_key: bool = False
    keyword_names: frozenset[str] = frozenset()
    input_schema: Schema | None = None
    output_schema: Schema | None = None
    input_example: Any = None
    output_example: Any = None
    body_code: CodeType | None = None
    package_dirs: tuple[str, ...] = ()

    @classmethod
    def plan(
        cls,
        script: ScoringScript,
        *,
        input_mode: InputMode | None = None,
        model_input_schema: Schema | None = None,
        model_output_schema: Schema | None = None,
        decorations: Decorations | None = None,
    ) -> RunCall:
        """Decide how ``script.run`` is called (see the module docstring's table).

        ``input_mode`` applies to undecorated scripts only (``None``: ``"decoded"``,
        what bundles made before the setting existed mean); the model's schemas
        convert and document ``"decoded"`` requests.
        """
        run = script.run
        deco = decorations if decorations is not None else Decorations.from_attributes(run)
        base: dict[str, Any] = {"run": run, "body_code": _body_code(run)}
        if script.raw:
            return cls(style="rawhttp", **base)
        takes_any, names, first = keyword_parameters(run)
        if deco.decorated:
            spec = deco.parameters.get(first) if first is not None else None
            schema = None if spec is None else spec.schema
            output = deco.output_schema or model_output_schema
            keys = ("data",) if first in (None, "data") else ("data", str(first))
            return cls(
                style="schema",
                data_keys=keys,
                data_spec=spec,
                parameters={k: v for k, v in deco.parameters.items() if k != first},
                takes_any_key=takes_any,
                keyword_names=names,
                input_schema=schema,
                output_schema=output,
                input_example=None if schema is None else schema.example,
                output_example=None if output is None else output.example,
                package_dirs=tuple(os.path.realpath(d) for d in deco.package_dirs),
                **base,
            )
        if check_input_mode(input_mode) == "raw":
            # run() parses the body itself: nothing is validated, the documents keep the
            # registered sample as an example of what to send.
            example = None if model_input_schema is None else model_input_schema.example
            return cls(style="raw", input_example=example, **base)
        return cls(
            style="decoded",
            data_spec=model_input_schema,
            takes_any_key=takes_any,
            keyword_names=names,
            input_schema=model_input_schema,
            output_schema=model_output_schema,
            input_example=None if model_input_schema is None else model_input_schema.example,
            output_example=None if model_output_schema is None else model_output_schema.example,
            **base,
        )

    def text_argument(self, body: bytes) -> str:
        """The request body as ``run``'s ``str`` argument (style ``"raw"``).

        Raises
        ------
        BadRequestError
            The body is not UTF-8 text.
        """
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequestError(
                f"request body is not UTF-8 text: {exc}",
                hint="send JSON text encoded as UTF-8",
            ) from None

    def arguments(self, payload: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """``run``'s data and keyword arguments for a decoded request body.

        The data is the value under ``"data"`` (or the first parameter's name),
        converted by the decorator's parameter type (``"schema"``) or the model's
        schema (``"decoded"``). Other keys reach ``run`` as keyword arguments when its
        signature takes them (all with ``**kwargs``), converted by their decorators.

        Raises
        ------
        SchemaMismatchError
            A value does not fit its schema; the message names it.
        """
        key = "data" if "data" in payload else self.data_keys[-1]
        data = payload[key]
        spec = self.data_spec
        if isinstance(spec, Schema):
            data = _convert(spec.convert, data, "the request data")
        elif spec is not None:
            data = _convert(spec.convert, data, f"parameter {key!r}")
        self._check_present(payload)
        return data, self._extras(payload) if len(payload) > 1 else {}

    def _check_present(self, payload: Mapping[str, Any]) -> None:
        for name, param in self.parameters.items():
            if name not in payload and not param.optional:
                raise SchemaMismatchError(
                    f"the request lacks {name!r}, which run()'s @input_schema({name!r}, ...) "
                    "describes",
                    field=name,
                    hint=f'send {{"data": ..., "{name}": ...}}, or declare it with '
                    f"@input_schema({name!r}, ..., optional=True)",
                )

    def _extras(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The body's other keys that ``run`` takes as keyword arguments, converted."""
        extras: dict[str, Any] = {}
        for name, value in payload.items():
            if name in self.data_keys or not (self.takes_any_key or name in self.keyword_names):
                continue
            param = self.parameters.get(name)
            # An optional parameter sent empty is passed as it is (as the reference does).
            if param is not None and (value or not param.optional):
                extras[name] = _convert(param.convert, value, f"parameter {name!r}", name=name)
            else:
                extras[name] = value
        return extras

    def request_error(self, exc: BaseException, data: Any) -> NbdeployError | None:
        """The request's fault hidden in an exception ``run`` raised, if it is one.

        Two cases are: a decorator's validation failed before the body of ``run`` ran
        (the exception passed through the decorator package's code and never through
        ``run``'s own body), and ``run`` failed on an empty batch. Anything else is
        ``run``'s own failure (``None``; the server answers 500).
        """
        if isinstance(exc, NbdeployError):
            return None
        text = str(exc).strip() or type(exc).__name__
        codes = _frames(exc)
        if self.package_dirs and self.body_code not in codes:
            files = [os.path.realpath(code.co_filename) for code in codes]
            in_decorator = any(f.startswith(d + os.sep) for f in files for d in self.package_dirs)
            if in_decorator:
                error = SchemaMismatchError(
                    f"the request does not fit run()'s input schema: {type(exc).__name__}: {text}",
                    hint="compare the request with the example in /swagger.json",
                )
                error.__cause__ = exc
                return error
        if self.style in ("schema", "decoded") and _is_empty_batch(data):
            error = SchemaMismatchError(
                f"the request data is an empty batch (no rows), and run() failed on it: "
                f"{type(exc).__name__}: {text}",
                row=0,
                hint="send at least one row",
            )
            error.__cause__ = exc
            return error
        return None
