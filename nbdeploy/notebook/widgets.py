"""ipywidgets front: a deploy panel, a registry browser and a "try it" form.

Every UI action has a method twin (``panel.deploy()``, ``browser.filter(text)``,
``tryit.send()``) that the button calls, so tests drive the widgets without a
browser and the browser tests check that the real page shows them.

Each widget is an ``ipywidgets.VBox`` subclass: display it as the last expression of
a cell, or nest it in another layout.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from nbdeploy.exceptions import InvalidArgumentError, NbdeployError

from .display import escape, select_mimetypes, service_card

if TYPE_CHECKING:
    import requests

    from nbdeploy._model import Model
    from nbdeploy._service import Webservice
    from nbdeploy.core.workspace import Workspace

__all__ = ["DeployPanel", "RegistryBrowser", "TryIt"]

_LATEST = "latest"


def _state_html(text: str, colour: str = "#616161") -> str:
    return f'<span style="color:{colour}">{escape(text)}</span>'


class DeployPanel(widgets.VBox):  # type: ignore[misc]
    """Pick a model, a version, a target and settings; press Deploy.

    Parameters
    ----------
    workspace:
        The workspace to read models from and deploy in (default: the default one).

    Attributes
    ----------
    service:
        The :class:`~nbdeploy.Webservice` of the last successful deployment.
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
        from nbdeploy._workspace import get_workspace
        from nbdeploy.targets import target_names

        self.workspace = get_workspace(workspace)
        self.service: Webservice | None = None
        self.model = widgets.Dropdown(description="model", options=[])
        self.version = widgets.Dropdown(description="version", options=[_LATEST])
        self.target = widgets.Dropdown(
            description="target", options=list(target_names()) or ["local"], value="local"
        )
        self.name = widgets.Text(description="service", placeholder="default: the model name")
        self.score = widgets.Text(description="score", placeholder="score.py (optional)")
        self.port = widgets.IntText(description="port", value=0, tooltip="0 picks a free port")
        self.button = widgets.Button(description="Deploy", button_style="primary", icon="rocket")
        self.state = widgets.HTML(value=_state_html("not deployed"))
        self.output = widgets.Output()
        self.button.on_click(lambda _button: self._on_click())
        self.model.observe(lambda _change: self._fill_versions(), names="value")
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

        Raises whatever :func:`nbdeploy.deploy` raises; the state label shows it too.
        """
        from nbdeploy import _api as nbdeploy

        self.state.value = _state_html(f"deploying {self.model_ref} ...", "#f9a825")
        try:
            service = nbdeploy.deploy(
                self.model_ref,
                name=self.name.value.strip() or None,
                score=self.score.value.strip() or None,
                target=self.target.value,
                port=self.port.value or None,
                workspace=self.workspace,
            )
        except NbdeployError as exc:
            self.state.value = _state_html(f"failed: {exc.message}", "#c62828")
            raise
        self.service = service
        state = service.record.state.value
        self.state.value = _state_html(f"{service.name}: {state}", "#2e7d32")
        self.output.clear_output()
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


class RegistryBrowser(widgets.VBox):  # type: ignore[misc]
    """The registered models and versions, with tags, a filter and a delete button.

    Examples
    --------
    >>> browser = RegistryBrowser()                    # doctest: +SKIP
    >>> browser.filter("team=ml")                      # doctest: +SKIP
    ['diabetes:2', 'diabetes:1']
    >>> browser.delete("diabetes:1")                   # doctest: +SKIP
    """

    def __init__(self, workspace: Workspace | str | os.PathLike[str] | None = None) -> None:
        from nbdeploy._workspace import get_workspace

        self.workspace = get_workspace(workspace)
        self.models: list[Model] = []
        self.search = widgets.Text(description="filter", placeholder="name or tag key=value")
        self.table = widgets.HTML()
        self.selection = widgets.Select(description="version", options=[], rows=6)
        self.delete_button = widgets.Button(description="Delete", button_style="danger")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.status = widgets.HTML()
        self.search.observe(lambda change: self.filter(change["new"]), names="value")
        self.delete_button.on_click(lambda _b: self._on_delete())
        self.refresh_button.on_click(lambda _b: self.refresh())
        super().__init__(
            [
                widgets.HBox([self.search, self.refresh_button]),
                self.table,
                widgets.HBox([self.selection, self.delete_button]),
                self.status,
            ]
        )
        self.add_class("nbdeploy-registry-browser")
        self.refresh()

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
        from nbdeploy._model import Model

        from .display import models_table

        if self.search.value != text:
            self.search.value = text  # the observer calls back here; harmless
        needle = text.strip()
        found = [Model(self.workspace, _version=mv) for mv in self.workspace.registry.list()]
        if needle:
            found = [m for m in found if _matches(m, needle)]
        self.models = found
        self.table.value = models_table(found)["text/html"]
        self.selection.options = self.refs
        return self.refs

    def delete(self, ref: str | None = None, *, force: bool = False) -> None:
        """Delete model version ``ref`` (default: the selected one), then refresh.

        Raises :class:`~nbdeploy.exceptions.ModelInUseError` while a service uses it,
        unless ``force``.
        """
        chosen = ref or self.selection.value
        if not chosen:
            raise InvalidArgumentError(
                "no model version selected", hint="pick one in the list, or pass ref='name:1'"
            )
        self.workspace.registry.delete(chosen, force=force)
        self.status.value = _state_html(f"deleted {chosen}")
        self.refresh()

    def _on_delete(self) -> None:
        try:
            self.delete()
        except NbdeployError as exc:
            self.status.value = _state_html(exc.message, "#c62828")


def _matches(model: Model, needle: str) -> bool:
    if needle.lower() in model.name.lower():
        return True
    key, sep, value = needle.partition("=")
    tags = model.tags
    if sep:
        return tags.get(key.strip()) == value.strip()
    return needle in tags


class TryIt(widgets.VBox):  # type: ignore[misc]
    """Send a request to a service and see the answer and its latency.

    The text area starts with the example request of the service's own OpenAPI
    document (``/swagger.json``), so the first Send works as it is.

    Attributes
    ----------
    request, button, response:
        The controls: a ``Textarea`` with the JSON body, the Send button, an ``HTML``
        showing the status, latency and body of the last answer.
    last_response:
        The last ``requests.Response``; ``latency_ms`` its round trip in milliseconds.

    Examples
    --------
    >>> tryit = TryIt(nbdeploy.get_service("diabetes-svc"))   # doctest: +SKIP
    >>> tryit.send().json()                                   # doctest: +SKIP
    [206.1]
    """

    def __init__(self, service: Webservice, *, timeout: float = 30.0) -> None:
        from .views import SwaggerView

        self.service = service
        self.timeout = timeout
        self.last_response: requests.Response | None = None
        self.latency_ms: float | None = None
        example = SwaggerView(service).example_request
        body = example if example is not None else {"data": []}
        self.request = widgets.Textarea(
            value=json.dumps(body, indent=1),
            description="request",
            layout=widgets.Layout(width="90%", height="10em"),
        )
        self.button = widgets.Button(description="Send", button_style="success", icon="paper-plane")
        self.response = widgets.HTML(value="")
        self.button.on_click(lambda _b: self._on_click())
        super().__init__(
            [
                widgets.HTML(
                    f"<b>Try {escape(service.name)}</b> "
                    f"<code>POST {escape(service.scoring_uri or '')}</code>"
                ),
                self.request,
                self.button,
                self.response,
            ]
        )
        self.add_class("nbdeploy-tryit")

    def send(self) -> requests.Response:
        """POST the text area's JSON to the scoring URI; show and return the response."""
        import requests

        uri = self.service.scoring_uri
        if not uri:
            raise InvalidArgumentError(f"service {self.service.name!r} has no scoring URI")
        started = time.perf_counter()
        try:
            response = requests.post(
                uri,
                data=self.request.value.encode(),
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            self.response.value = _state_html(f"no answer: {type(exc).__name__}", "#c62828")
            raise
        self.latency_ms = (time.perf_counter() - started) * 1000
        self.last_response = response
        try:
            shown = json.dumps(response.json(), indent=1)
        except ValueError:
            shown = response.text
        colour = "#2e7d32" if response.ok else "#c62828"
        self.response.value = (
            f'<div class="nbdeploy-tryit-response" data-status="{response.status_code}">'
            f'<span style="color:{colour}">{response.status_code} {escape(response.reason)}</span>'
            f" in {self.latency_ms:.1f} ms"
            f'<pre style="background:#f6f8fa;padding:6px;font-size:12px">{escape(shown)}</pre>'
            "</div>"
        )
        return response

    def _on_click(self) -> None:
        import requests

        # On failure the response area already says why.
        with contextlib.suppress(requests.RequestException):
            self.send()
