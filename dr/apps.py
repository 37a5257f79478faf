from django.apps import AppConfig


class DrConfig(AppConfig):
    name = "dr"
    verbose_name = "Disaster recovery"

    def ready(self):
        from auditlog.registry import auditlog

        from . import models

        auditlog.register(models.FailoverRun, exclude_fields=["heartbeat_at", "lease_owner", "next_wake_at", "report"])

        from cells.models import ReplicationClaim
        from cells.signals import claim_failed, claim_ready, replication_lag_measured

        from . import receivers

        claim_ready.connect(receivers.replication_ready, sender=ReplicationClaim, dispatch_uid="dr.replication_ready")
        claim_failed.connect(receivers.claim_failed, dispatch_uid="dr.notice_claim_failed")
        replication_lag_measured.connect(receivers.replication_lag_measured, sender=ReplicationClaim,
                                         dispatch_uid="dr.notice_lag_measured")
        claim_ready.connect(receivers.readiness_changed, dispatch_uid="dr.readiness_claim_ready")
        claim_failed.connect(receivers.readiness_changed, dispatch_uid="dr.readiness_claim_failed")
        replication_lag_measured.connect(receivers.lag_sampled, sender=ReplicationClaim, dispatch_uid="dr.lag_sample")

        from cells.presenters import STATUS_PARTS

        from .presenters import last_run

        STATUS_PARTS["failover"] = last_run
