"""Endpoints for the platform that runs the control plane: /healthz (liveness), /readyz (readiness), /metrics.

`/readyz` answers 200 when this process can do its work — the database answers, the Celery broker accepts a
connection (within IDP_READYZ_BROKER_TIMEOUT seconds) and a policy is active — and 503 naming the failing
checks otherwise. An edit of the policy file that does not validate does not make the process unready: the
last good policy stays active (policy/active.py), and /readyz reports the rejected file under `policy.fileError`.
Error messages are cut short and never carry credentials from a URL.

`OpsEndpointsMiddleware` answers these three paths before the rest of the middleware: kubelet probes and
Prometheus address the pod by IP (the Host header is not in DJANGO_ALLOWED_HOSTS), over plain HTTP (no HTTPS
redirect), with no session or CSRF token. None of the three builds a URL from the Host header.
"""
from __future__ import annotations

import re
import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.urls import resolve

from policy.active import active_policy, last_error

from .celery import app as celery_app

PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]*@")


def _clean(exc: Exception) -> str:
    text = _CREDENTIALS.sub(r"\1***@", f"{type(exc).__name__}: {exc}".strip())
    return text if len(text) <= 300 else text[:297] + "..."


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def check_broker() -> dict:
    timeout = settings.IDP_READYZ_BROKER_TIMEOUT
    with celery_app.connection_for_write(connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=0, timeout=timeout)
    return {"transport": str(celery_app.conf.broker_url).split("://", 1)[0]}


def check_policy() -> dict:
    policy = active_policy()
    out = {"version": policy.version}
    error = last_error()
    if error is not None:
        out["fileError"] = _clean(error)
    return out


CHECKS = {"database": check_database, "broker": check_broker, "policy": check_policy}


def readiness() -> tuple[bool, dict]:
    results = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            result = {"ok": True, **check()}
        except Exception as exc:  # noqa: BLE001 - any failure makes the check fail, with its message
            result = {"ok": False, "error": _clean(exc)}
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        results[name] = result
    return all(r["ok"] for r in results.values()), results


def readyz(request):
    ok, checks = readiness()
    failing = [name for name, result in checks.items() if not result["ok"]]
    body = {"status": "ok" if ok else "unavailable", "checks": checks}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=200 if ok else 503)


class OpsEndpointsMiddleware:
    """Answers /healthz, /readyz and /metrics before host validation, HTTPS redirects, sessions and CSRF."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info in PATHS:
            match = resolve(request.path_info)
            request.resolver_match = match
            return match.func(request, *match.args, **match.kwargs)
        return self.get_response(request)
