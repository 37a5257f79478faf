"""Observed state from the management clusters: Crossplane conditions, Argo CD health and sync, replication lag."""
from __future__ import annotations

from datetime import datetime

from cells.models import Application, ReplicationClaim

from cells.simulator.argocd import declared_replicas

from .base import Observation, application_state, conditions_state


class KubernetesStatus:
    name = "kubernetes"

    def __init__(self, reader=None):
        self._reader = reader

    @property
    def reader(self):
        if self._reader is None:
            from cells.delivery.kubernetes import KubernetesTarget

            self._reader = KubernetesTarget.from_settings()
        return self._reader

    def observe(self, claim, refs) -> Observation:
        ref = next((r for r in refs if r.kind in ("CellMySQLClaim", "ReplicationClaim", "Application")), None)
        obj = self.reader.read(ref) if ref else None
        if isinstance(claim, Application):
            obs = application_state(obj, claim.compute_mode == Application.ComputeMode.COLD)
            if obj is not None:  # what the live Application asks Argo CD to run
                obs.detail["declaredReplicas"] = declared_replicas(obj)
            return obs
        obs = conditions_state(obj)
        for key in ("endpoint", "port"):  # published by our composition function once the database answers
            if ((obj or {}).get("status") or {}).get(key) is not None:
                obs.detail[key] = obj["status"][key]
        if isinstance(claim, ReplicationClaim) and obj is not None:
            status = obj.get("status") or {}
            if status.get("lagSeconds") is not None:
                obs.lag_seconds = float(status["lagSeconds"])
                measured = status.get("lagMeasuredAt")
                obs.lag_measured_at = datetime.fromisoformat(measured.replace("Z", "+00:00")) if measured else None
                obs.detail["lagSeconds"] = obs.lag_seconds
        return obs
