"""What a change to a placed MySQL claim means on each cloud's managed MySQL: data, in one place.

A claim's `size` becomes the instance shape (OCI MySQL HeatWave shape, Amazon RDS DB instance class,
Azure Database for MySQL flexible server compute size, Cloud SQL tier), `ha` the provider's HA
option and `storageGB` the allocated storage. cells.services reports, per side, whether a change is
online on the side's cloud (changeImpact in the API answer and in the audit event); every fact names
the page it was read from. Storage never shrinks on any of them: that rule is STORAGE_ONLY_GROWS.
"""
from __future__ import annotations

from dataclasses import dataclass

# Claim fields (as the API names them) whose change has a cloud-side effect.
FIELDS = ("size", "storageGB", "ha")


@dataclass(frozen=True)
class Fact:
    online: bool
    detail: str
    source: str  # the documentation page the fact comes from ("" when no page confirmed it)


STORAGE_ONLY_GROWS = (
    "no managed MySQL service (OCI MySQL HeatWave, Amazon RDS, Azure Database for MySQL flexible server, "
    "Cloud SQL) can shrink allocated storage"
)

RDS_MODIFY = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ModifyInstance.MySQL.html"
RDS_STORAGE = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PIOPS.ModifyingExisting.html"
RDS_MULTI_AZ = ("https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/rds/aws.sdk.kotlin.services.rds.model/"
                "-modify-db-instance-request/multi-az.html")
OCI_UPDATE = "https://docs.cloud.oracle.com/tools/oci-cli/latest/oci_cli_docs/cmdref/mysql/db-system/update.html"
OCI_STORAGE = "https://blogs.oracle.com/mysql/enabling-automatic-storage-expansion"
AZURE_TIERS = "https://learn.microsoft.com/en-us/azure/mysql/flexible-server/concepts-service-tiers-storage"
AZURE_HA = "https://learn.microsoft.com/en-us/azure/mysql/flexible-server/concepts-high-availability"
GCP_UPDATE = "https://cloud.google.com/sql/docs/mysql/admin-api/rest/v1/instances/update"
# Google's pages read here say only "might cause your instance to restart"; which change does is from this guide.
GCP_RESIZE = "https://oneuptime.com/blog/post/2026-02-17-how-to-resize-a-cloud-sql-instance-without-downtime/view"

# field -> cloud (the policy's provider names) -> fact
FACTS: dict[str, dict[str, Fact]] = {
    "size": {
        "oci": Fact(False, "MySQL HeatWave: changing the shape of a DB system provisions new compute, pauses the "
                           "DB system and migrates storage before it is available again", OCI_UPDATE),
        "aws": Fact(False, "Amazon RDS: a DB instance class change is a modification RDS applies by rebooting the "
                           "instance (downtime), in the maintenance window unless applied immediately", RDS_MODIFY),
        "azure": Fact(False, "Azure flexible server: compute scaling restarts the server (60-120 seconds)",
                      AZURE_TIERS),
        "gcp": Fact(False, "Cloud SQL: changing the tier (machine type) restarts the instance", GCP_RESIZE),
    },
    "storageGB": {
        "oci": Fact(True, "MySQL HeatWave: storage grows without downtime", OCI_STORAGE),
        "aws": Fact(True, "Amazon RDS: scaling storage up usually causes no outage (the instance then shows "
                          "storage-optimization; the next storage change waits at least 6 hours)", RDS_STORAGE),
        "azure": Fact(True, "Azure flexible server: storage scaling does not require a restart", AZURE_TIERS),
        "gcp": Fact(True, "Cloud SQL: increasing storage capacity does not restart the instance", GCP_RESIZE),
    },
    "ha": {
        "oci": Fact(False, "MySQL HeatWave: enabling or disabling high availability changes the DB system's "
                           "instances; not confirmed online: plan it as disruptive", ""),
        "aws": Fact(True, "Amazon RDS: converting to or from Multi-AZ does not cause an outage (performance can "
                          "drop while the standby is created)", RDS_MULTI_AZ),
        "azure": Fact(False, "Azure flexible server: zone-redundant HA can be enabled only when the server is "
                             "created; same-zone HA adds a standby: plan it as disruptive", AZURE_HA),
        "gcp": Fact(False, "Cloud SQL: changing availability (zonal/regional) may restart the instance",
                    GCP_UPDATE),
    },
}

UNKNOWN = Fact(False, "no known behaviour for this cloud: plan it as a disruptive change", "")


def fact(field: str, cloud: str) -> Fact:
    return FACTS.get(field, {}).get(cloud, UNKNOWN)


def impact(side: str, cloud: str, before: dict, after: dict) -> list[dict]:
    """One entry per changed field of one side's claim (`before`/`after` keyed by FIELDS)."""
    out = []
    for field in FIELDS:
        if field in before and field in after and before[field] != after[field]:
            f = fact(field, cloud)
            out.append({"side": side, "cloud": cloud, "field": field, "from": before[field], "to": after[field],
                        "online": f.online, "detail": f.detail, "source": f.source})
    return out
