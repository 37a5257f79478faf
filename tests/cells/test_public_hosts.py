"""A public host belongs to one live cell environment (a database constraint, not a check-then-insert), and an app
may only serve a host in its team's DNS zones and run an image from an allowed registry (the policy's rules)."""
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from cells import services
from cells.errors import Conflict, InvalidRequest
from cells.models import Application, CellEnvironment
from cells.registry import sync_registry
from policy.active import active_policy, record_version
from tests.helpers import BASE, cand, policy_doc

APP = {"cell": "payments", "environment": "prod", "tier": "C2", "drProfile": "bronze",
       "app": {"image": "ghcr.io/acme/payments:1.0"},
       "traffic": {"publicHost": "payments.prod.company.com", "mode": "active-passive"}}


def app_body(cell="payments", environment="prod", host="payments.prod.company.com", image="ghcr.io/acme/payments:1.0"):
    return {**APP, "cell": cell, "environment": environment, "app": {"image": image},
            "traffic": {"publicHost": host, "mode": "active-passive"}}


# -- one live cell environment per public host -----------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_requests_for_one_public_host_make_one_holder(use_policy, ops):
    """10 cells of 10 teams request the same host at once, each on its own connection: one 201, nine 409s, one
    holder. (Cells of one team would queue behind the lock each request takes on its cell and team.)"""
    cells = {f"shop{i}": {"team": f"team{i}", "environments": ["prod"],
                          "candidates": [cand("oci", "us-ashburn-1", "oke-iad-1"), cand("oci", "us-phoenix-1", "oke-phx-1")]}
             for i in range(10)}
    use_policy(policy_doc(cells=cells))
    # The policy version and the cells are stored first, as in a running control plane: the requests then overlap
    # only in what each does for its own cell (a shared first insert would queue them one behind the other).
    policy = active_policy()
    record_version(policy)
    sync_registry(policy)
    barrier = threading.Barrier(10)
    answers, errors = [], []

    def request(cell):
        client = APIClient()
        client.force_authenticate(ops)
        try:
            barrier.wait()
            r = client.post("/api/app", app_body(cell=cell, host="www.company.com"), format="json")
            answers.append((r.status_code, r.json()))
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(cell,)) for cell in cells]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [409] * 9, answers
    holder = CellEnvironment.objects.get(public_host="www.company.com")
    for status, body in answers:
        if status == 409:
            assert body["error"] == "conflict"
            assert body["fields"]["traffic.publicHost"] == [f"already used by {holder}"]
            assert body["heldBy"] == str(holder)
    # nothing half-made by the refused requests: one environment, its two applications
    assert CellEnvironment.objects.count() == 1
    assert set(Application.objects.values_list("cell_env", flat=True)) == {holder.pk}
    assert Application.objects.filter(public_host="www.company.com").count() == 2


@pytest.mark.django_db
def test_the_database_refuses_a_second_live_holder_of_a_public_host(dev, test_policy):
    from django.db import IntegrityError, transaction

    services.request_app(dev, **{**services_app(), "environment": "prod"})
    services.request_app(dev, **{**services_app(), "environment": "staging", "public_host": "other.company.com"})
    staging = CellEnvironment.objects.get(environment="staging")
    staging.public_host = "payments.prod.company.com"
    with pytest.raises(IntegrityError), transaction.atomic():
        staging.save()


def services_app(**kw):
    return {"cell": "payments", "environment": "prod", "tier": "C2", "dr_profile": "bronze",
            "image": "ghcr.io/acme/payments:1.0", "public_host": "payments.prod.company.com", **kw}


@pytest.mark.django_db
def test_a_decommissioned_environment_frees_its_host_and_cannot_take_it_back_once_reused(dev, test_policy):
    services.request_app(dev, **services_app())
    services.decommission(dev, cell="payments", environment="prod")
    # another environment may now serve the host
    services.request_app(dev, **services_app(environment="staging"))
    # reviving prod with its old host is a conflict naming the holder, and changes nothing
    with pytest.raises(Conflict) as exc:
        services.request_app(dev, **services_app())
    assert exc.value.fields == {"traffic.publicHost": ["already used by payments/staging"]}
    assert CellEnvironment.objects.get(environment="prod").decommissioned_at is not None
    # with a host of its own it comes back
    services.request_app(dev, **services_app(public_host="payments2.prod.company.com"))
    prod = CellEnvironment.objects.get(environment="prod")
    assert (prod.decommissioned_at, prod.public_host) == (None, "payments2.prod.company.com")


@pytest.mark.django_db
def test_an_app_may_change_its_own_public_host(dev, test_policy):
    services.request_app(dev, **services_app())
    outcome = services.request_app(dev, **services_app(public_host="new.payments.prod.company.com"))
    assert outcome.changed
    assert CellEnvironment.objects.get().public_host == "new.payments.prod.company.com"
    assert set(Application.objects.values_list("public_host", flat=True)) == {"new.payments.prod.company.com"}


# -- the policy's rules: DNS zones per team, allowed image registries ------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("host", ["payments.prod.company.com", "api.payments.prod.company.com", "checkout.pay.company.com"])
def test_the_shipped_policy_allows_hosts_in_the_teams_zones(api, dev, host):
    r = api(dev).post("/api/app", app_body(host=host), format="json")
    assert r.status_code == 201, r.json()


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["login.company.com", "checkout.prod.company.com", "payments.staging.company.com",
                                  "shop.company.com", "evilpay.company.com", "payments.prod.company.com.evil.net"])
def test_a_host_outside_the_teams_zones_is_refused_naming_the_rule(api, dev, host):
    r = api(dev).post("/api/app", app_body(host=host), format="json")
    assert r.status_code == 400, r.json()
    message = r.json()["fields"]["traffic.publicHost"][0]
    assert "publicHosts.default.dnsZones" in message and "publicHosts.teams.payments.dnsZones" in message
    assert "payments.prod.company.com, pay.company.com" in message
    assert CellEnvironment.objects.count() == 0


@pytest.mark.django_db
def test_a_team_uses_its_own_zone_not_another_teams(api, dev, outsider):
    r = api(outsider).post("/api/app", app_body(cell="catalog", host="x.pay.company.com"), format="json")
    assert r.status_code == 400
    assert "team storefront" in r.json()["fields"]["traffic.publicHost"][0]
    assert api(outsider).post("/api/app", app_body(cell="catalog", host="catalog.shop.company.com"),
                              format="json").status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize("image", ["nginx:1.27", "docker.io/library/nginx", "ghcr.io/acme-evil/payments:1.0",
                                   "ghcr.io/other/payments:1.0", "registry.company.com.evil.net/x:1"])
def test_an_image_from_another_registry_is_refused_naming_the_rule(api, dev, image):
    r = api(dev).post("/api/app", app_body(image=image), format="json")
    assert r.status_code == 400, r.json()
    message = r.json()["fields"]["app.image"][0]
    assert "images.allowedRegistries" in message and "ghcr.io/acme, registry.company.com" in message
    assert CellEnvironment.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("image", ["ghcr.io/acme/payments:1.0", "ghcr.io/acme/team/payments@sha256:" + "a" * 64,
                                   "registry.company.com/payments/api:2"])
def test_images_from_allowed_registries_are_accepted(api, dev, image):
    assert api(dev).post("/api/app", app_body(image=image), format="json").status_code == 201


@pytest.mark.django_db
def test_both_rules_are_reported_at_once_and_the_cli_and_portal_share_them(dev):
    with pytest.raises(InvalidRequest) as exc:
        services.request_app(dev, **services_app(tier="C2", image="quay.io/x/y:1", public_host="www.google.com"))
    assert set(exc.value.fields) == {"traffic.publicHost", "app.image"}


@pytest.mark.django_db
def test_the_portal_form_shows_the_rule_next_to_the_field(dev):
    from django.test import Client

    client = Client()
    client.force_login(dev)
    r = client.post("/request/app/", {"cell": "payments", "environment": "prod", "tier": "C2", "drProfile": "bronze",
                                      "image": "quay.io/x/y:1", "publicHost": "www.google.com",
                                      "trafficMode": "active-passive"})
    assert r.status_code == 400
    html = r.content.decode()
    assert "images.allowedRegistries" in html and "publicHosts.default.dnsZones" in html


def test_a_policy_with_a_bad_zone_or_registry_or_unknown_team_is_rejected():
    from policy.loader import PolicyError
    from tests.helpers import make_policy

    doc = policy_doc(publicHosts={"default": {"dnsZones": ["{cell}.company.com", "not a zone", "{tenant}.x.com"]},
                                  "teams": {"nobody": {"dnsZones": ["x.com"]}}},
                     images={"allowedRegistries": ["https://ghcr.io/acme"]})
    with pytest.raises(PolicyError) as exc:
        make_policy(doc)
    paths = {p.path for p in exc.value.problems}
    assert paths == {"publicHosts.default.dnsZones[1]", "publicHosts.default.dnsZones[2]", "publicHosts.teams.nobody",
                     "images.allowedRegistries[0]"}


def test_a_policy_without_the_rules_restricts_nothing():
    from tests.helpers import make_policy

    spec = make_policy(BASE).spec
    assert spec.public_hosts is None and spec.images is None


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_the_oldest_of_two_live_holders_and_reports_the_other():
    """Databases that the race left with two live environments on one host migrate: the older keeps the host."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("cells", "0004_compute_mode_writer_label")], [("cells", "0005_public_host_unique")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Team, Cell, CellEnvironment, Application = (old.get_model("cells", m) for m in
                                                ("Team", "Cell", "CellEnvironment", "Application"))
    Decision = old.get_model("scheduler", "PlacementDecision")
    team = Team.objects.create(slug="payments", name="Payments")
    version = old.get_model("policy", "PolicyVersion").objects.create(
        digest="d" * 64, version="v", source="test", text="", activated_at="2026-01-01T00:00:00Z")
    site = dict(cloud="oci", region="r", cluster="c")
    for name in ("first", "second", "gone"):
        cell = Cell.objects.create(name=name, team=team)
        decision = Decision.objects.create(cell=name, environment="prod", policy_version="v", reason="initial",
                                           request={}, explanation={}, primary_cloud="oci", primary_region="r",
                                           primary_cluster="c", secondary_cloud="aws", secondary_region="r",
                                           secondary_cluster="c", policy=version)
        ce = CellEnvironment.objects.create(cell=cell, environment="prod", tier="C2", dr_profile="bronze",
                                            placement=decision, traffic_provider="oci-dns")
        for side in ("primary", "secondary"):
            Application.objects.create(cell_env=ce, side=side, name=f"{name}-{side}", image="i", traffic_mode="a",
                                       public_host="www.company.com", compute_mode="warm", replicas=1, **site)
    CellEnvironment.objects.filter(cell__name="gone").update(decommissioned_at="2026-01-01T00:00:00Z")

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # back to the latest, for the tests after this one
    from cells import models

    holders = dict(models.CellEnvironment.objects.values_list("cell__name", "public_host"))
    assert holders == {"first": "www.company.com", "second": None, "gone": "www.company.com"}
    AuditEvent = models.AuditEvent

    event = AuditEvent.objects.get(action="cells.app.host_conflict")
    assert (event.cell, event.data["heldBy"]) == ("second", "first/prod")
