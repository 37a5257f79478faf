"""Contract tests for the oci-dns traffic provider: the real `oci` SDK against a local OCI DNS server.

The SDK is configured with service_endpoint=http://127.0.0.1:PORT and a key pair generated here; the
server (tests/dr/ocifake.py) verifies every request's signature and records method, path, query and body.
"""
from __future__ import annotations

import socket

import oci
import pytest

from dr.errors import ProviderError, TransientProviderError, Unreachable
from dr.traffic.providers.oci_dns import OciDnsProvider

from tests.dr.ocifake import make_config, write_config_file

HOST = "payments.prod.example.com"
PRIMARY, SECONDARY = "192.0.2.10", "198.51.100.20"
SECONDARY_NAME = "eks-use1-prod-1.us-east-1.aws.ingress.invalid"
COMPARTMENT = "ocid1.compartment.oc1..dns"


@pytest.fixture
def fake(oci_server):
    oci_server.reset()
    oci_server.add_zone("example.com")
    oci_server.add_record("example.com", HOST, "A", PRIMARY, ttl=30)
    oci_server.add_record("example.com", HOST, "TXT", '"owner=payments"', ttl=300)  # another type at the name: untouched
    return oci_server


def dns_client(cfg, endpoint):
    return oci.dns.DnsClient(cfg, service_endpoint=endpoint, retry_strategy=oci.retry.NoneRetryStrategy(),
                             circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy())


@pytest.fixture
def provider(oci_cfg, fake):
    return OciDnsProvider(dns_client(oci_cfg[0], fake.endpoint), ["example.com"])


def test_contract_oci_dns_current_reads_the_record_set(provider, fake):
    state = provider.current(HOST)
    assert state.value == PRIMARY
    assert state.detail["zone"] == "example.com" and state.detail["rtype"] == "A" and state.detail["ttl"] == 30
    (call,) = fake.requests
    assert call["method"] == "GET"
    assert call["path"] == "/20180115/zones/example.com/records"
    assert call["query"] == {"domain": HOST}
    assert call["signed"], call["signatureProblem"]
    assert call["headers"]["Authorization"].startswith('Signature ')


def test_contract_oci_dns_switch_is_an_atomic_compare_and_swap_then_verified(provider, fake):
    result = provider.switch(HOST, SECONDARY)
    assert result.changed and result.previous == PRIMARY and result.current == SECONDARY
    assert "verified" in result.detail
    methods = [(c["method"], c["path"]) for c in fake.requests]
    assert methods == [("GET", "/20180115/zones/example.com/records"),
                       ("PATCH", "/20180115/zones/example.com/records"),
                       ("GET", "/20180115/zones/example.com/records")]
    patch = fake.calls("PATCH")[0]
    assert patch["signed"], patch["signatureProblem"]  # body hash and content headers are signed too
    assert patch["body"] == {"items": [
        {"operation": "REQUIRE", "domain": HOST, "rtype": "A", "rdata": PRIMARY},
        {"operation": "REMOVE", "domain": HOST, "rtype": "A"},
        {"operation": "ADD", "domain": HOST, "rtype": "A", "rdata": SECONDARY, "ttl": 30},
    ]}
    assert fake.values("example.com", HOST) == [("A", SECONDARY), ("TXT", '"owner=payments"')]
    assert provider.current(HOST).value == SECONDARY


def test_contract_oci_dns_switch_from_an_ip_to_a_host_name_swaps_a_for_cname_atomically(provider, fake):
    host = "checkout.prod.example.com"
    fake.add_record("example.com", host, "A", PRIMARY, ttl=60)
    result = provider.switch(host, SECONDARY_NAME)
    assert result.changed
    ops = fake.calls("PATCH")[0]["body"]["items"]
    assert [(o["operation"], o["rtype"]) for o in ops] == [("REQUIRE", "A"), ("REMOVE", "A"), ("ADD", "CNAME")]
    assert ops[2]["rdata"] == SECONDARY_NAME + "." and ops[2]["ttl"] == 60
    assert fake.values("example.com", host) == [("CNAME", SECONDARY_NAME + ".")]
    assert provider.current(host).value == SECONDARY_NAME  # the trailing dot is normalized away
    back = provider.switch(host, PRIMARY)
    assert back.changed and back.previous == SECONDARY_NAME
    assert fake.values("example.com", host) == [("A", PRIMARY)]


def test_contract_oci_dns_refuses_a_cname_beside_other_record_types(provider, fake):
    with pytest.raises(ProviderError, match="CNAME cannot share the name with its TXT"):
        provider.switch(HOST, SECONDARY_NAME)
    assert fake.calls("PATCH") == []


def test_contract_oci_dns_refused_compare_and_swap_overwrites_nothing(provider, fake):
    fake.fail(409, "Conflict", path_contains="/records", method="PATCH")
    with pytest.raises(ProviderError, match="changed while switching"):
        provider.switch(HOST, SECONDARY)
    assert fake.values("example.com", HOST)[0] == ("A", PRIMARY)


def test_contract_oci_dns_missing_record_and_zone_are_clear_errors(oci_cfg, provider, fake):
    with pytest.raises(ProviderError, match="no A/AAAA/CNAME record for api.example.com in zone example.com"):
        provider.current("api.example.com")
    with pytest.raises(ProviderError, match="no zone in IDP_OCI_DNS_ZONES"):
        provider.current("payments.other.test")
    calls_before = len(fake.requests)
    assert calls_before == 1  # the uncovered host never reached the API
    missing = OciDnsProvider(dns_client(oci_cfg[0], fake.endpoint), ["missing.example"])
    with pytest.raises(ProviderError, match="404 NotAuthorizedOrNotFound") as err:
        missing.switch("app.missing.example", SECONDARY)
    assert not isinstance(err.value, TransientProviderError)


def test_contract_oci_dns_finds_the_zone_by_walking_up_when_none_configured(oci_cfg, fake):
    provider = OciDnsProvider(dns_client(oci_cfg[0], fake.endpoint), [])
    assert provider.current(HOST).value == PRIMARY
    assert [c["path"] for c in fake.requests] == ["/20180115/zones/payments.prod.example.com",
                                                  "/20180115/zones/prod.example.com",
                                                  "/20180115/zones/example.com",
                                                  "/20180115/zones/example.com/records"]


def test_contract_oci_dns_longest_configured_zone_wins(oci_cfg, fake):
    fake.add_zone("prod.example.com")
    fake.add_record("prod.example.com", HOST, "A", SECONDARY)
    provider = OciDnsProvider(dns_client(oci_cfg[0], fake.endpoint), ["example.com", "prod.example.com"])
    assert provider.current(HOST).value == SECONDARY
    assert fake.requests[-1]["path"] == "/20180115/zones/prod.example.com/records"


@pytest.mark.parametrize("status,code", [(429, "TooManyRequests"), (503, "ServiceUnavailable"), (500, "InternalServerError")])
def test_contract_oci_dns_throttling_and_5xx_are_transient(provider, fake, status, code):
    fake.fail(status, code)
    with pytest.raises(TransientProviderError, match=str(status)):
        provider.current(HOST)


def test_contract_oci_dns_unreachable_endpoint_is_transient(oci_cfg):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    provider = OciDnsProvider(dns_client(oci_cfg[0], f"http://127.0.0.1:{port}"), ["example.com"])
    with pytest.raises(Unreachable):
        provider.current(HOST)


def test_contract_oci_dns_refused_credentials_are_permanent(fake):
    other_key_cfg, _ = make_config()  # signed with a key the server does not know
    provider = OciDnsProvider(dns_client(other_key_cfg, fake.endpoint), ["example.com"])
    with pytest.raises(ProviderError, match="401 NotAuthenticated.*credentials were refused") as err:
        provider.current(HOST)
    assert not isinstance(err.value, TransientProviderError)


def test_contract_oci_dns_private_view_passes_scope_and_view(oci_cfg, fake):
    provider = OciDnsProvider(dns_client(oci_cfg[0], fake.endpoint), ["example.com"], view_id="ocid1.dnsview.oc1..v")
    provider.switch(HOST, SECONDARY)
    for call in fake.requests:
        assert call["query"]["scope"] == "PRIVATE" and call["query"]["viewId"] == "ocid1.dnsview.oc1..v"


# -- steering policies -----------------------------------------------------------------------------

def failover_policy(fake):
    answers = [{"name": "primary", "rtype": "A", "rdata": PRIMARY, "pool": "primary", "isDisabled": False},
               {"name": "secondary", "rtype": "A", "rdata": SECONDARY, "pool": "secondary", "isDisabled": False}]
    rules = [{"ruleType": "FILTER", "defaultAnswerData": [{"answerCondition": "answer.isDisabled != true", "shouldKeep": True}]},
             {"ruleType": "HEALTH"},
             {"ruleType": "PRIORITY", "defaultAnswerData": [{"answerCondition": "answer.pool == 'primary'", "value": 1},
                                                            {"answerCondition": "answer.pool == 'secondary'", "value": 2}]},
             {"ruleType": "LIMIT", "defaultCount": 1}]
    fake.add_steering_policy("ocid1.dnspolicy.oc1..sp", HOST, "ocid1.dns-zone.oc1..example.com", COMPARTMENT, answers, rules)


def test_contract_oci_dns_steering_mode_toggles_answers_with_if_match(oci_cfg, fake):
    failover_policy(fake)
    provider = OciDnsProvider(dns_client(oci_cfg[0], fake.endpoint), ["example.com"], mode="steering",
                              compartment_id=COMPARTMENT)
    state = provider.current(HOST)
    assert state.value == PRIMARY  # both enabled: the PRIORITY rule ranks primary first
    assert fake.requests[0]["path"] == "/20180115/steeringPolicyAttachments"
    assert fake.requests[0]["query"] == {"compartmentId": COMPARTMENT, "domain": HOST, "lifecycleState": "ACTIVE"}

    result = provider.switch(HOST, SECONDARY)
    assert result.changed and result.previous == PRIMARY
    (put,) = fake.calls("PUT")
    assert put["path"] == "/20180115/steeringPolicies/ocid1.dnspolicy.oc1..sp"
    assert put["headers"]["If-Match"] == "1" and put["signed"]
    assert [(a["name"], a["isDisabled"]) for a in put["body"]["answers"]] == [("primary", True), ("secondary", False)]
    assert [r["ruleType"] for r in put["body"]["rules"]] == ["FILTER", "HEALTH", "PRIORITY", "LIMIT"]  # full replace keeps rules
    assert put["body"]["template"] == "FAILOVER" and put["body"]["healthCheckMonitorId"] == "ocid1.httpmonitor.oc1..hc"
    assert provider.current(HOST).value == SECONDARY

    again = provider.switch(HOST, SECONDARY)
    assert not again.changed and "already served" in again.detail
    assert len(fake.calls("PUT")) == 1


def test_contract_oci_dns_steering_mode_errors(oci_cfg, fake):
    provider = OciDnsProvider(dns_client(oci_cfg[0], fake.endpoint), ["example.com"], mode="steering",
                              compartment_id=COMPARTMENT)
    with pytest.raises(ProviderError, match="no steering policy attached"):
        provider.current(HOST)
    failover_policy(fake)
    with pytest.raises(ProviderError, match="has no answer 203.0.113.9"):
        provider.switch(HOST, "203.0.113.9")
    fake.frozen = True
    with pytest.raises(ProviderError, match="is served by 192.0.2.10"):
        provider.switch(HOST, SECONDARY)
    with pytest.raises(ProviderError, match="IDP_OCI_COMPARTMENT"):
        OciDnsProvider(None, [], mode="steering")


# -- configuration -----------------------------------------------------------------------------------

def test_contract_oci_dns_from_settings_reads_only_the_environment(oci_cfg, tmp_path, monkeypatch):
    path = tmp_path / "config"
    write_config_file(path, oci_cfg[0], profile="DR")
    monkeypatch.setenv("OCI_CONFIG_FILE", str(path))
    monkeypatch.setenv("OCI_CONFIG_PROFILE", "DR")
    monkeypatch.setenv("IDP_OCI_DNS_ZONES", "example.com, Prod.Example.com.")
    monkeypatch.delenv("IDP_OCI_AUTH", raising=False)
    provider = OciDnsProvider.from_settings()
    assert provider.zones == ["example.com", "prod.example.com"] and provider.mode == "records"
    assert "dns.us-ashburn-1.oci.oraclecloud.com" in provider.client.base_client.endpoint

    monkeypatch.setenv("OCI_CONFIG_FILE", str(tmp_path / "absent"))
    with pytest.raises(ProviderError, match="no usable OCI credentials"):
        OciDnsProvider.from_settings()
    monkeypatch.setenv("IDP_OCI_AUTH", "password")
    with pytest.raises(ProviderError, match="IDP_OCI_AUTH"):
        OciDnsProvider.from_settings()


def test_contract_oci_dns_is_registered():
    from django.utils.module_loading import import_string

    from dr.providers import ADAPTERS

    assert import_string(ADAPTERS["traffic"]["oci-dns"]) is OciDnsProvider
