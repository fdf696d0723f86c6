"""``Progress``: live feedback for steps that take more than a second.

In a notebook attached to a kernel (JupyterLab, Notebook, VS Code) it shows an
``ipywidgets`` progress bar with a label, updated while the step runs; anywhere else
(terminal IPython, scripts, tests) it prints one plain line when the step starts and
one when it ends. The bar of a step whose length is unknown (waiting for a service to
become healthy) is driven by a small ticker thread that shows the elapsed seconds.

When the step ends the live widget is closed, its output emptied (same display id)
and a static line in ``text/plain`` and ``text/html`` displayed instead: a saved
notebook then shows "deploying diabetes-svc: Healthy (0.3 s)" on GitHub or nbviewer,
never "Error displaying widget" or ``HBox(children=(FloatProgress(...``.

:func:`phase_of` turns the lines a target prints while it deploys into the phase the
bar names ("building the image", "running init()" ...).
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import IO, Any

from nbdeploy.display.html import ERROR_COLOUR, OK_COLOUR, escape

__all__ = ["Progress", "has_frontend", "phase_of"]

_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

#: (pattern of a line a target prints while deploying, the phase it means).
_PHASES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r": Transitioning$"), "starting the server process"),
    (re.compile(r"downloading wheels"), "downloading wheels for the image"),
    (re.compile(r"^Step (\d+/\d+)"), "building the image: step {0}"),
    (re.compile(r"NBDEPLOY-LISTENING \S+ (\d+)"), "listening on port {0}; running init()"),
    (re.compile(r"NBDEPLOY-READY"), "init() done; checking that GET / answers"),
    (re.compile(r"NBDEPLOY-INIT-FAILED"), "init() failed"),
    (re.compile(r"updating to generation (\d+)"), "starting generation {0} next to the old one"),
    (re.compile(r"Started server process"), "server process started; loading the bundle"),
    (re.compile(r"Application startup complete"), "application started; running init()"),
)


def phase_of(line: str) -> str | None:
    """The deployment phase a line of target output announces, or None.

    Examples
    --------
    >>> phase_of("NBDEPLOY-LISTENING 127.0.0.1 5001")
    'listening on port 5001; running init()'
    >>> phase_of("Step 3/12 : COPY models /app/models")
    'building the image: step 3/12'
    >>> phase_of("some other line") is None
    True
    """
    for pattern, phase in _PHASES:
        match = pattern.search(line)
        if match:
            return phase.format(*match.groups())
    return None


class _LineSink(io.TextIOBase):
    """A text stream that hands every complete line to ``on_line``."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._on_line = on_line
        self._buffer = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            if line.strip():
                self._on_line(line.strip())
        return len(text)


def has_frontend() -> bool:
    """True when running in an IPython kernel with a frontend that can show widgets.

    Examples
    --------
    >>> has_frontend()  # a plain interpreter has no kernel
    False
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the notebook extra
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Progress:
    """A progress bar (with a frontend) or plain text lines (without one).

    Parameters
    ----------
    description:
        What is happening, e.g. ``"deploying diabetes-svc"``.
    total:
        The number of steps, or ``None`` when the length is unknown (the bar then
        ticks with the elapsed time until :meth:`done`).
    timed:
        ``total`` is a number of seconds: the bar follows the clock (a profile that
        runs for ``duration`` seconds) and the label says "3 of 10 s".
    widget:
        Force the widget (``True``) or the text form (``False``); by default the
        widget is used when a frontend is attached (:func:`has_frontend`).
    stream:
        Where the text form writes (default ``sys.stdout``).

    Examples
    --------
    >>> with Progress("checking score.py", widget=False) as p:  # doctest: +ELLIPSIS
    ...     p.update(text="init() ran")
    checking score.py ...
    checking score.py: init() ran
    checking score.py: done (... s)
    """

    def __init__(
        self,
        description: str,
        total: float | None = None,
        *,
        timed: bool = False,
        widget: bool | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.timed = timed and total is not None
        self.value = 0.0
        self.text = ""
        self.finished = False
        self.ok: bool | None = None
        #: How the step ended, shown by :meth:`done` when the ``with`` block ends.
        self.final: str | None = None
        # Taken now: phases() redirects sys.stdout while the step runs.
        self._stream = stream if stream is not None else sys.stdout
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._bar: Any = None
        self._label: Any = None
        self._box: Any = None
        self._handle: Any = None
        self._display: Any = None
        #: The output left in place of the widget when the step ended.
        self.static: dict[str, str] | None = None
        self.use_widget = has_frontend() if widget is None else widget
        if self.use_widget:
            self._show_widget()
        else:
            self._print(f"{description} ...")

    def _print(self, line: str) -> None:
        print(line, file=self._stream, flush=True)

    def _show_widget(self) -> None:
        import ipywidgets as widgets
        from IPython import display as ipython_display

        display: Any = ipython_display.display

        self._bar = widgets.FloatProgress(
            value=0.0,
            min=0.0,
            max=float(self.total or 1.0),
            bar_style="info",
            layout=widgets.Layout(width="240px"),
        )
        self._label = widgets.Label(value=f"{self.description} ...")
        self._box = widgets.HBox([self._bar, self._label])
        self._box.add_class("nbdeploy-progress")
        self._display = display
        view = {"model_id": self._box.model_id, "version_major": 2, "version_minor": 0}
        # text/plain "" stays when the bar is emptied: the output then compares the same
        # before and after the update (nbval sees only the first), and renders as nothing.
        self._handle = display({_WIDGET_MIME: view, "text/plain": ""}, raw=True, display_id=True)
        if self.total is None or self.timed:
            self._ticker = threading.Thread(
                target=self._tick, name="nbdeploy-progress", daemon=True
            )
            self._ticker.start()

    def _tick(self) -> None:
        # Unknown length: sweep the bar and show the elapsed seconds until done().
        while not self._stop.wait(0.25):
            elapsed = time.monotonic() - self._started
            suffix = f": {self.text}" if self.text else ""
            if self.timed and self.total:
                self._bar.value = min(elapsed, self.total)
                clock = f"{min(elapsed, self.total):.0f} of {self.total:g} s"
            else:
                self._bar.value = (elapsed / 4.0) % 1.0
                clock = f"{elapsed:.0f} s"
            self._label.value = f"{self.description}{suffix} ({clock})"

    @property
    def elapsed(self) -> float:
        """Seconds since the step started."""
        return time.monotonic() - self._started

    def update(self, value: float | None = None, text: str | None = None) -> None:
        """Move the bar to ``value`` (of ``total``) and/or show ``text`` next to it."""
        if value is not None:
            self.value = float(value)
        if text is not None:
            self.text = text
        if self.use_widget:
            if value is not None and self.total is not None:
                self._bar.value = self.value
            self._label.value = (
                f"{self.description}: {self.text}" if self.text else self._label.value
            )
        elif text is not None:
            self._print(f"{self.description}: {text}")

    def done(self, text: str | None = None, *, ok: bool = True) -> None:
        """Finish: fill the bar (green, or red when ``ok`` is false) and say how it ended."""
        if self.finished:
            return
        self.finished = True
        self.ok = ok
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2.0)
        final = text or ("done" if ok else "failed")
        line = f"{self.description}: {final} ({self.elapsed:.1f} s)"
        if self.use_widget:
            # The saved notebook keeps this static line, not a widget without state.
            # The live bar's output is emptied (a saved notebook must not keep a widget
            # without state) and the line displayed after it: what GitHub, nbviewer and
            # nbval (which ignores display updates) all see the same way.
            self.static = {"text/plain": line, "text/html": _static_html(line, ok)}
            if self._handle is not None:
                self._handle.update({"text/plain": ""}, raw=True)
            self._display(self.static, raw=True)
            self._box.close()
        else:
            self._print(line)

    @contextlib.contextmanager
    def phases(self) -> Iterator[None]:
        """Show the phase each line printed inside the block announces (see
        :func:`phase_of`); other printed lines are dropped, so a deploy with
        ``show_output=True`` reports what it waits for without flooding the cell."""

        def on_line(line: str) -> None:
            phase = phase_of(line)
            if phase is not None and phase != self.text:
                self.update(text=phase)

        with contextlib.redirect_stdout(_LineSink(on_line)):
            yield

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.done(self.final)
        else:
            self.done(f"failed: {_reason(exc)}", ok=False)

    def __repr__(self) -> str:
        state = "done" if self.finished else "running"
        return f"Progress({self.description!r}, {state})"


def _reason(exc: BaseException) -> str:
    """The first line of an error's message (nbdeploy errors: without the hint)."""
    message = str(getattr(exc, "message", "") or exc).strip().splitlines()
    return message[0] if message else type(exc).__name__


def _static_html(line: str, ok: bool) -> str:
    """A finished step as HTML that reads the same in any theme and without widgets."""
    colour, mark = (OK_COLOUR, "✔") if ok else (ERROR_COLOUR, "✘")
    return (
        f'<div class="nbdeploy-progress-static" data-ok="{escape(ok)}">'
        f'<span style="display:inline-block;width:120px;height:8px;margin-right:8px;'
        f'background:var(--jp-layout-color3, #e0e0e0);border-radius:4px;overflow:hidden">'
        f'<span style="display:block;height:100%;width:100%;background:{colour}">'
        f"</span></span><span>{escape(mark)} {escape(line)}</span></div>"
    )
