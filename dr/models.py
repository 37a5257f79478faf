"""Failover runs and their steps: a state machine in the database, not in a worker's memory."""
from django.conf import settings
from django.db import models
from django.db.models import Q


class RunType(models.TextChoices):
    FAILOVER = "failover", "Failover (unplanned)"
    SWITCHOVER = "switchover", "Switchover (planned)"
    FAILBACK = "failback", "Failback"
    DRILL = "drill", "Drill (dry run)"


class RunState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    WAITING_APPROVAL = "waiting_approval", "Waiting for approval"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ABORTING = "aborting", "Aborting"
    ABORTED = "aborted", "Aborted"


# A worker drives these forward; a run in them is "moving".
MOVING_STATES = (RunState.PENDING, RunState.RUNNING, RunState.ABORTING)
# Ended for good: the cell is free for another run.
FINAL_STATES = (RunState.SUCCEEDED, RunState.ABORTED)
# Holds the cell: everything not final (a failed run waits to be resumed or aborted).
ACTIVE_STATES = tuple(s for s in RunState if s not in FINAL_STATES)  # in declaration order (the constraint's)


# A run holds its cell while it is active; a failed one that changed nothing (a drill, or a run stopped by its
# precheck or lag check) has ended and holds nothing. A failed failover that changed something holds the cell
# until an operator resumes or aborts it.
HOLDS_THE_CELL = Q(state__in=ACTIVE_STATES) & ~Q(type="drill", state="failed") & ~Q(state="failed", changed_nothing=True)


class FailoverRun(models.Model):
    """One failover, switchover, failback or drill of a cell environment.

    A failed run stays active (it holds the cell) until an operator resumes or aborts it:
    at most one active run per cell environment, enforced by a partial unique index.
    """

    cell_env = models.ForeignKey("cells.CellEnvironment", on_delete=models.PROTECT, related_name="failover_runs")
    type = models.CharField(max_length=16, choices=RunType.choices)
    state = models.CharField(max_length=20, choices=RunState.choices, default=RunState.PENDING)
    simulates = models.CharField(max_length=16, blank=True, help_text="For a drill: the run type it rehearses.")
    host = models.CharField(max_length=253, blank=True)
    from_side = models.CharField(max_length=16)
    to_side = models.CharField(max_length=16)
    force = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    acknowledged_cooldown = models.BooleanField(default=False)
    scheduled = models.BooleanField(default=False, help_text="Started by the drill schedule, not a person.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Set while a worker holds the run.")
    lease_owner = models.CharField(max_length=64, blank=True)
    next_wake_at = models.DateTimeField(null=True, blank=True, help_text="When a waiting step is due again.")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    traffic_switched_at = models.DateTimeField(null=True, blank=True)
    epoch_before = models.PositiveIntegerField(null=True, blank=True)
    epoch_after = models.PositiveIntegerField(null=True, blank=True)
    rpo_target_seconds = models.PositiveIntegerField()
    rto_target_seconds = models.PositiveIntegerField()
    rto_seconds = models.FloatField(null=True, blank=True, help_text="Measured: request to traffic switched.")
    data_loss_seconds = models.FloatField(null=True, blank=True, help_text="Measured: replication lag at the fence.")
    error = models.TextField(blank=True)
    report = models.JSONField(default=dict, blank=True)
    changed_nothing = models.BooleanField(default=False, help_text="It failed before any step that changes something "
                                          "(precheck, lag check): it ended and holds nothing.")

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["cell_env"], condition=HOLDS_THE_CELL, name="one_active_failover_run_per_cell_env"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk} {self.cell_env} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES and not (self.state == RunState.FAILED
                                                    and (self.type == RunType.DRILL or self.changed_nothing))

    @property
    def changes_anything(self) -> bool:
        return self.type != RunType.DRILL


class StepState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class FailoverStep(models.Model):
    run = models.ForeignKey(FailoverRun, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField()
    name = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    state = models.CharField(max_length=16, choices=StepState.choices, default=StepState.PENDING)
    error_mode = models.CharField(max_length=16, default="stop", help_text="stop, or continue for best-effort steps")
    timeout_seconds = models.PositiveIntegerField()
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    output = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="one_step_per_index")]

    def __str__(self) -> str:
        return f"{self.index}. {self.name} ({self.state})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class SandboxDatabase(models.Model):
    """The sandbox's view of one MySQL claim: writable or fenced, and where it replicates from."""

    name = models.CharField(max_length=120, unique=True)
    writable = models.BooleanField(default=False)
    replicating_from = models.CharField(max_length=120, blank=True)
    epoch = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} ({'writable' if self.writable else 'read-only'})"


class SandboxTrafficRecord(models.Model):
    """The sandbox DNS: where a public host points."""

    host = models.CharField(max_length=253, unique=True)
    value = models.CharField(max_length=253)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.host} -> {self.value}"
