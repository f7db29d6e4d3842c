"""Domain errors. The web layer maps each to one HTTP status in a single handler."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a command may raise on purpose.

    `message` is English, for logs and API clients; `reason` (a stable key) with its
    `params` lets a page say the same thing in the reader's language."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        details: Any = None,
        *,
        reason: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.reason = reason
        self.params = params or {}


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Conflict(DomainError):
    """The task is not in a state that allows the command (done, claimed by another)."""

    status = 409
    code = "conflict"


class ValidationFailed(DomainError):
    """Submitted data or an uploaded diagram is invalid; `details` maps field/element to reasons."""

    status = 422
    code = "invalid"


class UnsafeExpression(ValidationFailed):
    code = "unsafe_expression"


class ServiceFailed(DomainError):
    """A service task raised; the command is rolled back and the task stays as it was."""

    status = 500
    code = "service_failed"
