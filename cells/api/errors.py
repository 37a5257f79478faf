"""One error shape for the whole API: {"error", "detail", "fields"?, ...}.

Unexpected exceptions too: a view that fails answers 500 in this shape (the traceback goes to the log and to
`got_request_exception`, as Django's own handler would send it), never Django's HTML error page.
"""
import logging

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.core.signals import got_request_exception
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from cells.errors import DomainError

log = logging.getLogger("cells.api")

SERVER_ERROR = {"error": "server_error",
                "detail": "the server failed to answer this request; the error is logged, please report it"}


def _flatten(detail, prefix="") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "request" if key == "non_field_errors" else f"{prefix}{key}"
            out.update(_flatten(value, f"{name}."))
            if not isinstance(value, dict):
                out[name] = [str(v) for v in (value if isinstance(value, list) else [value])]
    return out


def server_error(request, exc: BaseException) -> dict:
    """Log an unexpected exception of an API request with its traceback; the body to answer with."""
    path = getattr(request, "path", "?")
    log.error("Internal Server Error: %s %s", getattr(request, "method", "?"), path, exc_info=exc)
    got_request_exception.send(sender=None, request=getattr(request, "_request", request))
    return dict(SERVER_ERROR)


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        return Response({"error": "too_large", "detail": f"the request body is larger than "
                                                         f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"},
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, (SuspiciousOperation, BadRequest)):  # what Django itself answers with 400
        return Response({"error": "invalid", "detail": "the request is malformed"}, status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is None:
        set_rollback()  # ATOMIC_REQUESTS or not: nothing of a failed request is committed by the answer
        return Response(server_error(context.get("request"), exc), status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail) if isinstance(exc.detail, dict) else {"request": [str(d) for d in exc.detail]}
        response.data = {"error": "invalid", "detail": "the request has invalid fields", "fields": fields}
        response.status_code = status.HTTP_400_BAD_REQUEST
    else:
        code = getattr(exc, "default_code", "error")
        response.data = {"error": code, "detail": str(getattr(exc, "detail", exc))}
    return response
