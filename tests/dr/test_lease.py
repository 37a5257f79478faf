"""A step that runs longer than the lease (a managed database's promotion takes minutes) keeps the run's lease:
no other worker takes the run over from a live one."""
import dataclasses
import time

import pytest

from dr import runbook
from dr.models import FailoverRun
from tests.dr.helpers import drive, ready_cell

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_long_step_keeps_the_lease_so_no_other_worker_takes_the_run(dev, ops, test_policy, settings, monkeypatch):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    ready_cell(dev)
    settings.IDP_RUN_LEASE = 0.6
    taken_by_another = []
    real_fence = runbook.STEPS["fence"].run

    def slow_fence(ctx):
        for _ in range(4):  # 1.6 s: well past the 0.6 s lease
            time.sleep(0.4)
            taken_by_another.append(runbook._take(ctx.run.pk))  # what a second worker's attempt would get
        return real_fence(ctx)

    monkeypatch.setitem(runbook.STEPS, "fence", dataclasses.replace(runbook.STEPS["fence"], run=slow_fence))
    from dr import services

    run = drive(services.start_run(ops, cell="payments", environment="prod"), timeout=30)
    assert run.state == "succeeded", run.error
    assert taken_by_another == [False] * 4
    assert FailoverRun.objects.get(pk=run.pk).lease_owner == ""  # released at the end
