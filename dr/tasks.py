"""Celery tasks for failover runs and notices: thin wrappers that carry ids and call dr.runbook, dr.services, dr.notify."""
from celery import shared_task

from . import evacuations, lag, notify, readiness, runbook, services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def advance_run(run_id: int) -> None:
    wake_in = runbook.advance(run_id)
    if wake_in is not None:
        services._send(run_id, countdown=wake_in)
    else:
        readiness.run_stopped(run_id)  # a run that ended changes the cell's readiness


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


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=None)
def send_notice(self, delivery_id: int) -> str:
    """Send one notice delivery; a transient failure comes back with backoff (the row counts the attempts and
    stops at IDP_NOTIFY_MAX_ATTEMPTS)."""
    try:
        return notify.deliver(delivery_id)
    except notify.RetryLater as exc:
        raise self.retry(countdown=exc.countdown) from None


@shared_task(ignore_result=True)
def resend_notices() -> int:
    return notify.resend()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def advance_evacuation(evacuation_id: int) -> None:
    evacuations.advance(evacuation_id)


@shared_task(ignore_result=True)
def step_evacuation_shard(shard_id: int) -> None:
    evacuations.step_shard(shard_id)


@shared_task(ignore_result=True)
def resume_stale_evacuations() -> int:
    return evacuations.resume_stale()


# -- readiness and lag history (dr/readiness.py, dr/lag.py) ---------------------------------------

@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def evaluate_readiness(cell_env_id: int) -> int | None:
    readiness._unqueue(cell_env_id)  # a change from now on queues the next evaluation
    evaluation = readiness.evaluate_and_store(cell_env_id)
    return evaluation.score if evaluation is not None else None


@shared_task(ignore_result=True)
def evaluate_due_readiness() -> int:
    return readiness.evaluate_due()


@shared_task(ignore_result=True)
def prune_readiness() -> int:
    return readiness.prune()


@shared_task(ignore_result=True)
def downsample_lag() -> dict:
    return lag.downsample()
