"""The sign-in lockout's edges (django-axes, configured in settings): who the client is, and what a locked-out
person sees — the sign-in page saying why and for how long, with 429 and Retry-After."""
from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or behind DJANGO_BEHIND_PROXY the address the (last) proxy appended to
    X-Forwarded-For; what a client wrote there itself is never trusted."""
    remote = request.META.get("REMOTE_ADDR")
    if not getattr(settings, "DJANGO_BEHIND_PROXY", False):
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    count = max(1, getattr(settings, "IDP_PROXY_COUNT", 1))
    return hops[-count] if len(hops) >= count else remote


def cooloff_seconds() -> int:
    cooloff = settings.AXES_COOLOFF_TIME
    return int(cooloff.total_seconds()) if cooloff else 0


def lockout_message() -> str:
    seconds = cooloff_seconds()
    limit = settings.AXES_FAILURE_LIMIT
    if not seconds:
        return (f"Too many failed sign-ins ({limit}): this user is locked out. An operator can unlock it.")
    minutes = max(1, math.ceil(seconds / 60))
    return (f"Too many failed sign-ins ({limit}): signing in as this user from your address is blocked for "
            f"{minutes} minute{'s' if minutes != 1 else ''}, even with the right password. Try again later, or ask "
            f"an operator to unlock it.")


def locked_out(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the sign-in page (429) with the lockout message instead of the form's error."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = AuthenticationForm(request, initial={"username": username})
    context = {"form": form, "locked_out": lockout_message(), "next": request.POST.get("next") or request.GET.get("next", "")}
    response = render(request, "registration/login.html", context, status=429)
    if cooloff_seconds():
        response["Retry-After"] = str(cooloff_seconds())
    return response
