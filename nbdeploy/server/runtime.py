"""The scoring script inside the server: loaded once, ``init()`` once, ``run()`` per request.

``init()`` and ``run()`` always run on **one** thread: scoring scripts keep a model in a
global and are rarely thread-safe, and some libraries keep per-thread state (a SQLite
connection opened in ``init()``, torch's grad mode, numpy's error state). Requests are
scored one at a time, like an Azure ML worker; scale out with replicas, not threads.
Which thread that is depends on who starts the runtime:

**Inline** (:meth:`ScoringRuntime.initialize_here`, what ``python -m nbdeploy.server``
and every target use)
    The launcher runs ``init()`` on the main thread *before* the event loop starts
    (a small stand-in answers ``503 Initializing`` on the socket meanwhile, see
    :mod:`nbdeploy.server.standby`), then uvicorn runs the event loop on that same
    thread and ``run()`` — with the JSON decoding, schema conversion and encoding
    around it — is called right on the loop, like a hand-written FastAPI endpoint.
    No thread hop, no GIL hand-over per request: measured on a 2-core machine, the
    hop to a scoring thread cost ~20 µs per request, and with a model that releases
    the GIL (a 200-tree forest) the loop thread and the scoring thread fought over
    it, 20 % of the throughput at concurrency 16. The price: while ``run()`` works,
    the loop does nothing else — ``GET /`` (health) and other requests wait until
    the current ``run()`` returns, exactly as they would behind a hand-written
    endpoint or a single synchronous worker. Size a liveness probe's timeout for the
    slowest request, or keep requests small.

**Worker** (:meth:`ScoringRuntime.initialize`, an app started in-process by its
lifespan, e.g. under FastAPI's ``TestClient``)
    Everything runs on one daemon worker thread (:class:`SerialWorker`), so the loop
    stays free: ``GET /`` answers ``503 Initializing`` during a slow ``init()`` and
    health checks answer while a big request is scored. One request costs one
    hand-off to that thread and one back (``loop.call_soon_threadsafe`` on a future
    made up front).

How ``run`` is called
---------------------
The rule lives in :class:`nbdeploy.core.scoring.RunCall` (shared with
``%%writefile-score``'s dry run): ``@rawhttp`` scripts get the request
(:meth:`ScoringRuntime.score_raw`); scripts with schema decorators (nbdeploy's or the
real ``inference_schema`` package's) get their typed parameters, each request key
named like a parameter converted by its decorator; undecorated scripts get the body as
``str`` when the bundle's ``input_mode`` is ``"raw"`` (Azure ML's rule), else
``"data"`` converted by the model's schema, with the body's other top-level keys as
keyword arguments when ``run``'s signature takes them. The signature is inspected
once, at load.

Azure ML entry scripts import ``azureml.*`` and ``inference_schema.*``; before a script
is imported, :func:`nbdeploy.compat.install` lets this process (and only this one)
find nbdeploy's minimal stand-ins when the real packages are not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import orjson

from nbdeploy.core.scoring import RunCall, keyword_parameters
from nbdeploy.exceptions import (
    BadRequestError,
    NbdeployError,
    ScoringError,
)
from nbdeploy.server.serialization import dumps

if TYPE_CHECKING:
    from nbdeploy.core.bundle import Bundle
    from nbdeploy.core.rawhttp import Request
    from nbdeploy.core.schema import Schema
    from nbdeploy.core.scoring import ScoringScript
    from nbdeploy.server.settings import ServerSettings

__all__ = ["RawAnswer", "ScoringRuntime", "SerialWorker", "keyword_parameters"]

logger = logging.getLogger("nbdeploy.server")

T = TypeVar("T")
State = Literal["starting", "ready", "failed", "stopped"]

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]

#: What a raw script's answer becomes: status, headers, body.
RawAnswer = tuple[int, list[tuple[str, str]], bytes]

# Headers the server sets itself; a raw script's values for them are dropped.
_SERVER_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "date"})
_NO_JSON_HINT = "return a str, a number, a list, a dict, an array or a DataFrame"


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class SerialWorker:
    """A single daemon thread that runs submitted calls in order.

    Examples
    --------
    >>> import asyncio
    >>> worker = SerialWorker("doc")
    >>> async def main():
    ...     return await worker.submit(sum, [1, 2, 3])
    >>> asyncio.run(main())
    6
    >>> worker.close()
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue ``fn(*args)``; the returned future settles on the calling loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
                    self._thread.start()
        self._queue.put((loop, future, fn, args))
        return future

    def close(self) -> None:
        """Let the thread finish the queued calls and stop (does not wait for it)."""
        self._queue.put(None)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            loop, future, fn, args = job
            try:
                ok, value = True, fn(*args)
            # User code may raise anything, SystemExit included; the caller decides.
            except BaseException as exc:
                ok, value = False, exc
            with contextlib.suppress(RuntimeError):  # the loop closed while fn ran
                loop.call_soon_threadsafe(_settle, future, ok, value)
            del job, future, value


def _one_line(text: str, limit: int = 1000) -> str:
    """``text`` on one line (newlines as ``\\n``), cut at ``limit`` characters."""
    flat = text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe_exception(exc: BaseException) -> str:
    """``"<Type>: <message>"`` on one line, as the server reports failures.

    Examples
    --------
    >>> describe_exception(ValueError("bad\\nvalue"))
    'ValueError: bad\\\\nvalue'
    """
    message = str(exc)
    name = type(exc).__name__
    return _one_line(f"{name}: {message}" if message else name)


class ScoringRuntime:
    """Owns one bundle's scoring script for the life of a server.

    Parameters
    ----------
    bundle:
        The loaded bundle.
    settings:
        The server's settings.

    Attributes
    ----------
    state:
        ``"starting"`` until ``init()`` returned, then ``"ready"``; ``"failed"`` when
        loading the script or ``init()`` raised (``error`` holds the exception).
    init_started:
        Whether :meth:`initialize` or :meth:`initialize_here` was called (by the
        app's start-up, or earlier by the launcher).
    inline:
        True once :meth:`initialize_here` ran ``init()`` on the calling thread:
        ``run()`` is then called on that thread too, with no hop (:meth:`score_here`).
    """

    def __init__(self, bundle: Bundle, settings: ServerSettings) -> None:
        self.bundle = bundle
        self.settings = settings
        self.state: State = "starting"
        self.init_started = False
        self.inline = False
        self.error: BaseException | None = None
        self.script: ScoringScript | None = None
        self.input_schema: Schema | None = bundle.input_schema
        self.output_schema: Schema | None = bundle.output_schema
        self.input_example: Any = None if self.input_schema is None else self.input_schema.example
        self.output_example: Any = (
            None if self.output_schema is None else self.output_schema.example
        )
        self.raw = False
        self.call: RunCall | None = None
        self._run: Callable[..., Any] | None = None
        self._listeners: list[Callable[[BaseException | None], None]] = []
        self._settled = threading.Event()
        self._worker = SerialWorker("nbdeploy-score")

    # -- start-up ---------------------------------------------------------------------

    def add_init_listener(self, callback: Callable[[BaseException | None], None]) -> None:
        """Call ``callback(error_or_None)`` on the event loop once ``init()`` finished."""
        self._listeners.append(callback)

    def wait_settled(self, timeout: float | None = None) -> bool:
        """Block (another thread than the event loop) until ``init()`` succeeded or
        failed; False on timeout. For in-process callers such as tests."""
        return self._settled.wait(timeout)

    @property
    def failure_reason(self) -> str | None:
        """``"<Type>: <message>"`` of the start-up failure, or None."""
        return None if self.error is None else describe_exception(self.error)

    async def initialize(self) -> None:
        """Load the scoring script and run its ``init()`` once, on the worker thread."""
        if self.init_started:
            raise RuntimeError("initialize() runs once per ScoringRuntime")
        self.init_started = True
        started = time.perf_counter()
        try:
            await self._worker.submit(self._load_and_init)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._settle_init(exc, started)
        else:
            self._settle_init(None, started)

    def initialize_here(self) -> bool:
        """Load the scoring script and run its ``init()`` on **this** thread; True when
        it succeeded.

        From then on :attr:`inline` is true: the caller promises to score on this
        same thread (the launcher runs the event loop on it), through
        :meth:`score_here` / :meth:`score_raw_here`. A failure is recorded (``state``
        ``"failed"``, :attr:`failure_reason`) and logged, not raised;
        ``KeyboardInterrupt`` is raised.

        Examples
        --------
        >>> runtime = ScoringRuntime(bundle, settings)  # doctest: +SKIP
        >>> runtime.initialize_here()  # doctest: +SKIP
        True
        """
        if self.init_started:
            raise RuntimeError("initialize_here() runs once per ScoringRuntime")
        self.init_started = True
        started = time.perf_counter()
        try:
            self._load_and_init()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # user code may raise anything, SystemExit too
            self._settle_init(exc, started)
        else:
            self.inline = True
            self._settle_init(None, started)
        return self.state == "ready"

    def _settle_init(self, error: BaseException | None, started: float) -> None:
        if error is not None:
            self.error = error
            self.state = "failed"
            logger.error("init() failed: %s", describe_exception(error), exc_info=error)
        else:
            self.state = "ready"
            logger.info("init() finished in %.3f s; ready", time.perf_counter() - started)
        self._settled.set()
        for callback in self._listeners:
            callback(self.error)

    def _load_and_init(self) -> None:
        from nbdeploy import compat
        from nbdeploy.core.scoring import load_script

        bundle = self.bundle
        # The scoring contract: scripts find their models through NBDEPLOY_MODEL_DIR
        # (AZUREML_MODEL_DIR for scripts written for Azure ML) and get_model_path()
        # reads the manifest in NBDEPLOY_BUNDLE_DIR; load_script puts the
        # script's folder and the bundle's source folder first on sys.path.
        os.environ.update(bundle.model_env())
        compat.install()
        script = load_script(bundle.entry_script, source_dir=bundle.source_dir)
        self.script = script
        call = RunCall.plan(
            script,
            input_mode=bundle.input_mode,
            model_input_schema=bundle.input_schema,
            model_output_schema=bundle.output_schema,
            decorations=compat.decorations(script.run),
        )
        logger.info("run() is called with %s", _STYLE_TEXT[call.style])
        if call.style == "schema" and compat.schema_package() is not None:
            logger.info("schema decorators from %s", compat.schema_package())
        self.call = call
        self.raw = call.style == "rawhttp"
        self.input_schema, self.output_schema = call.input_schema, call.output_schema
        self.input_example, self.output_example = call.input_example, call.output_example
        script.init()
        self._run = script.run

    def close(self) -> None:
        """Stop the worker thread once the queued work is done."""
        self.state = "stopped" if self.state == "ready" else self.state
        self._worker.close()

    # -- requests ---------------------------------------------------------------------

    async def score(self, body: bytes) -> bytes:
        """Score one ``POST /score`` body; the JSON answer's bytes.

        Raises
        ------
        BadRequestError
            The body is not JSON, or not an object with a ``"data"`` key.
        SchemaMismatchError
            The data does not match the input schema.
        ScoringError
            ``run()`` raised, or returned something with no JSON form; the cause is
            chained (``__cause__``) for the logs.
        NbdeployError
            Any error of nbdeploy's tree that ``run()`` raised on purpose.
        """
        if self.inline:
            return self._score(body)
        return await self._worker.submit(self._score, body)

    def score_here(self, body: bytes) -> bytes:
        """:meth:`score` on the calling thread, for an :attr:`inline` runtime (the
        server's hot path calls it straight from the event loop, no coroutine)."""
        return self._score(body)

    def _score(self, body: bytes) -> bytes:
        call = self.call
        assert call is not None, "score() before init() finished"
        if call.style == "raw":
            data: Any = call.text_argument(body)
            extras: dict[str, Any] = {}
        else:
            data, extras = call.arguments(decode_request(body, call.data_keys))
        result = _call(call, data, extras)
        if isinstance(result, (bytes, bytearray, memoryview)):
            raise ScoringError(
                f"run() returned {type(result).__name__}, which has no JSON form",
                hint=_NO_JSON_HINT + " (or serve bytes from a @rawhttp run)",
            )
        return _json(result)

    async def score_raw(self, request: Request) -> RawAnswer:
        """Call a ``@rawhttp`` script's ``run(request)``; its answer as (status,
        headers, body).

        ``run`` may return a :class:`~nbdeploy.core.rawhttp.Response` (also any object
        with ``status_code``, ``headers`` and ``get_data()``, such as the Flask
        response of a real ``azureml`` package), ``bytes`` (sent as
        ``application/octet-stream``), or anything else, sent as JSON like an ordinary
        script's result. ``Content-Length``, ``Transfer-Encoding``, ``Connection`` and
        ``Date`` headers the script sets are replaced by the server's.

        Raises
        ------
        ScoringError
            ``run()`` raised, or returned something unusable.
        NbdeployError
            Any error of nbdeploy's tree that ``run()`` raised on purpose (a
            ``BadRequestError`` from ``request.get_json()`` is a 400).
        """
        if self.inline:
            return self._score_raw(request)
        return await self._worker.submit(self._score_raw, request)

    def _score_raw(self, request: Request) -> RawAnswer:
        call = self.call
        assert call is not None, "score_raw() before init() finished"
        result = _call(call, request, {})
        if isinstance(result, (bytes, bytearray, memoryview)):
            return 200, [("Content-Type", "application/octet-stream")], bytes(result)
        status = getattr(result, "status_code", None)
        get_data = getattr(result, "get_data", None)
        headers = getattr(result, "headers", None)
        if isinstance(status, int) and callable(get_data) and headers is not None:
            try:
                body = get_data()
                pairs = [(str(k), str(v)) for k, v in headers.items()]
            except Exception as exc:
                raise ScoringError(
                    f"run() returned a response that cannot be read: {describe_exception(exc)}"
                ) from exc
            if isinstance(body, str):
                body = body.encode("utf-8")
            if not isinstance(body, (bytes, bytearray)) or not 100 <= status <= 599:
                raise ScoringError(
                    f"run() returned a response with status {status!r} and a "
                    f"{type(body).__name__} body",
                    hint="return nbdeploy.Response(body_bytes_or_str, status=200)",
                )
            kept = [(k, v) for k, v in pairs if k.lower() not in _SERVER_HEADERS]
            return status, kept, bytes(body)
        return 200, [("Content-Type", "application/json")], _json(result)


#: What the log says about each call style (RunCall.style).
_STYLE_TEXT = {
    "rawhttp": "the request object (@rawhttp)",
    "schema": "the decoded, typed parameters its schema decorators describe",
    "raw": "the request body as str (input_mode 'raw')",
    "decoded": "the request's data decoded by the model's schema (input_mode 'decoded')",
}


def _call(call: RunCall, data: Any, extras: Mapping[str, Any]) -> Any:
    try:
        return call.run(data, **extras) if extras else call.run(data)
    except NbdeployError:
        raise
    except BaseException as exc:
        fault = call.request_error(exc, data)
        if fault is not None:
            raise fault from exc
        raise ScoringError(f"run() raised {describe_exception(exc)}") from exc


def _json(result: Any) -> bytes:
    try:
        return dumps(result)
    except TypeError as exc:
        raise ScoringError(
            f"run() returned a value with no JSON form: {exc}", hint=_NO_JSON_HINT
        ) from exc


def decode_request(body: bytes, data_keys: tuple[str, ...] = ("data",)) -> dict[str, Any]:
    """Decode a ``POST /score`` body: a JSON object with a ``"data"`` key.

    Other top-level keys are kept (for options such as ``"method"``). ``data_keys``
    are the keys the data may come under (``"data"``, and the name of an
    ``@input_schema`` parameter when it is another one).

    Raises
    ------
    BadRequestError
        Not JSON, not an object, or no ``"data"`` key; the message says which.

    Examples
    --------
    >>> decode_request(b'{"data": [1, 2]}')
    {'data': [1, 2]}
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(
            f"request body is not valid JSON: {exc}",
            hint='send a JSON object such as {"data": [[1, 2, 3]]}',
        ) from None
    if not isinstance(payload, dict):
        raise BadRequestError(
            f'request body must be a JSON object with a "data" key, not a JSON '
            f"{_json_type(payload)}",
            hint='wrap the input: {"data": <your input>}',
        )
    if not any(key in payload for key in data_keys):
        keys = ", ".join(repr(k) for k in list(payload)[:10]) or "none"
        raise BadRequestError(
            f'request body lacks the "data" key (keys found: {keys})',
            hint='send {"data": <your input>}',
        )
    return payload


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "null" if value is None else type(value).__name__
