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


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             autoretry_for=(services.TransientSetupError,), retry_backoff=2, retry_backoff_max=300, max_retries=8)
def setup_replication(claim_id: int) -> dict:
    return services.setup_replication(claim_id)
