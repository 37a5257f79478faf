"""Request bodies of the failover API (strict: unknown fields are errors, as in the developer API)."""
from rest_framework import serializers

from cells.api.serializers import HOST, SLUG, StrictSerializer


class FailoverRequestSerializer(StrictSerializer):
    cell = serializers.RegexField(SLUG, max_length=64)
    environment = serializers.RegexField(SLUG, max_length=64)
    host = serializers.RegexField(HOST, max_length=253, required=False, help_text="The public host to switch (checked against the cell's).")
    type = serializers.ChoiceField(choices=["failover", "switchover"], required=False, default="failover",
                                   help_text="failover: unplanned (default); switchover: planned, zero data loss, with reprotect.")
    dryRun = serializers.BooleanField(required=False, default=False, help_text="Only the prechecks and a report; nothing changes.")
    force = serializers.BooleanField(required=False, default=False, help_text="Accept a lag above the RPO (needs reason).")
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    failback = serializers.BooleanField(required=False, default=False, help_text="Return to the original primary.")
    acknowledgeCooldown = serializers.BooleanField(required=False, default=False,
                                                   help_text="Go ahead inside the cool-down after a recent failover (needs reason).")


class AbortSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class EvacuationRequestSerializer(StrictSerializer):
    cloud = serializers.RegexField(SLUG, max_length=32, help_text="The cloud to evacuate (a provider of the policy).")
    region = serializers.CharField(required=False, allow_blank=True, default="", max_length=64,
                                   help_text="Only this region of the cloud.")
    cluster = serializers.CharField(required=False, allow_blank=True, default="", max_length=128,
                                    help_text="Only this cluster.")
    dryRun = serializers.BooleanField(required=False, default=False,
                                      help_text="Answer the plan (order, targets, RPO gates, cells that cannot move); change nothing.")
    force = serializers.BooleanField(required=False, default=False,
                                     help_text="Move cells whose lag is above their RPO too (needs reason).")
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000,
                                   help_text="What happened to the scope; required unless dryRun.")
