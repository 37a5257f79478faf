"""Continuous DR readiness: each check failing on purpose, the score, storing and pruning the evaluations, when they
run (beat, a run ending, a claim turning ready or failed), and the API (filters, access, history)."""
import copy
from datetime import timedelta

import pytest
import yaml
from django.db.models import F
from django.utils import timezone

from cells import signals
from cells.models import Application, CellEnvironment, ClaimStatus, Delivery, MySQLClaim, ReplicationClaim, SandboxObject
from dr import lag, readiness, services, tasks
from dr.endpoints import endpoint_for
from dr.models import FailoverRun, ReadinessEvaluation, SandboxTrafficRecord
from tests.helpers import BASE

from .helpers import HOST, ready_cell

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _instant_sandbox(settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0


def drilled(ce, ago=timedelta(hours=1)):
    """A successful drill of `ce` that finished `ago`."""
    now = timezone.now()
    return FailoverRun.objects.create(cell_env=ce, type="drill", simulates="failover", state="succeeded",
                                      from_side="primary", to_side="secondary", rpo_target_seconds=900,
                                      rto_target_seconds=1800, finished_at=now - ago)


@pytest.fixture
def cell(dev, test_policy):
    """payments/prod (C1 silver), every claim ready, lag measured now, drilled an hour ago."""
    ce = ready_cell(dev)
    ReplicationClaim.objects.filter(cell_env=ce).update(lag_seconds=0.8, lag_measured_at=timezone.now())
    drilled(ce)
    return ce


def evaluate(ce) -> readiness.Readiness:
    return readiness.evaluate(CellEnvironment.objects.select_related("cell", "placement").get(pk=ce.pk))


def checks(result) -> dict:
    return {c.name: (c.state, c.detail) for c in result.checks}


def test_a_ready_drilled_cell_is_ready_on_every_check(cell):
    result = evaluate(cell)
    assert {name: state for name, (state, _) in checks(result).items()} == {
        "standbyReady": "ok", "replication": "ok", "drill": "ok", "standbyHeadroom": "ok", "traffic": "ok",
        "credentials": "ok", "delivered": "ok"}
    assert (result.score, result.state) == (100, "ok")
    found = checks(result)
    assert "lag 0.8 s within the RPO of 15 min" in found["replication"][1]
    assert f"{HOST} → {endpoint_for(cell, 'primary')}: the writer (primary)" in found["traffic"][1]
    assert "payments-prod-mysql-secondary, payments-prod-secondary ready" in found["standbyReady"][1]


# -- each check failing on purpose ------------------------------------------------------------------

def test_a_standby_claim_not_ready_fails_standby_ready(cell):
    MySQLClaim.objects.filter(cell_env=cell, side="secondary").update(status=ClaimStatus.FAILED,
                                                                        status_message="quota exceeded")
    Application.objects.filter(cell_env=cell, side="secondary").update(status=ClaimStatus.DELIVERING)
    found = checks(evaluate(cell))
    assert found["standbyReady"] == ("failing", "payments-prod-mysql-secondary is failed: quota exceeded; "
                                                "payments-prod-secondary is delivering, not ready yet")
    assert found["delivered"][0] == "failing"


def test_a_standby_still_provisioning_is_a_warning_not_a_failure(cell):
    Application.objects.filter(cell_env=cell, side="secondary").update(status=ClaimStatus.DELIVERED)
    state, detail = checks(evaluate(cell))["standbyReady"]
    assert state == "warning" and "payments-prod-secondary is delivered, not ready yet" in detail


def test_after_a_failover_the_standby_is_the_old_primary(cell):
    CellEnvironment.objects.filter(pk=cell.pk).update(active_side="secondary")
    MySQLClaim.objects.filter(cell_env=cell, side="primary").update(status=ClaimStatus.FAILED)
    assert "payments-prod-mysql-primary is failed" in checks(evaluate(cell))["standbyReady"][1]


def test_lag_above_the_rpo_fails_replication(cell):
    ReplicationClaim.objects.filter(cell_env=cell).update(lag_seconds=1200)
    result = evaluate(cell)
    assert checks(result)["replication"] == ("failing", "lag 20 min is above the RPO of 15 min (silver)")
    assert result.score == 75 and result.state == "failing"


def test_an_unmeasured_or_stale_lag_is_a_warning(cell):
    ReplicationClaim.objects.filter(cell_env=cell).update(lag_seconds=None)
    assert checks(evaluate(cell))["replication"] == ("warning", "lag not measured yet (RPO 15 min)")
    ReplicationClaim.objects.filter(cell_env=cell).update(lag_seconds=3, lag_measured_at=timezone.now() - timedelta(hours=1))
    state, detail = checks(evaluate(cell))["replication"]
    assert state == "warning" and "more than 15 min ago" in detail


def test_a_lag_rising_over_the_last_samples_is_a_warning(cell):
    now = timezone.now()
    for i, value in enumerate([10, 40, 90, 200, 400]):  # within the RPO (900 s), but growing at each sample
        lag.record(cell.pk, value, now - timedelta(seconds=15 * (5 - i)))
    state, detail = checks(evaluate(cell))["replication"]
    assert state == "warning" and detail == "lag rising over the last 5 samples: 10 s → 7 min (RPO 15 min)"
    lag.record(cell.pk, 100, now)  # it came down: no trend
    assert checks(evaluate(cell))["replication"][0] == "ok"


def test_a_stopped_replication_fails(cell):
    CellEnvironment.objects.filter(pk=cell.pk).update(epoch=2, writer_side="secondary", active_side="secondary",
                                                      side_epochs={"primary": 1, "secondary": 2})
    state, detail = checks(evaluate(cell))["replication"]
    assert state == "failing" and "replication stopped after the unplanned failover" in detail


def test_a_drill_older_than_the_max_age_fails(cell):
    FailoverRun.objects.filter(cell_env=cell).update(finished_at=timezone.now() - timedelta(days=31))
    state, detail = checks(evaluate(cell))["drill"]
    assert state == "failing" and "policy readiness.drillMaxAgeDays" in detail and "at most 30 d old" in detail


def test_the_drill_interval_of_the_tier_is_the_max_age_plus_the_grace(dev, use_policy, settings):
    doc = copy.deepcopy(BASE)
    doc["failover"]["drillIntervalSeconds"] = {"C1": 3600}
    use_policy(doc)
    settings.IDP_DRILL_OVERDUE_GRACE = 600
    ce = ready_cell(dev)
    drilled(ce, ago=timedelta(minutes=50))
    assert checks(evaluate(ce))["drill"][0] == "ok"
    FailoverRun.objects.filter(cell_env=ce).update(finished_at=timezone.now() - timedelta(minutes=71))
    state, detail = checks(evaluate(ce))["drill"]
    assert state == "failing" and "policy failover.drillIntervalSeconds.C1" in detail


def test_never_drilled_is_a_warning_until_it_is_due(dev, test_policy):
    ce = ready_cell(dev)
    state, detail = checks(evaluate(ce))["drill"]
    assert state == "warning" and detail.startswith("no successful drill yet; due by ")
    CellEnvironment.objects.filter(pk=ce.pk).update(created_at=timezone.now() - timedelta(days=40))
    state, detail = checks(evaluate(ce))["drill"]
    assert state == "failing" and "never drilled" in detail


def test_standby_headroom_below_the_minimum_fails(cell, use_policy):
    p = cell.placement
    doc = copy.deepcopy(BASE)
    doc["readiness"] = {"minStandbyHeadroomPct": 30}
    for cand in doc["cells"]["payments"]["candidates"]:
        if (cand["cloud"], cand["region"], cand["cluster"]) == (p.secondary_cloud, p.secondary_region, p.secondary_cluster):
            cand["capacityHeadroomPct"] = 12
    use_policy(doc)
    state, detail = checks(evaluate(cell))["standbyHeadroom"]
    assert state == "failing"
    assert detail == (f"standby site {p.secondary_cloud}/{p.secondary_region}/{p.secondary_cluster} has 12% capacity "
                      f"headroom, below the minimum of 30% (policy readiness.minStandbyHeadroomPct)")


def test_a_cordoned_standby_site_fails_headroom(cell, use_policy):
    p = cell.placement
    doc = copy.deepcopy(BASE)
    for cand in doc["cells"]["payments"]["candidates"]:
        if cand["cluster"] == p.secondary_cluster:
            cand.update(cordoned=True, cordonReason="node pool upgrade")
    use_policy(doc)
    assert checks(evaluate(cell))["standbyHeadroom"] == (
        "failing", f"standby site {p.secondary_cloud}/{p.secondary_region}/{p.secondary_cluster} is cordoned: node pool upgrade")


def test_traffic_pointing_at_the_standby_fails(cell):
    SandboxTrafficRecord.objects.update_or_create(host=HOST, defaults={"value": endpoint_for(cell, "secondary")})
    state, detail = checks(evaluate(cell))["traffic"]
    assert state == "failing"
    assert detail == (f"{HOST} → {endpoint_for(cell, 'secondary')}: the secondary side, not the writer (the writer, "
                      f"primary, serves at {endpoint_for(cell, 'primary')})")
    SandboxTrafficRecord.objects.filter(host=HOST).update(value="203.0.113.9")
    assert "neither side's endpoint" in checks(evaluate(cell))["traffic"][1]


def test_a_traffic_provider_that_raises_fails_traffic_and_credentials_and_nothing_else(cell):
    SandboxObject.objects.create(name=f"read:{HOST}", fail_message="permanent: 403 Forbidden: the API key was revoked")
    result = evaluate(cell)
    found = checks(result)
    assert found["traffic"] == ("failing", f"oci-dns (played by the sandbox) cannot resolve {HOST}: sandbox: read on "
                                           f"{HOST}: 403 Forbidden: the API key was revoked")
    assert found["credentials"][0] == "failing" and "the API key was revoked" in found["credentials"][1]
    assert {n for n, (s, _) in found.items() if s != "ok"} == {"traffic", "credentials"}
    assert result.score == 75


def test_a_data_adapter_that_raises_fails_credentials(cell):
    SandboxObject.objects.create(name="lag:payments-prod-replication",
                                 fail_message="permanent: Access denied for user 'idp'@'10.0.0.5'")
    state, detail = checks(evaluate(cell))["credentials"]
    assert state == "failing" and "probe mysql (played by the sandbox): sandbox: lag on payments-prod-replication: " \
                                  "Access denied for user 'idp'@'10.0.0.5'" in detail


def test_an_unreachable_data_adapter_fails_credentials(cell):
    SandboxObject.objects.create(name="lag:payments-prod-replication", unreachable=True)
    state, detail = checks(evaluate(cell))["credentials"]
    assert state == "failing" and "unreachable" in detail


def test_a_check_that_crashes_fails_alone_and_the_evaluation_is_stored(cell, monkeypatch):
    def broken(facts):
        raise RuntimeError("boom")

    monkeypatch.setitem(readiness.CHECK_FUNCTIONS, "standbyHeadroom", broken)
    stored = readiness.evaluate_and_store(cell.pk)
    by_name = {c["name"]: c for c in stored.checks}
    assert by_name["standbyHeadroom"] == {"name": "standbyHeadroom", "state": "failing",
                                          "detail": "the check could not run: boom"}
    assert by_name["traffic"]["state"] == "ok" and stored.score == 90


def test_desired_not_delivered_is_a_warning_and_a_failed_delivery_fails(cell, dev):
    MySQLClaim.objects.filter(cell_env=cell, side="primary").update(revision=F("revision") + 1)
    state, detail = checks(evaluate(cell))["delivered"]
    assert state == "warning" and "payments-prod-mysql-primary: revision 2 desired, 1 delivered" in detail
    Delivery.objects.create(cell_env=cell, items=[], state=Delivery.State.FAILED, reason="test",
                            last_error="gitops: push rejected")
    state, detail = checks(evaluate(cell))["delivered"]
    assert state == "failing" and "failed: gitops: push rejected" in detail


# -- the score ----------------------------------------------------------------------------------------

def test_failing_checks_cost_their_weight_and_warnings_less():
    C = readiness.Check
    assert readiness.score_of([C(n, "ok", "") for n in readiness.CHECKS]) == 100
    assert sum(w for w, _ in readiness.CHECKS.values()) == 100
    assert readiness.score_of([C("replication", "failing", "")]) == 75
    assert readiness.score_of([C("replication", "warning", "")]) == 92  # 25 x 0.3 = 7.5, rounded
    assert readiness.score_of([C("drill", "warning", ""), C("traffic", "failing", "")]) == 82
    assert readiness.score_of([C(n, "failing", "") for n in readiness.CHECKS]) == 0
    assert readiness.worst(["ok", "warning", "ok"]) == "warning" and readiness.worst(["warning", "failing"]) == "failing"


# -- stored, pruned, scheduled ------------------------------------------------------------------------

def test_each_evaluation_is_stored_and_the_metric_reads_the_latest(cell):
    ReplicationClaim.objects.filter(cell_env=cell).update(lag_seconds=1200)
    first = readiness.evaluate_and_store(cell.pk)
    ReplicationClaim.objects.filter(cell_env=cell).update(lag_seconds=1)
    second = readiness.evaluate_and_store(cell.pk)
    assert (first.score, first.state, second.score, second.state) == (75, "failing", 100, "ok")
    assert ReadinessEvaluation.objects.filter(cell_env=cell).count() == 2
    assert readiness.score(CellEnvironment.objects.get(pk=cell.pk)) == 1.0


def test_a_decommissioned_cell_is_not_evaluated(cell):
    CellEnvironment.objects.filter(pk=cell.pk).update(decommissioned_at=timezone.now())
    assert readiness.evaluate_and_store(cell.pk) is None


def _stored(ce, at, score):
    return ReadinessEvaluation.objects.create(cell_env=ce, score=score, state="ok" if score == 100 else "failing",
                                              checks=[], evaluated_at=at)


def test_history_keeps_a_day_of_everything_then_the_worst_of_each_hour_for_30_days(cell):
    now = timezone.now().replace(minute=30)
    recent = [_stored(cell, now - timedelta(hours=2, minutes=m), 100) for m in (0, 5, 10)]
    hour = (now - timedelta(hours=30)).replace(minute=0)
    _stored(cell, hour + timedelta(minutes=5), 100)
    worst = _stored(cell, hour + timedelta(minutes=20), 40)
    _stored(cell, hour + timedelta(minutes=50), 100)
    _stored(cell, now - timedelta(days=31), 100)
    readiness.prune(now)
    assert set(ReadinessEvaluation.objects.values_list("pk", flat=True)) == {e.pk for e in recent} | {worst.pk}
    readiness.prune(now)  # idempotent
    assert ReadinessEvaluation.objects.count() == 4


@pytest.fixture
def queued(monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.evaluate_readiness, "apply_async", lambda args, countdown=None: sent.append((args, countdown)))
    return sent


def test_a_claim_turning_ready_or_failed_evaluates_its_cell_once_debounced(cell, queued, django_capture_on_commit_callbacks):
    claim = MySQLClaim.objects.get(cell_env=cell, side="secondary")
    with django_capture_on_commit_callbacks(execute=True):
        signals.claim_ready.send(sender=MySQLClaim, claim=claim)
        signals.claim_failed.send_robust(sender=MySQLClaim, claim=claim, message="quota")
    assert queued == [((cell.pk,), readiness.DEBOUNCE_SECONDS)]  # two changes, one evaluation
    tasks.evaluate_readiness.run(cell.pk)  # the worker: stores it, and frees the debounce
    assert ReadinessEvaluation.objects.filter(cell_env=cell).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        signals.claim_ready.send(sender=MySQLClaim, claim=claim)
    assert len(queued) == 2


def test_a_run_that_ends_evaluates_its_cell(cell, ops, queued, django_capture_on_commit_callbacks):
    run = services.start_run(ops, cell="payments", environment="prod", dry_run=True)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.advance_run.run(run.pk)
    run.refresh_from_db()
    assert run.state == "succeeded" and queued == [((cell.pk,), readiness.DEBOUNCE_SECONDS)]


def test_a_lag_crossing_the_rpo_evaluates_its_cell_and_every_lag_is_a_sample(cell, queued, django_capture_on_commit_callbacks):
    claim = ReplicationClaim.objects.get(cell_env=cell)  # lag 0.8, RPO 900
    with django_capture_on_commit_callbacks(execute=True):
        signals.replication_lag_measured.send_robust(sender=ReplicationClaim, claim=claim, lag_seconds=2.0)
    assert queued == [] and lag.last_samples(cell.pk, 5) == [2.0]
    with django_capture_on_commit_callbacks(execute=True):
        signals.replication_lag_measured.send_robust(sender=ReplicationClaim, claim=claim, lag_seconds=1000.0)
    assert queued == [((cell.pk,), readiness.DEBOUNCE_SECONDS)]
    assert lag.last_samples(cell.pk, 5) == [1000.0]  # the same 15 s bucket keeps its max


def test_the_beat_queues_the_cells_due(cell, queued):
    assert readiness.evaluate_due() == 1 and queued == [((cell.pk,), None)]
    tasks.evaluate_readiness.run(cell.pk)
    assert readiness.evaluate_due() == 0  # evaluated just now
    ReadinessEvaluation.objects.update(evaluated_at=timezone.now() - timedelta(seconds=301))
    assert readiness.evaluate_due() == 1  # older than readiness.evaluateEverySeconds (300)
    tasks.evaluate_readiness.run(cell.pk)
    assert readiness.evaluate_due() == 0
    FailoverRun.objects.filter(cell_env=cell).update(finished_at=timezone.now() + timedelta(seconds=1))
    assert readiness.evaluate_due() == 1  # a run ended after it (one an evacuation drove, say)


def test_the_beat_schedules_evaluation_pruning_and_downsampling(settings):
    tasks_scheduled = {e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"dr.tasks.evaluate_due_readiness", "dr.tasks.prune_readiness", "dr.tasks.downsample_lag"} <= tasks_scheduled


def test_the_policy_readiness_section_is_optional_and_validated():
    from policy.loader import PolicyError, parse_policy

    spec = parse_policy(yaml.safe_dump(BASE), source="t.yaml").spec
    assert (spec.readiness.evaluate_every_seconds, spec.readiness.drill_max_age_days,
            spec.readiness.min_standby_headroom_pct, spec.readiness.lag_trend_samples) == (300, 30, 20, 5)
    doc = copy.deepcopy(BASE)
    doc["readiness"] = {"minStandbyHeadroomPct": 120}
    with pytest.raises(PolicyError) as err:
        parse_policy(yaml.safe_dump(doc), source="t.yaml")
    assert "readiness.minStandbyHeadroomPct" in str(err.value)


# -- the API ----------------------------------------------------------------------------------------

@pytest.fixture
def fleet(cell, outsider):
    """payments/prod (team payments, evaluated ok) and catalog/prod (team storefront, failing: a failed database)."""
    catalog = services_request_catalog(outsider)
    MySQLClaim.objects.filter(cell_env=catalog, side="secondary").update(status=ClaimStatus.FAILED)
    readiness.evaluate_and_store(cell.pk)
    readiness.evaluate_and_store(catalog.pk)
    return cell, catalog


def services_request_catalog(user):
    from cells import services as cell_services

    return cell_services.request_mysql(user, cell="catalog", environment="prod", tier="C1", dr_profile="silver").cell_env


def names(response) -> list[str]:
    return [f"{r['cell']}/{r['environment']}" for r in response.json()["results"]]


def test_the_api_lists_the_latest_evaluation_of_each_visible_cell(api, ops, fleet):
    payments, catalog = fleet
    r = api(ops).get("/api/readiness")
    assert r.status_code == 200 and names(r) == ["catalog/prod", "payments/prod"]
    row = r.json()["results"][1]
    assert set(row) == {"cell", "environment", "tier", "score", "state", "checks", "evaluatedAt"}
    assert (row["tier"], row["score"], row["state"]) == ("C1", 100, "ok")
    assert [c["name"] for c in row["checks"]] == list(readiness.CHECKS)
    assert set(row["checks"][0]) == {"name", "state", "detail"} and row["evaluatedAt"].endswith("Z")
    assert r.json()["results"][0]["state"] == "failing"


def test_the_api_filters_by_cell_tier_cloud_and_state(api, ops, fleet):
    payments, catalog = fleet
    client = api(ops)
    assert names(client.get("/api/readiness?cell=payments")) == ["payments/prod"]
    assert names(client.get("/api/readiness?tier=C0")) == []
    assert names(client.get("/api/readiness?state=failing")) == ["catalog/prod"]
    assert names(client.get("/api/readiness?state=ok")) == ["payments/prod"]
    p = payments.placement
    assert "payments/prod" in names(client.get(f"/api/readiness?cloud={p.primary_cloud}"))
    assert "payments/prod" in names(client.get(f"/api/readiness?cloud={p.secondary_cloud}"))
    assert names(client.get("/api/readiness?cloud=azure")) == []
    r = client.get("/api/readiness?state=broken")
    assert r.status_code == 400 and "state" in r.json()["fields"]


def test_the_api_shows_developers_their_teams_cells_only(api, dev, outsider, fleet):
    assert names(api(dev).get("/api/readiness")) == ["payments/prod"]
    assert names(api(outsider).get("/api/readiness")) == ["catalog/prod"]
    assert api(None).get("/api/readiness").status_code == 401
    assert api(outsider).get("/api/readiness/payments/prod/history").status_code == 403
    assert api(dev).get("/api/readiness/nosuch/prod/history").status_code == 404
    assert api(None).get("/api/readiness/payments/prod/history").status_code == 401


def test_a_never_evaluated_cell_is_listed_as_unknown(api, dev, cell):
    row = api(dev).get("/api/readiness").json()["results"][0]
    assert (row["score"], row["state"], row["checks"], row["evaluatedAt"]) == (None, "unknown", [], None)


def test_the_history_lists_the_stored_evaluations_since_a_time(api, dev, cell):
    now = timezone.now()
    old = _stored(cell, now - timedelta(hours=30), 40)
    new = _stored(cell, now - timedelta(hours=1), 100)
    client = api(dev)
    body = client.get("/api/readiness/payments/prod/history").json()  # default: the last 24 h
    assert [e["score"] for e in body["evaluations"]] == [100]
    since = (now - timedelta(hours=48)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = client.get(f"/api/readiness/payments/prod/history?since={since}").json()
    assert [(e["score"], e["state"]) for e in body["evaluations"]] == [(old.score, "failing"), (new.score, "ok")]
    r = client.get("/api/readiness/payments/prod/history?since=yesterday")
    assert r.status_code == 400 and "since" in r.json()["fields"]
