"""python manage.py platform install|show: the Crossplane platform package on the management clusters."""
from django.core.management.base import BaseCommand, CommandError

from cells import platform
from cells.delivery import DeliveryError, get_target
from cells.rendering import to_yaml
from policy.active import active_policy


class Command(BaseCommand):
    help = "Install the platform package (XRDs, Compositions, Function) on the management clusters, or print it."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["install", "show"])
        parser.add_argument("--cluster", action="append", default=[], help="only this cluster (repeatable)")

    def handle(self, *args, action, cluster, **options):
        if action == "show":
            self.stdout.write(to_yaml(platform.package_objects()))
            return
        try:
            lines = platform.install(get_target(), active_policy(), clusters=cluster or None)
        except DeliveryError as exc:
            raise CommandError(str(exc)) from exc
        if not lines:
            raise CommandError(f"no management cluster named {', '.join(cluster)} in the policy's registry")
        for line in lines:
            self.stdout.write(line)
