"""Celery tasks for failover runs: thin wrappers that carry ids and call dr.runbook / dr.services."""
from celery import shared_task

from . import runbook, services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def advance_run(run_id: int) -> None:
    wake_in = runbook.advance(run_id)
    if wake_in is not None:
        services._send(run_id, countdown=wake_in)


@shared_task(ignore_result=True)
def resume_stale_runs() -> int:
    return services.resume_stale_runs()


@shared_task(ignore_result=True)
def run_scheduled_drills() -> list:
    return services.run_scheduled_drills()


@shared_task(ignore_result=True)
def probe_replication_lag() -> int:
    return services.probe_replication_lag()
