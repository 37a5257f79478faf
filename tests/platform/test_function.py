"""Our composition function: each cloud's composed resources, checked against the providers' CRDs (our schemas of
them, each naming the provider version read), in-process with the SDK's types and once over its real gRPC server."""
import copy
import os
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

from cells import platform
from manifests.crossplane.function.idp_function import fn

from tests.platform.conftest import errors

FUNCTION_DIR = Path(__file__).resolve().parents[2] / "manifests" / "crossplane" / "function"
REGIONS = {"oci": "us-ashburn-1", "aws": "us-east-1", "azure": "eastus", "gcp": "us-central1"}


def composition(selector: dict) -> dict:
    (c,) = [c for c in platform.package_objects() if c["kind"] == "Composition"
            and all(c["metadata"]["labels"].get(k) == v for k, v in selector.items())]
    return c


def mysql_xr(cloud, **spec):
    return {"apiVersion": "platform.idp-multicloud.io/v1alpha1", "kind": "CellMySQLClaim",
            "metadata": {"name": "payments-prod-mysql-primary", "namespace": "cell-payments-prod"},
            "spec": {"cell": "payments", "environment": "prod", "team": "payments", "side": "primary", "tier": "C0",
                     "drProfile": "gold", "size": "large", "storageGB": 200, "ha": True,
                     "placement": {"cloud": cloud, "region": REGIONS[cloud], "cluster": f"{cloud}-mgmt"}, **spec}}


def request(xr, step_input, observed=None) -> fnv1.RunFunctionRequest:
    req = fnv1.RunFunctionRequest()
    resource.update(req.observed.composite, xr)
    for name, obj in (observed or {}).items():
        resource.update(req.observed.resources[name], obj)
    req.input.update(step_input)
    return req


def step_input(selector):
    return composition(selector)["spec"]["pipeline"][0]["input"]


def desired(rsp) -> dict:
    return {name: resource.struct_to_dict(r.resource) for name, r in rsp.desired.resources.items()}


def ready(obj, **at_provider):
    return {**obj, "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Available"}],
                              "atProvider": at_provider}}


MYSQL = {"oci": "MysqlDbSystem", "aws": "Instance", "azure": "FlexibleServer", "gcp": "DatabaseInstance"}


@pytest.mark.parametrize("cloud", sorted(MYSQL))
def test_each_clouds_database_matches_its_providers_crd(cloud, managed_schemas):
    selector = {"platform.idp-multicloud.io/provider": cloud}
    rsp = fn.run(request(mysql_xr(cloud), step_input(selector)))
    assert not [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
    out = desired(rsp)
    db = out["database"]
    assert db["kind"] == MYSQL[cloud]
    managed = [o for o in out.values() if o["apiVersion"] != "v1"]
    for obj in managed:
        facts = managed_schemas[(obj["apiVersion"], obj["kind"])]
        assert facts["scope"] == "Namespaced", f"{obj['kind']}: a namespaced XR can only compose namespaced resources"
        assert errors(obj["spec"], facts["schema"]) == [], (obj["kind"], facts["providerVersion"])
    assert out["admin-password"]["kind"] == "Secret"
    # Nothing is ready before the cloud answers; the connection Secret waits for the endpoint.
    assert "connection" not in out and rsp.desired.composite.ready == fnv1.READY_FALSE


@pytest.mark.parametrize("cloud,storage_field", [("oci", ("dataStorageSizeInGb",)), ("aws", ("allocatedStorage",)),
                                                  ("azure", ("storage", "sizeGb")), ("gcp", ("settings", "diskSize"))])
def test_size_storage_and_ha_map_per_cloud(cloud, storage_field):
    inp = step_input({"platform.idp-multicloud.io/provider": cloud})
    fp = desired(fn.run(request(mysql_xr(cloud, storageGB=321, ha=True), inp)))["database"]["spec"]["forProvider"]
    value = fp
    for key in storage_field:
        value = value[key]
    assert value == 321
    ha = {"oci": lambda: fp["isHighlyAvailable"], "aws": lambda: fp["multiAz"],
          "azure": lambda: fp["highAvailability"]["mode"], "gcp": lambda: fp["settings"]["availabilityType"]}[cloud]()
    assert ha in (True, "ZoneRedundant", "REGIONAL")
    assert inp["sizes"]["large"] in str(fp)


def test_the_composite_turns_ready_only_after_the_composed_resources_and_publishes_its_connection():
    inp = step_input({"platform.idp-multicloud.io/provider": "aws"})
    xr = mysql_xr("aws")
    first = desired(fn.run(request(xr, inp)))
    observed = {"admin-password": first["admin-password"], "database": ready(first["database"], address="db.example")}
    second = fn.run(request(xr, inp, observed))
    conn = desired(second)["connection"]
    assert conn["metadata"]["name"] == "payments-prod-mysql-primary-conn"
    assert set(conn["data"]) == {"username", "password", "endpoint", "port"}
    assert second.desired.composite.ready == fnv1.READY_FALSE  # the connection Secret is not observed yet
    observed["connection"] = conn
    third = fn.run(request(xr, inp, observed))
    assert third.desired.composite.ready == fnv1.READY_TRUE
    assert resource.struct_to_dict(third.desired.composite.resource)["status"]["endpoint"] == "db.example"
    # The generated password is kept once it exists (functions are stateless).
    assert desired(third)["admin-password"]["data"] == first["admin-password"]["data"]


def test_goldengate_composes_connections_once_both_endpoints_are_known(managed_schemas):
    inp = step_input({"platform.idp-multicloud.io/replication-tool": "oci-goldengate"})
    xr = {"apiVersion": "platform.idp-multicloud.io/v1alpha1", "kind": "ReplicationClaim",
          "metadata": {"name": "payments-prod-replication", "namespace": "cell-payments-prod"},
          "spec": {"cell": "payments", "environment": "prod", "tool": "oci-goldengate",
                   "source": {"claimName": "a", "cloud": "oci", "region": "r", "cluster": "c"},
                   "target": {"claimName": "b", "cloud": "aws", "region": "r", "cluster": "c"}}}
    waiting = fn.run(request(xr, inp))
    assert desired(waiting) == {} and "waiting for the source and target" in waiting.results[0].message
    xr["spec"]["source"]["endpoint"], xr["spec"]["target"]["endpoint"] = "10.0.0.5", "db.aws.example"
    out = desired(fn.run(request(xr, inp)))
    assert out["gg-tgt"]["spec"]["forProvider"]["technologyType"] == "AMAZON_RDS_MYSQL"
    for name in ("gg-src", "gg-tgt", "gg-src-assignment", "gg-tgt-assignment"):
        facts = managed_schemas[(out[name]["apiVersion"], out[name]["kind"])]
        assert errors(out[name]["spec"], facts["schema"]) == [], (name, facts["providerVersion"])


def test_native_replication_composes_the_replication_users_secret():
    inp = step_input({"platform.idp-multicloud.io/replication-tool": "mysql-replication"})
    xr = {"apiVersion": "platform.idp-multicloud.io/v1alpha1", "kind": "ReplicationClaim",
          "metadata": {"name": "r", "namespace": "n"},
          "spec": {"cell": "payments", "environment": "prod", "tool": "mysql-replication"}}
    out = desired(fn.run(request(xr, inp)))
    assert out["replication-user"]["kind"] == "Secret" and set(out["replication-user"]["data"]) == {"username", "password"}


def test_a_misspelled_field_is_caught_by_the_provider_schema(managed_schemas):
    """Negative control: the schemas are strict enough to catch what the API server would prune or reject."""
    inp = step_input({"platform.idp-multicloud.io/provider": "aws"})
    db = desired(fn.run(request(mysql_xr("aws"), inp)))["database"]
    facts = managed_schemas[(db["apiVersion"], db["kind"])]
    bad = copy.deepcopy(db["spec"])
    bad["forProvider"]["multiAZ"] = bad["forProvider"].pop("multiAz")  # the AWS API's spelling, not the CRD's
    assert any("multiAZ" in e for e in errors(bad, facts["schema"]))
    bad = copy.deepcopy(db["spec"])
    bad["forProvider"]["allocatedStorage"] = "200"
    assert errors(bad, facts["schema"])


def test_bad_input_is_a_fatal_result_not_a_crash():
    inp = {**step_input({"platform.idp-multicloud.io/provider": "aws"}), "sizes": {}}
    rsp = fn.run(request(mysql_xr("aws"), inp))
    assert [r.severity for r in rsp.results] == [fnv1.SEVERITY_FATAL]
    assert "maps no instance size" in rsp.results[0].message
    wrong_cloud = fn.run(request(mysql_xr("gcp"), step_input({"platform.idp-multicloud.io/provider": "aws"})))
    assert "placed on 'gcp'" in wrong_cloud.results[0].message


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_function_answers_over_its_real_grpc_server():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "idp_function.main", "--insecure", "--address", f"127.0.0.1:{port}"],
                            cwd=FUNCTION_DIR, env={**os.environ, "PYTHONPATH": str(FUNCTION_DIR)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        stub = grpcv1.FunctionRunnerServiceStub(channel)
        req = request(mysql_xr("oci"), step_input({"platform.idp-multicloud.io/provider": "oci"}))
        req.meta.tag = "t-1"
        rsp = stub.RunFunction(req, timeout=10)
        assert rsp.meta.tag == "t-1"
        assert desired(rsp)["database"]["kind"] == "MysqlDbSystem"
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_restored_database_is_adopted_not_created_again():
    inp = step_input({"platform.idp-multicloud.io/provider": "aws"})
    db = desired(fn.run(request(mysql_xr("aws", adopt={"externalName": "payments-prod-restored"}), inp)))["database"]
    assert db["metadata"]["annotations"] == {"crossplane.io/external-name": "payments-prod-restored"}
    plain = desired(fn.run(request(mysql_xr("aws"), inp)))["database"]
    assert "annotations" not in plain["metadata"]
