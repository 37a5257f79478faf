from django.apps import AppConfig


class CellsConfig(AppConfig):
    name = "cells"
    verbose_name = "Cells"

    def ready(self):
        from auditlog.registry import auditlog

        from policy.active import policy_activated

        from . import models, registry

        for model in (models.Team, models.Cell, models.CellEnvironment, models.MySQLClaim,
                      models.ReplicationClaim, models.Application):
            auditlog.register(model)
        policy_activated.connect(registry.on_policy_activated, dispatch_uid="cells.sync_registry")
