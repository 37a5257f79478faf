"""The adapters this installation has, by failover role and by the name the policy uses: the one list that the
policy check validates against and the runbook loads from (dr/providers.py). Dotted paths only, nothing
imported here: the policy layer stays free of Django and of the clouds' SDKs.

A new adapter is a module plus one line here.
"""
from __future__ import annotations

SANDBOX = "sandbox"
# In a replication tool's adapters: "the adapter of the database the operation acts on" (the side's own:
# providers.<cloud>.database, or the candidate's `database`).
DATABASE = "database"

ADAPTERS: dict[str, dict[str, str]] = {
    "traffic": {
        SANDBOX: "dr.traffic.providers.sandbox.SandboxTraffic",
        "powerdns": "dr.traffic.providers.powerdns.PowerDnsProvider",
        "oci-dns": "dr.traffic.providers.oci_dns.OciDnsProvider",
        "route53": "dr.traffic.providers.route53.Route53Provider",
        "cloudflare": "dr.traffic.providers.cloudflare.CloudflareProvider",
    },
    "probe": {
        SANDBOX: "dr.replication.sandbox.SandboxReplication",
        "goldengate": "dr.replication.goldengate.GoldenGateProbe",
        "mysql": "dr.replication.mysql.MySQLReplication",
        "rds": "dr.replication.rds.RdsReplication",
        "heatwave": "dr.replication.heatwave.HeatWaveReplication",
        "backup": "dr.replication.backup.BackupRestore",
    },
    "fence": {
        SANDBOX: "dr.fencing.sandbox.SandboxFence",
        "mysql": "dr.fencing.mysql.MySQLFence",
        "rds": "dr.fencing.rds.RdsFence",
        "heatwave": "dr.fencing.heatwave.HeatWaveFence",
    },
    "promoter": {
        SANDBOX: "dr.replication.sandbox.SandboxReplication",
        "mysql": "dr.replication.mysql.MySQLReplication",
        "rds": "dr.replication.rds.RdsReplication",
        "heatwave": "dr.replication.heatwave.HeatWaveReplication",
        "goldengate": "dr.replication.goldengate_promoter.GoldenGatePromoter",
        "backup": "dr.replication.backup.BackupRestore",
    },
    "compute": {
        "argocd": "dr.compute.argocd.ArgoCDActivator",
    },
}

# The traffic providers' published API rate limits, (requests per second, burst): what every call of theirs
# respects unless the policy's `trafficProviders.<name>.rateLimit` says otherwise (dr/traffic/ratelimit.py).
# A traffic adapter not listed here (powerdns: your own server; the sandbox) has no limit unless the policy sets one.
TRAFFIC_RATE_LIMITS: dict[str, tuple[float, int]] = {
    # "Five requests per second per AWS account" (Route 53 Developer Guide, DNSLimitations; the throttling page
    # updated in 2026 raises the account bucket to 10/s with a burst of 50: 5 stays the safe floor).
    "route53": (5, 5),
    # Oracle publishes no request rate for the DNS API (only 429 TooManyRequests, retried with back-off):
    # an assumption, as conservative as Route 53's.
    "oci-dns": (5, 5),
    # "1200 requests per five minutes per user" (developers.cloudflare.com/fundamentals/api/reference/limits):
    # 4/s on average; going over blocks every call of that user for five minutes.
    "cloudflare": (4, 4),
}

# The data roles a database adapter must play to be a side's `database`.
DATABASE_ROLES = ("probe", "fence", "promoter")
DATABASES = tuple(sorted(set.intersection(*(set(ADAPTERS[r]) for r in DATABASE_ROLES)) - {SANDBOX}))

# Managed MySQL services the policy may name whose failover this installation cannot drive yet: placing a
# cell's database there is refused by `policy check` (cordon the candidate, or run self-managed MySQL: `mysql`).
NOT_SUPPORTED_YET = {  # name -> (service, why)
    "azure-mysql-flexible": ("Azure Database for MySQL flexible server", "read-only and replication go through "
                             "server parameters and stored procedures this installation has no adapter for yet"),
    "cloud-sql-mysql": ("Cloud SQL for MySQL", "replicas and promotion go through the Cloud SQL Admin API, which "
                        "this installation has no adapter for yet"),
}

# The database's MySQL versions the adapters speak (reprotect uses CHANGE REPLICATION SOURCE / START REPLICA,
# GTID auto-positioning and, with caching_sha2_password, SOURCE_SSL=1 or GET_SOURCE_PUBLIC_KEY=1).
SUPPORTED_VERSIONS = "MySQL 8.0.23 or later (8.4 LTS included), MariaDB 10.6 or later"


def names(role: str) -> tuple[str, ...]:
    return tuple(sorted(ADAPTERS[role]))
