"""The developer API end to end: the design document's calls, errors, idempotency, ownership."""
import pytest
from auditlog.models import LogEntry

from cells.models import Application, AuditEvent, CellEnvironment, MySQLClaim, ReplicationClaim
from scheduler.models import PlacementDecision

pytestmark = pytest.mark.django_db

MYSQL = {"cell": "payments", "environment": "prod", "tier": "C0", "drProfile": "gold", "size": "small", "storageGB": 50, "ha": True}
APP = {"cell": "payments", "environment": "prod", "tier": "C0", "drProfile": "gold",
       "app": {"image": "ghcr.io/acme/payments:1.0"},
       "traffic": {"publicHost": "payments.prod.company.com", "mode": "active-passive"}}


def post(client, url, body):
    return client.post(url, body, format="json")


def stored_counts():
    return (CellEnvironment.objects.count(), PlacementDecision.objects.count(), MySQLClaim.objects.count(),
            ReplicationClaim.objects.count(), Application.objects.count())


# -- the design document's three calls, on the shipped policy ------------------------------

def test_seed_calls_end_to_end_on_the_shipped_policy(api, dev):
    client = api(dev)
    r = post(client, "/api/mysql", MYSQL)
    assert r.status_code == 201, r.json()
    body = r.json()
    assert (body["cell"], body["environment"], body["tier"], body["drProfile"]) == ("payments", "prod", "C0", "gold")
    placement = body["placement"]
    assert placement["primary"]["cloud"] != placement["secondary"]["cloud"]
    assert set(placement["primary"]) == {"cloud", "region", "cluster"}
    assert placement["policyVersion"].startswith("2026.11.1+")
    claims = body["claims"]
    assert claims["primary"]["name"] == "payments-prod-mysql-primary" and claims["primary"]["status"] == "pending"
    assert claims["secondary"]["name"] == "payments-prod-mysql-secondary"
    repl = claims["replication"]
    assert (repl["tool"], repl["expectedRPOSeconds"]) == ("oci-goldengate", 60)
    assert (repl["source"], repl["target"]) == ("payments-prod-mysql-primary", "payments-prod-mysql-secondary")

    r = post(client, "/api/app", APP)
    assert r.status_code == 201, r.json()
    app = r.json()
    assert app["placement"]["decisionId"] == placement["decisionId"]  # sticky: same cell, same placement
    primary, secondary = app["applications"]["primary"], app["applications"]["secondary"]
    assert (primary["computeMode"], primary["replicas"]) == ("active", 3)
    assert (secondary["computeMode"], secondary["replicas"]) == ("warm", 1)
    assert primary["cluster"] == placement["primary"]["cluster"]
    assert app["traffic"] == {"provider": "oci-dns", "publicHost": "payments.prod.company.com", "mode": "active-passive",
                              "activeSide": "primary"}

    r = client.get("/api/status/payments/prod")
    assert r.status_code == 200
    status = r.json()
    assert status["placement"]["decisionId"] == placement["decisionId"]
    assert status["data"]["replication"]["expectedRPOSeconds"] == 60
    assert "lagSeconds" in status["data"]["replication"]
    assert status["compute"]["secondary"]["computeMode"] == "warm"
    assert status["traffic"]["activeSide"] == "primary"
    assert status["failover"] is None


def test_placement_explanation_is_served(api, dev):
    decision_id = post(api(dev), "/api/mysql", MYSQL).json()["placement"]["decisionId"]
    r = api(dev).get(f"/api/placements/{decision_id}")
    assert r.status_code == 200
    exp = r.json()["explanation"]
    assert exp["candidates"] and all("accepted" in c for c in exp["candidates"])
    rejected = [c for c in exp["candidates"] if not c["accepted"]]
    assert rejected and rejected[0]["rejections"][0]["gate"]
    assert exp["request"]["requiredCapabilities"] == ["managed-mysql", "mysql-ha", "goldengate"]


# -- idempotency, revisions, stickiness ------------------------------------------------------

def test_same_request_twice_is_200_with_the_same_resources(api, dev, test_policy):
    first = post(api(dev), "/api/mysql", MYSQL)
    second = post(api(dev), "/api/mysql", MYSQL)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["changed"] is False
    assert first.json()["claims"] == second.json()["claims"]
    assert stored_counts() == (1, 1, 2, 1, 0)


def test_changed_storage_updates_the_claims_with_a_new_revision(api, dev, test_policy):
    post(api(dev), "/api/mysql", MYSQL)
    r = post(api(dev), "/api/mysql", {**MYSQL, "storageGB": 80})
    assert r.status_code == 200 and r.json()["changed"] is True
    claims = r.json()["claims"]
    assert claims["primary"]["storageGB"] == 80 and claims["primary"]["revision"] == 2
    assert claims["secondary"]["revision"] == 2
    assert PlacementDecision.objects.count() == 1  # the placement did not move


def test_tier_defaults_fill_omitted_fields(api, dev, test_policy):
    r = post(api(dev), "/api/mysql", {"cell": "payments", "environment": "prod", "tier": "C0"})
    assert r.status_code == 201
    c = r.json()["claims"]["primary"]
    assert (c["size"], c["storageGB"], c["ha"]) == ("small", 50, True)
    assert r.json()["drProfile"] == "gold"


def test_changing_the_tier_of_a_placed_cell_is_a_conflict(api, dev, test_policy):
    post(api(dev), "/api/mysql", MYSQL)
    r = post(api(dev), "/api/mysql", {**MYSQL, "tier": "C1", "drProfile": "silver", "ha": False})
    assert r.status_code == 409
    assert "re-place" in r.json()["detail"]


def test_app_reuses_the_cells_placement_and_is_idempotent(api, dev, test_policy):
    post(api(dev), "/api/mysql", MYSQL)
    assert post(api(dev), "/api/app", APP).status_code == 201
    again = post(api(dev), "/api/app", APP)
    assert again.status_code == 200 and again.json()["changed"] is False
    new_image = post(api(dev), "/api/app", {**APP, "app": {"image": "ghcr.io/acme/payments:1.1"}})
    assert new_image.json()["applications"]["primary"]["revision"] == 2
    assert stored_counts() == (1, 1, 2, 1, 2)


@pytest.mark.parametrize("tier,profile,mode,replicas", [("C0", "gold", "warm", 1), ("C1", "silver", "pilot", 0), ("C2", "bronze", "cold", 0)])
def test_secondary_compute_mode_follows_the_dr_profile(api, dev, test_policy, tier, profile, mode, replicas):
    r = post(api(dev), "/api/app", {**APP, "tier": tier, "drProfile": profile})
    assert r.status_code == 201, r.json()
    secondary = r.json()["applications"]["secondary"]
    assert (secondary["computeMode"], secondary["replicas"]) == (mode, replicas)


def test_public_host_cannot_be_taken_from_another_cell_environment(api, dev, test_policy):
    post(api(dev), "/api/app", APP)
    r = post(api(dev), "/api/app", {**APP, "environment": "staging"})
    assert r.status_code == 409
    assert "traffic.publicHost" in r.json()["fields"]


# -- errors: field-level 400s, 422 with an explanation, nothing stored -------------------------

def test_c0_without_ha_is_refused_quoting_the_policy_rule(api, dev, test_policy):
    r = post(api(dev), "/api/mysql", {**MYSQL, "ha": False})
    assert r.status_code == 400
    assert r.json()["fields"]["ha"] == ["tier C0 requires ha=true (policy rule tiers.C0.gates.requireHA)"]
    assert stored_counts() == (0, 0, 0, 0, 0)


def test_dr_profile_not_allowed_for_the_tier(api, dev, test_policy):
    r = post(api(dev), "/api/mysql", {**MYSQL, "drProfile": "bronze"})
    assert r.status_code == 400
    assert "tiers.C0.allowedDrProfiles" in r.json()["fields"]["drProfile"][0]


def test_unregistered_cell_says_how_to_register_it(api, dev, test_policy):
    r = post(api(dev), "/api/mysql", {**MYSQL, "cell": "unknown-cell"})
    assert r.status_code == 400
    assert "policy/policy.yaml" in r.json()["fields"]["cell"][0]


def test_unknown_environment_of_a_cell(api, dev, test_policy):
    r = post(api(dev), "/api/mysql", {**MYSQL, "environment": "qa"})
    assert r.status_code == 400 and "environment" in r.json()["fields"]


@pytest.mark.parametrize("body,field", [
    ({**MYSQL, "storageGB": "lots"}, "storageGB"),
    ({**MYSQL, "storageGB": 0}, "storageGB"),
    ({**MYSQL, "cell": "Bad Name"}, "cell"),
    ({**MYSQL, "storagegb": 10}, "storagegb"),
    ({k: v for k, v in MYSQL.items() if k != "environment"}, "environment"),
    ({**MYSQL, "size": "gigantic"}, "size"),
])
def test_bad_fields_get_field_level_messages(api, dev, test_policy, body, field):
    r = post(api(dev), "/api/mysql", body)
    assert r.status_code == 400, r.json()
    assert field in r.json()["fields"]
    assert stored_counts() == (0, 0, 0, 0, 0)


def test_bad_app_fields_are_nested(api, dev, test_policy):
    r = post(api(dev), "/api/app", {**APP, "traffic": {"publicHost": "not a host"}})
    assert r.status_code == 400
    assert "traffic.publicHost" in r.json()["fields"]


def test_bad_json_is_a_400(api, dev):
    r = api(dev).post("/api/mysql", "{not json", content_type="application/json")
    assert r.status_code == 400 and r.json()["error"] == "parse_error"


def test_no_valid_placement_is_422_with_the_explanation_and_stores_nothing(api, dev, use_policy):
    from tests.helpers import policy_doc

    doc = policy_doc()
    doc["tiers"]["C0"]["gates"]["maxLatencyMs"] = 1
    use_policy(doc)
    r = post(api(dev), "/api/mysql", MYSQL)
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "no_placement"
    assert all(c["rejections"][0]["gate"] in ("maxLatencyMs", "capabilities") for c in body["explanation"]["candidates"])
    assert stored_counts() == (0, 0, 0, 0, 0)


# -- authentication and ownership --------------------------------------------------------------

@pytest.mark.parametrize("method,url", [("post", "/api/mysql"), ("post", "/api/app"), ("get", "/api/status/payments/prod"),
                                        ("post", "/api/failover"), ("get", "/api/placements/1"), ("get", "/api/cells"),
                                        ("get", "/api/policy"), ("get", "/api/schema/")])
def test_every_endpoint_requires_authentication(api, method, url):
    r = getattr(api(None), method)(url, {}, format="json") if method == "post" else api(None).get(url)
    assert r.status_code == 401


def test_token_authentication_works(client, dev, test_policy):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=dev)
    r = client.post("/api/mysql", MYSQL, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert r.status_code == 201


def test_developer_cannot_act_on_another_teams_cell(api, dev, outsider, test_policy):
    post(api(dev), "/api/mysql", MYSQL)
    assert post(api(outsider), "/api/mysql", MYSQL).status_code == 403
    assert api(outsider).get("/api/status/payments/prod").status_code == 403
    decision_id = PlacementDecision.objects.get().pk
    assert api(outsider).get(f"/api/placements/{decision_id}").status_code == 404
    assert api(outsider).get("/api/cells").json()["results"] == []


def test_teammate_and_operator_see_the_cell(api, dev, teammate, ops, test_policy):
    post(api(dev), "/api/mysql", MYSQL)
    assert api(teammate).get("/api/status/payments/prod").status_code == 200
    assert api(ops).get("/api/status/payments/prod").status_code == 200
    assert [c["cell"] for c in api(ops).get("/api/cells").json()["results"]] == ["payments"]


def test_status_of_unknown_cell_environment_is_404(api, dev, test_policy):
    assert api(dev).get("/api/status/payments/prod").status_code == 404


# -- operator re-place -------------------------------------------------------------------------

def test_replace_is_operator_only_and_records_a_new_decision(api, dev, ops, use_policy):
    from tests.helpers import policy_doc

    use_policy()
    post(api(dev), "/api/mysql", MYSQL)
    post(api(dev), "/api/app", APP)
    assert post(api(dev), "/api/cells/payments/prod/replace", {}).status_code == 403

    doc = policy_doc()
    doc["cells"]["payments"]["candidates"][0]["cordoned"] = True  # the current primary
    use_policy(doc)
    r = post(api(ops), "/api/cells/payments/prod/replace", {"note": "drain oke-iad-1"})
    assert r.status_code == 200, r.json()
    assert r.json()["moved"] is True
    assert PlacementDecision.objects.count() == 2
    latest = PlacementDecision.objects.first()
    assert latest.reason == "replace" and latest.note == "drain oke-iad-1" and latest.actor == ops
    primary = MySQLClaim.objects.get(side="primary")
    assert primary.cluster != "oke-iad-1" and primary.revision == 2
    assert Application.objects.get(side="primary").cluster == primary.cluster


# -- audit -------------------------------------------------------------------------------------

def test_changes_are_audited_with_the_acting_user(api, dev, test_policy):
    post(api(dev), "/api/mysql", MYSQL)
    post(api(dev), "/api/mysql", {**MYSQL, "storageGB": 60})
    claim = MySQLClaim.objects.get(side="primary")
    entries = LogEntry.objects.get_for_object(claim)
    assert entries.count() == 2
    assert {e.actor for e in entries} == {dev}
    assert entries.first().changes_dict["storage_gb"] == ["50", "60"]
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor__username"))
    assert actions == [("scheduler.placement.decided", "dev"), ("cells.mysql.created", "dev"), ("cells.mysql.updated", "dev")]


def test_openapi_schema_is_served(api, dev):
    r = api(dev).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert r.status_code == 200
    assert "/api/mysql" in r.content.decode()
