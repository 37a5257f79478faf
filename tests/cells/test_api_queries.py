"""What a polled status and a repeated request cost (issue 13): a fixed number of queries whatever the cell
environment holds, and nothing written when nothing changed. Through token authentication, as clients call."""
import pytest
from auditlog.models import LogEntry
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from cells.models import AuditEvent, Delivery
from dr.models import FailoverRun
from tests.dr.helpers import HOST, drive, ready_cell, settle

pytestmark = pytest.mark.django_db

STATUS = "/api/status/payments/prod"
MYSQL = {"cell": "payments", "environment": "prod", "tier": "C1", "drProfile": "silver", "size": "small", "storageGB": 50,
         "ha": False}
# The token; the cell environment with its cell, team, placement and the caller's access; the replication with
# both MySQL claims; the applications; the last deliveries; the last failover run.
STATUS_QUERIES = 6
# The token; the cell (registry); is the caller an operator, their teams; the cell locked; the environment; its
# MySQL claims; the answer's replication with both claims; a savepoint and its release (the request's transaction).
UNCHANGED_MYSQL_QUERIES = 10


@pytest.fixture(autouse=True)
def _instant_sandbox(settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0


def token_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def writes(captured):
    return [q["sql"] for q in captured if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


def test_status_is_read_with_a_fixed_number_of_queries(dev, ops, test_policy, django_assert_max_num_queries):
    ready_cell(dev, tier="C1", profile="silver")
    developer, operator = token_client(dev), token_client(ops)
    with django_assert_max_num_queries(STATUS_QUERIES):
        r = developer.get(STATUS)
    assert r.status_code == 200
    first = r.json()
    assert first["data"]["replication"]["source"] == "payments-prod-mysql-primary"
    assert first["compute"]["primary"]["computeMode"] == "active" and first["traffic"]["publicHost"] == HOST
    assert first["failover"] is None and first["deliveries"]

    # More history (a resize, a failover) costs no more queries.
    assert developer.post("/api/mysql", {**MYSQL, "storageGB": 80}, format="json").json()["changed"] is True
    settle()
    run_id = operator.post("/api/failover", {"cell": "payments", "environment": "prod", "host": HOST},
                           format="json").json()["id"]
    assert drive(FailoverRun.objects.get(pk=run_id)).state == "succeeded"
    for client in (developer, operator):
        with django_assert_max_num_queries(STATUS_QUERIES):
            r = client.get(STATUS)
        assert r.status_code == 200
        body = r.json()
        assert body["failover"]["id"] == run_id and body["failover"]["requestedBy"] == "ops"
        assert body["traffic"]["activeSide"] == "secondary" and body["roles"]["writer"] == ["secondary"]
        assert body["data"]["primary"]["storageGB"] == 80 and body["data"]["replication"]["replicating"] is False
        assert len(body["deliveries"]) == 5


def test_access_to_a_status_is_decided_in_the_query_that_reads_it(dev, outsider, test_policy,
                                                                   django_assert_max_num_queries):
    ready_cell(dev, tier="C1", profile="silver")
    client = token_client(outsider)
    with django_assert_max_num_queries(2):  # the token, the cell environment (with the caller's access)
        r = client.get(STATUS)
    assert r.status_code == 403 and "not a member" in r.json()["detail"]


def test_the_same_mysql_request_again_writes_nothing_and_still_takes_the_cells_lock(
        dev, test_policy, django_assert_max_num_queries):
    client = token_client(dev)
    assert client.post("/api/mysql", MYSQL, format="json").status_code == 201
    assert client.post("/api/mysql", MYSQL, format="json").status_code == 200
    before = (AuditEvent.objects.count(), Delivery.objects.count(), LogEntry.objects.count())
    with django_assert_max_num_queries(UNCHANGED_MYSQL_QUERIES) as ctx:
        r = client.post("/api/mysql", MYSQL, format="json")
    assert r.status_code == 200, r.json()
    body = r.json()
    assert (body["changed"], body["changeImpact"]) == (False, [])
    assert body["claims"]["replication"]["target"] == "payments-prod-mysql-secondary"
    assert writes(ctx.captured_queries) == []
    # Requests for one cell are still serialised: the unchanged path locks the cell's row like any other.
    assert any("FOR UPDATE" in q["sql"] for q in ctx.captured_queries)
    assert (AuditEvent.objects.count(), Delivery.objects.count(), LogEntry.objects.count()) == before
