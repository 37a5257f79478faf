"""The simulator: the embedded default status source. It plays the management clusters by the real
controllers' rules over what was actually delivered (the GitOps repository's files, or what the
Kubernetes target applied), never "ready after a delay":

- Argo CD Applications (argocd.py): synced only with `syncPolicy.automated` or on request; Healthy when
  the replicas they declare are running.
- Crossplane composite resources (crossplane.py): Ready only with the platform package's XRD and a
  matching Composition delivered, after our composition function's resources report Ready.

Its state (what it synced, what it composed and when) lives in SimulatedObject rows; its knobs (the
readiness delay IDP_SIMULATOR_READY_DELAY, failures, lag, unreachable objects) in SandboxObject rows
(`python manage.py sandbox ...`). Named simulator everywhere: it is not a cluster.
"""
from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cells.delivery import get_target
from cells.delivery.base import revision_of
from cells.models import Application, ReplicationClaim, SandboxObject, SimulatedObject
from cells.observers.base import Observation, application_state, conditions_state
from cells.reads import CompiledRead

from . import argocd, crossplane

DEFAULT_LAG_SECONDS = 0.8
KINDS = ("CellMySQLClaim", "ReplicationClaim", "Application")

# Read on every observation (a failover observes each side several times): compiled once (cells.reads).
_read_knobs = CompiledRead(lambda name: SandboxObject.objects.filter(name=name).order_by("pk")[:1], "<name>")


def request_sync(ref) -> None:
    """What `argocd app sync` does: the next reconcile syncs the Application even without automated sync."""
    with transaction.atomic():
        row, _ = SimulatedObject.objects.select_for_update().get_or_create(key=ref.path)
        row.state = {**row.state, "syncRequested": True}
        row.save(update_fields=["state", "updated_at"])


class SimulatorStatus:
    name = "simulator"

    def observe(self, claim, refs) -> Observation:
        knobs = next(iter(_read_knobs(claim.name)), None)
        if knobs and knobs.unreachable:
            return Observation(False, failed="simulator: unreachable", detail={"simulator": True, "reachable": False})
        ref = next((r for r in refs if r.kind in KINDS), None)
        target = get_target()
        obj = target.read(ref) if ref else None
        if obj is None or (revision_of(obj) or 0) < claim.delivered_revision:
            return Observation(False, message="simulator: waiting for the delivered objects",
                               detail={"simulator": True, "found": False})
        fail = knobs.fail_message if knobs else ""
        delay = settings.IDP_SIMULATOR_READY_DELAY
        now = timezone.now().timestamp()
        with transaction.atomic():
            row, _ = SimulatedObject.objects.select_for_update().get_or_create(key=ref.path)
            if isinstance(claim, Application):
                status = argocd.reconcile(obj, row.state, now, delay, fail=fail)
            else:
                status = crossplane.reconcile(obj, row.state, now, delay, target, ref.cluster, fail=fail)
            row.save(update_fields=["state", "updated_at"])
        if isinstance(claim, Application):
            obs = application_state({"status": status}, claim.compute_mode == Application.ComputeMode.COLD)
            obs.detail.update(simulator=True, **status["simulator"])
            return obs
        obs = conditions_state({"status": status})
        obs.detail.update(simulator=True, **{k: v for k, v in status.items() if k != "conditions"})
        if isinstance(claim, ReplicationClaim) and obs.ready:
            obs.lag_seconds = knobs.lag_seconds if knobs and knobs.lag_seconds is not None else DEFAULT_LAG_SECONDS
            obs.lag_measured_at = timezone.now()
            obs.detail["lagSeconds"] = obs.lag_seconds
        return obs
