"""The failover runbook: a durable state machine whose steps call provider adapters.

`advance(run_id)` takes the run with a lease (compare-and-set), executes steps in
order until one must wait, pause, fail, or the run ends, recording each step's
timing, output and error. Each step checks what is already done before acting, so
a run resumed after a worker died never repeats a side effect. Before any step that
changes roles or traffic the safety invariants are checked.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cells import pipeline
from cells import services as cell_services
from cells.models import CellEnvironment, ClaimStatus
from policy.active import active_policy

from . import batch, notices, providers
from .endpoints import endpoint_for, side_of
from .errors import ProviderError, TransientProviderError, Unreachable
from .models import MOVING_STATES, FailoverRun, FailoverStep, RunState, RunType, StepState

log = logging.getLogger(__name__)
WORKER_ID = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"


# -- outcomes and invariants ---------------------------------------------------------

@dataclass
class Done:
    output: dict = field(default_factory=dict)


@dataclass
class Wait:
    seconds: float
    output: dict = field(default_factory=dict)


@dataclass
class Pause:
    output: dict = field(default_factory=dict)


@dataclass
class Failed:
    error: str
    output: dict = field(default_factory=dict)


class InvariantViolation(Exception):
    def __init__(self, rule: str, detail: str):
        super().__init__(f"safety rule '{rule}' would break: {detail}")
        self.rule = rule


def check_single_writer(ce: CellEnvironment, allowed: tuple[str, ...]) -> None:
    """Each cell has at most one writer, the holder of the current epoch, and it is one of `allowed`."""
    writers = ce.writers()
    if len(writers) > 1:
        raise InvariantViolation("single-writer", f"both sides hold epoch {ce.epoch}")
    if writers and writers[0] not in allowed:
        raise InvariantViolation("single-writer", f"{writers[0]} still holds epoch {ce.epoch}; expected {', '.join(allowed) or 'none'}")


def check_traffic_target(ce: CellEnvironment, to_side: str, healthy: bool) -> None:
    """Traffic may only move to the side that holds the writer epoch and serves healthily."""
    if ce.writers() != [to_side]:
        raise InvariantViolation("traffic-follows-writer", f"{to_side} does not hold the writer epoch {ce.epoch}")
    if not healthy:
        raise InvariantViolation("at-least-one-side-serving", f"{to_side} compute is not healthy")


# -- step plans -------------------------------------------------------------------------

@dataclass(frozen=True)
class StepSpec:
    """A step, declared once: what it is called, what it does, its time limit (a key of the policy's
    failover.stepTimeouts; None: none) and its error mode ("continue": best effort). The portal summarises each
    step's output by the same name (portal/runs.py SUMMARIES)."""

    name: str
    title: str
    run: Callable[["Context"], object]
    timeout: str | None
    error_mode: str = "stop"
    changes: bool = True  # False: it only looks (a run that fails there has changed nothing)


NO_TIMEOUT = 86400  # approval waits for a person; record is instant


def plan(run: FailoverRun, needs_approval: bool) -> list[str]:
    if run.type == RunType.DRILL:
        return ["precheck", "check_lag", "record"]
    approval = ["approval"] if needs_approval else []
    if run.type == RunType.FAILOVER:
        return ["precheck", "check_lag", "fence", "promote", "activate_compute", *approval, "switch_traffic",
                "standby_old_compute", "record"]
    return ["precheck", "check_lag", "fence", "catch_up", "promote", "activate_compute", *approval, "switch_traffic",
            "reprotect", "record"]


def needs_approval(policy, ce: CellEnvironment, run_type: str) -> bool:
    return any(ce.tier in rule.tiers and run_type in rule.types for rule in policy.spec.failover.approval_before_traffic_switch)


def create_steps(run: FailoverRun, names: list[str]) -> None:
    timeouts = active_policy().spec.failover.step_timeouts
    FailoverStep.objects.bulk_create([
        FailoverStep(run=run, index=i, name=name, title=STEPS[name].title, error_mode=STEPS[name].error_mode,
                     timeout_seconds=getattr(timeouts, STEPS[name].timeout) if STEPS[name].timeout else NO_TIMEOUT)
        for i, name in enumerate(names)
    ])


# -- the context a step runs in -----------------------------------------------------------

class Context:
    """What a run's steps read: built once per `advance` (the steps that change the cell environment keep this
    copy current), with the step being run and, when the runbook has them, the run's steps by name."""

    def __init__(self, run: FailoverRun, steps: dict[str, FailoverStep] | None = None, loaded: "Taken | None" = None):
        self.run = run
        self.step: FailoverStep | None = None
        self.steps = steps
        self.policy = active_policy()
        if loaded is not None:
            self.ce, repl = loaded.ce, loaded.replication
        else:
            self.ce = CellEnvironment.objects.select_related("cell__team", "placement").get(pk=run.cell_env_id)
            repl = self.ce.replicationclaims.first()
        self.tool = repl.tool if repl else None
        tool = self.policy.spec.replication_tools.get(self.tool) if self.tool else None
        self.tool_adapters = tool.adapters if tool else None
        self.actor = run.requested_by
        self.compute = providers.adapter("compute", self.policy.spec.failover.compute_activator)
        self._health: dict[str, tuple[bool, dict]] = {}

    def health(self, side: str) -> tuple[bool, dict]:
        """The side's compute health; a healthy answer holds for the rest of this `advance` (the switch right after
        an activation that found it healthy does not observe it again)."""
        if side in self._health:
            return self._health[side]
        healthy, health = self.compute.health(self.ce, side)
        if healthy:
            self._health[side] = (healthy, health)
        return healthy, health

    def adapter(self, role: str, side: str | None = None):
        """The adapter for `role`; for the data roles, acting on `side`'s database (the policy may name the
        side's own database adapter)."""
        if role == "traffic":
            return providers.adapter("traffic", self.ce.traffic_provider)
        if self.tool_adapters is None:
            raise ProviderError("the cell has no replication claim: request a MySQL first")
        return providers.data_adapter(self.policy, self.ce, role, getattr(self.tool_adapters, role), side)

    def step_of(self, name: str) -> FailoverStep | None:
        if self.steps is not None:
            return self.steps.get(name)
        return self.run.steps.filter(name=name).first()

    def output_of(self, name: str) -> dict:
        step = self.step_of(name)
        return step.output if step else {}

    @property
    def from_side(self) -> str:
        return self.run.from_side

    @property
    def to_side(self) -> str:
        return self.run.to_side


# -- the steps -----------------------------------------------------------------------------

def precheck(ce: CellEnvironment, to: str, from_side: str, host: str | None) -> tuple[list[str], dict]:
    """(problems, what was seen) for moving `ce` to the `to` side: the precheck step, and the portal's
    confirmation before anyone presses Start (so a run that would stop at once is not started)."""
    problems = []
    all_databases = list(ce.mysqlclaims.all())
    databases, apps = [c for c in all_databases if c.side == to], list(ce.applications.filter(side=to))
    claims = databases + apps
    if not databases:
        problems.append(f"no MySQL claim on the {to} side")
    if not apps:
        problems.append(f"no application on the {to} side")
    problems += [f"{c.name} is {c.status}" for c in claims if c.status != ClaimStatus.READY]
    out = {"targetSide": to, "targetClaims": {c.name: c.status for c in claims}}
    if host and batch.provider_read(ce.traffic_provider):
        out["traffic"] = {"host": host, "provider": providers.adapter_label(ce.traffic_provider),
                          "read": "once for its wave (the batched switch reads every zone back)"}
    elif host:
        try:
            state = providers.adapter("traffic", ce.traffic_provider).current(host)
            out["traffic"] = {"host": host, "answer": state.value, "side": side_of(ce, state.value),
                              "provider": providers.adapter_label(ce.traffic_provider)}
            batch.note_provider_read(ce.traffic_provider)
        except ProviderError as exc:
            problems.append(f"traffic provider cannot read {host}: {exc}")
    else:
        problems.append("no public host: request an app with traffic.publicHost first")
    fence_target = next((c for c in all_databases if c.side == from_side), None)
    if fence_target is None:
        problems.append(f"fence target unknown: no MySQL claim on the {from_side} side")
    else:
        out["fenceTarget"] = fence_target.name
    if not ce.replicationclaims.exists():
        problems.append("no replication claim")
    out["writerEpoch"] = {"epoch": ce.epoch, "writer": ce.writers()}
    return problems, out


def step_precheck(ctx: Context) -> Done | Failed:
    problems, out = precheck(ctx.ce, ctx.to_side, ctx.from_side, ctx.run.host)
    if problems:
        return Failed("precheck failed: " + "; ".join(problems), out)
    return Done(out)


def step_check_lag(ctx: Context) -> Done | Failed:
    run = ctx.run
    rpo = run.rpo_target_seconds
    reading = ctx.adapter("probe", ctx.to_side).lag(ctx.ce, ctx.from_side, ctx.to_side)
    out = {"lagSeconds": reading.seconds, "measuredAt": reading.measured_at.isoformat(), "rpoSeconds": rpo,
           "detail": reading.detail}
    if reading.seconds is not None and reading.seconds <= rpo:
        return Done({**out, "withinRPO": True})
    why = ("replication lag is unknown (no recent measurement)" if reading.seconds is None
           else f"replication lag {reading.seconds:g}s is above the RPO of {rpo}s")
    if run.force and run.type != RunType.DRILL:
        return Done({**out, "withinRPO": False, "forced": True, "forceReason": run.reason,
                     "warning": f"{why}; forced by {run.requested_by} — {run.reason}"})
    return Failed(f"{why}; an operator can force the failover with a written reason", {**out, "withinRPO": False})


def step_fence(ctx: Context) -> Done | Failed:
    run, ce = ctx.run, ctx.ce
    check_single_writer(ce, (ctx.from_side,) if run.epoch_after is None else ())
    # The measured data-loss window: the lag when writes stop on the old writer.
    lag_out = ctx.output_of("check_lag")
    out: dict = {}
    fence_result: dict
    try:
        if run.type != RunType.FAILOVER:
            pre = ctx.adapter("probe", ctx.to_side).lag(ce, ctx.from_side, ctx.to_side)
            out["lagAtFenceSeconds"] = pre.seconds
        fence_result = ctx.adapter("fence", ctx.from_side).fence(ce, ctx.from_side, ce.epoch + (0 if run.epoch_after else 1))
        out.update({"fenced": True, "reachable": True, **fence_result})
    except Unreachable as exc:
        if run.type != RunType.FAILOVER:
            return Failed(f"cannot fence the {ctx.from_side} side for a planned {run.type}: {exc}")
        out.update({"fenced": False, "reachable": False, "bestEffort": True,
                    "warning": f"old writer unreachable ({exc}); the raised epoch keeps it from writing when it returns"})
    if "lagAtFenceSeconds" not in out:
        out["lagAtFenceSeconds"] = lag_out.get("lagSeconds")
    if run.epoch_after is None:
        new_epoch = ce.epoch + 1
        epochs = {s: ce.side_epoch(s) for s in ("primary", "secondary")}
        # Compare-and-set: only if nobody changed the cell's epoch since this run read it.
        if CellEnvironment.objects.filter(pk=ce.pk, epoch=ce.epoch).update(epoch=new_epoch, side_epochs=epochs) != 1:
            return Failed("the cell's fencing epoch changed under this run; refusing to continue")
        FailoverRun.objects.filter(pk=run.pk).update(epoch_before=ce.epoch, epoch_after=new_epoch,
                                                     data_loss_seconds=out["lagAtFenceSeconds"])
        run.epoch_before, run.epoch_after = ce.epoch, new_epoch
        ce.epoch, ce.side_epochs = new_epoch, epochs
    out["epoch"] = run.epoch_after
    return Done(out)


def step_catch_up(ctx: Context) -> Done | Wait:
    reading = ctx.adapter("probe", ctx.to_side).lag(ctx.ce, ctx.from_side, ctx.to_side)
    out = {"lagSeconds": reading.seconds, "measuredAt": reading.measured_at.isoformat()}
    if reading.seconds == 0:
        FailoverRun.objects.filter(pk=ctx.run.pk).update(data_loss_seconds=0)
        return Done({**out, "caughtUp": True})
    return Wait(1.0, {**out, "caughtUp": False})


def step_promote(ctx: Context) -> Done | Failed:
    run, ce = ctx.run, ctx.ce
    check_single_writer(ce, (ctx.to_side,))
    result = ctx.adapter("promoter", ctx.to_side).promote(ce, ctx.to_side, run.epoch_after)
    restored = (result.get("restored") or {}).get("externalName")
    if restored:  # backup-restore: the cell's claim adopts the restored database
        delivery = cell_services.adopt_restored_database(ctx.actor, ce, ctx.to_side, restored,
                                                         f"{run.type} #{run.pk}: restored")
        result["adoptedBy"] = {"claim": f"{ce.cell.name}-{ce.environment}-mysql-{ctx.to_side}",
                               "delivery": delivery.pk if delivery else None}
    window = _loss_window(ctx, result)
    if window is not None:
        result["dataLossWindowSeconds"] = window
        FailoverRun.objects.filter(pk=run.pk).update(data_loss_seconds=window)
    epochs = {s: ce.side_epoch(s) for s in ("primary", "secondary")}
    epochs[ctx.to_side] = run.epoch_after
    CellEnvironment.objects.filter(pk=ce.pk, epoch=run.epoch_after).update(side_epochs=epochs, writer_side=ctx.to_side)
    ce.refresh_from_db()
    check_single_writer(ce, (ctx.to_side,))
    return Done({**result, "writer": ctx.to_side, "epoch": run.epoch_after})


def _loss_window(ctx: Context, promoted: dict) -> float | None:
    """Unplanned failover: writes after the newest heartbeat the promoted side applied, up to the fence,
    may be lost. Planned runs wait for zero lag instead (their window is zero)."""
    from datetime import datetime

    if ctx.run.type != RunType.FAILOVER:
        return None
    fence = ctx.step_of("fence")
    lost = transactions_lost(fence.output.get("gtidAtFence"), promoted.get("gtidAfterPromotion"))
    if lost is not None:
        promoted["transactionsLost"] = lost
        if lost == 0:
            return 0.0  # the fenced writer's last transaction reached the promoted side
    if not promoted.get("lastAppliedHeartbeat"):
        return None
    beat = datetime.fromisoformat(promoted["lastAppliedHeartbeat"])
    return round(max(0.0, (fence.started_at - beat).total_seconds()), 3)


def transactions_lost(at_fence: str | None, after_promotion: str | None) -> int | None:
    """Transactions the old writer had (MariaDB GTID positions, `domain-server-seq,...`) that the promoted side lacks."""
    if not at_fence or after_promotion is None:
        return None
    try:
        promoted = {int(d): int(n) for d, _, n in (g.split("-") for g in after_promotion.split(",") if g)}
        return sum(max(0, int(n) - promoted.get(int(d), 0)) for d, _, n in (g.split("-") for g in at_fence.split(",") if g))
    except ValueError:
        return None  # not a MariaDB position (MySQL UUID sets): the heartbeat window stands


def step_activate_compute(ctx: Context) -> Done | Wait:
    replicas = cell_services.full_replicas(ctx.policy, ctx.ce)
    out = ctx.compute.set(ctx.actor, ctx.ce, ctx.to_side, "active", replicas, f"{ctx.run.type} #{ctx.run.pk}: activate")
    if out.get("delivery") and pipeline.is_holding():  # held for its wave's commit: nothing to observe before it
        return Wait(0.0, {**out, "healthy": False, "waitingFor": "its wave's commit"})
    healthy, health = ctx.health(ctx.to_side)
    out["health"] = health
    return Done({**out, "healthy": True}) if healthy else Wait(1.0, {**out, "healthy": False})


def step_approval(ctx: Context) -> Done | Pause:
    run = ctx.run
    if run.approved_by_id:
        return Done({"approvedBy": run.approved_by.username})
    return Pause({"waitingFor": "an operator's approval before the traffic switch (policy failover.approvalBeforeTrafficSwitch)"})


def step_switch_traffic(ctx: Context) -> Done | Failed:
    run, ce = ctx.run, ctx.ce
    healthy, _ = ctx.health(ctx.to_side)
    check_traffic_target(ce, ctx.to_side, healthy)
    target = endpoint_for(ce, ctx.to_side)
    result, switched_at = batch.switch_result(ctx.step.output) if ctx.step is not None else (None, None)
    if result is None:
        if batch.defer_switch(run.pk, ce.traffic_provider, run.host, target):
            return Wait(0.0, {"host": run.host, "queued": "with its wave's batched switch (one change per DNS zone)"})
        # switch() reads the record back and raises when it does not show the target (TrafficProviderBase)
        result = ctx.adapter("traffic").switch(run.host, target)
    elif isinstance(result, Exception):
        raise result
    now = switched_at or timezone.now()  # a batched switch was made when its wave made it
    CellEnvironment.objects.filter(pk=ce.pk).update(active_side=ctx.to_side)
    ce.active_side = ctx.to_side
    if run.traffic_switched_at is None:
        rto = (now - run.requested_at).total_seconds()
        FailoverRun.objects.filter(pk=run.pk, traffic_switched_at__isnull=True).update(traffic_switched_at=now, rto_seconds=rto)
    return Done({"host": run.host, "from": result.previous, "to": result.current, "changed": result.changed,
                 "verified": True, "detail": result.detail, "provider": providers.adapter_label(ce.traffic_provider)})


def _old_side_to_standby(ctx: Context) -> tuple[bool, dict]:
    mode, replicas = cell_services.standby_compute(ctx.policy, ctx.ce)
    return ctx.compute.standby(ctx.actor, ctx.ce, ctx.from_side, mode, replicas,
                               f"{ctx.run.type} #{ctx.run.pk}: old side to standby")


def step_reprotect(ctx: Context) -> Done | Wait:
    ce = ctx.ce
    result = ctx.adapter("promoter", ctx.from_side).reprotect(ce, ctx.to_side, ctx.from_side)
    cell_services.reverse_replication(ctx.actor, ce, source_side=ctx.to_side, reason=f"{ctx.run.type} #{ctx.run.pk}: reprotect")
    done, compute = _old_side_to_standby(ctx)
    out = {"replication": result, "oldSideCompute": compute}
    return Done(out) if done else Wait(1.0, out)


def step_standby_old_compute(ctx: Context) -> Done | Wait:
    done, compute = _old_side_to_standby(ctx)
    return Done(compute) if done else Wait(1.0, compute)


def step_record(ctx: Context) -> Done:
    run, ce = ctx.run, ctx.ce
    if run.type != RunType.DRILL:
        ce.last_failover_at = timezone.now()
        CellEnvironment.objects.filter(pk=ce.pk).update(last_failover_at=ce.last_failover_at)
    return Done({"writer": ce.writers(), "activeSide": ce.active_side, "epoch": ce.epoch})


STEPS: dict[str, StepSpec] = {spec.name: spec for spec in (
    StepSpec("precheck", "Precheck the target side: claims and applications ready, traffic record reachable, fence "
             "target known", step_precheck, "precheck", changes=False),
    StepSpec("check_lag", "Replication lag within the DR profile's RPO", step_check_lag, "check_lag", changes=False),
    StepSpec("fence", "Fence writes on the old writer and raise the fencing epoch", step_fence, "fence"),
    StepSpec("catch_up", "Wait until the target has applied everything (lag zero)", step_catch_up, "catch_up"),
    StepSpec("promote", "Promote the target database (stop replication, make it writable)", step_promote, "promote"),
    StepSpec("activate_compute", "Activate the target side's compute and wait until healthy", step_activate_compute,
             "activate_compute"),
    StepSpec("approval", "Operator approval before the traffic switch", step_approval, None),
    StepSpec("switch_traffic", "Switch traffic to the target side and verify", step_switch_traffic, "switch_traffic"),
    StepSpec("reprotect", "Reprotect: replicate from the new writer to the old one; old side's compute to standby",
             step_reprotect, "reprotect"),
    StepSpec("standby_old_compute", "Put the old side's compute in standby (best effort)", step_standby_old_compute,
             "activate_compute", "continue"),
    StepSpec("record", "Record the result, roles and report", step_record, None),
)}


# -- driving a run ---------------------------------------------------------------------------

def _take(run_id: int) -> bool:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.IDP_RUN_LEASE)
    return FailoverRun.objects.filter(pk=run_id, state__in=MOVING_STATES).filter(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale)
    ).update(lease_owner=WORKER_ID, heartbeat_at=now) == 1


class _LeaseKeeper:
    """Keeps the leases of the runs this process is stepping: a managed database's promotion or restore takes
    minutes, far longer than the lease, and another worker must not take the run over from a live one. One
    thread for the process (an evacuation steps hundreds of runs); if the process dies, the heartbeats stop and
    the leases expire as before."""

    def __init__(self):
        self.held: dict[int, int] = {}  # run id -> how many callers hold it
        self.changed = threading.Condition()
        self.thread: threading.Thread | None = None

    @contextmanager
    def kept(self, *run_ids: int):
        with self.changed:
            idle = not self.held
            for run_id in run_ids:
                self.held[run_id] = self.held.get(run_id, 0) + 1
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._beat, name="run-leases", daemon=True)
                self.thread.start()
            if idle:  # it sleeps without a timeout: wake it (it reads the lease afresh, a test's shorter one too)
                self.changed.notify()
        try:
            yield
        finally:
            with self.changed:
                for run_id in run_ids:
                    self.held[run_id] -= 1
                    if not self.held[run_id]:
                        del self.held[run_id]

    def _beat(self) -> None:
        from django.db import connection

        while True:
            with self.changed:
                while not self.held:  # idle: sleep until a run is kept
                    self.changed.wait()
                last = time.monotonic()
                while self.held and time.monotonic() - last < settings.IDP_RUN_LEASE / 3:
                    self.changed.wait(max(0.01, settings.IDP_RUN_LEASE / 3 - (time.monotonic() - last)))
                ids = list(self.held)
            if not ids:
                continue
            try:
                FailoverRun.objects.filter(pk__in=ids, lease_owner=WORKER_ID).update(heartbeat_at=timezone.now())
            except Exception:  # noqa: BLE001 - a missed heartbeat only risks a takeover, which the lease allows
                log.exception("could not refresh the leases of runs %s", ids)
            finally:
                connection.close()  # this thread's own connection, not held between beats


_leases = _LeaseKeeper()


def _release(run_id: int, wake_in: float | None = None) -> None:
    release_many({run_id: wake_in})


def release_many(wakes: dict[int, float | None]) -> None:
    """Give the runs' leases back, each with when it wants to run again (one statement per distinct wake-up)."""
    now, by_wake = timezone.now(), {}
    for run_id, wake_in in wakes.items():
        by_wake.setdefault(wake_in, []).append(run_id)
    for wake_in, run_ids in by_wake.items():
        FailoverRun.objects.filter(pk__in=run_ids, lease_owner=WORKER_ID).update(
            heartbeat_at=None, lease_owner="", next_wake_at=now + timedelta(seconds=wake_in) if wake_in is not None else None)


@dataclass
class Taken:
    """A run whose lease `take_many` took, with what its advance starts by reading."""

    run: FailoverRun
    steps: list[FailoverStep]
    ce: CellEnvironment
    replication: object | None


def take_many(run_ids: list[int]) -> dict[int, Taken]:
    """Take the free leases of `run_ids` and read their runs, steps, cell environments and replications: five
    statements for all of them (an evacuation's wave) instead of six per run. The caller keeps the leases
    (`_leases.kept`), calls `advance(run_id, taken)` for each and gives them back with `release_many`."""
    from cells.models import ReplicationClaim

    now = timezone.now()
    stale = now - timedelta(seconds=settings.IDP_RUN_LEASE)
    FailoverRun.objects.filter(pk__in=run_ids, state__in=MOVING_STATES).filter(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale)).update(lease_owner=WORKER_ID, heartbeat_at=now)
    runs = list(FailoverRun.objects.filter(pk__in=run_ids, lease_owner=WORKER_ID, heartbeat_at=now)
                .select_related("requested_by", "approved_by"))
    steps: dict[int, list[FailoverStep]] = {r.pk: [] for r in runs}
    for step in FailoverStep.objects.filter(run_id__in=steps).order_by("run_id", "index"):
        steps[step.run_id].append(step)
    envs = CellEnvironment.objects.select_related("cell__team", "placement").in_bulk([r.cell_env_id for r in runs])
    replications: dict[int, object] = {}
    for repl in ReplicationClaim.objects.filter(cell_env_id__in=envs).order_by("-pk"):
        replications[repl.cell_env_id] = repl  # the first by pk, as cell_env.replicationclaims.first()
    return {r.pk: Taken(r, steps[r.pk], envs[r.cell_env_id], replications.get(r.cell_env_id)) for r in runs}


DONE = (StepState.SUCCEEDED, StepState.SKIPPED)


def advance(run_id: int, taken: Taken | None = None) -> float | None:
    """Run steps until the run waits, pauses, fails or ends. Returns seconds until it wants to run again.
    With `taken` (from take_many), the caller holds the lease and gives it back."""
    if taken is None and not _take(run_id):
        return None
    wake_in = None
    try:
        run = taken.run if taken else FailoverRun.objects.select_related("requested_by", "approved_by").get(pk=run_id)
        if run.state == RunState.ABORTING:
            from .rollback import roll_back

            roll_back(run)
            return None
        if run.state == RunState.PENDING:
            FailoverRun.objects.filter(pk=run.pk).update(state=RunState.RUNNING, started_at=timezone.now())
            run.state = RunState.RUNNING
        if run.state != RunState.RUNNING:
            return None
        # Only the lease holder changes a moving run's steps: read them once, follow them in memory. Each step
        # starts only while the run is still running (an operator may have asked to abort): see _execute.
        steps = taken.steps if taken else list(run.steps.order_by("index"))
        ctx = Context(run, {s.name: s for s in steps}, taken)
        with _leases.kept(run.pk):
            for step in steps:
                if step.state in DONE:
                    continue
                wake_in = _execute(run, step, ctx)
                if step.state not in DONE:  # it waits, paused the run, failed, or the run stopped running
                    return wake_in
            _finish(run)
            return None
    finally:
        if taken is None:
            _release(run_id, wake_in)


def _execute(run: FailoverRun, step: FailoverStep, ctx: Context) -> float | None:
    """Run one step and record it. Returns a wait in seconds, or None (the step's state says whether it ended)."""
    now = timezone.now()
    started_at = step.started_at or now
    elapsed = (now - started_at).total_seconds()
    # Recorded as started only while the run is running: one statement checks both.
    if not FailoverStep.objects.filter(pk=step.pk, run__state=RunState.RUNNING).update(
            state=StepState.RUNNING, attempts=step.attempts + 1, started_at=started_at):
        return None
    step.state, step.attempts, step.started_at = StepState.RUNNING, step.attempts + 1, started_at
    if elapsed > step.timeout_seconds:
        return _step_failed(run, step, f"timed out after {step.timeout_seconds}s", step.output)
    ctx.step = step
    try:  # the caller (advance) keeps the run's lease while its steps run
        outcome = STEPS[step.name].run(ctx)
    except InvariantViolation as exc:
        outcome = Failed(str(exc), {"rule": exc.rule})
    except TransientProviderError as exc:
        if step.attempts < active_policy().spec.failover.max_provider_attempts:
            wait = min(30.0, 0.5 * 2 ** (step.attempts - 1))
            _save_step(step, StepState.RUNNING, {**step.output, "lastError": str(exc)}, "")
            return wait
        outcome = Failed(f"{exc} (after {step.attempts} attempts)")
    except ProviderError as exc:
        outcome = Failed(str(exc))
    if isinstance(outcome, Done):
        _save_step(step, StepState.SUCCEEDED, outcome.output, "", finished=True)
        return None
    if isinstance(outcome, Wait):
        _save_step(step, StepState.RUNNING, outcome.output, "")
        return outcome.seconds
    if isinstance(outcome, Pause):
        _save_step(step, StepState.RUNNING, outcome.output, "")
        paused = FailoverRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(state=RunState.WAITING_APPROVAL)
        _event(run, "dr.run.waiting_approval", "waiting for an operator's approval before the traffic switch")
        if paused:
            notices.run_waiting_approval(run)
        return None
    return _step_failed(run, step, outcome.error, outcome.output)


def _save_step(step: FailoverStep, state: str, output: dict, error: str, finished: bool = False) -> None:
    step.state, step.output, step.error = state, output, error
    step.finished_at = timezone.now() if finished or state in (StepState.FAILED, StepState.SKIPPED) else None
    step.save(update_fields=["state", "output", "error", "finished_at"])


def _step_failed(run: FailoverRun, step: FailoverStep, error: str, output: dict) -> None:
    if step.error_mode == "continue":
        _save_step(step, StepState.SKIPPED, {**output, "bestEffortError": error}, error)
        return None
    _save_step(step, StepState.FAILED, output, error)
    started = run.steps.exclude(started_at__isnull=True).values_list("name", flat=True)
    nothing = not any(STEPS[name].changes for name in started if name in STEPS)
    FailoverRun.objects.filter(pk=run.pk).update(state=RunState.FAILED, error=f"{step.name}: {error}", changed_nothing=nothing)
    _event(run, "dr.run.failed", f"step {step.name} failed: {error}"
           + ("; nothing was changed and the cell is free for another run" if nothing else ""))
    notices.run_failed(run, step.name, error)
    from .report import build_report

    FailoverRun.objects.filter(pk=run.pk).update(report=build_report(FailoverRun.objects.get(pk=run.pk)))
    return None


def _finish(run: FailoverRun) -> None:
    from .report import build_report

    now = timezone.now()
    with transaction.atomic():
        finished = FailoverRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(
            state=RunState.SUCCEEDED, finished_at=now, error="")
        run.refresh_from_db()
        FailoverRun.objects.filter(pk=run.pk).update(report=build_report(run))
        if finished:
            notices.run_succeeded(run)
    verb = "drill completed" if run.type == RunType.DRILL else f"{run.type} completed: {run.to_side} serves and writes"
    _event(run, f"dr.{run.type}.succeeded", verb, rtoSeconds=run.rto_seconds, dataLossSeconds=run.data_loss_seconds)


def _event(run: FailoverRun, action: str, message: str, **data) -> None:
    cell_services.record_event(run.requested_by, action, f"run #{run.pk}: {message}", run.cell_env, runId=run.pk, **data)
