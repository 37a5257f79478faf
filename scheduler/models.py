"""The stored, auditable record of a placement. The engine itself (engine.py) has no Django import."""
from django.conf import settings
from django.db import models


class PlacementDecision(models.Model):
    """Immutable: a re-place is a new decision, never an edit."""

    class Reason(models.TextChoices):
        INITIAL = "initial", "Initial placement"
        REPLACE = "replace", "Operator re-place"

    cell = models.CharField(max_length=64, db_index=True)
    environment = models.CharField(max_length=64)
    policy_version = models.CharField(max_length=120)
    policy = models.ForeignKey("policy.PolicyVersion", on_delete=models.PROTECT, related_name="decisions")
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.INITIAL)
    note = models.TextField(blank=True)
    request = models.JSONField()
    explanation = models.JSONField()
    primary_cloud = models.CharField(max_length=32)
    primary_region = models.CharField(max_length=64)
    primary_cluster = models.CharField(max_length=63)
    secondary_cloud = models.CharField(max_length=32)
    secondary_region = models.CharField(max_length=64)
    secondary_cluster = models.CharField(max_length=63)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["cell", "environment", "-created_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.cell}/{self.environment}: {self.primary_key} -> {self.secondary_key}"

    @property
    def primary_key(self) -> str:
        return f"{self.primary_cloud}/{self.primary_region}/{self.primary_cluster}"

    @property
    def secondary_key(self) -> str:
        return f"{self.secondary_cloud}/{self.secondary_region}/{self.secondary_cluster}"

    def site(self, side: str) -> dict:
        return {
            "cloud": getattr(self, f"{side}_cloud"),
            "region": getattr(self, f"{side}_region"),
            "cluster": getattr(self, f"{side}_cluster"),
        }
