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


class UserError(NbdeployError):
    """An error the caller caused and can fix.

    In IPython it renders as one short message and a hint, without a traceback
    (IPython calls ``_render_traceback_`` when an exception defines it).
    """

    status_code = 400

    def _render_traceback_(self) -> list[str]:
        lines = [f"{type(self).__name__}: {self.message}"]
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        return lines


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
