"""Region and cloud evacuation: the plan (dry run changes nothing), tier order, cells that cannot move, waves with
batched side effects (one GitOps commit per phase, one DNS change per zone), pause/resume/abort, a failed cell not
stopping the others, and a real run preempting a drill."""
import json
import subprocess

import pytest

from cells.models import AuditEvent, CellEnvironment, Delivery, SandboxObject
from dr import evacuations, services
from dr.models import Evacuation, EvacuationItem, EvacuationShard, FailoverRun, FailoverStep

from tests.dr.helpers import drive, ready_cell
from tests.helpers import policy_doc

pytestmark = pytest.mark.django_db

SCOPE = {"cloud": "oci", "region": "us-ashburn-1"}


@pytest.fixture
def cells(dev, use_policy, settings):
    """payments/prod C0 gold (oci ashburn -> aws), staging C1 silver (ashburn -> phoenix), dev C2 bronze
    (ashburn -> phoenix); catalog/prod C1 (aws -> oci) is outside the scope."""
    doc = policy_doc()
    doc["evacuation"] = {"waveSize": 2}
    use_policy(doc)
    settings.IDP_SIMULATOR_READY_DELAY = 0
    settings.IDP_EVACUATION_THREADS = 1  # threads would not see this test's transaction (the e2e test uses them)
    envs = {
        "prod": ready_cell(dev, "C0", "gold", env="prod", host="payments.prod.company.com"),
        "staging": ready_cell(dev, "C1", "silver", env="staging", host="payments.staging.company.com"),
        "dev": ready_cell(dev, "C2", "bronze", env="dev", host="payments.dev.company.com"),
    }
    return envs


def commits(settings) -> int:
    return int(subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=settings.IDP_GITOPS_REPO,
                              capture_output=True, text=True, check=True).stdout)


def run_evacuation(evac):
    evacuations.advance(evac.pk)
    evac.refresh_from_db()
    return evac


def test_a_dry_run_answers_the_plan_in_tier_order_and_changes_nothing(api, ops, cells, catalog_cell):
    before = (Delivery.objects.count(), AuditEvent.objects.count(), FailoverRun.objects.count())
    r = api(ops).post("/api/evacuations", {**SCOPE, "dryRun": True}, format="json")
    assert r.status_code == 200
    plan = r.json()
    assert plan["dryRun"] is True and plan["moving"] == 3 and plan["cannotMove"] == 0
    order = [(i["cell"], i["environment"], i["tier"], i["wave"]) for i in plan["order"]]
    # C0 first, then C1, C2; waves never mix tiers (waveSize 2 in this policy)
    assert order == [("payments", "prod", "C0", 0), ("payments", "staging", "C1", 1), ("payments", "dev", "C2", 2)]
    first = plan["order"][0]
    assert first["toSite"]["cloud"] == "aws" and first["from"] == "primary" and first["to"] == "secondary"
    assert first["rpoGate"].startswith("within RPO")
    assert (Delivery.objects.count(), AuditEvent.objects.count(), FailoverRun.objects.count()) == before
    assert not Evacuation.objects.exists()


def test_cells_whose_secondary_is_in_the_scope_or_not_ready_cannot_move_and_say_why(api, ops, cells):
    plan = api(ops).post("/api/evacuations", {"cloud": "oci", "dryRun": True}, format="json").json()
    assert [i["environment"] for i in plan["order"]] == ["prod"]  # only prod's secondary is off oci
    skipped = {i["environment"]: i["cannotMove"] for i in plan["skipped"]}
    assert "its secondary is in oci too" in skipped["staging"] and "its secondary is in oci too" in skipped["dev"]
    cells["prod"].mysqlclaims.filter(side="secondary").update(status="failed")
    plan = api(ops).post("/api/evacuations", {**SCOPE, "dryRun": True}, format="json").json()
    skipped = {i["environment"]: i["cannotMove"] for i in plan["skipped"]}
    assert "database payments-prod-mysql-secondary is failed" in skipped["prod"]


def test_only_operators_evacuate_and_bad_scopes_are_400(api, dev, ops, cells):
    assert api(dev).post("/api/evacuations", {**SCOPE, "dryRun": True}, format="json").status_code == 403
    assert api(None).post("/api/evacuations", {**SCOPE, "dryRun": True}, format="json").status_code == 401
    r = api(ops).post("/api/evacuations", {"cloud": "ibm", "dryRun": True}, format="json")
    assert r.status_code == 400 and "unknown cloud 'ibm'" in r.json()["fields"]["cloud"][0]
    r = api(ops).post("/api/evacuations", {"cloud": "oci", "region": "mars-1", "dryRun": True}, format="json")
    assert r.status_code == 400 and "no candidate" in r.json()["fields"]["region"][0]
    r = api(ops).post("/api/evacuations", SCOPE, format="json")
    assert r.status_code == 400 and "reason" in r.json()["fields"]  # a real one needs a reason


def test_an_evacuation_moves_every_cell_wave_by_wave_with_batched_side_effects(api, ops, cells, settings):
    before = commits(settings)
    r = api(ops).post("/api/evacuations", {**SCOPE, "reason": "ashburn is down"}, format="json")
    assert r.status_code == 202 and r.json()["statusUrl"] == f"/api/evacuations/{r.json()['id']}"
    evac = run_evacuation(Evacuation.objects.get(pk=r.json()["id"]))
    d = api(ops).get(f"/api/evacuations/{evac.pk}").json()
    assert d["state"] == "succeeded", d
    assert d["counts"]["succeeded"] == 3 and d["counts"]["failed"] == 0
    for env in ("prod", "staging", "dev"):
        ce = CellEnvironment.objects.get(cell__name="payments", environment=env)
        assert ce.active_side == "secondary"
    # each wave: one commit activates the new writers; once its traffic has switched the next wave starts. When
    # every wave's traffic has moved, one commit puts every old side in standby, and a cold standby (bronze, wave 3)
    # takes a second: scaled to zero with sync on first, then turned cold (Argo CD keeps pods otherwise)
    assert d["waves"] == 3 and d["commits"] == 1 + 1 + 1 + 2 and commits(settings) - before == d["commits"]
    assert d["dnsCalls"] >= 1
    cells_out = {c["environment"]: c for c in d["cells"]}
    assert all(c["runId"] and c["rtoSeconds"] is not None for c in cells_out.values())
    run = FailoverRun.objects.get(pk=cells_out["prod"]["runId"])
    assert run.state == "succeeded" and "evacuation" in run.reason and run.report  # an ordinary run with its report
    assert set(d["report"]["tiers"]) == {"C0", "C1", "C2"} and d["report"]["tiers"]["C0"]["moved"] == 1
    assert AuditEvent.objects.filter(action="dr.evacuation.succeeded").exists()
    # traffic first: every wave's traffic moved before any old side went to standby, and a wave started once the
    # one before it had switched
    runs = {r.cell_env.environment: r for r in FailoverRun.objects.select_related("cell_env")}
    standby = FailoverStep.objects.filter(run__in=runs.values(), name="standby_old_compute")
    assert max(r.traffic_switched_at for r in runs.values()) <= min(standby.values_list("started_at", flat=True))
    assert runs["prod"].traffic_switched_at <= runs["staging"].started_at
    assert runs["staging"].traffic_switched_at <= runs["dev"].started_at


def test_a_failed_cell_does_not_stop_the_others(api, ops, cells):
    SandboxObject.objects.create(name="payments-staging-replication", lag_seconds=99999)  # above silver's RPO
    from tests.helpers import settle

    settle()
    r = api(ops).post("/api/evacuations", {**SCOPE, "reason": "ashburn is down"}, format="json")
    evac = run_evacuation(Evacuation.objects.get(pk=r.json()["id"]))
    states = dict(evac.items.values_list("cell_env__environment", "state"))
    assert states == {"prod": "succeeded", "staging": "failed", "dev": "succeeded"}
    assert evac.state == "failed"
    item = evac.items.get(cell_env__environment="staging")
    assert "above the RPO" in item.detail


def test_pause_resume_and_abort_apply_to_the_whole_evacuation(api, ops, cells):
    r = api(ops).post("/api/evacuations", {**SCOPE, "reason": "drill of the procedure"}, format="json")
    evac_id = r.json()["id"]
    assert api(ops).post(f"/api/evacuations/{evac_id}/pause", {}, format="json").json()["state"] == "paused"
    evacuations.advance(evac_id)  # a paused evacuation does not move
    assert not FailoverRun.objects.exists()
    assert api(ops).post(f"/api/evacuations/{evac_id}/pause", {}, format="json").status_code == 409
    assert api(ops).post(f"/api/evacuations/{evac_id}/resume", {}, format="json").json()["state"] == "running"
    r = api(ops).post(f"/api/evacuations/{evac_id}/abort", {"reason": "ashburn is back"}, format="json")
    assert r.status_code == 202 and r.json()["state"] == "aborted"
    assert set(EvacuationItem.objects.filter(evacuation_id=evac_id).values_list("state", flat=True)) == {"aborted"}
    evacuations.advance(evac_id)
    assert not FailoverRun.objects.exists()  # nothing more starts
    assert api(dev_user()).get(f"/api/evacuations/{evac_id}").status_code == 403


def dev_user():
    from django.contrib.auth.models import User

    return User.objects.get(username="dev")


def test_a_real_failover_preempts_a_running_drill(ops, cells):
    drill = services.start_run(ops, cell="payments", environment="staging", dry_run=True)
    run = services.start_run(ops, cell="payments", environment="staging", reason="the primary is down")
    drill.refresh_from_db()
    assert drill.state == "aborted" and "preempted by a failover requested by ops" in drill.error
    assert AuditEvent.objects.filter(action="dr.drill.preempted", data__runId=drill.pk).exists()
    assert drive(run).state == "succeeded"


def test_an_evacuation_preempts_a_drill_and_says_so_in_its_plan(api, ops, cells):
    drill = services.start_run(ops, cell="payments", environment="dev", dry_run=True)
    plan = api(ops).post("/api/evacuations", {**SCOPE, "dryRun": True}, format="json").json()
    assert {i["environment"]: i.get("preemptsDrill") for i in plan["order"]}["dev"] == drill.pk
    r = api(ops).post("/api/evacuations", {**SCOPE, "reason": "ashburn is down"}, format="json")
    evac = run_evacuation(Evacuation.objects.get(pk=r.json()["id"]))
    drill.refresh_from_db()
    assert drill.state == "aborted" and evac.items.get(cell_env__environment="dev").state == "succeeded"


@pytest.fixture
def catalog_cell(outsider):
    return ready_cell(outsider, "C1", "silver", cell="catalog", env="prod", host="catalog.prod.company.com")


def test_a_host_whose_batched_switch_did_not_take_fails_only_its_own_cell(api, ops, cells):
    from cells.models import SandboxObject as Knob

    Knob.objects.create(name="switch:payments.staging.company.com", fail_message="no-effect")  # the write is lost
    r = api(ops).post("/api/evacuations", {**SCOPE, "reason": "ashburn is down"}, format="json")
    evac = run_evacuation(Evacuation.objects.get(pk=r.json()["id"]))
    states = dict(evac.items.values_list("cell_env__environment", "state"))
    assert states == {"prod": "succeeded", "staging": "failed", "dev": "succeeded"}
    detail = evac.items.get(cell_env__environment="staging").detail
    assert "switch_traffic" in detail and "payments.staging.company.com" in detail


@pytest.fixture
def one_wave(dev, use_policy, settings):
    """Three cell environments of one tier (one wave), each shard of it holding at least one run."""
    use_policy(policy_doc())
    settings.IDP_SIMULATOR_READY_DELAY = 0
    settings.IDP_EVACUATION_THREADS = 1
    settings.IDP_EVACUATION_SHARDS, settings.IDP_EVACUATION_SHARD_MIN = 2, 1
    return [ready_cell(dev, "C1", "silver", env=env, host=f"payments.{env}.company.com") for env in ("prod", "staging", "dev")]


def test_a_shard_no_worker_takes_is_stepped_by_the_evacuations_own_worker(api, ops, one_wave, monkeypatch):
    sent = []
    monkeypatch.setattr(evacuations, "_send_shard", sent.append)  # no worker process picks it up
    r = api(ops).post("/api/evacuations", {**SCOPE, "reason": "ashburn is down"}, format="json")
    evac = run_evacuation(Evacuation.objects.get(pk=r.json()["id"]))
    assert evac.state == "succeeded" and evac.waves == 1 and sent  # the wave was split, and its shard taken over
    assert set(evac.items.values_list("state", flat=True)) == {"succeeded"}
    assert not EvacuationShard.objects.exists()  # a round's rows go with it
    assert evac.commits == 2  # the wave's activation, then every old side to standby


def test_a_shard_whose_worker_stopped_is_given_up_and_its_runs_stepped_next_round(api, ops, one_wave, monkeypatch,
                                                                                   settings, caplog):
    settings.IDP_RUN_LEASE = 0.5
    claimed = []

    def lost(shard_id):  # a worker takes the shard and dies before stepping anything
        claimed.append(EvacuationShard.objects.filter(pk=shard_id).update(claimed_by="gone:1"))

    monkeypatch.setattr(evacuations, "_send_shard", lost)
    r = api(ops).post("/api/evacuations", {**SCOPE, "reason": "ashburn is down"}, format="json")
    with caplog.at_level("WARNING", logger="dr.evacuations"):
        evac = run_evacuation(Evacuation.objects.get(pk=r.json()["id"]))
    assert claimed and "stopped stepping; the next round steps its runs" in caplog.text
    # the item the lost shard should have started is started by a later round: every cell moved
    assert evac.state == "succeeded", evac.items.values_list("state", "detail")
    assert set(evac.items.values_list("state", flat=True)) == {"succeeded"}


def test_a_batched_switch_is_found_by_whichever_process_steps_the_run_next(api, ops, one_wave):
    """The wave's switch result is written into each run's switch step, not kept in the process that queued it."""
    from dr import batch as batching, runbook

    r = api(ops).post("/api/evacuations", {**SCOPE, "reason": "ashburn is down"}, format="json")
    evac = Evacuation.objects.get(pk=r.json()["id"])
    item = evac.items.select_related("cell_env__cell").first()
    evacuations._start_runs(evac, [item])
    item.refresh_from_db()
    queued = batching.Batch()
    for _ in range(2):  # activate (held) and commit, then the switch queued and made
        evacuations._advance_all([item.run_id], queued)
        evacuations._flush(evac, queued)
    step = FailoverStep.objects.get(run_id=item.run_id, name="switch_traffic")
    assert batching.SWITCHED in step.output and step.output[batching.SWITCHED]["current"]
    # traffic moved: said at once (an abort must not roll this run back; the status shows the new side)
    switched_at = FailoverRun.objects.get(pk=item.run_id).traffic_switched_at
    assert switched_at is not None and CellEnvironment.objects.get(pk=item.cell_env_id).active_side == "secondary"
    assert not services.allowed_actions(FailoverRun.objects.get(pk=item.run_id))["abort"]
    runbook.advance(item.run_id)  # another process, outside any batch: it finds the switch made, does not switch again
    run = FailoverRun.objects.get(pk=item.run_id)
    assert run.state == "succeeded" and run.traffic_switched_at == switched_at
    step.refresh_from_db()
    assert batching.SWITCHED not in step.output and step.output["changed"] is True


def test_readiness_waits_for_the_run_moving_a_cell_and_the_evacuation_schedules_it_at_the_end(
        api, ops, one_wave, monkeypatch, django_capture_on_commit_callbacks):
    from dr import readiness

    queued = []
    monkeypatch.setattr(readiness, "_enqueue", lambda cell_env_id, countdown: queued.append(cell_env_id))
    run = services.start_run(ops, cell="payments", environment="prod", reason="x", evacuation=True)
    with django_capture_on_commit_callbacks(execute=True):
        readiness.schedule(run.cell_env_id)
    assert queued == []  # mid-move: its end evaluates it
    services.abort_run(ops, run.pk, reason="not now")
    drive(run)
    r = api(ops).post("/api/evacuations", {**SCOPE, "reason": "ashburn is down"}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        evac = run_evacuation(Evacuation.objects.get(pk=r.json()["id"]))
    assert evac.state == "succeeded" and set(queued) == {ce.pk for ce in one_wave}


def test_one_evacuation_moves_at_a_time_even_when_two_start_at_once(api, ops, cells):
    from django.db import IntegrityError, transaction

    r = api(ops).post("/api/evacuations", {**SCOPE, "reason": "ashburn is down"}, format="json")
    first = Evacuation.objects.get(pk=r.json()["id"])
    r = api(ops).post("/api/evacuations", {**SCOPE, "reason": "again"}, format="json")
    assert r.status_code == 409 and r.json()["evacuationId"] == first.pk  # the service's check
    with pytest.raises(IntegrityError), transaction.atomic():  # and the database's, for two requests racing past it
        Evacuation.objects.create(cloud="oci", region="us-ashburn-1", reason="raced", state="paused")
    Evacuation.objects.filter(pk=first.pk).update(state="succeeded")
    Evacuation.objects.create(cloud="oci", region="us-ashburn-1", reason="after it ended")


def test_the_evacuate_command_plans_starts_steers_and_shows(ops, cells, dev):
    from io import StringIO

    from django.core.management import CommandError, call_command

    def evacuate(*args) -> str:
        out = StringIO()
        call_command("evacuate", "--user", "ops", *args, stdout=out)
        return out.getvalue()

    plan = json.loads(evacuate("plan", "oci", "--region", "us-ashburn-1"))
    assert plan["moving"] == 3 and not Evacuation.objects.exists()  # the plan changes nothing
    assert "started: 3 to move in 3 wave(s)" in evacuate("start", "oci", "--region", "us-ashburn-1", "--reason", "down")
    evac = Evacuation.objects.get()
    assert "paused" in evacuate("pause", str(evac.pk))
    assert f"#{evac.pk}" in evacuate("list")
    assert "resumed" in evacuate("resume", str(evac.pk))
    evacuations.advance(evac.pk)
    shown = json.loads(evacuate("show", str(evac.pk)))
    assert shown["state"] == "succeeded" and shown["counts"]["succeeded"] == 3
    with pytest.raises(CommandError, match="only a running or paused evacuation"):
        evacuate("abort", str(evac.pk))
    with pytest.raises(CommandError, match="operator"):
        call_command("evacuate", "--user", "dev", "plan", "oci", stdout=StringIO())
    with pytest.raises(CommandError, match="unknown cloud"):
        evacuate("plan", "mars")
