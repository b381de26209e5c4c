"""Domain errors. The API layer maps each to one HTTP status in one place (coaching.api)."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: a request the domain refuses. Never a bug."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class InvalidInput(DomainError):
    """Well-formed input that breaks a business rule; `field` names the culprit."""

    status = 422
    code = "invalid"
