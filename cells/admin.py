from django.contrib import admin, messages

from portal.admin_mixins import ReadOnlyAdmin, ReadOnlyInline

from . import services
from .errors import DomainError
from .models import (Application, AuditEvent, Cell, CellEnvironment, Delivery, MySQLClaim, ReplicationClaim,
                     SandboxObject, Team)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("slug", "name")
    search_fields = ("slug", "name")
    filter_horizontal = ("members",)


@admin.register(Cell)
class CellAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "registered")
    list_filter = ("registered", "team")
    search_fields = ("name",)
    readonly_fields = ("name", "team", "description", "registered")  # owned by the policy's registry


@admin.action(description="Re-place under the active policy")
def replace_action(modeladmin, request, queryset):
    for ce in queryset.select_related("cell"):
        try:
            _, moved = services.replace_cell(request.user, cell=ce.cell.name, environment=ce.environment,
                                             note="re-placed from the admin")
        except DomainError as exc:
            modeladmin.message_user(request, f"{ce}: {exc.message}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{ce}: {'moved' if moved else 'placement unchanged'}")


class MySQLInline(ReadOnlyInline):
    model = MySQLClaim
    fields = ("side", "name", "cloud", "region", "cluster", "size", "storage_gb", "ha", "revision", "status")


class ApplicationInline(ReadOnlyInline):
    model = Application
    fields = ("side", "name", "cloud", "region", "cluster", "image", "compute_mode", "replicas", "revision", "status")


@admin.register(CellEnvironment)
class CellEnvironmentAdmin(admin.ModelAdmin):
    list_display = ("__str__", "tier", "dr_profile", "placement", "traffic_provider", "active_side", "updated_at")
    list_filter = ("tier", "dr_profile", "environment", "traffic_provider")
    search_fields = ("cell__name",)
    readonly_fields = ("cell", "environment", "tier", "dr_profile", "placement", "traffic_provider", "active_side",
                       "created_by", "created_at", "updated_at")
    inlines = (MySQLInline, ApplicationInline)
    actions = (replace_action,)

    def has_add_permission(self, request):
        return False  # cell environments are created by requests (API or portal), never by hand


class ClaimAdmin(admin.ModelAdmin):
    list_filter = ("status",)
    search_fields = ("name", "cell_env__cell__name")
    readonly_fields = ("cell_env", "name", "revision", "created_at", "updated_at")

    def has_add_permission(self, request):
        return False


@admin.register(MySQLClaim)
class MySQLClaimAdmin(ClaimAdmin):
    list_display = ("name", "side", "cloud", "region", "size", "storage_gb", "ha", "revision", "status")
    list_filter = ("status", "side", "cloud", "size")


@admin.register(ReplicationClaim)
class ReplicationClaimAdmin(ClaimAdmin):
    list_display = ("name", "tool", "expected_rpo_seconds", "lag_seconds", "revision", "status")
    list_filter = ("status", "tool")


@admin.register(Application)
class ApplicationAdmin(ClaimAdmin):
    list_display = ("name", "side", "cloud", "image", "public_host", "compute_mode", "replicas", "revision", "status")
    list_filter = ("status", "side", "compute_mode", "cloud")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("created_at", "action", "actor", "cell", "environment", "message")
    list_filter = ("action",)
    search_fields = ("cell", "message", "actor__username")
    date_hierarchy = "created_at"


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """The outbox: what was delivered where, attempts and errors. Retry with the action."""

    list_display = ("id", "cell_env", "action", "state", "attempts", "target", "reason", "actor", "created_at", "finished_at")
    list_filter = ("state", "action", "target")
    search_fields = ("cell_env__cell__name", "reason", "last_error")
    date_hierarchy = "created_at"
    actions = ("redeliver_action",)

    @admin.action(description="Deliver again what the target does not hold")
    def redeliver_action(self, request, queryset):
        for ce in {d.cell_env for d in queryset.select_related("cell_env__cell")}:
            try:
                _, delivery = services.redeliver(request.user, cell=ce.cell.name, environment=ce.environment)
            except DomainError as exc:
                self.message_user(request, f"{ce}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{ce}: " + (f"delivery #{delivery.pk} queued" if delivery else "nothing to deliver"))


@admin.register(SandboxObject)
class SandboxObjectAdmin(admin.ModelAdmin):
    list_display = ("name", "fail_message", "lag_seconds", "unreachable")
    search_fields = ("name",)
