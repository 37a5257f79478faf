"""Continuous DR readiness of a cell environment: could it fail over now, and would that work?

`evaluate(ce)` runs seven checks, each `ok`, `warning` or `failing` with a sentence saying why:

    check            weight  what
    standbyReady       20    the standby side's (the side traffic does not point at) MySQL claim and application
                             exist and are Ready
    replication        25    the replication claim is Ready and running (not stopped after an unplanned failover),
                             its last lag is measured, fresh and within the DR profile's RPO; rising at each of the
                             last `readiness.lagTrendSamples` samples (dr/lag.py) is a warning
    drill              10    the last successful drill is younger than the cell's drill interval (+ the overdue
                             grace, IDP_DRILL_OVERDUE_GRACE, as dr.notices.drill_overdue), or
                             `readiness.drillMaxAgeDays` where no drill is scheduled; never drilled and not due yet
                             is a warning
    standbyHeadroom    10    the standby site's candidate in the policy's cell registry is not cordoned and has at
                             least `readiness.minStandbyHeadroomPct` capacity headroom (or the tier's gate, if higher)
    traffic            15    the traffic provider resolves the public host and it points at the writer's endpoint
    credentials        10    each provider answers a read-only call: the traffic provider's read, and the lag probe
                             read of each data adapter (probe, fence, promoter); the sandbox's fence needs none
    delivered          10    desired = delivered = observed: every claim's delivered revision is its revision and
                             it is Ready, and the newest delivery did not fail

Score, 0..100: 100 minus, per check, its whole weight when failing or WARNING_COST of it when a warning (weights
sum to 100). The evaluation's state is its worst check's. A check whose adapter raises is failing with the
message; nothing a provider does stops the other checks.

Each evaluation is stored (ReadinessEvaluation); `prune()` keeps every one for RETAIN_ALL, then the worst of each
hour up to RETAIN_HOURLY, and deletes older ones: per cell environment about 24 h x 12 (every 5 min) + 29 d x 24
= 1,000 rows. They are made by the beat (`evaluate_due`: every cell environment at least every
`readiness.evaluateEverySeconds`) and on change (`schedule`: a run ended, a claim turned ready or failed, a lag
above the RPO), debounced per cell environment.

`score(ce)` (portal/metrics.py: idp_readiness_score, 0..1) reads the latest stored evaluation.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from functools import cached_property

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, OuterRef, Prefetch, Q, Subquery, Window
from django.db.models.functions import RowNumber, Trunc
from django.utils import timezone

from cells import access
from cells.errors import InvalidRequest
from cells.models import CellEnvironment, ClaimStatus, Delivery
from cells.text import duration
from policy.active import active_policy
from policy.adapters import ADAPTERS, DATABASE
from policy.names import other_side

from . import lag as lag_history
from . import providers
from .endpoints import endpoint_for
from .models import MOVING_STATES, FailoverRun, ReadinessEvaluation, ReadinessState, RunState, RunType
from .traffic.base import target_value

log = logging.getLogger(__name__)

OK, WARNING, FAILING = ReadinessState.OK.value, ReadinessState.WARNING.value, ReadinessState.FAILING.value
SEVERITY = {OK: 0, WARNING: 1, FAILING: 2}

# name -> (weight, what it checks): the order is the display order.
CHECKS = {
    "standbyReady": (20, "Standby claims and apps ready"),
    "replication": (25, "Replication running, lag within the RPO"),
    "drill": (10, "Last successful drill"),
    "standbyHeadroom": (10, "Standby capacity headroom"),
    "traffic": (15, "Traffic record points at the writer"),
    "credentials": (10, "Provider credentials usable"),
    "delivered": (10, "Desired = delivered = observed"),
}
WARNING_COST = 0.3  # a warning costs this share of its check's weight; a failing check all of it
# A rising lag is a warning when it grew at each of the last samples by at least this share of the RPO in all.
TREND_MIN_RISE_OF_RPO = 0.05

RETAIN_ALL = timedelta(hours=24)
RETAIN_HOURLY = timedelta(days=30)
PRUNE_LOOKBACK = timedelta(hours=48)  # hours older than this were pruned by earlier runs
DEBOUNCE_SECONDS = 5
QUEUED_KEY = "idp:readiness:queued:{}"


@dataclass(frozen=True)
class Check:
    name: str
    state: str
    detail: str

    @property
    def title(self) -> str:
        return CHECKS.get(self.name, (0, self.name))[1]

    def as_dict(self) -> dict:
        return {"name": self.name, "state": self.state, "detail": self.detail}


@dataclass(frozen=True)
class Readiness:
    score: int  # 0..100
    state: str  # the worst check's
    checks: list[Check] = field(default_factory=list)
    evaluated_at: datetime | None = None


def worst(states) -> str:
    return max(states, key=SEVERITY.__getitem__, default=OK)


def score_of(checks: list[Check]) -> int:
    cost = sum(CHECKS[c.name][0] * (1 if c.state == FAILING else WARNING_COST if c.state == WARNING else 0)
               for c in checks if c.name in CHECKS)
    return max(0, min(100, round(100 - cost)))


# -- the facts the checks read, loaded once ------------------------------------------------------

class Facts:
    def __init__(self, ce: CellEnvironment, policy, now: datetime):
        self.ce, self.policy, self.now = ce, policy, now
        self.mysql = {c.side: c for c in ce.mysqlclaims.all()}
        self.apps = {a.side: a for a in ce.applications.all()}
        self.replication = next(iter(ce.replicationclaims.all()), None)
        self.standby = other_side(ce.active_side)
        self.writer = ce.writer_side if len(ce.writers()) == 1 else ce.active_side
        self.profile = policy.spec.dr_profiles.get(ce.dr_profile)
        self.settings = policy.spec.readiness

    @property
    def rpo(self) -> int | None:
        if self.profile is not None:
            return self.profile.rpo_seconds
        return self.replication.expected_rpo_seconds if self.replication else None

    @property
    def host(self) -> str:
        return self.ce.public_host or next((a.public_host for a in self.apps.values() if a.public_host), "")

    @cached_property
    def traffic_read(self):
        """(TrafficState, None) or (None, the error): the one read both the traffic and credentials checks use."""
        try:
            return providers.adapter("traffic", self.ce.traffic_provider).current(self.host), None
        except Exception as exc:  # noqa: BLE001 - any adapter failure is the check's result
            return None, _message(exc)


def _days(seconds: float | None) -> str:
    return duration(seconds, days=True)


def _message(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 500 else text[:499] + "…"


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


# -- the checks ----------------------------------------------------------------------------------

def _verdict(problems: list[str], warnings: list[str], ok: str) -> tuple[str, str]:
    """A check's state and detail: failing on any problem (its warnings said too), else warning, else `ok`."""
    if problems:
        return FAILING, "; ".join(problems + warnings)
    if warnings:
        return WARNING, "; ".join(warnings)
    return OK, ok


def check_standby_ready(f: Facts) -> tuple[str, str]:
    side = f.standby
    problems, warnings, ready = [], [], []
    database = f.mysql.get(side)
    if database is None:
        problems.append(f"no MySQL claim on the standby ({side}) side")
    claims = [database] if database else []
    if f.apps:
        app = f.apps.get(side)
        if app is None:
            problems.append(f"no application on the standby ({side}) side")
        else:
            claims.append(app)
    for c in claims:
        if c.status == ClaimStatus.READY:
            ready.append(c.name)
        elif c.status in (ClaimStatus.FAILED, ClaimStatus.DELETING, ClaimStatus.DELETED):
            problems.append(f"{c.name} is {c.status}" + (f": {c.status_message}" if c.status_message else ""))
        else:
            warnings.append(f"{c.name} is {c.status}, not ready yet")
    return _verdict(problems, warnings, f"standby ({side}): {', '.join(ready)} ready")


def check_replication(f: Facts) -> tuple[str, str]:
    r = f.replication
    if r is None:
        return FAILING, "no replication claim: nothing protects the data"
    source = next((c for c in f.mysql.values() if c.pk == r.source_id), None)
    if source is not None and f.ce.replication_stopped(source.side):
        return FAILING, ("replication stopped after the unplanned failover: nothing protects the writer until a "
                         "switchover or failback reprotects it")
    if r.status == ClaimStatus.FAILED:
        return FAILING, f"{r.name} failed" + (f": {r.status_message}" if r.status_message else "")
    if r.status != ClaimStatus.READY:
        return WARNING, f"{r.name} is {r.status}, not running yet"
    rpo = f.rpo
    if r.lag_seconds is None:
        return WARNING, f"lag not measured yet (RPO {_days(rpo)})"
    if rpo is not None and r.lag_seconds > rpo:
        return FAILING, f"lag {_days(r.lag_seconds)} is above the RPO of {_days(rpo)} ({f.ce.dr_profile})"
    stale_after = 3 * f.settings.evaluate_every_seconds
    if r.lag_measured_at is not None and (f.now - r.lag_measured_at).total_seconds() > stale_after:
        return WARNING, (f"the last lag ({_days(r.lag_seconds)}) was measured at {_when(r.lag_measured_at)}, "
                         f"more than {_days(stale_after)} ago")
    n = f.settings.lag_trend_samples
    recent = lag_history.last_samples(f.ce.pk, n)
    if (len(recent) == n and all(b > a for a, b in zip(recent, recent[1:]))
            and recent[-1] - recent[0] >= TREND_MIN_RISE_OF_RPO * (rpo or 0)):
        return WARNING, (f"lag rising over the last {n} samples: {_days(recent[0])} → {_days(recent[-1])} "
                         f"(RPO {_days(rpo)})")
    return OK, f"lag {_days(r.lag_seconds)} within the RPO of {_days(rpo)}"


def drill_rule(f: Facts) -> tuple[timedelta, str, bool]:
    """(max age of the last successful drill, the policy rule, whether drills are scheduled)."""
    entry = f.policy.spec.cells.get(f.ce.cell.name)
    if entry is not None and entry.drill_interval_seconds is not None:
        interval, rule = entry.drill_interval_seconds, f"cells.{f.ce.cell.name}.drillIntervalSeconds"
    else:
        interval = f.policy.spec.failover.drill_interval_seconds.get(f.ce.tier, 0)
        rule = f"failover.drillIntervalSeconds.{f.ce.tier}"
    if interval:
        return timedelta(seconds=interval + settings.IDP_DRILL_OVERDUE_GRACE), rule, True
    return timedelta(days=f.settings.drill_max_age_days), "readiness.drillMaxAgeDays", False


def check_drill(f: Facts) -> tuple[str, str]:
    max_age, rule, scheduled = drill_rule(f)
    last = (f.ce.failover_runs.filter(type=RunType.DRILL, state=RunState.SUCCEEDED, finished_at__isnull=False)
            .order_by("-finished_at").only("pk", "finished_at").first())
    limit = f"at most {_days(max_age.total_seconds())} old, policy {rule}"
    if last is not None and f.now - last.finished_at <= max_age:
        return OK, f"last successful drill #{last.pk} at {_when(last.finished_at)}; {limit}"
    due = (last.finished_at if last else f.ce.created_at) + max_age
    if f.now > due:
        since = f"the last one (#{last.pk}) was at {_when(last.finished_at)}" if last else "never drilled"
        return FAILING, f"no successful drill since {_when(due - max_age)} ({since}); {limit}"
    return WARNING, (f"no successful drill yet; due by {_when(due)} ({limit}"
                     + (")" if scheduled else "; no drill is scheduled for it)"))


def check_headroom(f: Facts) -> tuple[str, str]:
    site = f.ce.placement.site(f.standby)
    key = f"{site['cloud']}/{site['region']}/{site['cluster']}"
    entry = f.policy.spec.cells.get(f.ce.cell.name)
    cand = next((c for c in (entry.candidates if entry else ())
                 if (c.cloud, c.region, c.cluster) == (site["cloud"], site["region"], site["cluster"])), None)
    if cand is None:
        return WARNING, f"standby site {key} is not in the policy's cell registry: its headroom is unknown"
    if cand.cordoned:
        return FAILING, f"standby site {key} is cordoned" + (f": {cand.cordon_reason}" if cand.cordon_reason else "")
    minimum, rule = f.settings.min_standby_headroom_pct, "readiness.minStandbyHeadroomPct"
    tier = f.policy.spec.tiers.get(f.ce.tier)
    gate = tier.gates.min_capacity_headroom_pct if tier else None
    if gate is not None and gate > minimum:
        minimum, rule = gate, f"tiers.{f.ce.tier}.gates.minCapacityHeadroomPct"
    numbers = f"standby site {key} has {cand.capacity_headroom_pct:g}% capacity headroom"
    if cand.capacity_headroom_pct < minimum:
        return FAILING, f"{numbers}, below the minimum of {minimum:g}% (policy {rule})"
    return OK, f"{numbers} (minimum {minimum:g}%, policy {rule})"


def check_traffic(f: Facts) -> tuple[str, str]:
    if not f.host:
        return OK, "no public host (no app requested): nothing to route"
    state, error = f.traffic_read
    label = providers.adapter_label(f.ce.traffic_provider)
    if error:
        return FAILING, f"{label} cannot resolve {f.host}: {error}"
    expected = endpoint_for(f.ce, f.writer)
    if state.value is None:
        return FAILING, f"{label} has no record for {f.host}"
    if state.value == target_value(expected):  # as the provider reads it back (normalised)
        return OK, f"{f.host} → {state.value}: the writer ({f.writer}), via {label}"
    other = other_side(f.writer)
    where = f"the {other} side, not the writer" if state.value == target_value(endpoint_for(f.ce, other)) \
        else "neither side's endpoint"
    return FAILING, f"{f.host} → {state.value}: {where} (the writer, {f.writer}, serves at {expected})"


def data_adapters(f: Facts) -> list[tuple[str, str]]:
    """(role, adapter name) of the replication tool's data adapters, each resolved for the side it acts on."""
    tool = f.policy.spec.replication_tools.get(f.replication.tool) if f.replication else None
    if tool is None:
        return []
    acts_on = {"probe": f.standby, "fence": f.writer, "promoter": f.standby}
    out = []
    for role, side in acts_on.items():
        name = getattr(tool.adapters, role)
        out.append((role, providers.database_of(f.policy, f.ce, side) if name == DATABASE else name))
    return out


def check_credentials(f: Facts) -> tuple[str, str]:
    results: list[tuple[str, str]] = []
    if f.host:
        _, error = f.traffic_read
        label = f"traffic {providers.adapter_label(f.ce.traffic_provider)}"
        results.append((FAILING, f"{label}: {error}") if error else (OK, f"{label}: read {f.host}"))
    stopped = f.replication is not None and any(
        c.pk == f.replication.source_id and f.ce.replication_stopped(c.side) for c in f.mysql.values())
    read: dict[str, str] = {}  # one read per adapter (all the sandbox's are one)
    for role, name in data_adapters(f):
        label = f"{role} {providers.adapter_label(name)}"
        key = "sandbox" if providers.sandboxed(name) else name
        if name not in ADAPTERS["probe"]:
            results.append((OK, f"{label}: no read-only probe for {name}") if providers.sandboxed(name) else
                           (WARNING, f"{label}: no read-only probe for {name}: its credentials are not checked"))
        elif stopped:
            results.append((WARNING, f"{label}: not read while the replication is stopped"))
        elif key in read:
            results.append((read[key], f"{label}: {'the same read' if read[key] == OK else 'the same read failed'}"))
        else:
            try:
                providers.adapter("probe", name).lag(f.ce, f.writer, f.standby)
            except Exception as exc:  # noqa: BLE001 - a provider's failure is this check's result
                read[key] = FAILING
                results.append((FAILING, f"{label}: {_message(exc)}"))
            else:
                read[key] = OK
                results.append((OK, f"{label}: lag probe read"))
    if not results:
        return OK, "no provider to check yet"
    state = worst(s for s, _ in results)
    shown = [d for s, d in results if s != OK] if state != OK else [d for _, d in results]
    return state, "; ".join(shown)



def check_delivered(f: Facts) -> tuple[str, str]:
    claims = [*f.mysql.values(), *filter(None, [f.replication]), *f.apps.values()]
    if not claims:
        return FAILING, "no claims"
    problems, warnings = [], []
    for c in claims:
        if c.status in (ClaimStatus.FAILED, ClaimStatus.DELETING, ClaimStatus.DELETED):
            problems.append(f"{c.name} is {c.status}")
        elif c.delivered_revision < c.revision:
            warnings.append(f"{c.name}: revision {c.revision} desired, {c.delivered_revision or 'none'} delivered")
        elif c.status != ClaimStatus.READY:
            warnings.append(f"{c.name}: delivered, observed {c.status}")
    newest = f.ce.deliveries.order_by("-created_at", "-id").only("pk", "state", "last_error").first()
    if newest is not None and newest.state == Delivery.State.FAILED:
        problems.append(f"delivery #{newest.pk} failed" + (f": {_message(Exception(newest.last_error))}" if newest.last_error else ""))
    elif newest is not None and newest.state in (Delivery.State.PENDING, Delivery.State.DELIVERING):
        warnings.append(f"delivery #{newest.pk} is {newest.state}")
    return _verdict(problems, warnings, f"{len(claims)} claims delivered at their revision and ready")


CHECK_FUNCTIONS = {
    "standbyReady": check_standby_ready,
    "replication": check_replication,
    "drill": check_drill,
    "standbyHeadroom": check_headroom,
    "traffic": check_traffic,
    "credentials": check_credentials,
    "delivered": check_delivered,
}


# -- evaluating and storing ----------------------------------------------------------------------

def evaluate(ce: CellEnvironment, policy=None, now: datetime | None = None) -> Readiness:
    """Run every check now (nothing stored). A check that raises is failing with the error: never the whole."""
    policy = policy or active_policy()
    now = now or timezone.now()
    facts = Facts(ce, policy, now)
    checks = []
    for name, fn in CHECK_FUNCTIONS.items():
        try:
            state, detail = fn(facts)
        except Exception as exc:  # noqa: BLE001 - one broken check never stops the evaluation
            log.warning("readiness check %s of %s failed: %s", name, ce, exc, exc_info=True)
            state, detail = FAILING, f"the check could not run: {_message(exc)}"
        checks.append(Check(name, state, detail))
    return Readiness(score_of(checks), worst(c.state for c in checks), checks, now)


def evaluate_and_store(cell_env_id: int) -> ReadinessEvaluation | None:
    """Evaluate a cell environment and store the result (None: it is gone or decommissioned)."""
    ce = (CellEnvironment.objects.select_related("cell", "placement").prefetch_related(
        "mysqlclaims", "replicationclaims", "applications").filter(pk=cell_env_id, decommissioned_at__isnull=True).first())
    if ce is None:
        return None
    result = evaluate(ce)
    return ReadinessEvaluation.objects.create(cell_env=ce, score=result.score, state=result.state,
                                              checks=[c.as_dict() for c in result.checks],
                                              evaluated_at=result.evaluated_at)


def schedule(cell_env_id: int) -> None:
    """Evaluate this cell environment soon, once its transaction commits; several changes within DEBOUNCE_SECONDS
    make one evaluation. Not while a run moves it: each step changes what an evaluation would find, and the run's
    end evaluates it (`run_stopped`; an evacuation, every cell it moved, at its end) — an evacuation's thousand
    cells would otherwise be evaluated mid-move by the workers moving them. Never raises: the beat evaluates every
    cell environment anyway."""
    if FailoverRun.objects.filter(cell_env_id=cell_env_id, state__in=MOVING_STATES).exists():
        return
    transaction.on_commit(lambda: _enqueue(cell_env_id, DEBOUNCE_SECONDS))


def _enqueue(cell_env_id: int, countdown: float | None) -> bool:
    from .tasks import evaluate_readiness

    key = QUEUED_KEY.format(cell_env_id)
    try:
        if not cache.add(key, 1, timeout=int((countdown or 0) + 300)):
            return False  # one is queued already: it will see this change too
    except Exception as exc:  # noqa: BLE001 - without the cache, no debounce
        log.warning("readiness: the cache is unavailable (%s); evaluating %s without debounce", exc, cell_env_id)
    try:
        evaluate_readiness.apply_async((cell_env_id,), countdown=countdown)
    except Exception as exc:  # noqa: BLE001 - the beat evaluates it later
        log.warning("readiness: could not queue the evaluation of %s: %s", cell_env_id, exc)
        _unqueue(cell_env_id)
        return False
    return True


def _unqueue(cell_env_id: int) -> None:
    try:
        cache.delete(QUEUED_KEY.format(cell_env_id))
    except Exception:  # noqa: BLE001
        pass


def run_stopped(run_id: int) -> None:
    """A worker left a run: if it ended (succeeded, failed, aborted), its cell environment is evaluated again."""
    cell_env_id = (FailoverRun.objects.filter(pk=run_id, state__in=(RunState.SUCCEEDED, RunState.FAILED, RunState.ABORTED))
                   .values_list("cell_env_id", flat=True).first())
    if cell_env_id is not None:
        schedule(cell_env_id)


def evaluate_due(now: datetime | None = None) -> int:
    """Queue the evaluation of every live cell environment whose latest is older than the policy's period, or older
    than the end of its last run (a run driven outside `advance_run`, e.g. by an evacuation, is caught here)."""
    now = now or timezone.now()
    every = timedelta(seconds=active_policy().spec.readiness.evaluate_every_seconds)
    latest = ReadinessEvaluation.objects.filter(cell_env=OuterRef("pk")).order_by("-evaluated_at").values("evaluated_at")[:1]
    ended = (FailoverRun.objects.filter(cell_env=OuterRef("pk"), finished_at__isnull=False).order_by("-finished_at")
             .values("finished_at")[:1])
    rows = (CellEnvironment.objects.filter(decommissioned_at__isnull=True)
            .annotate(last=Subquery(latest), run_ended=Subquery(ended)).values_list("pk", "last", "run_ended"))
    due = [pk for pk, last, run_ended in rows
           if last is None or last <= now - every or (run_ended is not None and run_ended > last)]
    return sum(_enqueue(pk, None) for pk in due)


def prune(now: datetime | None = None) -> int:
    """Keep every evaluation of the last RETAIN_ALL, then the worst of each hour (the latest of equals) up to
    RETAIN_HOURLY; delete older ones. Each run thins the hours that aged past RETAIN_ALL since PRUNE_LOOKBACK."""
    now = now or timezone.now()
    hi = lag_history.bucket(now - RETAIN_ALL, 3600)
    hour = Trunc("evaluated_at", "hour", tzinfo=dt_timezone.utc)
    ranked = (ReadinessEvaluation.objects.filter(evaluated_at__gte=hi - PRUNE_LOOKBACK, evaluated_at__lt=hi)
              .annotate(rank=Window(RowNumber(), partition_by=[F("cell_env_id"), hour],
                                    order_by=[F("score").asc(), F("evaluated_at").desc(), F("id").desc()]))
              .filter(rank__gt=1).values_list("pk", flat=True))
    extra = list(ranked)
    deleted = 0
    for i in range(0, len(extra), 1000):
        deleted += ReadinessEvaluation.objects.filter(pk__in=extra[i:i + 1000]).delete()[0]
    deleted += ReadinessEvaluation.objects.filter(evaluated_at__lt=now - RETAIN_HOURLY).delete()[0]
    return deleted


# -- reading -------------------------------------------------------------------------------------

def latest(ce: CellEnvironment) -> ReadinessEvaluation | None:
    """The latest stored evaluation; uses `latest_readiness` when prefetched (see `prefetch_latest`)."""
    if hasattr(ce, "latest_readiness"):
        return ce.latest_readiness[0] if ce.latest_readiness else None
    return ce.readiness_evaluations.order_by("-evaluated_at", "-id").first()


def prefetch_latest():
    """A Prefetch of each cell environment's latest evaluation into `latest_readiness` (one query for all)."""
    return Prefetch("readiness_evaluations", to_attr="latest_readiness",
                    queryset=ReadinessEvaluation.objects.order_by("-evaluated_at", "-id")[:1])


def score(ce: CellEnvironment) -> float | None:
    """The latest stored score as 0..1 (idp_readiness_score); None while never evaluated."""
    evaluation = latest(ce)
    return evaluation.score / 100 if evaluation is not None else None


def as_checks(evaluation: ReadinessEvaluation) -> list[Check]:
    return [Check(c.get("name", "?"), c.get("state", FAILING), c.get("detail", "")) for c in evaluation.checks or []]


def lag_measured(cell_env_id: int, previous: float | None, lag_seconds: float | None, rpo_seconds: int | None,
                 at: datetime | None = None) -> None:
    """A lag was measured: keep it as a sample (dr/lag.py); crossing the RPO (either way) changes the readiness."""
    lag_history.record(cell_env_id, lag_seconds, at)
    if lag_seconds is None or rpo_seconds is None:
        return
    if (previous is not None and previous > rpo_seconds) != (lag_seconds > rpo_seconds):
        schedule(cell_env_id)


# -- what the API and the portal show ------------------------------------------------------------

STATES = (OK, WARNING, FAILING)
UNKNOWN = "unknown"  # never evaluated yet


def latest_subquery(field: str = "state"):
    """`field` of each cell environment's latest evaluation, as a subquery on OuterRef('pk')."""
    return Subquery(ReadinessEvaluation.objects.filter(cell_env=OuterRef("pk")).order_by("-evaluated_at", "-id")
                    .values(field)[:1])


def visible(user, *, cell: str = "", tier: str = "", cloud: str = "", state: str = ""):
    """The live cell environments `user` may see (cells.access), filtered, each with its latest evaluation
    prefetched (`latest`): cloud matches the primary or the secondary, state the latest evaluation's."""
    if state and state not in (*STATES, UNKNOWN):
        raise InvalidRequest("invalid state filter", {"state": [f"one of {', '.join((*STATES, UNKNOWN))}"]})
    qs = (access.visible_environments(user).filter(decommissioned_at__isnull=True)
          .defer("placement__explanation", "placement__request").prefetch_related(prefetch_latest()))
    if cell:
        qs = qs.filter(cell__name=cell)
    if tier:
        qs = qs.filter(tier=tier)
    if cloud:
        qs = qs.filter(Q(placement__primary_cloud=cloud) | Q(placement__secondary_cloud=cloud))
    if state:
        qs = qs.annotate(readiness_state=latest_subquery())
        qs = qs.filter(readiness_state__isnull=True) if state == UNKNOWN else qs.filter(readiness_state=state)
    return qs.order_by("cell__name", "environment")


def present(evaluation: ReadinessEvaluation | None) -> dict:
    """An evaluation as the API shows it (never evaluated: score null, state unknown)."""
    if evaluation is None:
        return {"score": None, "state": UNKNOWN, "checks": [], "evaluatedAt": None}
    return {"score": evaluation.score, "state": evaluation.state,
            "checks": [c.as_dict() for c in as_checks(evaluation)],
            "evaluatedAt": evaluation.evaluated_at.isoformat().replace("+00:00", "Z")}


def present_cell(ce: CellEnvironment) -> dict:
    return {"cell": ce.cell.name, "environment": ce.environment, "tier": ce.tier, **present(latest(ce))}


def history(ce: CellEnvironment, since: datetime, limit: int = 5000) -> list[ReadinessEvaluation]:
    """The stored evaluations of a cell environment since `since`, oldest first."""
    return list(ce.readiness_evaluations.filter(evaluated_at__gte=since).order_by("evaluated_at", "id")[:limit])
