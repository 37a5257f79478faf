"""Celery tasks: thin wrappers that carry ids and call cells.pipeline."""
from celery import shared_task

from . import pipeline


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None, ignore_result=True)
def deliver(self, delivery_id: int) -> str:
    try:
        return pipeline.deliver(delivery_id)
    except pipeline.RetryLater as exc:
        raise self.retry(countdown=exc.countdown) from None


@shared_task(ignore_result=True)
def dispatch_outbox() -> int:
    return pipeline.dispatch()


@shared_task(ignore_result=True)
def observe_clusters() -> int:
    return pipeline.observe_all()
