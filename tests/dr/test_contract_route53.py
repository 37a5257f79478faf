"""Contract tests for the route53 traffic provider: real boto3 requests against moto's Route 53 (mock_aws)."""
from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from dr.errors import ProviderError, TransientProviderError
from dr.traffic.providers.route53 import Route53Provider
from tests.dr.helpers import ApiCalls

HOST = "payments.prod.example.com"
PRIMARY, SECONDARY = "192.0.2.10", "198.51.100.20"
SECONDARY_NAME = "eks-use1-prod-1.us-east-1.aws.ingress.invalid"


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.client("route53")


def make_zone(client, name="example.com", private=False):
    kwargs = {"HostedZoneConfig": {"PrivateZone": True, "Comment": "private"},
              "VPC": {"VPCRegion": "us-east-1", "VPCId": "vpc-12345678"}} if private else {}
    return client.create_hosted_zone(Name=name, CallerReference=f"{name}-{private}", **kwargs)["HostedZone"]["Id"].rsplit("/", 1)[-1]


def put(client, zone_id, host, value, rtype="A", ttl=30, **extra):
    rrset = {"Name": host, "Type": rtype, "TTL": ttl, "ResourceRecords": [{"Value": value}], **extra}
    client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": rrset}]})


def records(client, zone_id, host):
    sets = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return sorted((r["Type"], tuple(v["Value"] for v in r.get("ResourceRecords", []))) for r in sets if r["Name"] == host + ".")


def Calls(client):  # noqa: N802 (used like the class it was)
    return ApiCalls(client, "route53")


@pytest.fixture
def zone(aws):
    zone_id = make_zone(aws)
    put(aws, zone_id, HOST, PRIMARY)
    return zone_id


@pytest.fixture
def provider(aws, zone):
    return Route53Provider(aws, {"example.com": zone}, wait_delay=0)


def test_contract_route53_current_reads_the_record(provider, zone):
    state = provider.current(HOST)
    assert state.value == PRIMARY
    assert state.detail == {"provider": "route53", "zoneId": zone, "rtype": "A", "ttl": 30}


def test_contract_route53_switch_upserts_waits_and_verifies(aws, provider, zone):
    calls = Calls(aws)
    result = provider.switch(HOST, SECONDARY)
    assert result.changed and result.previous == PRIMARY and result.current == SECONDARY
    assert "INSYNC and verified" in result.detail
    (sent,) = calls.params("ChangeResourceRecordSets")
    assert sent["HostedZoneId"] == zone
    assert sent["ChangeBatch"]["Changes"] == [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": HOST + ".", "Type": "A", "TTL": 30, "ResourceRecords": [{"Value": SECONDARY}]}}]
    assert [name for name, _ in calls.ops] == ["ListResourceRecordSets", "ChangeResourceRecordSets", "ListResourceRecordSets"]
    assert records(aws, zone, HOST) == [("A", (SECONDARY,))]


def test_contract_route53_waits_for_a_pending_change(aws, provider):
    calls = Calls(aws)

    def pending(parsed, **kwargs):
        parsed["ChangeInfo"]["Status"] = "PENDING"

    aws.meta.events.register("after-call.route53.ChangeResourceRecordSets", pending)
    assert provider.switch(HOST, SECONDARY).changed
    (get_change,) = calls.params("GetChange")  # the resource_record_sets_changed waiter polled once: INSYNC
    assert get_change["Id"].endswith("C2682N5HXP0BZ4")


def test_contract_route53_type_change_deletes_and_creates_in_one_batch(aws, provider, zone):
    calls = Calls(aws)
    provider.switch(HOST, SECONDARY_NAME)
    (sent,) = calls.params("ChangeResourceRecordSets")
    assert [(c["Action"], c["ResourceRecordSet"]["Type"]) for c in sent["ChangeBatch"]["Changes"]] == [("DELETE", "A"), ("CREATE", "CNAME")]
    assert sent["ChangeBatch"]["Changes"][0]["ResourceRecordSet"]["ResourceRecords"] == [{"Value": PRIMARY}]
    assert records(aws, zone, HOST) == [("CNAME", (SECONDARY_NAME,))]
    assert provider.current(HOST).value == SECONDARY_NAME


def test_contract_route53_missing_zone_and_record_are_clear_errors(aws, provider, zone):
    with pytest.raises(ProviderError, match="no A/AAAA/CNAME record for api.example.com in hosted zone"):
        provider.current("api.example.com")
    with pytest.raises(ProviderError, match="no zone in IDP_ROUTE53_ZONES"):
        provider.switch("app.other.test", SECONDARY)
    wrong = Route53Provider(aws, {"example.com": "ZNOSUCHZONE"})
    with pytest.raises(ProviderError, match="NoSuchHostedZone") as err:
        wrong.current(HOST)
    assert not isinstance(err.value, TransientProviderError)
    discovered = Route53Provider(aws)
    with pytest.raises(ProviderError, match="no hosted zone for app.other.test among the account's 1 zone"):
        discovered.current("app.other.test")


def test_contract_route53_finds_the_zone_by_name_preferring_the_public_one(aws, zone):
    make_zone(aws, "example.com", private=True)
    calls = Calls(aws)
    provider = Route53Provider(aws)
    assert provider.current(HOST).value == PRIMARY
    assert calls.params("ListHostedZonesByName") == [{"MaxItems": "100"}]  # the account's zones, listed once
    assert provider.current(HOST).detail["zoneId"] == zone
    make_zone(aws, "prod.example.com")
    assert Route53Provider(aws)._zone(HOST) != zone  # the longest parent name wins
    assert calls.count("ListHostedZonesByName") == 2


def test_contract_route53_refuses_routing_policy_records(aws, zone):
    put(aws, zone, "api.example.com", PRIMARY, SetIdentifier="primary", Failover="PRIMARY")
    provider = Route53Provider(aws, {"example.com": zone})
    with pytest.raises(ProviderError, match="routing policy \\(primary\\).*simple records only"):
        provider.switch("api.example.com", SECONDARY)


def test_contract_route53_switch_many_sends_one_batch_per_zone(aws, zone):
    hosts = [f"cell-{i}.prod.example.com" for i in range(500)]
    aws.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": h, "Type": "A", "TTL": 30, "ResourceRecords": [{"Value": PRIMARY}]}}
        for h in hosts]})
    other = make_zone(aws, "example.org")
    put(aws, other, "shop.example.org", PRIMARY)
    provider = Route53Provider(aws, {"example.com": zone, "example.org": other})
    calls = Calls(aws)
    results = provider.switch_many([(h, SECONDARY) for h in hosts] + [("shop.example.org", SECONDARY), (HOST, PRIMARY)])
    assert calls.count("ChangeResourceRecordSets") == 2  # one for example.com's 500 hosts, one for example.org
    sent = {p["HostedZoneId"]: p["ChangeBatch"]["Changes"] for p in calls.params("ChangeResourceRecordSets")}
    assert len(sent[zone]) == 500 and len(sent[other]) == 1
    assert len(results) == 502 and all(r.changed for r in results[:501]) and not results[501].changed
    assert calls.count("ListResourceRecordSets") <= 8  # the zone is listed in pages, not read host by host
    assert {provider.current(h).value for h in hosts[:3] + hosts[-3:]} == {SECONDARY}


def test_contract_route53_switch_many_chunks_at_the_api_limit(aws, zone):
    hosts = [f"cell-{i}.prod.example.com" for i in range(600)]
    aws.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": h, "Type": "A", "TTL": 30, "ResourceRecords": [{"Value": PRIMARY}]}}
        for h in hosts]})
    provider = Route53Provider(aws, {"example.com": zone})
    calls = Calls(aws)
    provider.switch_many([(h, SECONDARY) for h in hosts])
    # An UPSERT's ResourceRecord counts twice against the 1,000 per request: 500 hosts per batch.
    assert [len(p["ChangeBatch"]["Changes"]) for p in calls.params("ChangeResourceRecordSets")] == [500, 100]


def test_contract_route53_switch_many_changes_nothing_when_a_host_is_missing(aws, provider, zone):
    calls = Calls(aws)
    with pytest.raises(ProviderError, match="no A/AAAA/CNAME record for gone.example.com.*nothing was changed"):
        provider.switch_many([(HOST, SECONDARY), ("gone.example.com", SECONDARY)])
    assert calls.count("ChangeResourceRecordSets") == 0
    assert provider.current(HOST).value == PRIMARY


def test_contract_route53_throttling_is_transient():
    client = boto3.client("route53", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stub:
        stub.add_client_error("list_resource_record_sets", service_error_code="Throttling",
                              service_message="Rate exceeded", http_status_code=400)
        with pytest.raises(TransientProviderError, match="Throttling: Rate exceeded"):
            Route53Provider(client, {"example.com": "Z1"}).current(HOST)


def test_contract_route53_credentials_only_from_the_standard_chain(monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("IDP_ROUTE53_ZONES", "example.com=/hostedzone/Z1, prod.example.com=Z2")
    provider = Route53Provider.from_settings()
    assert provider.zones == {"example.com": "Z1", "prod.example.com": "Z2"}
    with pytest.raises(ProviderError, match="no AWS credentials in the standard chain"):
        provider.current(HOST)
    monkeypatch.setenv("IDP_ROUTE53_ZONES", "example.com")
    with pytest.raises(ProviderError, match="not name=ZONEID"):
        Route53Provider.from_settings()


def test_contract_route53_is_registered():
    from django.utils.module_loading import import_string

    from dr.providers import ADAPTERS

    assert import_string(ADAPTERS["traffic"]["route53"]) is Route53Provider


def test_contract_route53_through_the_registry_when_not_sandboxed(aws, zone, settings, monkeypatch):
    from dr.providers import adapter, adapter_label

    settings.IDP_SANDBOX_PROVIDERS = ["oci-dns"]  # the sandbox plays another provider, not route53
    monkeypatch.setenv("IDP_ROUTE53_ZONES", f"example.com={zone}")
    provider = adapter("traffic", "route53")
    assert isinstance(provider, Route53Provider) and adapter_label("route53") == "route53"
    result = provider.switch(HOST, SECONDARY)
    assert result.changed and provider.current(HOST).value == SECONDARY
