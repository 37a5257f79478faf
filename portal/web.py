"""The portal's edge: one helper decides full page or fragment, domain errors become pages.

Every portal view is wrapped by `portal_view`: it requires a signed-in user (an HTMX
request whose session expired is sent to the sign-in page as a whole page, not swapped
into a panel), turns `cells.errors.DomainError` into a page with the error's status,
and marks every response `Vary: HX-Request` because the same URL answers a page or a
fragment.
"""
from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import render, resolve_url
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from cells.errors import DomainError

TITLES = {400: "Not accepted", 403: "Not allowed", 404: "Not found", 409: "Conflict", 422: "No valid placement",
          501: "Not available yet"}


def is_fragment(request) -> bool:
    """An HTMX swap wants a fragment; a normal load, a boosted link or a history restore wants the page."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_page(request, template: str, context: dict, *, fragments: dict[str, str] | None = None,
                status: int = 200, stop_polling: bool = False) -> HttpResponse:
    """The full page `template`, or for an HTMX swap of element `#id` the partial `fragments[id]`.

    Partials are named after the element they replace (`partials/<id>.html`). A polled fragment
    whose states are all final answers 286 (`stop_polling`) so htmx stops polling.
    """
    if fragments and is_fragment(request) and request.htmx.target in fragments:
        html = render_to_string(fragments[request.htmx.target], context, request)
        response = HttpResponseStopPolling(html) if stop_polling else HttpResponse(html, status=status)
    else:
        response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def error_page(request, exc: DomainError) -> HttpResponse:
    context = {"status": exc.status, "title": TITLES.get(exc.status, "Error"), "message": exc.message,
               "fields": exc.fields}
    template = "partials/error.html" if is_fragment(request) else "error.html"
    return render(request, template, context, status=exc.status)


def portal_view(view):
    """Signed-in users only; DomainError -> an error page with its status; Vary: HX-Request."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            if is_fragment(request):
                response = HttpResponseClientRedirect(_login_url(request))
            else:
                response = redirect_to_login(request.get_full_path())
        else:
            try:
                response = view(request, *args, **kwargs)
            except DomainError as exc:
                response = error_page(request, exc)
        patch_vary_headers(response, ("HX-Request",))
        return response

    return wrapper


def _login_url(request) -> str:
    """Where an expired HTMX request sends the browser: sign in, then back to the page it was on."""
    return f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': request.htmx.current_url_abs_path or '/'})}"
