"""The Kubernetes objects a cell environment is made of, rendered from manifests/ (pure function of the rows)."""
from __future__ import annotations

from policy.active import active_policy

from . import rendering
from .models import Application, CellEnvironment, MySQLClaim, ReplicationClaim


def _base(ce: CellEnvironment, obj) -> dict:
    return {
        "name": obj.name,
        "namespace": ce.namespace,
        "cell": ce.cell.name,
        "environment": ce.environment,
        "team": ce.cell.team.slug,
        "tier": ce.tier,
        "drProfile": ce.dr_profile,
        "revision": obj.revision,
    }


def mysql_claim_context(ce: CellEnvironment, c: MySQLClaim) -> dict:
    return {**_base(ce, c), "side": c.side, "size": c.size, "storageGB": c.storage_gb, "ha": c.ha, **c.site,
            "decisionId": ce.placement_id, "policyVersion": ce.placement.policy_version,
            "adoptExternalName": c.adopted_external_name}


def _end(c: MySQLClaim) -> dict:
    """One end of a replication: the claim, where it runs and, once the database reports it, its endpoint."""
    end = {"claimName": c.name, **c.site}
    if (c.observed or {}).get("endpoint"):
        end.update(endpoint=c.observed["endpoint"], port=int(c.observed.get("port") or 3306))
    return end


def replication_context(ce: CellEnvironment, r: ReplicationClaim, claims: dict[int, MySQLClaim]) -> dict:
    source, target = claims[r.source_id], claims[r.target_id]
    ctx = {**_base(ce, r), "tool": r.tool, "expectedRPOSeconds": r.expected_rpo_seconds,
           "source": _end(source), "target": _end(target)}
    tool = active_policy().spec.replication_tools.get(r.tool)
    if tool is not None and tool.settings:
        ctx["goldengate"] = dict(tool.settings)
    return ctx


def application_context(ce: CellEnvironment, a: Application) -> dict:
    source = active_policy().spec.defaults.compute_source
    return {**_base(ce, a), "side": a.side, "image": a.image, "publicHost": a.public_host,
            "trafficMode": a.traffic_mode, "computeMode": a.compute_mode, "replicas": a.replicas, **a.site,
            "repoURL": source.repo_url, "path": source.path, "targetRevision": source.target_revision}


def render_mysql(ce: CellEnvironment, c: MySQLClaim) -> list[dict]:
    return [rendering.render_mysql_claim(mysql_claim_context(ce, c))]


def render_replication(ce: CellEnvironment, r: ReplicationClaim, claims: dict[int, MySQLClaim]) -> list[dict]:
    # GoldenGate connections need the databases' hosts, known only once the claims are ready:
    # the claim carries the replicat names now; the connections are rendered at delivery.
    return [rendering.render_replication_claim(replication_context(ce, r, claims))]


def render_application(ce: CellEnvironment, a: Application) -> list[dict]:
    return [rendering.render_application(application_context(ce, a))]


def cell_environment_objects(ce: CellEnvironment) -> list[tuple[object, list[dict]]]:
    """(row, rendered objects) for every claim and application of the cell environment."""
    claims = {c.pk: c for c in ce.mysqlclaims.all()}
    out: list[tuple[object, list[dict]]] = [(c, render_mysql(ce, c)) for c in sorted(claims.values(), key=lambda c: c.side)]
    out += [(r, render_replication(ce, r, claims)) for r in ce.replicationclaims.all()]
    out += [(a, render_application(ce, a)) for a in sorted(ce.applications.all(), key=lambda a: a.side)]
    return out


def cell_environment_yaml(ce: CellEnvironment) -> str:
    return rendering.to_yaml([obj for _, objs in cell_environment_objects(ce) for obj in objs])
