from django.contrib import admin

from portal.admin_mixins import OperatorActions, ReadOnlyAdmin, ReadOnlyInline, act_on_each

from . import evacuations, services
from .models import (Evacuation, EvacuationItem, FailoverRun, FailoverStep, LagSample, Notice, NoticeDelivery,
                     ReadinessEvaluation, SandboxDatabase, SandboxTrafficRecord)


class StepInline(ReadOnlyInline):
    model = FailoverStep
    fields = ("index", "name", "state", "attempts", "started_at", "finished_at", "error")
    readonly_fields = fields


@admin.register(FailoverRun)
class FailoverRunAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """Runs change only through the runbook: approve, resume, abort and drills are actions."""

    list_display = ("id", "cell_env", "type", "state", "from_side", "to_side", "requested_by", "requested_at",
                    "rto_seconds", "data_loss_seconds")
    list_filter = ("state", "type", "scheduled")
    search_fields = ("cell_env__cell__name", "reason", "error")
    date_hierarchy = "requested_at"
    inlines = (StepInline,)
    actions = ("approve", "resume", "abort", "drill_again")

    def _each(self, request, queryset, fn, verb):
        act_on_each(self, request, queryset, fn, lambda _: verb, lambda run: f"run #{run.pk}")

    @admin.action(description="Approve the traffic switch")
    def approve(self, request, queryset):
        self._each(request, queryset, lambda r: services.approve_run(request.user, r.pk), "approved")

    @admin.action(description="Resume (retry the failed step)")
    def resume(self, request, queryset):
        self._each(request, queryset, lambda r: services.resume_run(request.user, r.pk), "resumed")

    @admin.action(description="Abort and roll back what is safe")
    def abort(self, request, queryset):
        self._each(request, queryset, lambda r: services.abort_run(request.user, r.pk, "aborted from the admin"), "aborting")

    @admin.action(description="Run a drill of the same cell environment")
    def drill_again(self, request, queryset):
        self._each(request, queryset, lambda r: services.start_run(
            request.user, cell=r.cell_env.cell.name, environment=r.cell_env.environment, dry_run=True), "drill started")


class EvacuationItemInline(ReadOnlyInline):
    model = EvacuationItem
    fields = ("position", "cell_env", "tier", "wave", "state", "run", "detail")
    readonly_fields = fields


@admin.register(Evacuation)
class EvacuationAdmin(OperatorActions, ReadOnlyAdmin, admin.ModelAdmin):
    """Evacuations start from the portal, the API or `manage.py evacuate`; here they are read and steered."""

    list_display = ("id", "cloud", "region", "cluster", "state", "requested_by", "requested_at", "finished_at",
                    "waves", "commits", "dns_calls")
    list_filter = ("state", "cloud")
    search_fields = ("region", "cluster", "reason", "error")
    date_hierarchy = "requested_at"
    exclude = ("plan", "report", "lease_owner", "heartbeat_at")
    inlines = (EvacuationItemInline,)
    actions = ("pause", "resume", "abort")

    def _each(self, request, queryset, fn, verb):
        act_on_each(self, request, queryset, fn, lambda _: verb, lambda evac: f"evacuation #{evac.pk}")

    @admin.action(description="Pause (each run stops after its step)", permissions=["operate"])
    def pause(self, request, queryset):
        self._each(request, queryset, lambda e: evacuations.pause(request.user, e.pk), "paused")

    @admin.action(description="Resume", permissions=["operate"])
    def resume(self, request, queryset):
        self._each(request, queryset, lambda e: evacuations.resume(request.user, e.pk), "resumed")

    @admin.action(description="Abort (runs that have not switched traffic are rolled back)", permissions=["operate"])
    def abort(self, request, queryset):
        self._each(request, queryset, lambda e: evacuations.abort(request.user, e.pk, "aborted from the admin"), "aborted")


@admin.register(SandboxDatabase)
class SandboxDatabaseAdmin(admin.ModelAdmin):
    list_display = ("name", "writable", "replicating_from", "epoch", "updated_at")


@admin.register(SandboxTrafficRecord)
class SandboxTrafficRecordAdmin(admin.ModelAdmin):
    list_display = ("host", "value", "updated_at")


class NoticeDeliveryInline(ReadOnlyInline):
    model = NoticeDelivery
    fields = ("channel", "state", "attempts", "detail", "last_error", "sent_at", "next_attempt_at")
    readonly_fields = fields


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """Notices and their delivery per channel (webhook, e-mail): history, sent by workers (dr/notify.py)."""

    list_display = ("id", "event", "cell_env", "run", "created_at", "text")
    list_filter = ("event", "deliveries__state")
    search_fields = ("cell_env__cell__name", "text")
    date_hierarchy = "created_at"
    inlines = (NoticeDeliveryInline,)


@admin.register(ReadinessEvaluation)
class ReadinessEvaluationAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """DR readiness evaluations (dr/readiness.py): history, made by the beat and on change, pruned by age."""

    list_display = ("id", "cell_env", "score", "state", "evaluated_at")
    list_filter = ("state",)
    search_fields = ("cell_env__cell__name",)
    date_hierarchy = "evaluated_at"
    list_select_related = ("cell_env__cell",)


@admin.register(LagSample)
class LagSampleAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """Replication lag samples (dr/lag.py): the max of each bucket, downsampled as they age."""

    list_display = ("cell_env", "at", "lag_seconds", "resolution_seconds")
    list_filter = ("resolution_seconds",)
    search_fields = ("cell_env__cell__name",)
    list_select_related = ("cell_env__cell",)
