"""The operators' console. Every field a service owns (placements, epochs, writer sides, revisions, delivery and
observed state) is read-only here, for superusers too: it changes only through the actions, which call the
services like the portal and the API do. API tokens are listed without their keys."""
from django.contrib import admin
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from portal.admin_mixins import OperatorActions, ReadOnlyAdmin, ReadOnlyInline, act_on_each

from . import services
from .models import (ApiToken, Application, AuditEvent, Cell, CellEnvironment, Delivery, MySQLClaim,
                     ReplicationClaim, SandboxObject, Team)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    """Teams come from the policy's registry; their members are managed here."""

    list_display = ("slug", "name")
    search_fields = ("slug", "name")
    filter_horizontal = ("members",)
    readonly_fields = ("slug", "name")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Cell)
class CellAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """Owned by the policy's registry."""

    list_display = ("name", "team", "registered")
    list_filter = ("registered", "team")
    search_fields = ("name",)


@admin.action(description="Re-place under the active policy", permissions=["operate"])
def replace_action(modeladmin, request, queryset):
    act_on_each(modeladmin, request, queryset.select_related("cell"), lambda ce: services.replace_cell(
        request.user, cell=ce.cell.name, environment=ce.environment, note="re-placed from the admin"),
        lambda result: "moved" if result[1] else "placement unchanged")


def _redeliver(modeladmin, request, environments):
    act_on_each(modeladmin, request, environments, lambda ce: services.redeliver(
        request.user, cell=ce.cell.name, environment=ce.environment)[1],
        lambda delivery: f"delivery #{delivery.pk} queued" if delivery else "nothing to deliver")


@admin.action(description="Deliver again what the target does not hold", permissions=["operate"])
def redeliver_action(modeladmin, request, queryset):
    _redeliver(modeladmin, request, queryset.select_related("cell"))


@admin.action(description="Deliver again what the target does not hold (their cell environments)",
              permissions=["operate"])
def redeliver_claims_action(modeladmin, request, queryset):
    _redeliver(modeladmin, request, sorted({c.cell_env for c in queryset.select_related("cell_env__cell")}, key=str))


class MySQLInline(ReadOnlyInline):
    model = MySQLClaim
    fields = ("side", "name", "cloud", "region", "cluster", "size", "storage_gb", "ha", "revision", "status")


class ApplicationInline(ReadOnlyInline):
    model = Application
    fields = ("side", "name", "cloud", "region", "cluster", "image", "compute_mode", "replicas", "revision", "status")


@admin.register(CellEnvironment)
class CellEnvironmentAdmin(OperatorActions, ReadOnlyAdmin, admin.ModelAdmin):
    """Created by requests (API, portal, CLI); its placement, epoch, writer and traffic side change through the
    services (re-place, failover runs), never by hand."""

    list_display = ("__str__", "tier", "dr_profile", "placement", "public_host", "traffic_provider", "active_side",
                    "writer_side", "epoch", "updated_at")
    list_filter = ("tier", "dr_profile", "environment", "traffic_provider")
    search_fields = ("cell__name", "public_host")
    inlines = (MySQLInline, ApplicationInline)
    actions = (replace_action, redeliver_action)


class ClaimAdmin(OperatorActions, ReadOnlyAdmin, admin.ModelAdmin):
    """Claims are the services' rows: desired and delivered revisions, delivery and observed state."""

    list_filter = ("status",)
    search_fields = ("name", "cell_env__cell__name")
    actions = (redeliver_claims_action,)


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
        _redeliver(self, request, sorted({d.cell_env for d in queryset.select_related("cell_env__cell")}, key=str))


@admin.register(SandboxObject)
class SandboxObjectAdmin(admin.ModelAdmin):
    """The sandbox's knobs for drills (failures, lag, unreachable objects): set by hand on purpose."""

    list_display = ("name", "fail_message", "lag_seconds", "unreachable")
    search_fields = ("name",)


if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)  # DRF's lists every key


@admin.register(ApiToken)
class ApiTokenAdmin(TokenAdmin):
    """Whose token, since when. The key is never shown (a lost token is revoked here with Delete, and its owner
    makes a new one: `python manage.py drf_create_token USER`)."""

    list_display = ("user", "created")
    list_display_links = ("user",)
    fields = ("user", "created")
    readonly_fields = ("user", "created")

    def has_add_permission(self, request):
        return False  # a token made here would be shown to nobody

    def has_change_permission(self, request, obj=None):
        return False
