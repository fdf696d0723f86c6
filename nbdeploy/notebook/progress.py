"""``Progress``: live feedback for steps that take more than a second.

In a notebook attached to a kernel (JupyterLab, Notebook, VS Code) it shows an
``ipywidgets`` progress bar with a label, updated while the step runs; anywhere else
(terminal IPython, scripts, tests) it prints one plain line when the step starts and
one when it ends. The bar of a step whose length is unknown (waiting for a service to
become healthy) is driven by a small ticker thread that shows the elapsed seconds.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import IO, Any

__all__ = ["Progress", "has_frontend"]


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
        widget: bool | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.value = 0.0
        self.text = ""
        self.finished = False
        self.ok: bool | None = None
        self._stream = stream
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._bar: Any = None
        self._label: Any = None
        self._box: Any = None
        self.use_widget = has_frontend() if widget is None else widget
        if self.use_widget:
            self._show_widget()
        else:
            self._print(f"{description} ...")

    # -- output --------------------------------------------------------------------------

    def _print(self, line: str) -> None:
        stream = self._stream or sys.stdout
        print(line, file=stream, flush=True)

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
        display(self._box)
        if self.total is None:
            self._ticker = threading.Thread(
                target=self._tick, name="nbdeploy-progress", daemon=True
            )
            self._ticker.start()

    def _tick(self) -> None:
        # Unknown length: sweep the bar and show the elapsed seconds until done().
        while not self._stop.wait(0.25):
            elapsed = time.monotonic() - self._started
            self._bar.value = (elapsed / 4.0) % 1.0
            suffix = f": {self.text}" if self.text else ""
            self._label.value = f"{self.description}{suffix} ({elapsed:.0f} s)"

    @property
    def elapsed(self) -> float:
        """Seconds since the step started."""
        return time.monotonic() - self._started

    # -- API -----------------------------------------------------------------------------

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
            self._bar.max = 1.0
            self._bar.value = 1.0
            self._bar.bar_style = "success" if ok else "danger"
            self._label.value = line
        else:
            self._print(line)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.done()
        else:
            self.done(f"failed: {type(exc).__name__}", ok=False)

    def __repr__(self) -> str:
        state = "done" if self.finished else "running"
        return f"Progress({self.description!r}, {state})"
