"""The one exception tree of nbdeploy.

Every error nbdeploy raises on purpose is an :class:`NbdeployError`. Each class says
when it is raised and carries the HTTP status the scoring server maps it to, so the
server, the CLI and the notebook all report the same thing in the same words.

::

    NbdeployError (500)
    ├── UserError (400)                 the caller can fix it; shown without a traceback
    │   ├── InvalidArgumentError (400)  a bad argument value (name, version, port ...)
    │   ├── NotFoundError (404)
    │   │   ├── ModelNotFoundError      no such model / version in the workspace
    │   │   └── ServiceNotFoundError    no such service record
    │   ├── ConflictError (409)
    │   │   ├── ModelInUseError         deleting a model version a service uses
    │   │   └── ServiceExistsError      deploying over a service of another target
    │   ├── BadRequestError (400)       a request body that is not valid JSON / not {"data": ...}
    │   ├── AuthenticationError (401)   missing, wrong or expired credentials
    │   ├── HostNotAllowedError (403)   a Host header the service does not answer (DNS rebinding)
    │   ├── PayloadTooLargeError (413)  a request body over the configured limit
    │   ├── UnsupportedMediaTypeError (415)  a body sent as another content type than JSON
    │   ├── SchemaMismatchError (422)   request data does not match the schema
    │   ├── ScoringScriptError (400)    a scoring script that does not parse or lacks init/run
    │   ├── EnvironmentSpecError (400)  an unreadable requirements / conda file
    │   ├── TargetUnavailableError (503) Docker / Ray / Kubernetes cannot be reached
    │   ├── CloudOnlyError (501)        an Azure ML call that only makes sense in the cloud
    │   └── ServiceBusyError (503)      every run() slot of the replica stayed busy too long
    ├── IntegrityError (500)            stored files do not match their recorded hash
    ├── DeploymentError (500)           a service could not be started (state Failed)
    ├── ScoringError (500)              the scoring script's run() raised
    └── ScoringTimeoutError (504)       run() did not finish within scoring_timeout_ms

Messages say what failed, with which value, and how to fix it.
"""

from __future__ import annotations

import linecache
import sys
from types import TracebackType
from typing import Any

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "CloudOnlyError",
    "ConflictError",
    "DeploymentError",
    "EnvironmentSpecError",
    "HostNotAllowedError",
    "IntegrityError",
    "InvalidArgumentError",
    "ModelInUseError",
    "ModelNotFoundError",
    "NbdeployError",
    "NotFoundError",
    "PayloadTooLargeError",
    "SchemaMismatchError",
    "ScoringError",
    "ScoringScriptError",
    "ScoringTimeoutError",
    "ServiceBusyError",
    "ServiceExistsError",
    "ServiceNotFoundError",
    "TargetUnavailableError",
    "UnsupportedMediaTypeError",
    "UserError",
]


class NbdeployError(Exception):
    """Base of every error nbdeploy raises on purpose.

    Parameters
    ----------
    message:
        What failed, with the offending value.
    hint:
        How to fix it (optional). Shown on its own line.
    """

    status_code: int = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nHint: {self.hint}"
        return self.message

    def to_response(self) -> dict[str, Any]:
        """The JSON body the scoring server answers with (``ErrorResponse``)."""
        return {"status_code": self.status_code, "message": str(self)}

    def _render_traceback_(self) -> list[str]:
        """How IPython shows the error: one line, the hint, and the cell line that
        raised it — never a traceback into nbdeploy's own code.

        Every ``NbdeployError`` is raised on purpose with a message that says what
        failed; the frames inside nbdeploy would only hide it. Real bugs (any other
        exception) keep IPython's full traceback.
        """
        lines = [f"{type(self).__name__}: {self.message}"]
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        where = cell_excerpt(self.__traceback__)
        if where:
            lines.append(where)
        return lines


def cell_excerpt(tb: TracebackType | None) -> str | None:
    """``Cell In[12], line 3: svc.run(rows)`` for the deepest notebook-cell frame of
    ``tb``, or None outside IPython.

    IPython caches each cell's source in :mod:`linecache` with no modification time
    (``mtime is None``), which tells a cell from a file without importing IPython.

    Examples
    --------
    >>> cell_excerpt(None) is None
    True
    """
    found: tuple[str, int] | None = None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        entry: Any = linecache.cache.get(name)
        if isinstance(entry, tuple) and len(entry) == 4 and entry[1] is None:
            found = (name, tb.tb_lineno)
        tb = tb.tb_next
    if found is None:
        return None
    name, line = found
    text = _raw_cell_line(name, line) or linecache.getline(name, line).strip()
    number = _execution_count(name)
    label = f"Cell In[{number}]" if number is not None else "Cell"
    return f"{label}, line {line}: {text}" if text else f"{label}, line {line}"


def _shell() -> Any:
    """The running IPython shell, if any (IPython puts ``get_ipython`` in builtins)."""
    get_ipython = getattr(sys.modules.get("builtins"), "get_ipython", None)
    return get_ipython() if callable(get_ipython) else None


def _execution_count(filename: str) -> int | None:
    shell = _shell()
    mapping = getattr(getattr(shell, "compile", None), "_filename_map", None)
    number = mapping.get(filename) if isinstance(mapping, dict) else None
    return number if isinstance(number, int) else None


def _raw_cell_line(filename: str, line: int) -> str | None:
    """The line as the user typed it (``%deploy ...``, not IPython's transformed call)."""
    shell = _shell()
    number = _execution_count(filename)
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    if number is None or not isinstance(history, list) or not 0 <= number < len(history):
        return None
    raw = str(history[number])
    # A cell run without storing history shares its number with the stored one:
    # use the raw text only when it is what ran.
    try:
        ran = "".join(linecache.getlines(filename))
        if shell.transform_cell(raw).strip() != ran.strip():
            return None
    except Exception:
        return None
    lines = raw.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else None


class UserError(NbdeployError):
    """An error the caller caused and can fix.

    Like every nbdeploy error it renders in IPython as one short message and a hint
    (``_render_traceback_``), without a traceback.
    """

    status_code = 400


class InvalidArgumentError(UserError, ValueError):
    """An argument has a value nbdeploy cannot use (a bad name, version or port)."""


class NotFoundError(UserError, LookupError):
    """Something named by the caller does not exist."""

    status_code = 404


class ModelNotFoundError(NotFoundError):
    """No model (or no such version of it) is registered in the workspace."""


class ServiceNotFoundError(NotFoundError):
    """No service of that name is recorded in the workspace."""


class ConflictError(UserError):
    """The request conflicts with the workspace's current state."""

    status_code = 409


class ModelInUseError(ConflictError):
    """A model version is used by a service and cannot be deleted without ``force``."""


class ServiceExistsError(ConflictError):
    """A service of that name already exists in a way that forbids the request."""


class BadRequestError(UserError):
    """A request body is not valid JSON or lacks the expected shape."""

    status_code = 400


class AuthenticationError(UserError):
    """Credentials are missing, wrong, tampered with or expired."""

    status_code = 401


class HostNotAllowedError(UserError):
    """The request's ``Host`` header names no address the service answers to: a page
    that re-pointed its own domain at this machine (DNS rebinding) is refused."""

    status_code = 403


class UnsupportedMediaTypeError(UserError):
    """A JSON endpoint got a body declared as another content type (``text/plain``
    from a form or a page: a browser sends those without asking first)."""

    status_code = 415


class PayloadTooLargeError(UserError):
    """A request body is larger than the service accepts."""

    status_code = 413


class SchemaMismatchError(UserError):
    """Request data does not match the model's schema.

    Parameters
    ----------
    message:
        The full explanation.
    field, row, expected:
        The offending column (or path), the 0-based row and the expected type, when
        known; kept as attributes so callers can act on them.
    """

    status_code = 422

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        row: int | None = None,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.field = field
        self.row = row
        self.expected = expected


class ScoringScriptError(UserError):
    """A scoring script does not parse, or lacks ``init()`` / ``run(data)``."""


class EnvironmentSpecError(UserError):
    """A requirements file or conda specification cannot be read."""


class TargetUnavailableError(UserError):
    """The deployment target (a Docker engine, a Ray cluster ...) cannot be reached."""

    status_code = 503


class CloudOnlyError(UserError):
    """An Azure ML SDK v1 call that only makes sense with an Azure account (creating
    AKS compute, logging in to Azure, the workspace's container registry, datastores
    ...). The message names the call, the hint what to use instead with nbdeploy."""

    status_code = 501


class ServiceBusyError(UserError):
    """Every ``run()`` slot of a replica (``replica_max_concurrent_requests``) stayed
    busy for ``max_request_wait_time``: retry later, or run more replicas."""

    status_code = 503


class IntegrityError(NbdeployError):
    """Stored model files do not match the content hash recorded at registration.

    nbdeploy refuses to load them: loading a pickle runs code.
    """


class DeploymentError(NbdeployError):
    """A service could not be started; its record is in state ``Failed``."""


class ScoringError(NbdeployError):
    """The scoring script's ``run()`` raised. The traceback is in the service logs."""


class ScoringTimeoutError(NbdeployError):
    """``run()`` did not finish within ``scoring_timeout_ms``. It goes on in its
    thread (Python cannot stop it) and keeps its slot until it returns."""

    status_code = 504
