"""Health at a glance, derived from claim statuses: a text label and a tone (never colour alone).

Pure functions over rows already loaded (prefetched): no query here. Candidates to move
into cells/presenters.py so that the API's status and the portal say the same thing.
"""
from __future__ import annotations

from dataclasses import dataclass

from cells.models import ClaimStatus
from cells.text import duration  # noqa: F401 (the portal's modules take it from here)

IN_PROGRESS = (ClaimStatus.PENDING, ClaimStatus.DELIVERING, ClaimStatus.DELIVERED, ClaimStatus.DELETING)
FINAL = (ClaimStatus.READY, ClaimStatus.FAILED, ClaimStatus.DELETED)


@dataclass(frozen=True)
class Health:
    state: str  # ready | progress | failed | none | removed | unknown
    label: str  # what a person reads
    tone: str  # ok | warn | bad | idle: the CSS class; the label always says the same in words
    detail: str = ""  # the numbers behind the label, e.g. "lag 0.8 s / RPO 60 s"

    @property
    def symbol(self) -> str:
        """A shape per tone, so status reads without colour too."""
        return {"ok": "✓", "warn": "◷", "bad": "✕"}.get(self.tone, "–")


NONE = Health("none", "not requested", "idle")
SINGLE = {ClaimStatus.PENDING: "pending", ClaimStatus.DELIVERING: "delivering", ClaimStatus.DELIVERED: "delivered, not ready yet"}


def claims_health(claims) -> Health:
    """One health for a set of claims (a cell's data or compute side)."""
    statuses = [c.status for c in claims]
    if not statuses:
        return NONE
    n = len(statuses)
    failed = statuses.count(ClaimStatus.FAILED)
    if failed:
        return Health("failed", "failed" if failed == n else f"failed ({failed} of {n})", "bad")
    if all(s == ClaimStatus.DELETED for s in statuses):
        return Health("removed", "decommissioned", "idle")
    if any(s in (ClaimStatus.DELETING, ClaimStatus.DELETED) for s in statuses):
        return Health("progress", "removing", "warn")
    ready = statuses.count(ClaimStatus.READY)
    if ready == n:
        return Health("ready", "ready", "ok")
    if n == 1:
        return Health("progress", SINGLE.get(statuses[0], str(statuses[0])), "warn")
    return Health("progress", f"provisioning ({ready} of {n} ready)", "warn")


def claim_health(claim) -> Health:
    return claims_health([claim])


def traffic_health(active_side: str, applications) -> Health:
    """Traffic is healthy when the side it points at serves: that side's application is ready."""
    apps = {a.side: a for a in applications}
    if not apps:
        return Health("none", "no app yet", "idle")
    app = apps.get(active_side)
    if app is None:
        return Health("failed", f"no app on the {active_side}", "bad")
    h = claim_health(app)
    if h.state == "ready":
        return Health("ready", f"serving {active_side}", "ok")
    if h.state == "failed":
        return Health("failed", f"{active_side} failed", "bad")
    return Health(h.state, f"{h.label.split(' (')[0]} ({active_side})", h.tone)


def lag_health(lag_seconds: float | None, rpo_seconds: int | None) -> Health:
    """Replication lag against the DR profile's RPO."""
    if rpo_seconds is None:
        return Health("unknown", "RPO unknown", "idle", f"lag {duration(lag_seconds)}")
    numbers = f"lag {duration(lag_seconds)} / RPO {duration(rpo_seconds)}"
    if lag_seconds is None:
        return Health("none", "not measured yet", "idle", numbers)
    if lag_seconds <= rpo_seconds:
        return Health("ready", "within RPO", "ok", numbers)
    return Health("failed", "above RPO", "bad", numbers)


READINESS_TONES = {"ok": ("ready", "ok"), "warning": ("progress", "warn"), "failing": ("failed", "bad")}


def readiness_health(score: int | None, state: str | None) -> Health:
    """A cell environment's DR readiness (its latest evaluation): the score and the worst check's state in words."""
    if state not in READINESS_TONES:
        return Health("none", "not evaluated yet", "idle")
    kind, tone = READINESS_TONES[state]
    return Health(kind, f"{score} {state}", tone, f"DR readiness {score}/100, {state}")


# -- failover runs and steps -----------------------------------------------------------------

RUN_STATES = {
    "pending": Health("progress", "pending", "warn"),
    "running": Health("progress", "running", "warn"),
    "waiting_approval": Health("progress", "waiting for approval", "warn"),
    "succeeded": Health("ready", "succeeded", "ok"),
    "failed": Health("failed", "failed", "bad"),
    "aborting": Health("progress", "aborting", "warn"),
    "aborted": Health("removed", "aborted", "idle"),
}
STEP_STATES = {
    "pending": Health("none", "pending", "idle"),
    "running": Health("progress", "running", "warn"),
    "succeeded": Health("ready", "succeeded", "ok"),
    "failed": Health("failed", "failed", "bad"),
    "skipped": Health("none", "skipped", "idle"),
}


def _in(table: dict[str, Health], state: str) -> Health:
    """A state's words and tone from its table; a state the table does not know shows as itself."""
    return table.get(state, Health("unknown", str(state), "idle"))


def run_health(state: str) -> Health:
    """A failover run's state in words and a tone."""
    return _in(RUN_STATES, state)


def step_health(state: str, waiting: str = "") -> Health:
    """A step's state; a running step that waits (for approval, for the lag to drain) says so."""
    if state == "running" and waiting:
        return Health("progress", waiting, "warn")
    return _in(STEP_STATES, state)


def target_health(measured: float | None, target: int | None, what: str) -> Health:
    """A measured RTO or data-loss window against its target."""
    if measured is None:
        return Health("none", "not measured", "idle", f"target {duration(target)}")
    numbers = f"{duration(measured)} / target {duration(target)}"
    if target is None or measured <= target:
        return Health("ready", f"{what} met", "ok", numbers)
    return Health("failed", f"{what} missed", "bad", numbers)


# -- evacuations -------------------------------------------------------------------------------

EVACUATION_STATES = {
    "running": Health("progress", "running", "warn"),
    "paused": Health("progress", "paused", "warn"),
    "succeeded": Health("ready", "succeeded", "ok"),
    "failed": Health("failed", "ended with failures", "bad"),
    "aborted": Health("removed", "aborted", "idle"),
}
EVACUATION_ITEM_STATES = {
    "pending": Health("none", "waiting for its wave", "idle"),
    "running": Health("progress", "moving", "warn"),
    "succeeded": Health("ready", "moved", "ok"),
    "failed": Health("failed", "failed", "bad"),
    "skipped": Health("failed", "cannot move", "bad"),
    "aborted": Health("removed", "aborted", "idle"),
}


def evacuation_health(state: str) -> Health:
    return _in(EVACUATION_STATES, state)


def evacuation_item_health(state: str) -> Health:
    return _in(EVACUATION_ITEM_STATES, state)
