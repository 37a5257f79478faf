from django.apps import AppConfig


class DrConfig(AppConfig):
    name = "dr"
    verbose_name = "Disaster recovery"

    def ready(self):
        from auditlog.registry import auditlog

        from . import models

        auditlog.register(models.FailoverRun, exclude_fields=["heartbeat_at", "lease_owner", "next_wake_at", "report"])
