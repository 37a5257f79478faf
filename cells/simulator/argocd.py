"""Argo CD's rules for an Application, as the simulator plays them (pure: the object and the last state in).

- A sync deploys what the Application declares (its source, with the Helm parameters); automated sync
  does it whenever the declared source changes, otherwise only when a sync is requested.
- Without `syncPolicy.automated` nothing is synced: the app stays OutOfSync and runs what it last ran
  (nothing, if never synced: health Missing).
- Pods reach the synced replica count after the simulator's delay; Healthy means the replicas of the
  last sync are running (0 included, as for a Deployment scaled to zero), Progressing until then.
"""
from __future__ import annotations

import json


def declared_replicas(app: dict) -> int:
    params = {p.get("name"): p.get("value") for p in
              ((((app.get("spec") or {}).get("source") or {}).get("helm") or {}).get("parameters") or [])}
    try:
        return int(params.get("replicaCount", 1))  # the chart's default when not set
    except (TypeError, ValueError):
        return 1


def automated(app: dict) -> bool:
    auto = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    return isinstance(auto, dict) and auto.get("enabled", True) is not False


def _manifest_key(app: dict) -> str:
    """What a sync deploys: the source (chart and parameters) and destination; not the sync policy."""
    spec = app.get("spec") or {}
    return json.dumps({"source": spec.get("source"), "destination": spec.get("destination")}, sort_keys=True)


def running(state: dict, now: float, delay: float) -> int:
    if state.get("syncedAt") is None:
        return int(state.get("running", 0))
    return int(state["target"]) if now - state["syncedAt"] >= delay else int(state.get("from", 0))


def reconcile(app: dict, state: dict, now: float, delay: float, *, fail: str = "") -> dict:
    """Advance `state` (mutated) to `now` and return the Application's status as Argo CD would report it."""
    key = _manifest_key(app)
    requested = state.pop("syncRequested", False)
    if (automated(app) or requested) and state.get("syncedKey") != key:
        state["from"] = running(state, now, delay)
        state.update(syncedKey=key, target=declared_replicas(app), syncedAt=now)
    pods = running(state, now, delay)
    state["running"] = pods
    synced = state.get("syncedKey") is not None
    sync = "Synced" if synced and state["syncedKey"] == key else "OutOfSync"
    if fail:
        health, message = "Degraded", fail
    elif not synced:
        health, message = "Missing", "never synced: nothing deployed"
    elif pods == state["target"]:
        health, message = "Healthy", ""
    else:
        health, message = "Progressing", f"{pods} of {state['target']} replicas running"
    return {"sync": {"status": sync}, "health": {"status": health, "message": message},
            "simulator": {"declaredReplicas": declared_replicas(app), "syncedReplicas": state.get("target"),
                          "runningReplicas": pods, "automated": automated(app)}}
