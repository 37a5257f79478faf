"""Cells, teams and the claims a cell environment is made of."""
from django.conf import settings
from django.db import models
from rest_framework.authtoken.models import TokenProxy

from policy.names import SIDES, STANDBY_MODES
from policy.names import ACTIVE as ACTIVE_MODE


class Side(models.TextChoices):
    PRIMARY = SIDES[0], "Primary"
    SECONDARY = SIDES[1], "Secondary"


class ClaimStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERING = "delivering", "Delivering"
    DELIVERED = "delivered", "Delivered"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"


class Team(models.Model):
    """Owns cells. Created from the policy's cell registry; members are managed in the admin."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class Cell(models.Model):
    """A cell of the policy's registry. `registered` turns false when the policy drops it."""

    name = models.CharField(max_length=64, unique=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="cells")
    description = models.TextField(blank=True)
    registered = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


PUBLIC_HOST_CONSTRAINT = "one_live_environment_per_public_host"


class CellEnvironment(models.Model):
    """One environment of a cell: its tier, DR profile and current placement."""

    cell = models.ForeignKey(Cell, on_delete=models.PROTECT, related_name="environments")
    environment = models.CharField(max_length=64)
    tier = models.CharField(max_length=16)
    dr_profile = models.CharField(max_length=32)
    placement = models.ForeignKey("scheduler.PlacementDecision", on_delete=models.PROTECT, related_name="+")
    traffic_provider = models.CharField(max_length=32)
    active_side = models.CharField(max_length=16, choices=Side.choices, default=Side.PRIMARY,
                                   help_text="The side the traffic provider points the public host at.")
    # Fencing: the writer is the side holding the current epoch; a side with an older epoch must never write.
    epoch = models.PositiveIntegerField(default=1)
    writer_side = models.CharField(max_length=16, choices=Side.choices, default=Side.PRIMARY)
    side_epochs = models.JSONField(default=dict, blank=True, help_text='{"primary": 1, "secondary": 0}')
    last_failover_at = models.DateTimeField(null=True, blank=True)
    # The public host its applications serve (both sides' Application rows carry it too). One live cell
    # environment per host: a database constraint, so concurrent requests cannot both take it.
    public_host = models.CharField(max_length=253, null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    decommissioned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cell__name", "environment"]
        constraints = [
            models.UniqueConstraint(fields=["cell", "environment"], name="one_environment_per_cell"),
            models.UniqueConstraint(fields=["public_host"], condition=models.Q(decommissioned_at__isnull=True),
                                    name=PUBLIC_HOST_CONSTRAINT),
        ]

    def __str__(self) -> str:
        return f"{self.cell.name}/{self.environment}"

    @property
    def namespace(self) -> str:
        return f"cell-{self.cell.name}-{self.environment}"

    def side_epoch(self, side: str) -> int:
        default = self.epoch if side == self.writer_side else 0
        return int((self.side_epochs or {}).get(side, default))

    def writers(self) -> list[str]:
        """Sides holding the current epoch: exactly one, or the cell is unsafe."""
        return [s for s in SIDES if self.side_epoch(s) == self.epoch]

    def replication_stopped(self, source_side: str) -> bool:
        """After an unplanned failover the writer is the replication's target: nothing replicates (and its
        last lag means nothing) until a switchover or failback reprotects."""
        writers = self.writers()
        return bool(writers) and source_side not in writers


class Claim(models.Model):
    """Fields every claim shares.

    `revision` is the desired revision (grows with each change); `delivered_revision`
    the newest one the delivery target holds; `observed` what the cluster reports.
    """

    cell_env = models.ForeignKey(CellEnvironment, on_delete=models.PROTECT, related_name="%(class)ss")
    name = models.CharField(max_length=120)
    revision = models.PositiveIntegerField(default=1)
    delivered_revision = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=ClaimStatus.choices, default=ClaimStatus.PENDING)
    status_message = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivered_refs = models.JSONField(default=list, blank=True, help_text="The objects the target holds for this claim.")
    observed = models.JSONField(default=dict, blank=True)
    observed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class Placed(models.Model):
    side = models.CharField(max_length=16, choices=Side.choices)
    cloud = models.CharField(max_length=32)
    region = models.CharField(max_length=64)
    cluster = models.CharField(max_length=63)

    class Meta:
        abstract = True

    @property
    def site(self) -> dict:
        return {"cloud": self.cloud, "region": self.region, "cluster": self.cluster}


class MySQLClaim(Claim, Placed):
    """CellMySQLClaim: one managed MySQL per side."""

    size = models.CharField(max_length=16)
    storage_gb = models.PositiveIntegerField()
    ha = models.BooleanField()
    # After a backup-restore failover: the cloud's id of the restored database, which this claim's managed
    # resource adopts (crossplane.io/external-name), so the cell's connection Secret points at it.
    adopted_external_name = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = "MySQL claim"
        constraints = [models.UniqueConstraint(fields=["cell_env", "side"], name="one_mysql_claim_per_side")]


class ReplicationClaim(Claim):
    """Replication from the primary's MySQL claim to the secondary's."""

    source = models.ForeignKey(MySQLClaim, on_delete=models.PROTECT, related_name="+")
    target = models.ForeignKey(MySQLClaim, on_delete=models.PROTECT, related_name="+")
    tool = models.CharField(max_length=32)
    expected_rpo_seconds = models.PositiveIntegerField()
    lag_seconds = models.FloatField(null=True, blank=True)
    lag_measured_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cell_env"], name="one_replication_claim_per_cell_env")]


class Application(Claim, Placed):
    """An Argo CD Application per side; the secondary's compute mode comes from the DR profile."""

    class ComputeMode(models.TextChoices):
        ACTIVE = ACTIVE_MODE, "Active (writer)"
        WARM = STANDBY_MODES[0], "Warm"
        PILOT = STANDBY_MODES[1], "Pilot light"
        COLD = STANDBY_MODES[2], "Cold"

    image = models.CharField(max_length=300)
    public_host = models.CharField(max_length=253)
    traffic_mode = models.CharField(max_length=32)
    compute_mode = models.CharField(max_length=16, choices=ComputeMode.choices)
    replicas = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cell_env", "side"], name="one_application_per_side")]


class Delivery(models.Model):
    """The outbox: written in the request's transaction, delivered by a worker.

    `items` lists the claims to deliver as [{"type": "mysqlclaim", "id": 1, "revision": 2}, ...].
    A worker takes a row with a compare-and-set on `state`; the dispatcher re-enqueues rows
    that no worker picked up (broker down) or whose worker died (stale `started_at`).
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERING = "delivering", "Delivering"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Action(models.TextChoices):
        APPLY = "apply", "Apply"
        DELETE = "delete", "Delete"

    cell_env = models.ForeignKey(CellEnvironment, on_delete=models.PROTECT, related_name="deliveries")
    action = models.CharField(max_length=8, choices=Action.choices, default=Action.APPLY)
    items = models.JSONField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    target = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    result = models.TextField(blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["state", "enqueued_at"])]

    def __str__(self) -> str:
        return f"delivery #{self.pk} {self.action} {self.cell_env} ({self.state})"


class SandboxObject(models.Model):
    """What the sandbox status provider should report for one object: a failure, a replication lag."""

    name = models.CharField(max_length=300, unique=True, help_text="Claim or application name, a host, or "
                            "`operation:name` for one operation only (lag:, fence:, promote:, reprotect:, read:, switch:).")
    fail_message = models.TextField(blank=True, help_text="If set, the sandbox reports the object as failed.")
    lag_seconds = models.FloatField(null=True, blank=True, help_text="Replication lag the sandbox reports.")
    unreachable = models.BooleanField(default=False, help_text="The sandbox cannot reach this object.")
    fail_times = models.PositiveIntegerField(default=0, help_text="The next N provider calls on this object fail (transient).")
    delay_seconds = models.FloatField(default=0, help_text="Provider calls on this object take this long (slow cloud).")

    def __str__(self) -> str:
        return self.name


class SimulatedObject(models.Model):
    """What the simulator remembers of one delivered object (what it synced or composed, and when)."""

    key = models.CharField(max_length=400, unique=True, help_text="The object's path in the delivery target.")
    state = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key


class AuditEvent(models.Model):
    """A domain event with a dotted name (`cells.mysql.requested`), beside auditlog's field diffs."""

    action = models.CharField(max_length=80, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    cell = models.CharField(max_length=64, db_index=True, blank=True)
    environment = models.CharField(max_length=64, blank=True)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.cell}/{self.environment}"


class ApiToken(TokenProxy):
    """An API token as the admin shows it: whose, and since when. Its key is a password: this model never
    displays it, not even as its name (DRF's token names itself by its key, which would put it in page titles,
    breadcrumbs, delete confirmations and the admin's action log)."""

    class Meta:
        proxy = True
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"API token of {self.user}"
