"""Domain errors: each edge (API, portal, CLI) turns them into its own answer."""
from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None, **extra):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.extra = extra

    def as_dict(self) -> dict:
        body = {"error": self.code, "detail": self.message}
        if self.fields:
            body["fields"] = self.fields
        body.update(self.extra)
        return body


class InvalidRequest(DomainError):
    status, code = 400, "invalid"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class NotFound(DomainError):
    status, code = 404, "not_found"


class Conflict(DomainError):
    status, code = 409, "conflict"


class NoPlacement(DomainError):
    """No valid primary/secondary pair; `explanation` says why for every candidate."""

    status, code = 422, "no_placement"


class NotAvailable(DomainError):
    status, code = 501, "not_implemented"
