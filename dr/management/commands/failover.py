"""`manage.py failover start|show|list|approve|resume|abort` — the runbook from a shell, as an operator."""
import json
import time

from dr import presenters, services
from dr.models import MOVING_STATES, FailoverRun
from dr.management.base import OperatorCommand


class Command(OperatorCommand):
    help = "Start and steer failover runs. Acts as --user (an operator)."

    def add_arguments(self, parser):
        sub = self.actions(parser)
        start = sub.add_parser("start", help="start a run")
        start.add_argument("cell")
        start.add_argument("environment")
        start.add_argument("--host")
        start.add_argument("--type", choices=["failover", "switchover"], default="failover")
        start.add_argument("--dry-run", action="store_true")
        start.add_argument("--failback", action="store_true")
        start.add_argument("--force", action="store_true")
        start.add_argument("--reason", default="")
        start.add_argument("--acknowledge-cooldown", action="store_true")
        start.add_argument("--wait", action="store_true", help="wait until the run stops moving and print its report")
        for name in ("show", "approve", "resume", "abort"):
            p = sub.add_parser(name)
            p.add_argument("run_id", type=int)
            if name == "abort":
                p.add_argument("--reason", default="")
        lst = sub.add_parser("list")
        lst.add_argument("--cell")

    def do_start(self, actor, cell, environment, host, type, dry_run, failback, force, reason, acknowledge_cooldown, wait, **_):
        run = services.start_run(actor, cell=cell, environment=environment, host=host, type=type, dry_run=dry_run,
                                 force=force, reason=reason, failback=failback, acknowledge_cooldown=acknowledge_cooldown)
        self.stdout.write(f"run #{run.pk} {run.type} {run.from_side} -> {run.to_side} started")
        if wait:
            while FailoverRun.objects.get(pk=run.pk).state in MOVING_STATES:
                time.sleep(0.5)
            self.do_show(actor, run.pk)

    def do_show(self, actor, run_id, **_):
        run = services.get_run(actor, run_id)
        self.stdout.write(json.dumps(presenters.run_detail(run), indent=2, default=str))

    def do_list(self, actor, cell=None, **_):
        runs = services.visible_runs(actor)
        if cell:
            runs = runs.filter(cell_env__cell__name=cell)
        for run in runs[:50]:
            self.stdout.write(f"#{run.pk:<5} {run.cell_env} {run.type:<10} {run.state:<17} {run.requested_at:%Y-%m-%d %H:%M} "
                              f"rto={run.rto_seconds} loss={run.data_loss_seconds}")

    def do_approve(self, actor, run_id, **_):
        self.stdout.write(f"run #{services.approve_run(actor, run_id).pk} approved")

    def do_resume(self, actor, run_id, **_):
        self.stdout.write(f"run #{services.resume_run(actor, run_id).pk} resumed")

    def do_abort(self, actor, run_id, reason="", **_):
        self.stdout.write(f"run #{services.abort_run(actor, run_id, reason).pk} aborting")
