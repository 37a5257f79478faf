"""Running the control plane: /healthz and /readyz for the kubelet, /metrics for Prometheus (read from the database at
scrape time, protected by a token or a network), JSON logs whose request id follows the work into Celery tasks."""
import io
import json
import logging
import os
import time

import pytest
import yaml
from django.db import OperationalError, connection
from django.test import Client, RequestFactory
from prometheus_client.parser import text_string_to_metric_families

from cells import services
from cells.models import Application, ClaimStatus, Delivery, MySQLClaim, ReplicationClaim
from dr import readiness
from dr.models import FailoverRun
from policy import active
from portal import logs, metrics
from portal.celery import app as celery_app
from tests.helpers import BASE

pytestmark = pytest.mark.django_db

MYSQL = dict(cell="payments", environment="prod", tier="C0", dr_profile="gold", size="small", storage_gb=50, ha=True)
CATALOG = dict(cell="catalog", environment="prod", tier="C1", dr_profile="silver")
APP = dict(cell="payments", environment="prod", tier="C0", dr_profile="gold", image="ghcr.io/acme/payments:1.0",
           public_host="payments.prod.company.com")


def broken_policy() -> dict:
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    doc["tiers"]["C0"]["weights"]["cost"] = -1
    return doc


# -- /healthz and /readyz -------------------------------------------------------------------

def test_healthz_answers_without_auth_and_without_the_database(monkeypatch):
    monkeypatch.setattr(connection, "cursor", lambda *a, **k: (_ for _ in ()).throw(OperationalError("down")))
    r = Client().get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


def test_readyz_is_ready_with_every_check_named(test_policy):
    r = Client().get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and "failing" not in body
    assert {name: c["ok"] for name, c in body["checks"].items()} == {"database": True, "broker": True, "policy": True}
    assert body["checks"]["policy"]["version"] == active.active_policy().version


def test_probes_answer_a_pod_ip_host_over_plain_http(test_policy, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["idp.company.com"]
    client = Client(HTTP_HOST="10.42.0.17:8000")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/").status_code == 400  # the portal itself still checks the host


def test_readyz_names_the_broker_when_its_port_is_closed(test_policy, settings):
    settings.IDP_READYZ_BROKER_TIMEOUT = 1
    celery_app.conf.broker_url = "redis://:s3cret-password@127.0.0.1:1/0"  # nothing listens there
    started = time.monotonic()
    r = Client().get("/readyz")
    assert time.monotonic() - started < 5
    assert r.status_code == 503
    body = r.json()
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"]["ok"] is False and body["checks"]["broker"]["error"]
    assert "s3cret-password" not in r.content.decode()


def test_readyz_names_the_policy_when_no_valid_policy_was_ever_active(use_policy):
    use_policy(broken_policy())
    r = Client().get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["failing"] == ["policy"]
    assert "tiers.C0.weights.cost: must be a number >= 0" in body["checks"]["policy"]["error"]


def test_readyz_stays_ready_on_a_rejected_edit_and_reports_it(use_policy):
    path = use_policy()
    good = active.active_policy()
    path.write_text(yaml.safe_dump(broken_policy()))
    os.utime(path, ns=(1, 1))
    r = Client().get("/readyz")
    assert r.status_code == 200  # the last good policy is active: the control plane works
    policy = r.json()["checks"]["policy"]
    assert policy["version"] == good.version
    assert "tiers.C0.weights.cost: must be a number >= 0" in policy["fileError"]


def test_readyz_names_the_database_when_it_fails(test_policy, monkeypatch):
    active.active_policy()

    def refuse(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1, port 1 failed: Connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    r = Client().get("/readyz")
    assert r.status_code == 503
    assert r.json()["failing"] == ["database"]
    assert "Connection refused" in r.json()["checks"]["database"]["error"]


# -- /metrics -------------------------------------------------------------------------------

def scrape(client=None, **extra) -> dict:
    r = (client or Client()).get("/metrics", **extra)
    assert r.status_code == 200, r.content
    assert r["Content-Type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(r.content.decode())}


def samples(family, suffix="") -> dict:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == family.name + suffix}


def run(ce, type_, state, rto=None, data_loss=None):
    return FailoverRun.objects.create(cell_env=ce, type=type_, state=state, from_side="primary", to_side="secondary",
                                      rpo_target_seconds=60, rto_target_seconds=300, rto_seconds=rto,
                                      data_loss_seconds=data_loss)


@pytest.fixture
def fleet(dev, outsider, test_policy):
    """payments/prod: every claim ready, lag 12.5 s (RPO 60 s), three finished runs; catalog/prod: nothing ready."""
    services.request_mysql(dev, **MYSQL)
    payments = services.request_app(dev, **APP).cell_env
    catalog = services.request_mysql(outsider, **CATALOG).cell_env
    for model in (MySQLClaim, ReplicationClaim, Application):
        model.objects.filter(cell_env=payments).update(status=ClaimStatus.READY)
    ReplicationClaim.objects.filter(cell_env=payments).update(lag_seconds=12.5)
    run(payments, "switchover", "succeeded", rto=90, data_loss=0)
    run(payments, "failback", "succeeded", rto=400, data_loss=20)
    run(payments, "drill", "failed")
    return payments, catalog


def test_metrics_exposes_the_database_numbers_to_loopback(fleet):
    payments, catalog = fleet
    Delivery.objects.filter(pk=Delivery.objects.order_by("id").first().pk).update(state=Delivery.State.DONE)
    Delivery.objects.filter(pk=Delivery.objects.order_by("id").last().pk).update(state=Delivery.State.FAILED)
    assert "idp_readiness_score" not in {s.name for f in scrape().values() for s in f.samples}  # never evaluated
    stored = {ce.cell.name: readiness.evaluate_and_store(ce.pk).score for ce in (payments, catalog)}
    families = scrape()

    assert samples(families["idp_replication_lag_seconds"]) == {(("cell", "payments"), ("environment", "prod")): 12.5}
    # the latest stored evaluation, 0..1 (dr/readiness.py)
    assert samples(families["idp_readiness_score"]) == {
        (("cell", "payments"), ("environment", "prod")): stored["payments"] / 100,
        (("cell", "catalog"), ("environment", "prod")): stored["catalog"] / 100}
    assert stored["catalog"] < stored["payments"]
    assert samples(families["idp_replication_rpo_seconds"])[(("cell", "payments"), ("environment", "prod"))] == 60

    runs = samples(families["idp_failover_runs_total"])
    assert runs[(("state", "succeeded"), ("type", "switchover"))] == 1
    assert runs[(("state", "succeeded"), ("type", "failback"))] == 1
    assert runs[(("state", "failed"), ("type", "drill"))] == 1
    assert sum(runs.values()) == FailoverRun.objects.count() == 3

    rto = families["idp_failover_rto_seconds"]
    assert rto.type == "histogram"
    buckets = {(s.labels["type"], s.labels["le"]): s.value for s in rto.samples if s.name.endswith("_bucket")}
    assert buckets[("switchover", "60.0")] == 0 and buckets[("switchover", "120.0")] == 1
    assert buckets[("failback", "300.0")] == 0 and buckets[("failback", "600.0")] == 1
    assert buckets[("failback", "+Inf")] == 1
    assert samples(rto, "_sum") == {(("type", "failback"),): 400.0, (("type", "switchover"),): 90.0}
    assert ("drill", "+Inf") not in buckets  # nothing measured: no series
    loss = families["idp_failover_data_loss_seconds"]
    assert samples(loss, "_count") == {(("type", "failback"),): 1.0, (("type", "switchover"),): 1.0}
    loss_buckets = {(s.labels["type"], s.labels["le"]): s.value for s in loss.samples if s.name.endswith("_bucket")}
    assert loss_buckets[("switchover", "0.0")] == 1 and loss_buckets[("failback", "15.0")] == 0

    depth = samples(families["idp_delivery_queue_depth"])
    expected = {state: Delivery.objects.filter(state=state).count() for state in ("pending", "delivering", "failed")}
    assert depth == {(("state", s),): float(n) for s, n in expected.items()}
    assert expected["pending"] >= 1 and expected["failed"] == 1
    assert samples(families["idp_metrics_database_up"]) == {(): 1.0}


def test_a_stopped_replication_exports_no_lag_and_lowers_readiness(fleet):
    payments, _ = fleet
    payments.epoch, payments.writer_side, payments.side_epochs = 2, "secondary", {"primary": 1, "secondary": 2}
    before = readiness.evaluate_and_store(payments.pk).score
    payments.save()  # an unplanned failover: nothing replicates until reprotect
    after = readiness.evaluate_and_store(payments.pk)
    families = scrape()
    assert samples(families["idp_replication_lag_seconds"]) == {}
    assert samples(families["idp_readiness_score"])[(("cell", "payments"), ("environment", "prod"))] == after.score / 100
    assert after.score < before and {c["name"]: c["state"] for c in after.checks}["replication"] == "failing"


def test_request_latency_is_labelled_by_url_name_not_path(placed, dev):
    client = Client()
    client.force_login(dev)
    assert client.get("/cells/payments/prod/").status_code == 200
    assert client.get("/no/such/page-8c1f").status_code == 404
    Client().get("/healthz")
    text = Client().get("/metrics").content.decode()
    latency = {f.name: f for f in text_string_to_metric_families(text)}["idp_http_request_duration_seconds"]
    counts = samples(latency, "_count")
    assert counts[(("method", "GET"), ("route", "cell"), ("status", "200"))] >= 1
    assert counts[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] >= 1
    assert counts[(("method", "GET"), ("route", "healthz"), ("status", "200"))] >= 1
    assert "page-8c1f" not in text and "payments/prod" not in text


@pytest.mark.parametrize("remote_addr", ["10.0.0.5", "192.168.1.20", "2001:db8::1"])
def test_metrics_refuses_other_addresses(remote_addr):
    request = RequestFactory().get("/metrics", REMOTE_ADDR=remote_addr)
    assert metrics.metrics(request).status_code == 403
    assert Client().get("/metrics", REMOTE_ADDR=remote_addr).status_code == 403


@pytest.mark.parametrize("remote_addr", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_metrics_allows_loopback_by_default(remote_addr):
    assert metrics.metrics(RequestFactory().get("/metrics", REMOTE_ADDR=remote_addr)).status_code == 200


def test_metrics_token(settings):
    settings.IDP_METRICS_TOKEN = "scrape-token-123"
    far = {"REMOTE_ADDR": "10.0.0.5"}
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-123", **far).status_code == 200
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **far).status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403  # even from loopback
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Token scrape-token-123", **far).status_code == 403
    assert Client().get("/metrics", **far).status_code == 403


def test_metrics_without_a_configured_token_refuses_any_bearer(settings):
    settings.IDP_METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_metrics_allowed_networks(settings):
    settings.IDP_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert Client().get("/metrics", REMOTE_ADDR="10.3.4.5").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    settings.IDP_METRICS_ALLOWED_NETWORKS = []
    assert Client().get("/metrics", REMOTE_ADDR="10.3.4.5").status_code == 403


def test_metrics_says_when_the_database_cannot_be_read(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("Connection refused")

    monkeypatch.setattr(metrics.DomainCollector, "_cells", refuse)
    families = scrape()
    assert samples(families["idp_metrics_database_up"]) == {(): 0.0}
    assert "idp_failover_runs_total" not in families


# -- request id and logs --------------------------------------------------------------------

@pytest.fixture
def json_log():
    """Every record (root logger) as JSON with our context filter, like production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JsonFormatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def test_the_callers_request_id_is_echoed_and_logged(json_log):
    r = Client().get("/no/such/page", HTTP_X_REQUEST_ID="ingress-7f3a.9:1")
    assert r.status_code == 404 and r["X-Request-ID"] == "ingress-7f3a.9:1"
    not_found = [line for line in json_log() if line["logger"] == "django.request"]
    assert not_found and not_found[0]["request_id"] == "ingress-7f3a.9:1"
    assert not_found[0]["level"] == "WARNING" and "time" in not_found[0]
    assert logs.current_request_id() is None  # cleared when the request finished


@pytest.mark.parametrize("given", ["", "x" * 65, "a b", "id\nX-Injected: 1", "<script>", "-leading-dash"])
def test_an_unsafe_request_id_is_replaced(given):
    r = Client().get("/healthz", HTTP_X_REQUEST_ID=given)
    assert r["X-Request-ID"] != given and len(r["X-Request-ID"]) == 32
    assert Client().get("/healthz")["X-Request-ID"] != r["X-Request-ID"]


def test_log_lines_outside_a_request_or_task_have_no_context(json_log):
    logging.getLogger("idp.test").warning("beat tick")
    line = json_log()[-1]
    assert line["message"] == "beat tick" and not {"request_id", "task_id", "task_name"} & set(line)


def test_plain_format_shows_the_context():
    record = logging.LogRecord("cells.pipeline", logging.INFO, __file__, 1, "delivered %s", ("payments",), None)
    token = logs.request_id_var.set("req-9")
    try:
        logs.ContextFilter().filter(record)
    finally:
        logs.request_id_var.reset(token)
    assert logs.PlainFormatter("%(levelname)s %(name)s %(message)s").format(record) == \
        "INFO cells.pipeline delivered payments [request_id=req-9]"


def test_publishing_a_task_copies_the_request_id_into_its_headers():
    headers = {"task": "cells.tasks.deliver", "id": "t-1"}
    logs._add_request_id_header(sender="cells.tasks.deliver", headers=headers)
    assert "request_id" not in headers  # no request: nothing added
    token = logs.request_id_var.set("req-1")
    try:
        logs._add_request_id_header(sender="cells.tasks.deliver", headers=headers)
    finally:
        logs.request_id_var.reset(token)
    assert headers["request_id"] == "req-1"


class FakeTask:
    name = "cells.tasks.deliver"

    def __init__(self, headers: dict):
        from celery.app.task import Context

        self.request = Context(headers)


def test_a_task_logs_with_its_request_id_id_and_name_until_it_ends(json_log):
    task = FakeTask({"id": "task-1", "request_id": "req-2"})
    logs._enter_task(sender=task, task_id="task-1", task=task)
    logging.getLogger("cells.pipeline").info("delivering")
    logs._leave_task(sender=task, task_id="task-1", task=task)
    logging.getLogger("cells.pipeline").info("idle")
    during, after = json_log()[-2:]
    assert (during["request_id"], during["task_id"], during["task_name"]) == ("req-2", "task-1", "cells.tasks.deliver")
    assert not {"request_id", "task_id", "task_name"} & set(after)


def test_a_task_without_a_request_id_keeps_none(json_log):
    task = FakeTask({"id": "task-3"})
    logs._enter_task(sender=task, task_id="task-3", task=task)
    logging.getLogger("dr.tasks").info("beat task")
    logs._leave_task(sender=task, task_id="task-3", task=task)
    line = json_log()[-1]
    assert line["task_id"] == "task-3" and "request_id" not in line


def drain(queue_name="celery") -> list:
    with celery_app.connection_for_read() as conn:
        queue = conn.SimpleQueue(queue_name, no_ack=True)
        messages = []
        while True:
            try:
                messages.append(queue.get(block=False))
            except queue.Empty:
                break
        queue.close()
    return messages


def test_a_request_sends_its_task_with_the_request_id_in_the_message_headers(transactional_db, api, dev, test_policy):
    drain()
    body = {"cell": "payments", "environment": "prod", "tier": "C0", "drProfile": "gold", "size": "small",
            "storageGB": 50, "ha": True}
    r = api(dev).post("/api/mysql", body, format="json", HTTP_X_REQUEST_ID="req-from-portal-1")
    assert r.status_code == 201 and r["X-Request-ID"] == "req-from-portal-1"
    sent = [m for m in drain() if m.headers.get("task") == "cells.tasks.deliver"]
    assert len(sent) == 1
    assert sent[0].headers["request_id"] == "req-from-portal-1"
    assert sent[0].headers["argsrepr"] == repr((Delivery.objects.get().pk,))
