"""Steer the simulator and the sandbox providers for demos, drills and tests. Knobs are SandboxObject rows, by
object name (a claim, a host) or `operation:name` for one operation (lag:, fence:, promote:, reprotect:, read:,
switch:). `sync NAME` asks the simulated Argo CD to sync an Application, as `argocd app sync` would."""
from django.core.management.base import BaseCommand, CommandError

from cells.models import SandboxObject


class Command(BaseCommand):
    help = ("sandbox fail NAME [MESSAGE] | lag NAME SECONDS | unreachable NAME | set NAME [--fail-times N] "
            "[--delay S] [--fail MESSAGE] | clear NAME | sync APPLICATION | show")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        fail = sub.add_parser("fail", help="report NAME as failed ('permanent: ...' fails provider calls for good)")
        fail.add_argument("name")
        fail.add_argument("message", nargs="?", default="injected failure")
        lag = sub.add_parser("lag", help="replication lag for NAME (a replication claim)")
        lag.add_argument("name")
        lag.add_argument("seconds", type=float)
        unreachable = sub.add_parser("unreachable", help="NAME cannot be reached")
        unreachable.add_argument("name")
        setp = sub.add_parser("set", help="several knobs at once")
        setp.add_argument("name")
        setp.add_argument("--fail-times", type=int, help="the next N provider calls fail (transient)")
        setp.add_argument("--delay", type=float, help="provider calls take this many seconds")
        setp.add_argument("--fail", help="failure message")
        clear = sub.add_parser("clear", help="back to normal")
        clear.add_argument("name")
        sub.add_parser("show", help="list the knobs that are set")
        sync = sub.add_parser("sync", help="sync an Application once in the simulator (argocd app sync)")
        sync.add_argument("name")

    def handle(self, *args, action, **opts):
        if action == "show":
            for k in SandboxObject.objects.order_by("name"):
                self.stdout.write(f"{k.name}: fail={k.fail_message or '-'} failTimes={k.fail_times} lag={k.lag_seconds} "
                                  f"delay={k.delay_seconds} unreachable={k.unreachable}")
            return
        name = opts["name"]
        if action == "sync":
            from cells.delivery import ObjectRef
            from cells.models import Application
            from cells.simulator import request_sync

            app = Application.objects.filter(name=name).first()
            if app is None or not app.delivered_refs:
                raise CommandError(f"no delivered Application named {name}")
            request_sync(ObjectRef.from_dict(app.delivered_refs[0]))
            self.stdout.write(f"{name}: sync requested (simulator; the next observation syncs it)")
            return
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
        elif action == "set":
            if opts["fail_times"] is not None:
                knob.fail_times = max(0, opts["fail_times"])
            if opts["delay"] is not None:
                knob.delay_seconds = max(0.0, opts["delay"])
            if opts["fail"] is not None:
                knob.fail_message = opts["fail"]
        knob.save()
        self.stdout.write(f"{name}: {action} set (simulator and sandbox providers)")
