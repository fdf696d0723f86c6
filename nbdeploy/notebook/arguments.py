"""Typed fronts for IPython's magic decorators, and how a magic reads its line.

Every magic parses its argument line here (:func:`parse_line`): split the shell's
way, ``# comments`` dropped, ``-h`` prints the help.
"""

from __future__ import annotations

import inspect
import shlex
from collections.abc import Callable
from typing import Any

from IPython import display as _ipython_display
from IPython.core import magic as _magic
from IPython.core import magic_arguments as _magic_arguments
from IPython.core.error import UsageError

__all__ = [
    "argument",
    "cell_magic",
    "key_value",
    "line_magic",
    "magic_arguments",
    "parse_line",
    "show",
    "strip_comment",
]


_Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
# IPython's argument decorators carry no annotations (and its magic markers are typed
# as unions mypy cannot call); these typed fronts keep mypy --strict meaningful below.
_untyped: Any = _magic_arguments
_untyped_magic: Any = _magic
show: Callable[..., Any] = _ipython_display.display


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
        argv = shlex.split(strip_comment(line))
    except ValueError as exc:
        raise UsageError(f"cannot split the arguments {line!r}: {exc}") from None
    parser: Any = getattr(magic, "parser")  # noqa: B009 - set by @magic_arguments
    return parser.parse_args(argv)


def strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment``, as Python reads it.

    A ``#`` starts a comment at the start of the line or after white space, outside
    quotes — so ``--tag colour=#fff`` and ``"a # b"`` keep theirs.

    Examples
    --------
    >>> strip_comment("diabetes --score score.py   # ~0.1 s to Healthy")
    'diabetes --score score.py'
    >>> strip_comment("m --tag colour=#fff --description 'a # b'")
    "m --tag colour=#fff --description 'a # b'"
    """
    quote = ""
    previous = " "
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and previous.isspace():
            return line[:i].rstrip()
        previous = char
    return line.rstrip()


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def parse_line(magic: Callable[..., Any], line: str) -> Any:
    """Parse ``line`` for ``magic``; ``-h``/``--help`` prints the help and gives None.

    The help is the docstring followed by the arguments (argparse's usage), the same
    text ``%magic?`` shows.
    """
    if any(token in ("-h", "--help") for token in strip_comment(line).split()):
        parser: Any = getattr(magic, "parser", None)
        print(inspect.cleandoc(magic.__doc__ or ""))
        if parser is not None:
            print()
            print(parser.format_help().strip())
        return None
    return parse_argstring(magic, line)
