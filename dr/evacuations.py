"""Region, cluster and cloud evacuation: every cell environment whose writer is in the scope fails over.

`plan(scope)` says, changing nothing, what would move (in order: the policy's tier order, then the tightest
RPO first), where to, the RPO gate each faces, and what cannot move and why. `start` records the plan as an
Evacuation with an item per cell environment; `advance` (a Celery task holding a lease) moves it wave by wave:
it starts each wave's failover runs (ordinary runs, each with its own steps and report) and steps them
together inside a `dr.batch` so their side effects are batched: one delivery (one GitOps commit) per phase
of the wave, one `switch_many` per traffic provider (one change per DNS zone). Pause, resume and abort act
on the whole evacuation.
"""
from __future__ import annotations

import contextvars
import logging
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from cells import access, pipeline
from cells.audit import acting, record_event
from cells.errors import Conflict, DomainError, InvalidRequest, NotFound
from cells.models import CellEnvironment, ClaimStatus
from cells.text import clean
from policy.active import active_policy
from policy.names import other_side

from . import batch as batching
from . import notices, providers, runbook
from .models import (ACTIVE_STATES, HOLDS_THE_CELL, Evacuation, EvacuationItem, EvacuationState, FailoverRun,
                     RunState, RunType)
from .traffic.base import SwitchManyError
from .traffic.records import norm_name

log = logging.getLogger(__name__)
WORKER_ID = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
Item = EvacuationItem.State
ENDED = (EvacuationState.SUCCEEDED, EvacuationState.FAILED, EvacuationState.ABORTED)
RUN_TO_ITEM = {RunState.SUCCEEDED: Item.SUCCEEDED, RunState.FAILED: Item.FAILED, RunState.ABORTED: Item.ABORTED}


# -- the plan --------------------------------------------------------------------------------------

@dataclass
class Scope:
    cloud: str
    region: str = ""
    cluster: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.cloud, self.region, self.cluster) if p)

    def holds(self, cloud: str, region: str, cluster: str) -> bool:
        return (cloud == self.cloud and (not self.region or region == self.region)
                and (not self.cluster or cluster == self.cluster))

    def writers_q(self) -> Q:
        """Cell environments whose writer (the side traffic goes to) is in the scope."""
        q = Q()
        for side in ("primary", "secondary"):
            where = {f"placement__{side}_cloud": self.cloud}
            if self.region:
                where[f"placement__{side}_region"] = self.region
            if self.cluster:
                where[f"placement__{side}_cluster"] = self.cluster
            q |= Q(active_side=side, **where)
        return q


@dataclass
class PlanItem:
    ce: CellEnvironment
    tier: str
    dr_profile: str
    rpo_seconds: int
    from_side: str
    to_side: str
    to_site: dict
    lag_seconds: float | None
    host: str
    problems: list[str] = field(default_factory=list)
    preempts: int | None = None  # a drill this move would abort
    wave: int | None = None

    @property
    def movable(self) -> bool:
        return not self.problems

    @property
    def rpo_gate(self) -> str:
        if self.lag_seconds is None:
            return "unknown lag: the failover stops at its lag check unless forced"
        if self.lag_seconds <= self.rpo_seconds:
            return f"within RPO (lag {self.lag_seconds:g} s / RPO {self.rpo_seconds} s)"
        return f"above RPO (lag {self.lag_seconds:g} s / RPO {self.rpo_seconds} s): stops unless forced"

    def as_dict(self) -> dict:
        return {"cell": self.ce.cell.name, "environment": self.ce.environment, "tier": self.tier,
                "drProfile": self.dr_profile, "wave": self.wave, "from": self.from_side, "to": self.to_side,
                "toSite": self.to_site, "rpoSeconds": self.rpo_seconds, "lagSeconds": self.lag_seconds,
                "rpoGate": self.rpo_gate, "publicHost": self.host,
                **({"preemptsDrill": self.preempts} if self.preempts else {}),
                **({"cannotMove": "; ".join(self.problems)} if self.problems else {})}


def parse_scope(data: dict) -> Scope:
    """The scope from a request: `cloud` (required, a cloud of the policy), then `region`, `cluster`."""
    spec = active_policy().spec
    cloud = str(data.get("cloud") or "").strip()
    errors: dict[str, list[str]] = {}
    if not cloud:
        errors["cloud"] = [f"required; one of {', '.join(spec.providers)}"]
    elif cloud not in spec.providers:
        errors["cloud"] = [f"unknown cloud '{cloud}'; one of {', '.join(spec.providers)}"]
    scope = Scope(cloud, clean(str(data.get("region") or "").strip(), "region"),
                  clean(str(data.get("cluster") or "").strip(), "cluster"))
    known = [(c.cloud, c.region, c.cluster) for entry in spec.cells.values() for c in entry.candidates]
    if not errors and not any(scope.holds(*site) for site in known):
        where = "region" if scope.region and not scope.cluster else "cluster" if scope.cluster else "cloud"
        errors[where] = [f"no candidate of the cell registry is in {scope}"]
    if errors:
        raise InvalidRequest("the scope is not valid", errors)
    return scope


def _order_key(policy, item: PlanItem) -> tuple:
    tiers = policy.spec.evacuation.tier_order or list(policy.spec.tiers)
    rank = tiers.index(item.tier) if item.tier in tiers else len(tiers)
    within = (item.rpo_seconds,) if policy.spec.evacuation.within_tier == "rpo" else ()
    return (rank, *within, item.ce.cell.name, item.ce.environment)


def plan(scope: Scope) -> list[PlanItem]:
    """What an evacuation of `scope` would do, in order, with waves; reads only (no traffic provider call)."""
    policy = active_policy()
    envs = (CellEnvironment.objects.filter(scope.writers_q(), decommissioned_at__isnull=True)
            .select_related("cell", "placement").prefetch_related("mysqlclaims", "applications", "replicationclaims"))
    active = {r.cell_env_id: r for r in FailoverRun.objects.filter(HOLDS_THE_CELL, cell_env__in=envs)}
    items = []
    for ce in envs:
        writer = ce.active_side
        to = other_side(writer)
        site = ce.placement.site(to)
        profile = policy.spec.dr_profiles.get(ce.dr_profile)
        repl = next(iter(ce.replicationclaims.all()), None)
        apps = {a.side: a for a in ce.applications.all()}
        item = PlanItem(ce, ce.tier, ce.dr_profile, profile.rpo_seconds if profile else 0, writer, to, site,
                        repl.lag_seconds if repl else None, apps[writer].public_host if writer in apps else "")
        if scope.holds(site["cloud"], site["region"], site["cluster"]):
            item.problems.append(f"its secondary is in {scope} too ({site['cloud']} {site['region']} {site['cluster']})")
        dbs = {c.side: c for c in ce.mysqlclaims.all()}
        for what, claim in (("database", dbs.get(to)), ("application", apps.get(to)), ("replication", repl)):
            if claim is None:
                item.problems.append(f"no {what} on the {to} side" if what != "replication" else "no replication")
            elif claim.status != ClaimStatus.READY:
                item.problems.append(f"{what} {claim.name} is {claim.status}")
        run = active.get(ce.pk)
        if run is not None and run.type == RunType.DRILL:
            item.preempts = run.pk
        elif run is not None:
            item.problems.append(f"run #{run.pk} ({run.type}, {run.state}) holds it: resume or abort it first")
        items.append(item)
    items.sort(key=lambda i: _order_key(policy, i))
    _assign_waves(policy, items)
    return items


def _assign_waves(policy, items: list[PlanItem]) -> None:
    """Waves never mix tiers; each holds at most waveSize cells."""
    size, wave, count, tier = policy.spec.evacuation.wave_size, -1, 0, None
    for item in items:
        if not item.movable:
            continue
        if item.tier != tier or count == size:
            wave, count, tier = wave + 1, 0, item.tier
        item.wave, count = wave, count + 1


def plan_summary(scope: Scope, items: list[PlanItem]) -> dict:
    movable = [i for i in items if i.movable]
    waves = max((i.wave for i in movable), default=-1) + 1
    return {"scope": {"cloud": scope.cloud, "region": scope.region or None, "cluster": scope.cluster or None},
            "cells": len(items), "moving": len(movable), "cannotMove": len(items) - len(movable), "waves": waves,
            "order": [i.as_dict() for i in movable], "skipped": [i.as_dict() for i in items if not i.movable]}


# -- starting and steering -------------------------------------------------------------------------

def start(actor, data: dict) -> tuple[Evacuation | None, dict]:
    """Plan, and unless `dryRun`, start the evacuation. Operators only. Returns (evacuation or None, plan)."""
    access.require_operator(actor, "evacuate a region")
    scope = parse_scope(data)
    dry_run = bool(data.get("dryRun"))
    force = bool(data.get("force"))
    reason = clean(str(data.get("reason") or "").strip(), "reason")
    items = plan(scope)
    summary = plan_summary(scope, items)
    if dry_run:
        return None, summary
    if not reason:
        raise InvalidRequest("an evacuation needs a reason", {"reason": ["required: say what happened to the scope"]})
    if not any(i.movable for i in items):
        raise Conflict(f"nothing to evacuate from {scope}: no cell environment there can move", plan=summary)
    with acting(actor):
        other = Evacuation.objects.select_for_update().filter(
            state__in=(EvacuationState.RUNNING, EvacuationState.PAUSED)).first()
        if other is not None:
            raise Conflict(f"{other} is {other.state}: finish, resume or abort it first", evacuationId=other.pk)
        evac = Evacuation.objects.create(cloud=scope.cloud, region=scope.region, cluster=scope.cluster, reason=reason,
                                         force=force, requested_by=actor, plan=summary, waves=summary["waves"])
        EvacuationItem.objects.bulk_create([
            EvacuationItem(evacuation=evac, cell_env=i.ce, tier=i.tier, wave=i.wave, position=n,
                           state=Item.PENDING if i.movable else Item.SKIPPED, detail="; ".join(i.problems))
            for n, i in enumerate(items)])
        record_event(actor, "dr.evacuation.started", f"evacuation #{evac.pk} of {scope}: {summary['moving']} to move "
                     f"in {summary['waves']} wave(s), {summary['cannotMove']} cannot move; {reason}",
                     evacuationId=evac.pk, scope=str(scope))
        transaction.on_commit(lambda: (notices.evacuation_started(evac.pk, str(scope), detail=reason), send(evac.pk)))
    return evac, summary


def send(evacuation_id: int, countdown: float | None = None) -> bool:
    from .tasks import advance_evacuation

    try:
        advance_evacuation.apply_async((evacuation_id,), countdown=countdown)
    except Exception as exc:  # noqa: BLE001 - the beat task resumes it
        log.warning("broker unavailable, evacuation %s will be resumed by the beat task: %s", evacuation_id, exc)
        return False
    return True


def get(actor, evacuation_id: int) -> Evacuation:
    access.require_operator(actor, "read evacuations")
    evac = Evacuation.objects.filter(pk=evacuation_id).first()
    if evac is None:
        raise NotFound(f"no evacuation {evacuation_id}")
    return evac


def pause(actor, evacuation_id: int) -> Evacuation:
    """Stop after the step each run is in; nothing more starts until resumed."""
    return _steer(actor, evacuation_id, "pause", (EvacuationState.RUNNING,), EvacuationState.PAUSED)


def resume(actor, evacuation_id: int) -> Evacuation:
    evac = _steer(actor, evacuation_id, "resume", (EvacuationState.PAUSED,), EvacuationState.RUNNING)
    transaction.on_commit(lambda: send(evac.pk))
    return evac


def abort(actor, evacuation_id: int, reason: str = "") -> Evacuation:
    """Nothing more starts; runs that have not switched traffic are aborted (rolled back), the others finish."""
    evac = _steer(actor, evacuation_id, "abort", (EvacuationState.RUNNING, EvacuationState.PAUSED),
                  EvacuationState.ABORTED, reason)
    from . import services

    for item in evac.items.filter(state__in=(Item.PENDING, Item.RUNNING)).select_related("run"):
        run = item.run
        if run is None:
            EvacuationItem.objects.filter(pk=item.pk).update(state=Item.ABORTED, detail="the evacuation was aborted")
        elif run.state in ACTIVE_STATES and run.traffic_switched_at is None and run.state != RunState.ABORTING:
            try:
                services.abort_run(actor, run.pk, reason=f"evacuation #{evac.pk} aborted" + (f": {reason}" if reason else ""))
            except DomainError as exc:
                log.warning("evacuation %s: run %s not aborted: %s", evac.pk, run.pk, exc)
        elif run.state in ACTIVE_STATES:
            services.send_run(run.pk)  # traffic already moved: it finishes on its own
    _finish_items(evac)
    evac.finished_at = timezone.now()
    evac.report = report(evac)
    evac.save(update_fields=["finished_at", "report"])
    return evac


STEERED = {"pause": "paused", "resume": "resumed", "abort": "aborted"}


def _steer(actor, evacuation_id: int, action: str, allowed: tuple, to: str, reason: str = "") -> Evacuation:
    access.require_operator(actor, f"{action} an evacuation")
    reason = clean(reason or "", "reason")
    with acting(actor):
        evac = Evacuation.objects.select_for_update().filter(pk=evacuation_id).first()
        if evac is None:
            raise NotFound(f"no evacuation {evacuation_id}")
        done = STEERED[action]
        if evac.state not in allowed:
            raise Conflict(f"{evac} is {evac.state}; only a {' or '.join(allowed)} evacuation can be {done}")
        evac.state = to
        evac.save(update_fields=["state"])
        record_event(actor, f"dr.evacuation.{done}", f"evacuation #{evac.pk} of {evac.scope} {done}"
                     + (f": {reason}" if reason else ""), evacuationId=evac.pk)
    return evac


# -- moving it -----------------------------------------------------------------------------------

def _take(evacuation_id: int) -> bool:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.IDP_RUN_LEASE)
    return Evacuation.objects.filter(pk=evacuation_id, state=EvacuationState.RUNNING).filter(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale)
    ).update(heartbeat_at=now, lease_owner=WORKER_ID) == 1


def _beat(evac: Evacuation) -> bool:
    """Refresh the lease; False when another worker took it or the evacuation left RUNNING."""
    return Evacuation.objects.filter(pk=evac.pk, lease_owner=WORKER_ID, state=EvacuationState.RUNNING).update(
        heartbeat_at=timezone.now()) == 1


def advance(evacuation_id: int) -> None:
    """Move the evacuation wave by wave until it ends or is paused/aborted. Safe to call again at any point."""
    if not _take(evacuation_id):
        return
    try:
        evac = Evacuation.objects.get(pk=evacuation_id)
        while evac.wave < evac.waves:
            if not _move_wave(evac):
                return  # paused, aborted or lost the lease
            evac.wave += 1
            Evacuation.objects.filter(pk=evac.pk).update(wave=evac.wave)
        _finish(evac)
    finally:
        Evacuation.objects.filter(pk=evacuation_id, lease_owner=WORKER_ID).update(heartbeat_at=None, lease_owner="")


def _start_runs(evac: Evacuation, items: list[EvacuationItem]) -> None:
    from . import services

    for item in items:
        if item.run_id is not None:
            continue
        ce = item.cell_env
        try:
            run = services.start_run(evac.requested_by, cell=ce.cell.name, environment=ce.environment,
                                     force=evac.force, reason=f"evacuation #{evac.pk} of {evac.scope}: {evac.reason}",
                                     acknowledge_cooldown=True, evacuation=True)
        except DomainError as exc:
            EvacuationItem.objects.filter(pk=item.pk).update(state=Item.FAILED, detail=f"not started: {exc.message}")
            item.state = Item.FAILED
            continue
        EvacuationItem.objects.filter(pk=item.pk).update(run=run, state=Item.RUNNING)
        item.run_id, item.state = run.pk, Item.RUNNING


def _move_wave(evac: Evacuation) -> bool:
    """Start the wave's runs and step them together until each ends (or waits for a person). False: stop."""
    items = list(evac.items.filter(wave=evac.wave).exclude(state=Item.SKIPPED).select_related("cell_env__cell"))
    _start_runs(evac, [i for i in items if i.state == Item.PENDING])
    running = {i.run_id for i in items if i.state == Item.RUNNING and i.run_id}
    deadline = time.monotonic() + active_policy().spec.evacuation.wave_timeout_seconds
    wave = batching.Batch()
    while running:
        if not _beat(evac):
            return False
        waits = [w for w in _advance_all(sorted(running), wave) if w is not None]
        flushed = _flush(evac, wave)
        states = dict(FailoverRun.objects.filter(pk__in=running).values_list("pk", "state"))
        running = {pk for pk, state in states.items() if state in (RunState.PENDING, RunState.RUNNING, RunState.ABORTING)}
        if running and time.monotonic() > deadline:
            Evacuation.objects.filter(pk=evac.pk).update(error=f"wave {evac.wave + 1} timed out with {len(running)} run(s) moving")
            break
        if running and not flushed:  # nothing to do but wait for the clusters
            time.sleep(_idle(waits))
    _finish_items(evac, wave=evac.wave)
    return True


def _idle(waits: list[float]) -> float:
    """How long a wave with nothing to flush sleeps: the soonest wake-up a step asked for (0.05 s when they all
    asked for none, at most 1 s), or 0.2 s when no step said."""
    if not waits:
        return 0.2
    return min(min([w for w in waits if w > 0] or [0.05]), 1.0)


def _advance_all(run_ids: list[int], wave: batching.Batch) -> list[float | None]:
    """Step each run as far as it goes, inside the wave's batch; IDP_EVACUATION_THREADS runs at a time (the
    steps wait on the database and the providers, not on this process's CPU)."""
    threads = max(1, int(getattr(settings, "IDP_EVACUATION_THREADS", 4)))
    with batching.collecting(wave):
        if threads == 1 or len(run_ids) == 1:
            return [runbook.advance(r) for r in run_ids]
        contexts = [contextvars.copy_context() for _ in run_ids]  # each thread runs in its own copy of the batch's
    threads = min(threads, len(run_ids))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="evacuation") as pool:
        try:
            return list(pool.map(lambda pair: pair[0].run(runbook.advance, pair[1]), zip(contexts, run_ids)))
        finally:  # each thread closes its own database connection: the barrier makes every thread take one
            barrier = threading.Barrier(threads)
            list(pool.map(lambda _: (barrier.wait(timeout=30), connection.close()), range(threads)))


def _flush(evac: Evacuation, wave: batching.Batch) -> bool:
    """Make the wave's queued side effects: one delivery for every compute change, one switch_many per provider.
    True when there was something to make."""
    deliveries = wave.take_deliveries()
    switches = wave.take_switches()
    if deliveries:
        pipeline.deliver_batch(deliveries)
        Evacuation.objects.filter(pk=evac.pk).update(commits=F("commits") + 1)
    for provider, queued in switches.items():
        adapter = providers.adapter("traffic", provider)
        before = getattr(adapter, "calls", None)
        run_ids = list(queued)
        try:
            results = adapter.switch_many([queued[r] for r in run_ids])
            wave.switched.update(zip(run_ids, results))
        except SwitchManyError as exc:  # per host: what switched goes on, what did not fails its own run's step
            for r in run_ids:
                host = norm_name(queued[r][0])
                wave.switched[r] = exc.results.get(host) or exc.failed.get(host) or exc
        except Exception as exc:  # noqa: BLE001 - each run's step reports it (and can be resumed alone)
            wave.switched.update({r: exc for r in run_ids})
        calls = (getattr(adapter, "calls", 0) - before) if before is not None else len(run_ids)
        Evacuation.objects.filter(pk=evac.pk).update(dns_calls=F("dns_calls") + max(calls, 1))
    return bool(deliveries or switches)


def _finish_items(evac: Evacuation, wave: int | None = None) -> None:
    """Items take their run's outcome."""
    items = evac.items.filter(run__isnull=False).select_related("run")
    if wave is not None:
        items = items.filter(wave=wave)
    for item in items:
        state = RUN_TO_ITEM.get(item.run.state)
        if state and state != item.state:
            detail = item.run.error if state == Item.FAILED else item.detail
            EvacuationItem.objects.filter(pk=item.pk).update(state=state, detail=detail)


def _finish(evac: Evacuation) -> None:
    _finish_items(evac)
    counts = _counts(evac)
    state = EvacuationState.SUCCEEDED if not counts.get(Item.FAILED) and not counts.get(Item.RUNNING) else EvacuationState.FAILED
    ended = Evacuation.objects.filter(pk=evac.pk, state=EvacuationState.RUNNING).update(
        state=state, finished_at=timezone.now())
    if not ended:
        return
    evac.refresh_from_db()
    evac.report = report(evac)
    evac.save(update_fields=["report"])
    outcome = f"{counts.get(Item.SUCCEEDED, 0)} moved, {counts.get(Item.FAILED, 0)} failed, {counts.get(Item.SKIPPED, 0)} could not move"
    record_event(evac.requested_by, f"dr.evacuation.{state}", f"evacuation #{evac.pk} of {evac.scope} {state}: {outcome}",
                 evacuationId=evac.pk)
    notices.evacuation_ended(evac.pk, evac.scope, detail=f"{state}: {outcome}")


def resume_stale() -> int:
    """Send running evacuations no worker drives (its worker died)."""
    stale = timezone.now() - timedelta(seconds=settings.IDP_RUN_LEASE)
    due = Evacuation.objects.filter(state=EvacuationState.RUNNING).filter(
        Q(heartbeat_at__isnull=True, requested_at__lt=timezone.now() - timedelta(seconds=5)) | Q(heartbeat_at__lt=stale)
    ).values_list("pk", flat=True)
    return sum(send(pk) for pk in due)


# -- reading it ------------------------------------------------------------------------------------

def item_state(item: EvacuationItem) -> str:
    """An item's state as its run has it now (the evacuation records it at the end of each wave)."""
    return RUN_TO_ITEM.get(item.run.state, item.state) if item.run_id and item.run else item.state


def _counts(evac: Evacuation, items: list[EvacuationItem] | None = None) -> dict:
    from collections import Counter

    items = items if items is not None else list(evac.items.select_related("run"))
    return dict(Counter(item_state(i) for i in items))


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round((len(values) - 1) * p / 100)))]


def report(evac: Evacuation) -> dict:
    """Per tier: how many moved, RTO p50/p99 and the worst data loss against the targets."""
    tiers: dict[str, dict] = {}
    for item in evac.items.select_related("run"):
        t = tiers.setdefault(item.tier, {"cells": 0, "moved": 0, "failed": 0, "cannotMove": 0, "rto": [], "loss": [],
                                         "rtoTarget": None, "rpoTarget": None, "rtoMissed": 0, "rpoMissed": 0})
        t["cells"] += 1
        state = item_state(item)
        t["cannotMove"] += state == Item.SKIPPED
        t["failed"] += state == Item.FAILED
        run = item.run
        if run is None or state != Item.SUCCEEDED:
            continue
        t["moved"] += 1
        t["rtoTarget"], t["rpoTarget"] = run.rto_target_seconds, run.rpo_target_seconds
        if run.rto_seconds is not None:
            t["rto"].append(run.rto_seconds)
            t["rtoMissed"] += run.rto_seconds > run.rto_target_seconds
        if run.data_loss_seconds is not None:
            t["loss"].append(run.data_loss_seconds)
            t["rpoMissed"] += run.data_loss_seconds > run.rpo_target_seconds
    out = {}
    for name, t in tiers.items():
        rto, loss = t.pop("rto"), t.pop("loss")
        out[name] = {**t, "rtoP50Seconds": _percentile(rto, 50), "rtoP99Seconds": _percentile(rto, 99),
                     "dataLossMaxSeconds": max(loss) if loss else None}
    return {"tiers": out, "commits": evac.commits, "dnsCalls": evac.dns_calls}


def detail(evac: Evacuation) -> dict:
    """The API's view: state, counts, and per cell its run's state, RTO and data loss (failures first)."""
    items = list(evac.items.select_related("cell_env__cell", "run"))
    counts = _counts(evac, items)
    rank = {Item.FAILED: 0, Item.RUNNING: 1, Item.PENDING: 2, Item.SKIPPED: 3, Item.ABORTED: 4, Item.SUCCEEDED: 5}
    items.sort(key=lambda i: (rank.get(item_state(i), 9), i.position))
    return {
        "id": evac.pk, "state": evac.state, "scope": {"cloud": evac.cloud, "region": evac.region or None,
                                                      "cluster": evac.cluster or None},
        "reason": evac.reason, "force": evac.force, "requestedBy": evac.requested_by.username if evac.requested_by_id else None,
        "requestedAt": evac.requested_at.isoformat(), "finishedAt": evac.finished_at.isoformat() if evac.finished_at else None,
        "wave": min(evac.wave + 1, evac.waves), "waves": evac.waves, "error": evac.error,
        "counts": {s.value: counts.get(s.value, 0) for s in Item},
        "commits": evac.commits, "dnsCalls": evac.dns_calls,
        "cells": [{"cell": i.cell_env.cell.name, "environment": i.cell_env.environment, "tier": i.tier,
                   "wave": i.wave + 1 if i.wave is not None else None, "state": item_state(i),
                   "detail": i.run.error if item_state(i) == Item.FAILED and i.run and i.run.error else i.detail,
                   "runId": i.run_id, "runState": i.run.state if i.run else None,
                   "rtoSeconds": i.run.rto_seconds if i.run else None,
                   "dataLossSeconds": i.run.data_loss_seconds if i.run else None} for i in items],
        "report": evac.report or None,
        "statusUrl": f"/api/evacuations/{evac.pk}",
    }


def visible(actor):
    access.require_operator(actor, "read evacuations")
    return Evacuation.objects.select_related("requested_by")


def summary(evac: Evacuation) -> dict:
    return {"id": evac.pk, "state": evac.state, "scope": evac.scope, "reason": evac.reason,
            "requestedAt": evac.requested_at.isoformat(), "finishedAt": evac.finished_at.isoformat() if evac.finished_at else None,
            "waves": evac.waves, "statusUrl": f"/api/evacuations/{evac.pk}"}
