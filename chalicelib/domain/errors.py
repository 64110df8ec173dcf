"""The one error tree of FastHook.

Every error a user can trigger is a subclass of `FastHookError` carrying its HTTP status and a stable
`error` reason; `entrypoints/api.py` is the one place that turns them into `{error, message}` bodies.
"""

from __future__ import annotations

from typing import Any


class FastHookError(Exception):
    status_code = 500
    error = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.data = data

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.code is not None:
            out["code"] = self.code
        if self.data is not None:
            out["data"] = self.data
        return out


class BadRequestError(FastHookError):
    status_code = 400
    error = "bad_request"


class InvalidJsonError(FastHookError):
    status_code = 400
    error = "invalid_json"


class InvalidParameterError(FastHookError):
    """A query parameter or header is malformed (bad time expression, limit out of range, ...)."""

    status_code = 400
    error = "invalid_parameter"


class ValidationError(FastHookError):
    """A request body is well-formed JSON but breaks the resource's rules; the message names the field."""

    status_code = 422
    error = "validation_error"

    def __init__(self, message: str, *, field: str | None = None, data: Any = None) -> None:
        super().__init__(message, data=data)
        self.field = field

    def body(self) -> dict[str, Any]:
        out = super().body()
        if self.field is not None:
            out["field"] = self.field
        return out


class UnauthorizedError(FastHookError):
    status_code = 401
    error = "unauthorized"


class ForbiddenError(FastHookError):
    status_code = 403
    error = "forbidden"


class NotFoundError(FastHookError):
    status_code = 404
    error = "not_found"


class MethodNotAllowedError(FastHookError):
    status_code = 405
    error = "method_not_allowed"


class ConflictError(FastHookError):
    status_code = 409
    error = "conflict"


class AlreadyExistsError(ConflictError):
    """A create hit a unique name; `data` carries the existing resource."""

    def __init__(self, message: str, *, data: Any = None) -> None:
        super().__init__(message, code="RESOURCE_ALREADY_EXISTS", data=data)


class ConcurrentUpdateError(ConflictError):
    """Someone else changed the resource between our read and our conditional write."""

    def __init__(self, message: str = "The resource changed while it was being updated; try again") -> None:
        super().__init__(message, code="CONCURRENT_UPDATE")


class InUseError(ConflictError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="RESOURCE_IN_USE")


class PayloadTooLargeError(FastHookError):
    status_code = 413
    error = "payload_too_large"


class ServiceUnavailableError(FastHookError):
    """A dependency FastHook needs for this call is not configured or not answering; retrying later may work."""

    status_code = 503
    error = "service_unavailable"


class RequestNotStoredError(ServiceUnavailableError):
    """A route message arrived before (or without) its Request: ingest writes both at once (flow/ingest.py).

    Retryable: the route worker reports the message as failed so SQS redelivers it, until the message
    has been received often enough to be sure the write never happened.
    """

    error = "request_not_stored"
