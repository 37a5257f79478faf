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


def record_claim_failure(sender, claim, message: str = "", **kwargs) -> None:
    """A claim that failed (its delivery gave up, or its cluster reports it failed) shows in its cell's history:
    a status written by an UPDATE leaves no field diff in auditlog. Called in the transaction that stores it."""
    kind = {"MySQLClaim": "MySQL", "ReplicationClaim": "replication", "Application": "application"}.get(sender.__name__, "claim")
    side = f" ({claim.side})" if getattr(claim, "side", "") else ""
    record_event(None, "cells.claim.failed", f"{kind} claim {claim.name}{side} failed at revision {claim.revision}: "
                                             f"{(message or 'no message')[:500]}",
                 claim.cell_env, claim=claim.name, kind=kind, revision=claim.revision)
