"""The cell page: topology picture, claims, deliveries, manifests, explanation, history; live updates; actions; access."""
import re

import pytest

from cells.models import Application, AuditEvent, CellEnvironment, ClaimStatus, Delivery, MySQLClaim, SandboxObject
from scheduler.models import PlacementDecision

from .conftest import deliver_everything, htmx

pytestmark = pytest.mark.django_db

URL = "/cells/payments/prod/"


def svg(html: str) -> str:
    return re.search(r'<svg class="topology-wide".*?</svg>', html, re.S).group(0)


def test_the_topology_picture_shows_both_sides_replication_and_traffic(web, dev, placed, settings):
    deliver_everything(settings)
    html = web(dev).get(URL).content.decode()
    picture = svg(html)
    assert 'role="img"' in picture and "<title" in picture and "<desc" in picture
    assert "OCI · us-ashburn-1" in picture and "cluster oke-iad-1" in picture  # primary
    assert "AWS · us-east-1" in picture and "cluster eks-use1-1" in picture  # secondary: another cloud (gold)
    assert "PRIMARY · SERVES TRAFFIC" in picture and "SECONDARY · STANDBY" in picture
    assert "REPLICATION · oci-goldengate" in picture
    assert "within RPO" in picture and "lag 0.8 s / RPO 60 s" in picture
    assert "active · 3 replicas" in picture and "warm standby · 1 replica" in picture
    assert "TRAFFIC · oci-dns" in picture and "payments.prod.company.com" in picture and "serving primary" in picture
    assert 'class="topology-tall"' in html  # the stacked drawing for narrow windows


def test_the_picture_shows_lag_above_the_rpo_in_words(web, dev, placed, settings):
    SandboxObject.objects.create(name="payments-prod-replication", lag_seconds=90)
    deliver_everything(settings)
    picture = svg(web(dev).get(URL).content.decode())
    assert "above RPO" in picture and "lag 90 s / RPO 60 s" in picture and "svg-bad" in picture


def test_claims_show_desired_and_delivered_revisions_states_and_observed_state(web, dev, placed, settings):
    html = web(dev).get(URL).content.decode()
    assert html.count('data-status="pending"') == 5  # 2 MySQL, replication, 2 applications
    deliver_everything(settings)
    html = web(dev).get(URL).content.decode()
    assert html.count('data-status="ready"') == 5
    row = re.search(r'<tr data-claim="payments-prod-mysql-primary".*?</tr>', html, re.S).group(0)
    assert re.search(r'class="num">1</td>\s*<td data-label="Delivered rev." class="num">1', row)
    assert "Ready</span> True" in row and "simulator" in row and "cellmysql-oci" in row  # the Composition it chose
    assert re.search(r"#\d+</strong> apply", html) and "MySQL requested" in html  # the deliveries (outbox)


def test_a_failed_delivery_shows_its_error_and_offers_a_retry(web, dev, placed, settings, monkeypatch):
    from cells.delivery import DeliveryError, gitops

    def broken(self, message):
        raise DeliveryError("gitops: push rejected by the remote (protected branch)")

    monkeypatch.setattr(gitops.GitBatch, "commit", broken)
    deliver_everything(settings)
    client = web(dev)
    html = client.get(URL).content.decode()
    assert "push rejected by the remote" in html
    assert "Retry delivery" in html
    monkeypatch.undo()
    r = client.post(URL + "redeliver/")
    assert r.status_code == 302
    assert Delivery.objects.filter(state="pending").count() == 1
    assert AuditEvent.objects.filter(action="cells.delivery.retried").exists()
    assert "queued" in client.get(URL).content.decode()


def test_manifests_are_rendered_read_only_and_highlighted(web, dev, placed):
    html = web(dev).get(URL).content.decode()
    manifests = html[html.index('id="manifests"'):html.index('id="history"')]
    assert 'class="highlight"' in manifests
    assert "CellMySQLClaim" in manifests and "ReplicationClaim" in manifests and "Application" in manifests
    assert "<textarea" not in manifests and "<input" not in manifests


def test_the_placement_explanation_and_history_are_on_the_page(web, dev, placed):
    html = web(dev).get(URL).content.decode()
    assert f"Decision <strong>#{placed.placement_id}</strong>" in html
    assert "★</span> chosen primary" in html and "★</span> chosen secondary" in html
    assert "gcp lacks goldengate" in html
    history = html[html.index('id="history"'):]
    assert "scheduler.placement.decided" in history and "cells.mysql.created" in history and "cells.app.created" in history
    assert "change.mysqlclaim.create" in history  # auditlog field changes of this cell's objects
    assert history.index("cells.app.created") < history.index("cells.mysql.created")  # newest first


def test_history_shows_only_this_cells_entries(web, ops, placed, catalog):
    history = web(ops).get(URL).content.decode().split('id="history"')[1]
    assert "catalog" not in history


def test_the_last_failover_area_is_there_and_empty(web, dev, placed):
    html = web(dev).get(URL).content.decode()
    assert 'data-testid="last-failover">—<' in html


# -- live updates ------------------------------------------------------------------------------

def test_the_page_polls_while_work_is_in_progress(web, dev, placed):
    html = web(dev).get(URL).content.decode()
    assert 'id="cell-live"' in html and 'hx-trigger="every 2s"' in html and 'data-polling="true"' in html
    r = web(dev).get(URL, **htmx("cell-live"))
    assert r.status_code == 200 and r.content.decode().startswith("<section id=\"cell-live\"")
    assert "<html" not in r.content.decode()


def test_polling_stops_with_286_when_every_state_is_final(web, dev, placed, settings):
    client = web(dev)
    settings.IDP_SIMULATOR_READY_DELAY = 3600
    for d in Delivery.objects.order_by("id"):
        from cells import pipeline

        pipeline.deliver(d.pk)
    pipeline.observe_all()
    assert set(MySQLClaim.objects.values_list("status", flat=True)) == {ClaimStatus.DELIVERED}  # delivered, not ready
    assert client.get(URL, **htmx("cell-live")).status_code == 200  # still polling
    deliver_everything(settings)
    r = client.get(URL, **htmx("cell-live"))
    html = r.content.decode()
    assert r.status_code == 286
    assert 'data-polling="false"' in html and "every 2s" not in html and "all states final" in html
    assert 'hx-trigger="every 2s"' not in client.get(URL).content.decode()


def test_a_failed_claim_is_final_too(web, dev, placed, settings):
    # The replication: a failed database would leave it waiting for that database's endpoint, which is not final.
    SandboxObject.objects.create(name="payments-prod-replication", fail_message="quota exceeded")
    deliver_everything(settings)
    r = web(dev).get(URL, **htmx("cell-live"))
    assert r.status_code == 286 and "ReconcileError quota exceeded" in r.content.decode()


def test_a_failed_claim_says_what_to_do_next_and_shows_in_the_history(web, dev, ops, placed, settings):
    SandboxObject.objects.create(name="payments-prod-mysql-secondary", fail_message="quota exceeded for shape")
    deliver_everything(settings)
    Application.objects.filter(name="payments-prod-primary").update(status=ClaimStatus.FAILED, status_message="health Degraded")
    html = web(dev).get(URL).content.decode()
    mysql = html[html.index('data-claim="payments-prod-mysql-secondary"'):]
    mysql = mysql[:mysql.index("</tr>")]
    assert "What you can do" in mysql and "controller refused the database" in mysql
    assert 'href="/request/mysql/?cell=payments&amp;environment=prod">Open the MySQL form</a>' in mysql
    assert 'href="#replace"' not in mysql  # re-placing is an operator's: no link for a developer
    app = html[html.index('data-claim="payments-prod-primary"'):]
    app = app[:app.index("</tr>")]
    assert "check that the image exists" in app and "Open the app form</a>" in app
    assert 'href="#replace">Re-place</a>' in web(ops).get(URL).content.decode()
    # the failure is in the cell's history, once per failure
    failed = AuditEvent.objects.get(action="cells.claim.failed", cell="payments", environment="prod")
    assert failed.data["claim"] == "payments-prod-mysql-secondary" and "quota exceeded for shape" in failed.message
    assert "MySQL claim payments-prod-mysql-secondary (secondary) failed at revision 1" in html  # in the history


def test_a_failed_delivery_says_to_retry_it(web, dev, placed, settings, monkeypatch):
    from cells.delivery import DeliveryError, gitops

    def broken(self, message):
        raise DeliveryError("gitops: push rejected by the remote (protected branch)")

    monkeypatch.setattr(gitops.GitBatch, "commit", broken)
    settings.IDP_DELIVERY_MAX_ATTEMPTS = 1
    deliver_everything(settings)
    html = web(dev).get(URL).content.decode()
    assert "The delivery gave up" in html and 'href="#deliveries">Deliveries</a>' in html
    assert AuditEvent.objects.filter(action="cells.claim.failed").exists()


# -- access ----------------------------------------------------------------------------------

def test_another_teams_developer_gets_403_not_the_page(web, outsider, placed):
    r = web(outsider).get(URL)
    html = r.content.decode()
    assert r.status_code == 403
    assert "belongs to team" in html and "payments.prod.company.com" not in html and "<svg" not in html
    assert web(outsider).get(URL, **htmx("cell-live")).status_code == 403
    assert web(outsider).post(URL + "decommission/").status_code == 403
    assert CellEnvironment.objects.get().decommissioned_at is None


def test_an_unknown_cell_environment_is_404(web, dev, test_policy):
    r = web(dev).get("/cells/payments/nowhere/")
    assert r.status_code == 404 and "request a MySQL or an app for it first" in r.content.decode()


def test_an_operator_sees_any_teams_cell(web, ops, placed):
    html = web(ops).get(URL).content.decode()
    assert "Re-place" in html


# -- actions ---------------------------------------------------------------------------------

def test_decommission_asks_for_confirmation_then_calls_the_service(web, dev, placed):
    client = web(dev)
    page = client.get(URL + "decommission/")
    assert page.status_code == 200 and "Yes, decommission payments/prod" in page.content.decode()
    assert CellEnvironment.objects.get().decommissioned_at is None  # GET changes nothing
    r = client.post(URL + "decommission/")
    assert r.status_code == 302 and r["Location"] == URL
    assert CellEnvironment.objects.get().decommissioned_at is not None
    assert set(MySQLClaim.objects.values_list("status", flat=True)) == {ClaimStatus.DELETING}
    html = client.get(URL).content.decode()
    assert "is being decommissioned" in html and "Decommission…" not in html
    assert 'hx-trigger="every 2s"' in html  # the deletion is in progress


def test_only_operators_can_re_place(web, dev, ops, placed):
    assert "Re-place" not in web(dev).get(URL).content.decode()
    assert web(dev).post(URL + "replace/", {"note": "try"}).status_code == 403
    r = web(ops).post(URL + "replace/", {"note": "capacity review"})
    assert r.status_code == 302
    assert PlacementDecision.objects.count() == 2
    assert PlacementDecision.objects.first().note == "capacity review"


def test_actions_need_post(web, dev, placed):
    assert web(dev).get(URL + "redeliver/").status_code == 405
    assert web(dev).get(URL + "replace/").status_code == 405
