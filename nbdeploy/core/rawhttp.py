"""Raw HTTP scoring: ``@rawhttp`` hands ``run()`` the whole request and lets it answer.

A scoring script whose ``run`` is decorated with :func:`rawhttp` receives a
:class:`Request` instead of decoded ``data`` — method, path, query, headers and the
body bytes — and may return a :class:`Response` with any status, headers, content type
and body (images and other binary payloads, CSV, HTML ...). ``/score`` then answers
``GET`` as well as ``POST``. Anything else ``run()`` returns is sent as JSON, as for
ordinary scripts (``bytes`` as ``application/octet-stream``).

The two classes keep the parts of Flask's request and response API that Azure ML's
``AMLRequest`` / ``AMLResponse`` scripts use (``request.method``, ``request.args``,
``request.full_path``, ``request.headers``, ``request.get_data()``, ``request.data``,
``request.get_json()``; ``Response(body, status)``, ``response.headers[...] = ...``),
so those scripts run unchanged (see :mod:`nbdeploy.compat`).

Examples
--------
>>> @rawhttp
... def run(request):
...     return Response(request.get_data()[::-1], headers={"X-Reversed": "yes"})
>>> req = Request("POST", "/score", query_string=b"", headers={}, body=b"abc")
>>> resp = run(req)
>>> resp.status_code, resp.get_data(), resp.headers["x-reversed"]
(200, b'cba', 'yes')
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, TypeVar, overload
from urllib.parse import parse_qsl

from nbdeploy.core.schema import json_default
from nbdeploy.core.scoring import RAWHTTP_MARKER
from nbdeploy.exceptions import BadRequestError, InvalidArgumentError

__all__ = ["Headers", "QueryArgs", "Request", "Response", "rawhttp"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def rawhttp(func: F) -> F:
    """Mark a scoring script's ``run`` to receive the raw :class:`Request`.

    Examples
    --------
    >>> @rawhttp
    ... def run(request):
    ...     return request.method
    >>> getattr(run, "__nbdeploy_rawhttp__")
    True
    """
    setattr(func, RAWHTTP_MARKER, True)
    return func


class Headers(MutableMapping[str, str]):
    """Case-insensitive HTTP headers that keep the spelling they were set with.

    Examples
    --------
    >>> h = Headers({"Content-Type": "image/png"})
    >>> h["content-type"], "CONTENT-TYPE" in h, list(h)
    ('image/png', True, ['Content-Type'])
    """

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        if items is not None:
            pairs = items.items() if isinstance(items, Mapping) else items
            for key, value in pairs:
                self[key] = value

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __setitem__(self, key: str, value: str) -> None:
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgumentError(
                f"HTTP header {key!r}: names and values must be str, got "
                f"{type(key).__name__} / {type(value).__name__}",
                hint="convert the value with str()",
            )
        if any(c in key or c in value for c in "\r\n"):
            raise InvalidArgumentError(f"HTTP header {key!r} contains a line break")
        self._items[key.lower()] = (key, value)

    def __delitem__(self, key: str) -> None:
        del self._items[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._items

    def __repr__(self) -> str:
        # Header *names* only: values may hold credentials (Authorization, cookies).
        return f"Headers({sorted(self)!r})"


class QueryArgs(Mapping[str, str]):
    """The query parameters of a request, like Flask's ``request.args``.

    ``args["k"]`` and ``args.get("k")`` give the first value of ``k``;
    ``args.getlist("k")`` every value.

    Examples
    --------
    >>> args = QueryArgs.parse(b"n=1&n=2&name=a+b")
    >>> args["n"], args.getlist("n"), args.get("n", type=int), args["name"]
    ('1', ['1', '2'], 1, 'a b')
    """

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs = list(pairs)
        self._first: dict[str, str] = {}
        for key, value in self._pairs:
            self._first.setdefault(key, value)

    @classmethod
    def parse(cls, query_string: bytes | str) -> QueryArgs:
        """Parse ``a=1&b=2`` (percent-encoded, ``+`` as space)."""
        text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
        return cls(parse_qsl(text, keep_blank_values=True))

    def __getitem__(self, key: str) -> str:
        return self._first[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    @overload
    def get(self, key: str, default: None = None, type: None = None) -> str | None: ...
    @overload
    def get(self, key: str, default: T, type: None = None) -> str | T: ...
    @overload
    def get(self, key: str, default: Any = None, *, type: Callable[[str], T]) -> T | Any: ...

    def get(self, key: str, default: Any = None, type: Callable[[str], Any] | None = None) -> Any:
        """The first value of ``key`` (converted by ``type``), else ``default``.

        A value ``type`` cannot convert gives ``default``, as in Flask.
        """
        if key not in self._first:
            return default
        value = self._first[key]
        if type is None:
            return value
        try:
            return type(value)
        except (ValueError, TypeError):
            return default

    def getlist(self, key: str) -> list[str]:
        """Every value of ``key``, in order."""
        return [v for k, v in self._pairs if k == key]

    def items_multi(self) -> list[tuple[str, str]]:
        """Every ``(key, value)`` pair, repeated keys included."""
        return list(self._pairs)

    def to_dict(self, flat: bool = True) -> dict[str, Any]:
        """``{key: first value}``, or ``{key: [values]}`` with ``flat=False``."""
        if flat:
            return dict(self._first)
        return {key: self.getlist(key) for key in self._first}

    def __repr__(self) -> str:
        return f"QueryArgs({self._pairs!r})"


class Request:
    """The request a ``@rawhttp`` ``run()`` receives (Flask / ``AMLRequest`` style).

    Parameters
    ----------
    method:
        ``GET``, ``POST`` ...
    path:
        The URL path (``/score``).
    query_string:
        The raw query string, without ``?``.
    headers:
        The request headers.
    body:
        The body bytes.
    url_root:
        ``scheme://host[:port]/`` the request came to (for :attr:`url`).
    remote_addr:
        The client's address, when known.

    Examples
    --------
    >>> r = Request("GET", "/score", query_string=b"x=1", headers={"Accept": "*/*"})
    >>> r.full_path, r.args["x"], r.get_data()
    ('/score?x=1', '1', b'')
    """

    def __init__(
        self,
        method: str,
        path: str,
        *,
        query_string: bytes | str = b"",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
        url_root: str = "http://localhost/",
        remote_addr: str | None = None,
    ) -> None:
        self.method = method.upper()
        self.path = path
        self.query_string = (
            query_string.encode("latin-1") if isinstance(query_string, str) else query_string
        )
        self.headers = Headers(headers)
        self._body = bytes(body)
        self.url_root = url_root if url_root.endswith("/") else url_root + "/"
        self.remote_addr = remote_addr
        self._args: QueryArgs | None = None
        self._form: QueryArgs | None = None

    @property
    def args(self) -> QueryArgs:
        """The query parameters."""
        if self._args is None:
            self._args = QueryArgs.parse(self.query_string)
        return self._args

    @property
    def full_path(self) -> str:
        """Path and query: ``/score?x=1`` (``/score?`` without a query, as in Flask)."""
        return f"{self.path}?{self.query_string.decode('latin-1')}"

    @property
    def url(self) -> str:
        """The full URL the request was sent to."""
        query = self.query_string.decode("latin-1")
        base = self.url_root.rstrip("/") + self.path
        return f"{base}?{query}" if query else base

    @property
    def base_url(self) -> str:
        """The URL without the query string."""
        return self.url_root.rstrip("/") + self.path

    @property
    def host(self) -> str:
        """The ``Host`` header."""
        return self.headers.get("host", "")

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` header, as sent."""
        return self.headers.get("content-type")

    @property
    def mimetype(self) -> str:
        """The content type without parameters, lower-case (``application/json``)."""
        return (self.content_type or "").split(";", 1)[0].strip().lower()

    @property
    def content_length(self) -> int:
        """The number of body bytes."""
        return len(self._body)

    @property
    def is_json(self) -> bool:
        """Whether the content type is JSON (``application/json`` or ``+json``)."""
        mimetype = self.mimetype
        return mimetype == "application/json" or mimetype.endswith("+json")

    def get_data(
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> Any:
        """The body: bytes, or text with ``as_text=True`` (UTF-8, bad bytes replaced).

        The first two parameters are Flask's (``request.get_data(False)`` in Azure ML
        samples passes ``cache=False``, which changes nothing here: the body is kept).
        """
        del cache, parse_form_data
        return self._body.decode("utf-8", "replace") if as_text else self._body

    @property
    def data(self) -> bytes:
        """The body bytes."""
        return self._body

    def get_json(self, force: bool = False, silent: bool = False) -> Any:
        """The body decoded as JSON.

        Like Flask: ``None`` when the content type is not JSON (unless ``force``);
        an undecodable body raises :class:`~nbdeploy.exceptions.BadRequestError` (a
        400 for the caller) unless ``silent``, which gives ``None``.
        """
        if not (force or self.is_json):
            return None
        try:
            return json.loads(self._body)
        except (ValueError, UnicodeDecodeError) as exc:
            if silent:
                return None
            raise BadRequestError(
                f"request body is not valid JSON: {exc}",
                hint="send a JSON body with Content-Type: application/json",
            ) from None

    @property
    def json(self) -> Any:
        """:meth:`get_json` with the defaults."""
        return self.get_json()

    @property
    def form(self) -> QueryArgs:
        """Fields of an ``application/x-www-form-urlencoded`` body (else empty)."""
        if self._form is None:
            if self.mimetype == "application/x-www-form-urlencoded":
                self._form = QueryArgs.parse(self._body)
            else:
                self._form = QueryArgs()
        return self._form

    @property
    def values(self) -> QueryArgs:
        """Query and form fields together (query first)."""
        return QueryArgs([*self.args.items_multi(), *self.form.items_multi()])

    def __repr__(self) -> str:
        # Like Flask's: no headers, so printing a request never shows credentials.
        return f"<Request {self.url!r} [{self.method}]>"


_JSON_TYPE = "application/json"


class Response:
    """What a ``@rawhttp`` ``run()`` answers with.

    Parameters
    ----------
    body:
        ``bytes`` are sent as they are (``application/octet-stream`` by default),
        ``str`` as UTF-8 (``text/plain; charset=utf-8``), ``None`` as an empty body,
        anything else as JSON (``application/json``).
    status:
        The HTTP status code (``status_code`` is accepted too).
    headers:
        Response headers; more can be set later with ``response.headers[k] = v``.
    content_type:
        Overrides the content type (``mimetype`` is accepted too, as in Flask).

    Examples
    --------
    >>> Response(b"\\x89PNG...", content_type="image/png").content_type
    'image/png'
    >>> r = Response({"ok": True}, status=201)
    >>> r.status_code, r.get_data(), r.content_type
    (201, b'{"ok": true}', 'application/json')
    """

    def __init__(
        self,
        body: Any = None,
        status: int | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content_type: str | None = None,
        *,
        mimetype: str | None = None,
        status_code: int | None = None,
    ) -> None:
        code = status if status is not None else status_code
        code = 200 if code is None else code
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise InvalidArgumentError(
                f"bad HTTP status {code!r} for a Response", hint="use a code from 100 to 599"
            )
        self.status_code = code
        self.headers = Headers(headers)
        data, inferred = _encode_body(body)
        self._body = data
        chosen = content_type or mimetype or self.headers.get("content-type") or inferred
        if mimetype and not content_type and mimetype.startswith("text/"):
            chosen = f"{mimetype}; charset=utf-8"
        self.headers["Content-Type"] = chosen

    @property
    def status(self) -> str:
        """The status line's code as text (``"200"``), as Flask's ``status`` begins."""
        return str(self.status_code)

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header."""
        return self.headers["content-type"]

    @content_type.setter
    def content_type(self, value: str) -> None:
        self.headers["Content-Type"] = value

    @property
    def mimetype(self) -> str:
        """The content type without parameters."""
        return self.content_type.split(";", 1)[0].strip()

    def get_data(self, as_text: bool = False) -> Any:
        """The body bytes (or text with ``as_text=True``)."""
        return self._body.decode("utf-8", "replace") if as_text else self._body

    def set_data(self, value: bytes | str) -> None:
        """Replace the body (``str`` is encoded as UTF-8)."""
        self._body = value.encode("utf-8") if isinstance(value, str) else bytes(value)

    @property
    def data(self) -> bytes:
        """The body bytes."""
        return self._body

    @data.setter
    def data(self, value: bytes | str) -> None:
        self.set_data(value)

    def __repr__(self) -> str:
        return f"<Response {len(self._body)} bytes [{self.status_code}] {self.content_type!r}>"


def _encode_body(body: Any) -> tuple[bytes, str]:
    if body is None:
        return b"", "text/plain; charset=utf-8"
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), "application/octet-stream"
    if isinstance(body, str):
        return body.encode("utf-8"), "text/plain; charset=utf-8"
    try:
        return json.dumps(body, default=json_default).encode("utf-8"), _JSON_TYPE
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"cannot send a {type(body).__name__} as a response body: {exc}",
            hint="pass bytes, str, or JSON-serializable data",
        ) from None
