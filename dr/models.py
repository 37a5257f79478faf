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


# -- notifications ---------------------------------------------------------------------------

class NoticeEvent(models.TextChoices):
    """What the control plane tells people about (dr/notices.py emits each at its transition)."""

    RUN_WAITING_APPROVAL = "run.waiting_approval", "A run waits for approval"
    RUN_FAILED = "run.failed", "A run failed"
    RUN_SUCCEEDED = "run.succeeded", "A run succeeded"
    CLAIM_FAILED = "claim.failed", "A claim failed"
    LAG_ABOVE_RPO = "replication.lag_above_rpo", "Replication lag above the RPO"
    DRILL_OVERDUE = "drill.overdue", "A drill is overdue"
    EVACUATION_STARTED = "evacuation.started", "An evacuation started"
    EVACUATION_ENDED = "evacuation.ended", "An evacuation ended"


class Notice(models.Model):
    """One thing worth telling: listed in the portal for whoever can see its cell (operators: all; a notice without
    a cell is for operators), and sent on each configured channel (NoticeDelivery)."""

    event = models.CharField(max_length=40, choices=NoticeEvent.choices, db_index=True)
    cell_env = models.ForeignKey("cells.CellEnvironment", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="notices")
    run = models.ForeignKey(FailoverRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="notices")
    text = models.TextField()
    payload = models.JSONField(default=dict, blank=True, help_text="Exactly what the webhook receives.")
    key = models.CharField(max_length=200, null=True, blank=True, unique=True,
                           help_text="For events told once per period (a drill overdue): a second emit is a no-op.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event} #{self.pk} {self.cell_env or ''}"


class NoticeDelivery(models.Model):
    """A notice on one channel: an outbox row taken by a worker with a compare-and-set, retried with backoff."""

    class Channel(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        EMAIL = "email", "E-mail"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (nobody to send to)"

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    detail = models.CharField(max_length=300, blank=True, help_text="What was sent, e.g. to how many recipients.")
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "notice deliveries"
        constraints = [models.UniqueConstraint(fields=["notice", "channel"], name="one_delivery_per_notice_channel")]
        indexes = [models.Index(fields=["state", "enqueued_at"])]

    def __str__(self) -> str:
        return f"{self.channel} of notice #{self.notice_id} ({self.state})"


class NoticeRead(models.Model):
    """A person has read a notice (the portal's unread count leaves it out)."""

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["notice", "user"], name="one_read_per_notice_user")]


class LagWatch(models.Model):
    """Whether a cell environment's replication lag was above its RPO at the last measurement: the lag notice is
    told on the transition within -> above only (a compare-and-set on this row), whoever measured it."""

    cell_env = models.OneToOneField("cells.CellEnvironment", on_delete=models.CASCADE, related_name="+")
    above_rpo = models.BooleanField(default=False)
    changed_at = models.DateTimeField(auto_now=True)


class EvacuationState(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"  # ended; some cells did not move (each says why)
    ABORTED = "aborted", "Aborted"


class Evacuation(models.Model):
    """Every cell environment whose writer is in a scope (a cloud, a region or a cluster) fails over, wave by
    wave. Each cell's move is an ordinary FailoverRun; the evacuation orders them and batches their side effects."""

    cloud = models.CharField(max_length=32)
    region = models.CharField(max_length=64, blank=True)
    cluster = models.CharField(max_length=128, blank=True)
    state = models.CharField(max_length=16, choices=EvacuationState.choices, default=EvacuationState.RUNNING)
    reason = models.TextField(blank=True)
    force = models.BooleanField(default=False, help_text="Move cells whose lag is above their RPO (needs a reason).")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Set while a worker drives it.")
    lease_owner = models.CharField(max_length=64, blank=True)
    plan = models.JSONField(default=dict, blank=True, help_text="The plan at the start: waves and skipped cells.")
    wave = models.PositiveIntegerField(default=0, help_text="The wave being moved (0-based).")
    waves = models.PositiveIntegerField(default=0)
    commits = models.PositiveIntegerField(default=0, help_text="Batched deliveries made (GitOps commits).")
    dns_calls = models.PositiveIntegerField(default=0, help_text="Traffic provider API calls made.")
    error = models.TextField(blank=True)
    report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            # One evacuation moves at a time (two started at once both pass start()'s check; the second gets a 409).
            models.UniqueConstraint(models.Value(1), condition=models.Q(state__in=("running", "paused")),
                                    name="one_evacuation_at_a_time"),
        ]

    @property
    def scope(self) -> str:
        return "/".join(p for p in (self.cloud, self.region, self.cluster) if p)

    def __str__(self) -> str:
        return f"evacuation #{self.pk} of {self.scope}"


class EvacuationItem(models.Model):
    """One cell environment of an evacuation: its wave, its run, or why it cannot move."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Cannot move"
        ABORTED = "aborted", "Aborted"

    evacuation = models.ForeignKey(Evacuation, on_delete=models.CASCADE, related_name="items")
    cell_env = models.ForeignKey("cells.CellEnvironment", on_delete=models.PROTECT, related_name="+")
    tier = models.CharField(max_length=16)
    wave = models.PositiveIntegerField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)
    run = models.OneToOneField(FailoverRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="evacuation_item")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    detail = models.TextField(blank=True, help_text="Why it cannot move, or why it failed.")

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["evacuation", "cell_env"], name="one_item_per_cell_env_per_evacuation")]
        indexes = [models.Index(fields=["evacuation", "wave", "state"])]

    def __str__(self) -> str:
        return f"{self.cell_env} in evacuation #{self.evacuation_id} ({self.state})"


class EvacuationShard(models.Model):
    """Part of one round of a wave, stepped by another worker process (dr.evacuations): the runs it steps, and what
    their steps left for the wave to make (held deliveries, queued traffic switches). Rows live for one round."""

    evacuation = models.ForeignKey(Evacuation, on_delete=models.CASCADE, related_name="shards")
    run_ids = models.JSONField(default=list, help_text="Runs to step.")
    item_ids = models.JSONField(default=list, help_text="Evacuation items whose runs it starts first.")
    claimed_by = models.CharField(max_length=64, blank=True, help_text="The worker stepping it; empty until one takes it.")
    finished_at = models.DateTimeField(null=True, blank=True)
    deliveries = models.JSONField(default=list, blank=True, help_text="Delivery ids its steps held for the wave's commit.")
    switches = models.JSONField(default=dict, blank=True, help_text="provider -> run id -> [host, target] queued.")
    wait = models.FloatField(null=True, blank=True, help_text="The soonest wake-up its runs asked for (s).")


# -- readiness and lag history -----------------------------------------------------------------

class ReadinessState(models.TextChoices):
    """A readiness check's state, and an evaluation's (its worst check's)."""

    OK = "ok", "OK"
    WARNING = "warning", "Warning"
    FAILING = "failing", "Failing"


class ReadinessEvaluation(models.Model):
    """One evaluation of a cell environment's DR readiness (dr/readiness.py): its score, its worst check's state and
    every check. Kept every one for a day, then the worst of each hour for 30 days (dr.readiness.prune)."""

    cell_env = models.ForeignKey("cells.CellEnvironment", on_delete=models.CASCADE, related_name="readiness_evaluations")
    score = models.PositiveSmallIntegerField(help_text="0..100")
    state = models.CharField(max_length=16, choices=ReadinessState.choices)
    checks = models.JSONField(default=list, help_text='[{"name", "state", "detail"}, ...]')
    evaluated_at = models.DateTimeField()

    class Meta:
        ordering = ["-evaluated_at", "-id"]
        indexes = [models.Index(fields=["cell_env", "evaluated_at"], name="dr_readiness_env_at")]

    def __str__(self) -> str:
        return f"readiness of {self.cell_env_id} at {self.evaluated_at:%Y-%m-%d %H:%M:%S}: {self.score} ({self.state})"


class LagSample(models.Model):
    """The replication lag of a cell environment over time (dr/lag.py): the largest lag measured in its bucket of
    `resolution_seconds` starting at `at` (15 s when recorded, coarser once downsampled)."""

    cell_env = models.ForeignKey("cells.CellEnvironment", on_delete=models.CASCADE, related_name="lag_samples")
    at = models.DateTimeField()
    lag_seconds = models.FloatField()
    resolution_seconds = models.PositiveIntegerField()

    class Meta:
        ordering = ["at"]
        constraints = [models.UniqueConstraint(fields=["cell_env", "at"], name="one_lag_sample_per_cell_env_bucket")]
        indexes = [models.Index(fields=["resolution_seconds", "at"], name="dr_lagsample_res_at")]

    def __str__(self) -> str:
        return f"lag of {self.cell_env_id} at {self.at:%Y-%m-%d %H:%M:%S}: {self.lag_seconds:g}s"
