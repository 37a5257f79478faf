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


def test_the_lease_keeper_sleeps_while_no_run_is_kept(settings):
    """One keeper thread per process beats for every run being stepped, and costs nothing between runs."""
    import threading

    settings.IDP_RUN_LEASE = 0.03  # a beat every 10 ms while a run is kept
    keeper = runbook._LeaseKeeper()
    waits = []
    condition_wait = keeper.changed.wait

    def counted(timeout=None):
        waits.append(timeout)
        return condition_wait(timeout)

    keeper.changed.wait = counted
    with keeper.kept(1, 2):
        time.sleep(0.1)
    beating = len(waits)
    time.sleep(0.3)  # idle: nothing kept
    assert beating >= 3 and len(waits) - beating <= 2, (beating, len(waits))
    assert waits[-1] is None  # waits for the next run without a timeout
    assert isinstance(keeper.thread, threading.Thread) and keeper.thread.daemon
