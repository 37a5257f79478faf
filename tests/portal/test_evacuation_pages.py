"""The evacuation pages: operators only; the dry-run plan while choosing the scope; confirm by typing it; the live
progress page and its report."""
import re

import pytest

from dr import evacuations
from dr.models import Evacuation

from tests.dr.helpers import ready_cell
from .conftest import htmx

pytestmark = pytest.mark.django_db


@pytest.fixture
def in_ashburn(dev, test_policy, settings):
    settings.IDP_SIMULATOR_READY_DELAY = 0
    settings.IDP_EVACUATION_THREADS = 1  # threads would not see this test's transaction
    return [ready_cell(dev, "C0", "gold", env="prod", host="payments.prod.company.com"),
            ready_cell(dev, "C1", "silver", env="staging", host="payments.staging.company.com")]


def test_developers_cannot_reach_the_evacuation_pages(web, dev, test_policy):
    client = web(dev)
    assert client.get("/evacuations/").status_code == 403
    assert 'href="/evacuations/"' not in client.get("/").content.decode()


def test_choosing_the_scope_shows_the_plan_and_changes_nothing(web, ops, in_ashburn):
    client = web(ops)
    html = client.get("/evacuations/").content.decode()
    assert "Evacuate a cloud, region or cluster" in html and 'href="/evacuations/"' in html
    r = client.get("/evacuations/", {"cloud": "oci", "region": "us-ashburn-1"}, **htmx("evacuation-plan"))
    html = r.content.decode()
    assert r.status_code == 200 and html.startswith('<section id="evacuation-plan"')
    assert "<strong>2</strong> cell environments would move" in html
    rows = re.findall(r"<td>(payments/\w+)", html)
    assert rows == ["payments/prod", "payments/staging"]  # C0 first
    assert '<code id="scope-to-type" hx-swap-oob="true">oci/us-ashburn-1</code>' in html
    assert not Evacuation.objects.exists()


def test_starting_needs_the_scope_typed_and_a_reason(web, ops, in_ashburn):
    client = web(ops)
    data = {"cloud": "oci", "region": "us-ashburn-1", "reason": "", "confirmScope": "oci"}
    html = client.post("/evacuations/", data).content.decode()
    assert "type oci/us-ashburn-1 to confirm" in html and not Evacuation.objects.exists()
    html = client.post("/evacuations/", {**data, "confirmScope": "oci/us-ashburn-1"}).content.decode()
    assert "required: say what happened" in html and not Evacuation.objects.exists()
    r = client.post("/evacuations/", {**data, "confirmScope": "oci/us-ashburn-1", "reason": "ashburn is down"})
    evac = Evacuation.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/evacuations/{evac.pk}/"


def test_the_progress_page_is_live_then_shows_the_report(web, ops, in_ashburn):
    evac, _ = evacuations.start(ops, {"cloud": "oci", "region": "us-ashburn-1", "reason": "ashburn is down"})
    client = web(ops)
    html = client.get(f"/evacuations/{evac.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in html and "waiting for its wave" in html and "Pause" in html
    evacuations.advance(evac.pk)
    r = client.get(f"/evacuations/{evac.pk}/", **htmx("evacuation-live"))
    html = r.content.decode()
    assert r.status_code == 286  # ended: polling stops
    assert "Report: RTO and data loss per tier" in html and html.count("✓</span> moved") == 2
    assert '<div class="actions" id="evacuation-actions" hx-swap-oob="true"></div>' in html  # no Pause/Abort left
    assert "Pause</button>" not in client.get(f"/evacuations/{evac.pk}/").content.decode()
    assert re.search(r"GitOps commits? · \d+ DNS API call", html)


def test_pause_and_abort_from_the_page(web, ops, in_ashburn):
    evac, _ = evacuations.start(ops, {"cloud": "oci", "region": "us-ashburn-1", "reason": "ashburn is down"})
    client = web(ops)
    assert client.post(f"/evacuations/{evac.pk}/pause/").status_code == 302
    evac.refresh_from_db()
    assert evac.state == "paused"
    client.post(f"/evacuations/{evac.pk}/abort/", {"reason": "false alarm"})
    evac.refresh_from_db()
    assert evac.state == "aborted"
    assert "aborted" in client.get(f"/evacuations/{evac.pk}/").content.decode()


def test_nothing_to_evacuate_says_why_each_cell_cannot_move(web, ops, in_ashburn):
    from cells.models import Application

    Application.objects.filter(side="secondary").update(status="provisioning")  # no ready standby anywhere
    data = {"cloud": "oci", "region": "us-ashburn-1", "reason": "ashburn is down", "confirmScope": "oci/us-ashburn-1"}
    r = web(ops).post("/evacuations/", data)
    html = r.content.decode()
    assert r.status_code == 409 and "Nothing to evacuate from oci/us-ashburn-1" in html
    plan = html[html.index("evacuation-plan"):]
    assert "<strong>2</strong> cannot." in plan and "is provisioning" in plan, plan[:3000]
    assert not Evacuation.objects.exists()
