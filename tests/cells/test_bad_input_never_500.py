"""What a user types never makes a 500: deeply nested JSON, impossible dates, NUL characters (PostgreSQL refuses
them in text). And when the server does fail, the API still answers its JSON error shape."""
import logging

import pytest
from rest_framework.test import APIClient

from cells import services
from cells.models import SandboxObject
from dr import services as dr_services
from dr.models import FailoverRun
from scheduler.models import PlacementDecision
from tests.dr.helpers import drive, ready_cell

pytestmark = pytest.mark.django_db

NESTED = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def ready(dev, test_policy, settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    return ready_cell(dev)


@pytest.fixture
def failed_run(ops, ready):
    """A failover run stopped at its promote step: it can be aborted."""
    SandboxObject.objects.create(name="promote:payments-prod-mysql-secondary", fail_message="permanent: disk full")
    run = drive(dr_services.start_run(ops, cell="payments", environment="prod"))
    assert run.state == "failed"
    return run


def web(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


# -- deeply nested JSON ----------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/api/mysql", "/api/app", "/api/cells/payments/prod/replace", "/api/failover",
                                 "/api/failover/1/abort", "/api/failover/1/approve", "/api/failover/1/resume"])
def test_deeply_nested_json_is_a_400_on_every_api_post(api, ops, url):
    r = api(ops).post(url, NESTED, content_type="application/json")
    assert r.status_code == 400, r.content[:300]
    assert r.json() == {"error": "parse_error", "detail": "JSON parse error - the document is nested too deeply"}


def test_nested_json_inside_a_field_is_a_field_error(api, ops, test_policy):
    body = '{"cell": "payments", "environment": "prod", "tier": ' + "[" * 500 + "]" * 500 + "}"
    r = api(ops).post("/api/mysql", body, content_type="application/json")
    assert r.status_code == 400 and "tier" in r.json()["fields"]


def test_a_body_larger_than_the_upload_limit_is_a_413(api, dev, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"cell": "payments", "environment": "' + "x" * 2000 + '"}'
    r = api(dev).post("/api/mysql", body, content_type="application/json")
    assert r.status_code == 413
    assert r.json() == {"error": "too_large", "detail": "the request body is larger than 1000 bytes"}


# -- the audit log's paging cursor -------------------------------------------------------------------

@pytest.mark.parametrize("before", ["2024-13-45", "2024-02-30T10:00:00", "yesterday", "2024-01-01T25:61:00"])
def test_an_impossible_before_on_the_audit_log_is_a_400_naming_it(ops, before):
    r = web(ops).get("/audit/", {"before": before})
    assert r.status_code == 400
    assert "must be an ISO 8601 date and time" in r.content.decode()


def test_a_valid_before_pages_the_audit_log(ops):
    assert web(ops).get("/audit/", {"before": "2026-11-30T10:00:00+00:00"}).status_code == 200


# -- NUL characters -------------------------------------------------------------------------------

@pytest.mark.parametrize("url,param", [("/", "q"), ("/runs/", "cell"), ("/audit/", "cell"), ("/audit/", "user"),
                                       ("/admin/cells/cellenvironment/", "tier"), ("/admin/cells/cell/", "q")])
def test_a_nul_in_a_filter_is_a_400_naming_it(ops, ready, url, param):
    ops.is_staff = True
    ops.save()
    r = web(ops).get(url, {param: "pay\x00ments"})
    assert r.status_code == 400
    html = r.content.decode()
    assert f"<code>{param}</code>: must not contain NUL" in html


@pytest.mark.parametrize("param", ["cell", "environment"])
def test_a_nul_in_the_runs_api_filter_is_a_400_on_the_field(api, ops, ready, param):
    r = api(ops).get("/api/failover", {param: "pay\x00ments"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid"
    assert r.json()["fields"] == {param: ["must not contain NUL (\\x00) characters"]}


def test_a_nul_in_a_replace_note_is_a_400_and_changes_nothing(api, ops, ready):
    before = PlacementDecision.objects.count()
    r = web(ops).post("/cells/payments/prod/replace/", {"note": "drain\x00 the region"})
    assert r.status_code == 400
    assert "must not contain NUL" in r.content.decode()
    r = api(ops).post("/api/cells/payments/prod/replace", {"note": "drain\x00"}, format="json")
    assert r.status_code == 400 and "note" in r.json()["fields"]
    with pytest.raises(services.InvalidRequest) as exc:
        services.replace_cell(ops, cell="payments", environment="prod", note="drain\x00")
    assert exc.value.fields == {"note": ["must not contain NUL (\\x00) characters"]}
    assert PlacementDecision.objects.count() == before


def test_a_nul_in_an_abort_reason_is_a_400_and_the_run_stays(api, ops, failed_run):
    r = web(ops).post(f"/runs/{failed_run.pk}/abort/", {"reason": "disk\x00 gone"})
    assert r.status_code == 400
    assert "must not contain NUL" in r.content.decode()
    r = api(ops).post(f"/api/failover/{failed_run.pk}/abort", {"reason": "disk\x00"}, format="json")
    assert r.status_code == 400 and "reason" in r.json()["fields"]
    assert FailoverRun.objects.get(pk=failed_run.pk).state == "failed"


def test_a_nul_in_a_failover_reason_is_a_400(ops, ready):
    with pytest.raises(services.InvalidRequest) as exc:
        dr_services.start_run(ops, cell="payments", environment="prod", reason="region\x00 down")
    assert set(exc.value.fields) == {"reason"}


# -- a server error still answers the API's shape ---------------------------------------------------

def test_an_unexpected_error_in_an_api_view_answers_the_json_shape_and_is_logged(ops, ready, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(services, "redeliver", broken)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(ops)
    with caplog.at_level(logging.ERROR, logger="cells.api"):
        r = client.post("/api/cells/payments/prod/redeliver")
    assert r.status_code == 500
    assert r["Content-Type"] == "application/json"
    assert set(r.json()) == {"error", "detail"} and r.json()["error"] == "server_error"
    assert "the disk is on fire" not in r.content.decode()  # the details are for the log, not the client
    record = next(rec for rec in caplog.records if rec.name == "cells.api")
    assert record.exc_info and "the disk is on fire" in str(record.exc_info[1])


def test_an_unknown_api_url_answers_the_json_shape(api, ops):
    r = api(ops).get("/api/no-such-thing")
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "detail": "no API endpoint at /api/no-such-thing"}
