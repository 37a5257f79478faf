"""The report of a run: every step with its timing and output, measured RTO and data loss against the targets."""
from __future__ import annotations

from .models import FailoverRun


def _iso(dt):
    return dt.isoformat() if dt else None


def step_dict(step) -> dict:
    return {"index": step.index, "name": step.name, "title": step.title, "state": step.state, "attempts": step.attempts,
            "startedAt": _iso(step.started_at), "finishedAt": _iso(step.finished_at),
            "durationSeconds": step.duration_seconds, "timeoutSeconds": step.timeout_seconds,
            "errorMode": step.error_mode, "output": step.output, "error": step.error}


def build_report(run: FailoverRun) -> dict:
    steps = list(run.steps.order_by("index"))
    rto_ok = None if run.rto_seconds is None else run.rto_seconds <= run.rto_target_seconds
    rpo_ok = None if run.data_loss_seconds is None else run.data_loss_seconds <= run.rpo_target_seconds
    return {
        "run": run.pk,
        "cell": run.cell_env.cell.name,
        "environment": run.cell_env.environment,
        "type": run.type,
        "simulates": run.simulates or None,
        "state": run.state,
        "from": run.from_side,
        "to": run.to_side,
        "host": run.host,
        "requestedBy": run.requested_by.username if run.requested_by_id else "schedule",
        "requestedAt": _iso(run.requested_at),
        "finishedAt": _iso(run.finished_at),
        "forced": run.force,
        "reason": run.reason,
        "epoch": {"before": run.epoch_before, "after": run.epoch_after},
        "rto": {"measuredSeconds": run.rto_seconds, "targetSeconds": run.rto_target_seconds, "met": rto_ok},
        "rpo": {"measuredDataLossSeconds": run.data_loss_seconds, "targetSeconds": run.rpo_target_seconds, "met": rpo_ok},
        "steps": [step_dict(s) for s in steps],
        "error": run.error,
    }
