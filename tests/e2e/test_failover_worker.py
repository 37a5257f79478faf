"""Failover runs with real Celery workers and Redis: a worker killed in the middle of any step, and the run
completes exactly once — no step's side effect twice."""
import pytest

from cells.models import Application, AuditEvent, CellEnvironment, SandboxObject
from dr import services
from dr.endpoints import endpoint_for
from dr.models import FailoverRun, SandboxTrafficRecord
from tests.dr.helpers import HOST, ready_cell

from .conftest import wait_for

pytestmark = [pytest.mark.e2e]

# The step to kill the worker in, and the sandbox knob that holds the worker inside that step.
KILL_POINTS = {
    "precheck": f"read:{HOST}",
    "check_lag": "lag:payments-prod-replication",
    "fence": "fence:payments-prod-mysql-primary",
    "promote": "promote:payments-prod-mysql-secondary",
    "switch_traffic": f"switch:{HOST}",
}


def step_state(run_id, name):
    return FailoverRun.objects.get(pk=run_id).steps.get(name=name).state


@pytest.mark.parametrize("step", list(KILL_POINTS))
def test_worker_killed_inside_a_step_the_run_completes_exactly_once(step, dev, ops, test_policy, workers, settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    ready_cell(dev)
    knob = SandboxObject.objects.create(name=KILL_POINTS[step], delay_seconds=30)
    doomed = workers.start(name="doomed", beat=False, IDP_SIMULATOR_READY_DELAY="0")
    run = services.start_run(ops, cell="payments", environment="prod", host=HOST)
    wait_for(lambda: step_state(run.pk, step) == "running", timeout=30, what=f"the worker to be inside {step}")
    workers.kill(doomed)
    knob.delete()

    workers.start(name="survivor", IDP_SIMULATOR_READY_DELAY="0")  # its beat resumes runs with a stale heartbeat
    wait_for(lambda: FailoverRun.objects.get(pk=run.pk).state in ("succeeded", "failed"), timeout=60,
             what="the run to finish after the crash", state=lambda: [(s.name, s.state, s.error) for s in run.steps.all()])
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    attempts = dict(run.steps.values_list("name", "attempts"))
    assert attempts[step] == 2  # the interrupted step ran again ...
    ce = CellEnvironment.objects.get()
    assert (ce.epoch, ce.writers(), ce.active_side) == (2, ["secondary"], "secondary")  # ... but the epoch rose once
    assert Application.objects.get(side="secondary").revision == 2  # compute activated once
    assert SandboxTrafficRecord.objects.get(host=HOST).value == endpoint_for(ce, "secondary")
    assert AuditEvent.objects.filter(action="dr.failover.succeeded").count() == 1
