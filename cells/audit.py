"""The audit trail both apps write: a domain event with a dotted name beside auditlog's field diffs, and the
block that attributes those diffs to the acting user. dr uses these too, so they live here, not in a service."""
from __future__ import annotations

from contextlib import contextmanager

from auditlog.context import set_actor
from django.db import transaction

from .models import AuditEvent, CellEnvironment


@contextmanager
def acting(actor):
    """Attribute auditlog's field diffs to `actor` and make the block one transaction."""
    with set_actor(actor), transaction.atomic():
        yield


def record_event(actor, action: str, message: str, cell_env: CellEnvironment | None = None, cell: str = "",
                 environment: str = "", **data) -> AuditEvent:
    if cell_env is not None:
        cell, environment = cell_env.cell.name, cell_env.environment
    return AuditEvent.objects.create(
        action=action, actor=actor if getattr(actor, "pk", None) else None,
        cell=cell, environment=environment, message=message, data=data,
    )
