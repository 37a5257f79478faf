"""Operator pages: the audit log (filters) and the policy console (versions, what-if). Developers get 403."""
import copy
import re
from datetime import timedelta

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from cells.models import AuditEvent, CellEnvironment
from policy.models import PolicyVersion
from scheduler.models import PlacementDecision

from tests.helpers import BASE

from .conftest import htmx

pytestmark = pytest.mark.django_db


def actions(html: str) -> list[str]:
    """The actions listed in the results (not the filter's suggestions)."""
    html = html[html.index('id="audit-results"'):] if 'id="audit-results"' in html else html
    return re.findall(r'<span class="kind kind-\w+">\w+</span> <code>([\w.]+)</code>', html)


# -- audit log -----------------------------------------------------------------------------

def test_developers_get_403_on_the_operator_pages(web, dev, test_policy):
    for url in ("/audit/", "/policy/"):
        r = web(dev).get(url)
        assert r.status_code == 403 and "only operators may" in r.content.decode()
    assert web(dev).post("/policy/", {"text": "x: 1"}).status_code == 403


def test_the_nav_shows_operator_pages_to_operators_only(web, dev, ops, test_policy):
    assert 'href="/audit/"' not in web(dev).get("/").content.decode()
    assert 'href="/audit/"' in web(ops).get("/").content.decode()


def test_the_audit_log_merges_domain_events_and_field_changes_newest_first(web, ops, placed, catalog):
    html = web(ops).get("/audit/").content.decode()
    seen = actions(html)
    assert "cells.mysql.created" in seen and "scheduler.placement.decided" in seen and "change.mysqlclaim.create" in seen
    assert seen.index("cells.mysql.created") < seen.index("scheduler.placement.decided")  # catalog's, newest first


def test_the_audit_log_filters_by_cell_user_and_action(web, ops, dev, placed, catalog):
    client = web(ops)
    html = client.get("/audit/", {"cell": "catalog"}).content.decode()
    assert "catalog/prod" in html and "payments/prod" not in html
    assert "change.mysqlclaim.create" in actions(html)  # field changes of the cell's claims too
    html = client.get("/audit/", {"user": "dev"}).content.decode()
    assert "payments/prod" in html and "catalog/prod" not in html
    html = client.get("/audit/", {"action": "cells.app"}).content.decode()
    assert set(actions(html)) == {"cells.app.created"}
    html = client.get("/audit/", {"action": "change.application"}).content.decode()
    assert set(actions(html)) == {"change.application.create"}
    html = client.get("/audit/", {"action": "change.create", "cell": "payments"}).content.decode()
    assert set(actions(html)) == {"change.cell.create", "change.cellenvironment.create", "change.mysqlclaim.create",
                                  "change.replicationclaim.create", "change.application.create"}


def test_the_audit_log_filters_by_time_range(web, ops, placed):
    old = AuditEvent.objects.create(action="cells.old.thing", cell="payments", environment="prod", message="long ago")
    AuditEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    client = web(ops)
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert "cells.old.thing" not in actions(client.get("/audit/", {"since": since}).content.decode())
    until = (timezone.now() - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    html = client.get("/audit/", {"until": until}).content.decode()
    assert actions(html) == ["cells.old.thing"]
    r = client.get("/audit/", {"since": "2030-01-01T00:00", "until": "2020-01-01T00:00"})
    assert r.status_code == 400 and "must be after the start" in r.content.decode()


def test_the_audit_log_pages_back_in_time(web, ops, test_policy):
    for i in range(60):
        AuditEvent.objects.create(action="cells.test.event", cell="payments", environment="prod", message=f"event {i}")
    client = web(ops)
    html = client.get("/audit/", {"action": "cells.test"}).content.decode()
    assert len(actions(html)) == 50 and "event 59" in html
    older = re.search(r'href="\?([^"]*before=[^"]+)"', html).group(1).replace("&amp;", "&")
    html = client.get("/audit/?" + older).content.decode()
    assert len(actions(html)) == 10 and "event 0<" in html and "event 59" not in html


def test_audit_filters_answer_the_results_alone_to_htmx(web, ops, placed):
    r = web(ops).get("/audit/", {"cell": "payments"}, **htmx("audit-results"))
    assert r.content.decode().startswith('<section id="audit-results"') and "HX-Request" in r["Vary"]


# -- policy console -----------------------------------------------------------------------------

def test_the_policy_page_shows_the_active_version_its_text_and_history(web, ops, placed):
    html = web(ops).get("/policy/").content.decode()
    version = PolicyVersion.objects.get()
    assert f'data-testid="active-version">{version.version}<' in html
    assert 'class="highlight"' in html and "oke-iad-1" in html  # the YAML, highlighted
    row = html[html.index("Version history"):]
    assert version.version in row and "✓</span> active" in row
    assert re.search(r'data-label="Decisions" class="num">1<', row)


def test_what_if_reports_a_broken_candidate_with_paths(web, ops, placed):
    doc = copy.deepcopy(BASE)
    doc["tiers"]["C0"]["weights"]["cost"] = -1
    doc["cells"]["payments"]["candidates"][0]["cloud"] = "alibaba"
    r = web(ops).post("/policy/", {"text": yaml.safe_dump(doc)}, **htmx("whatif-result"))
    html = r.content.decode()
    assert r.status_code == 200 and html.startswith('<div id="whatif-result"')
    assert "<code>tiers.C0.weights.cost</code>: must be a number &gt;= 0" in html
    assert "not a valid policy" in html


def test_what_if_lists_the_placements_that_would_move_and_why_and_changes_nothing(web, ops, placed, catalog):
    doc = copy.deepcopy(BASE)
    doc["cells"]["payments"]["candidates"][0]["cordoned"] = True  # oci us-ashburn-1, payments' primary
    doc["cells"]["payments"]["candidates"][0]["cordonReason"] = "maintenance"
    before = (PlacementDecision.objects.count(), list(CellEnvironment.objects.values_list("placement_id", flat=True)))
    r = web(ops).post("/policy/", {"text": yaml.safe_dump(doc)})
    html = r.content.decode()
    assert r.status_code == 200
    assert "1 of 2 placements would change" in html
    assert "payments/prod" in html.split('data-testid="whatif-summary"')[1] and "cordoned: maintenance" in html
    assert (PlacementDecision.objects.count(), list(CellEnvironment.objects.values_list("placement_id", flat=True))) == before


def test_what_if_takes_an_uploaded_file(web, ops, placed):
    upload = SimpleUploadedFile("candidate.yaml", yaml.safe_dump(BASE).encode(), content_type="application/x-yaml")
    html = web(ops).post("/policy/", {"file": upload}).content.decode()
    assert "identical to the active policy" in html and "None of the 1 placement would change" in html


def test_what_if_without_a_candidate_is_a_400(web, ops, test_policy):
    r = web(ops).post("/policy/", {"text": "  "})
    assert r.status_code == 400 and "Paste a candidate policy or upload a file." in r.content.decode()


def test_what_if_starts_from_the_active_policy(web, ops, test_policy):
    html = web(ops).get("/policy/").content.decode()
    textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", html, re.S).group(1)
    assert "version: test-1" in textarea


def test_the_policy_page_reports_a_rejected_file_on_disk(web, ops, test_policy, placed):
    test_policy.write_text("tiers: [not, a, mapping]\n")
    html = web(ops).get("/policy/").content.decode()
    assert "The policy file on disk was rejected" in html and "test-1" in html
    assert "<code>tiers</code>: must be a mapping" in html
