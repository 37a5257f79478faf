"""Compute activation through Argo CD Applications: change the side's Application (replicas, sync policy)
through the same delivery target as provisioning, then wait for Healthy and Synced.

With the gitops target this is a commit Argo CD syncs; with the kubernetes target a server-side apply of
the Application. Health comes from the status source (Argo CD's status.health/status.sync, or the sandbox).
"""
from __future__ import annotations

from cells import pipeline, services
from cells.rendering import application_shape
from cells.models import Application, ClaimStatus

COLD, PILOT = Application.ComputeMode.COLD, Application.ComputeMode.PILOT


class ArgoCDActivator:
    name = "argocd"

    def set(self, actor, cell_env, side: str, compute_mode: str, replicas: int, reason: str) -> dict:
        delivery = services.set_compute(actor, cell_env, side, compute_mode=compute_mode, replicas=replicas, reason=reason)
        if delivery is not None and not pipeline.is_holding():
            # Deliver now rather than waiting for a worker: the runbook is on the clock. Safe: a delivery is
            # taken by exactly one caller (compare-and-set), so a worker that also got it does nothing.
            # Inside a batch (an evacuation's wave) the wave delivers every change in one commit instead.
            pipeline.deliver(delivery.pk)
        app = cell_env.applications.get(side=side)
        return {"application": app.name, "computeMode": app.compute_mode, "replicas": app.replicas,
                "revision": app.revision, "deliveredRevision": app.delivered_revision,
                "delivery": delivery.pk if delivery else None}

    def standby(self, actor, cell_env, side: str, compute_mode: str, replicas: int, reason: str) -> tuple[bool, dict]:
        """Put a side in standby; (done, output). Cold means "never synced", so Argo CD would leave a demoted
        writer's pods running: scale it to zero with sync on (pilot) first, and turn sync off once it is."""
        app = cell_env.applications.filter(side=side).first()
        if compute_mode != COLD or app is None or app.compute_mode == COLD:
            return True, self.set(actor, cell_env, side, compute_mode, replicas, reason)
        out = self.set(actor, cell_env, side, PILOT, 0, f"{reason} (to zero before cold)")
        healthy, health = self.health(cell_env, side)
        if not healthy:
            return False, {**out, "health": health, "waitingFor": f"{app.name} to run no pods before it turns cold"}
        return True, {**self.set(actor, cell_env, side, COLD, 0, reason), "scaledToZeroFirst": True}

    def health(self, cell_env, side: str) -> tuple[bool, dict]:
        app = cell_env.applications.get(side=side)
        pipeline.observe_claim(app)
        app.refresh_from_db()
        healthy = app.delivered_revision == app.revision and app.status == ClaimStatus.READY
        # Healthy is not enough: Argo CD calls a Deployment scaled to zero Healthy. What runs must be what the role needs.
        _, needed, _ = application_shape(app.compute_mode, app.replicas)
        declared = (app.observed or {}).get("declaredReplicas")
        if declared is not None and declared != needed:
            healthy = False
            app.status_message = f"declares {declared} replicas; its role ({app.compute_mode}) needs {needed}"
        return healthy, {"application": app.name, "status": app.status, "revision": app.revision,
                         "deliveredRevision": app.delivered_revision, "observed": app.observed,
                         "message": app.status_message}
