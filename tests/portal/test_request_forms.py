"""Request forms: the contract's fields, defaults from the policy, the live placement preview, the service's errors."""
import re

import pytest

from cells.models import Application, CellEnvironment, MySQLClaim
from scheduler.models import PlacementDecision

from .conftest import htmx

pytestmark = pytest.mark.django_db

FORM = {"cell": "payments", "environment": "prod", "tier": "C0", "drProfile": "gold", "size": "small", "storageGB": "50", "ha": "on"}


def selected(html: str, name: str) -> str | None:
    """The selected option of select `name`."""
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S).group(0)
    m = re.search(r'<option value="([^"]*)"[^>]*selected', select)
    return m.group(1) if m else None


def options(html: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S).group(0)
    return re.findall(r'<option value="([^"]*)"', select)


def value(html: str, name: str) -> str | None:
    m = re.search(rf'<input type="\w+" name="{name}" value="([^"]*)"', html)
    return m.group(1) if m else None


def errors_of(html: str, name: str) -> str:
    return re.search(rf'<div class="field-errors" id="errors-{name}"[^>]*>(.*?)</div>', html, re.S).group(1)


def chosen(html: str) -> dict:
    """The chosen primary and secondary of the preview, as 'cloud region'."""
    out = {}
    for role in ("primary", "secondary"):
        m = re.search(rf'class="chosen-side chosen-{role}">.*?<p class="site"><span class="cloud cloud-(\w+)">\w+</span> ([\w-]+)</p>', html, re.S)
        out[role] = f"{m.group(1)} {m.group(2)}" if m else None
    return out


# -- the form ----------------------------------------------------------------------------

def test_the_mysql_form_asks_only_for_the_contract_and_is_prefilled_with_the_tiers_defaults(web, dev, test_policy):
    html = web(dev).get("/request/mysql/?cell=payments").content.decode()
    form = html[html.index('<form id="request-form"'):html.index("</form>", html.index('<form id="request-form"'))]
    names = sorted(set(re.findall(r'<(?:input|select|textarea)[^>]*name="(\w+)"', form)) - {"csrfmiddlewaretoken"})
    assert names == sorted(["cell", "environment", "tier", "drProfile", "size", "storageGB", "ha"])
    assert selected(html, "cell") == "payments" and options(html, "cell") == ["payments"]  # the user's cells only
    assert options(html, "environment") == ["prod", "staging", "dev"]  # the cell's environments in the policy
    assert selected(html, "tier") == "C0"
    # C0's defaults in the test policy: small, 50 GB, ha, gold
    assert (selected(html, "drProfile"), selected(html, "size"), value(html, "storageGB")) == ("gold", "small", "50")
    assert re.search(r'<input type="checkbox" name="ha"[^>]*checked', html)
    assert 'name="csrfmiddlewaretoken"' in html
    for field in ("cell", "environment", "tier", "drProfile", "size", "storageGB", "ha"):
        assert f'for="id_{field}"' in html  # every field has a label


def test_the_form_shows_the_placement_before_submitting(web, dev, test_policy):
    html = web(dev).get("/request/mysql/?cell=payments").content.decode()
    assert 'id="placement-preview"' in html
    assert chosen(html) == {"primary": "oci us-ashburn-1", "secondary": "aws us-east-1"}
    assert "gate <code>capabilities</code>: gcp lacks goldengate" in html  # the rejected candidate and its gate
    assert "latency <span class=\"muted\">×0.5</span>" in html  # one column per weight
    assert "RPO / RTO" in html and "60 s / 5 min" in html


def test_changing_the_tier_changes_the_preview_and_refills_the_tiers_defaults(web, dev, test_policy):
    client = web(dev)
    r = client.get("/request/mysql/", {**FORM, "tier": "C2"}, **htmx("placement-preview", trigger_name="tier"))
    html = r.content.decode()
    assert r.status_code == 200 and "<html" not in html
    assert html.startswith('<section id="placement-preview"')
    # C2 bronze: cheapest first, secondary on another cluster
    assert chosen(html) == {"primary": "oci us-ashburn-1", "secondary": "oci us-phoenix-1"}
    # the tier's defaults come back out of band: drProfile bronze, 10 GB, no ha
    oob = re.search(r'<div class="field field-select" id="field-drProfile" hx-swap-oob="true">.*?</div>', html, re.S).group(0)
    assert selected(oob, "drProfile") == "bronze"
    assert value(html, "storageGB") == "10"
    assert not re.search(r'<input type="checkbox" name="ha"[^>]*checked', html)
    assert 'id="field-tier"' not in html  # the field the user is on is never replaced
    assert "HX-Request" in r["Vary"]


def test_changing_the_cell_offers_that_cells_environments(web, ops, test_policy):
    r = web(ops).get("/request/mysql/", {**FORM, "cell": "catalog", "environment": "staging"},
                     **htmx("placement-preview", trigger_name="cell"))
    html = r.content.decode()
    assert options(html, "environment") == ["prod", "staging", "dev"]
    assert selected(html, "environment") == "staging"
    assert chosen(html)["primary"] == "aws us-west-2"


def test_a_broken_policy_rule_shows_next_to_its_field_while_typing(web, dev, test_policy):
    data = {**FORM}
    del data["ha"]
    html = web(dev).get("/request/mysql/", data, **htmx("placement-preview", trigger_name="ha")).content.decode()
    assert "tier C0 requires ha=true (policy rule tiers.C0.gates.requireHA)" in errors_of(html, "ha")
    assert 'hx-swap-oob="true"' in html
    assert errors_of(html, "drProfile") == ""  # the other fields' errors are cleared


def test_the_preview_for_a_placed_cell_says_it_keeps_its_placement(web, dev, placed):
    html = web(dev).get("/request/mysql/?cell=payments&environment=prod").content.decode()
    assert "payments/prod is already placed" in html
    assert f"decision #{placed.placement_id}" in html


# -- submitting -----------------------------------------------------------------------------

def test_submitting_requests_the_mysql_and_opens_the_cell_page(web, dev, test_policy):
    client = web(dev)
    r = client.post("/request/mysql/", FORM)
    assert r.status_code == 302 and r["Location"] == "/cells/payments/prod/"
    ce = CellEnvironment.objects.get()
    assert (ce.tier, ce.dr_profile) == ("C0", "gold")
    assert MySQLClaim.objects.filter(cell_env=ce).count() == 2
    page = client.get(r["Location"]).content.decode()
    assert "MySQL for payments/prod requested." in page


def test_a_policy_error_on_submit_is_shown_next_to_its_field_and_nothing_is_stored(web, dev, test_policy):
    r = web(dev).post("/request/mysql/", {**FORM, "drProfile": "bronze"})
    html = r.content.decode()
    assert r.status_code == 400
    assert "tier C0 allows DR profiles gold (policy rule tiers.C0.allowedDrProfiles)" in errors_of(html, "drProfile")
    assert selected(html, "drProfile") == "bronze"  # what the user typed stays
    assert CellEnvironment.objects.count() == 0 and PlacementDecision.objects.count() == 0


def test_a_field_format_error_is_a_400_next_to_the_field(web, dev, test_policy):
    r = web(dev).post("/request/mysql/", {**FORM, "storageGB": "lots"})
    assert r.status_code == 400
    assert "Enter a whole number." in errors_of(r.content.decode(), "storageGB")


def test_a_conflict_with_the_placed_cell_is_a_409_next_to_the_tier(web, dev, placed):
    r = web(dev).post("/request/mysql/", {**FORM, "tier": "C1", "drProfile": "silver", "ha": ""})
    html = r.content.decode()
    assert r.status_code == 409
    assert "is C0" in errors_of(html, "tier") and "is gold" in errors_of(html, "drProfile")


def test_a_developer_cannot_request_for_another_teams_cell(web, outsider, test_policy):
    r = web(outsider).post("/request/mysql/", FORM)
    assert r.status_code == 400
    assert "Select a valid choice" in errors_of(r.content.decode(), "cell")
    assert CellEnvironment.objects.count() == 0


def test_the_app_form_requests_applications_with_the_profiles_compute_modes(web, dev, test_policy):
    client = web(dev)
    html = client.get("/request/app/?cell=payments").content.decode()
    assert "primary active × 3, secondary warm × 1" in html
    assert "This field is required" not in html  # nothing typed yet: no error shown
    r = client.post("/request/app/", {"cell": "payments", "environment": "prod", "tier": "C0", "drProfile": "gold",
                                      "image": "ghcr.io/acme/payments:1.0", "publicHost": "payments.prod.company.com",
                                      "trafficMode": "active-passive"})
    assert r.status_code == 302
    apps = {a.side: a for a in Application.objects.all()}
    assert (apps["secondary"].compute_mode, apps["secondary"].replicas) == ("warm", 1)


def test_the_app_form_shows_a_taken_public_host_next_to_its_field(web, dev, placed, ops):
    data = {"cell": "payments", "environment": "staging", "tier": "C0", "drProfile": "gold",
            "image": "ghcr.io/acme/payments:1.0", "publicHost": "payments.prod.company.com", "trafficMode": "active-passive"}
    r = web(dev).post("/request/app/", data)
    assert r.status_code == 409
    assert "already used by payments/prod" in errors_of(r.content.decode(), "publicHost")


def test_a_user_without_cells_is_told_why_there_is_no_form(web, test_policy):
    from django.contrib.auth.models import User

    html = web(User.objects.create_user("loner")).get("/request/mysql/").content.decode()
    assert "No cell to request for" in html and "<form id=\"request-form\"" not in html


def test_no_valid_placement_is_explained_before_and_after_submitting(web, dev, test_policy):
    client = web(dev)
    html = client.get("/request/mysql/", {**FORM, "storageGB": "5000"}, **htmx("placement-preview", "storageGB")).content.decode()
    assert "No valid placement." in html and "no candidate of cell payments passes the gates of tier C0" in html
    assert "needs 5000 GB storage, max 4096 GB" in html
    r = client.post("/request/mysql/", {**FORM, "storageGB": "5000"})
    assert r.status_code == 422
    assert "needs 5000 GB storage, max 4096 GB" in r.content.decode()
    assert CellEnvironment.objects.count() == 0


def test_a_storage_shrink_is_shown_next_to_the_storage_field_and_nothing_changes(web, dev, placed):
    r = web(dev).post("/request/mysql/", {**FORM, "storageGB": "1"})
    html = r.content.decode()
    assert r.status_code == 400
    assert "storage can only grow: 50 GB allocated, 1 GB requested" in errors_of(html, "storageGB")
    assert value(html, "storageGB") == "1"  # what the user typed stays
    assert set(MySQLClaim.objects.values_list("storage_gb", "revision")) == {(50, 1)}


def test_a_size_change_warns_that_it_is_not_online_on_each_cloud(web, dev, placed):
    client = web(dev)
    r = client.post("/request/mysql/", {**FORM, "size": "large"})
    assert r.status_code == 302
    page = client.get(r["Location"]).content.decode()
    assert "MySQL for payments/prod updated." in page
    assert "primary (oci): size small → large is not an online change" in page
    assert "secondary (aws): size small → large is not an online change" in page
