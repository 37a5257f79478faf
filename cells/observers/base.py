"""Where observed cluster state comes from: the sandbox, or the Kubernetes API (Crossplane and Argo CD status)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from cells.delivery import ObjectRef


@dataclass
class Observation:
    ready: bool
    failed: str = ""  # why the cluster reports it failed
    message: str = ""  # progress while not ready
    detail: dict = field(default_factory=dict)  # stored as the claim's `observed`
    lag_seconds: float | None = None
    lag_measured_at: datetime | None = None


class StatusSource(Protocol):
    name: str

    def observe(self, claim, refs: list[ObjectRef]) -> Observation: ...


def conditions_state(obj: dict | None) -> Observation:
    """Crossplane claims: Ready and Synced conditions."""
    if obj is None:
        return Observation(False, message="not found in the cluster", detail={"found": False})
    conds = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}
    ready, synced = conds.get("Ready", {}), conds.get("Synced", {})
    detail = {"found": True, "conditions": [
        {k: c.get(k) for k in ("type", "status", "reason", "message") if c.get(k) is not None} for c in conds.values()]}
    if synced.get("status") == "False":
        return Observation(False, failed=f"Synced=False: {synced.get('reason', '')} {synced.get('message', '')}".strip(), detail=detail)
    if ready.get("status") == "True" and synced.get("status", "True") == "True":
        return Observation(True, detail=detail)
    reason = ready.get("reason") or "waiting for Ready"
    why = f": {ready['message']}" if ready.get("message") else ""
    return Observation(False, message=f"Ready={ready.get('status', 'Unknown')}: {reason}{why}", detail=detail)


def application_state(obj: dict | None, cold: bool) -> Observation:
    """Argo CD Applications: health and sync.

    A cold standby is never synced: it is in place when nothing of it runs (health Missing) or when its
    last sync already scaled it to zero (Synced). OutOfSync with live resources means a demoted writer
    whose pods still run: Argo CD will not scale them down without a sync.
    """
    if obj is None:
        return Observation(False, message="Application not found in Argo CD", detail={"found": False})
    status = obj.get("status") or {}
    health = (status.get("health") or {}).get("status", "Unknown")
    sync = (status.get("sync") or {}).get("status", "Unknown")
    detail = {"found": True, "health": health, "sync": sync}
    if cold:
        if health == "Missing" or sync == "Synced":
            return Observation(True, message="cold standby: defined, not synced", detail=detail)
        return Observation(False, message=f"cold standby still runs its last synced workload (health {health}, "
                           f"sync {sync}): scale it to zero before turning sync off", detail=detail)
    if health == "Degraded":
        return Observation(False, failed=f"health Degraded: {(status.get('health') or {}).get('message', '')}".strip(), detail=detail)
    if health == "Healthy" and sync == "Synced":
        return Observation(True, detail=detail)
    return Observation(False, message=f"health {health}, sync {sync}", detail=detail)
