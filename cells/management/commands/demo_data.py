"""Load the demo: the policy's registry, two teams' developers, an operator, and their API tokens."""
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from cells.access import OPERATORS_GROUP
from cells.models import Team
from cells.registry import sync_registry
from policy.active import active_policy

DEMO_USERS = [
    # username, teams, operator
    ("dev", ["payments"], False),
    ("shop", ["storefront"], False),
    ("ops", [], True),
]


class Command(BaseCommand):
    help = "Create the demo users (dev, shop, ops) and print their API tokens. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--password", default="demo-password-123",
                            help="password for the demo users (default: demo-password-123)")

    def handle(self, *args, password, **opts):
        policy = active_policy()
        sync_registry(policy)
        operators, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
        self.stdout.write(f"policy {policy.version}: {len(policy.spec.cells)} cells registered")
        for username, teams, operator in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.save()
            for slug in teams:
                Team.objects.get(slug=slug).members.add(user)
            if operator:
                user.groups.add(operators)
                user.is_staff = True  # the Django admin is the operators' console
                user.save()
            token, _ = Token.objects.get_or_create(user=user)
            role = "operator" if operator else f"developer in {', '.join(teams)}"
            self.stdout.write(f"  {username:5} ({role}): password {password if created else '(unchanged)'}, API token {token.key}")
