"""JSON shapes of the API (camelCase, as in the developer contracts). Read-only views of the models."""
from __future__ import annotations

from typing import Callable

from policy.active import active_policy
from scheduler.models import PlacementDecision

from .models import Application, CellEnvironment, Delivery, MySQLClaim, ReplicationClaim
from .reads import CompiledRead


def _iso(dt):
    return dt.isoformat() if dt else None


def placement(d: PlacementDecision) -> dict:
    return {
        "decisionId": d.pk,
        "policyVersion": d.policy_version,
        "reason": d.reason,
        "decidedAt": _iso(d.created_at),
        "primary": d.site("primary"),
        "secondary": d.site("secondary"),
        "summary": d.explanation.get("summary", ""),
        "explanationUrl": f"/api/placements/{d.pk}",
    }


def decision_detail(d: PlacementDecision) -> dict:
    return {
        **placement(d),
        "cell": d.cell,
        "environment": d.environment,
        "note": d.note,
        "actor": d.actor.username if d.actor_id else None,
        "request": d.request,
        "explanation": d.explanation,
    }


def _claim(c) -> dict:
    return {
        "name": c.name,
        "status": c.status,
        "statusMessage": c.status_message,
        "revision": c.revision,
        "deliveredRevision": c.delivered_revision,
        "deliveredAt": _iso(c.delivered_at),
        "observed": c.observed,
        "observedAt": _iso(c.observed_at),
    }


def mysql_claim(c: MySQLClaim) -> dict:
    return {**_claim(c), "side": c.side, **c.site, "size": c.size, "storageGB": c.storage_gb, "ha": c.ha}


def replication_claim(r: ReplicationClaim, claims: dict[int, MySQLClaim]) -> dict:
    source, target = claims.get(r.source_id), claims.get(r.target_id)
    stopped = bool(source) and r.cell_env.replication_stopped(source.side)
    return {
        **_claim(r),
        "tool": r.tool,
        "expectedRPOSeconds": r.expected_rpo_seconds,
        "source": source.name if source else None,
        "target": target.name if target else None,
        "direction": f"{source.side} -> {target.side}" if source and target else None,
        "replicating": not stopped,
        "lagSeconds": None if stopped else r.lag_seconds,
        "lagMeasuredAt": None if stopped else _iso(r.lag_measured_at),
    }


def application(a: Application) -> dict:
    return {**_claim(a), "side": a.side, **a.site, "image": a.image, "computeMode": a.compute_mode, "replicas": a.replicas}


def _header(ce: CellEnvironment) -> dict:
    return {
        "decommissionedAt": _iso(ce.decommissioned_at),
        "cell": ce.cell.name,
        "team": ce.cell.team.slug,
        "environment": ce.environment,
        "tier": ce.tier,
        "drProfile": ce.dr_profile,
        "placement": placement(ce.placement),
    }


# What a status reads of a cell environment beyond its row: one query each, compiled once per process
# (cells.reads). The argument is the cell environment's id.
LAST_DELIVERIES = 5
_replication_with_ends = CompiledRead(  # at most one per cell environment
    lambda ce_id: ReplicationClaim.objects.select_related("source", "target").filter(cell_env_id=ce_id), -1)
_applications = CompiledRead(lambda ce_id: Application.objects.filter(cell_env_id=ce_id), -1)
_last_deliveries = CompiledRead(
    lambda ce_id: Delivery.objects.filter(cell_env_id=ce_id).order_by("-created_at", "-id")[:LAST_DELIVERIES], -1)


def applications(ce: CellEnvironment) -> list[Application]:
    return _applications(ce.pk)


def _data(ce: CellEnvironment) -> dict | None:
    # One query: the replication with its source and target. The MySQL claims (one per side) are created with the
    # replication between them, so its ends are all of them; without a replication they are read on their own.
    repl = next(iter(_replication_with_ends(ce.pk)), None)
    if repl is not None:
        repl.cell_env = ce
    claims = {c.pk: c for c in ((repl.source, repl.target) if repl is not None else ce.mysqlclaims.all())}
    if not claims:
        return None
    by_side = {c.side: mysql_claim(c) for c in claims.values()}
    return {
        "primary": by_side.get("primary"),
        "secondary": by_side.get("secondary"),
        "replication": replication_claim(repl, claims) if repl else None,
    }


def _compute(apps: list[Application]) -> dict | None:
    by_side = {a.side: application(a) for a in apps}
    return {"primary": by_side.get("primary"), "secondary": by_side.get("secondary")} if by_side else None


def _traffic(ce: CellEnvironment, apps: list[Application]) -> dict | None:
    app = apps[0] if apps else None
    if app is None:
        return {"provider": ce.traffic_provider, "publicHost": None, "mode": None, "activeSide": ce.active_side}
    return {"provider": ce.traffic_provider, "publicHost": app.public_host, "mode": app.traffic_mode, "activeSide": ce.active_side}


def dr_targets(ce: CellEnvironment) -> dict | None:
    profile = active_policy().spec.dr_profiles.get(ce.dr_profile)
    if profile is None:
        return None
    return {"rpoSeconds": profile.rpo_seconds, "rtoSeconds": profile.rto_seconds, "computeMode": profile.compute_mode}


def mysql_response(ce: CellEnvironment) -> dict:
    data = _data(ce) or {}
    return {**_header(ce), "claims": data}


def app_response(ce: CellEnvironment) -> dict:
    apps = applications(ce)
    return {**_header(ce), "applications": _compute(apps) or {}, "traffic": _traffic(ce, apps)}


def deliveries(ce: CellEnvironment) -> list[dict]:
    """The last LAST_DELIVERIES deliveries, newest first."""
    return [{
        "id": d.pk, "action": d.action, "state": d.state, "reason": d.reason, "attempts": d.attempts,
        "lastError": d.last_error, "result": d.result, "target": d.target, "createdAt": _iso(d.created_at),
        "finishedAt": _iso(d.finished_at), "claims": [f"{i['name']}@{i['revision']}" for i in d.items],
    } for d in _last_deliveries(ce.pk)]


def status(ce: CellEnvironment) -> dict:
    """One query per part: the replication with both MySQL claims, the applications (compute and traffic share
    them), the last deliveries, and one per registered part (dr: the last failover run)."""
    apps = applications(ce)
    return {
        **_header(ce),
        "deliveries": deliveries(ce),
        "drTargets": dr_targets(ce),
        "data": _data(ce),
        "compute": _compute(apps),
        "traffic": _traffic(ce, apps),
        "roles": {"writer": ce.writers(), "epoch": ce.epoch, "activeSide": ce.active_side,
                  "lastFailoverAt": _iso(ce.last_failover_at)},
        **{name: part(ce) for name, part in STATUS_PARTS.items()},
    }


# Parts other apps add to a cell environment's status (dr adds "failover" when it starts): name -> part(ce).
# cells stays below dr: it calls what was registered and imports nothing of it.
STATUS_PARTS: dict[str, Callable[[CellEnvironment], object]] = {}
