"""Failover services: start, approve, resume, abort and read runs. The API, the portal, the admin,
the `failover` command and the beat tasks all call these."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from cells import access
from cells.errors import Conflict, InvalidRequest, NotFound
from cells.models import CellEnvironment, Side
from cells.audit import acting, record_event
from cells.services import get_cell_environment
from cells.text import clean
from policy.active import active_policy
from policy.names import other_side

from . import notices, runbook
from .models import (HOLDS_THE_CELL, MOVING_STATES, EvacuationItem, EvacuationState, FailoverRun, RunState, RunType,
                     StepState)

log = logging.getLogger(__name__)


def _public_host(cell_env: CellEnvironment) -> str:
    app = cell_env.applications.first()
    return app.public_host if app else ""


def start_run(actor, *, cell: str, environment: str, host: str | None = None, type: str = RunType.FAILOVER,
              dry_run: bool = False, force: bool = False, reason: str = "", failback: bool = False,
              acknowledge_cooldown: bool = False, scheduled: bool = False, evacuation: bool = False) -> FailoverRun:
    """Start a failover, switchover, failback or drill. Operators only; one active run per cell environment.
    A run that changes something preempts a drill of the cell (the drill is aborted and says why). An
    evacuation's runs are driven by the evacuation (dr.evacuations), not sent to a worker one by one."""
    if not scheduled:
        access.require_operator(actor, "start a failover run")
    reason = clean((reason or "").strip(), "reason")
    if type not in (RunType.FAILOVER, RunType.SWITCHOVER):
        raise InvalidRequest("unknown run type", {"type": ["one of failover, switchover (failback and dryRun are flags)"]})
    if force and not reason:
        raise InvalidRequest("forcing needs a reason", {"reason": ["required when forcing: say why the lag is acceptable"]})
    if force and dry_run:
        raise InvalidRequest("a dry run cannot be forced", {"force": ["not allowed with dryRun"]})
    policy = active_policy()
    with acting(actor):
        cell_env = get_cell_environment(actor, cell, environment, lock=True) if not scheduled else \
            CellEnvironment.objects.select_for_update().select_related("cell__team", "placement").get(cell__name=cell, environment=environment)
        if cell_env.decommissioned_at:
            raise Conflict(f"{cell_env} is decommissioned")
        public_host = _public_host(cell_env)
        if host and public_host and host != public_host:
            raise InvalidRequest("host does not belong to this cell environment",
                                 {"host": [f"{cell_env} serves {public_host}"]})
        writer = cell_env.writer_side if len(cell_env.writers()) == 1 else cell_env.active_side
        run_type = RunType.FAILBACK if failback else type
        if failback:
            if writer == Side.PRIMARY:
                raise Conflict(f"{cell_env} already runs on its original primary; there is nothing to fail back")
            to_side = Side.PRIMARY
        else:
            to_side = other_side(writer)
        tier = policy.spec.tiers.get(cell_env.tier)
        if run_type == RunType.FAILOVER and not dry_run and not reason and tier and tier.unplanned_failover_needs_reason:
            raise InvalidRequest("an unplanned failover of this tier needs a reason", {"reason": [
                f"required for an unplanned failover of a {cell_env.tier} cell (policy "
                f"tiers.{cell_env.tier}.unplannedFailoverNeedsReason)"]})
        _check_cooldown(policy, cell_env, run_type, dry_run, acknowledge_cooldown, reason)
        profile = policy.spec.dr_profiles[cell_env.dr_profile]
        run = FailoverRun(
            cell_env=cell_env, type=RunType.DRILL if dry_run else run_type, simulates=run_type if dry_run else "",
            host=host or public_host, from_side=writer, to_side=to_side, force=force, reason=reason,
            acknowledged_cooldown=acknowledge_cooldown, scheduled=scheduled,
            requested_by=actor if getattr(actor, "pk", None) else None,
            rpo_target_seconds=profile.rpo_seconds, rto_target_seconds=profile.rto_seconds,
        )
        if not dry_run:
            _preempt_drill(actor, cell_env, run_type)
        try:
            with transaction.atomic():
                run.save()
        except IntegrityError:
            active = FailoverRun.objects.filter(HOLDS_THE_CELL, cell_env=cell_env).first()
            raise Conflict(f"{cell_env} already has an active run #{active.pk if active else '?'} ({active.state if active else ''}); "
                           f"resume or abort it first", activeRun=active.pk if active else None) from None
        runbook.create_steps(run, runbook.plan(run, runbook.needs_approval(policy, cell_env, run_type)))
        record_event(actor, f"dr.{run.type}.started",
                     f"run #{run.pk}: {run.type}{f' of a {run.simulates}' if run.simulates else ''} {run.from_side} -> {run.to_side}"
                     + (f"; forced: {reason}" if force else ""), cell_env, runId=run.pk, forced=force, reason=reason)
        if not evacuation:
            transaction.on_commit(lambda: _send(run.pk))
    return run


def _preempt_drill(actor, cell_env: CellEnvironment, run_type: str) -> None:
    """A real run comes before a rehearsal: a drill holding the cell is aborted (it changed nothing: its steps
    only look) and says what preempted it."""
    drill = FailoverRun.objects.select_for_update().filter(HOLDS_THE_CELL, cell_env=cell_env, type=RunType.DRILL).first()
    if drill is None:
        return
    why = f"preempted by a {run_type} requested by {getattr(actor, 'username', 'the system')}"
    FailoverRun.objects.filter(pk=drill.pk).update(state=RunState.ABORTED, finished_at=timezone.now(), error=why)
    drill.steps.filter(state__in=(StepState.PENDING, StepState.RUNNING)).update(
        state=StepState.SKIPPED, error=why, finished_at=timezone.now())
    record_event(actor, "dr.drill.preempted", f"run #{drill.pk}: drill {why}", cell_env, runId=drill.pk)


def _last_role_change(cell_env: CellEnvironment) -> FailoverRun | None:
    return (FailoverRun.objects.filter(cell_env=cell_env, state=RunState.SUCCEEDED).exclude(type=RunType.DRILL)
            .order_by("-finished_at", "-id").first())


def cooldown_until(policy, cell_env: CellEnvironment, run_type: str | None = None):
    """The end of the cell's anti-flapping cool-down after its last change of writer, while it is still running.
    A failback that completes a planned switchover needs none (policy failover.plannedFailbackSkipsCooldown)."""
    if cell_env.last_failover_at is None:
        return None
    tier = policy.spec.tiers.get(cell_env.tier)
    until = cell_env.last_failover_at + timedelta(seconds=tier.failover_cooldown_seconds if tier else 0)
    if timezone.now() >= until:
        return None
    if run_type == RunType.FAILBACK and policy.spec.failover.planned_failback_skips_cooldown:
        last = _last_role_change(cell_env)
        if last is not None and last.type == RunType.SWITCHOVER:
            return None
    return until


WHAT_HAPPENED = {RunType.SWITCHOVER: "had a planned switchover", RunType.FAILOVER: "failed over (unplanned)",
                 RunType.FAILBACK: "failed back"}


def _check_cooldown(policy, cell_env, run_type, dry_run, acknowledged, reason) -> None:
    until = None if dry_run else cooldown_until(policy, cell_env, run_type)
    if until is not None and not (acknowledged and reason):
        last = _last_role_change(cell_env)
        what = WHAT_HAPPENED.get(last.type if last else "", "changed writers")
        raise Conflict(
            f"{cell_env} {what} at {cell_env.last_failover_at:%H:%M:%S} UTC and is in its cool-down until "
            f"{until:%H:%M:%S} UTC (policy tiers.{cell_env.tier}.failoverCooldownSeconds); to go anyway, acknowledge "
            f"the cool-down and give a reason", cooldownUntil=until.isoformat(),
            fields={"acknowledgeCooldown": ["required during the cool-down, with a reason"]})


def allowed_actions(run: FailoverRun) -> dict:
    """What an operator may do to a run in its state; the actions below enforce exactly this."""
    abortable = run.is_active and run.state != RunState.ABORTING
    return {
        "approve": run.state == RunState.WAITING_APPROVAL,
        "resume": run.state == RunState.FAILED and run.is_active,
        "abort": abortable and run.traffic_switched_at is None,
        "abortRefused": (f"run #{run.pk} switched traffic at {run.traffic_switched_at:%H:%M:%S} UTC: writes may have "
                         f"reached the new writer, so it cannot be rolled back; resume it, or run a failback")
        if abortable and run.traffic_switched_at is not None else "",
    }


def send_run(run_id: int, countdown: float | None = None) -> bool:
    return _send(run_id, countdown)


def _send(run_id: int, countdown: float | None = None) -> bool:
    from .tasks import advance_run

    try:
        advance_run.apply_async((run_id,), countdown=countdown)
    except Exception as exc:  # noqa: BLE001 - the beat resumer picks the run up
        log.warning("broker unavailable, run %s will be resumed by the beat task: %s", run_id, exc)
        return False
    return True


def _operator_run(actor, run_id: int, action: str, lock: bool = True) -> FailoverRun:
    access.require_operator(actor, f"{action} a failover run")
    qs = FailoverRun.objects.select_related("cell_env__cell")
    run = (qs.select_for_update(of=("self",)) if lock else qs).filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"no failover run {run_id}")
    return run


def approve_run(actor, run_id: int) -> FailoverRun:
    with acting(actor):
        run = _operator_run(actor, run_id, "approve")
        if not allowed_actions(run)["approve"]:
            raise Conflict(f"run #{run.pk} is {run.state}, not waiting for approval")
        run.state, run.approved_by = RunState.RUNNING, actor
        run.save(update_fields=["state", "approved_by"])
        record_event(actor, "dr.run.approved", f"run #{run.pk}: traffic switch approved", run.cell_env, runId=run.pk)
        transaction.on_commit(lambda: _send(run.pk))
    return run


def resume_run(actor, run_id: int) -> FailoverRun:
    """Retry the failed step and go on."""
    with acting(actor):
        run = _operator_run(actor, run_id, "resume")
        if not allowed_actions(run)["resume"]:
            raise Conflict(f"run #{run.pk} is {run.state}; only a failed failover run can be resumed")
        failed = run.steps.filter(state=StepState.FAILED).order_by("index").first()
        if failed is not None:
            failed.state, failed.started_at, failed.error, failed.finished_at = StepState.PENDING, None, "", None
            failed.save(update_fields=["state", "started_at", "error", "finished_at"])
        run.state, run.error = RunState.RUNNING, ""
        run.save(update_fields=["state", "error"])
        record_event(actor, "dr.run.resumed", f"run #{run.pk}: resumed at {failed.name if failed else 'the next step'}",
                     run.cell_env, runId=run.pk)
        transaction.on_commit(lambda: _send(run.pk))
    return run


def abort_run(actor, run_id: int, reason: str = "") -> FailoverRun:
    """Stop a run and roll back what is safe to roll back. Refused once traffic has moved."""
    reason = clean(reason or "", "reason")
    with acting(actor):
        run = _operator_run(actor, run_id, "abort")
        allowed = allowed_actions(run)
        if allowed["abortRefused"]:
            raise Conflict(allowed["abortRefused"])
        if not allowed["abort"]:
            raise Conflict(f"run #{run.pk} is {run.state}; nothing to abort")
        run.state = RunState.ABORTING
        run.save(update_fields=["state"])
        record_event(actor, "dr.run.aborting", f"run #{run.pk}: abort requested" + (f": {reason}" if reason else ""),
                     run.cell_env, runId=run.pk, reason=reason)
        transaction.on_commit(lambda: _send(run.pk))
    return run


def get_run(user, run_id: int) -> FailoverRun:
    run = FailoverRun.objects.select_related("cell_env__cell__team", "requested_by").filter(pk=run_id).first()
    if run is None or not access.can_access_cell(user, run.cell_env.cell):
        raise NotFound(f"no failover run {run_id}")
    return run


def visible_runs(user):
    qs = FailoverRun.objects.select_related("cell_env__cell", "requested_by")
    return qs if access.is_operator(user) else qs.filter(cell_env__cell__team__in=access.team_ids(user))


def preview(user, *, cell: str, environment: str, failback: bool = False) -> dict:
    """What a run of this cell environment would do now (the portal's confirmation)."""
    cell_env = get_cell_environment(user, cell, environment)
    policy = active_policy()
    writer = cell_env.writer_side
    to = Side.PRIMARY if failback else other_side(writer)
    repl = cell_env.replicationclaims.first()
    profile = policy.spec.dr_profiles.get(cell_env.dr_profile)
    until = cooldown_until(policy, cell_env, RunType.FAILBACK if failback else None)
    problems, _ = runbook.precheck(cell_env, to, writer, _public_host(cell_env) or None)
    return {"from": writer, "to": to, "lagSeconds": repl.lag_seconds if repl else None,
            "rpoSeconds": profile.rpo_seconds if profile else None, "fenceTarget": f"{cell}-{environment}-mysql-{writer}",
            "host": _public_host(cell_env), "epoch": cell_env.epoch, "canFailBack": writer == Side.SECONDARY,
            "cooldownUntil": until.isoformat() if until else None,
            # The runbook's own precheck, run now: Start is offered only when the run would get past it.
            "targetReady": not problems, "precheckProblems": problems}


# -- beat tasks ----------------------------------------------------------------------------------

def resume_stale_runs() -> int:
    """Send runs no worker is driving: its worker died (stale heartbeat) or its wake-up message was lost."""
    now = timezone.now()
    lease = timedelta(seconds=settings.IDP_RUN_LEASE)
    due = FailoverRun.objects.filter(state__in=MOVING_STATES).filter(
        Q(heartbeat_at__lt=now - lease)
        | Q(heartbeat_at__isnull=True, next_wake_at__lt=now - timedelta(seconds=5))
        | Q(heartbeat_at__isnull=True, next_wake_at__isnull=True, requested_at__lt=now - timedelta(seconds=5))
    ).exclude(  # a live evacuation drives its own runs (dr.evacuations.resume_stale resumes a dead one)
        evacuation_item__evacuation__state__in=(EvacuationState.RUNNING, EvacuationState.PAUSED),
        evacuation_item__state=EvacuationItem.State.RUNNING,
    ).values_list("pk", flat=True)
    return sum(_send(pk) for pk in due)


def run_scheduled_drills() -> list[int]:
    """Start the drills the policy schedules: per cell (`cells.<name>.drillIntervalSeconds`), else per tier
    (`failover.drillIntervalSeconds`); tell when a cell has gone without a successful drill for longer."""
    policy = active_policy()
    started = []
    now = timezone.now()
    for ce in CellEnvironment.objects.filter(decommissioned_at__isnull=True).select_related("cell"):
        entry = policy.spec.cells.get(ce.cell.name)
        interval = entry.drill_interval_seconds if entry and entry.drill_interval_seconds is not None else \
            policy.spec.failover.drill_interval_seconds.get(ce.tier, 0)
        if not interval:
            continue
        if not ce.applications.exists() or not ce.replicationclaims.exists():
            continue
        notices.drill_overdue(ce, interval, now)  # once per overdue period
        last = ce.failover_runs.filter(type=RunType.DRILL, scheduled=True).order_by("-requested_at").first()
        if last is not None and last.requested_at > now - timedelta(seconds=interval):
            continue
        try:
            started.append(start_run(None, cell=ce.cell.name, environment=ce.environment, dry_run=True,
                                     scheduled=True, reason="scheduled drill").pk)
        except Conflict:
            continue  # a run is active: the drill waits for the next round
    return started


def probe_replication_lag() -> int:
    """Measure each cell's replication lag with its real probe and store it on the ReplicationClaim
    (the sandbox status source reports the sandbox's lag itself). For the mysql probe this also stamps
    the heartbeat that bounds the data-loss window of an unplanned failover."""
    from cells.models import ReplicationClaim

    from . import providers, readiness
    from .errors import ProviderError

    policy = active_policy()
    count = 0
    for repl in ReplicationClaim.objects.filter(cell_env__decommissioned_at__isnull=True).select_related("cell_env__cell", "cell_env__placement"):
        tool = policy.spec.replication_tools.get(repl.tool)
        if tool is None or providers.sandboxed(tool.adapters.probe):
            continue
        ce = repl.cell_env
        try:
            reading = providers.data_adapter(policy, ce, "probe", tool.adapters.probe, other_side(ce.writer_side)).lag(
                ce, ce.writer_side, other_side(ce.writer_side))
        except ProviderError as exc:
            log.warning("lag probe for %s failed: %s", ce, exc)
            continue
        ReplicationClaim.objects.filter(pk=repl.pk).update(lag_seconds=reading.seconds, lag_measured_at=reading.measured_at)
        notices.lag_measured(ce, reading.seconds, repl.expected_rpo_seconds)  # told on within -> above only
        readiness.lag_measured(ce.pk, repl.lag_seconds, reading.seconds, repl.expected_rpo_seconds, reading.measured_at)
        count += 1
    return count


class TransientSetupError(Exception):
    """Setting up a replication failed in a way worth retrying (the provider said so)."""


def setup_replication(claim_id: int) -> dict:
    """Start the data flow a Ready replication claim describes, with the tool's promoter (GoldenGate: credential
    aliases, Extract on the source, Replicat on the target, both RUNNING). Idempotent: what runs stays as it is.
    Adapters without a setup (native replication is set up by the database's own channel) do nothing."""
    from cells.models import ReplicationClaim

    from . import providers
    from .errors import ProviderError, TransientProviderError

    repl = ReplicationClaim.objects.select_related("cell_env__cell", "cell_env__placement", "source", "target").get(pk=claim_id)
    ce = repl.cell_env
    tool = active_policy().spec.replication_tools.get(repl.tool)
    if tool is None or ce.decommissioned_at:
        return {"skipped": "no such tool in the policy, or decommissioned"}
    promoter = providers.data_adapter(active_policy(), ce, "promoter", tool.adapters.promoter, repl.target.side)
    if not hasattr(promoter, "setup"):
        return {"skipped": f"{providers.adapter_label(tool.adapters.promoter)} needs no setup"}
    try:
        out = promoter.setup(ce, repl.source.side, repl.target.side)
    except TransientProviderError as exc:
        raise TransientSetupError(str(exc)) from exc
    except ProviderError as exc:
        record_event(None, "dr.replication.setup_failed", f"{repl.name}: {exc}", ce, claim=repl.name)
        return {"error": str(exc)}
    record_event(None, "dr.replication.setup", f"{repl.name}: {repl.tool} running {repl.source.side} -> {repl.target.side}",
                 ce, claim=repl.name, output=out)
    return out
