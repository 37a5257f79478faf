from django.apps import AppConfig


class DrConfig(AppConfig):
    name = "dr"
    verbose_name = "Disaster recovery"

    def ready(self):
        from auditlog.registry import auditlog

        from . import models

        auditlog.register(models.FailoverRun, exclude_fields=["heartbeat_at", "lease_owner", "next_wake_at", "report"])

        from cells.models import ReplicationClaim
        from cells.signals import claim_ready

        from .receivers import replication_ready

        claim_ready.connect(replication_ready, sender=ReplicationClaim, dispatch_uid="dr.replication_ready")

        from cells.presenters import STATUS_PARTS

        from .presenters import last_run

        STATUS_PARTS["failover"] = last_run
