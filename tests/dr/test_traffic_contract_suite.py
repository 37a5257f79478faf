"""One contract for every traffic provider: the same behaviours, asserted against each one's local fake.

Every provider is a TrafficProviderBase subclass, so switch-then-verify is written once; this suite
checks that each subclass keeps that contract with its real client against its fake: the sandbox zone
in the database, moto's Route 53, the local OCI DNS server (records and steering modes) and the local
Cloudflare API (DNS and load-balancer pool modes), and a real PowerDNS server (pdns_server on 127.0.0.1, as
the DR lab runs it). Each harness says how to count the provider's write calls and every request its server
received, how to make its fake accept a write and lose it (for every host, or one), which credentials must never
show in an error, and, for the modes that batch per DNS zone, how to add a host and which zone each write request
went to: `switch_many` must send exactly one write per zone, verify every host, and report a host that did not take.
"""
from __future__ import annotations

import json
import re
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import boto3
import oci
import pytest
import requests
from botocore.awsrequest import AWSResponse
from cloudflare import Cloudflare
from moto import mock_aws

from dr.errors import ProviderError
from dr.traffic import ratelimit
from dr.traffic.base import SwitchManyError, TrafficProviderBase
from tests.dr.cffake import ACCOUNT, TOKEN, ZONE, ZONE2
from tests.dr.helpers import ApiCalls

HOST = "payments.prod.example.com"
MISSING = "gone.example.com"
PRIMARY, SECONDARY = "192.0.2.10", "198.51.100.20"
COMPARTMENT = "ocid1.compartment.oc1..dns"
AWS_SECRET = "r53-suite-secret-access-key-5f0c2e9b7a41"
AWS_TOKEN = "r53-suite-session-token-0b8d3c6e1f27"


ZONES = ("example.com", "example.org")


@dataclass
class Harness:
    provider: TrafficProviderBase
    writes: Callable[[], int]              # write calls the provider has sent so far
    lose_writes: Callable[..., None]       # the fake accepts the next writes (to `host`, default every host) and changes nothing
    requests: Callable[[], int]            # every API request the fake has received so far
    secrets: list[str] = field(default_factory=list)
    echo: Callable[[str], None] | None = None  # the next API call fails with an error quoting this text
    # Modes that batch per DNS zone (None: one policy or pool per host, nothing to batch):
    add_host: Callable[[str, str], None] | None = None  # a record for host (in example.com or example.org) -> value
    write_zones: Callable[[], list[str]] | None = None   # the zone of each write request received so far


# -- one harness per provider ---------------------------------------------------------------------

def sandbox_harness(request):
    request.getfixturevalue("db")
    from cells.models import SandboxObject
    from dr.models import SandboxTrafficRecord
    from dr.traffic.providers.sandbox import SandboxTraffic

    SandboxTrafficRecord.objects.create(host=HOST, value=PRIMARY)
    provider = SandboxTraffic(plays="oci-dns")  # the sandbox logs its calls as a DNS API's server would
    return Harness(provider, lambda: provider.call_counts["write"],
                   lambda host=HOST: SandboxObject.objects.create(name=f"switch:{host}", fail_message="no-effect"),
                   lambda: len(provider.requests),
                   add_host=lambda host, value: SandboxTrafficRecord.objects.create(host=host, value=value),
                   write_zones=lambda: [zone for kind, zone in provider.requests if kind == "write"])


def route53_harness(request):
    from dr.traffic.providers.route53 import Route53Provider

    mock = mock_aws()
    mock.start()
    request.addfinalizer(mock.stop)
    client = boto3.client("route53", region_name="us-east-1", aws_access_key_id="AKIASUITE",
                          aws_secret_access_key=AWS_SECRET, aws_session_token=AWS_TOKEN)
    setup = boto3.client("route53", region_name="us-east-1", aws_access_key_id="AKIASETUP",
                         aws_secret_access_key="setup", aws_session_token="setup")  # the test's own writes, not the provider's
    ids = {setup.create_hosted_zone(Name=name, CallerReference=f"suite-{name}")["HostedZone"]["Id"].rsplit("/", 1)[-1]: name
           for name in ZONES}
    zone_of = {name: zone_id for zone_id, name in ids.items()}

    def add_host(host, value):
        setup.change_resource_record_sets(HostedZoneId=zone_of[_zone_of(host)], ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": host, "Type": "A", "TTL": 30, "ResourceRecords": [{"Value": value}]}}]})

    add_host(HOST, PRIMARY)
    calls = ApiCalls(client, "route53")

    def lose(host=None):  # Route 53 accepts the batch, but it rewrites the record to its old value
        def swallow(params, **kwargs):
            for change in params["ChangeBatch"]["Changes"]:
                if host is None or change["ResourceRecordSet"]["Name"].rstrip(".") == host:
                    change["ResourceRecordSet"]["ResourceRecords"] = [{"Value": PRIMARY}]
        client.meta.events.register("provide-client-params.route53.ChangeResourceRecordSets", swallow)

    def echo(text):
        def refuse(**kwargs):
            client.meta.events.unregister("before-call.route53.ListResourceRecordSets", refuse)
            return (AWSResponse("https://route53.amazonaws.com", 400, {}, None),
                    {"Error": {"Code": "InvalidInput", "Message": text}, "ResponseMetadata": {"HTTPStatusCode": 400}})
        client.meta.events.register_first("before-call.route53.ListResourceRecordSets", refuse)

    return Harness(Route53Provider(client, zone_of, wait_delay=0),
                   lambda: calls.count("ChangeResourceRecordSets"), lose, lambda: len(calls.ops), [AWS_SECRET, AWS_TOKEN], echo,
                   add_host=add_host,
                   write_zones=lambda: [ids[p["HostedZoneId"]] for p in calls.params("ChangeResourceRecordSets")])


def _oci_fake(request):
    fake = request.getfixturevalue("oci_server")
    fake.reset()
    for name in ZONES:
        fake.add_zone(name)
    fake.add_record("example.com", HOST, "A", PRIMARY, ttl=30)
    client = oci.dns.DnsClient(request.getfixturevalue("oci_cfg")[0], service_endpoint=fake.endpoint,
                               retry_strategy=oci.retry.NoneRetryStrategy(),
                               circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy())
    return fake, client


def oci_dns_harness(request):
    from dr.traffic.providers.oci_dns import OciDnsProvider

    fake, client = _oci_fake(request)

    def lose(host=None):
        if host is None:
            fake.frozen = True
        else:
            fake.frozen_domains.add(host)

    return Harness(OciDnsProvider(client, list(ZONES)), lambda: len(fake.calls("PATCH")), lose,
                   lambda: len(fake.requests),
                   add_host=lambda host, value: fake.add_record(_zone_of(host), host, "A", value, ttl=30),
                   write_zones=lambda: [re.fullmatch(r"/20180115/zones/([^/]+)/records", c["path"]).group(1)
                                        for c in fake.calls("PATCH")])


def _zone_of(host: str) -> str:
    return next(z for z in ZONES if host.endswith("." + z))


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
                   lambda: len(fake.calls("PUT")), lambda host=None: setattr(fake, "frozen", True),
                   lambda: len(fake.requests))


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
    names = {ZONE: "example.com", ZONE2: "example.org"}

    def lose(host=None):
        if host is None:
            fake.frozen = True
        else:
            fake.frozen_names.add(host)

    return Harness(CloudflareProvider(client, {"example.com": ZONE, "example.org": ZONE2}),
                   lambda: len(fake.calls("PATCH")) + len(fake.calls("POST")), lose, lambda: len(fake.requests),
                   [TOKEN], _cloudflare_echo(fake),
                   add_host=lambda host, value: fake.add_record(host, "A", value, ttl=60, proxied=True),
                   write_zones=lambda: [names[re.match(r"/client/v4/zones/(\w+)/", c["path"]).group(1)]
                                        for c in fake.requests if c["method"] in ("PATCH", "POST")])


def cloudflare_pools_harness(request):
    from dr.traffic.providers.cloudflare import CloudflareProvider

    fake, client = _cloudflare_fake(request)
    fake.add_pool("pool0primary", "primary", PRIMARY, enabled=True)
    fake.add_pool("pool1secondary", "secondary", SECONDARY, enabled=False)
    provider = CloudflareProvider(client, {"example.com": ZONE}, pools={HOST: ["pool0primary", "pool1secondary"]},
                                  account_id=ACCOUNT)
    return Harness(provider, lambda: len(fake.calls("PATCH")), lambda host=None: setattr(fake, "frozen", True),
                   lambda: len(fake.requests), [TOKEN], _cloudflare_echo(fake))


def _free_port() -> int:
    with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp.bind(("127.0.0.1", port))  # the DNS port is UDP and TCP
        return port


@pytest.fixture(scope="module")
def pdns_server(tmp_path_factory):
    """A real PowerDNS authoritative server (sqlite backend) on 127.0.0.1, as the DR lab runs it."""
    from dr.lab import PowerDNS

    if not (shutil.which("pdns_server") or Path("/usr/sbin/pdns_server").exists()):
        pytest.skip("PowerDNS is not installed (apt-get install pdns-server pdns-backend-sqlite3)")
    server = PowerDNS(tmp_path_factory.mktemp("pdns"), dns_port=_free_port(), api_port=_free_port())
    server.start()
    yield server
    server.stop()


def powerdns_harness(request):
    from dr.lab import API_KEY
    from dr.traffic.providers.powerdns import PowerDnsProvider

    server = request.getfixturevalue("pdns_server")
    api = f"{server.url}/api/v1/servers/localhost/zones"
    for name in ZONES:  # every test starts from fresh zones
        requests.delete(f"{api}/{name}.", headers={"X-API-Key": API_KEY}, timeout=5)
        server.create_zone(name, {HOST: PRIMARY} if HOST.endswith("." + name) else {})
    provider = PowerDnsProvider(server.url, API_KEY, list(ZONES), resolver=f"127.0.0.1:{server.dns_port}")
    sent: list[tuple[str, str]] = []  # (method, url) of every request the provider sent and the server answered
    provider.session.hooks["response"].append(lambda r, *a, **kw: sent.append((r.request.method, r.request.url)))
    lost: set[str | None] = set()
    send = provider.session.request

    def request_(method, url, **kwargs):  # a lost write: PowerDNS is told to keep the old answer
        if method == "PATCH" and lost:
            for rrset in kwargs["json"]["rrsets"]:
                if (None in lost or rrset["name"].rstrip(".") in lost) and rrset.get("changetype") == "REPLACE":
                    rrset.update(type="A", records=[{"content": PRIMARY, "disabled": False}])
        return send(method, url, **kwargs)

    provider.session.request = request_

    def add_host(host, value):
        zone = _zone_of(host)
        r = requests.patch(f"{api}/{zone}.", headers={"X-API-Key": API_KEY}, timeout=5, json={"rrsets": [
            {"name": f"{host}.", "type": "A", "ttl": 30, "changetype": "REPLACE", "records": [{"content": value, "disabled": False}]}]})
        assert r.status_code == 204, r.text

    return Harness(provider, lambda: sum(1 for m, _ in sent if m == "PATCH"), lambda host=None: lost.add(host),
                   lambda: len(sent), [API_KEY], add_host=add_host,
                   write_zones=lambda: [re.search(r"/zones/([^/]+)\.$", url).group(1) for m, url in sent if m == "PATCH"])


HARNESSES = {"sandbox": sandbox_harness, "route53": route53_harness, "oci-dns": oci_dns_harness,
             "oci-dns-steering": oci_dns_steering_harness, "cloudflare": cloudflare_harness,
             "cloudflare-pools": cloudflare_pools_harness, "powerdns": powerdns_harness}


# The sandbox's zone is in the database: its tests say so, so that pytest-django sets the test database up even
# when this file runs alone (it only prepares the databases the collected tests declare).
@pytest.fixture(params=[pytest.param(n, marks=pytest.mark.django_db) if n == "sandbox" else n for n in HARNESSES])
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


# -- switch_many: a region evacuation, batched per DNS zone ---------------------------------------

@pytest.fixture
def batched(traffic) -> Harness:
    if traffic.add_host is None:
        pytest.skip("one steering policy or pool per host: nothing to batch per zone")
    return traffic


def hosts_in(zone: str, n: int, start: int = 0) -> list[str]:
    return [f"app{i}.{zone}" for i in range(start, start + n)]


@pytest.mark.parametrize("per_zone", [2, 7])  # 7: more than PER_HOST_READS_UP_TO, so the zones are listed
def test_switch_many_sends_exactly_one_write_per_zone_and_verifies_every_host(batched, per_zone):
    hosts = hosts_in("example.com", per_zone) + hosts_in("example.org", per_zone)
    for host in hosts:
        batched.add_host(host, PRIMARY)
    already = "app99.example.org"
    batched.add_host(already, SECONDARY)
    sent = len(batched.write_zones())
    results = batched.provider.switch_many([(h, SECONDARY) for h in hosts] + [(already, SECONDARY)])
    assert sorted(batched.write_zones()[sent:]) == ["example.com", "example.org"]  # one write request per zone
    assert len(results) == len(hosts) + 1
    for host, result in zip(hosts, results):
        assert (result.changed, result.previous, result.current) == (True, PRIMARY, SECONDARY)
        assert f"verified by read-back ({host} answers {SECONDARY})" in result.detail
    assert not results[-1].changed and "nothing changed" in results[-1].detail  # a no-op inside the batch
    assert {batched.provider.current(h).value for h in hosts} == {SECONDARY}
    if per_zone > 5:  # each zone read in one listing before and one after: never one read per host
        assert batched.provider.call_counts["read"] <= 4 + len(hosts)  # + the current() checks just above
        assert batched.provider.call_counts["write"] == 2


def test_switch_many_writes_nothing_to_a_zone_whose_hosts_already_point_there(batched):
    moving, staying = hosts_in("example.com", 2), hosts_in("example.org", 2)
    for host in moving:
        batched.add_host(host, PRIMARY)
    for host in staying:
        batched.add_host(host, SECONDARY)
    sent = len(batched.write_zones())
    results = batched.provider.switch_many([(h, SECONDARY) for h in moving + staying])
    assert batched.write_zones()[sent:] == ["example.com"]
    assert [r.changed for r in results] == [True, True, False, False]
    assert all("already" in r.detail for r in results[2:])


def test_switch_many_reports_the_host_that_did_not_take_and_never_claims_all_switched(batched):
    hosts = hosts_in("example.com", 2) + hosts_in("example.org", 2)
    for host in hosts:
        batched.add_host(host, PRIMARY)
    lost = hosts[3]
    batched.lose_writes(lost)
    sent = len(batched.write_zones())
    with pytest.raises(SwitchManyError) as err:
        batched.provider.switch_many([(h, SECONDARY) for h in hosts])
    assert sorted(batched.write_zones()[sent:]) == ["example.com", "example.org"]  # still one write per zone
    error = err.value
    assert str(error).startswith(f"{batched.provider.label}: switch did not take effect for 1 of 4 host(s): ")
    assert f"{lost} still answers {PRIMARY} (expected {SECONDARY})" in str(error)
    assert "the other 3 host(s) were switched and verified" in str(error)
    assert set(error.failed) == {lost} and set(error.results) == set(hosts[:3])
    assert all(r.changed and r.current == SECONDARY for r in error.results.values())
    assert {batched.provider.current(h).value for h in hosts[:3]} == {SECONDARY}
    assert batched.provider.current(lost).value == PRIMARY


def test_switch_many_changes_nothing_when_a_host_has_no_record(batched):
    hosts = hosts_in("example.com", 2)
    for host in hosts:
        batched.add_host(host, PRIMARY)
    with pytest.raises(SwitchManyError, match=f"no (A/AAAA/CNAME )?record for {MISSING.replace('.', '[.]')}.*nothing was changed") as err:
        batched.provider.switch_many([(h, SECONDARY) for h in hosts] + [(MISSING, SECONDARY)])
    assert set(err.value.failed) == {MISSING} and not err.value.results
    assert batched.writes() == 0
    assert {batched.provider.current(h).value for h in hosts} == {PRIMARY}


def test_switch_many_refuses_one_host_asked_to_point_at_two_places(traffic):
    with pytest.raises(ProviderError, match=f"{HOST} asked to point at both"):
        traffic.provider.switch_many([(HOST, SECONDARY), (HOST.upper(), PRIMARY)])
    assert traffic.writes() == 0


# -- rate limit and call counts -------------------------------------------------------------------

class FakeClock:
    """Time that moves only when someone sleeps: a limiter's waits are exact and the test never sleeps."""

    def __init__(self):
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class Recorded:
    """A limiter that notes the (fake) time each call was let through."""

    def __init__(self, bucket, clock):
        self.bucket, self.clock, self.times = bucket, clock, []
        self.rate = bucket.rate

    def acquire(self) -> float:
        waited = self.bucket.acquire()
        self.times.append(round(self.clock.t, 6))
        return waited


def limit(provider, per_second: float, burst: int) -> Recorded:
    clock = FakeClock()
    provider.limiter = Recorded(ratelimit.TokenBucket(ratelimit.Rate(per_second, burst), clock=clock.now, sleep=clock.sleep), clock)
    return provider.limiter


def test_every_api_call_waits_for_the_rate_limit_and_is_counted(traffic):
    limiter = limit(traffic.provider, 2, 1)
    received = traffic.requests()
    traffic.provider.current(HOST)
    traffic.provider.switch(HOST, SECONDARY)
    sent = traffic.requests() - received
    assert sent >= 3  # read, write, read back at least
    assert traffic.provider.calls == sent == len(limiter.times)  # every request the server got went through it
    assert limiter.times == [i * 0.5 for i in range(sent)]  # 2 a second, no burst: one every 0.5 s
    assert traffic.provider.call_counts["write"] == traffic.writes() >= 1


def test_a_batched_evacuation_is_spaced_at_the_provider_rate_limit(batched):
    hosts = hosts_in("example.com", 3) + hosts_in("example.org", 3)
    for host in hosts:
        batched.add_host(host, PRIMARY)
    limiter = limit(batched.provider, 4, 2)
    received = batched.requests()
    batched.provider.switch_many([(h, SECONDARY) for h in hosts])
    sent = batched.requests() - received
    assert batched.provider.calls == sent == len(limiter.times)
    # A burst of 2, then one call every 0.25 s: the last call leaves at (sent - 2) / 4 seconds.
    assert limiter.times == [0.0, 0.0] + [i * 0.25 for i in range(1, sent - 1)]
