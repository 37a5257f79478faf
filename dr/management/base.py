"""What the operators' commands (`failover`, `evacuate`) share: they act as --user, an operator the services check
and the audit log names, and a service's refusal ends the command with its message."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from cells.errors import DomainError


class OperatorCommand(BaseCommand):
    """Subcommands `do_<action>(actor, **options)`, declared on the subparsers `actions(parser)` returns."""

    def actions(self, parser):
        parser.add_argument("--user", required=True, help="the operator acting (audited)")
        return parser.add_subparsers(dest="action", required=True)

    def handle(self, *args, action, user, **opts):
        actor = get_user_model().objects.filter(username=user).first()
        if actor is None:
            raise CommandError(f"no user {user}")
        try:
            return getattr(self, f"do_{action}")(actor, **opts)
        except DomainError as exc:
            raise CommandError(exc.message + (f" {exc.fields}" if exc.fields else "")) from None
