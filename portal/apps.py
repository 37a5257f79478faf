from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        from .operators import grant_operator_permissions

        # After every migrate (a fresh install too): the operators group can use the admin console.
        post_migrate.connect(grant_operator_permissions, dispatch_uid="portal.grant_operator_permissions")
