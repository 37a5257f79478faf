"""The failover runbook on sandbox providers: every path of the issue, in-process."""
import pytest

from cells.models import Application, CellEnvironment, MySQLClaim, ReplicationClaim, SandboxObject
from cells.errors import Conflict, Forbidden, InvalidRequest
from dr import services
from dr.endpoints import endpoint_for
from dr.models import FailoverRun, SandboxDatabase, SandboxTrafficRecord

from cells import services as cell_services
from cells.models import AuditEvent

from .helpers import HOST, drive, ready_cell, settle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _instant_sandbox(settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0


def dns(ce):
    return SandboxTrafficRecord.objects.get(host=HOST).value


def steps(run):
    return [(s.name, s.state) for s in run.steps.order_by("index")]


def test_failover_moves_writer_compute_and_traffic_to_the_secondary(dev, ops, test_policy):
    ce = ready_cell(dev)
    run = drive(services.start_run(ops, cell="payments", environment="prod", host=HOST))
    assert run.state == "succeeded", run.error
    assert [name for name, state in steps(run) if state != "succeeded"] == []
    ce.refresh_from_db()
    assert (ce.writers(), ce.epoch, ce.active_side) == (["secondary"], 2, "secondary")
    assert dns(ce) == endpoint_for(ce, "secondary")
    assert SandboxDatabase.objects.get(name="payments-prod-mysql-primary").writable is False
    assert SandboxDatabase.objects.get(name="payments-prod-mysql-secondary").writable is True
    secondary = Application.objects.get(side="secondary")
    assert (secondary.compute_mode, secondary.replicas, secondary.status) == ("active", 2, "ready")
    assert Application.objects.get(side="primary").compute_mode == "pilot"  # old side to standby
    report = run.report
    assert report["rto"]["measuredSeconds"] is not None and report["rto"]["met"] is True
    assert report["rpo"] == {"measuredDataLossSeconds": 0.8, "targetSeconds": 900, "met": True}
    assert [s["name"] for s in report["steps"]][-1] == "record"


def test_switchover_fences_first_waits_for_zero_lag_and_reprotects(dev, ops, test_policy):
    ready_cell(dev)
    before = ReplicationClaim.objects.get().revision
    run = drive(services.start_run(ops, cell="payments", environment="prod", type="switchover"))
    assert run.state == "succeeded", run.error
    assert run.data_loss_seconds == 0
    assert [n for n, _ in steps(run)] == ["precheck", "check_lag", "fence", "catch_up", "promote", "activate_compute",
                                          "switch_traffic", "reprotect", "record"]
    repl = ReplicationClaim.objects.select_related("source", "target").get()
    assert (repl.source.side, repl.target.side, repl.revision) == ("secondary", "primary", before + 1)
    assert SandboxDatabase.objects.get(name="payments-prod-mysql-primary").replicating_from == "payments-prod-mysql-secondary"


def test_failback_returns_to_the_original_primary(dev, ops, test_policy):
    ready_cell(dev)
    drive(services.start_run(ops, cell="payments", environment="prod"))
    run = drive(services.start_run(ops, cell="payments", environment="prod", failback=True,
                                   acknowledge_cooldown=True, reason="primary region recovered"))
    assert (run.type, run.state, run.from_side, run.to_side) == ("failback", "succeeded", "secondary", "primary")
    ce = CellEnvironment.objects.get()
    assert (ce.writers(), ce.active_side, ce.epoch) == (["primary"], "primary", 3)
    assert dns(ce) == endpoint_for(ce, "primary")


def test_failback_without_a_failover_is_a_conflict(dev, ops, test_policy):
    ready_cell(dev)
    with pytest.raises(Conflict, match="nothing to fail back"):
        services.start_run(ops, cell="payments", environment="prod", failback=True)


def test_lag_above_the_rpo_stops_the_run_before_anything_changes(dev, ops, test_policy):
    ready_cell(dev)
    SandboxObject.objects.create(name="payments-prod-replication", lag_seconds=1200)
    run = drive(services.start_run(ops, cell="payments", environment="prod"))
    assert run.state == "failed"
    assert "replication lag 1200s is above the RPO of 900s" in run.error
    ce = CellEnvironment.objects.get()
    assert (ce.epoch, ce.writers(), ce.active_side) == (1, ["primary"], "primary")
    assert SandboxDatabase.objects.filter(name="payments-prod-mysql-primary", writable=False).count() == 0


def test_forcing_above_the_rpo_needs_a_reason_and_is_recorded(dev, ops, test_policy):
    ready_cell(dev)
    SandboxObject.objects.create(name="payments-prod-replication", lag_seconds=1200)
    with pytest.raises(InvalidRequest):
        services.start_run(ops, cell="payments", environment="prod", force=True)
    run = drive(services.start_run(ops, cell="payments", environment="prod", force=True, reason="region on fire, accept 20 min"))
    assert run.state == "succeeded"
    check = run.steps.get(name="check_lag").output
    assert check["forced"] is True and "accept 20 min" in check["warning"]
    assert run.report["rpo"]["met"] is False and run.report["rpo"]["measuredDataLossSeconds"] == 1200


def test_unknown_lag_fails_the_rpo_gate(dev, ops, test_policy):
    ready_cell(dev)
    SandboxObject.objects.create(name="lag:payments-prod-replication", unreachable=True, fail_times=0)
    run = drive(services.start_run(ops, cell="payments", environment="prod"))
    assert run.state == "failed" and "check_lag" in run.error


def test_dry_run_changes_nothing_and_reports(dev, ops, test_policy):
    ce = ready_cell(dev)
    revisions = sorted(MySQLClaim.objects.values_list("revision", flat=True)) + sorted(Application.objects.values_list("revision", flat=True))
    run = drive(services.start_run(ops, cell="payments", environment="prod", dry_run=True))
    assert (run.type, run.simulates, run.state) == ("drill", "failover", "succeeded")
    assert [n for n, _ in steps(run)] == ["precheck", "check_lag", "record"]
    ce.refresh_from_db()
    assert (ce.epoch, ce.writers(), ce.active_side, ce.last_failover_at) == (1, ["primary"], "primary", None)
    assert sorted(MySQLClaim.objects.values_list("revision", flat=True)) + sorted(Application.objects.values_list("revision", flat=True)) == revisions
    assert run.report["steps"][1]["output"]["withinRPO"] is True
    # A drill does not start the cool-down: a real failover may follow at once.
    assert drive(services.start_run(ops, cell="payments", environment="prod")).state == "succeeded"


def test_one_active_run_per_cell_environment(dev, ops, test_policy):
    ready_cell(dev)
    first = services.start_run(ops, cell="payments", environment="prod")
    with pytest.raises(Conflict, match=f"active run #{first.pk}"):
        services.start_run(ops, cell="payments", environment="prod")


def test_unreachable_old_primary_is_fenced_best_effort_and_the_epoch_still_rises(dev, ops, test_policy):
    ready_cell(dev)
    SandboxObject.objects.create(name="fence:payments-prod-mysql-primary", unreachable=True)
    run = drive(services.start_run(ops, cell="payments", environment="prod"))
    assert run.state == "succeeded"
    fence = run.steps.get(name="fence").output
    assert (fence["fenced"], fence["reachable"], fence["epoch"]) == (False, False, 2)
    ce = CellEnvironment.objects.get()
    assert ce.side_epoch("primary") == 1 and ce.epoch == 2  # the old side's epoch is stale: it must never write


def test_planned_switchover_refuses_an_unreachable_primary(dev, ops, test_policy):
    ready_cell(dev)
    SandboxObject.objects.create(name="fence:payments-prod-mysql-primary", unreachable=True)
    run = drive(services.start_run(ops, cell="payments", environment="prod", type="switchover"))
    assert run.state == "failed" and "cannot fence" in run.error


def test_a_traffic_switch_that_does_not_take_effect_fails_the_run(dev, ops, test_policy):
    ready_cell(dev)
    SandboxObject.objects.create(name=f"switch:{HOST}", fail_message="no-effect")
    run = drive(services.start_run(ops, cell="payments", environment="prod"))
    assert run.state == "failed"
    step = run.steps.get(name="switch_traffic")
    assert step.state == "failed" and "still answers" in step.error
    assert CellEnvironment.objects.get().active_side == "primary"


def test_transient_provider_errors_are_retried(dev, ops, test_policy):
    ready_cell(dev)
    SandboxObject.objects.create(name=f"switch:{HOST}", fail_times=2, fail_message="throttled")
    run = drive(services.start_run(ops, cell="payments", environment="prod"))
    assert run.state == "succeeded"
    assert run.steps.get(name="switch_traffic").attempts == 3


def test_resume_retries_the_failed_step(dev, ops, test_policy):
    ready_cell(dev)
    knob = SandboxObject.objects.create(name=f"switch:{HOST}", fail_message="permanent: zone not found")
    run = drive(services.start_run(ops, cell="payments", environment="prod"))
    assert run.state == "failed" and "zone not found" in run.error
    knob.delete()
    run = drive(services.resume_run(ops, run.pk))
    assert run.state == "succeeded"
    assert run.steps.get(name="fence").attempts == 1  # done steps are not repeated


def test_c0_switchover_pauses_for_approval_then_completes(dev, ops, test_policy):
    ready_cell(dev, tier="C0", profile="gold")
    run = drive(services.start_run(ops, cell="payments", environment="prod", type="switchover"))
    assert run.state == "waiting_approval"
    assert CellEnvironment.objects.get().active_side == "primary"
    run = drive(services.approve_run(ops, run.pk))
    assert run.state == "succeeded" and run.approved_by == ops


def test_abort_before_the_traffic_switch_rolls_back(dev, ops, test_policy):
    ready_cell(dev, tier="C0", profile="gold")
    run = drive(services.start_run(ops, cell="payments", environment="prod", type="switchover"))
    assert run.state == "waiting_approval"
    run = drive(services.abort_run(ops, run.pk, "change freeze"))
    assert run.state == "aborted"
    names = [n for n, _ in steps(run)]
    assert names[-2:] == ["rollback_compute", "rollback_writer"]
    ce = CellEnvironment.objects.get()
    assert (ce.writers(), ce.active_side, ce.epoch) == (["primary"], "primary", 3)
    assert SandboxDatabase.objects.get(name="payments-prod-mysql-primary").writable is True
    assert SandboxDatabase.objects.get(name="payments-prod-mysql-secondary").writable is False
    assert Application.objects.get(side="secondary").compute_mode == "warm"
    assert SandboxTrafficRecord.objects.get(host=HOST).value == endpoint_for(ce, "primary")


def test_abort_after_the_traffic_switch_is_refused(dev, ops, test_policy):
    ready_cell(dev)
    run = drive(services.start_run(ops, cell="payments", environment="prod"))
    FailoverRun.objects.filter(pk=run.pk).update(state="failed")  # as if the last step had failed
    with pytest.raises(Conflict, match="cannot be rolled back"):
        services.abort_run(ops, run.pk)


def test_cooldown_needs_an_explicit_acknowledgement(dev, ops, test_policy):
    ready_cell(dev)
    drive(services.start_run(ops, cell="payments", environment="prod"))
    with pytest.raises(Conflict, match="cool-down"):
        services.start_run(ops, cell="payments", environment="prod")
    run = services.start_run(ops, cell="payments", environment="prod", acknowledge_cooldown=True, reason="second incident")
    assert run.acknowledged_cooldown


def test_a_step_that_would_make_two_writers_stops_the_run(dev, ops, test_policy):
    ce = ready_cell(dev)
    run = services.start_run(ops, cell="payments", environment="prod")
    CellEnvironment.objects.filter(pk=ce.pk).update(side_epochs={"primary": 1, "secondary": 1})  # corrupt: two writers
    run = drive(run)
    assert run.state == "failed" and "single-writer" in run.error


def test_developers_cannot_start_or_abort_runs(dev, ops, test_policy):
    ready_cell(dev)
    with pytest.raises(Forbidden):
        services.start_run(dev, cell="payments", environment="prod")
    run = services.start_run(ops, cell="payments", environment="prod")
    with pytest.raises(Forbidden):
        services.abort_run(dev, run.pk)
    assert services.get_run(dev, run.pk) == run  # but they see it


def test_scheduled_drills_run_per_the_policy(dev, use_policy):
    from tests.helpers import policy_doc

    doc = policy_doc()
    doc["failover"] = {"drillIntervalSeconds": {"C1": 3600}}
    use_policy(doc)
    ready_cell(dev)
    started = services.run_scheduled_drills()
    assert len(started) == 1
    run = drive(FailoverRun.objects.get(pk=started[0]))
    assert (run.type, run.scheduled, run.state) == ("drill", True, "succeeded")
    assert services.run_scheduled_drills() == []  # not due again yet


def test_a_cell_can_schedule_its_own_drills(dev, use_policy):
    from tests.helpers import policy_doc

    doc = policy_doc()
    doc["failover"] = {"drillIntervalSeconds": {"C1": 3600}}
    doc["cells"]["payments"]["drillIntervalSeconds"] = 0  # this cell opts out
    use_policy(doc)
    ready_cell(dev)
    assert services.run_scheduled_drills() == []


def test_stale_runs_are_resumed(dev, ops, test_policy, settings):
    from datetime import timedelta

    from django.utils import timezone

    ready_cell(dev)
    run = services.start_run(ops, cell="payments", environment="prod")
    # A worker took it and died: its heartbeat is old.
    FailoverRun.objects.filter(pk=run.pk).update(state="running", heartbeat_at=timezone.now() - timedelta(minutes=5), lease_owner="dead")
    assert services.resume_stale_runs() == 1
    assert drive(run).state == "succeeded"


def test_a_run_stopped_by_its_precheck_changed_nothing_and_frees_the_cell(dev, ops, test_policy):
    services_mod = services
    cell_services.request_mysql(dev, cell="payments", environment="prod", tier="C1", dr_profile="silver")
    settle()  # no application: the precheck stops the run
    run = drive(services_mod.start_run(ops, cell="payments", environment="prod"))
    assert (run.state, run.changed_nothing, run.is_active) == ("failed", True, False)
    assert "nothing was changed" in AuditEvent.objects.filter(action="dr.run.failed").latest("id").message
    again = services_mod.start_run(ops, cell="payments", environment="prod")  # no 409: the cell is free
    assert again.pk != run.pk


def test_a_run_that_failed_after_changing_something_still_holds_the_cell(dev, ops, test_policy):
    ready_cell(dev)
    SandboxObject.objects.create(name="promote:payments-prod-mysql-secondary", fail_message="permanent: disk full")
    run = drive(services.start_run(ops, cell="payments", environment="prod"))
    assert (run.state, run.changed_nothing, run.is_active) == ("failed", False, True)
    with pytest.raises(Conflict):
        services.start_run(ops, cell="payments", environment="prod")


def test_the_cool_down_says_what_happened_and_a_planned_failback_needs_none(dev, ops, test_policy, use_policy):
    ready_cell(dev)
    assert drive(services.start_run(ops, cell="payments", environment="prod", type="switchover")).state == "succeeded"
    # Completing the planned switchover: no cool-down (policy failover.plannedFailbackSkipsCooldown, default on).
    back = drive(services.start_run(ops, cell="payments", environment="prod", failback=True))
    assert back.state == "succeeded" and not back.acknowledged_cooldown
    # Anything else inside the cool-down says what happened, in words.
    with pytest.raises(Conflict, match=r"payments/prod failed back at .* cool-down until"):
        services.start_run(ops, cell="payments", environment="prod", type="switchover")


def test_a_policy_can_ask_the_cool_down_of_a_planned_failback_too(dev, ops, use_policy):
    import copy

    from tests.helpers import BASE

    doc = copy.deepcopy(BASE)
    doc.setdefault("failover", {})["plannedFailbackSkipsCooldown"] = False
    use_policy(doc)
    ready_cell(dev)
    drive(services.start_run(ops, cell="payments", environment="prod", type="switchover"))
    with pytest.raises(Conflict, match=r"had a planned switchover at .* cool-down"):
        services.start_run(ops, cell="payments", environment="prod", failback=True)
