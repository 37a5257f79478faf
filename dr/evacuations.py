"""Region, cluster and cloud evacuation: every cell environment whose writer is in the scope fails over.

`plan(scope)` says, changing nothing, what would move (in order: the policy's tier order, then the tightest
RPO first), where to, the RPO gate each faces, and what cannot move and why. `start` records the plan as an
Evacuation with an item per cell environment; `advance` (a Celery task holding a lease) moves it wave by wave:
it starts each wave's failover runs (ordinary runs, each with its own steps and report) and steps them
together inside a `dr.batch` (spread over IDP_EVACUATION_SHARDS worker processes) so their side effects are batched: one delivery (one GitOps commit) per phase
of the wave, one `switch_many` per traffic provider (one change per DNS zone). Pause, resume and abort act
on the whole evacuation.
"""
from __future__ import annotations

import contextvars
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
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
from . import notices, providers, readiness, runbook
from .models import (ACTIVE_STATES, HOLDS_THE_CELL, Evacuation, EvacuationItem, EvacuationShard, EvacuationState,
                     FailoverRun, FailoverStep, RunState, RunType)
from .traffic.base import SwitchManyError
from .traffic.records import norm_name

log = logging.getLogger(__name__)
WORKER_ID = runbook.WORKER_ID  # one identity per process: a shard's claimant is its runs' lease owner
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
        try:
            with transaction.atomic():
                evac = Evacuation.objects.create(cloud=scope.cloud, region=scope.region, cluster=scope.cluster,
                                                 reason=reason, force=force, requested_by=actor, plan=summary,
                                                 waves=summary["waves"])
        except IntegrityError:  # another was started at the same moment (one_evacuation_at_a_time)
            raise Conflict("another evacuation was started at the same moment: finish, resume or abort it first") from None
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
        evac = Evacuation.objects.select_related("requested_by").get(pk=evacuation_id)
        while evac.wave < evac.waves:
            if not _move_wave(evac):
                return  # paused, aborted or lost the lease
            evac.wave += 1
            Evacuation.objects.filter(pk=evac.pk).update(wave=evac.wave)
        if _move_wave(evac):  # every wave's traffic has moved: now their last steps, all together
            _finish(evac)
    finally:
        Evacuation.objects.filter(pk=evacuation_id, lease_owner=WORKER_ID).update(heartbeat_at=None, lease_owner="")


def _start_runs(evac: Evacuation, items: list[EvacuationItem]) -> list[int]:
    """Start the items' failover runs; the ids of those started (an item that cannot start fails and says why)."""
    from . import services

    started = []
    for item in items:
        ce = item.cell_env
        with transaction.atomic():  # the item's row lock: a shard given up but still alive cannot start it twice
            if not EvacuationItem.objects.select_for_update().filter(pk=item.pk, run__isnull=True, state=Item.PENDING).exists():
                continue
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
        started.append(run.pk)
    return started


def _to_start(evac: Evacuation) -> list[EvacuationItem]:
    return list(evac.items.filter(wave=evac.wave, state=Item.PENDING, run__isnull=True).select_related("cell_env__cell"))


def _moving(evac: Evacuation) -> set[int]:
    """The evacuation's runs up to this wave still moving; once every wave has started, all of them, otherwise
    only those whose traffic has not been switched yet."""
    rows = EvacuationItem.objects.filter(evacuation=evac, state=Item.RUNNING, wave__lte=evac.wave,
                                         run__state__in=(RunState.PENDING, RunState.RUNNING, RunState.ABORTING))
    if evac.wave >= evac.waves:
        return set(rows.values_list("run_id", flat=True))
    return set(rows.filter(run__traffic_switched_at__isnull=True).values_list("run_id", flat=True))


def _move_wave(evac: Evacuation) -> bool:
    """Start the wave's runs and step them together (with any earlier run still short of its switch) until every
    one has switched traffic, ended, or waits for a person; then the next wave starts. Traffic first: the runs'
    last steps (old side to standby, record) wait until every wave's traffic has moved, and are then stepped
    together (`evac.wave == evac.waves`) until every run ends, their changes in one commit. False: stop (paused,
    aborted, lease lost)."""
    to_start = _to_start(evac)
    moving = _moving(evac)
    deadline = time.monotonic() + active_policy().spec.evacuation.wave_timeout_seconds
    wave = batching.Batch()
    while moving or to_start:
        if not _beat(evac):
            return False
        waits = _step_round(evac, sorted(moving), to_start, wave)
        flushed = _flush(evac, wave)
        to_start, moving = _to_start(evac), _moving(evac)  # what a shard given up did not start, this round starts
        if moving and time.monotonic() > deadline:
            Evacuation.objects.filter(pk=evac.pk).update(error=f"wave {evac.wave + 1} timed out with {len(moving)} run(s) moving")
            break
        if moving and not flushed:  # nothing to do but wait for the clusters
            time.sleep(_idle(waits))
    _finish_items(evac)
    return True


def _idle(waits: list[float]) -> float:
    """How long a wave with nothing to flush sleeps: the soonest wake-up a step asked for (0.05 s when they all
    asked for none, at most 1 s), or 0.2 s when no step said."""
    if not waits:
        return 0.2
    return min(min([w for w in waits if w > 0] or [0.05]), 1.0)


def _step_round(evac: Evacuation, run_ids: list[int], to_start: list[EvacuationItem], wave: batching.Batch) -> list[float]:
    """Start `to_start`'s runs and step every moving run once; the wake-ups they asked for. The work is split in up
    to IDP_EVACUATION_SHARDS shards: a Celery task steps each shard but the first in another worker process while
    this one steps the first (one process runs Python on one core), then takes over any shard no worker has
    started. What the other shards' steps left for the wave (held deliveries, queued switches) comes back in
    their rows."""
    count = max(1, min(settings.IDP_EVACUATION_SHARDS, (len(run_ids) + len(to_start)) // max(1, settings.IDP_EVACUATION_SHARD_MIN)))
    runs, starts = [run_ids[i::count] for i in range(count)], [to_start[i::count] for i in range(count)]
    shards = [EvacuationShard.objects.create(evacuation=evac, run_ids=runs[i], item_ids=[item.pk for item in starts[i]])
              for i in range(1, count)]
    for shard in shards:
        _send_shard(shard.pk)
    try:
        waits = _start_and_step(evac, starts[0], runs[0], wave)
        for shard, items in zip(shards, starts[1:]):
            waits += _collect(evac, shard, items, wave)
    finally:  # a round's rows go with it (a worker that finishes one given up finds it gone and changes nothing)
        EvacuationShard.objects.filter(pk__in=[s.pk for s in shards]).delete()
    return waits


def _start_and_step(evac: Evacuation, items: list[EvacuationItem], run_ids: list[int], wave: batching.Batch) -> list[float]:
    started = _start_runs(evac, items)
    return [w for w in _advance_all(run_ids + started, wave) if w is not None]


def _send_shard(shard_id: int) -> None:
    from .tasks import step_evacuation_shard

    try:
        step_evacuation_shard.apply_async((shard_id,))
    except Exception as exc:  # noqa: BLE001 - the evacuation's own worker steps it instead
        log.warning("broker unavailable, shard %s is stepped by the evacuation's worker: %s", shard_id, exc)


def _claim(shard_id: int) -> bool:
    return EvacuationShard.objects.filter(pk=shard_id, claimed_by="").update(claimed_by=WORKER_ID) == 1


def step_shard(shard_id: int) -> None:
    """A worker's part of a round (the Celery task): start and step the shard's runs in a batch of its own, and
    leave what they held and queued in the shard's row for the evacuation's worker."""
    if not _claim(shard_id):
        return  # the evacuation's worker took it over
    shard = EvacuationShard.objects.select_related("evacuation__requested_by").get(pk=shard_id)
    items = list(EvacuationItem.objects.filter(pk__in=shard.item_ids).select_related("cell_env__cell"))
    batch = batching.Batch()
    started = time.monotonic()
    waits = _start_and_step(shard.evacuation, items, shard.run_ids, batch)
    log.info("evacuation %s: shard %s stepped %d run(s) and started %d in %.2f s", shard.evacuation_id, shard_id,
             len(shard.run_ids), len(items), time.monotonic() - started)
    EvacuationShard.objects.filter(pk=shard_id).update(
        finished_at=timezone.now(), deliveries=batch.deliveries, wait=_idle(waits) if waits else None,
        switches={p: {str(r): list(v) for r, v in queued.items()} for p, queued in batch.switches.items()})


def _collect(evac: Evacuation, shard: EvacuationShard, items: list[EvacuationItem], wave: batching.Batch) -> list[float]:
    """Wait for a shard another worker steps (or step it here if none has started it); add what it left to the
    wave. A shard whose worker stopped stepping its runs for a lease is given up: its runs' leases expire and the
    next round steps them again (its held deliveries are pending rows the dispatcher sends; its queued switches
    queue again; the next round starts the items it did not)."""
    if _claim(shard.pk):
        return _start_and_step(evac, items, shard.run_ids, wave)
    alive = checked = time.monotonic()
    while True:
        row = EvacuationShard.objects.filter(pk=shard.pk).values("finished_at", "deliveries", "switches", "wait", "claimed_by").first()
        if row is None or row["finished_at"] is not None:
            break
        now = time.monotonic()
        if now - checked > 1.0:
            checked = now
            fresh = timezone.now() - timedelta(seconds=settings.IDP_RUN_LEASE)
            if FailoverRun.objects.filter(Q(pk__in=shard.run_ids) | Q(evacuation_item__in=shard.item_ids),
                                          lease_owner=row["claimed_by"], heartbeat_at__gte=fresh).exists():
                alive = now
            elif now - alive > settings.IDP_RUN_LEASE:
                log.warning("shard %s of evacuation %s: its worker %s stopped stepping; the next round steps its runs",
                            shard.pk, evac.pk, row["claimed_by"])
                return []
        time.sleep(0.01)
    if row is None:
        return []
    wave.deliveries += row["deliveries"]
    for provider, queued in row["switches"].items():
        wave.switches.setdefault(provider, {}).update({int(r): tuple(v) for r, v in queued.items()})
    return [row["wait"]] if row["wait"] is not None else []


def _advance_all(run_ids: list[int], wave: batching.Batch) -> list[float | None]:
    """Step each run as far as it goes, inside the wave's batch; IDP_EVACUATION_THREADS runs at a time (the
    steps wait on the database and the providers, not on this process's CPU)."""
    taken = runbook.take_many(run_ids)  # the leases and the first reads, for all of them at once
    wakes: dict[int, float | None] = {}
    with runbook._leases.kept(*taken):
        try:
            return _advance_taken(taken, wave, wakes)
        finally:
            runbook.release_many({r: wakes.get(r) for r in taken})


def _advance_taken(taken: dict, wave: batching.Batch, wakes: dict[int, float | None]) -> list[float | None]:
    def one(run_id: int) -> float | None:
        wakes[run_id] = runbook.advance(run_id, taken[run_id])
        return wakes[run_id]

    run_ids = list(taken)
    threads = min(max(1, int(getattr(settings, "IDP_EVACUATION_THREADS", 4))), len(run_ids))
    with batching.collecting(wave):
        if threads <= 1:
            return [one(r) for r in run_ids]
        contexts = [contextvars.copy_context() for _ in run_ids]  # each thread runs in its own copy of the batch's
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="evacuation") as pool:
        try:
            return list(pool.map(lambda pair: pair[0].run(one, pair[1]), zip(contexts, run_ids)))
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
    switched: dict[int, object] = {}
    for provider, queued in switches.items():
        adapter = providers.adapter("traffic", provider)
        before = getattr(adapter, "calls", None)
        run_ids = list(queued)
        try:
            results = adapter.switch_many([queued[r] for r in run_ids])
            switched.update(zip(run_ids, results))
        except SwitchManyError as exc:  # per host: what switched goes on, what did not fails its own run's step
            for r in run_ids:
                host = norm_name(queued[r][0])
                switched[r] = exc.results.get(host) or exc.failed.get(host) or exc
        except Exception as exc:  # noqa: BLE001 - each run's step reports it (and can be resumed alone)
            switched.update({r: exc for r in run_ids})
        calls = (getattr(adapter, "calls", 0) - before) if before is not None else len(run_ids)
        Evacuation.objects.filter(pk=evac.pk).update(dns_calls=F("dns_calls") + max(calls, 1))
    if switched:  # each run's switch step finds what happened to it, whichever worker steps it next
        at = timezone.now()
        steps = list(FailoverStep.objects.filter(run_id__in=switched, name="switch_traffic"))
        for step in steps:
            step.output = {**step.output, batching.SWITCHED: batching.switched_output(switched[step.run_id], at)}
        FailoverStep.objects.bulk_update(steps, ["output"])
        _record_switched([r for r, result in switched.items() if not isinstance(result, Exception)], at)
    return bool(deliveries or switches)


def _record_switched(run_ids: list[int], at) -> None:
    """Traffic moved at `at` for these runs: said at once (their RTO, the cell's active side) rather than when each
    run's switch step takes its result, so an abort (which must not roll back a run whose traffic moved), a reader
    and the next wave see it now."""
    runs = list(FailoverRun.objects.filter(pk__in=run_ids, traffic_switched_at__isnull=True)
                .only("pk", "requested_at", "cell_env_id", "to_side"))
    for run in runs:
        run.traffic_switched_at, run.rto_seconds = at, (at - run.requested_at).total_seconds()
    FailoverRun.objects.bulk_update(runs, ["traffic_switched_at", "rto_seconds"])
    for side in {r.to_side for r in runs}:
        CellEnvironment.objects.filter(pk__in=[r.cell_env_id for r in runs if r.to_side == side]).update(active_side=side)


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
    for cell_env_id in evac.items.filter(run__isnull=False).values_list("cell_env_id", flat=True):
        readiness.schedule(cell_env_id)  # not evaluated while their runs moved them
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
