"""The provisioning pipeline: outbox → delivery to the target → observed cluster state.

Every function here is called by a Celery task (cells/tasks.py) or by the services in
the request transaction. State lives in rows: a Delivery is taken with a
compare-and-set, a claim's delivered revision only ever grows, and rendering always
uses the claim's current row, so an older revision never overwrites a newer one.

Group commit: the worker that holds the target (the GitOps repository lock) delivers every
row due for it in one change (one commit); each row still records its own outcome.
"""
from __future__ import annotations

import copy
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Case, F, JSONField, Q, Value, When
from django.utils import timezone

from . import manifests, platform, signals
from .audit import record_claim_failure
from .delivery import DeliveryError, ObjectRef, TransientDeliveryError, get_target
from .models import Application, CellEnvironment, ClaimStatus, Delivery, MySQLClaim, ReplicationClaim
from .observers import get_status_source
from .text import one_line

log = logging.getLogger(__name__)

CLAIM_MODELS = {m._meta.model_name: m for m in (MySQLClaim, ReplicationClaim, Application)}
SEND_GRACE = timedelta(seconds=5)  # a pending row unsent for this long is sent again by the dispatcher
GROUP_LIMIT = 500  # deliveries in one group commit at most


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


_held: ContextVar[list[int] | None] = ContextVar("held_deliveries", default=None)


@contextmanager
def holding(into: list[int]):
    """Deliveries enqueued inside are not sent to a worker: their ids go to `into`, for the caller to deliver
    together (deliver_batch: one commit). A caller that dies first leaves pending rows the dispatcher sends."""
    token = _held.set(into)
    try:
        yield into
    finally:
        _held.reset(token)


def is_holding() -> bool:
    return _held.get() is not None


def enqueue(cell_env: CellEnvironment, claims: list, actor, reason: str,
            action: str = Delivery.Action.APPLY) -> Delivery | None:
    """Write the outbox row in the caller's transaction; send it to a worker once that commits (unless held)."""
    if not claims:
        return None
    delivery = Delivery.objects.create(
        cell_env=cell_env, action=action, items=[item(c) for c in claims], actor=actor if getattr(actor, "pk", None) else None,
        reason=reason[:200], target=settings.IDP_DELIVERY_TARGET,
    )
    held = _held.get()
    if held is not None:
        held.append(delivery.pk)
    else:
        transaction.on_commit(lambda: send(delivery.pk))
    return delivery


def send(delivery_id: int, countdown: float | None = None) -> bool:
    """Hand a delivery to the broker (to run in `countdown` s). A broker that is down loses nothing: the row stays pending."""
    from .tasks import deliver

    try:
        deliver.apply_async((delivery_id,), countdown=countdown)
    except Exception as exc:  # noqa: BLE001 - any broker failure; the dispatcher retries
        log.warning("broker unavailable, delivery %s stays in the outbox: %s", delivery_id, exc)
        return False
    Delivery.objects.filter(pk=delivery_id).update(enqueued_at=timezone.now())
    return True


def dispatch() -> int:
    """Send again what no worker has: never sent, lost by the broker, or held by a worker that died."""
    due = Delivery.objects.filter(no_worker_has(Delivery.State.PENDING, Delivery.State.DELIVERING)
                                  ).values_list("pk", flat=True)[:500]
    sent = sum(send(pk) for pk in due)
    if sent:
        log.info("dispatcher re-sent %s delivery(ies)", sent)
    return sent


def no_worker_has(pending: str, working: str) -> Q:
    """The outbox rows to send again (this outbox and the notices' one): pending and never sent (after a grace),
    sent a lease ago and not taken, or due for their retry; or held by a worker silent for a lease."""
    now = timezone.now()
    lease = timedelta(seconds=settings.IDP_DELIVERY_LEASE)
    return (Q(state=pending)
            & (Q(enqueued_at__isnull=True, created_at__lt=now - SEND_GRACE) | Q(enqueued_at__lt=now - lease))
            & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            | Q(state=working, started_at__lt=now - lease))


# -- delivery --------------------------------------------------------------------------

def _take(delivery_id: int) -> bool:
    """Compare-and-set: exactly one worker takes a pending (or stale delivering) row."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.IDP_DELIVERY_LEASE)
    return Delivery.objects.filter(pk=delivery_id).filter(
        Q(state=Delivery.State.PENDING) | Q(state=Delivery.State.DELIVERING, started_at__lt=stale)
    ).update(state=Delivery.State.DELIVERING, started_at=now, attempts=F("attempts") + 1) == 1


def _take_rows(ids: list[int] | None = None, *, target: str | None = None, exclude: list[int] = (),
               limit: int = GROUP_LIMIT) -> list[int]:
    """The same compare-and-set on many rows in one statement (UPDATE … RETURNING): the ids this caller took.

    With `ids`, exactly those rows (pending, or delivering and stale, as `_take`). With `target`, the rows that
    are pending for it and due (their backoff over), or stale, oldest first, at most `limit`; rows another
    transaction holds are skipped (FOR UPDATE SKIP LOCKED), never waited for."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.IDP_DELIVERY_LEASE)
    pending, delivering = Delivery.State.PENDING, Delivery.State.DELIVERING
    if ids is not None:
        if not ids:
            return []
        where = f"(state = %s OR state = %s AND started_at < %s) AND id IN ({', '.join(['%s'] * len(ids))})"
        params = [pending, delivering, stale, *ids]
    else:
        where = ("(state = %s AND (next_attempt_at IS NULL OR next_attempt_at <= %s) OR state = %s AND started_at < %s)"
                 " AND target = %s")
        params = [pending, now, delivering, stale, target]
    if exclude:
        where += f" AND id NOT IN ({', '.join(['%s'] * len(exclude))})"
        params += list(exclude)
    table = connection.ops.quote_name(Delivery._meta.db_table)
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    sql = (f"UPDATE {table} SET state = %s, started_at = %s, attempts = attempts + 1 "
           f"WHERE id IN (SELECT id FROM {table} WHERE {where} ORDER BY id LIMIT %s{lock}) AND {where} RETURNING id")
    with connection.cursor() as cursor:
        cursor.execute(sql, [delivering, now, *params, limit, *params])
        return sorted(row[0] for row in cursor.fetchall())


def _rows(ids: list[int]) -> list[Delivery]:
    return list(Delivery.objects.select_related("cell_env__cell__team", "cell_env__placement", "actor")
                .filter(pk__in=ids).order_by("pk"))


class _GroupRows:
    """The current rows of every claim a group names, read in a few queries (not one per item), while the target
    is held; each delivery gets its own copies. MySQL claims: all of the group's cell environments (replication
    claims render both ends)."""

    def __init__(self, group: list[Delivery]):
        wanted = defaultdict(set)
        for delivery in group:
            for it in delivery.items:
                if it.get("type") in CLAIM_MODELS:
                    wanted[it["type"]].add(it["id"])
        mysql = MySQLClaim.objects.filter(Q(cell_env_id__in={d.cell_env_id for d in group})
                                          | Q(pk__in=wanted.pop(MySQLClaim._meta.model_name, set())))
        self.rows = {(MySQLClaim._meta.model_name, c.pk): c for c in mysql}
        self.mysql = defaultdict(dict)
        for c in self.rows.values():
            self.mysql[c.cell_env_id][c.pk] = c
        for name, pks in wanted.items():
            self.rows.update(((name, obj.pk), obj) for obj in CLAIM_MODELS[name].objects.filter(pk__in=pks))

    def claims(self, delivery: Delivery) -> list:
        return [copy.copy(self.rows[key]) for key in ((it.get("type"), it.get("id")) for it in delivery.items)
                if key in self.rows]


def _claims(delivery: Delivery, rows: _GroupRows | None = None) -> list:
    if rows is not None:
        return rows.claims(delivery)
    out = []
    for it in delivery.items:
        model = CLAIM_MODELS.get(it["type"])
        obj = model.objects.filter(pk=it["id"]).first() if model else None
        if obj is not None:
            out.append(obj)
    return out


def _render(ce: CellEnvironment, claim, mysql: dict | None = None) -> list[dict]:
    if isinstance(claim, MySQLClaim):
        return manifests.render_mysql(ce, claim)
    if isinstance(claim, ReplicationClaim):
        return manifests.render_replication(ce, claim, mysql if mysql is not None else {c.pk: c for c in ce.mysqlclaims.all()})
    return manifests.render_application(ce, claim)


def _message(delivery: Delivery, verb: str, claims: list) -> str:
    """The commit message: a subject, then trailers. Free text (the reason holds an operator's note) is folded
    onto the subject line, so it can never start a line of its own and pass for a trailer (Signed-off-by: …)."""
    ce = delivery.cell_env
    actor = one_line(delivery.actor.username) if delivery.actor_id else "system"
    lines = [f"{ce.cell.name}/{ce.environment}: {verb} {len(claims)} claim(s) — {one_line(delivery.reason)}", "",
             f"Cell: {ce.cell.name}", f"Environment: {ce.environment}", f"Requested-by: {actor}",
             f"Delivery: {delivery.pk}", "Claims:"]
    lines += [f"  {c.name} revision {c.revision}" for c in claims]
    return "\n".join(lines)


def _group_message(group: list["_Staged"]) -> str:
    """One delivery: its own message. Several: a subject that counts them, one line per delivery (its free text
    folded onto that line), and one `Delivery:` trailer per delivery, one line each, that holds no free text."""
    if len(group) == 1:
        return _message(group[0].delivery, group[0].verb, group[0].claims)
    claims = sum(len(s.claims) for s in group)
    cell_envs = len({s.delivery.cell_env_id for s in group})
    lines = [f"group commit: {len(group)} deliveries, {claims} claim(s) in {cell_envs} cell environment(s)", ""]
    trailers = []
    for staged in group:
        d, ce = staged.delivery, staged.delivery.cell_env
        actor = one_line(d.actor.username) if d.actor_id else "system"
        where = f"{ce.cell.name}/{ce.environment}"
        lines.append(f"{where}: {staged.verb} {len(staged.claims)} claim(s) — {one_line(d.reason)}")
        names = ",".join(f"{one_line(c.name)}@{c.revision}" for c in staged.claims)
        trailers.append(f"Delivery: {d.pk} {where} {staged.verb} requested-by={actor} claims={names}")
    return "\n".join([*lines, "", *trailers])


@dataclass(frozen=True)
class Outcome:
    """What became of one row of a group: done, failed, or pending again (retry in `retry_in` s)."""
    state: str
    detail: str
    retry_in: float | None = None


@dataclass
class _Staged:
    """One delivery of a group, staged on the target; recorded once the group's commit is made."""
    delivery: Delivery
    verb: str                                          # apply | delete
    claims: list                                       # delete: the claims it names; apply: those it delivers
    delivered: list = field(default_factory=list)      # apply: [(claim, refs)] the target holds once committed
    results: list = field(default_factory=list)        # the target's Results; none: nothing was staged


def deliver(delivery_id: int) -> str:
    """Deliver one outbox row and, in the same commit, every other row due for the same target (group commit).
    Idempotent; raises RetryLater for a transient target error of this row (the others are sent again)."""
    if not _take(delivery_id):
        return "not taken: done, failed, or held by another worker"
    _, outcomes = _deliver_group([delivery_id], sweep=True)
    own = outcomes.pop(delivery_id)
    _send_retries(outcomes)
    if own.retry_in is not None:
        raise RetryLater(own.retry_in, own.detail)
    return own.detail


def deliver_batch(delivery_ids: list[int]) -> dict:
    """Deliver exactly these rows together, in one commit (an evacuation's wave); other pending rows stay pending.
    A row already done, failed or held by another worker is left alone (`notTaken`). Never raises for a target
    error: each row records its own outcome, and one that failed transiently is sent again after its backoff."""
    requested = sorted(set(delivery_ids))
    taken = _take_rows(requested)
    commit, outcomes = _deliver_group(taken, sweep=False) if taken else (None, {})
    _send_retries(outcomes)
    return {
        "commit": commit,
        "delivered": [pk for pk, o in outcomes.items() if o.state == Delivery.State.DONE],
        "failed": [pk for pk, o in outcomes.items() if o.state == Delivery.State.FAILED],
        "retrying": [pk for pk, o in outcomes.items() if o.state == Delivery.State.PENDING],
        "notTaken": [pk for pk in requested if pk not in outcomes],
        "results": {pk: {"state": o.state, "detail": o.detail} for pk, o in outcomes.items()},
    }


def _send_retries(outcomes: dict[int, Outcome]) -> None:
    """Rows of a group that failed transiently: no task of theirs may be left (it found them taken and exited)."""
    for pk, outcome in outcomes.items():
        if outcome.retry_in is not None:
            transaction.on_commit(partial(send, pk, countdown=outcome.retry_in))


def _deliver_group(ids: list[int], sweep: bool) -> tuple[str | None, dict[int, Outcome]]:
    """Deliver the rows `ids` (taken by the caller) as one change of the target; with `sweep`, also every other
    row due for the target, taken while holding it. Rows are staged in id order, as if delivered one by one;
    a row that fails to stage fails alone. Returns the commit (None: none made) and each row's outcome."""
    target = get_target()
    group = _rows(ids)
    outcomes: dict[int, Outcome] = {}
    staged: list[_Staged] = []
    committed: list[_Staged] = []
    commit = None
    try:
        with target.batch() as batch:
            if sweep:
                more = _take_rows(target=target.name, exclude=ids, limit=max(0, GROUP_LIMIT - len(ids)))
                group = sorted(group + _rows(more), key=lambda d: d.pk)
            rows = _GroupRows(group)
            plans = []
            for delivery in group:
                try:
                    plans.append(_plan(delivery, rows))
                except Exception as exc:  # noqa: BLE001 - a bad row must not sink the others
                    outcomes[delivery.pk] = _failed(delivery, exc)
            _set_status(ClaimStatus.DELIVERING, [c for p in plans if p.verb == "apply" for c in p.claims])
            for plan in plans:
                try:
                    _stage(plan, batch, target, rows)
                except Exception as exc:  # noqa: BLE001 - a bad row must not sink the others
                    outcomes[plan.delivery.pk] = _failed(plan.delivery, exc)
                else:
                    staged.append(plan)
            committed = [s for s in staged if s.results]
            if committed:
                commit = batch.commit(_group_message(committed))
    except Exception as exc:  # noqa: BLE001 - the target failed (lock, clone, fetch, commit, push): so did its rows
        nothing_to_do = {s.delivery.pk for s in staged if not s.results}
        for delivery in group:
            if delivery.pk not in outcomes and delivery.pk not in nothing_to_do:
                outcomes[delivery.pk] = _failed(delivery, exc)
        staged = [s for s in staged if s.delivery.pk in nothing_to_do]
    if len(committed) > 1 and commit:
        log.info("group commit %s: %s deliveries", commit[:12], len(committed))
    outcomes.update(_record_done([s for s in staged if s.delivery.pk not in outcomes], commit, len(committed),
                                 target.name))
    return commit, outcomes


def _plan(delivery: Delivery, rows: _GroupRows) -> _Staged:
    """What a delivery has to do: the claims to remove, or those the target does not hold at their revision."""
    claims = _claims(delivery, rows)
    if delivery.action == Delivery.Action.DELETE:
        return _Staged(delivery, "delete", claims)
    todo = [c for c in claims if c.delivered_revision < c.revision and c.status not in (ClaimStatus.DELETING, ClaimStatus.DELETED)]
    return _Staged(delivery, "apply", todo)


def _stage(plan: _Staged, batch, target, rows: _GroupRows) -> None:
    """Stage one delivery's objects in the group's batch: all of them, or (it raises) none."""
    if plan.verb == "delete":
        plan.results = [batch.delete([ObjectRef.from_dict(r) for c in plan.claims for r in c.delivered_refs])]
        return
    if not plan.claims:
        return
    ce = plan.delivery.cell_env
    rendered = [(c, _render(ce, c, rows.mysql[ce.pk])) for c in plan.claims]
    objects = _with_platform_package([o for _, objs in rendered for o in objs], target)
    delivered, moved = [], []
    for c, objs in rendered:
        refs = [ObjectRef.of(o).as_dict() for o in objs]
        # Objects a re-place moved to another cluster: remove the old copies (in the same commit).
        moved += [ObjectRef.from_dict(r) for r in c.delivered_refs if r not in refs]
        delivered.append((c, refs))
    results = [batch.apply(objects, revision=max(c.revision for c in plan.claims))]
    if moved:
        results.append(batch.delete(moved))
    plan.delivered, plan.results = delivered, results


def _set_status(status: str, claims: list) -> None:
    """`status` for each claim still at the revision read (one UPDATE per kind of claim); never a removed one."""
    by_model = defaultdict(dict)
    for c in claims:
        by_model[type(c)][(c.pk, c.revision)] = c
    for model, keyed in by_model.items():
        keys = list(keyed)
        for i in range(0, len(keys), 200):
            match = Q()
            for pk, revision in keys[i:i + 200]:
                match |= Q(pk=pk, revision=revision)
            model.objects.filter(match).exclude(status__in=(ClaimStatus.DELETING, ClaimStatus.DELETED)).update(
                status=status, status_message="")


def _record_done(done: list[_Staged], commit: str | None, group_size: int, target_name: str) -> dict[int, Outcome]:
    """The group's change is made: record each row's part of it (its claims, its result naming the commit), in one
    transaction and a few statements. A claim's delivered revision only grows."""
    if not done:
        return {}
    now = timezone.now()
    outcomes, removed = {}, defaultdict(set)
    handed: dict[tuple, tuple] = {}  # (model, pk) -> (claim, refs) at the highest revision delivered
    for s in done:
        if not s.results:
            detail = "nothing to deliver: the target already holds the current revisions"
        else:
            detail = "; ".join(r.detail for r in s.results)
            if commit and any(r.changed for r in s.results):
                together = f" (group commit of {group_size} deliveries)" if group_size > 1 else ""
                detail = f"commit {commit[:12]}: {detail}{together}"
        outcomes[s.delivery.pk] = Outcome(Delivery.State.DONE, detail)
        if s.verb == "delete":
            for c in s.claims:
                removed[type(c)].add(c.pk)
        for c, refs in s.delivered:
            key = (type(c), c.pk)
            if key not in handed or handed[key][0].revision < c.revision:
                handed[key] = (c, refs)
    with transaction.atomic():
        for model, pks in removed.items():
            model.objects.filter(pk__in=pks, status=ClaimStatus.DELETING).update(
                status=ClaimStatus.DELETED, status_message="removed from the delivery target", delivered_refs=[])
        by_model = defaultdict(list)
        for (model, _), (c, refs) in handed.items():
            by_model[model].append((c, refs))
        for model, items in by_model.items():
            revision, refs_field = model._meta.get_field("delivered_revision"), model._meta.get_field("delivered_refs")
            for i in range(0, len(items), 200):
                chunk = items[i:i + 200]
                # Claims delivered at the same revision share one condition and one WHEN (a group's claims mostly
                # do): far less SQL to build than one per claim. Their refs differ: one WHEN per claim.
                by_revision = defaultdict(list)
                for c, _ in chunk:
                    by_revision[c.revision].append(c.pk)
                match = Q()
                for rev, pks in by_revision.items():
                    match |= Q(pk__in=pks, delivered_revision__lt=rev)
                model.objects.filter(match).update(
                    delivered_at=now,
                    delivered_revision=Case(*(When(pk__in=pks, then=Value(rev)) for rev, pks in by_revision.items()),
                                            output_field=revision),
                    delivered_refs=Case(*(When(pk=c.pk, then=Value(refs, output_field=JSONField())) for c, refs in chunk),
                                        output_field=refs_field))
        _set_status(ClaimStatus.DELIVERED, [c for s in done for c, _ in s.delivered])
        # One UPDATE for the group's rows; their results mostly share one text, so one WHEN per distinct text
        # (bulk_update would build a CASE per field and row).
        by_detail = defaultdict(list)
        for pk, outcome in outcomes.items():
            by_detail[outcome.detail].append(pk)
        Delivery.objects.filter(pk__in=list(outcomes)).update(
            state=Delivery.State.DONE, finished_at=now, last_error="", target=target_name,
            result=Case(*(When(pk__in=pks, then=Value(detail)) for detail, pks in by_detail.items()),
                        output_field=Delivery._meta.get_field("result")))
    return outcomes


def _failed(delivery: Delivery, exc: Exception) -> Outcome:
    if isinstance(exc, (TransientDeliveryError, OperationalError)):  # a busy database is worth a retry too
        error, transient = str(exc), True
    else:  # a render or target bug must not leave the row taken
        log.error("delivery %s failed", delivery.pk, exc_info=exc)
        error, transient = (str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"), False
    try:
        return Outcome(Delivery.State.FAILED, _attempt_failed(delivery, error, transient))
    except RetryLater as retry:
        return Outcome(Delivery.State.PENDING, error, retry.countdown)


def _with_platform_package(objects: list[dict], target) -> list[dict]:
    """Our composite resources need the platform package on their cluster: deliver it with them to a cluster that
    does not hold this package revision yet, unless the platform team installs it (IDP_PLATFORM_PACKAGE=external)."""
    if settings.IDP_PLATFORM_PACKAGE != "deliver":
        return objects
    sites = sorted({(r.cluster, r.cloud) for r in map(ObjectRef.of, objects) if r.api_version.startswith(platform.API_GROUP)})
    missing = [(cluster, cloud) for cluster, cloud in sites if not platform.installed(target, cluster, cloud)]
    return [o for cluster, cloud in missing for o in platform.for_cluster(cluster, cloud)] + objects


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
            if final:  # the delivery gave up on it
                record_claim_failure(type(c), c, error)
                transaction.on_commit(partial(signals.claim_failed.send_robust, sender=type(c), claim=c, message=error))
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
    if stored and status == ClaimStatus.FAILED and claim.status != ClaimStatus.FAILED:
        record_claim_failure(model, claim, fields["status_message"])
        transaction.on_commit(partial(signals.claim_failed.send_robust, sender=model, claim=claim, message=fields["status_message"]))
    if stored and "lag_seconds" in fields:
        transaction.on_commit(partial(signals.replication_lag_measured.send_robust, sender=model, claim=claim,
                                      lag_seconds=fields["lag_seconds"]))
    endpoint = obs.detail.get("endpoint")
    if stored and model is MySQLClaim and endpoint and endpoint != (claim.observed or {}).get("endpoint"):
        from . import services  # services builds on the pipeline

        services.database_endpoint_changed(claim, endpoint)
    return stored
