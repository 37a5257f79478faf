"""Changing a placed MySQL: storage only grows, and each side says whether its cloud does the change online."""
import pytest
from auditlog.models import LogEntry

from cells import changes, services
from cells.errors import InvalidRequest
from cells.models import AuditEvent, Delivery, MySQLClaim, ReplicationClaim
from scheduler.models import PlacementDecision

pytestmark = pytest.mark.django_db

MYSQL = {"cell": "payments", "environment": "prod", "tier": "C0", "drProfile": "gold", "size": "small", "storageGB": 50,
         "ha": True}
SERVICE = dict(cell="payments", environment="prod", tier="C0", dr_profile="gold", size="small", storage_gb=50, ha=True)


def post(client, body):
    return client.post("/api/mysql", body, format="json")


def snapshot():
    """Everything a refused request must leave alone."""
    claims = sorted(MySQLClaim.objects.values_list("side", "storage_gb", "revision", "status"))
    return (claims, ReplicationClaim.objects.count(), Delivery.objects.count(), AuditEvent.objects.count(),
            LogEntry.objects.count(), PlacementDecision.objects.count())


# -- storage never shrinks ---------------------------------------------------------------------

def test_a_smaller_storage_is_a_400_on_storage_gb_and_changes_nothing(api, dev, test_policy):
    assert post(api(dev), MYSQL).status_code == 201
    before = snapshot()

    r = post(api(dev), {**MYSQL, "storageGB": 1})

    assert r.status_code == 400, r.json()
    body = r.json()
    assert body["error"] == "invalid"
    assert body["fields"]["storageGB"][0].startswith("storage can only grow: 50 GB allocated, 1 GB requested")
    assert "Cloud SQL" in body["fields"]["storageGB"][0]
    assert snapshot() == before  # no revision, no delivery, no audit entry, no field diff


def test_the_service_refuses_a_shrink_with_a_field_error(dev, test_policy):
    services.request_mysql(dev, **{**SERVICE, "storage_gb": 80})
    with pytest.raises(InvalidRequest) as err:
        services.request_mysql(dev, **{**SERVICE, "storage_gb": 50})
    assert err.value.status == 400
    assert list(err.value.fields) == ["storageGB"]
    assert "80 GB allocated, 50 GB requested" in err.value.fields["storageGB"][0]
    assert set(MySQLClaim.objects.values_list("storage_gb", flat=True)) == {80}


def test_the_same_or_a_larger_storage_is_accepted(api, dev, test_policy):
    post(api(dev), MYSQL)
    assert post(api(dev), MYSQL).json()["changed"] is False
    r = post(api(dev), {**MYSQL, "storageGB": 60})
    assert r.status_code == 200 and r.json()["claims"]["primary"]["storageGB"] == 60


def test_omitting_storage_keeps_what_is_allocated_instead_of_the_smaller_tier_default(api, dev, test_policy):
    post(api(dev), {**MYSQL, "storageGB": 80})  # the C0 default is 50
    r = post(api(dev), {k: v for k, v in MYSQL.items() if k != "storageGB"})
    assert r.status_code == 200, r.json()
    assert r.json()["changed"] is False and r.json()["claims"]["primary"]["storageGB"] == 80


def test_a_decommissioned_environment_may_start_smaller(dev, test_policy):
    services.request_mysql(dev, **{**SERVICE, "storage_gb": 80})
    services.decommission(dev, cell="payments", environment="prod")  # its databases are deleted
    outcome = services.request_mysql(dev, **{**SERVICE, "storage_gb": 50})
    assert set(MySQLClaim.objects.values_list("storage_gb", flat=True)) == {50}
    assert outcome.change_impact == []  # new databases: nothing changes on a live one


def test_a_replace_keeps_the_allocated_storage(dev, ops, test_policy):
    services.request_mysql(dev, **{**SERVICE, "storage_gb": 80})
    services.replace_cell(ops, cell="payments", environment="prod", note="re-place")
    assert set(MySQLClaim.objects.values_list("storage_gb", flat=True)) == {80}


# -- online or not, per side -------------------------------------------------------------------

def test_a_size_change_says_per_side_that_it_is_not_online_on_that_cloud(api, dev, test_policy):
    first = post(api(dev), MYSQL).json()
    clouds = {side: first["placement"][side]["cloud"] for side in ("primary", "secondary")}
    assert clouds == {"primary": "oci", "secondary": "aws"}

    r = post(api(dev), {**MYSQL, "size": "large"})

    assert r.status_code == 200 and r.json()["changed"] is True
    impact = r.json()["changeImpact"]
    assert [(e["side"], e["cloud"], e["field"], e["from"], e["to"], e["online"]) for e in impact] == [
        ("primary", "oci", "size", "small", "large", False),
        ("secondary", "aws", "size", "small", "large", False),
    ]
    assert "restart" in impact[1]["detail"] or "reboot" in impact[1]["detail"]
    assert impact[0]["detail"] == changes.FACTS["size"]["oci"].detail and impact[0]["source"]
    event = AuditEvent.objects.filter(action="cells.mysql.updated").get()
    assert event.data["changeImpact"] == impact  # recorded with the change
    assert "not online: primary size on oci, secondary size on aws" in event.message


def test_storage_growth_is_reported_online_on_both_sides(api, dev, test_policy):
    post(api(dev), MYSQL)
    impact = post(api(dev), {**MYSQL, "storageGB": 100}).json()["changeImpact"]
    assert [(e["side"], e["field"], e["online"]) for e in impact] == [("primary", "storageGB", True),
                                                                       ("secondary", "storageGB", True)]


def test_nothing_changed_means_no_impact_and_a_new_claim_has_none(api, dev, test_policy):
    assert post(api(dev), MYSQL).json()["changeImpact"] == []
    assert post(api(dev), MYSQL).json()["changeImpact"] == []


def test_every_field_has_a_fact_for_every_cloud_of_the_shipped_policy():
    from policy.active import active_policy

    for field in changes.FIELDS:
        for cloud in active_policy().spec.providers:
            f = changes.fact(field, cloud)
            assert f is not changes.UNKNOWN, (field, cloud)
            assert f.detail
    assert all(f.online for f in changes.FACTS["storageGB"].values())  # growth is online everywhere
    assert not any(f.online for f in changes.FACTS["size"].values())  # a shape change never is
