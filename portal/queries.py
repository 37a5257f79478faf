"""Read-only queries of the portal pages. Nothing here changes state: changes go through cells.services.

Every list is loaded with a fixed number of queries (select_related / prefetch_related /
one merged query per source), whatever the number of rows. Access rules come from
cells.access only.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Paginator
from django.urls import reverse
from django.db.models import Case, CharField, Count, Exists, F, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact

from cells import access
from cells.models import (Application, AuditEvent, Cell, CellEnvironment, ClaimStatus, Delivery, MySQLClaim,
                          ReplicationClaim)
from dr import lag as lag_history
from dr import readiness
from dr import services as dr_services
from dr.models import FailoverRun, FailoverStep
from policy.loader import Policy
from policy.models import PolicyVersion
from scheduler.models import PlacementDecision

from .health import (IN_PROGRESS, Health, claim_health, claims_health, duration, lag_health, readiness_health,
                     traffic_health)
from .runs import RunRow, run_row, step_lines

HOME_PAGE_SIZE = 100
CLAIM_KINDS = (MySQLClaim, ReplicationClaim, Application)


# -- cells a user may request for -----------------------------------------------------

def requestable_cells(user, policy: Policy) -> list[Cell]:
    """The user's registered cells that the active policy knows (operators: all), by name."""
    return [c for c in access.visible_cells(user).filter(registered=True) if c.name in policy.spec.cells]


def existing_request_values(cell: str, environment: str) -> dict | None:
    """What a placed cell environment was requested with, to prefill a form (requests keep its tier)."""
    ce = (CellEnvironment.objects.filter(cell__name=cell, environment=environment, decommissioned_at__isnull=True)
          .prefetch_related("mysqlclaims", "applications").first())
    if ce is None:
        return None
    values = {"tier": ce.tier, "drProfile": ce.dr_profile}
    mysql = next(iter(ce.mysqlclaims.all()), None)
    if mysql is not None:
        values.update(size=mysql.size, storageGB=mysql.storage_gb, ha=mysql.ha)
    app = next((a for a in ce.applications.all() if a.side == "primary"), None)
    if app is not None:
        values.update(image=app.image, publicHost=app.public_host, trafficMode=app.traffic_mode)
    return values


# -- home -----------------------------------------------------------------------------

def _any_claim(**where) -> Q:
    """True when any claim of the cell environment (of any kind) matches `where`."""
    q = Q()
    for model in CLAIM_KINDS:
        q |= Q(Exists(model.objects.filter(cell_env=OuterRef("pk"), **where)))
    return q


ATTENTION = "attention"
PROGRESS = "progress"
HOME_FILTERS = {
    "": "All",
    ATTENTION: "Needs attention",
    PROGRESS: "In progress",
}


def _attention() -> Q:
    # A failed claim, replication lag above the RPO the replication was set up with, or a failing DR readiness (its
    # latest evaluation: a subquery on the (cell_env, evaluated_at) index, no extra round trip).
    lag = Q(Exists(ReplicationClaim.objects.filter(cell_env=OuterRef("pk"), lag_seconds__gt=F("expected_rpo_seconds"))))
    failing = Q(Exact(readiness.latest_subquery("state"), readiness.FAILING))
    return _any_claim(status=ClaimStatus.FAILED) | lag | failing


@dataclass
class HomeRow:
    ce: CellEnvironment
    data: Health
    compute: Health
    traffic: Health
    lag: Health
    rpo_seconds: int | None
    last_run: RunRow | None = None
    readiness: Health | None = None  # the latest evaluation's score and state
    sparkline: list | None = None  # the last hour's lag, max per 5 minutes (dr.lag.sparklines)

    @property
    def decommissioned(self) -> bool:
        return self.ce.decommissioned_at is not None


def rpo_seconds(policy: Policy, dr_profile: str, fallback: int | None = None) -> int | None:
    profile = policy.spec.dr_profiles.get(dr_profile)
    return profile.rpo_seconds if profile is not None else fallback


class ClaimState(NamedTuple):
    """What the home page needs of a claim: lighter than a model instance (a page has hundreds)."""

    cell_env_id: int
    side: str  # a replication's: the side it replicates from
    status: str
    lag_seconds: float | None = None
    expected_rpo_seconds: int | None = None


def _claim_states(env_ids: list[int]) -> dict[int, dict[str, list[ClaimState]]]:
    """The claims of these cell environments by kind, no model instances: two queries (MySQL claims and
    applications share one, a UNION ALL: they have the same shape)."""
    out: dict[int, dict[str, list[ClaimState]]] = {i: {"mysql": [], "replication": [], "apps": []} for i in env_ids}

    def sided(model, kind: str):
        return (model.objects.filter(cell_env_id__in=env_ids).annotate(kind=Value(kind, output_field=CharField()))
                .values_list("cell_env_id", "side", "status", "kind"))

    for env_id, side, status, kind in sided(MySQLClaim, "mysql").union(sided(Application, "apps"), all=True):
        out[env_id][kind].append(ClaimState(env_id, side, status))
    for env_id, source_side, status, lag, rpo in (ReplicationClaim.objects.filter(cell_env_id__in=env_ids).values_list(
            "cell_env_id", "source__side", "status", "lag_seconds", "expected_rpo_seconds")):
        out[env_id]["replication"].append(ClaimState(env_id, source_side, status, lag, rpo))  # side: the source's
    return out


def home_row(ce: CellEnvironment, policy: Policy, mysql: list, replication: list, apps: list) -> HomeRow:
    """Health of one cell environment from its claims, already loaded (no query)."""
    repl = replication
    r = repl[0] if repl else None
    rpo = rpo_seconds(policy, ce.dr_profile, r.expected_rpo_seconds if r else None)
    if ce.decommissioned_at is not None:
        gone = Health("removed", "decommissioned", "idle")
        return HomeRow(ce, claims_health(mysql + repl) if mysql else gone, claims_health(apps) if apps else gone,
                       gone, Health("none", "—", "idle"), rpo)
    if r is None:
        lag = Health("none", "no replication", "idle", f"RPO {duration(rpo)}" if rpo else "")
    elif ce.replication_stopped(r.side):
        lag = Health("progress", "replication stopped", "warn", "until a failback")
    else:
        lag = lag_health(r.lag_seconds, rpo)
    return HomeRow(ce, claims_health(mysql + repl), claims_health(apps), traffic_health(ce.active_side, apps), lag, rpo)


def home(user, policy: Policy, *, q: str = "", show: str = "", page: int | str = 1) -> dict:
    """The user's visible cell environments, one page of rows with their health, and a summary over all."""
    visible = access.visible_environments(user)
    summary = visible.aggregate(
        total=Count("pk"),
        attention=Count("pk", filter=_attention() & Q(decommissioned_at__isnull=True)),
        progress=Count("pk", filter=_any_claim(status__in=IN_PROGRESS)),
    )
    qs = visible
    if q:
        qs = qs.filter(Q(cell__name__icontains=q) | Q(cell__team__slug__icontains=q) | Q(environment__icontains=q))
    if show == ATTENTION:
        qs = qs.filter(_attention(), decommissioned_at__isnull=True)
    elif show == PROGRESS:
        qs = qs.filter(_any_claim(status__in=IN_PROGRESS))
    # Attention first (a failed claim, lag above the RPO, failing readiness), then what is in progress, the rest,
    # decommissioned last.
    qs = qs.annotate(rank=Case(
        When(Q(decommissioned_at__isnull=False), then=Value(3)),
        When(_attention(), then=Value(0)),
        When(_any_claim(status__in=IN_PROGRESS), then=Value(1)),
        default=Value(2))).order_by("rank", "cell__name", "environment")
    qs = qs.defer("placement__explanation", "placement__request").annotate(
        readiness_score=readiness.latest_subquery("score"), readiness_state=readiness.latest_subquery("state"))
    filtered = q or show
    paginator = Paginator(qs, HOME_PAGE_SIZE)
    if not filtered:
        paginator.count = summary["total"]  # already counted: saves a query
    page_obj = paginator.get_page(page)
    envs = list(page_obj.object_list)
    claims = _claim_states([ce.pk for ce in envs])
    runs = last_runs([ce.pk for ce in envs])
    rows = [home_row(ce, policy, **claims[ce.pk]) for ce in envs]
    sparklines = lag_history.sparklines([ce.pk for ce in envs])  # one query for the page
    for row in rows:
        row.last_run = runs.get(row.ce.pk)
        row.readiness = readiness_health(row.ce.readiness_score, row.ce.readiness_state)
        row.sparkline = sparklines.get(row.ce.pk)
    unplaced = (access.visible_cells(user).filter(registered=True)
                .exclude(Exists(CellEnvironment.objects.filter(cell=OuterRef("pk")))))
    return {"rows": rows, "page": page_obj, "summary": summary, "unplaced_cells": list(unplaced[:50]),
            "filtered": bool(filtered), "version": _version(summary, rows)}


def _version(summary: dict, rows: list[HomeRow]) -> str:
    """A fingerprint of what the page shows: the live poll swaps the table only when it changed."""
    seen = [summary] + [(r.ce.pk, r.ce.active_side, r.ce.decommissioned_at is not None, r.data, r.compute, r.traffic,
                         r.lag, r.last_run and (r.last_run.run.pk, r.last_run.run.state), r.readiness, r.sparkline)
                        for r in rows]
    return hashlib.sha256(repr(seen).encode()).hexdigest()[:16]


def last_runs(env_ids: list[int]) -> dict[int, RunRow]:
    """The newest failover run of each of these cell environments, in one query."""
    newest = FailoverRun.objects.filter(cell_env=OuterRef("cell_env")).order_by("-requested_at", "-id").values("pk")[:1]
    runs = (FailoverRun.objects.filter(cell_env_id__in=env_ids, pk=Subquery(newest))
            .only("pk", "cell_env_id", "type", "simulates", "state", "requested_at", "finished_at", "rto_seconds",
                  "rto_target_seconds", "data_loss_seconds", "rpo_target_seconds"))
    return {r.cell_env_id: run_row(r) for r in runs} if env_ids else {}


# -- cell page --------------------------------------------------------------------------

@dataclass
class ClaimRow:
    kind: str
    claim: object
    health: Health
    where: str = ""
    detail: str = ""
    observed: list[tuple[str, str]] = field(default_factory=list)
    next_steps: list[tuple[str, str, str]] = field(default_factory=list)  # a failed claim: (what to do, link, its text)

    @property
    def behind(self) -> bool:
        return self.claim.delivered_revision < self.claim.revision


def _observed(obs: dict) -> list[tuple[str, str]]:
    """The observed cluster state as short key/value pairs a person can read."""
    out = []
    for cond in obs.get("conditions") or []:
        out.append((cond.get("type", "?"), f"{cond.get('status', '?')}{' · ' + cond['reason'] if cond.get('reason') else ''}"))
    for key in ("health", "sync", "runningReplicas", "declaredReplicas", "lagSeconds", "endpoint", "composition",
                "found", "reachable"):
        if key in obs:
            out.append((key, str(obs[key])))
    if obs.get("simulator"):
        out.append(("source", "simulator"))
    return out


def load_claims(ce: CellEnvironment) -> dict:
    """The claims of a cell environment, each kind loaded once (and cached on `ce` for the manifests)."""
    from django.db.models import prefetch_related_objects

    prefetch_related_objects([ce], "mysqlclaims", "replicationclaims", "applications")
    by_side = lambda rows: {r.side: r for r in rows}  # noqa: E731
    mysql, apps = by_side(ce.mysqlclaims.all()), by_side(ce.applications.all())
    repl = next(iter(ce.replicationclaims.all()), None)
    return {"mysql": mysql, "replication": repl, "apps": apps}


def cell_summary(ce: CellEnvironment, policy: Policy, claims: dict) -> HomeRow:
    """The same health the home page shows, from the claims of load_claims()."""
    r = claims["replication"]
    source_side = next((side for side, c in claims["mysql"].items() if r is not None and c.pk == r.source_id), "")
    repl = [ClaimState(ce.pk, source_side, r.status, r.lag_seconds, r.expected_rpo_seconds)] if r is not None else []
    return home_row(ce, policy, list(claims["mysql"].values()), repl, list(claims["apps"].values()))


def claim_rows(claims: dict, ce: CellEnvironment | None = None) -> list[ClaimRow]:
    rows = _claim_rows(claims)
    if ce is not None:
        for row in rows:
            if row.claim.status == ClaimStatus.FAILED:
                row.next_steps = next_steps(row, ce)
    return rows


def next_steps(row: ClaimRow, ce: CellEnvironment) -> list[tuple[str, str, str]]:
    """What the owner of a failed claim can do about it, most likely first: (sentence, link, link text)."""
    cell, env = ce.cell.name, ce.environment
    form = "request-mysql" if row.kind in ("MySQL", "Replication") else "request-app"
    change = f"{reverse(form)}?cell={cell}&environment={env}"
    if row.behind:  # never reached the cluster at this revision: the delivery gave up
        return [("The delivery gave up: read its error under Deliveries, then press Retry delivery once the cause "
                 "(the GitOps remote, the cluster's API) is fixed.", "#deliveries", "Deliveries"),
                ("Still failing? An operator reads the delivery target's error in the audit log.", "", "")]
    if row.kind == "MySQL":
        return [("The cloud's controller refused the database: read the message beside it. A size, storage or "
                 "high-availability change makes a new revision: change it in the request form and submit.", change, "Open the MySQL form"),
                ("If the region cannot host it (quota, capacity, a shape it lacks), an operator re-places the cell.", "#replace", "Re-place")]
    if row.kind == "Replication":
        return [("The replication starts once both databases are ready: fix a failed database first.", "#claims", "Claims"),
                ("If both are ready, an operator checks the replication tool's deployment and credentials named in "
                 "the message.", "", "")]
    return [("Argo CD could not run the application: check that the image exists and that the cluster can pull "
             "it, then submit the app form with the fixed image.", change, "Open the app form"),
            ("Its pods' events are in the cluster's Argo CD under the application's name.", "", "")]


def _claim_rows(claims: dict) -> list[ClaimRow]:
    rows = []
    for side in ("primary", "secondary"):
        c = claims["mysql"].get(side)
        if c is not None:
            rows.append(ClaimRow("MySQL", c, claim_health(c), f"{c.cloud} · {c.region} · {c.cluster}",
                                 f"{c.size}, {c.storage_gb} GB{', HA' if c.ha else ''}", _observed(c.observed)))
    r = claims["replication"]
    if r is not None:
        src, dst = claims["mysql"].get("primary"), claims["mysql"].get("secondary")
        rows.append(ClaimRow("Replication", r, claim_health(r), f"{src.cloud if src else '?'} → {dst.cloud if dst else '?'}",
                             f"{r.tool}, expected RPO {duration(r.expected_rpo_seconds)}", _observed(r.observed)))
    for side in ("primary", "secondary"):
        a = claims["apps"].get(side)
        if a is not None:
            rows.append(ClaimRow("Application", a, claim_health(a), f"{a.cloud} · {a.region} · {a.cluster}",
                                 f"{a.compute_mode}, {a.replicas} replica{'s' if a.replicas != 1 else ''}, {a.image}",
                                 _observed(a.observed)))
    return rows


def deliveries(ce: CellEnvironment, limit: int = 10) -> list[Delivery]:
    """The cell environment's last outbox rows, newest first."""
    return list(ce.deliveries.select_related("actor").order_by("-created_at", "-id")[:limit])


def in_progress(claims: dict, deliveries: list[Delivery]) -> bool:
    """Something is still moving: a claim pending/delivering/delivered-not-ready/deleting, or a delivery not finished."""
    rows = [*claims["mysql"].values(), *claims["apps"].values()]
    if claims["replication"] is not None:
        rows.append(claims["replication"])
    return (any(c.status in IN_PROGRESS for c in rows)
            or any(d.state in (Delivery.State.PENDING, Delivery.State.DELIVERING) for d in deliveries))


def delivery_failed(claims: dict, deliveries: list[Delivery]) -> bool:
    """A failure the user can retry: a failed delivery, or a claim the target does not hold at its revision."""
    rows = [*claims["mysql"].values(), *claims["apps"].values(), *filter(None, [claims["replication"]])]
    return (any(c.status == ClaimStatus.FAILED and c.delivered_revision < c.revision for c in rows)
            or bool(deliveries and deliveries[0].state == Delivery.State.FAILED))


def decisions(ce: CellEnvironment, limit: int = 10) -> list[PlacementDecision]:
    return list(PlacementDecision.objects.filter(cell=ce.cell.name, environment=ce.environment)
                .defer("explanation", "request").select_related("actor")[:limit])


# -- failover runs -------------------------------------------------------------------------

def cell_runs(ce: CellEnvironment, limit: int = 5) -> list[RunRow]:
    """The cell environment's last runs, newest first."""
    return [run_row(r) for r in ce.failover_runs.select_related("requested_by").order_by("-requested_at", "-id")[:limit]]


RUNS_PAGE_SIZE = 50


def runs_page(user, page: int | str = 1, cell: str = "") -> dict:
    """The runs the user may see (dr.services.visible_runs), newest first, one page."""
    qs = dr_services.visible_runs(user).order_by("-requested_at", "-id")
    if cell:
        qs = qs.filter(cell_env__cell__name=cell)
    page_obj = Paginator(qs, RUNS_PAGE_SIZE).get_page(page)
    return {"page": page_obj, "runs": [run_row(r) for r in page_obj.object_list]}


# -- history and audit ---------------------------------------------------------------------

@dataclass
class HistoryRow:
    at: datetime
    actor: str
    kind: str  # "event" (a domain event) or "change" (a field diff from django-auditlog)
    action: str
    subject: str
    message: str
    url: str = ""  # where the subject is shown (a failover run's page)


VERBS = {LogEntry.Action.CREATE: "create", LogEntry.Action.UPDATE: "update", LogEntry.Action.DELETE: "delete",
         getattr(LogEntry.Action, "ACCESS", 3): "access"}


def _event_row(e: AuditEvent) -> HistoryRow:
    subject = f"{e.cell}/{e.environment}" if e.cell else ""
    return HistoryRow(e.created_at, e.actor.username if e.actor_id else "system", "event", e.action, subject, e.message)


def _meaningful(value) -> bool:
    """Leave out empty values and auditlog's text for reverse relations (`cells.Delivery.None`)."""
    text = "" if value is None else str(value)
    return text not in ("", "None", "[]", "{}") and not text.endswith(".None")


NOISE_FIELDS = {"id", "created_at", "updated_at", "delivered_at", "observed_at", "delivered_refs"}


def _change_row(entry: LogEntry) -> HistoryRow:
    changes = {k: v for k, v in (entry.changes_dict or {}).items() if k not in NOISE_FIELDS
               and not (isinstance(v, list) and len(v) == 2 and not _meaningful(v[1]) and not _meaningful(v[0]))}
    if entry.action == LogEntry.Action.CREATE:
        changes = {k: v for k, v in changes.items() if isinstance(v, list) and len(v) == 2 and _meaningful(v[1])}
    shown = list(changes.items())[:6]
    if entry.action == LogEntry.Action.CREATE:
        text = "created: " + ", ".join(f"{k}={_short(v[1], 40)}" for k, v in shown)
    else:
        text = "; ".join(f"{k}: {_short(v[0])} → {_short(v[1])}" if isinstance(v, list) and len(v) == 2 else f"{k}: {_short(v)}"
                         for k, v in shown)
    if len(changes) > len(shown):
        text += f"; and {len(changes) - len(shown)} more field(s)"
    model = entry.content_type.model if entry.content_type_id else "object"
    return HistoryRow(entry.timestamp, entry.actor.username if entry.actor_id else "system", "change",
                      f"change.{model}.{VERBS.get(entry.action, entry.action)}", entry.object_repr, text)


def _step_row(step: FailoverStep) -> HistoryRow:
    run = step.run
    ce = run.cell_env
    actor = run.requested_by.username if run.requested_by_id else "schedule"
    text = f"run #{run.pk} ({run.type}{' of a ' + run.simulates if run.simulates else ''}): {step.title}"
    summary = step_lines(step, ce)[:2]
    if summary:
        text += " — " + "; ".join(f"{label}: {value}" for label, value in summary)
    if step.attempts > 1:
        text += f" — {step.attempts} attempts"
    if step.error:
        text += f" — error: {step.error}"
    return HistoryRow(step.at, actor, "step", f"step {step.name} {step.state}", f"{ce.cell.name}/{ce.environment}", text,
                      url=f"/runs/{run.pk}/#step-{step.index}")


def _short(value, limit: int = 60) -> str:
    text = "—" if value in (None, "", "None") else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _content_types() -> dict:
    return ContentType.objects.get_for_models(Cell, CellEnvironment, MySQLClaim, ReplicationClaim, Application)


def _objects_q(cts: dict, ce_ids, claim_ids: dict, cell_ids=None) -> Q:
    """Log entries of these objects; ids are lists or values_list subqueries."""
    q = Q(content_type=cts[CellEnvironment], object_id__in=ce_ids)
    for model, ids in claim_ids.items():
        q |= Q(content_type=cts[model], object_id__in=ids)
    if cell_ids is not None:
        q |= Q(content_type=cts[Cell], object_id__in=cell_ids)
    return q


def cell_history(ce: CellEnvironment, claims: dict, limit: int = 50) -> list[HistoryRow]:
    """Domain events and field changes of this cell environment and its claims, newest first."""
    events = AuditEvent.objects.filter(cell=ce.cell.name, environment=ce.environment).select_related("actor")[:limit]
    claim_ids = {MySQLClaim: [c.pk for c in claims["mysql"].values()], Application: [a.pk for a in claims["apps"].values()],
                 ReplicationClaim: [claims["replication"].pk] if claims["replication"] else []}
    changes = (LogEntry.objects.filter(_objects_q(_content_types(), [ce.pk], claim_ids))
               .select_related("actor", "content_type").order_by("-timestamp", "-pk")[:limit])
    rows = [_event_row(e) for e in events] + [_change_row(c) for c in changes]
    return sorted(rows, key=lambda r: r.at, reverse=True)[:limit]


AUDIT_PAGE_SIZE = 50
CHANGE_VERBS = {"create": LogEntry.Action.CREATE, "update": LogEntry.Action.UPDATE, "delete": LogEntry.Action.DELETE}


def audit_log(*, cell: str = "", user: str = "", action: str = "", since=None, until=None, before=None,
              limit: int = AUDIT_PAGE_SIZE) -> dict:
    """Domain events and auditlog field changes, merged newest first, filtered; `before` pages back in time.

    `action` is a prefix: `cells.` matches every cells event, `change` every field change,
    `change.update` the updates. A field change belongs to a cell when its object is the cell,
    one of its environments or one of their claims.
    """
    events = AuditEvent.objects.select_related("actor")
    changes = LogEntry.objects.select_related("actor", "content_type")
    # Failover steps that ran: at their end, or their start while they run.
    steps = (FailoverStep.objects.exclude(started_at__isnull=True).annotate(at=Coalesce("finished_at", "started_at"))
             .select_related("run__cell_env__cell", "run__cell_env__placement", "run__requested_by")
             .defer("run__report", "run__cell_env__placement__explanation", "run__cell_env__placement__request"))
    if cell:
        events = events.filter(cell=cell)
        steps = steps.filter(run__cell_env__cell__name=cell)
        cts = _content_types()
        claim_ids = {m: m.objects.filter(cell_env__cell__name=cell).values_list("pk", flat=True) for m in CLAIM_KINDS}
        changes = changes.filter(_objects_q(cts, CellEnvironment.objects.filter(cell__name=cell).values_list("pk", flat=True),
                                            claim_ids, Cell.objects.filter(name=cell).values_list("pk", flat=True)))
    if user:
        events = events.filter(actor__username=user)
        changes = changes.filter(actor__username=user)
        steps = steps.filter(run__requested_by__username=user)
    if action:
        events = events.filter(action__startswith=action)
        changes = _change_action(changes, action)
        steps = _step_action(steps, action)
    if since:
        events, changes, steps = events.filter(created_at__gte=since), changes.filter(timestamp__gte=since), steps.filter(at__gte=since)
    if until:
        events, changes, steps = events.filter(created_at__lte=until), changes.filter(timestamp__lte=until), steps.filter(at__lte=until)
    if before:
        events, changes, steps = events.filter(created_at__lt=before), changes.filter(timestamp__lt=before), steps.filter(at__lt=before)
    fetched = [_event_row(e) for e in events.order_by("-created_at", "-id")[: limit + 1]]
    fetched += [_change_row(c) for c in changes.order_by("-timestamp", "-id")[: limit + 1]]
    fetched += [_step_row(s) for s in steps.order_by("-at", "-id")[: limit + 1]]
    rows = sorted(fetched, key=lambda r: r.at, reverse=True)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"rows": rows, "older": rows[-1].at if more and rows else None}


def _change_action(changes, action: str):
    """Field changes are named change.<model>.<verb> (change.mysqlclaim.update); `action` is a prefix of that
    name, or change.<verb> for one verb on every model."""
    if "change".startswith(action):
        return changes
    if not action.startswith("change."):
        return changes.none()
    parts = action.split(".", 2)
    if len(parts) == 2:
        if parts[1] in CHANGE_VERBS:
            return changes.filter(action=CHANGE_VERBS[parts[1]])
        return changes.filter(content_type__model__startswith=parts[1])
    verbs = [v for name, v in CHANGE_VERBS.items() if name.startswith(parts[2])]
    return changes.filter(content_type__model=parts[1], action__in=verbs)


def _step_action(steps, action: str):
    """Failover steps are named `step <name> <state>` (step fence succeeded); `action` is a prefix of that name."""
    if "step".startswith(action):
        return steps
    if not action.startswith("step "):
        return steps.none()
    name, _, state = action[len("step "):].partition(" ")
    if not state and not action.endswith(" "):
        return steps.filter(name__startswith=name)
    return steps.filter(name=name, state__startswith=state)


def cell_names() -> list[str]:
    return list(Cell.objects.order_by("name").values_list("name", flat=True))


def audit_actions() -> list[str]:
    """Suggestions for the action filter: every domain event name seen, the kinds of field change, the failover steps."""
    names = sorted(set(AuditEvent.objects.values_list("action", flat=True).distinct()))
    steps = sorted(set(FailoverStep.objects.values_list("name", flat=True).distinct()))
    return names + [f"change.{v}" for v in CHANGE_VERBS] + ["step"] + [f"step {s}" for s in steps]


# -- policy -----------------------------------------------------------------------------

def policy_versions(limit: int = 50) -> list[PolicyVersion]:
    return list(PolicyVersion.objects.defer("text").annotate(decision_count=Count("decisions"))
                .order_by("-activated_at")[:limit])

