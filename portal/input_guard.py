"""Query strings with a NUL character are refused (400, naming the parameter) before any view runs: PostgreSQL
cannot hold NUL in text, so a filter with one would fail in the database (a 500) on whichever page or list filter
(the portal's, the admin's, the API's) it reached. Bodies are checked where they are parsed: forms and
serializers refuse NUL, and the services refuse it in free text (cells.text)."""
from django.http import JsonResponse

from cells.errors import InvalidRequest
from cells.text import NUL_MESSAGE

from .web import error_page


class RejectNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        bad = sorted({key.replace("\x00", "\\x00") for key, values in request.GET.lists()
                      if "\x00" in key or any("\x00" in v for v in values)})
        if not bad:
            return self.get_response(request)
        error = InvalidRequest(f"the query parameter{'s' if len(bad) > 1 else ''} {', '.join(bad)} "
                               f"contain{'' if len(bad) > 1 else 's'} a NUL character", {k: [NUL_MESSAGE] for k in bad})
        if request.path.startswith("/api/"):
            return JsonResponse(error.as_dict(), status=400)
        return error_page(request, error)
