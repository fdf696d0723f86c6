"""Display objects the magics return: lists of models and services, the Swagger view,
service logs.

The lists are read-only sequences (indexable, iterable, equal to a list of the same
items), so ``ms = %models`` still gives the :class:`~nbdeploy.Model` objects, and they
show as a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from nbdeploy.exceptions import InvalidArgumentError, TargetUnavailableError
from nbdeploy.sdk.model import Model
from nbdeploy.sdk.rendering import select_mimetypes
from nbdeploy.sdk.webservice import Webservice

from .cards import models_table, service_base_uri, services_table
from .html import escape, pre_style
from .openapi import request_example, swagger_tables

_T = TypeVar("_T")

__all__ = ["ModelList", "ServiceList", "ServiceLogs", "SwaggerView", "fetch_document"]


class _DisplayList(Sequence[_T]):
    """A read-only list of results that displays as a table.

    Not a ``list`` subclass on purpose: IPython's plain-text formatter pretty-prints
    anything that is a ``list`` itself, which would hide the table's text form. It
    compares equal to a list with the same items.
    """

    def __init__(self, items: Iterable[_T] = ()) -> None:
        self._items = list(items)

    @overload
    def __getitem__(self, index: int) -> _T: ...

    @overload
    def __getitem__(self, index: slice) -> list[_T]: ...

    def __getitem__(self, index: int | slice) -> _T | list[_T]:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _DisplayList):
            return self._items == other._items
        if isinstance(other, list):
            return self._items == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"


class ModelList(_DisplayList[Model]):
    """Registered model versions (what ``%models`` returns); displays as a table."""

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, str]:
        return select_mimetypes(models_table(self), include, exclude)


class ServiceList(_DisplayList[Webservice]):
    """Services with their last known states (what ``%services`` returns); a table."""

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, str]:
        return select_mimetypes(services_table(self), include, exclude)


@dataclass(frozen=True)
class ServiceLogs:
    """The log text of a service, shown as preformatted text."""

    service: str
    text: str

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "text": self.text}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceLogs:
        return cls(service=str(data["service"]), text=str(data["text"]))

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, str]:
        text = self.text or "(the log is empty)"
        html = (
            f'<div class="nbdeploy-logs"><b>logs of {escape(self.service)}</b>'
            f"<pre {pre_style(wrap=True, max_height='30em')}>{escape(text)}</pre></div>"
        )
        return select_mimetypes({"text/plain": text, "text/html": html}, include, exclude)


def fetch_document(url: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """GET an OpenAPI document (JSON) from a service.

    Raises
    ------
    TargetUnavailableError
        The service does not answer, answers with an error, or not with JSON.

    Examples
    --------
    >>> fetch_document("http://127.0.0.1:5001/swagger.json")["swagger"]  # doctest: +SKIP
    '2.0'
    """
    import requests

    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        raise TargetUnavailableError(
            f"cannot fetch {url}: {type(exc).__name__}",
            hint="check that the service is Healthy (service.state) and see service.get_logs()",
        ) from None
    if response.status_code != 200:
        raise TargetUnavailableError(
            f"{url} answered {response.status_code}: {response.text[:200]}",
            hint="the service may still be starting, or its init() failed; see its logs",
        )
    try:
        document = response.json()
    except ValueError:
        raise TargetUnavailableError(f"{url} did not answer with JSON") from None
    if not isinstance(document, dict):
        raise TargetUnavailableError(f"{url} answered JSON that is not an OpenAPI document")
    return document


class SwaggerView:
    """A service's OpenAPI document, rendered as readable tables.

    The document is fetched from the running service (``/swagger.json``, the
    reference's Swagger 2.0 shape, or ``/openapi.json`` with ``openapi=True``) when the
    view is made, so what it shows is what the service publishes. Links to the
    service's own Swagger UI (``/docs``).

    Parameters
    ----------
    service:
        A :class:`~nbdeploy.Webservice` (or anything with ``scoring_uri`` /
        ``swagger_uri``).
    openapi:
        Fetch the OpenAPI 3 document instead of the Swagger 2.0 one.
    timeout:
        Seconds to wait for the service.

    Examples
    --------
    >>> view = SwaggerView(nbdeploy.get_service("diabetes-svc"))  # doctest: +SKIP
    >>> view.document["paths"]["/score"]["post"]["operationId"]   # doctest: +SKIP
    'RunMLService'
    """

    def __init__(
        self, service: Webservice, *, openapi: bool = False, timeout: float = 10.0
    ) -> None:
        self.service_name = service.name
        base = service_base_uri(service)
        if base is None:
            raise InvalidArgumentError(
                f"service {service.name!r} has no URI yet (state {service.record.state.value})",
                hint="wait until it is Healthy: service.wait_for_deployment()",
            )
        if openapi:
            self.url = f"{base}/openapi.json"
        else:
            self.url = service.swagger_uri or f"{base}/swagger.json"
        self.docs_url = f"{base}/docs"
        self.document: dict[str, Any] = fetch_document(self.url, timeout=timeout)

    @property
    def example_request(self) -> Any:
        """The example request body the document gives for ``POST /score`` (or None)."""
        return request_example(self.document)

    def __repr__(self) -> str:
        return f"SwaggerView(service={self.service_name!r}, url={self.url!r})"

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, str]:
        bundle = swagger_tables(self.document, docs_url=self.docs_url, source=self.url)
        return select_mimetypes(bundle, include, exclude)
