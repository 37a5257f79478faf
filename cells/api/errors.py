"""One error shape for the whole API: {"error", "detail", "fields"?, ...}."""
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from cells.errors import DomainError


def _flatten(detail, prefix="") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "request" if key == "non_field_errors" else f"{prefix}{key}"
            out.update(_flatten(value, f"{name}."))
            if not isinstance(value, dict):
                out[name] = [str(v) for v in (value if isinstance(value, list) else [value])]
    return out


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail) if isinstance(exc.detail, dict) else {"request": [str(d) for d in exc.detail]}
        response.data = {"error": "invalid", "detail": "the request has invalid fields", "fields": fields}
        response.status_code = status.HTTP_400_BAD_REQUEST
    else:
        code = getattr(exc, "default_code", "error")
        response.data = {"error": code, "detail": str(getattr(exc, "detail", exc))}
    return response
