"""An evacuation with real Celery workers and Redis: a wave's runs are started and stepped in two worker processes
(the one driving the evacuation and another, through a shard task), their side effects still batched, and every
cell moves once."""
import re

import pytest

from cells.models import AuditEvent, SandboxObject
from dr import evacuations
from dr.models import Evacuation, EvacuationShard, FailoverRun
from tests.dr.helpers import ready_cell

from .conftest import wait_for

pytestmark = [pytest.mark.e2e]
ENVS = ("prod", "staging", "dev")


def test_a_wave_is_started_and_stepped_in_two_worker_processes(dev, ops, test_policy, workers, settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    for env in ENVS:
        ready_cell(dev, "C1", "silver", env=env, host=f"payments.{env}.company.com")
    # The evacuation's own part of the wave (payments/dev is first in the plan) is held in its fence for 2 s, so the
    # other process takes its shard rather than the evacuation's worker taking it over.
    SandboxObject.objects.create(name="fence:payments-dev-mysql-primary", delay_seconds=2)
    workers.start(concurrency=2, beat=False, IDP_SIMULATOR_READY_DELAY="0", IDP_EVACUATION_SHARDS="2",
                  IDP_EVACUATION_SHARD_MIN="1")
    evac, plan = evacuations.start(ops, {"cloud": "oci", "region": "us-ashburn-1", "reason": "ashburn is down"})
    assert plan["moving"] == 3 and plan["waves"] == 1
    wait_for(lambda: Evacuation.objects.get(pk=evac.pk).state not in ("running", "paused"), timeout=90,
             what="the evacuation to end", state=lambda: list(evac.items.values_list("state", "detail")))
    evac.refresh_from_db()
    assert evac.state == "succeeded", list(evac.items.values_list("state", "detail"))
    assert set(evac.items.values_list("state", flat=True)) == {"succeeded"}
    # another worker process started one of the wave's runs and stepped it (the shard task logs what it did)
    log = (workers.log_dir / "w0.log").read_text()
    done = [(int(runs), int(started)) for runs, started in re.findall(r"shard \d+ stepped (\d+) run\(s\) and started (\d+)", log)]
    assert sum(started for _, started in done) == 1 and sum(runs for runs, _ in done) >= 1, done
    assert not EvacuationShard.objects.exists()
    # batched as when one process steps the wave: one commit activates the wave, one puts every old side in standby
    assert evac.commits == 2
    assert AuditEvent.objects.filter(action="dr.failover.succeeded").count() == 3
    assert all(r.state == "succeeded" and r.traffic_switched_at for r in FailoverRun.objects.all())
