"""Region and cloud evacuation: the plan (dry run changes nothing), tier order, cells that cannot move, waves with
batched side effects (one GitOps commit per phase, one DNS change per zone), pause/resume/abort, a failed cell not
stopping the others, and a real run preempting a drill."""
import subprocess

import pytest

from cells.models import AuditEvent, CellEnvironment, Delivery, SandboxObject
from dr import evacuations, services
from dr.models import Evacuation, EvacuationItem, FailoverRun

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
    # each wave: one commit to activate the new writers, one to put the old sides in standby; a cold standby
    # (bronze, wave 3) takes two: scaled to zero with sync on first, then turned cold (Argo CD keeps pods otherwise)
    assert d["waves"] == 3 and d["commits"] == 2 + 2 + 3 and commits(settings) - before == d["commits"]
    assert d["dnsCalls"] >= 1
    cells_out = {c["environment"]: c for c in d["cells"]}
    assert all(c["runId"] and c["rtoSeconds"] is not None for c in cells_out.values())
    run = FailoverRun.objects.get(pk=cells_out["prod"]["runId"])
    assert run.state == "succeeded" and "evacuation" in run.reason and run.report  # an ordinary run with its report
    assert set(d["report"]["tiers"]) == {"C0", "C1", "C2"} and d["report"]["tiers"]["C0"]["moved"] == 1
    assert AuditEvent.objects.filter(action="dr.evacuation.succeeded").exists()


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
