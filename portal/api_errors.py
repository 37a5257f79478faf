"""Under /api/ every answer is JSON in the API's error shape ({"error", "detail"}), even when no DRF view handles
the request: an exception raised by a view outside DRF is a 500 in that shape (logged with its traceback, see
cells.api.errors), and Django's own HTML error pages (an unknown URL: 404) become that shape too. DRF's views
answer through cells.api.errors already."""
from http import HTTPStatus

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, JsonResponse

from cells.api.errors import server_error

PREFIX = "/api/"
CODES = {400: "invalid", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


class ApiErrorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (request.path.startswith(PREFIX) and 400 <= response.status_code < 600
                and not response.get("Content-Type", "").startswith("application/json")):
            code = response.status_code
            try:
                phrase = HTTPStatus(code).phrase.lower()
            except ValueError:
                phrase = "error"
            detail = f"no API endpoint at {request.path}" if code == 404 else phrase
            json = JsonResponse({"error": CODES.get(code, "server_error" if code >= 500 else "error"), "detail": detail},
                                status=code)
            for header in ("Retry-After", "Allow", "WWW-Authenticate"):
                if header in response:
                    json[header] = response[header]
            return json
        return response

    def process_exception(self, request, exception):
        if not request.path.startswith(PREFIX) or isinstance(
                exception, (Http404, PermissionDenied, SuspiciousOperation, BadRequest)):
            return None  # Django answers these 4xx itself; __call__ puts them in the JSON shape
        return JsonResponse(server_error(request, exception), status=500)
