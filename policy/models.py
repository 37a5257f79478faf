from django.db import models


class PolicyVersion(models.Model):
    """Every policy that was ever active, by content hash. Decisions point at the one they used."""

    digest = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=100, blank=True, help_text="The file's human `version` field.")
    version = models.CharField(max_length=120, db_index=True)
    source = models.CharField(max_length=500)
    text = models.TextField()
    first_seen = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-activated_at"]

    def __str__(self) -> str:
        return self.version
