"""`manage.py evacuate plan|start|show|list|pause|resume|abort` — region, cluster and cloud evacuation from a shell,
as an operator (the same service as `POST /api/evacuations` and the portal's Evacuate page)."""
import json
import time

from dr import evacuations
from dr.models import Evacuation, EvacuationState
from dr.management.base import OperatorCommand

STEERING = ("pause", "resume", "abort")


class Command(OperatorCommand):
    help = "Plan, start and steer evacuations. Acts as --user (an operator)."

    def add_arguments(self, parser):
        sub = self.actions(parser)
        for name, what in (("plan", "what an evacuation would do (changes nothing)"), ("start", "start an evacuation")):
            p = sub.add_parser(name, help=what)
            p.add_argument("cloud")
            p.add_argument("--region", default="")
            p.add_argument("--cluster", default="")
            if name == "start":
                p.add_argument("--reason", required=True, help="what happened to the scope (audited)")
                p.add_argument("--force", action="store_true", help="move cells whose lag is above their RPO")
                p.add_argument("--wait", action="store_true", help="wait until it ends and print its report")
        sub.add_parser("show").add_argument("evacuation_id", type=int)
        sub.add_parser("list")
        for name in STEERING:
            p = sub.add_parser(name)
            p.add_argument("evacuation_id", type=int)
            if name == "abort":
                p.add_argument("--reason", default="")

    def _scope(self, cloud, region, cluster) -> dict:
        return {"cloud": cloud, "region": region, "cluster": cluster}

    def do_plan(self, actor, cloud, region, cluster, **_):
        _, plan = evacuations.start(actor, {**self._scope(cloud, region, cluster), "dryRun": True})
        self.stdout.write(json.dumps(plan, indent=2, default=str))

    def do_start(self, actor, cloud, region, cluster, reason, force, wait, **_):
        evac, plan = evacuations.start(actor, {**self._scope(cloud, region, cluster), "reason": reason, "force": force})
        self.stdout.write(f"{evac} started: {plan['moving']} to move in {plan['waves']} wave(s), "
                          f"{plan['cannotMove']} cannot move")
        if wait:
            while Evacuation.objects.filter(pk=evac.pk, state__in=(EvacuationState.RUNNING, EvacuationState.PAUSED)).exists():
                time.sleep(0.5)
            self.do_show(actor, evac.pk)

    def do_show(self, actor, evacuation_id, **_):
        self.stdout.write(json.dumps(evacuations.detail(evacuations.get(actor, evacuation_id)), indent=2, default=str))

    def do_list(self, actor, **_):
        for evac in evacuations.visible(actor)[:50]:
            s = evacuations.summary(evac)
            self.stdout.write(f"#{s['id']:<5} {s['scope']:<32} {s['state']:<10} {evac.requested_at:%Y-%m-%d %H:%M} {s['reason']}")

    def do_pause(self, actor, evacuation_id, **_):
        self.stdout.write(f"{evacuations.pause(actor, evacuation_id)} paused")

    def do_resume(self, actor, evacuation_id, **_):
        self.stdout.write(f"{evacuations.resume(actor, evacuation_id)} resumed")

    def do_abort(self, actor, evacuation_id, reason="", **_):
        self.stdout.write(f"{evacuations.abort(actor, evacuation_id, reason)} aborted")
