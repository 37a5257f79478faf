"""Faults the sandbox adapters honour, set through SandboxObject rows (`manage.py sandbox ...`).

A knob named after an object (a claim, a host) affects every call on it; a knob named
`operation:object` (e.g. `switch:payments.prod.company.com`, `fence:payments-prod-mysql-primary`)
affects that operation only.
"""
from __future__ import annotations

import time

from django.db.models import F

from cells.models import SandboxObject

from .errors import ProviderError, TransientProviderError, Unreachable


def knobs_for(names: list[str], operation: str) -> dict[str, list[SandboxObject]]:
    """The knobs set for each of `names` (`name` and `operation:name`), read in one query: a batched call checks
    every host's faults at once instead of one query per host."""
    rows: dict[str, SandboxObject] = {k.name: k for k in SandboxObject.objects.filter(
        name__in=[n for name in names for n in (name, f"{operation}:{name}")])}
    return {name: [rows[n] for n in sorted((name, f"{operation}:{name}")) if n in rows] for name in names}


def consume_fault(name: str, operation: str, knobs: list[SandboxObject] | None = None) -> None:
    """Apply the knobs set for `name` / `operation:name`: delay, unreachable, N transient failures, permanent failure.
    `knobs`: those knobs as `knobs_for` read them (None: read them here)."""
    if knobs is None:
        knobs = list(SandboxObject.objects.filter(name__in=(name, f"{operation}:{name}")).order_by("name"))
    for knob in knobs:
        if knob.delay_seconds:
            time.sleep(knob.delay_seconds)
        if knob.unreachable:
            raise Unreachable(f"sandbox: {name} is unreachable")
        if SandboxObject.objects.filter(pk=knob.pk, fail_times__gt=0).update(fail_times=F("fail_times") - 1):
            raise TransientProviderError(f"sandbox: injected {operation} failure on {name} ({knob.fail_message or 'transient error'})")
        if knob.fail_message.startswith("permanent:"):
            raise ProviderError(f"sandbox: {operation} on {name}: {knob.fail_message.removeprefix('permanent:').strip()}")
