"""How the SDK's objects find their rich display without importing the display layer.

:mod:`nbdeploy.display` sits above the SDK, so an object here never imports it (not
even inside a method). Instead the display layer registers one renderer per kind of
object when it is imported (``nbdeploy/__init__.py`` imports it, so every object a
user can hold already has its renderer); ``_repr_mimebundle_`` looks the renderer up
here. Without a registered renderer an object shows as its ``repr``.

Examples
--------
>>> register_renderer("example", lambda obj: {"text/plain": "x", "text/html": "<b>x</b>"})
>>> mimebundle("example", object(), exclude=["text/html"])
{'text/plain': 'x'}
>>> mimebundle("nothing-registered", 42)
{'text/plain': '42'}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["Renderer", "mimebundle", "register_renderer", "select_mimetypes"]

#: Turns an object into a MIME bundle (``{"text/plain": ..., "text/html": ...}``).
Renderer = Callable[[Any], Mapping[str, str]]

_RENDERERS: dict[str, Renderer] = {}


def register_renderer(kind: str, renderer: Renderer) -> None:
    """Draw objects of ``kind`` (``"model"``, ``"service"``, ``"profile"``) with
    ``renderer`` from now on."""
    _RENDERERS[kind] = renderer


def select_mimetypes(
    bundle: Mapping[str, str],
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> dict[str, str]:
    """Keep the MIME types of ``bundle`` that ``include`` asks for and ``exclude`` does not.

    IPython passes ``include``/``exclude`` to ``_repr_mimebundle_``; honouring them
    lets a frontend ask for text only.

    Examples
    --------
    >>> select_mimetypes({"text/plain": "a", "text/html": "b"}, exclude=["text/html"])
    {'text/plain': 'a'}
    """
    keep = set(include) if include else None
    drop = set(exclude or ())
    return {k: v for k, v in bundle.items() if (keep is None or k in keep) and k not in drop}


def mimebundle(
    kind: str,
    obj: Any,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> dict[str, str]:
    """The MIME bundle of ``obj`` drawn by the renderer registered for ``kind``."""
    renderer = _RENDERERS.get(kind)
    bundle = renderer(obj) if renderer is not None else {"text/plain": repr(obj)}
    return select_mimetypes(bundle, include, exclude)
