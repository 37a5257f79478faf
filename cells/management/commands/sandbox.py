"""Steer the sandbox status source: make an object fail, set a replication lag, make it unreachable, clear."""
from django.core.management.base import BaseCommand, CommandError

from cells.models import SandboxObject


class Command(BaseCommand):
    help = "Sandbox knobs for demos and drills: fail NAME [MESSAGE] | lag NAME SECONDS | unreachable NAME | clear NAME | show"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        fail = sub.add_parser("fail", help="report NAME as failed")
        fail.add_argument("name")
        fail.add_argument("message", nargs="?", default="injected failure")
        lag = sub.add_parser("lag", help="report this replication lag for NAME (a replication claim)")
        lag.add_argument("name")
        lag.add_argument("seconds", type=float)
        unreachable = sub.add_parser("unreachable", help="NAME cannot be reached")
        unreachable.add_argument("name")
        clear = sub.add_parser("clear", help="back to normal")
        clear.add_argument("name")
        sub.add_parser("show", help="list the knobs that are set")

    def handle(self, *args, action, **opts):
        if action == "show":
            for knob in SandboxObject.objects.order_by("name"):
                self.stdout.write(f"{knob.name}: fail={knob.fail_message or '-'} lag={knob.lag_seconds} unreachable={knob.unreachable}")
            return
        name = opts["name"]
        if action == "clear":
            deleted, _ = SandboxObject.objects.filter(name=name).delete()
            self.stdout.write(f"{name}: cleared" if deleted else f"{name}: nothing was set")
            return
        knob, _ = SandboxObject.objects.get_or_create(name=name)
        if action == "fail":
            knob.fail_message = opts["message"]
        elif action == "lag":
            if opts["seconds"] < 0:
                raise CommandError("seconds must be >= 0")
            knob.lag_seconds = opts["seconds"]
        elif action == "unreachable":
            knob.unreachable = True
        knob.save()
        self.stdout.write(f"{name}: {action} set (sandbox)")
