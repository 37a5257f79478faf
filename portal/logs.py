"""Logs a platform team can search: one line per record (JSON in production), each with the request id
that follows the work from the web request into the Celery tasks it starts.

- `RequestIdMiddleware` takes `X-Request-ID` from the caller when it is short and safe (else makes one),
  puts it on the response and in a contextvar for the rest of the request.
- `ContextFilter`, on the handlers (settings.LOGGING), adds `request_id`, `task_id` and `task_name` to every
  record (None when there is none).
- Celery signals: `before_task_publish` copies the id into the message headers (`request_id`), so a task sent
  by a request, or by a task that a request started, carries it; `task_prerun`/`task_postrun` set and clear
  it, and the task's id and name, in the worker. `setup_logging` makes workers and beat use settings.LOGGING
  instead of Celery's own format.
- `LOG_FORMAT`: `json` (python-json-logger; the default when DJANGO_DEBUG is off) or `plain` (the development
  default).

Nothing here needs Django's settings at import: portal/celery.py and the settings import this module.
"""
from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun
from django.core.signals import request_finished
from django.dispatch import receiver
from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
TASK_HEADER = "request_id"  # the Celery message header
# Short and safe to echo into headers and logs: a UUID, a W3C trace id, an ingress controller's id.
VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
CONTEXT_FIELDS = ("request_id", "task_id", "task_name")

request_id_var: ContextVar[str | None] = ContextVar("idp_request_id", default=None)
task_var: ContextVar[tuple[str, str] | None] = ContextVar("idp_task", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def valid_request_id(value: str | None) -> str | None:
    """The caller's id if it is acceptable, else None (a new one is made)."""
    if value and VALID_ID.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """The outermost middleware: every log line of the request, and every task it sends, carries the id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = valid_request_id(request.META.get(META_KEY)) or new_request_id()
        request.request_id = rid
        # Cleared on request_finished, not here: Django logs a 4xx/5xx ("Not Found: ...") after the middleware.
        request_id_var.set(rid)
        response = self.get_response(request)
        response[HEADER] = rid
        return response


@receiver(request_finished, dispatch_uid="idp-request-id-clear")
def _clear_request_id(**kwargs):
    request_id_var.set(None)


class ContextFilter(logging.Filter):
    """Adds request_id, task_id and task_name to each record (attach it to handlers, so that records
    propagated from every logger pass through it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = task_var.get()
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        if getattr(record, "task_id", None) is None:
            record.task_id = task[0] if task else None
        if getattr(record, "task_name", None) is None:
            record.task_name = task[1] if task else None
        return True


class JsonFormatter(_BaseJsonFormatter):
    """One JSON object per line: time, level, logger, message, and the context fields that are set."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")  # ISO 8601 in UTC
        super().__init__(*args, **kwargs)

    def process_log_record(self, log_data):
        for field in CONTEXT_FIELDS:
            if log_data.get(field) is None:
                log_data.pop(field, None)
        return super().process_log_record(log_data)


class PlainFormatter(logging.Formatter):
    """The development format, with the context in brackets when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = []
        if getattr(record, "request_id", None):
            context.append(f"request_id={record.request_id}")
        if getattr(record, "task_name", None):
            context.append(f"task={record.task_name}[{record.task_id}]")
        if not context:
            return text
        head, sep, tail = text.partition("\n")  # keep a traceback below the first line
        return f"{head} [{' '.join(context)}]{sep}{tail}"


def logging_config(log_format: str, level: str) -> dict:
    """settings.LOGGING for LOG_FORMAT (`json` or `plain`) and LOG_LEVEL."""
    if log_format not in ("json", "plain"):
        raise ValueError(f"LOG_FORMAT must be json or plain, not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "portal.logs.ContextFilter"}},
        "formatters": {
            "plain": {"()": "portal.logs.PlainFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            "json": {"()": "portal.logs.JsonFormatter", "format": "%(levelname)s %(name)s %(message)s"},
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
    }


# -- Celery: the id travels in the message headers -------------------------------------------

@before_task_publish.connect(dispatch_uid="idp-request-id-publish")
def _add_request_id_header(sender=None, headers=None, **kwargs):
    """In the sending process (web or worker): the current request id goes into the message headers."""
    rid = request_id_var.get()
    if rid and headers is not None and not headers.get(TASK_HEADER):
        headers[TASK_HEADER] = rid


_tokens: dict[str, tuple] = {}


@task_prerun.connect(dispatch_uid="idp-request-id-prerun")
def _enter_task(sender=None, task_id=None, task=None, **kwargs):
    """In the worker: the task's request id (from its headers) and its id and name, until it ends.
    A task run eagerly inside a request keeps that request's id."""
    request = getattr(task, "request", None)
    rid = valid_request_id(request.get(TASK_HEADER) if request is not None else None) or request_id_var.get()
    name = getattr(task, "name", None) or getattr(sender, "name", "")
    _tokens[task_id] = (request_id_var.set(rid), task_var.set((task_id, name)))


@task_postrun.connect(dispatch_uid="idp-request-id-postrun")
def _leave_task(sender=None, task_id=None, **kwargs):
    tokens = _tokens.pop(task_id, None)
    if tokens is None:
        return
    rid_token, task_token = tokens
    try:
        task_var.reset(task_token)
        request_id_var.reset(rid_token)
    except ValueError:  # set in another context (should not happen): clear instead
        task_var.set(None)
        request_id_var.set(None)


@setup_logging.connect(dispatch_uid="idp-celery-logging")
def _celery_uses_django_logging(**kwargs):
    """Workers and beat log like the web processes (settings.LOGGING), not in Celery's own format."""
    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
