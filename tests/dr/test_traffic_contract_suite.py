"""One contract for every traffic provider: the same behaviours, asserted against each one's local fake.

Every provider is a TrafficProviderBase subclass, so switch-then-verify is written once; this suite
checks that each subclass keeps that contract with its real client against its fake: the sandbox zone
in the database, moto's Route 53, the local OCI DNS server (records and steering modes) and the local
Cloudflare API (DNS and load-balancer pool modes). Each harness says how to count the provider's write
calls, how to make its fake accept a write and lose it, and which credentials must never show in an error.
PowerDNS has no fake outside the DR lab (tests/lab runs it against a real PowerDNS).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

import boto3
import oci
import pytest
from botocore.awsrequest import AWSResponse
from cloudflare import Cloudflare
from moto import mock_aws

from dr.errors import ProviderError
from dr.traffic.base import TrafficProviderBase
from tests.dr.cffake import ACCOUNT, TOKEN, ZONE, CloudflareFake
from tests.dr.helpers import ApiCalls

HOST = "payments.prod.example.com"
MISSING = "gone.example.com"
PRIMARY, SECONDARY = "192.0.2.10", "198.51.100.20"
COMPARTMENT = "ocid1.compartment.oc1..dns"
AWS_SECRET = "r53-suite-secret-access-key-5f0c2e9b7a41"
AWS_TOKEN = "r53-suite-session-token-0b8d3c6e1f27"


@dataclass
class Harness:
    provider: TrafficProviderBase
    writes: Callable[[], int]              # write calls the provider has sent so far
    lose_writes: Callable[[], None]        # the fake accepts the next writes and changes nothing
    secrets: list[str] = field(default_factory=list)
    echo: Callable[[str], None] | None = None  # the next API call fails with an error quoting this text


# -- one harness per provider ---------------------------------------------------------------------

def sandbox_harness(request):
    request.getfixturevalue("db")
    from cells.models import SandboxObject
    from dr.models import SandboxTrafficRecord
    from dr.traffic.providers.sandbox import SandboxTraffic

    SandboxTrafficRecord.objects.create(host=HOST, value=PRIMARY)
    saves = []
    original = SandboxTrafficRecord.save
    request.getfixturevalue("monkeypatch").setattr(
        SandboxTrafficRecord, "save", lambda self, *a, **kw: (saves.append(self.value), original(self, *a, **kw))[1])
    return Harness(SandboxTraffic(plays="oci-dns"), lambda: len(saves),
                   lambda: SandboxObject.objects.create(name=f"switch:{HOST}", fail_message="no-effect"))


def route53_harness(request):
    from dr.traffic.providers.route53 import Route53Provider

    mock = mock_aws()
    mock.start()
    request.addfinalizer(mock.stop)
    client = boto3.client("route53", region_name="us-east-1", aws_access_key_id="AKIASUITE",
                          aws_secret_access_key=AWS_SECRET, aws_session_token=AWS_TOKEN)
    zone = client.create_hosted_zone(Name="example.com", CallerReference="suite")["HostedZone"]["Id"].rsplit("/", 1)[-1]
    client.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
        "Name": HOST, "Type": "A", "TTL": 30, "ResourceRecords": [{"Value": PRIMARY}]}}]})
    calls = ApiCalls(client, "route53")

    def lose():  # Route 53 accepts the batch, but it rewrites the record to its old value
        def swallow(params, **kwargs):
            for change in params["ChangeBatch"]["Changes"]:
                change["ResourceRecordSet"]["ResourceRecords"] = [{"Value": PRIMARY}]
        client.meta.events.register("provide-client-params.route53.ChangeResourceRecordSets", swallow)

    def echo(text):
        def refuse(**kwargs):
            client.meta.events.unregister("before-call.route53.ListResourceRecordSets", refuse)
            return (AWSResponse("https://route53.amazonaws.com", 400, {}, None),
                    {"Error": {"Code": "InvalidInput", "Message": text}, "ResponseMetadata": {"HTTPStatusCode": 400}})
        client.meta.events.register_first("before-call.route53.ListResourceRecordSets", refuse)

    return Harness(Route53Provider(client, {"example.com": zone}, wait_delay=0),
                   lambda: calls.count("ChangeResourceRecordSets"), lose, [AWS_SECRET, AWS_TOKEN], echo)


def _oci_fake(request):
    fake = request.getfixturevalue("oci_server")
    fake.reset()
    fake.add_zone("example.com")
    fake.add_record("example.com", HOST, "A", PRIMARY, ttl=30)
    client = oci.dns.DnsClient(request.getfixturevalue("oci_cfg")[0], service_endpoint=fake.endpoint,
                               retry_strategy=oci.retry.NoneRetryStrategy(),
                               circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy())
    return fake, client


def oci_dns_harness(request):
    from dr.traffic.providers.oci_dns import OciDnsProvider

    fake, client = _oci_fake(request)
    return Harness(OciDnsProvider(client, ["example.com"]), lambda: len(fake.calls("PATCH")),
                   lambda: setattr(fake, "frozen", True))


def oci_dns_steering_harness(request):
    from dr.traffic.providers.oci_dns import OciDnsProvider

    fake, client = _oci_fake(request)
    answers = [{"name": "primary", "rtype": "A", "rdata": PRIMARY, "pool": "primary", "isDisabled": False},
               {"name": "secondary", "rtype": "A", "rdata": SECONDARY, "pool": "secondary", "isDisabled": True}]
    rules = [{"ruleType": "FILTER", "defaultAnswerData": [{"answerCondition": "answer.isDisabled != true", "shouldKeep": True}]},
             {"ruleType": "PRIORITY", "defaultAnswerData": [{"answerCondition": "answer.pool == 'primary'", "value": 1},
                                                            {"answerCondition": "answer.pool == 'secondary'", "value": 2}]}]
    fake.add_steering_policy("ocid1.dnspolicy.oc1..sp", HOST, "ocid1.dns-zone.oc1..example.com", COMPARTMENT, answers, rules)
    return Harness(OciDnsProvider(client, ["example.com"], mode="steering", compartment_id=COMPARTMENT),
                   lambda: len(fake.calls("PUT")), lambda: setattr(fake, "frozen", True))


@pytest.fixture(scope="module")
def cf_server():
    server = CloudflareFake()
    yield server
    server.server.stop()


def _cloudflare_fake(request):
    fake = request.getfixturevalue("cf_server")
    fake.reset()
    fake.add_record(HOST, "A", PRIMARY, ttl=60, proxied=True)
    return fake, Cloudflare(api_token=TOKEN, base_url=fake.base_url, max_retries=0)


def _cloudflare_echo(fake):
    return lambda text: fake.failures.append((400, {"code": 1000, "message": text}))


def cloudflare_harness(request):
    from dr.traffic.providers.cloudflare import CloudflareProvider

    fake, client = _cloudflare_fake(request)
    return Harness(CloudflareProvider(client, {"example.com": ZONE}),
                   lambda: len(fake.calls("PATCH")) + len(fake.calls("POST")),
                   lambda: setattr(fake, "frozen", True), [TOKEN], _cloudflare_echo(fake))


def cloudflare_pools_harness(request):
    from dr.traffic.providers.cloudflare import CloudflareProvider

    fake, client = _cloudflare_fake(request)
    fake.add_pool("pool0primary", "primary", PRIMARY, enabled=True)
    fake.add_pool("pool1secondary", "secondary", SECONDARY, enabled=False)
    provider = CloudflareProvider(client, {"example.com": ZONE}, pools={HOST: ["pool0primary", "pool1secondary"]},
                                  account_id=ACCOUNT)
    return Harness(provider, lambda: len(fake.calls("PATCH")), lambda: setattr(fake, "frozen", True), [TOKEN],
                   _cloudflare_echo(fake))


HARNESSES = {"sandbox": sandbox_harness, "route53": route53_harness, "oci-dns": oci_dns_harness,
             "oci-dns-steering": oci_dns_steering_harness, "cloudflare": cloudflare_harness,
             "cloudflare-pools": cloudflare_pools_harness}


@pytest.fixture(params=list(HARNESSES))
def traffic(request) -> Harness:
    return HARNESSES[request.param](request)


# -- the contract ----------------------------------------------------------------------------------

def test_every_provider_is_a_short_subclass_of_the_one_base(traffic):
    assert isinstance(traffic.provider, TrafficProviderBase)
    assert type(traffic.provider).switch is TrafficProviderBase.switch or traffic.provider.name == "sandbox"


def test_current_answers_the_record(traffic):
    state = traffic.provider.current(HOST)
    assert (state.host, state.value) == (HOST, PRIMARY)
    json.dumps(state.detail)  # what the runbook stores: plain data, never the provider's own objects


def test_names_are_normalised_before_reading_and_switching(traffic):
    assert traffic.provider.current(HOST.upper() + ".").value == PRIMARY
    result = traffic.provider.switch(HOST.upper() + ".", SECONDARY)
    assert result.changed and traffic.provider.current(HOST).value == SECONDARY


def test_switch_moves_the_answer_and_the_read_back_verifies_it(traffic):
    result = traffic.provider.switch(HOST, SECONDARY)
    assert (result.changed, result.previous, result.current) == (True, PRIMARY, SECONDARY)
    assert f"verified by read-back ({HOST} answers {SECONDARY})" in result.detail
    assert traffic.writes() >= 1
    assert traffic.provider.current(HOST).value == SECONDARY


def test_switch_to_where_it_already_points_is_a_no_op_that_writes_nothing(traffic):
    result = traffic.provider.switch(HOST, PRIMARY)
    assert (result.changed, result.previous, result.current) == (False, PRIMARY, PRIMARY)
    assert "already" in result.detail and "nothing changed" in result.detail
    assert traffic.writes() == 0


def test_switching_twice_is_a_no_op_the_second_time(traffic):
    assert traffic.provider.switch(HOST, SECONDARY).changed
    writes = traffic.writes()
    again = traffic.provider.switch(HOST, SECONDARY)
    assert (again.changed, again.previous, again.current) == (False, SECONDARY, SECONDARY)
    assert traffic.writes() == writes


def test_a_switch_the_provider_loses_raises_a_clear_error(traffic):
    traffic.lose_writes()
    with pytest.raises(ProviderError, match=f"switch did not take effect: {HOST} (still answers|is served by) "
                                            f"{PRIMARY} \\(expected {SECONDARY}\\)") as err:
        traffic.provider.switch(HOST, SECONDARY)
    assert str(err.value).startswith(traffic.provider.label + ": ")
    assert traffic.writes() >= 1  # it was sent: only the read-back could tell
    assert traffic.provider.current(HOST).value == PRIMARY


def test_switch_many_switches_each_host_and_verifies(traffic):
    (result,) = traffic.provider.switch_many([(HOST, SECONDARY)])
    assert (result.changed, result.previous, result.current) == (True, PRIMARY, SECONDARY)
    assert "verified by read-back" in result.detail
    (again,) = traffic.provider.switch_many([(HOST, SECONDARY)])
    assert not again.changed


def test_a_missing_record_is_a_clear_error(traffic):
    with pytest.raises(ProviderError, match=MISSING.replace(".", "\\.")):
        traffic.provider.current(MISSING)
    with pytest.raises(ProviderError, match=MISSING.replace(".", "\\.")):
        traffic.provider.switch(MISSING, SECONDARY)
    assert traffic.writes() == 0


def test_errors_never_contain_secrets(traffic):
    errors = []
    for call in (lambda: traffic.provider.current(MISSING), lambda: traffic.provider.switch(MISSING, SECONDARY)):
        with pytest.raises(ProviderError) as err:
            call()
        errors.append(str(err.value))
    if traffic.echo is not None:  # an upstream error that quotes the credential back
        traffic.echo(f"request refused for credential {' and '.join(traffic.secrets)}")
        with pytest.raises(ProviderError) as err:
            traffic.provider.current(HOST)
        errors.append(str(err.value))
        assert "***" in errors[-1]
    traffic.lose_writes()
    with pytest.raises(ProviderError) as err:
        traffic.provider.switch(HOST, SECONDARY)
    errors.append(str(err.value))
    for text in errors:
        for secret in traffic.secrets:
            assert secret not in text
