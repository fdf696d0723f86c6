"""``python -m nbdeploy.server BUNDLE``: run a bundle's scoring server with uvicorn.

Targets reach the server only through this command line (or, for the local target's
warm-start process, through :func:`serve` in a forked child), and learn what happens
from a few machine-readable lines on **stdout**, each flushed at once:

``NBDEPLOY-LISTENING <host> <port>``
    The socket is bound and accepting connections (with ``--port 0`` this is how the
    caller learns the port). Printed once.
``NBDEPLOY-READY``
    ``init()`` succeeded; ``GET /`` answers ``Healthy``. Always after ``LISTENING``.
``NBDEPLOY-INIT-FAILED: <ExceptionType>: <message>``
    The bundle could not be loaded, the scoring script not imported, or its
    ``init()`` raised. The traceback was logged just before (on stderr); newlines in
    the message are written as ``\\n`` so the reason is one line. The process then
    exits with code 3 (:data:`EXIT_INIT_FAILED`), so a supervisor sees the failure and
    reports ``Failed`` with this reason.
``NBDEPLOY-BIND-FAILED: <host> <port>: <reason>``
    The address could not be bound (port in use ...); exit code 4.

Logs (the server's, uvicorn's and the scoring script's ``logging`` calls) go to
**stderr** in a compact one-line format; the access log is off. A target that sends
stdout and stderr to one file gets the machine lines in order with the logs, the
``NBDEPLOY-INIT-FAILED`` line last. SIGTERM and SIGINT stop the server gracefully
(uvicorn finishes the requests in flight, and this server also answers requests on
connections it had accepted but not yet read; see ``_Server.shutdown``).

Start-up order: the bundle's manifest is read, the socket bound (listening at once,
or — ``--init-before-listen`` / ``--take-over`` — only after ``init()``), then the
scoring script's ``init()`` runs on the main thread while a stand-in answers ``503
Initializing`` on a listening socket (:mod:`nbdeploy.server.standby`), and finally
uvicorn serves on the same thread, so ``run()`` shares ``init()``'s thread and is
called right on the event loop (:mod:`nbdeploy.server.runtime` has the measurements
and the trade-off). SIGTERM while ``init()`` runs stops the process at once.

Updates without a dropped request: ``--handover-socket PATH`` makes the server offer
its listening socket at ``PATH`` once it serves, and ``--take-over PATH`` makes the
next generation serve on that same socket (:mod:`nbdeploy.server.handover`).

The event loop is uvloop when it is installed, and the HTTP parser httptools.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import ipaddress
import logging
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nbdeploy.exceptions import NbdeployError
from nbdeploy.server.handover import ListenerHandover, receive_listener
from nbdeploy.server.logs import AccessLog
from nbdeploy.server.options import LOG_LEVELS, ServerOptions
from nbdeploy.server.runtime import describe_exception
from nbdeploy.server.standby import Standby

if TYPE_CHECKING:
    from nbdeploy.core.bundle import Bundle
    from nbdeploy.server.app import ScoringApp
    from nbdeploy.server.runtime import ScoringRuntime

__all__ = [
    "EXIT_BIND_FAILED",
    "EXIT_INIT_FAILED",
    "EXIT_OK",
    "bind_socket",
    "main",
    "serve",
]

#: Exit code after a clean shutdown.
EXIT_OK = 0
#: Exit code when the bundle, the script or its ``init()`` failed (see module doc).
EXIT_INIT_FAILED = 3
#: Exit code when the host/port could not be bound.
EXIT_BIND_FAILED = 4

LISTENING = "NBDEPLOY-LISTENING"
READY = "NBDEPLOY-READY"
INIT_FAILED = "NBDEPLOY-INIT-FAILED"
BIND_FAILED = "NBDEPLOY-BIND-FAILED"

logger = logging.getLogger("nbdeploy.server")

_HANDLER_NAME = "nbdeploy-server"


def _announce(line: str) -> None:
    """Write one machine-readable line to stdout, flushed (stdout may be a file)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def configure_logging(level: str) -> None:
    """Compact one-line logs on stderr at ``level`` (idempotent; fork-safe); the line
    format, labels and tracebacks are :mod:`nbdeploy.server.logs`'."""
    from nbdeploy.server.logs import configure

    configure(level, _HANDLER_NAME)


def bind_socket(
    host: str, port: int, *, reuse_port: bool = False, listen: bool = True
) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (``port=0``: any free port).

    ``reuse_port`` sets ``SO_REUSEPORT`` so a second generation of a service can bind
    the same port during an update; ``listen=False`` only binds (the server listens
    once ``init()`` succeeded, see ``init_before_listen`` of :func:`serve`).

    Examples
    --------
    >>> sock = bind_socket("127.0.0.1", 0)
    >>> sock.getsockname()[1] > 0
    True
    >>> sock.close()
    """
    family = socket.AF_INET
    try:
        if ipaddress.ip_address(host).version == 6:
            family = socket.AF_INET6
    except ValueError:
        pass  # a host name: resolved by bind() as IPv4
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _loop_name() -> str:
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def _http_name() -> str:
    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


#: Longest wait, at shutdown, for requests on connections accepted just before it.
ANSWER_ACCEPTED_SECONDS = 2.0
#: How long, at shutdown, kept-alive idle connections stay open for a next request
#: (answered with ``Connection: close``) before they are closed.
KEEP_ALIVE_GRACE_SECONDS = 0.5
#: Longest wait for the running generation to hand its socket over (its event loop
#: answers between two requests, so this bounds the ``run()`` it may be busy with).
TAKE_OVER_SECONDS = 30.0


class _CloseWhenDraining:
    """ASGI wrapper: once :attr:`draining`, every answer says ``Connection: close``
    (uvicorn then closes the connection after it), so a kept-alive client moves to
    the next generation after one more answer instead of racing a close."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.draining = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.draining or scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)


def _idle_kept_alive(connection: Any) -> bool:
    """True for a kept-alive connection idling after an answer (uvicorn's keep-alive
    timer runs)."""
    return getattr(connection, "timeout_keep_alive_task", None) is not None


def _waits_for_request(connection: Any) -> bool:
    """True for a connection accepted (or kept alive and now receiving) whose request
    has not fully arrived: closing it would lose a request its client already sent.

    Reads uvicorn's protocol state: ``cycle`` (the request in progress, ``None``
    before the first one) and ``timeout_keep_alive_task`` (set while a kept-alive
    connection idles after an answer, cleared as soon as bytes arrive).
    """
    if getattr(connection, "timeout_keep_alive_task", None) is not None:
        return False  # idle after an answer: closing it is the usual keep-alive race
    cycle = getattr(connection, "cycle", None)
    return cycle is None or bool(getattr(cycle, "response_complete", False))


class _Server(uvicorn.Server):
    """uvicorn's server: announces LISTENING/READY, offers its socket to the next
    generation, and answers every connection it accepted before it stops."""

    def __init__(
        self,
        config: uvicorn.Config,
        host: str,
        port: int,
        *,
        announce_listening: bool,
        handover_socket: str | None = None,
    ) -> None:
        super().__init__(config)
        assert isinstance(config.app, _CloseWhenDraining)
        self._draining = config.app
        self.exit_code = EXIT_OK
        self._address = (host, port)
        self._announce_listening = announce_listening
        self._handover_path = handover_socket
        self._handover: ListenerHandover | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # Offered before the first answer, so whoever sees this server answer finds
        # the offer in place.
        if self._handover_path and sockets:
            try:
                handover = ListenerHandover(self._handover_path, sockets[0])
                handover.start(asyncio.get_running_loop())
            except (OSError, NbdeployError) as exc:
                logger.warning("cannot offer the listening socket for updates: %s", exc)
            else:
                self._handover = handover
        try:
            await super().startup(sockets=sockets)
        except BaseException:
            if self._handover is not None:
                self._handover.close()
            raise
        if not self.started:
            return
        host, port = self._address
        if self._announce_listening:
            logger.info("listening on http://%s:%d", host, port)
            _announce(f"{LISTENING} {host} {port}")
        _announce(READY)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._handover is not None:
            self._handover.close()
            self._handover = None
        # Stop accepting (the listening socket lives on in a next generation that
        # took it over), then give connections accepted just before this moment the
        # time to deliver their request: uvicorn's shutdown closes every connection
        # without a request in progress, which would drop a request already on its
        # way (the client sees "Remote end closed connection without response").
        # Kept-alive idle connections get a short grace too, and every answer from
        # now on closes its connection, so busy clients reconnect (to the next
        # generation) after one more answer.
        for server in getattr(self, "servers", []):
            server.close()
        self._draining.draining = True
        logger.info("stopping: no new connections; answering the ones accepted")
        started = time.monotonic()
        while not self.force_exit:
            waited = time.monotonic() - started
            connections = self.server_state.connections
            if waited >= ANSWER_ACCEPTED_SECONDS:
                break
            if not any(_waits_for_request(c) for c in connections) and (
                waited >= KEEP_ALIVE_GRACE_SECONDS
                or not any(_idle_kept_alive(c) for c in connections)
            ):
                break
            await asyncio.sleep(0.005)
        await super().shutdown(sockets=sockets)


def _make_server(
    app: ScoringApp,
    options: ServerOptions,
    host: str,
    port: int,
    *,
    announce_listening: bool,
    handover_socket: str | None = None,
) -> _Server:
    config = uvicorn.Config(
        _CloseWhenDraining(AccessLog(app)),
        host=host,
        port=port,
        loop=_loop_name(),
        http=_http_name(),
        lifespan="on",
        log_config=None,
        log_level=options.log_level,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=30,
    )
    return _Server(
        config,
        host,
        port,
        announce_listening=announce_listening,
        handover_socket=handover_socket,
    )


def _take_over(path: str, host: str, port: int) -> socket.socket | None:
    """The listening socket offered at ``path`` if it is bound to ``host:port`` (any
    port when ``port`` is 0); None (logged) when there is none to take."""
    try:
        sock = receive_listener(path, timeout=TAKE_OVER_SECONDS)
    except OSError as exc:
        logger.warning("no listening socket to take over at %s (%s); binding the port", path, exc)
        return None
    bound_host, bound_port = sock.getsockname()[:2]
    if port and (bound_port != port or bound_host != host):
        logger.warning(
            "the socket offered at %s listens on %s:%d, not %s:%d; binding the port",
            path,
            bound_host,
            bound_port,
            host,
            port,
        )
        sock.close()
        return None
    logger.info("took over the listening socket of the previous generation")
    return sock


def serve(
    bundle_path: Bundle | str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    sock: socket.socket | None = None,
    log_level: str = "info",
    options: ServerOptions | None = None,
    reuse_port: bool = False,
    init_before_listen: bool = False,
    handover_socket: str | None = None,
    take_over: str | None = None,
) -> int:
    """Run the scoring server for a bundle until it is stopped; the exit code.

    The local target's warm-start process calls this in a forked child, with a socket
    it already bound (``sock``), so the child starts serving without re-importing
    anything. Without ``sock``, ``host:port`` is bound here (``port=0``: a free port),
    or taken over from the running generation (``take_over``).

    ``init()`` runs on this (the main) thread before the event loop starts, and the
    loop then runs ``run()`` on the same thread (see :mod:`nbdeploy.server.runtime`).
    On a socket that already listens, a :class:`~nbdeploy.server.standby.Standby`
    answers ``503 Initializing`` meanwhile.

    Parameters
    ----------
    bundle_path:
        The bundle folder (or an already loaded :class:`~nbdeploy.core.bundle.Bundle`).
    host, port:
        Address to bind when ``sock`` is None; otherwise only reported.
    sock:
        An already bound socket (listening or not).
    log_level:
        One of :data:`~nbdeploy.server.options.LOG_LEVELS`.
    options:
        Full server options; ``host``, ``port`` and ``log_level`` then come from it
        when ``sock`` is None. Default: the bundle's ``settings`` (auth, CORS, body
        limit ...) with ``host``, ``port`` and ``log_level`` from the arguments.
    reuse_port:
        Bind with ``SO_REUSEPORT`` (when ``sock`` is None), so the next generation of
        the service can bind the same port while this one still serves.
    init_before_listen:
        Take no connection before ``init()`` succeeded: the socket listens (or, if it
        already does, is accepted from) only afterwards, and one whose ``init()``
        fails never takes a connection. For a new generation next to a running one.
    handover_socket:
        A unix socket path where this server, once serving, offers its listening
        socket to the next generation (:mod:`nbdeploy.server.handover`).
    take_over:
        The previous generation's ``handover_socket``: serve on its listening socket
        (implies ``init_before_listen``). If none can be taken, the port is bound
        (with ``reuse_port`` as given).

    Returns
    -------
    int
        :data:`EXIT_OK` after a clean stop, :data:`EXIT_INIT_FAILED` when the bundle,
        its script or ``init()`` failed, :data:`EXIT_BIND_FAILED` when the address
        could not be bound.

    Examples
    --------
    >>> import os, socket
    >>> sock = socket.create_server(("127.0.0.1", 0))  # doctest: +SKIP
    >>> if os.fork() == 0:  # doctest: +SKIP
    ...     os._exit(serve("bundles/iris/1", sock=sock))
    """
    configure_logging(options.log_level if options is not None else log_level)
    try:
        from nbdeploy.server.app import create_app, load_bundle

        loaded = load_bundle(bundle_path)
        if options is None:
            # The bundle's settings (auth, CORS, limits) apply on every path that
            # starts a server; only the address and log level come from the caller.
            options = ServerOptions.from_bundle_settings(
                loaded.settings, host=host, port=port, log_level=log_level
            )
            configure_logging(options.log_level)
        app = create_app(loaded, options)
    except Exception as exc:
        logger.error("cannot load bundle %s", bundle_path, exc_info=exc)
        _announce(f"{INIT_FAILED}: {describe_exception(exc)}")
        return EXIT_INIT_FAILED

    if sock is None and take_over:
        sock = _take_over(take_over, options.host, options.port)
        init_before_listen = True
    if sock is None:
        try:
            sock = bind_socket(
                options.host,
                options.port,
                reuse_port=reuse_port,
                listen=not init_before_listen,
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            logger.error("cannot bind %s:%d: %s", options.host, options.port, reason)
            _announce(f"{BIND_FAILED}: {options.host} {options.port}: {reason}")
            return EXIT_BIND_FAILED
    try:
        bound_host, bound_port = (str(v) for v in sock.getsockname()[:2])
        return _serve_on(
            app,
            app.runtime,
            options,
            sock,
            bound_host,
            int(bound_port),
            init_before_listen=init_before_listen,
            handover_socket=handover_socket,
        )
    finally:
        sock.close()


def _serve_on(
    app: ScoringApp,
    runtime: ScoringRuntime,
    options: ServerOptions,
    sock: socket.socket,
    host: str,
    port: int,
    *,
    init_before_listen: bool,
    handover_socket: str | None,
) -> int:
    """``init()`` here (with the stand-in on a listening socket), then uvicorn."""
    standby = None
    if not init_before_listen and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        logger.info("listening on http://%s:%d", host, port)
        _announce(f"{LISTENING} {host} {port}")
        standby = Standby(sock)
        standby.start()
    try:
        ready = runtime.initialize_here()
    finally:
        if standby is not None:
            standby.stop()
    if not ready:
        _announce(f"{INIT_FAILED}: {runtime.failure_reason}")
        return EXIT_INIT_FAILED
    server = _make_server(
        app,
        options,
        host,
        port,
        announce_listening=standby is None,
        handover_socket=handover_socket,
    )
    try:
        server.run(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits this way when its start-up fails
        code = exc.code if isinstance(exc.code, int) else 1
        return code or EXIT_INIT_FAILED
    return int(server.exit_code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nbdeploy.server",
        description="Serve a bundle: GET / (health), POST /score, GET /swagger.json, "
        "GET /openapi.json, GET /docs.",
    )
    parser.add_argument("bundle", type=Path, help="the bundle folder (holds bundle.json)")
    parser.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help="port to bind; 0 picks a free one (default 0)"
    )
    parser.add_argument("--log-level", choices=LOG_LEVELS, default=None, help="default info")
    parser.add_argument(
        "--max-request-bytes", type=int, default=None, help="largest body (default 100 MB)"
    )
    parser.add_argument("--service-name", default=None, help="title of the API documents")
    parser.add_argument(
        "--auth-file",
        default=None,
        help="the auth file with the service's keys and token secret (default: the "
        "bundle's auth_file setting, else <bundle>/auth.json); used when auth is on",
    )
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="bind with SO_REUSEPORT (a new generation can bind the same port)",
    )
    parser.add_argument(
        "--init-before-listen",
        action="store_true",
        help="run init() before listening (zero-downtime hand-over on updates)",
    )
    parser.add_argument(
        "--handover-socket",
        default=None,
        metavar="PATH",
        help="unix socket where this server offers its listening socket to the next "
        "generation (see --take-over)",
    )
    parser.add_argument(
        "--take-over",
        default=None,
        metavar="PATH",
        help="serve on the listening socket the running generation offers at PATH "
        "(its --handover-socket); init() runs first. Binds the port if none is offered",
    )
    return parser


def _resolve_options(args: argparse.Namespace, bundle: Bundle) -> ServerOptions:
    """Command line → bundle ``settings`` → ``NBDEPLOY_*`` / pyproject → defaults."""
    from nbdeploy import config

    bundle_settings: dict[str, Any] = dict(bundle.settings or {})
    explicit = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "max_request_bytes": args.max_request_bytes,
        "service_name": args.service_name,
        "auth_file": args.auth_file,
    }
    values: dict[str, Any] = {}
    for name, value in explicit.items():
        if value is not None:
            values[name] = value
        elif name in bundle_settings:
            values[name] = bundle_settings[name]
        elif name in config.SETTINGS:
            values[name] = config.resolve(name)
    return ServerOptions.from_bundle_settings(bundle_settings, **values)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``python -m nbdeploy.server`` command; returns the exit code.

    Examples
    --------
    >>> main(["path/to/bundle", "--port", "0"])  # doctest: +SKIP
    NBDEPLOY-LISTENING 127.0.0.1 40123
    NBDEPLOY-READY
    """
    args = _parser().parse_args(argv)
    try:
        from nbdeploy.core.bundle import Bundle

        bundle = Bundle.load(args.bundle)
        options = _resolve_options(args, bundle)
    except Exception as exc:
        configure_logging(args.log_level or "info")
        logger.error("cannot start a server for %s", args.bundle, exc_info=exc)
        _announce(f"{INIT_FAILED}: {describe_exception(exc)}")
        return EXIT_INIT_FAILED
    return serve(
        bundle,
        options=options,
        reuse_port=args.reuse_port,
        init_before_listen=args.init_before_listen,
        handover_socket=args.handover_socket,
        take_over=args.take_over,
    )
