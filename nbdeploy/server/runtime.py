"""The scoring script inside the server: loaded once, ``init()`` once, ``run()`` per request.

``init()`` and ``run()`` run on **one** scoring thread by default: scoring scripts keep a
model in a global and are rarely thread-safe, and some libraries keep per-thread state
(a SQLite connection opened in ``init()``, torch's grad mode, numpy's error state).
Requests are scored one at a time, like an Azure ML worker; scale out with replicas.
``run()`` is never called on the event loop: the loop only does HTTP, so ``GET /``
(health), the documents and the refusals of requests that must wait too long are
answered while a slow ``run()`` works, and a 5 s ``run()`` does not make the service
look dead to a health probe. The price, measured with ``make bench`` on a 2-core
machine: at concurrency 1 nothing (0.9-1.2x the hand-written server that predicts on
its event loop), at concurrency 16 the loop and the scoring thread share the GIL and
one replica does 0.6-0.9x of it (worst for sub-millisecond requests); replicas, not an
inline ``run()``, are how a service uses more of the machine (2 replicas: 1.5-1.8x
the hand-written server).

``init()`` runs on the scoring thread too: :meth:`ScoringRuntime.initialize_here`
(what the launcher calls before the loop starts, while a stand-in answers ``503
Initializing``, see :mod:`nbdeploy.server.standby`) waits for it there, and
:meth:`ScoringRuntime.initialize` (an app started in-process by its lifespan, e.g.
under Starlette's ``TestClient``) awaits it.

Each replica enforces its limits (:mod:`nbdeploy.core.serving`): at most
``replica_max_concurrent_requests`` ``run()`` calls at once (that many scoring
threads; 1 by default, which keeps ``init()`` and ``run()`` on one thread), a request
waits at most ``max_request_wait_time`` ms for a slot (then ``503``), and ``run()``
must answer within ``scoring_timeout_ms`` (then ``504``; it goes on in its thread and
keeps its slot until it returns).

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
import collections
import concurrent.futures
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
    ScoringTimeoutError,
    ServiceBusyError,
)
from nbdeploy.server.serialization import dumps

if TYPE_CHECKING:
    from nbdeploy.core.bundle import Bundle
    from nbdeploy.core.rawhttp import Request
    from nbdeploy.core.schema import Schema
    from nbdeploy.core.scoring import ScoringScript
    from nbdeploy.server.options import ServerOptions

__all__ = ["RawAnswer", "ScoringRuntime", "SerialWorker", "keyword_parameters"]

logger = logging.getLogger("nbdeploy.server")

T = TypeVar("T")
State = Literal["starting", "ready", "failed", "stopped"]

_Job = tuple[
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
    Callable[..., Any],
    tuple[Any, ...],
    Callable[[], None] | None,
]
_SyncJob = tuple["concurrent.futures.Future[Any]", Callable[..., Any], tuple[Any, ...]]

#: What a raw script's answer becomes: status, headers, body.
RawAnswer = tuple[int, list[tuple[str, str]], bytes]

# Headers the server sets itself; a raw script's values for them are dropped.
_SERVER_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "date"})
_NO_JSON_HINT = "return a str, a number, a list, a dict, an array or a DataFrame"


def _settle(
    future: asyncio.Future[Any], ok: bool, value: Any, on_done: Callable[[], None] | None
) -> None:
    if on_done is not None:
        on_done()
    if future.done():  # cancelled, or answered already (a scoring timeout)
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class SerialWorker:
    """Daemon threads (one by default) that run submitted calls in order of submission;
    with ``threads`` > 1, up to that many at once.

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

    def __init__(self, name: str, threads: int = 1) -> None:
        self._name = name
        self._threads = threads
        self._queue: queue.SimpleQueue[_Job | _SyncJob | None] = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()

    def _start(self) -> None:
        if self._started:
            return
        with self._lock:
            if not self._started:
                for index in range(self._threads):
                    suffix = f"-{index}" if self._threads > 1 else ""
                    threading.Thread(
                        target=self._work, name=self._name + suffix, daemon=True
                    ).start()
                self._started = True

    def submit(
        self, fn: Callable[..., T], *args: Any, on_done: Callable[[], None] | None = None
    ) -> asyncio.Future[T]:
        """Queue ``fn(*args)``; the returned future settles on the calling loop, where
        ``on_done()`` is called once ``fn`` returned (also when the future was
        answered before)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._start()
        self._queue.put((loop, future, fn, args, on_done))
        return future

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on a worker thread and wait for it (no event loop needed:
        the launcher runs ``init()`` this way before the loop starts)."""
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._start()
        self._queue.put((done, fn, args))
        return done.result()

    def close(self) -> None:
        """Let the threads finish the queued calls and stop (does not wait for them)."""
        for _ in range(self._threads):
            self._queue.put(None)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if len(job) == 3:
                done, call, arguments = job
                try:
                    done.set_result(call(*arguments))
                except BaseException as exc:  # re-raised in the waiting thread
                    done.set_exception(exc)
                del job, done
                continue
            loop, future, fn, args, on_done = job
            try:
                ok, value = True, fn(*args)
            # User code may raise anything, SystemExit included; the caller decides.
            except BaseException as exc:
                ok, value = False, exc
            with contextlib.suppress(RuntimeError):  # the loop closed while fn ran
                loop.call_soon_threadsafe(_settle, future, ok, value, on_done)
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


class _Gate:
    """The ``run()`` slots of one replica (``replica_max_concurrent_requests``) and
    the requests waiting for one, first come first served; used on the event loop
    only. A slot is given back when ``run()`` really returns, not when its request
    gave up (a scoring timeout), so a stuck ``run()`` keeps counting."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = slots
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def leave(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on directly
                return
        self._free += 1

    async def enter(self, wait_ms: int) -> None:
        """Take a slot, waiting up to ``wait_ms``; :class:`ServiceBusyError` if none."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        if wait_ms > 0:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait({waiter}, timeout=wait_ms / 1000)
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self.leave()  # got the slot while being cancelled: pass it on
                waiter.cancel()
                raise
            if waiter.done():
                return
            waiter.cancel()
        raise ServiceBusyError(
            f"the service is busy: every run() slot of this replica "
            f"({self.slots}, replica_max_concurrent_requests) stayed taken for "
            f"{wait_ms} ms (max_request_wait_time)",
            hint="retry later, send fewer requests at once, or deploy with more replicas "
            "or a longer max_request_wait_time",
        )


def _expire(future: asyncio.Future[Any], timeout_ms: int) -> None:
    if not future.done():
        future.set_exception(
            ScoringTimeoutError(
                f"run() did not answer within {timeout_ms} ms (scoring_timeout_ms); it goes "
                "on in the background and keeps its slot until it returns",
                hint="make run() faster, send smaller requests, or deploy with a longer "
                "scoring_timeout_ms",
            )
        )


class ScoringRuntime:
    """Owns one bundle's scoring script for the life of a server.

    Parameters
    ----------
    bundle:
        The loaded bundle.
    options:
        The server's options.

    Attributes
    ----------
    state:
        ``"starting"`` until ``init()`` returned, then ``"ready"``; ``"failed"`` when
        loading the script or ``init()`` raised (``error`` holds the exception).
    init_started:
        Whether :meth:`initialize` or :meth:`initialize_here` was called (by the
        app's start-up, or earlier by the launcher).
    """

    def __init__(self, bundle: Bundle, options: ServerOptions) -> None:
        self.bundle = bundle
        self.options = options
        self.state: State = "starting"
        self.init_started = False
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
        self._settled = threading.Event()
        self._worker = SerialWorker("nbdeploy-score", options.replica_max_concurrent_requests)
        self._gate: _Gate | None = None

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
        """Load the scoring script and run its ``init()`` now, blocking the calling
        thread (the launcher's, before the event loop starts); True when it succeeded.

        ``init()`` runs on the scoring thread, where ``run()`` will be called too. A
        failure is recorded (``state`` ``"failed"``, :attr:`failure_reason`) and
        logged, not raised; ``KeyboardInterrupt`` is raised.

        Examples
        --------
        >>> runtime = ScoringRuntime(bundle, options)  # doctest: +SKIP
        >>> runtime.initialize_here()  # doctest: +SKIP
        True
        """
        if self.init_started:
            raise RuntimeError("initialize_here() runs once per ScoringRuntime")
        self.init_started = True
        started = time.perf_counter()
        try:
            # On the scoring thread, where run() will be called too: the event loop
            # stays free for health checks and other requests while run() works.
            self._worker.call(self._load_and_init)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # user code may raise anything, SystemExit too
            self._settle_init(exc, started)
        else:
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

    def close(self) -> None:
        """Stop the worker thread once the queued work is done."""
        self.state = "stopped" if self.state == "ready" else self.state
        self._worker.close()

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
        return await self._admitted(self._score, body)

    async def _admitted(self, fn: Callable[[Any], T], argument: Any) -> T:
        """``fn(argument)`` on a scoring thread, within the replica's limits: at most
        ``replica_max_concurrent_requests`` at once, a wait of at most
        ``max_request_wait_time`` for a slot (then 503), an answer within
        ``scoring_timeout_ms`` (then 504)."""
        gate = self._gate
        if gate is None:
            gate = self._gate = _Gate(self.options.replica_max_concurrent_requests)
        await gate.enter(self.options.max_request_wait_time)
        future = self._worker.submit(fn, argument, on_done=gate.leave)
        timeout = self.options.scoring_timeout_ms
        timer = asyncio.get_running_loop().call_later(timeout / 1000, _expire, future, timeout)
        try:
            return await future
        finally:
            timer.cancel()

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
        return await self._admitted(self._score_raw, request)

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
