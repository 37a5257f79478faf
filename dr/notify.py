"""Sending notices: an outbox like the claims' deliveries (cells/pipeline.py).

A NoticeDelivery row is written with its notice; `send` hands its id to a worker once the transaction commits (a
broker that is down loses nothing: the row stays pending and the beat task `resend` sends it later, as it does for
rows whose worker died). A worker takes the row with a compare-and-set, sends it on its channel and records the
attempt; a transient failure (the receiver is down, a 5xx, a mail server that does not answer) is retried with
exponential backoff up to IDP_NOTIFY_MAX_ATTEMPTS, a refusal (4xx) fails at once.

Channels: a Slack-compatible webhook (`IDP_NOTIFY_WEBHOOK_URL`: POST of the notice's JSON payload, `text` and the
structured fields) and e-mail through Django's e-mail backend to the members of the cell's team (operators for a
notice without a cell). The webhook URL is a credential: it never appears in an error, a log line or the admin.
"""
from __future__ import annotations

import logging
import smtplib
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db.models import F, Q
from django.utils import timezone

from cells.access import OPERATORS_GROUP
from cells.pipeline import RetryLater, backoff, no_worker_has  # one outbox retry rule for deliveries and notices

from .models import Notice, NoticeDelivery

log = logging.getLogger(__name__)

State = NoticeDelivery.State


class TransientSendError(Exception):
    """Worth another attempt later."""


class SendError(Exception):
    """The receiver refused the notice: another attempt would be refused too."""


class NobodyToTell(Exception):
    """The channel has no recipient for this notice (no team member with an e-mail address)."""


# -- the outbox ----------------------------------------------------------------------------------

def send(delivery_id: int) -> bool:
    """Hand a delivery to the broker; False (logged) when the broker is down: the beat task sends it later."""
    from .tasks import send_notice

    try:
        send_notice.delay(delivery_id)
    except Exception as exc:  # noqa: BLE001 - any broker failure; resend() retries
        log.warning("broker unavailable, notice delivery %s stays pending: %s", delivery_id, exc)
        return False
    NoticeDelivery.objects.filter(pk=delivery_id).update(enqueued_at=timezone.now())
    return True


def resend() -> int:
    """Send again what no worker has: never sent (broker down), lost, due for a retry, or held by a dead worker."""
    due = NoticeDelivery.objects.filter(no_worker_has(State.PENDING, State.SENDING)).values_list("pk", flat=True)[:500]
    sent = sum(send(pk) for pk in due)
    if sent:
        log.info("re-sent %s notice delivery(ies)", sent)
    return sent


def _take(delivery_id: int) -> bool:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.IDP_DELIVERY_LEASE)
    return NoticeDelivery.objects.filter(pk=delivery_id).filter(
        Q(state=State.PENDING) | Q(state=State.SENDING, started_at__lt=stale)
    ).update(state=State.SENDING, started_at=now, attempts=F("attempts") + 1) == 1


def deliver(delivery_id: int) -> str:
    """Send one delivery. Idempotent (a sent row is not taken again); raises RetryLater for a transient failure."""
    if not _take(delivery_id):
        return "not taken: sent, failed, or held by another worker"
    delivery = NoticeDelivery.objects.select_related("notice__cell_env__cell__team").get(pk=delivery_id)
    try:
        detail = CHANNELS[delivery.channel](delivery.notice)
    except NobodyToTell as exc:
        _finish(delivery, State.SKIPPED, detail=str(exc))
        return f"skipped: {exc}"
    except TransientSendError as exc:
        return _attempt_failed(delivery, str(exc), transient=True)
    except SendError as exc:
        return _attempt_failed(delivery, str(exc), transient=False)
    except Exception as exc:  # noqa: BLE001 - a bug must not leave the row taken
        log.exception("notice delivery %s failed", delivery_id)
        return _attempt_failed(delivery, f"{type(exc).__name__}: {_redact(str(exc))}", transient=False)
    _finish(delivery, State.SENT, detail=detail)
    return detail


def _finish(delivery: NoticeDelivery, state: str, detail: str = "", error: str = "") -> None:
    NoticeDelivery.objects.filter(pk=delivery.pk).update(
        state=state, detail=detail[:300], last_error=error[:2000], next_attempt_at=None,
        sent_at=timezone.now() if state == State.SENT else None)


def _attempt_failed(delivery: NoticeDelivery, error: str, transient: bool) -> str:
    final = not transient or delivery.attempts >= settings.IDP_NOTIFY_MAX_ATTEMPTS
    if final:
        _finish(delivery, State.FAILED, error=f"{error} (attempt {delivery.attempts})")
        return f"failed: {error}"
    countdown = backoff(delivery.attempts)
    now = timezone.now()
    NoticeDelivery.objects.filter(pk=delivery.pk).update(
        state=State.PENDING, last_error=f"{error} (attempt {delivery.attempts}, retrying in {countdown:g}s)"[:2000],
        next_attempt_at=now + timedelta(seconds=countdown), enqueued_at=now)  # the retry is the next message
    raise RetryLater(countdown, error)


# -- channels ------------------------------------------------------------------------------------

def _redact(text: str) -> str:
    """Remove the webhook URL (a credential: its path is the token) from an error message."""
    url = settings.IDP_NOTIFY_WEBHOOK_URL
    if url:
        parts = urlsplit(url)
        text = text.replace(url, f"{parts.scheme}://{parts.netloc}/<redacted>")
        for secret in (parts.path + (f"?{parts.query}" if parts.query else ""), parts.path):
            if secret and secret != "/":
                text = text.replace(secret, "/<redacted>")
    return text


def webhook(notice: Notice) -> str:
    url = settings.IDP_NOTIFY_WEBHOOK_URL
    if not url:
        raise NobodyToTell("IDP_NOTIFY_WEBHOOK_URL is not set")
    try:
        response = requests.post(url, json=notice.payload, timeout=settings.IDP_NOTIFY_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise TransientSendError(f"webhook unreachable: {type(exc).__name__}: {_redact(str(exc))}"[:500]) from None
    status, body = response.status_code, _redact(response.text[:200].strip())
    if status >= 500 or status in (408, 425, 429):
        raise TransientSendError(f"webhook answered HTTP {status}" + (f": {body}" if body else ""))
    if status >= 300:
        raise SendError(f"webhook refused the notice: HTTP {status}" + (f": {body}" if body else ""))
    return f"webhook answered HTTP {status}"


def recipients(notice: Notice) -> list[str]:
    """The e-mail addresses of the cell's team members (active users); operators' for a notice without a cell."""
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    users = users.filter(teams=notice.cell_env.cell.team_id) if notice.cell_env_id else \
        users.filter(groups__name=OPERATORS_GROUP)
    return sorted(set(users.values_list("email", flat=True)))


def email(notice: Notice) -> str:
    to = recipients(notice)
    if not to:
        raise NobodyToTell("no member of the team has an e-mail address")
    subject = " ".join(f"[idp-multicloud] {notice.text}".split())[:200]
    p = notice.payload
    body = "\n".join([notice.text, "", p.get("url", ""), "",
                      f"Event: {notice.get_event_display()} ({notice.event})"]
                     + ([f"Cell: {p['cell']}", f"Environment: {p['environment']}"] if p.get("cell") else [])
                     + ([f"Run: #{p['runId']}"] if p.get("runId") else []))
    try:
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, to=to).send()
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendError(f"the mail server refused the recipients: {', '.join(exc.recipients)}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientSendError(f"mail server: {type(exc).__name__}: {exc}"[:500]) from None
    return f"e-mailed {len(to)} recipient(s)"


CHANNELS = {NoticeDelivery.Channel.WEBHOOK: webhook, NoticeDelivery.Channel.EMAIL: email}
