"""Notifications: what the control plane tells people, emitted once, at the transition that makes it true.

`emit()` stores a Notice and one NoticeDelivery per configured channel (webhook, e-mail) in the caller's
transaction and hands the deliveries to a worker once that commits (dr/notify.py sends them, with retries). It
never fails or holds up its caller: a runbook step goes on whether the broker, the webhook or the mail server is up
or not. The portal lists the notices a person may see at /notifications/ (their teams' cells; operators: all).

Where each event is emitted: a run waits for approval, fails or succeeds (dr/runbook.py), a claim fails (cells
sends `claim_failed`, dr/receivers.py), the lag rises above the RPO (`lag_measured`, from the lag probe and the
status source), a drill is overdue (the drill schedule, dr/services.py), an evacuation starts or ends
(`evacuation_started`, `evacuation_ended`: for the evacuation feature, dr/evacuations.py, to call).

Payloads carry names, ids, states and messages the UI shows anyway; never a credential.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from cells import access

from .models import FailoverRun, LagWatch, Notice, NoticeDelivery, NoticeEvent, NoticeRead, RunType

log = logging.getLogger(__name__)


def channels() -> list[str]:
    """The outbound channels this installation has (the portal list is always on)."""
    out = []
    if settings.IDP_NOTIFY_WEBHOOK_URL:
        out.append(NoticeDelivery.Channel.WEBHOOK)
    if settings.IDP_NOTIFY_EMAIL:
        out.append(NoticeDelivery.Channel.EMAIL)
    return out


def _path(cell_env, run) -> str:
    if run is not None:
        return reverse("run", args=[run.pk])
    if cell_env is not None:
        return reverse("cell", args=[cell_env.cell.name, cell_env.environment])
    return reverse("notifications")


def emit(event: str, text: str, *, cell_env=None, run: FailoverRun | None = None, key: str | None = None,
         **fields) -> Notice | None:
    """Store the notice and its deliveries, send them after commit. None if `key` was told already, or if the
    notice could not be stored (logged: a notification never breaks what it reports on)."""
    cell_env = cell_env if cell_env is not None or run is None else run.cell_env
    if key and Notice.objects.filter(key=key).exists():
        return None
    url = settings.IDP_PUBLIC_URL + _path(cell_env, run)
    payload = {"text": f"{text}\n{url}", "event": event,
               "cell": cell_env.cell.name if cell_env else None,
               "environment": cell_env.environment if cell_env else None,
               "runId": run.pk if run else None, "url": url, **fields}
    try:
        with transaction.atomic():  # a savepoint: a failure here leaves the caller's transaction usable
            notice = Notice.objects.create(event=event, cell_env=cell_env, run=run, text=text, payload=payload, key=key)
            notice.payload["noticeId"] = notice.pk
            Notice.objects.filter(pk=notice.pk).update(payload=notice.payload)
            deliveries = [NoticeDelivery.objects.create(notice=notice, channel=c) for c in channels()]
    except IntegrityError:
        if key:
            return None  # told meanwhile by another worker
        log.exception("notice %s could not be stored", event)
        return None
    except Exception:  # noqa: BLE001 - never fail the step that reports
        log.exception("notice %s could not be stored", event)
        return None
    from . import notify

    for delivery in deliveries:
        transaction.on_commit(partial(notify.send, delivery.pk))
    return notice


# -- the events ----------------------------------------------------------------------------------

def _run_name(run: FailoverRun) -> str:
    return f"{run.type} #{run.pk}" + (f" (of a {run.simulates})" if run.simulates else "")


def run_waiting_approval(run: FailoverRun) -> Notice | None:
    return emit(NoticeEvent.RUN_WAITING_APPROVAL,
                f"{run.cell_env}: {_run_name(run)} waits for an operator's approval before the traffic switch",
                run=run, runType=run.type, state="waiting_approval")


def run_failed(run: FailoverRun, step: str, error: str) -> Notice | None:
    return emit(NoticeEvent.RUN_FAILED, f"{run.cell_env}: {_run_name(run)} failed at step {step}: {error}",
                run=run, runType=run.type, state="failed", step=step, error=error[:1000])


def run_succeeded(run: FailoverRun) -> Notice | None:
    if run.type == RunType.DRILL:
        what = "drill succeeded: the target side is ready and the lag is within the RPO"
    else:
        what = f"{run.type} #{run.pk} succeeded: the {run.to_side} side serves and writes"
        if run.rto_seconds is not None:
            what += f" (RTO {run.rto_seconds:.0f}s of {run.rto_target_seconds}s)"
    return emit(NoticeEvent.RUN_SUCCEEDED, f"{run.cell_env}: {what}", run=run, runType=run.type, state="succeeded",
                rtoSeconds=run.rto_seconds, dataLossSeconds=run.data_loss_seconds)


def claim_failed(claim, message: str) -> Notice | None:
    return emit(NoticeEvent.CLAIM_FAILED, f"{claim.cell_env}: {claim.name} failed: {message}",
                cell_env=claim.cell_env, claim=claim.name, error=message[:1000])


def lag_measured(cell_env, lag_seconds: float | None, rpo_seconds: int) -> Notice | None:
    """Told when a measured lag goes from within the RPO to above it (not on every measurement above it; an
    unknown lag changes nothing). A compare-and-set on the cell's LagWatch: one notice however many measure."""
    if lag_seconds is None:
        return None
    above = lag_seconds > rpo_seconds
    watch, _ = LagWatch.objects.get_or_create(cell_env=cell_env)
    if watch.above_rpo == above or LagWatch.objects.filter(pk=watch.pk, above_rpo=not above).update(above_rpo=above) != 1:
        return None
    if not above:
        return None
    return emit(NoticeEvent.LAG_ABOVE_RPO,
                f"{cell_env}: replication lag {lag_seconds:g}s is above the RPO of {rpo_seconds}s; "
                f"a failover now would lose more data than the DR profile allows",
                cell_env=cell_env, lagSeconds=lag_seconds, rpoSeconds=rpo_seconds)


def drill_overdue(cell_env, interval_seconds: int, now=None) -> Notice | None:
    """Told once per overdue period: no successful drill for `interval_seconds` (the policy's schedule) plus
    IDP_DRILL_OVERDUE_GRACE. The period starts at the due time, so the next successful drill starts a new one."""
    now = now or timezone.now()
    last = (cell_env.failover_runs.filter(type=RunType.DRILL, state="succeeded", finished_at__isnull=False)
            .order_by("-finished_at").values_list("finished_at", flat=True).first())
    due = (last or cell_env.created_at) + timedelta(seconds=interval_seconds)
    if now < due + timedelta(seconds=settings.IDP_DRILL_OVERDUE_GRACE):
        return None
    since = f"the last successful drill was at {last:%Y-%m-%d %H:%M} UTC" if last else "it has never had a successful drill"
    return emit(NoticeEvent.DRILL_OVERDUE,
                f"{cell_env}: a drill is overdue since {due:%Y-%m-%d %H:%M} UTC ({since}; the policy drills it every "
                f"{interval_seconds}s)", cell_env=cell_env, key=f"drill-overdue:{cell_env.pk}:{due.isoformat()}",
                dueAt=due.isoformat(), lastDrillAt=last.isoformat() if last else None)


def _evacuation(event: str, verb: str, evacuation_id, scope: str, cell_envs, detail: str) -> list[Notice]:
    """One notice per cell environment concerned (its team hears of it), or one for operators when none is named."""
    told = []
    for ce in list(cell_envs) or [None]:
        text = f"{f'{ce}: ' if ce else ''}evacuation {evacuation_id} of {scope} {verb}" + (f": {detail}" if detail else "")
        notice = emit(event, text, cell_env=ce, key=f"{event}:{evacuation_id}:{ce.pk if ce else '-'}",
                      evacuationId=evacuation_id, scope=scope)
        if notice is not None:
            told.append(notice)
    return told


def evacuation_started(evacuation_id, scope: str, cell_envs=(), detail: str = "") -> list[Notice]:
    """For the evacuation issue to call when an evacuation of `scope` (a cloud, region or cluster) starts."""
    return _evacuation(NoticeEvent.EVACUATION_STARTED, "started", evacuation_id, scope, cell_envs, detail)


def evacuation_ended(evacuation_id, scope: str, cell_envs=(), detail: str = "") -> list[Notice]:
    """For the evacuation issue to call when it ends (`detail`: its outcome)."""
    return _evacuation(NoticeEvent.EVACUATION_ENDED, "ended", evacuation_id, scope, cell_envs, detail)


# -- reading them --------------------------------------------------------------------------------

def visible_notices(user):
    """The notices of the cell environments the user can see; operators see all (and those without a cell)."""
    qs = Notice.objects.select_related("cell_env__cell")
    return qs if access.is_operator(user) else qs.filter(cell_env__in=access.visible_environments(user).values("pk"))


def unread(user):
    """Visible notices the user has not marked read (those from before they joined count as read)."""
    return visible_notices(user).filter(created_at__gte=user.date_joined).exclude(reads__user=user)


def unread_count(user) -> int:
    return unread(user).count()


def mark_read(user, notice_ids=None) -> int:
    """Mark the given notices (None: every unread one) read for the user; notices they cannot see are ignored."""
    qs = unread(user) if notice_ids is None else visible_notices(user).filter(pk__in=notice_ids).exclude(reads__user=user)
    rows = [NoticeRead(notice_id=pk, user=user) for pk in qs.values_list("pk", flat=True)]
    NoticeRead.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)
