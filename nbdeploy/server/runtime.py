"""The scoring script inside the server: loaded once, ``init()`` once, ``run()`` per request.

All user code — importing the script, ``init()``, and per request the JSON decoding,
schema conversion, ``run()`` and JSON encoding — runs on **one** worker thread
(:class:`SerialWorker`), never on the event loop:

- the loop stays free, so ``GET /`` answers (503 "Initializing") while a slow
  ``init()`` loads a model, and health checks answer while a big request is scored;
- requests are scored one at a time, like an Azure ML worker: scoring scripts keep a
  model in a global and are rarely thread-safe; ``init()`` and ``run()`` also see the
  same thread (some libraries keep per-thread state). Scale out with replicas/workers,
  not threads;
- the thread is a daemon, so a hung ``run()`` cannot keep a stopped server alive.

One request costs one hand-off to that thread and one back
(``loop.call_soon_threadsafe``), which is as cheap as a thread pool's and does not
pay for a pool's bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import orjson

from nbdeploy.exceptions import (
    BadRequestError,
    NbdeployError,
    SchemaMismatchError,
    ScoringError,
    ScoringScriptError,
)
from nbdeploy.server.serialization import dumps

if TYPE_CHECKING:
    from nbdeploy.core.bundle import Bundle
    from nbdeploy.core.schema import Schema
    from nbdeploy.core.scoring import ScoringScript
    from nbdeploy.server.settings import ServerSettings

__all__ = ["ScoringRuntime", "SerialWorker"]

logger = logging.getLogger("nbdeploy.server")

T = TypeVar("T")
State = Literal["starting", "ready", "failed", "stopped"]

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


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
        Whether :meth:`initialize` was called (by the app's start-up, or earlier by
        the launcher when ``init()`` must finish before the socket listens).
    """

    def __init__(self, bundle: Bundle, settings: ServerSettings) -> None:
        self.bundle = bundle
        self.settings = settings
        self.state: State = "starting"
        self.init_started = False
        self.error: BaseException | None = None
        self.script: ScoringScript | None = None
        self.input_schema: Schema | None = bundle.input_schema
        self.output_schema: Schema | None = bundle.output_schema
        self._run: Callable[[Any], Any] | None = None
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
            self.error = exc
            self.state = "failed"
            logger.error("init() failed: %s", describe_exception(exc), exc_info=exc)
        else:
            self.state = "ready"
            logger.info("init() finished in %.3f s; ready", time.perf_counter() - started)
        self._settled.set()
        for callback in self._listeners:
            callback(self.error)

    def _load_and_init(self) -> None:
        from nbdeploy.core.scoring import load_script

        bundle = self.bundle
        # The scoring contract: scripts find their models through NBDEPLOY_MODEL_DIR
        # (AZUREML_MODEL_DIR for scripts written for Azure ML) and get_model_path()
        # reads the manifest in NBDEPLOY_BUNDLE_DIR; load_script puts the
        # script's folder and the bundle's source folder first on sys.path.
        os.environ.update(bundle.model_env())
        script = load_script(bundle.entry_script, source_dir=bundle.source_dir)
        if script.raw:
            raise ScoringScriptError(
                f"scoring script {str(script.path)!r} decorates run() with @rawhttp, which "
                "this scoring server does not serve yet",
                hint="remove @rawhttp and take the decoded request data in run(data)",
            )
        self.script = script
        if script.input_schema is not None:
            self.input_schema = script.input_schema
        if script.output_schema is not None:
            self.output_schema = script.output_schema
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
        return await self._worker.submit(self._score, body)

    def _score(self, body: bytes) -> bytes:
        run = self._run
        assert run is not None, "score() before init() finished"
        data = decode_request(body)["data"]
        if self.input_schema is not None:
            try:
                data = self.input_schema.convert(data)
            except NbdeployError:
                raise
            except Exception as exc:  # a conversion gap, still the request's fault
                logger.warning("converting request data failed unexpectedly", exc_info=exc)
                raise SchemaMismatchError(
                    f"the request data does not fit the input schema: {describe_exception(exc)}",
                    hint="compare the request with the example in /swagger.json",
                ) from exc
        try:
            result = run(data)
        except NbdeployError:
            raise
        except BaseException as exc:
            raise ScoringError(f"run() raised {describe_exception(exc)}") from exc
        if isinstance(result, (bytes, bytearray, memoryview)):
            raise ScoringError(
                f"run() returned {type(result).__name__}, which has no JSON form",
                hint="return a str, a number, a list, a dict, an array or a DataFrame",
            )
        try:
            return dumps(result)
        except TypeError as exc:
            raise ScoringError(
                f"run() returned a value with no JSON form: {exc}",
                hint="return a str, a number, a list, a dict, an array or a DataFrame",
            ) from exc


def decode_request(body: bytes) -> dict[str, Any]:
    """Decode a ``POST /score`` body: a JSON object with a ``"data"`` key.

    Other top-level keys are kept (for options such as ``"method"``).

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
    if "data" not in payload:
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
