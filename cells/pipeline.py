"""The provisioning pipeline: outbox → delivery to the target → observed cluster state.

Every function here is called by a Celery task (cells/tasks.py) or by the services in
the request transaction. State lives in rows: a Delivery is taken with a
compare-and-set, a claim's delivered revision only ever grows, and rendering always
uses the claim's current row, so an older revision never overwrites a newer one.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import manifests, platform, signals
from .delivery import DeliveryError, ObjectRef, TransientDeliveryError, get_target
from .models import Application, CellEnvironment, ClaimStatus, Delivery, MySQLClaim, ReplicationClaim
from .observers import get_status_source

log = logging.getLogger(__name__)

CLAIM_MODELS = {m._meta.model_name: m for m in (MySQLClaim, ReplicationClaim, Application)}
SEND_GRACE = timedelta(seconds=5)  # a pending row unsent for this long is sent again by the dispatcher


class RetryLater(Exception):
    def __init__(self, countdown: float, error: str):
        super().__init__(error)
        self.countdown = countdown


def backoff(attempt: int) -> float:
    """Exponential backoff for transient delivery errors: 2, 4, 8 … seconds, at most 5 minutes."""
    return float(min(300, 2 ** attempt))


# -- outbox ----------------------------------------------------------------------------

def item(claim) -> dict:
    return {"type": claim._meta.model_name, "id": claim.pk, "revision": claim.revision, "name": claim.name}


def enqueue(cell_env: CellEnvironment, claims: list, actor, reason: str,
            action: str = Delivery.Action.APPLY) -> Delivery | None:
    """Write the outbox row in the caller's transaction; send it to a worker once that commits."""
    if not claims:
        return None
    delivery = Delivery.objects.create(
        cell_env=cell_env, action=action, items=[item(c) for c in claims], actor=actor if getattr(actor, "pk", None) else None,
        reason=reason[:200], target=settings.IDP_DELIVERY_TARGET,
    )
    transaction.on_commit(lambda: send(delivery.pk))
    return delivery


def send(delivery_id: int) -> bool:
    """Hand a delivery to the broker. A broker that is down loses nothing: the row stays pending."""
    from .tasks import deliver

    try:
        deliver.delay(delivery_id)
    except Exception as exc:  # noqa: BLE001 - any broker failure; the dispatcher retries
        log.warning("broker unavailable, delivery %s stays in the outbox: %s", delivery_id, exc)
        return False
    Delivery.objects.filter(pk=delivery_id).update(enqueued_at=timezone.now())
    return True


def dispatch() -> int:
    """Send again what no worker has: never sent, lost by the broker, or held by a worker that died."""
    now = timezone.now()
    lease = timedelta(seconds=settings.IDP_DELIVERY_LEASE)
    due = Delivery.objects.filter(
        Q(state=Delivery.State.PENDING)
        & (Q(enqueued_at__isnull=True, created_at__lt=now - SEND_GRACE) | Q(enqueued_at__lt=now - lease))
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        | Q(state=Delivery.State.DELIVERING, started_at__lt=now - lease)
    ).values_list("pk", flat=True)[:500]
    sent = sum(send(pk) for pk in due)
    if sent:
        log.info("dispatcher re-sent %s delivery(ies)", sent)
    return sent


# -- delivery --------------------------------------------------------------------------

def _take(delivery_id: int) -> bool:
    """Compare-and-set: exactly one worker takes a pending (or stale delivering) row."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.IDP_DELIVERY_LEASE)
    return Delivery.objects.filter(pk=delivery_id).filter(
        Q(state=Delivery.State.PENDING) | Q(state=Delivery.State.DELIVERING, started_at__lt=stale)
    ).update(state=Delivery.State.DELIVERING, started_at=now, attempts=F("attempts") + 1) == 1


def _claims(delivery: Delivery) -> list:
    out = []
    for it in delivery.items:
        model = CLAIM_MODELS.get(it["type"])
        obj = model.objects.filter(pk=it["id"]).first() if model else None
        if obj is not None:
            out.append(obj)
    return out


def _render(ce: CellEnvironment, claim) -> list[dict]:
    if isinstance(claim, MySQLClaim):
        return manifests.render_mysql(ce, claim)
    if isinstance(claim, ReplicationClaim):
        return manifests.render_replication(ce, claim, {c.pk: c for c in ce.mysqlclaims.all()})
    return manifests.render_application(ce, claim)


def _message(delivery: Delivery, verb: str, claims: list) -> str:
    ce = delivery.cell_env
    actor = delivery.actor.username if delivery.actor_id else "system"
    lines = [f"{ce.cell.name}/{ce.environment}: {verb} {len(claims)} claim(s) — {delivery.reason}", "",
             f"Cell: {ce.cell.name}", f"Environment: {ce.environment}", f"Requested-by: {actor}",
             f"Delivery: {delivery.pk}", "Claims:"]
    lines += [f"  {c.name} revision {c.revision}" for c in claims]
    return "\n".join(lines)


def deliver(delivery_id: int) -> str:
    """Deliver one outbox row. Idempotent; raises RetryLater for transient target errors."""
    if not _take(delivery_id):
        return "not taken: done, failed, or held by another worker"
    delivery = Delivery.objects.select_related("cell_env__cell__team", "cell_env__placement", "actor").get(pk=delivery_id)
    target = get_target()
    try:
        if delivery.action == Delivery.Action.DELETE:
            detail = _delete(delivery, target)
        else:
            detail = _apply(delivery, target)
    except (TransientDeliveryError, OperationalError) as exc:  # a busy database is worth a retry too
        return _attempt_failed(delivery, str(exc), transient=True)
    except (DeliveryError, Exception) as exc:  # noqa: BLE001 - a render or target bug must not leave the row taken
        log.exception("delivery %s failed", delivery_id)
        return _attempt_failed(delivery, f"{type(exc).__name__}: {exc}" if not isinstance(exc, DeliveryError) else str(exc),
                               transient=False)
    Delivery.objects.filter(pk=delivery.pk).update(state=Delivery.State.DONE, finished_at=timezone.now(),
                                                   result=detail, last_error="", target=target.name)
    return detail


def _apply(delivery: Delivery, target) -> str:
    ce = delivery.cell_env
    todo = [c for c in _claims(delivery) if c.delivered_revision < c.revision and c.status not in (ClaimStatus.DELETING, ClaimStatus.DELETED)]
    if not todo:
        return "nothing to deliver: the target already holds the current revisions"
    for c in todo:
        type(c).objects.filter(pk=c.pk, revision=c.revision).update(status=ClaimStatus.DELIVERING, status_message="")
    rendered = [(c, _render(ce, c)) for c in todo]
    objects = _with_platform_package([o for _, objs in rendered for o in objs], target)
    result = target.apply(objects, revision=max(c.revision for c in todo), message=_message(delivery, "apply", todo))
    details = [result.detail]
    now = timezone.now()
    for c, objs in rendered:
        refs = [ObjectRef.of(o).as_dict() for o in objs]
        # Objects a re-place moved to another cluster: remove the old copies.
        moved = [ObjectRef.from_dict(r) for r in c.delivered_refs if r not in refs]
        if moved:
            details.append(target.delete(moved, message=_message(delivery, "move", [c])).detail)
        model = type(c)
        model.objects.filter(pk=c.pk, delivered_revision__lt=c.revision).update(
            delivered_revision=c.revision, delivered_at=now, delivered_refs=refs)
        model.objects.filter(pk=c.pk, revision=c.revision).exclude(
            status__in=(ClaimStatus.DELETING, ClaimStatus.DELETED)).update(status=ClaimStatus.DELIVERED, status_message="")
    return "; ".join(details)


def _with_platform_package(objects: list[dict], target) -> list[dict]:
    """Our composite resources need the platform package on their cluster: deliver it with them to a cluster that
    does not hold this package revision yet, unless the platform team installs it (IDP_PLATFORM_PACKAGE=external)."""
    if settings.IDP_PLATFORM_PACKAGE != "deliver":
        return objects
    sites = sorted({(r.cluster, r.cloud) for r in map(ObjectRef.of, objects) if r.api_version.startswith(platform.API_GROUP)})
    missing = [(cluster, cloud) for cluster, cloud in sites if not platform.installed(target, cluster, cloud)]
    return [o for cluster, cloud in missing for o in platform.for_cluster(cluster, cloud)] + objects


def _delete(delivery: Delivery, target) -> str:
    claims = _claims(delivery)
    refs = [ObjectRef.from_dict(r) for c in claims for r in c.delivered_refs]
    result = target.delete(refs, message=_message(delivery, "delete", claims))
    for c in claims:
        type(c).objects.filter(pk=c.pk, status=ClaimStatus.DELETING).update(
            status=ClaimStatus.DELETED, status_message="removed from the delivery target", delivered_refs=[])
    return result.detail


def _attempt_failed(delivery: Delivery, error: str, transient: bool) -> str:
    claims = _claims(delivery)
    final = not transient or delivery.attempts >= settings.IDP_DELIVERY_MAX_ATTEMPTS
    countdown = backoff(delivery.attempts)
    Delivery.objects.filter(pk=delivery.pk).update(
        state=Delivery.State.FAILED if final else Delivery.State.PENDING, last_error=error[:4000],
        finished_at=timezone.now() if final else None,
        next_attempt_at=None if final else timezone.now() + timedelta(seconds=countdown),
    )
    note = error if final else f"{error} (attempt {delivery.attempts}, retrying in {countdown:g}s)"
    for c in claims:
        if c.delivered_revision < c.revision:
            type(c).objects.filter(pk=c.pk, revision=c.revision).update(status=ClaimStatus.FAILED, status_message=note[:2000])
    if final:
        return f"failed: {error}"
    raise RetryLater(countdown, error)


def redeliver(cell_env: CellEnvironment, actor, reason: str = "redeliver") -> Delivery | None:
    """Deliver again every claim the target does not hold at its current revision (operator retry)."""
    claims = [c for kind in ("mysqlclaims", "replicationclaims", "applications") for c in getattr(cell_env, kind).all()
              if c.delivered_revision < c.revision and c.status not in (ClaimStatus.DELETING, ClaimStatus.DELETED)]
    return enqueue(cell_env, claims, actor, reason)


# -- observed state ----------------------------------------------------------------------

def observe_all(limit: int = 2000) -> int:
    """Read the cluster state of every delivered claim and store it."""
    source = get_status_source()
    count = 0
    for model in CLAIM_MODELS.values():
        claims = (model.objects.filter(delivered_revision=F("revision"), cell_env__decommissioned_at__isnull=True,
                                       status__in=OBSERVABLE)
                  .select_related("cell_env__cell")[:limit])
        count += sum(observe_claim(claim, source) for claim in claims)
    return count


OBSERVABLE = (ClaimStatus.DELIVERED, ClaimStatus.READY, ClaimStatus.FAILED)


def observe_claim(claim, source=None) -> bool:
    """Observe one delivered claim now (the runbook uses this to wait for compute); True if stored."""
    if claim.delivered_revision != claim.revision or claim.status not in OBSERVABLE:
        return False
    source = source or get_status_source()
    obs = source.observe(claim, [ObjectRef.from_dict(r) for r in claim.delivered_refs])
    status = ClaimStatus.READY if obs.ready else ClaimStatus.FAILED if obs.failed else ClaimStatus.DELIVERED
    now = timezone.now()
    fields = {"observed": obs.detail, "observed_at": now, "status": status, "status_message": obs.failed or obs.message}
    model = type(claim)
    if model is ReplicationClaim and obs.lag_seconds is not None:
        fields.update(lag_seconds=obs.lag_seconds, lag_measured_at=obs.lag_measured_at or now)
    # Only if nothing newer arrived meanwhile.
    stored = model.objects.filter(pk=claim.pk, revision=claim.revision, status__in=OBSERVABLE).update(**fields) == 1
    if stored and obs.ready and claim.status != ClaimStatus.READY:
        transaction.on_commit(lambda: signals.claim_ready.send(sender=model, claim=claim))
    endpoint = obs.detail.get("endpoint")
    if stored and model is MySQLClaim and endpoint and endpoint != (claim.observed or {}).get("endpoint"):
        from . import services  # services builds on the pipeline

        services.database_endpoint_changed(claim, endpoint)
    return stored
