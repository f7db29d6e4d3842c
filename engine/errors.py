"""Domain errors. The web layer maps each to one HTTP status in a single handler."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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


class DamagedState(Conflict):
    """An instance's stored state cannot be read or is not the state its history left:
    no command builds on it until it is rebuilt from the history."""

    code = "state_damaged"


@dataclass(frozen=True)
class FieldError:
    """One refusal of one field: its path (`measures/0/title`), a stable code (the JSON
    Schema keyword, or the check's kind), an English message, the code's parameters,
    and the texts a form declared for it by locale (pages show those, else translate
    the code)."""

    path: str
    code: str
    message: str
    params: Mapping[str, Any] = field(default_factory=dict)
    texts: Mapping[str, str] = field(default_factory=dict)


def details_of(errors: Iterable[FieldError]) -> dict[str, list[str]]:
    """The API's `details` of field errors: messages by path."""
    details: dict[str, list[str]] = {}
    for error in errors:
        details.setdefault(error.path, []).append(error.message)
    return details


class ValidationFailed(DomainError):
    """Submitted data or an uploaded diagram is invalid; `details` maps field/element to
    reasons. Form validation also gives `errors`, one FieldError each, with codes."""

    status = 422
    code = "invalid"

    def __init__(
        self,
        message: str,
        details: Any = None,
        *,
        errors: Iterable[FieldError] = (),
        reason: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.errors = tuple(errors)
        if details is None and self.errors:
            details = details_of(self.errors)
        super().__init__(message, details, reason=reason, params=params)


class UnsafeExpression(ValidationFailed):
    code = "unsafe_expression"


class ServiceFailed(DomainError):
    """A service task raised; the command is rolled back and the task stays as it was."""

    status = 500
    code = "service_failed"
