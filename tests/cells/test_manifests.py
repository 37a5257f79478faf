"""Stored claims render to the manifests the clusters will get: one per side, compute modes visible."""
import pytest

from cells import services
from cells.manifests import cell_environment_objects, cell_environment_yaml

pytestmark = pytest.mark.django_db


def _objects(dev, tier, profile):
    outcome = services.request_mysql(dev, cell="payments", environment="prod", tier=tier, dr_profile=profile,
                                     ha=tier == "C0" or None)
    services.request_app(dev, cell="payments", environment="prod", image="ghcr.io/acme/payments:1.0",
                         public_host="payments.prod.company.com")
    objs = [o for _, objects in cell_environment_objects(outcome.cell_env) for o in objects]
    return {(o["kind"], o["metadata"]["labels"].get("platform.idp-multicloud.io/side", "")): o for o in objs}


def _replicas(app):
    params = {p["name"]: p["value"] for p in app["spec"]["source"]["helm"]["parameters"]}
    return params["replicaCount"]


def test_gold_renders_claims_replication_and_a_warm_secondary(dev, test_policy):
    objs = _objects(dev, "C0", "gold")
    assert objs[("CellMySQLClaim", "primary")]["spec"]["storageGB"] == 50
    assert objs[("CellMySQLClaim", "secondary")]["spec"]["placement"]["cloud"] == "aws"
    repl = next(o for (kind, _), o in objs.items() if kind == "ReplicationClaim")
    assert repl["spec"]["tool"] == "oci-goldengate"
    assert repl["spec"]["goldengate"]["deploymentId"] == "ocid1.goldengatedeployment.oc1..test"
    secondary = objs[("Application", "secondary")]
    assert "automated" in secondary["spec"]["syncPolicy"] and _replicas(secondary) == "1"
    assert _replicas(objs[("Application", "primary")]) == "3"


def test_silver_secondary_is_pilot_with_zero_replicas(dev, test_policy):
    secondary = _objects(dev, "C1", "silver")[("Application", "secondary")]
    assert "automated" in secondary["spec"]["syncPolicy"] and _replicas(secondary) == "0"


def test_bronze_secondary_is_cold_defined_but_never_synced(dev, test_policy):
    objs = _objects(dev, "C2", "bronze")
    assert "automated" not in objs[("Application", "secondary")]["spec"]["syncPolicy"]
    assert "automated" in objs[("Application", "primary")]["spec"]["syncPolicy"]


def test_rendering_is_a_pure_function_of_the_stored_rows(dev, test_policy):
    outcome = services.request_mysql(dev, cell="payments", environment="prod", tier="C0")
    assert cell_environment_yaml(outcome.cell_env) == cell_environment_yaml(outcome.cell_env)
    assert "kind: CellMySQLClaim" in cell_environment_yaml(outcome.cell_env)
