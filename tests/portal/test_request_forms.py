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
    # defaultsOf: bookkeeping (the tier whose defaults the form holds), not a question
    names = sorted(set(re.findall(r'<(?:input|select|textarea)[^>]*name="(\w+)"', form)) - {"csrfmiddlewaretoken", "defaultsOf"})
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
    r = client.get("/request/mysql/", {**FORM, "tier": "C2", "defaultsOf": "C0"}, **htmx("placement-preview", trigger_name="tier"))
    html = r.content.decode()
    assert r.status_code == 200 and "<html" not in html
    assert html.startswith('<section id="placement-preview"')
    # C2 bronze: cheapest first, secondary on another cluster
    assert chosen(html) == {"primary": "oci us-ashburn-1", "secondary": "oci us-phoenix-1"}
    # the tier's defaults come back out of band: drProfile bronze, 10 GB, no ha
    oob = re.search(r'<div class="field field-\w+" id="field-drProfile" hx-swap-oob="true">.*?</div>', html, re.S).group(0)
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


# -- every error at once, and what a change of tier does ------------------------------------------

def test_every_error_shows_at_once_with_a_summary_that_links_to_each_field(web, dev, test_policy):
    # a format error (storage), a policy rule (C0 allows gold only) and another policy rule (C0 requires ha)
    data = {**FORM, "storageGB": "lots", "drProfile": "bronze"}
    del data["ha"]
    r = web(dev).post("/request/mysql/", data)
    html = r.content.decode()
    assert r.status_code == 400
    assert "Enter a whole number." in errors_of(html, "storageGB")
    assert "tier C0 allows DR profiles gold" in errors_of(html, "drProfile")
    assert "tier C0 requires ha=true" in errors_of(html, "ha")
    summary = re.search(r'<div class="error-summary" id="error-summary" role="alert" tabindex="-1".*?</div>', html, re.S).group(0)
    assert "3 problems to fix" in summary
    links = re.findall(r'<a href="#id_(\w+)">', summary)
    assert links == ["drProfile", "storageGB", "ha"]  # in the order of the form's fields
    assert CellEnvironment.objects.count() == 0


def test_no_valid_placement_points_at_the_field_that_causes_it(web, dev, api, test_policy):
    r = web(dev).post("/request/mysql/", {**FORM, "storageGB": "5000"})
    html = r.content.decode()
    assert r.status_code == 422
    assert "can hold 5000 GB" in errors_of(html, "storageGB") and "up to 4096 GB would place" in errors_of(html, "storageGB")
    assert 'Change <a href="#id_storageGB">Storage (GB)</a>' in html
    # the API says the same, by field
    body = api(dev).post("/api/mysql", {"cell": "payments", "environment": "prod", "tier": "C0", "storageGB": 5000},
                         format="json").json()
    assert "up to 4096 GB would place" in body["fields"]["storageGB"][0]


def test_no_valid_placement_blames_the_dr_profile_or_ha_when_changing_it_would_place(web, dev, use_policy):
    from tests.helpers import BASE, cand, policy_doc

    only_oci = policy_doc(cells={**BASE["cells"], "payments": {"team": "payments", "candidates": [
        cand("oci", "us-ashburn-1", "oke-iad-1"), cand("oci", "us-phoenix-1", "oke-phx-1")]}})
    use_policy(only_oci)
    data = {**FORM, "tier": "C1", "drProfile": "gold", "defaultsOf": "C1"}
    html = web(dev).get("/request/mysql/", data, **htmx("placement-preview", trigger_name="drProfile")).content.decode()
    assert "No valid placement." in html
    assert "DR profile gold has no valid placement for cell payments" in errors_of(html, "drProfile")
    assert "silver would place" in errors_of(html, "drProfile")

    no_ha = policy_doc()
    for cloud in ("oci", "aws", "gcp"):
        no_ha["providers"][cloud]["capabilities"].remove("mysql-ha")
    use_policy(no_ha)
    html = web(dev).get("/request/mysql/", data, **htmx("placement-preview", trigger_name="ha")).content.decode()
    assert "offers high availability" in errors_of(html, "ha") and "without ha it would place" in errors_of(html, "ha")


def test_changing_the_tier_keeps_what_the_user_typed_and_says_which_defaults_it_applied(web, dev, test_policy):
    typed = {**FORM, "storageGB": "500", "defaultsOf": "C0", "tier": "C2"}  # C0's defaults, but 500 GB typed
    html = web(dev).get("/request/mysql/", typed, **htmx("placement-preview", trigger_name="tier")).content.decode()
    assert value(html, "storageGB") is None  # not re-rendered: the typed 500 stays in the browser
    assert selected(html, "drProfile") == "bronze"  # the default the user had not changed
    note = re.search(r'<div id="defaults-note".*?</div>', html, re.S).group(0)
    assert "C2 defaults applied:" in note and "DR profile bronze" in note and "High availability (ha) off" in note
    assert "Kept what you typed: Storage (GB) 500 GB" in note
    assert re.search(r'<input type="hidden" name="defaultsOf" id="defaults-of" value="C2" hx-swap-oob="true">', html)


def test_a_typed_value_the_new_tier_forbids_gets_the_default(web, dev, test_policy):
    typed = {**FORM, "tier": "C2", "drProfile": "silver", "defaultsOf": "C2"}  # silver typed under C2
    del typed["ha"]
    html = web(dev).get("/request/mysql/", {**typed, "tier": "C0"}, **htmx("placement-preview", trigger_name="tier")).content.decode()
    assert selected(html, "drProfile") == "gold"  # C0 allows gold only
    assert re.search(r'<input type="checkbox" name="ha"[^>]*checked', html)  # C0 requires ha


def test_the_dr_profiles_the_tier_forbids_are_disabled(web, dev, test_policy):
    html = web(dev).get("/request/mysql/?cell=payments").content.decode()  # C0: gold only
    select = re.search(r'<select name="drProfile".*?</select>', html, re.S).group(0)
    assert re.search(r'<option value="silver" disabled>silver — .*?\(not allowed for this tier\)</option>', select)
    assert re.search(r'<option value="bronze" disabled>', select)
    assert not re.search(r'<option value="gold"[^>]*disabled', select)


def test_the_app_form_shows_policy_rules_of_the_tier_and_of_the_host_and_image_at_once(web, dev, use_policy):
    from tests.helpers import policy_doc

    use_policy(policy_doc(publicHosts={"default": {"dnsZones": ["{cell}.{environment}.company.com"]}},
                          images={"allowedRegistries": ["ghcr.io/acme"]}))
    r = web(dev).post("/request/app/", {"cell": "payments", "environment": "prod", "tier": "C0", "drProfile": "bronze",
                                        "image": "docker.io/evil/miner:1", "publicHost": "payments.example.org",
                                        "trafficMode": "active-passive"})
    html = r.content.decode()
    assert r.status_code == 400
    assert "tier C0 allows DR profiles gold" in errors_of(html, "drProfile")
    assert "publicHosts" in errors_of(html, "publicHost") and "allowedRegistries" in errors_of(html, "image")
    assert "3 problems to fix" in html
