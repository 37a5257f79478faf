"""What the failover pages show, as plain data for the templates: the kinds of run an operator can start, the
steps a run would take, each recorded step's output in words, the actions a run's state allows.

Read-only: runs are started and moved only by dr.services. The step plan comes from dr.runbook itself
(`plan`, `needs_approval`, `STEPS`), so the confirmation lists exactly what the runbook will do.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from cells.models import CellEnvironment
from dr import runbook
from dr import services as dr_services
from dr.endpoints import side_of
from dr.models import ACTIVE_STATES, MOVING_STATES, FailoverRun, FailoverStep, RunState, RunType, StepState
from policy.loader import Policy

from .health import Health, duration, lag_health, run_health, step_health, target_health


# -- starting a run -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    name: str  # failover | switchover | failback | drill: the form's `kind`
    label: str  # the button
    run_type: str  # what dr.runbook plans (a drill plans the drill's steps)
    summary: str
    changes_anything: bool = True

    def service_kwargs(self) -> dict:
        """dr.services.start_run's arguments for this kind."""
        if self.name == "drill":
            return {"type": RunType.FAILOVER, "dry_run": True}
        if self.name == "failback":
            return {"type": RunType.SWITCHOVER, "failback": True}
        return {"type": self.name}


KINDS = {k.name: k for k in (
    Kind("failover", "Failover", RunType.FAILOVER,
         "Unplanned: fence the writer (best effort if its region is down), promote the standby database, activate its "
         "compute and switch traffic. Writes not yet replicated when the writer is fenced are lost (up to the current lag)."),
    Kind("switchover", "Switchover", RunType.SWITCHOVER,
         "Planned: fence the writer first, wait until the lag is zero, promote, activate, switch traffic, then reprotect "
         "(the old writer becomes the replica). No data loss."),
    Kind("failback", "Failback", RunType.FAILBACK,
         "Return to the original primary after it recovered: a switchover back, with zero data loss and reprotect."),
    Kind("drill", "Drill", RunType.DRILL,
         "Dry run: the prechecks and the lag check of a failover, and a report. Nothing is fenced, promoted or switched.",
         changes_anything=False),
)}


def planned_steps(kind: Kind, policy: Policy, ce: CellEnvironment) -> list[tuple[str, str]]:
    """(name, title) of the steps the runbook would run for this kind, approval included when the policy asks."""
    simulated = RunType.FAILBACK if kind.name == "failback" else kind.run_type
    approval = kind.changes_anything and runbook.needs_approval(policy, ce, simulated)
    names = runbook.plan(FailoverRun(type=kind.run_type), approval)
    return [(name, runbook.STEPS[name].title) for name in names]


@dataclass
class Confirmation:
    """What a run of `kind` would do now, from dr.services.preview()."""

    kind: Kind
    writer: str
    to: str
    epoch: int
    lag: Health
    lag_seconds: float | None
    rpo_seconds: int | None
    fence_target: str
    host: str
    target_ready: bool
    precheck_problems: list[str]
    target_site: dict
    steps: list[tuple[str, str]]
    cooldown_until: datetime | None

    @property
    def above_rpo(self) -> bool:
        return self.lag.state in ("failed", "none")  # above, or not measured: the check_lag step stops

    @property
    def target(self) -> Health:
        if self.target_ready:
            return Health("ready", f"{self.to} ready", "ok")
        return Health("failed", f"the precheck would stop the run: {'; '.join(self.precheck_problems)}", "bad")

    @property
    def new_epoch(self) -> int:
        return self.epoch + 1


def confirmation(kind: Kind, preview: dict, policy: Policy, ce: CellEnvironment) -> Confirmation:
    to = preview["to"]
    return Confirmation(
        kind=kind, writer=preview["from"], to=to, epoch=preview["epoch"],
        lag=lag_health(preview["lagSeconds"], preview["rpoSeconds"]), lag_seconds=preview["lagSeconds"],
        rpo_seconds=preview["rpoSeconds"], fence_target=preview["fenceTarget"], host=preview["host"],
        target_ready=preview["targetReady"], precheck_problems=preview["precheckProblems"],
        target_site=ce.placement.site(to),
        steps=planned_steps(kind, policy, ce),
        cooldown_until=datetime.fromisoformat(preview["cooldownUntil"]) if preview["cooldownUntil"] else None,
    )


# -- a run and its steps ------------------------------------------------------------------------

def run_type_label(run: FailoverRun) -> str:
    label = run.get_type_display()
    return f"{label} of a {run.simulates}" if run.simulates else label


def polling(run: FailoverRun) -> bool:
    """The run page polls while a worker moves the run; waiting for approval, failed and final states wait for a person."""
    return run.state in MOVING_STATES


@dataclass
class Actions:
    approve: bool = False
    resume: bool = False
    abort: bool = False
    abort_refused: str = ""  # why abort is not offered while the run is still active

    @property
    def any(self) -> bool:
        return self.approve or self.resume or self.abort


def actions(run: FailoverRun) -> Actions:
    """What an operator may do to the run in its state (dr.services decides, and re-checks under a lock)."""
    allowed = dr_services.allowed_actions(run)
    return Actions(approve=allowed["approve"], resume=allowed["resume"], abort=allowed["abort"],
                   abort_refused=allowed["abortRefused"])


@dataclass
class StepView:
    step: FailoverStep
    health: Health
    lines: list[tuple[str, str]] = field(default_factory=list)  # (label, what happened), in words
    duration: str = ""

    @property
    def output_json(self) -> str:
        return json.dumps(self.step.output, indent=2, sort_keys=True, default=str) if self.step.output else ""

    @property
    def final(self) -> bool:
        return self.step.state in (StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED)


def _yes(value) -> str:
    return "yes" if value else "no"


def _where(ce: CellEnvironment, endpoint: str | None) -> str:
    side = side_of(ce, endpoint) if endpoint else None
    return f"{side} ({endpoint})" if side else (endpoint or "—")


def _compute(out: dict) -> str:
    if not out:
        return "—"
    mode, n = out.get("computeMode", "?"), out.get("replicas", "?")
    return f"{out.get('application', '')}: {mode}, {n} replica{'' if n == 1 else 's'}".lstrip(": ")


# How each step's recorded output reads to a person, by the runbook's step names (dr.runbook.STEPS) and the
# rollback's (dr.rollback.ROLLBACK_STEPS): one small function per step; the raw JSON is on the page too.

def _precheck(o: dict, ce: CellEnvironment) -> list[tuple[str, str]]:
    lines = []
    claims = o.get("targetClaims") or {}
    if claims:
        ready = sum(1 for s in claims.values() if s == "ready")
        lines.append(("Target", f"{o.get('targetSide', '?')}: {ready} of {len(claims)} claims ready"))
    if o.get("traffic"):
        t = o["traffic"]
        lines.append(("Traffic", f"{t.get('host')} answers {_where(ce, t.get('answer'))} via {t.get('provider', '?')}"))
    if o.get("fenceTarget"):
        lines.append(("Fence target", o["fenceTarget"]))
    if o.get("writerEpoch"):
        w = o["writerEpoch"]
        lines.append(("Writer", f"{', '.join(w.get('writer') or []) or 'none'} at epoch {w.get('epoch')}"))
    return lines


def _check_lag(o: dict, ce: CellEnvironment) -> list[tuple[str, str]]:
    lines = []
    if "lagSeconds" in o or "rpoSeconds" in o:
        h = lag_health(o.get("lagSeconds"), o.get("rpoSeconds"))
        lines.append(("Lag vs RPO", f"{h.detail} — {h.label}"))
    if o.get("forced"):
        lines.append(("Forced", o.get("warning") or o.get("forceReason", "")))
    return lines


def _fence(o: dict, ce: CellEnvironment) -> list[tuple[str, str]]:
    lines = []
    if "fenced" in o:
        detail = o.get("database", "") + (" (already read-only)" if o.get("alreadyFenced") else "")
        lines.append(("Fenced", f"{'yes' if o['fenced'] else 'no'}{' — ' + detail if detail else ''}"))
    if o.get("warning"):
        lines.append(("Warning", o["warning"]))
    if "lagAtFenceSeconds" in o:
        lines.append(("Lag at the fence", duration(o["lagAtFenceSeconds"])))
    if o.get("epoch") is not None:
        lines.append(("Fencing epoch", f"now {o['epoch']}"))
    return lines


def _catch_up(o: dict, ce: CellEnvironment) -> list[tuple[str, str]]:
    if "lagSeconds" not in o:
        return []
    return [("Lag", f"{duration(o['lagSeconds'])} — {'caught up' if o.get('caughtUp') else 'draining'}")]


def _promote(o: dict, ce: CellEnvironment) -> list[tuple[str, str]]:
    lines = []
    if o.get("writer"):
        lines.append(("Writer", f"{o['writer']} ({o.get('database', 'database')} writable) at epoch {o.get('epoch')}"))
    if "dataLossWindowSeconds" in o:
        lines.append(("Data-loss window", duration(o["dataLossWindowSeconds"])))
    if "transactionsLost" in o:
        lines.append(("Transactions lost", str(o["transactionsLost"])))
    if o.get("adoptedBy"):
        lines.append(("Restored database", f"adopted by {o['adoptedBy']['claim']}"))
    return lines


def _activate_compute(o: dict, ce: CellEnvironment) -> list[tuple[str, str]]:
    return [("Compute", _compute(o)), ("Healthy", _yes(o.get("healthy")))] if o else []


def _approval(o: dict, ce: CellEnvironment) -> list[tuple[str, str]]:
    if o.get("approvedBy"):
        return [("Approved by", o["approvedBy"])]
    return [("Waiting for", o["waitingFor"])] if o.get("waitingFor") else []


def _switch_traffic(o: dict, ce: CellEnvironment) -> list[tuple[str, str]]:
    if not o.get("host"):
        return []
    moved = "" if o.get("changed", True) else " (already pointed there)"
    return [("Traffic", f"{o['host']}: {_where(ce, o.get('from'))} → {_where(ce, o.get('to'))}{moved}"),
            ("Verified", f"{_yes(o.get('verified'))} via {o.get('provider', '?')}")]


def _reprotect(o: dict, ce: CellEnvironment) -> list[tuple[str, str]]:
    lines = []
    repl = o.get("replication") or {}
    if repl:
        lines.append(("Replication", f"{repl.get('database', '?')} now replicates from {repl.get('replicatingFrom', '?')}"))
    if o.get("oldSideCompute"):
        lines.append(("Old side compute", _compute(o["oldSideCompute"])))
    return lines


def _compute_only(o: dict, ce: CellEnvironment) -> list[tuple[str, str]]:
    return [("Compute", _compute(o))] if o else []


def _rollback_writer(o: dict, ce: CellEnvironment) -> list[tuple[str, str]]:
    if o.get("epoch") is None:
        return []
    old = (o.get("promotedOldWriter") or {}).get("database", "old writer")
    return [("Writer", f"{old} writable again at epoch {o['epoch']}")]


def _record(o: dict, ce: CellEnvironment) -> list[tuple[str, str]]:
    if not o:
        return []
    return [("Result", f"writer {', '.join(o.get('writer') or []) or 'none'}, traffic at {o.get('activeSide')}, "
                       f"epoch {o.get('epoch')}")]


SUMMARIES = {
    "precheck": _precheck, "check_lag": _check_lag, "fence": _fence, "catch_up": _catch_up, "promote": _promote,
    "activate_compute": _activate_compute, "approval": _approval, "switch_traffic": _switch_traffic,
    "reprotect": _reprotect, "standby_old_compute": _compute_only, "rollback_compute": _compute_only,
    "rollback_writer": _rollback_writer, "record": _record,
}


def step_lines(step: FailoverStep, ce: CellEnvironment) -> list[tuple[str, str]]:
    """A step's recorded output, summarised for a person: its own summary, then what every step may carry."""
    o = step.output or {}
    lines = SUMMARIES.get(step.name, lambda o, ce: [])(o, ce)
    if o.get("lastError") and step.state == StepState.RUNNING:
        lines.append(("Retrying after", o["lastError"]))
    if o.get("bestEffortError"):
        lines.append(("Best effort", f"skipped: {o['bestEffortError']}"))
    return lines


def _took(seconds: float) -> str:
    """A step's duration: milliseconds below a second (the sandbox is fast), else as everywhere."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else duration(seconds)


def step_view(step: FailoverStep, ce: CellEnvironment, now: datetime | None = None) -> StepView:
    waiting = ""
    if step.state == StepState.RUNNING:
        if step.name == "approval":
            waiting = "waiting for approval"
        elif step.output.get("caughtUp") is False or step.output.get("healthy") is False:
            waiting = "waiting"
    if step.duration_seconds is not None:
        took = _took(step.duration_seconds)
    elif step.started_at is not None and step.state == StepState.RUNNING and step.name != "approval":
        took = f"{duration(((now or timezone.now()) - step.started_at).total_seconds())} so far"
    else:
        took = ""
    return StepView(step, step_health(step.state, waiting), step_lines(step, ce), took)


@dataclass
class Report:
    rto: Health
    data_loss: Health
    epoch_before: int | None
    epoch_after: int | None
    lag: Health | None = None  # the lag the check_lag step measured, against the RPO


def report(run: FailoverRun, steps: list[FailoverStep]) -> Report | None:
    """Measured RTO and data-loss window against the run's targets, once the run has stopped moving."""
    if run.state in ACTIVE_STATES and run.state != RunState.FAILED:
        return None
    check = next((s.output for s in steps if s.name == "check_lag" and s.output), None)
    lag = lag_health(check.get("lagSeconds"), check.get("rpoSeconds")) if check else None
    return Report(target_health(run.rto_seconds, run.rto_target_seconds, "RTO"),
                  target_health(run.data_loss_seconds, run.rpo_target_seconds, "RPO"),
                  run.epoch_before, run.epoch_after, lag)


@dataclass
class RunRow:
    """One run in a list: the cell page's Failover section, /runs/, the home page's last-failover column."""

    run: FailoverRun
    health: Health
    type_label: str
    rto: Health
    data_loss: Health


def run_row(run: FailoverRun) -> RunRow:
    return RunRow(run, run_health(run.state), run_type_label(run),
                  target_health(run.rto_seconds, run.rto_target_seconds, "RTO"),
                  target_health(run.data_loss_seconds, run.rpo_target_seconds, "RPO"))
