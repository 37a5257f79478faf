"""Many cell environments at once, written in bulk (no scheduler run per row): for the query-count test and bench/portal.py.

Each cell environment gets a PlacementDecision with a realistic explanation, two MySQL
claims, a replication claim (with a lag) and two applications; a tenth are still in
progress, a twentieth have a failed claim, a twentieth replicate above their RPO.
"""
from __future__ import annotations

from django.utils import timezone

from cells.models import Application, Cell, CellEnvironment, ClaimStatus, MySQLClaim, ReplicationClaim, Team
from policy.active import active_policy, record_version
from scheduler.models import PlacementDecision

SITES = [("oci", "us-ashburn-1", "oke-iad-1"), ("aws", "us-east-1", "eks-use1-1"), ("gcp", "us-east4", "gke-use4-1"),
         ("azure", "eastus2", "aks-eus2-1")]


def _explanation(i: int, primary, secondary) -> dict:
    candidates = []
    for rank, (cloud, region, cluster) in enumerate(SITES, start=1):
        key = f"{cloud}/{region}/{cluster}"
        scores = {w: {"attribute": a, "value": 10 + rank, "normalized": 1 / rank, "weight": 0.5, "contribution": 0.5 / rank}
                  for w, a in (("latency", "latencyMs"), ("cost", "costIndex"), ("capacity", "capacityHeadroomPct"))}
        candidates.append({"key": key, "cloud": cloud, "region": region, "cluster": cluster, "accepted": True,
                           "rejections": [], "scores": scores, "score": round(1.5 / rank, 4), "rank": rank})
    return {
        "request": {"cell": f"bulk-{i}", "environment": "prod", "tier": "C0", "drProfile": "gold"},
        "tier": {"name": "C0", "gates": {"requireHA": True}, "weights": {"latency": 0.5, "cost": 0.2, "capacity": 0.3}},
        "drProfile": {"name": "gold", "secondaryPlacement": "other-cloud"},
        "tieBreak": "score desc", "candidates": candidates,
        "primary": {"key": "/".join(primary), "reason": "highest-ranked"},
        "secondary": {"key": "/".join(secondary), "reason": "other cloud", "rejected": []},
        "summary": f"primary {'/'.join(primary)}, secondary {'/'.join(secondary)}",
    }


def create_cell_environments(n: int, team_slug: str = "payments", prefix: str = "bulk") -> list[CellEnvironment]:
    policy = active_policy()
    version = record_version(policy)
    team, _ = Team.objects.get_or_create(slug=team_slug, defaults={"name": team_slug.title()})
    cells = Cell.objects.bulk_create([Cell(name=f"{prefix}-{i}", team=team) for i in range(n)])
    decisions = []
    for i in range(n):
        p, s = SITES[i % 2], SITES[2 + i % 2]
        decisions.append(PlacementDecision(
            cell=f"{prefix}-{i}", environment="prod", policy_version=policy.version, policy=version, request={},
            explanation=_explanation(i, p, s), primary_cloud=p[0], primary_region=p[1], primary_cluster=p[2],
            secondary_cloud=s[0], secondary_region=s[1], secondary_cluster=s[2]))
    decisions = PlacementDecision.objects.bulk_create(decisions)
    envs = CellEnvironment.objects.bulk_create([
        CellEnvironment(cell=c, environment="prod", tier="C0", dr_profile="gold", placement=d, traffic_provider="oci-dns")
        for c, d in zip(cells, decisions)])
    now = timezone.now()

    def status(i: int) -> str:
        return ClaimStatus.PENDING if i % 10 == 3 else ClaimStatus.FAILED if i % 20 == 7 else ClaimStatus.READY

    mysql = []
    for i, (ce, d) in enumerate(zip(envs, decisions)):
        for side in ("primary", "secondary"):
            site = d.site(side)
            mysql.append(MySQLClaim(cell_env=ce, side=side, name=f"{ce.cell.name}-prod-mysql-{side}", size="small",
                                    storage_gb=50, ha=True, status=status(i), delivered_revision=1, **site))
    mysql = MySQLClaim.objects.bulk_create(mysql)
    ReplicationClaim.objects.bulk_create([
        ReplicationClaim(cell_env=ce, name=f"{ce.cell.name}-prod-replication", source=mysql[2 * i], target=mysql[2 * i + 1],
                         tool="oci-goldengate", expected_rpo_seconds=60, status=ClaimStatus.READY, delivered_revision=1,
                         lag_seconds=120.0 if i % 20 == 11 else 0.8, lag_measured_at=now)
        for i, ce in enumerate(envs)])
    Application.objects.bulk_create([
        Application(cell_env=ce, side=side, name=f"{ce.cell.name}-prod-{side}", image="ghcr.io/acme/app:1",
                    public_host=f"{ce.cell.name}.example.com", traffic_mode="active-passive",
                    compute_mode="active" if side == "primary" else "warm", replicas=3 if side == "primary" else 1,
                    status=ClaimStatus.READY, delivered_revision=1, **d.site(side))
        for ce, d in zip(envs, decisions) for side in ("primary", "secondary")])
    return envs
