"""ipywidgets front: a deploy panel, a registry browser and a "try it" form.

Every UI action has a method twin (``panel.deploy()``, ``browser.filter(text)``,
``browser.request_delete()`` / ``browser.confirm_delete()``, ``tryit.send()``) that the
button calls, so tests drive the widgets without a browser and the browser tests check
that the real page shows them.

Each widget is an ``ipywidgets.VBox`` subclass: display it as the last expression of
a cell, or nest it in another layout. Its output also carries a ``text/plain`` and a
``text/html`` summary, so a saved notebook reads well where widgets do not run
(GitHub, nbviewer): "TryIt diabetes-svc: POST http://…/score", not
``VBox(children=(HTML(value=...``. Colours come from JupyterLab's theme variables.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from nbdeploy.display.cards import service_card
from nbdeploy.display.html import (
    BUSY_COLOUR,
    ERROR_COLOUR,
    OK_COLOUR,
    TEXT_MUTED,
    compact_json,
    escape,
    pre_style,
    round_floats,
)
from nbdeploy.exceptions import InvalidArgumentError, NbdeployError
from nbdeploy.sdk.rendering import select_mimetypes

if TYPE_CHECKING:
    import requests

    from nbdeploy.core.schema import Field, Schema
    from nbdeploy.core.workspace import Workspace
    from nbdeploy.sdk.model import Model
    from nbdeploy.sdk.webservice import Webservice

__all__ = ["DeployPanel", "LiveLogs", "RegistryBrowser", "TryIt"]

_LATEST = "latest"

#: (mark, colour of the mark) per kind of status line.
_KINDS = {
    "info": ("", TEXT_MUTED),
    "busy": ("…", BUSY_COLOUR),
    "ok": ("✔", OK_COLOUR),
    "error": ("✘", ERROR_COLOUR),
}


def _status_html(text: str, kind: str = "info") -> str:
    """A status line: a coloured mark and theme-coloured text (readable in dark mode)."""
    mark, colour = _KINDS[kind]
    symbol = f'<b style="color:{colour}">{escape(mark)}</b> ' if mark else ""
    return f'<span class="nbdeploy-status" data-kind="{kind}">{symbol}{escape(text)}</span>'


class _Static:
    """Adds a ``text/plain`` and ``text/html`` summary to a widget's output, for
    frontends without widgets (a saved notebook on GitHub or nbviewer)."""

    def summary(self) -> str:
        """One line saying what the widget is for."""
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if isinstance(data, dict):
            text = self.summary()
            data["text/plain"] = text
            data["text/html"] = f'<div class="nbdeploy-widget-static">{escape(text)}</div>'
        return data


class DeployPanel(_Static, widgets.VBox):  # type: ignore[misc]
    """Pick a model, a version, a target and settings; press Deploy.

    Parameters
    ----------
    workspace:
        The workspace to read models from and deploy in (default: the default one).

    Attributes
    ----------
    service:
        The :class:`~nbdeploy.Webservice` of the last successful deployment (None
        after a failed one: the card of a service that is not what was asked for
        would mislead).
    model, version, target, port, name, score, button, state, output:
        The controls (``ipywidgets``).

    Examples
    --------
    >>> panel = DeployPanel()                         # doctest: +SKIP
    >>> panel.model.value = "diabetes"                # doctest: +SKIP
    >>> panel.score.value = "score.py"                # doctest: +SKIP
    >>> panel.deploy().state                          # doctest: +SKIP
    'Healthy'
    """

    def __init__(self, workspace: Workspace | str | os.PathLike[str] | None = None) -> None:
        from nbdeploy.api import target_availability
        from nbdeploy.sdk.workspace import get_workspace

        self.workspace = get_workspace(workspace)
        #: Why each target that cannot be used from this Python cannot (name -> reason).
        self.unusable = {t.name: t.reason for t in target_availability() if not t.usable}
        self.service: Webservice | None = None
        self.model = widgets.Dropdown(description="model", options=[])
        self.version = widgets.Dropdown(description="version", options=[_LATEST])
        self.target = widgets.Dropdown(
            description="target",
            options=[t.name for t in target_availability()] or ["local"],
            value="local",
        )
        self.name = widgets.Text(description="service", placeholder="default: the model name")
        self.score = widgets.Text(description="score", placeholder="score.py (optional)")
        self.port = widgets.IntText(description="port", value=0, tooltip="0 picks a free port")
        self.button = widgets.Button(description="Deploy", button_style="primary", icon="rocket")
        self.state = widgets.HTML(value=_status_html("not deployed"))
        self.output = widgets.Output()
        self.button.on_click(lambda _button: self._on_click())
        self.model.observe(lambda _change: self._fill_versions(), names="value")
        self.target.observe(lambda _change: self._show_target(), names="value")
        super().__init__(
            [
                widgets.HTML("<b>Deploy a model</b>"),
                widgets.HBox([self.model, self.version]),
                widgets.HBox([self.target, self.port]),
                widgets.HBox([self.name, self.score]),
                widgets.HBox([self.button, self.state]),
                self.output,
            ]
        )
        self.add_class("nbdeploy-deploy-panel")
        self.refresh()

    def summary(self) -> str:
        models = ", ".join(str(m) for m in self.model.options) or "none registered"
        return f"DeployPanel: deploy a model of {self.workspace.path} (models: {models})"

    def refresh(self) -> None:
        """Reload the model names (and the selected model's versions) from the registry."""
        names = sorted({mv.name for mv in self.workspace.registry.list()})
        current = self.model.value
        self.model.options = names
        if current in names:
            self.model.value = current
        elif names:
            self.model.value = names[0]
        self._fill_versions()

    def _show_target(self) -> None:
        """Say why the chosen target cannot be used here, as the lab panel does."""
        reason = self.unusable.get(self.target.value)
        if reason is not None:
            self.state.value = _status_html(
                f"{self.target.value} cannot be used: {reason}", "error"
            )
        else:
            self.state.value = _status_html("not deployed")

    def _fill_versions(self) -> None:
        name = self.model.value
        versions = (
            sorted((mv.version for mv in self.workspace.registry.list(name=name)), reverse=True)
            if name
            else []
        )
        self.version.options = [_LATEST, *(str(v) for v in versions)]
        self.version.value = _LATEST

    @property
    def model_ref(self) -> str:
        """The selected model as ``name`` or ``name:version``."""
        if not self.model.value:
            raise InvalidArgumentError(
                "no model selected", hint="register a model first, then panel.refresh()"
            )
        version = self.version.value
        return self.model.value if version in (None, _LATEST) else f"{self.model.value}:{version}"

    def deploy(self) -> Webservice:
        """Deploy the selected model with the selected settings (the Deploy button).

        Raises whatever :func:`nbdeploy.deploy` raises; the state label shows it too,
        and the card of an earlier deployment is removed.
        """
        from nbdeploy import api as nbdeploy

        ref = self.model_ref
        self.state.value = _status_html(f"deploying {ref} ...", "busy")
        self.output.outputs = ()  # works with or without a frontend attached
        self.service = None
        try:
            service = nbdeploy.deploy(
                ref,
                name=self.name.value.strip() or None,
                score=self.score.value.strip() or None,
                target=self.target.value,
                port=self.port.value or None,
                workspace=self.workspace,
            )
        except NbdeployError as exc:
            self.state.value = _status_html(f"{ref} failed: {exc.message}", "error")
            raise
        self.service = service
        state = service.record.state.value
        self.state.value = _status_html(f"{service.name}: {state}", "ok")
        self.output.append_display_data(_Card(service))
        return service

    def _on_click(self) -> None:
        self.button.disabled = True
        try:
            self.deploy()
        except NbdeployError:
            pass  # the state label already says why
        finally:
            self.button.disabled = False


class _Card:
    """Display wrapper so an Output widget shows the service card."""

    def __init__(self, service: Webservice) -> None:
        self.service = service

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return select_mimetypes(service_card(self.service), include, exclude)


class RegistryBrowser(_Static, widgets.VBox):  # type: ignore[misc]
    """The registered models and versions, with tags, a filter and a delete button.

    The Delete button asks first ("Delete diabetes:1? ... Confirm / Cancel"); the
    method twins are :meth:`request_delete`, :meth:`confirm_delete`,
    :meth:`cancel_delete`, and :meth:`delete` deletes at once (for code).

    Examples
    --------
    >>> browser = RegistryBrowser()                    # doctest: +SKIP
    >>> browser.filter("team=ml")                      # doctest: +SKIP
    ['diabetes:2', 'diabetes:1']
    >>> browser.delete("diabetes:1")                   # doctest: +SKIP
    """

    def __init__(self, workspace: Workspace | str | os.PathLike[str] | None = None) -> None:
        from nbdeploy.sdk.workspace import get_workspace

        self.workspace = get_workspace(workspace)
        self.models: list[Model] = []
        self.pending: str | None = None
        self.search = widgets.Text(description="filter", placeholder="name or tag key=value")
        self.table = widgets.HTML()
        self.selection = widgets.Select(description="version", options=[], rows=6)
        self.delete_button = widgets.Button(description="Delete", button_style="danger")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.confirm_button = widgets.Button(description="Confirm delete", button_style="danger")
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirm_box = widgets.HBox(
            [widgets.HTML(), self.confirm_button, self.cancel_button],
            layout=widgets.Layout(display="none"),
        )
        self.status = widgets.HTML()
        self.search.observe(lambda change: self.filter(change["new"]), names="value")
        self.delete_button.on_click(lambda _b: self._guard(self.request_delete))
        self.confirm_button.on_click(lambda _b: self._guard(self.confirm_delete))
        self.cancel_button.on_click(lambda _b: self.cancel_delete())
        self.refresh_button.on_click(lambda _b: self.refresh())
        super().__init__(
            [
                widgets.HBox([self.search, self.refresh_button]),
                self.table,
                widgets.HBox([self.selection, self.delete_button]),
                self.confirm_box,
                self.status,
            ]
        )
        self.add_class("nbdeploy-registry-browser")
        self.refresh()

    def summary(self) -> str:
        return f"RegistryBrowser of {self.workspace.path}: {', '.join(self.refs) or 'no models'}"

    @property
    def refs(self) -> list[str]:
        """The ``name:version`` of the models shown now."""
        return [m.id for m in self.models]

    def refresh(self) -> list[str]:
        """Reload from the registry, keeping the filter; return the refs shown."""
        return self.filter(self.search.value)

    def filter(self, text: str) -> list[str]:
        """Show only models whose name contains ``text`` or that have tag ``text``
        (``key=value``, or a bare key); return the refs shown."""
        from nbdeploy.display.cards import models_table
        from nbdeploy.display.html import muted
        from nbdeploy.sdk.model import Model

        if self.search.value != text:
            self.search.value = text  # the observer calls back here; harmless
        needle = text.strip()
        registered = [Model(self.workspace, _version=mv) for mv in self.workspace.registry.list()]
        found = [m for m in registered if _matches(m, needle)] if needle else registered
        self.models = found
        if registered and not found:
            self.table.value = muted(f"no model matches {needle!r} (of {len(registered)})")
        else:
            self.table.value = models_table(found)["text/html"]
        self.selection.options = self.refs
        return self.refs

    def request_delete(self, ref: str | None = None) -> str:
        """Ask to delete ``ref`` (default: the selected version): the Delete button.

        Nothing is deleted until :meth:`confirm_delete`; returns the ref asked about.
        """
        chosen = ref or self.selection.value
        if not chosen:
            raise InvalidArgumentError(
                "no model version selected", hint="pick one in the list, or pass ref='name:1'"
            )
        self.pending = str(chosen)
        question = self.confirm_box.children[0]
        question.value = (
            f"<b>Delete {escape(chosen)}?</b> Its files leave the workspace; this cannot be undone."
        )
        self.confirm_box.layout.display = "flex"
        self.status.value = ""
        return self.pending

    def confirm_delete(self, *, force: bool = False) -> str:
        """Delete the version :meth:`request_delete` asked about (the Confirm button)."""
        if self.pending is None:
            raise InvalidArgumentError(
                "no deletion to confirm", hint="press Delete (request_delete()) first"
            )
        ref, self.pending = self.pending, None
        self.confirm_box.layout.display = "none"
        self.delete(ref, force=force)
        return ref

    def cancel_delete(self) -> None:
        """Forget the pending deletion (the Cancel button)."""
        self.pending = None
        self.confirm_box.layout.display = "none"
        self.status.value = _status_html("nothing deleted")

    def delete(self, ref: str | None = None, *, force: bool = False) -> None:
        """Delete model version ``ref`` (default: the selected one) now, then refresh.

        Raises :class:`~nbdeploy.exceptions.ModelInUseError` while a service uses it,
        unless ``force``.
        """
        chosen = ref or self.selection.value
        if not chosen:
            raise InvalidArgumentError(
                "no model version selected", hint="pick one in the list, or pass ref='name:1'"
            )
        self.workspace.registry.delete(chosen, force=force)
        self.status.value = _status_html(f"deleted {chosen}", "ok")
        self.refresh()

    def _guard(self, action: Callable[[], object]) -> None:
        try:
            action()
        except NbdeployError as exc:
            self.confirm_box.layout.display = "none"
            self.pending = None
            self.status.value = _status_html(exc.message, "error")


def _matches(model: Model, needle: str) -> bool:
    if needle.lower() in model.name.lower():
        return True
    key, sep, value = needle.partition("=")
    tags = model.tags
    if sep:
        return tags.get(key.strip()) == value.strip()
    return needle in tags


def _field_widget(field: Field, value: Any) -> Any:
    """An input control for one column of a DataFrame schema, holding ``value``."""
    kind = field.type.value
    label = field.name
    if field.categories:
        options = [str(c) for c in field.categories]
        return widgets.Dropdown(
            description=label, options=options, value=str(value) if value in options else None
        )
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return widgets.IntText(description=label, value=value)
    if kind in ("integer", "number") and isinstance(value, (int, float)):
        number = float(value)
        return widgets.FloatText(description=label, value=number if math.isfinite(number) else 0)
    if kind == "boolean":
        return widgets.Checkbox(description=label, value=bool(value), indent=True)
    return widgets.Text(description=label, value="" if value is None else str(value))


def _form_value(field: Field, control: Any) -> Any:
    value = control.value
    if field.type.value == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if field.type.value in ("integer", "number") and isinstance(value, str):
        return None if value.strip() == "" and field.nullable else value
    return value


class TryIt(_Static, widgets.VBox):  # type: ignore[misc]
    """Send a request to a service and see the answer and its latency.

    For a model registered with a DataFrame sample the form has one input per column
    (number, text, checkbox, or a list for category columns), filled with the first
    example row of the service's schema; below it, the JSON body that is sent, which
    the form keeps up to date and which may be edited freely (several rows, other
    keys). Other schemas get the JSON box only, starting with the service's example.

    Attributes
    ----------
    form:
        The column inputs, by name (empty without a DataFrame schema).
    request, button, response:
        The JSON body (``Textarea``), the Send button, and an ``HTML`` showing the
        status, latency and body of the last answer.
    last_response:
        The last ``requests.Response``; ``latency_ms`` its round trip in milliseconds.

    Examples
    --------
    >>> tryit = TryIt(nbdeploy.get_service("diabetes-svc"))   # doctest: +SKIP
    >>> tryit.form["age"].value = 0.05                        # doctest: +SKIP
    >>> tryit.send().json()                                   # doctest: +SKIP
    [206.1]
    """

    def __init__(self, service: Webservice, *, timeout: float = 30.0) -> None:
        from nbdeploy.display.views import SwaggerView

        self.service = service
        self.timeout = timeout
        self.last_response: requests.Response | None = None
        self.latency_ms: float | None = None
        example = SwaggerView(service).example_request
        body = round_floats(example if example is not None else {"data": []})
        self.schema = _service_schema(service)
        self.fields: Sequence[Field] = (
            self.schema.fields
            if self.schema is not None and self.schema.kind == "dataframe"
            else ()
        )
        first = _first_row(body)
        self.form: dict[str, Any] = {
            f.name: _field_widget(f, first.get(f.name)) for f in self.fields
        }
        for control in self.form.values():
            control.observe(lambda _change: self._form_to_json(), names="value")
        self.request = widgets.Textarea(
            value=compact_json(body),
            description="JSON",
            layout=widgets.Layout(width="90%", height="10em"),
        )
        self.button = widgets.Button(description="Send", button_style="success", icon="paper-plane")
        self.response = widgets.HTML(value="")
        self.button.on_click(lambda _b: self._on_click())
        editors: list[Any] = []
        if self.form:
            editors.append(
                widgets.GridBox(
                    list(self.form.values()),
                    layout=widgets.Layout(
                        grid_template_columns="repeat(auto-fill, minmax(260px, 1fr))"
                    ),
                )
            )
        super().__init__(
            [
                widgets.HTML(
                    f"<b>Try {escape(service.name)}</b> "
                    f"<code>POST {escape(service.scoring_uri or '')}</code>"
                ),
                *editors,
                self.request,
                self.button,
                self.response,
            ]
        )
        self.add_class("nbdeploy-tryit")

    def summary(self) -> str:
        return (
            f"TryIt {self.service.name}: POST {self.service.scoring_uri or '(no URI)'} "
            f"with {self.request.value.replace(chr(10), '')[:200]}"
        )

    def _form_to_json(self) -> None:
        """Put the form's row into the JSON body (its first row)."""
        row = {f.name: _form_value(f, self.form[f.name]) for f in self.fields}
        try:
            body = json.loads(self.request.value)
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        data = body.get("data")
        rows = data if isinstance(data, list) and data and isinstance(data[0], dict) else [{}]
        body["data"] = [row, *rows[1:]]
        self.request.value = compact_json(body)

    def send(self) -> requests.Response:
        """POST the JSON body to the scoring URI; show and return the response."""
        import requests

        uri = self.service.scoring_uri
        if not uri:
            raise InvalidArgumentError(f"service {self.service.name!r} has no scoring URI")
        auth = getattr(self.service, "_auth_headers", None)
        headers = {"Content-Type": "application/json", **(auth() if callable(auth) else {})}
        started = time.perf_counter()
        try:
            response = requests.post(
                uri, data=self.request.value.encode(), headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            self.response.value = _status_html(f"no answer: {type(exc).__name__}", "error")
            raise
        self.latency_ms = (time.perf_counter() - started) * 1000
        self.last_response = response
        try:
            shown = json.dumps(round_floats(response.json()), indent=1)
        except ValueError:
            shown = response.text
        kind = "ok" if response.ok else "error"
        status = _status_html(f"{response.status_code} {response.reason}", kind)
        self.response.value = (
            f'<div class="nbdeploy-tryit-response" data-status="{response.status_code}">'
            f"{status} in {self.latency_ms:.1f} ms"
            f"<pre {pre_style(wrap=True, max_height='20em')}>{escape(shown)}</pre>"
            "</div>"
        )
        return response

    def _on_click(self) -> None:
        import requests

        # On failure the response area already says why.
        with contextlib.suppress(requests.RequestException):
            self.send()


def _service_schema(service: Webservice) -> Schema | None:
    """The input schema of the service's bundle (None when unknown)."""
    path = service.record.bundle_path
    if not path:
        return None
    try:
        from nbdeploy.core.bundle import Bundle

        return Bundle.load(path).input_schema
    except (NbdeployError, OSError, ValueError, KeyError, TypeError):
        return None


def _first_row(body: Any) -> dict[str, Any]:
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return dict(data[0])
    return {}


class LiveLogs(_Static, widgets.VBox):  # type: ignore[misc]
    """A service's log, followed live (``%logs SVC --follow``) without blocking the
    kernel: a background thread reads new lines every ``interval`` seconds and
    appends them, until Stop (:meth:`stop`), ``timeout`` seconds, or the service is
    gone. :meth:`poll` reads once (the thread's step, for code and tests).

    Attributes
    ----------
    lines:
        The lines shown (the last ``keep``).
    running:
        Whether the follow thread still runs.

    Examples
    --------
    >>> live = LiveLogs(nbdeploy.get_service("diabetes-svc"))   # doctest: +SKIP
    >>> live.stop()                                             # doctest: +SKIP
    """

    def __init__(
        self,
        service: Webservice,
        *,
        tail: int = 50,
        interval: float = 0.5,
        timeout: float = 3600.0,
        keep: int = 2000,
        start: bool = True,
    ) -> None:
        import threading

        self.service = service
        self.interval = interval
        self.timeout = timeout
        self.keep = keep
        self.lines: list[str] = []
        self._seen = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.view = widgets.HTML()
        self.status = widgets.HTML(_status_html("following ...", "busy"))
        self.stop_button = widgets.Button(description="Stop", icon="stop")
        self.stop_button.on_click(lambda _b: self.stop())
        super().__init__([widgets.HBox([self.stop_button, self.status]), self.view])
        self.add_class("nbdeploy-live-logs")
        first = self._read()
        self._seen = len(first)
        self._show(first[-tail:] if tail else [])
        if start:
            self._thread = threading.Thread(target=self._follow, name="nbdeploy-logs", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def summary(self) -> str:
        return f"log of {self.service.name}:\n" + "\n".join(self.lines[-50:])

    def _read(self) -> list[str]:
        return str(self.service.get_logs()).splitlines()

    def poll(self) -> list[str]:
        """Read the log once and show the lines added since the last read."""
        lines = self._read()
        if len(lines) < self._seen:  # a new log (the service was redeployed)
            self._seen = 0
        new = lines[self._seen :]
        self._seen = len(lines)
        if new:
            self._show(new)
        return new

    def _show(self, new: Sequence[str]) -> None:
        self.lines = [*self.lines, *new][-self.keep :]
        text = "\n".join(self.lines) or "(the log is empty)"
        self.view.value = f"<pre {pre_style(wrap=True, max_height='30em')}>{escape(text)}</pre>"

    def _follow(self) -> None:
        deadline = time.monotonic() + self.timeout
        ended = "stopped"
        while not self._stop.wait(self.interval):
            if time.monotonic() > deadline:
                ended = f"stopped after {self.timeout:g} s"
                break
            try:
                self.poll()
            except NbdeployError as exc:  # the service was deleted ...
                ended = f"stopped: {exc.message}"
                break
        self.status.value = _status_html(ended)

    def stop(self) -> None:
        """Stop following (the Stop button)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.status.value = _status_html("stopped")
