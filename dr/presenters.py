"""JSON shapes of failover runs."""
from __future__ import annotations

from cells.reads import CompiledRead

from .models import FailoverRun
from .report import build_report, step_dict
from .services import allowed_actions


def run_summary(run: FailoverRun) -> dict:
    return {
        "id": run.pk,
        "type": run.type,
        "simulates": run.simulates or None,
        "state": run.state,
        "from": run.from_side,
        "to": run.to_side,
        "requestedBy": run.requested_by.username if run.requested_by_id else "schedule",
        "requestedAt": run.requested_at.isoformat(),
        "finishedAt": run.finished_at.isoformat() if run.finished_at else None,
        "rtoSeconds": run.rto_seconds,
        "dataLossSeconds": run.data_loss_seconds,
        "error": run.error,
        "statusUrl": f"/api/failover/{run.pk}",
    }


def run_detail(run: FailoverRun) -> dict:
    return {
        **run_summary(run),
        "cell": run.cell_env.cell.name,
        "environment": run.cell_env.environment,
        "host": run.host,
        "force": run.force,
        "reason": run.reason,
        "approvedBy": run.approved_by.username if run.approved_by_id else None,
        "allowedActions": allowed_actions(run),
        "steps": [step_dict(s) for s in run.steps.order_by("index")],
        "report": run.report or build_report(run),
    }


# The columns run_summary reads: no report, steps or password hash.
SUMMARY_FIELDS = ("type", "simulates", "state", "from_side", "to_side", "requested_by__username", "requested_at",
                  "finished_at", "rto_seconds", "data_loss_seconds", "error")


_last_run = CompiledRead(lambda ce_id: FailoverRun.objects.filter(cell_env_id=ce_id).select_related("requested_by")
                         .only(*SUMMARY_FIELDS).order_by("-requested_at", "-id")[:1], -1)


def last_run(ce) -> dict | None:
    """The cell environment's newest run, for its status (cells.presenters.STATUS_PARTS["failover"]): one query,
    compiled once per process (cells.reads)."""
    run = next(iter(_last_run(ce.pk)), None)
    return run_summary(run) if run else None
