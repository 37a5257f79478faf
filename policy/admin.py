from django.contrib import admin

from portal.admin_mixins import ReadOnlyAdmin

from .models import PolicyVersion


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("version", "label", "source", "activated_at", "first_seen")
    search_fields = ("version", "digest", "label")
