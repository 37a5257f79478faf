"""The failover API: the design document's call, roles, one run at a time, field errors."""
import threading

import pytest
from django.db import connection

from dr.models import FailoverRun

from .helpers import HOST, drive, ready_cell

BODY = {"cell": "payments", "environment": "prod", "host": HOST}


@pytest.fixture(autouse=True)
def _instant_sandbox(settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0


@pytest.mark.django_db
def test_the_design_documents_call_starts_a_run_and_reports_it(api, dev, ops, test_policy):
    ready_cell(dev)
    r = api(ops).post("/api/failover", BODY, format="json")
    assert r.status_code == 202, r.json()
    body = r.json()
    assert body["statusUrl"] == f"/api/failover/{body['id']}" and body["state"] == "pending"
    drive(FailoverRun.objects.get(pk=body["id"]))
    run = api(dev).get(body["statusUrl"]).json()  # developers see runs
    assert run["state"] == "succeeded"
    assert [s["name"] for s in run["steps"]][:3] == ["precheck", "check_lag", "fence"]
    assert all({"name", "state", "startedAt", "finishedAt", "attempts", "output", "error"} <= set(s) for s in run["steps"])
    assert run["report"]["rto"]["targetSeconds"] == 1800
    status = api(dev).get("/api/status/payments/prod").json()
    assert status["failover"]["id"] == body["id"] and status["traffic"]["activeSide"] == "secondary"
    assert status["roles"]["writer"] == ["secondary"]


@pytest.mark.django_db
def test_developers_may_not_start_runs(api, dev, test_policy):
    ready_cell(dev)
    assert api(dev).post("/api/failover", BODY, format="json").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("body,field", [
    ({**BODY, "force": True}, "reason"),
    ({**BODY, "type": "teleport"}, "type"),
    ({**BODY, "host": "other.company.com"}, "host"),
    ({**BODY, "dryRun": True, "force": True, "reason": "x"}, "force"),
])
def test_bad_failover_requests_get_field_errors(api, dev, ops, test_policy, body, field):
    ready_cell(dev)
    r = api(ops).post("/api/failover", body, format="json")
    assert r.status_code == 400 and field in r.json()["fields"], r.json()
    assert FailoverRun.objects.count() == 0


@pytest.mark.django_db
def test_unknown_cell_environment_is_404(api, ops, test_policy):
    assert api(ops).post("/api/failover", BODY, format="json").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_start_exactly_one_run(api, dev, ops, test_policy):
    ready_cell(dev)
    barrier, codes = threading.Barrier(4), []

    def post():
        try:
            barrier.wait()
            codes.append(api(ops).post("/api/failover", BODY, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(codes) == [202, 409, 409, 409]
    assert FailoverRun.objects.count() == 1


@pytest.mark.django_db
def test_abort_resume_and_approve_are_operator_actions(api, dev, ops, test_policy):
    ready_cell(dev)
    run_id = api(ops).post("/api/failover", BODY, format="json").json()["id"]
    assert api(dev).post(f"/api/failover/{run_id}/abort", {}, format="json").status_code == 403
    assert api(ops).post(f"/api/failover/{run_id}/approve", {}, format="json").status_code == 409
    r = api(ops).post(f"/api/failover/{run_id}/abort", {"reason": "wrong cell"}, format="json")
    assert r.status_code == 202 and r.json()["state"] == "aborting"
    assert drive(FailoverRun.objects.get(pk=run_id)).state == "aborted"
    assert api(ops).get("/api/failover?cell=payments").json()["results"][0]["state"] == "aborted"


@pytest.mark.django_db
def test_other_teams_do_not_see_runs(api, dev, ops, outsider, test_policy):
    ready_cell(dev)
    run_id = api(ops).post("/api/failover", BODY, format="json").json()["id"]
    assert api(outsider).get(f"/api/failover/{run_id}").status_code == 404
    assert api(outsider).get("/api/failover").json()["results"] == []


@pytest.mark.django_db
def test_status_says_replication_stopped_after_a_failover_and_reversed_after_a_switchover(api, dev, ops, test_policy):
    ready_cell(dev)
    run_id = api(ops).post("/api/failover", BODY, format="json").json()["id"]
    drive(FailoverRun.objects.get(pk=run_id))
    repl = api(dev).get("/api/status/payments/prod").json()["data"]["replication"]
    assert (repl["replicating"], repl["lagSeconds"], repl["direction"]) == (False, None, "primary -> secondary")
    back = api(ops).post("/api/failover", {**BODY, "failback": True, "acknowledgeCooldown": True, "reason": "recovered"},
                         format="json").json()["id"]
    drive(FailoverRun.objects.get(pk=back))
    repl = api(dev).get("/api/status/payments/prod").json()["data"]["replication"]
    assert (repl["replicating"], repl["direction"]) == (True, "primary -> secondary")
