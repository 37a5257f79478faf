"""The sandbox status source: plays the clusters for the embedded default and the tests.

It reads what the delivery target holds, reports each object Ready after
IDP_SANDBOX_READY_DELAY seconds, and takes its faults and replication lag from
SandboxObject rows (`manage.py sandbox fail|lag|clear NAME`). Named sandbox everywhere.
"""
from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from cells.delivery import get_target
from cells.delivery.base import revision_of
from cells.models import Application, ReplicationClaim, SandboxObject

from .base import Observation

DEFAULT_LAG_SECONDS = 0.8


class SandboxStatus:
    name = "sandbox"

    def observe(self, claim, refs) -> Observation:
        knobs = SandboxObject.objects.filter(name=claim.name).first()
        if knobs and knobs.unreachable:
            return Observation(False, failed="sandbox: unreachable", detail={"sandbox": True, "reachable": False})
        target = get_target()
        held = [target.read(ref) for ref in refs]
        if not refs or any(obj is None or (revision_of(obj) or 0) < claim.delivered_revision for obj in held):
            return Observation(False, message="sandbox: waiting for the delivered objects", detail={"sandbox": True, "found": False})
        if knobs and knobs.fail_message:
            return Observation(False, failed=f"sandbox: {knobs.fail_message}", detail={"sandbox": True, "found": True})
        age = (timezone.now() - claim.delivered_at).total_seconds() if claim.delivered_at else 0
        if age < settings.IDP_SANDBOX_READY_DELAY:
            return Observation(False, message=f"sandbox: provisioning ({age:.0f}s of {settings.IDP_SANDBOX_READY_DELAY:g}s)",
                               detail={"sandbox": True, "found": True, "conditions": [{"type": "Ready", "status": "False", "reason": "Creating"}]})
        if isinstance(claim, Application):
            cold = claim.side == "secondary" and claim.compute_mode == Application.ComputeMode.COLD
            detail = {"sandbox": True, "found": True, "health": "Missing" if cold else "Healthy",
                      "sync": "OutOfSync" if cold else "Synced", "replicas": 0 if cold else claim.replicas}
            return Observation(True, message="cold standby: defined, not synced" if cold else "", detail=detail)
        detail = {"sandbox": True, "found": True, "conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "True"}]}
        if isinstance(claim, ReplicationClaim):
            lag = knobs.lag_seconds if knobs and knobs.lag_seconds is not None else DEFAULT_LAG_SECONDS
            now = timezone.now()
            detail["lagSeconds"] = lag
            return Observation(True, detail=detail, lag_seconds=lag, lag_measured_at=now)
        return Observation(True, detail=detail)
