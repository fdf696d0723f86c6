"""How a scoring server's log reads: one line per request, labels that say who speaks,
tracebacks that point at the user's script.

A service log (``%logs SVC``, ``svc.get_logs()``, the lab panel) looks like::

    2026-12-04 16:09:51 INFO    server: listening on http://127.0.0.1:33351
    loading                                            <- print() in init()
    2026-12-04 16:09:51 INFO    server: init() finished in 0.006 s; ready
    2026-12-04 16:09:52 INFO    request: POST /score 200 1.4 ms
    2026-12-04 16:09:52 ERROR   server: request 9f2c… failed: run() raised ValueError: …
    Traceback (most recent call last):
      File "score.py", line 6, in run
        raise ValueError("zero is not allowed")
    ValueError: zero is not allowed
    2026-12-04 16:09:52 INFO    request: POST /score 500 2.0 ms

- :class:`AccessLog` (ASGI) writes the ``request:`` line: method, path, status and
  latency, for every HTTP request the app answers.
- :class:`LogFormatter` names loggers by role (``uvicorn.error`` → ``uvicorn``,
  ``nbdeploy.server`` → ``server``; a scoring script's own loggers keep their names)
  and shows tracebacks from the user's code only: frames inside nbdeploy are left
  out, and the bundle's copy of the script is shown under the name the user gave it.
- :class:`QuietUvicorn` drops uvicorn's lifespan chatter ("Waiting for application
  startup.", "Started server process [..]"): the server announces itself already.

The machine-readable status lines (``NBDEPLOY-READY`` ...) are written to stdout for
the targets; ``Webservice.get_logs()`` leaves them out.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "ACCESS_LOGGER",
    "AccessLog",
    "LogFormatter",
    "QuietUvicorn",
]

#: The logger of the one-line-per-request log.
ACCESS_LOGGER = "nbdeploy.server.access"

_LABELS = {
    "nbdeploy.server": "server",
    ACCESS_LOGGER: "request",
    "uvicorn.error": "uvicorn",
    "uvicorn": "uvicorn",
    "root": "score",
}
_PACKAGE_DIR = Path(__file__).resolve().parents[1]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AccessLog:
    """ASGI middleware: one ``request:`` line per HTTP request (method, path, status,
    latency in ms), logged as the last part of the answer is sent.

    Examples
    --------
    >>> app = AccessLog(create_app(bundle, options))  # doctest: +SKIP
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.logger = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        logged = False

        def log() -> None:
            nonlocal logged
            logged = True
            self.logger.info(
                "%s %s %s %.1f ms",
                scope.get("method", "?"),
                scope.get("path", "?"),
                status or "no answer",
                (time.perf_counter() - started) * 1000,
            )

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Logged before the last bytes leave: a client that has its answer
                # finds the request's line in the log (%logs right after svc.run).
                log()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if not logged:
                log()


class QuietUvicorn(logging.Filter):
    """Drop uvicorn's INFO lines about its own lifecycle (warnings and errors stay)."""

    _NOISE = (
        "Started server process",
        "Waiting for application startup",
        "Application startup complete",
        "Waiting for application shutdown",
        "Application shutdown complete",
        "Finished server process",
        "Shutting down",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or not record.name.startswith("uvicorn"):
            return True
        message = str(record.msg)
        return not message.startswith(self._NOISE)


class LogFormatter(logging.Formatter):
    """``2026-12-04 16:09:51 INFO    server: message``, with tracebacks from the
    user's code only (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(label)s: %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        record.label = _LABELS.get(record.name, record.name)
        return super().format(record)

    def formatException(
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        _, exc, _ = ei
        if exc is None:
            return super().formatException(ei)
        return "".join(_user_traceback(exc)).rstrip("\n")


def _user_traceback(exc: BaseException) -> list[str]:
    """The traceback of ``exc`` (and its causes) without nbdeploy's frames, with the
    bundle's script shown under the name the user gave it."""
    lines = list(traceback.TracebackException.from_exception(exc).format())
    kept: list[str] = []
    dropped = False
    user_frames = 0
    for part in lines:
        if part.startswith('  File "'):
            filename = part.split('"', 2)[1]
            if _is_internal(filename):
                dropped = True
                continue
            shown = _script_name(filename)
            if shown is not None:
                part = part.replace(f'"{filename}"', f'"{shown}"', 1)
            user_frames += not filename.startswith("<")  # "<string>": generated code
        kept.append(part)
    if dropped and not user_frames:
        return lines  # the error is nbdeploy's own: its frames are the story
    return kept


def _is_internal(filename: str) -> bool:
    """A frame of nbdeploy's own code (the server calling the script)."""
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return False
    return path.is_relative_to(_PACKAGE_DIR) and _script_name(filename) is None


@functools.lru_cache(maxsize=64)
def _script_name(filename: str) -> str | None:
    """The user's name for a file of a bundle (``score.py`` for the entry script;
    ``src/...`` files by their path in the source folder), or None."""
    path = Path(filename)
    for bundle in (path.parent, *path.parents):
        manifest = bundle / "bundle.json"
        if not manifest.is_file():
            continue
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError):
            return None
        relative = path.relative_to(bundle).as_posix()
        if relative == data.get("entry_script") and data.get("original_entry_script"):
            return str(data["original_entry_script"])
        source = data.get("source_dir")
        if source and relative.startswith(f"{source}/"):
            return relative[len(source) + 1 :]
        return relative
    return None


def configure(level: str, handler_name: str) -> None:
    """Send every logger's records to stderr through :class:`LogFormatter` at
    ``level`` (idempotent: a handler named ``handler_name`` is replaced; fork-safe)."""
    numeric = 5 if level == "trace" else getattr(logging, level.upper())
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == handler_name:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(handler_name)
    handler.setFormatter(LogFormatter())
    handler.addFilter(QuietUvicorn())
    root.addHandler(handler)
    root.setLevel(numeric)
