from django.contrib import admin

from portal.admin_mixins import ReadOnlyAdmin

from .models import PlacementDecision


@admin.register(PlacementDecision)
class PlacementDecisionAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """Decisions are the audit record of placement: read-only."""

    list_display = ("id", "cell", "environment", "reason", "primary_key", "secondary_key", "policy_version", "actor", "created_at")
    list_filter = ("reason", "primary_cloud", "secondary_cloud", "environment")
    search_fields = ("cell", "policy_version")
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]
