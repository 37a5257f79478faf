"""Abort: roll back what is safe to roll back, before the traffic moved, and record every action as a step."""
from __future__ import annotations

from django.utils import timezone

from cells import services as cell_services
from cells.models import CellEnvironment

from .errors import ProviderError
from .models import FailoverRun, FailoverStep, RunState, StepState
from .report import build_report


# The steps an abort records (beside the runbook's own, dr.runbook.STEPS).
ROLLBACK_STEPS = ("rollback_compute", "rollback_writer")


def _done(run: FailoverRun, name: str) -> bool:
    return run.steps.filter(name=name, state__in=(StepState.SUCCEEDED, StepState.RUNNING, StepState.FAILED)).exists()


def roll_back(run: FailoverRun) -> None:
    from .runbook import Context

    ctx = Context(run)
    ce, actions, errors = ctx.ce, [], []
    index = run.steps.order_by("-index").values_list("index", flat=True).first() + 1

    def record(name: str, title: str, fn) -> None:
        nonlocal index
        started = timezone.now()
        try:
            output, state, error = fn() or {}, StepState.SUCCEEDED, ""
        except ProviderError as exc:
            output, state, error = {}, StepState.FAILED, str(exc)
            errors.append(f"{name}: {exc}")
        FailoverStep.objects.create(run=run, index=index, name=name, title=title, state=state, attempts=1,
                                    timeout_seconds=60, started_at=started, finished_at=timezone.now(),
                                    output=output, error=error)
        actions.append(name)
        index += 1

    if _done(run, "activate_compute"):
        mode, replicas = cell_services.standby_compute(ctx.policy, ce)
        record("rollback_compute", f"Return the {run.to_side} compute to standby",
               lambda: ctx.compute.set(ctx.actor, ce, run.to_side, mode, replicas, f"abort of run #{run.pk}"))
    if run.epoch_after is not None:
        promoted = ce.side_epoch(run.to_side) == run.epoch_after

        def restore_writer() -> dict:
            out = {}
            if promoted:
                out["fencedNewWriter"] = ctx.adapter("fence", run.to_side).fence(ce, run.to_side, run.epoch_after + 1)
            epoch = run.epoch_after + 1
            out["promotedOldWriter"] = ctx.adapter("promoter", run.from_side).promote(ce, run.from_side, epoch)
            out["replication"] = ctx.adapter("promoter", run.to_side).reprotect(ce, run.from_side, run.to_side)
            epochs = {run.from_side: epoch, run.to_side: ce.side_epoch(run.to_side)}
            CellEnvironment.objects.filter(pk=ce.pk).update(epoch=epoch, writer_side=run.from_side, side_epochs=epochs)
            out["epoch"] = epoch
            return out

        record("rollback_writer", f"Make the {run.from_side} side the writer again under a new epoch", restore_writer)
    state_error = "; ".join(errors)
    FailoverRun.objects.filter(pk=run.pk).update(
        state=RunState.ABORTED, finished_at=timezone.now(),
        error=(f"aborted; could not roll back: {state_error}" if errors else "aborted; rolled back: " + (", ".join(actions) or "nothing to roll back")))
    run.refresh_from_db()
    FailoverRun.objects.filter(pk=run.pk).update(report=build_report(run))
    cell_services.record_event(run.requested_by, "dr.run.aborted", f"run #{run.pk}: {run.error}", ce, runId=run.pk)
