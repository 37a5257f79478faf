"""What the topology picture of a cell environment shows, as plain data for templates/partials/topology.html.

The picture is an inline SVG drawn on the server: the primary and the secondary (cloud,
region, cluster, the database and the compute of each side with their states), the
replication arrow labelled with its tool, lag and RPO, and the traffic provider pointing
at the active side. Every state is written out in words; colour only repeats it.
"""
from __future__ import annotations

from dataclasses import dataclass

from cells.models import CellEnvironment

from .health import NONE, Health, claim_health, duration, lag_health, traffic_health

CLOUD_NAMES = {"oci": "OCI", "aws": "AWS", "gcp": "GCP", "azure": "Azure"}
COMPUTE = {
    "active": "active",
    "warm": "warm standby",
    "pilot": "pilot light",
    "cold": "cold standby",
}


@dataclass
class SideBox:
    role: str  # primary | secondary
    cloud: str
    cloud_name: str
    region: str
    cluster: str
    serving: bool
    db: str
    db_health: Health
    compute: str
    compute_health: Health
    writer: bool = False  # holds the cell's current fencing epoch
    epoch: int = 0  # the epoch this side holds

    @property
    def heading(self) -> str:
        return f"{self.role.upper()} · {'SERVES TRAFFIC' if self.serving else 'STANDBY'}"

    @property
    def db_role(self) -> str:
        """Writer (holds the current epoch) or read-only, with the side's epoch."""
        return f"{'WRITER' if self.writer else 'READ-ONLY'} · EPOCH {self.epoch}"


@dataclass
class Topology:
    primary: SideBox
    secondary: SideBox
    replication: str  # tool, or why there is none
    lag: Health
    traffic_provider: str
    traffic_host: str
    traffic: Health
    active_side: str
    decommissioned: bool
    epoch: int = 1
    writers: tuple[str, ...] = ("primary",)
    replication_from: str = "primary"  # the side replication reads from (the secondary after a reprotect)
    replication_note: str = ""  # e.g. why replication does not flow

    @property
    def writer(self) -> str:
        """The side holding the current epoch, or a warning when it is not exactly one."""
        if len(self.writers) == 1:
            return self.writers[0]
        return "both sides (unsafe)" if self.writers else "none (fenced)"

    @property
    def replication_reversed(self) -> bool:
        return self.replication_from == "secondary"

    @property
    def summary(self) -> str:
        """The whole picture in one sentence, for screen readers (the SVG's <desc>)."""
        p, s = self.primary, self.secondary
        to = "primary" if self.replication_reversed else "secondary"
        return (f"Primary on {p.cloud_name} {p.region} cluster {p.cluster}: database {p.db_health.label}, "
                f"{p.db_role.lower()}, compute {p.compute} {p.compute_health.label}. Secondary on {s.cloud_name} {s.region} "
                f"cluster {s.cluster}: database {s.db_health.label}, {s.db_role.lower()}, compute {s.compute} "
                f"{s.compute_health.label}. The writer is the {self.writer} at epoch {self.epoch}. Replication {self.replication} "
                f"from the {self.replication_from} to the {to}: {self.lag.label}{'; ' + self.replication_note if self.replication_note else ''}. "
                f"Traffic via {self.traffic_provider} points at the {self.active_side}.")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _side(ce: CellEnvironment, role: str, mysql, app) -> SideBox:
    site = ce.placement.site(role)
    if mysql is not None:
        db, db_health = f"MySQL {mysql.size} · {mysql.storage_gb} GB{' · HA' if mysql.ha else ''}", claim_health(mysql)
    else:
        db, db_health = "no database requested", NONE
    if app is not None:
        compute = f"{COMPUTE.get(app.compute_mode, app.compute_mode)} · {_plural(app.replicas, 'replica')}"
        compute_health = claim_health(app)
    else:
        compute, compute_health = "no app requested", NONE
    return SideBox(role, site["cloud"], CLOUD_NAMES.get(site["cloud"], site["cloud"]), site["region"], site["cluster"],
                   ce.active_side == role, db, db_health, compute, compute_health,
                   writer=role in ce.writers(), epoch=ce.side_epoch(role))


def topology(ce: CellEnvironment, claims: dict, rpo_seconds: int | None) -> Topology:
    mysql, apps, repl = claims["mysql"], claims["apps"], claims["replication"]
    if repl is not None:
        replication, lag = repl.tool, lag_health(repl.lag_seconds, rpo_seconds)
    else:
        replication = "not set up"
        lag = Health("none", "no database yet", "idle", f"RPO {duration(rpo_seconds)}" if rpo_seconds is not None else "")
    host = next((a.public_host for a in apps.values()), "") or "no public host yet"
    source = next((side for side, c in mysql.items() if repl is not None and c.pk == repl.source_id), "primary")
    writers = tuple(ce.writers())
    note = ""
    if repl is not None and ce.replication_stopped(source):
        note = f"stopped: the writer ({writers[0]}) is the replication target; a failback reprotects"
    return Topology(
        primary=_side(ce, "primary", mysql.get("primary"), apps.get("primary")),
        secondary=_side(ce, "secondary", mysql.get("secondary"), apps.get("secondary")),
        replication=replication, lag=lag, traffic_provider=ce.traffic_provider, traffic_host=host,
        traffic=traffic_health(ce.active_side, apps.values()), active_side=ce.active_side,
        decommissioned=ce.decommissioned_at is not None,
        epoch=ce.epoch, writers=writers, replication_from=source, replication_note=note,
    )
