"""Batched traffic switches per provider, beyond the shared contract (tests/dr/test_traffic_contract_suite.py):
each API's own limits and failure modes in a region evacuation, against the same local servers.

- Cloudflare: the batch endpoint is chunked at its documented size (200 records a call on every plan), a host's
  records never straddle two calls, a round-robin host's extra records are deleted in the same call.
- OCI DNS: one PATCH per zone holds every host's REQUIRE+REMOVE+ADD; a record changed by someone else between
  the read and the PATCH is reported and not overwritten, and the other hosts of the zone still switch.
- A zone whose write fails for a transient reason leaves the other zones switched and says so (retry-safe).
- Secrets stay out of the batch error and of each host's error.
- The sandbox's drill knobs work per host inside a batch.
"""
from __future__ import annotations

import oci
import pytest
from cloudflare import Cloudflare

from dr.errors import TransientProviderError
from dr.traffic.base import SwitchManyError, TransientSwitchManyError
from dr.traffic.providers.cloudflare import CloudflareProvider
from dr.traffic.providers.oci_dns import OciDnsProvider
from tests.dr.cffake import TOKEN, ZONE, ZONE2

PRIMARY, SECONDARY = "192.0.2.10", "198.51.100.20"
SECONDARY_NAME = "eks-use1-prod-1.us-east-1.aws.ingress.invalid"


def hosts_in(zone: str, n: int) -> list[str]:
    return [f"app{i}.{zone}" for i in range(n)]


# -- Cloudflare ---------------------------------------------------------------------------------------

@pytest.fixture
def cf(cf_server):
    cf_server.reset()
    return cf_server


def cf_provider(fake, **kwargs) -> CloudflareProvider:
    return CloudflareProvider(Cloudflare(api_token=TOKEN, base_url=fake.base_url, max_retries=0),
                              {"example.com": ZONE, "example.org": ZONE2}, **kwargs)


def batches(fake) -> list[dict]:
    return [r for r in fake.requests if r["method"] == "POST" and r["path"].endswith("/dns_records/batch")]


def test_cloudflare_batches_are_chunked_at_the_documented_200_records(cf):
    hosts = hosts_in("example.com", 250)
    for host in hosts:
        cf.add_record(host, "A", PRIMARY)
    results = cf_provider(cf).switch_many([(h, SECONDARY) for h in hosts])
    assert [len(b["body"]["patches"]) for b in batches(cf)] == [200, 50]
    assert all(b["path"] == f"/client/v4/zones/{ZONE}/dns_records/batch" and b["auth"] == f"Bearer {TOKEN}" for b in batches(cf))
    assert all(r.changed for r in results)
    assert {r["content"] for r in cf.records.values()} == {SECONDARY}
    # The zone was listed (one GET before, one after), not read host by host.
    assert len([r for r in cf.requests if r["method"] == "GET"]) == 2


def test_cloudflare_a_round_robin_hosts_records_stay_in_one_batch_call(cf):
    for host in hosts_in("example.com", 3):
        cf.add_record(host, "A", PRIMARY)
    extra = cf.add_record("app1.example.com", "A", "192.0.2.11")  # round robin: two answers
    provider = cf_provider(cf, batch_size=3)
    provider.switch_many([(h, SECONDARY) for h in hosts_in("example.com", 3)])
    sent = batches(cf)
    # app0 (1 record) + app1 (2 records) fill the first call; app2 goes alone: app1's records are never split.
    assert [(len(b["body"].get("patches", [])), [d["id"] for d in b["body"].get("deletes", [])]) for b in sent] == [(2, [extra]), (1, [])]
    assert extra not in cf.records
    assert provider.current("app1.example.com").value == SECONDARY


def test_cloudflare_batch_size_comes_from_the_environment_within_the_plans_limits(cf, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("IDP_CLOUDFLARE_BASE_URL", cf.base_url)
    monkeypatch.setenv("IDP_CLOUDFLARE_BATCH_SIZE", "3500")
    assert CloudflareProvider.from_settings().batch_size == 3500
    monkeypatch.setenv("IDP_CLOUDFLARE_BATCH_SIZE", "5000")
    with pytest.raises(Exception, match="outside 1..3500"):
        CloudflareProvider.from_settings()


def test_cloudflare_a_failed_batch_call_fails_its_hosts_only_and_never_leaks_the_token(cf):
    for host in hosts_in("example.com", 2) + hosts_in("example.org", 2):
        cf.add_record(host, "A", PRIMARY)
    provider = cf_provider(cf)
    original = provider.client.dns.records.batch

    def batch(*, zone_id, **kwargs):
        if zone_id == ZONE2:  # the API refuses example.org's call, quoting the credential back
            cf.failures.append((400, {"code": 1000, "message": f"bad request for token {TOKEN}"}))
        return original(zone_id=zone_id, **kwargs)

    provider.client.dns.records.batch = batch
    with pytest.raises(SwitchManyError) as err:
        provider.switch_many([(h, SECONDARY) for h in hosts_in("example.com", 2) + hosts_in("example.org", 2)])
    assert set(err.value.failed) == set(hosts_in("example.org", 2))
    assert set(err.value.results) == set(hosts_in("example.com", 2))
    assert TOKEN not in str(err.value) and "***" in str(err.value)
    assert all(TOKEN not in str(e) for e in err.value.failed.values())
    assert not isinstance(err.value, TransientProviderError)  # a 400 is permanent


# -- OCI DNS ---------------------------------------------------------------------------------------

@pytest.fixture
def oci_fake(oci_server):
    oci_server.reset()
    for zone in ("example.com", "example.org"):
        oci_server.add_zone(zone)
        for host in hosts_in(zone, 3):
            oci_server.add_record(zone, host, "A", PRIMARY, ttl=30)
    return oci_server


def oci_provider(cfg, fake) -> OciDnsProvider:
    client = oci.dns.DnsClient(cfg, service_endpoint=fake.endpoint, retry_strategy=oci.retry.NoneRetryStrategy(),
                               circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy())
    return OciDnsProvider(client, ["example.com", "example.org"])


def test_oci_one_patch_per_zone_carries_every_hosts_compare_and_swap(oci_cfg, oci_fake):
    hosts = hosts_in("example.com", 3)
    oci_provider(oci_cfg[0], oci_fake).switch_many([(h, SECONDARY_NAME) for h in hosts])  # A -> CNAME: REMOVE A, ADD CNAME
    (patch,) = oci_fake.calls("PATCH")
    assert patch["path"] == "/20180115/zones/example.com/records" and patch["signed"]
    ops = [(o["operation"], o["domain"], o["rtype"]) for o in patch["body"]["items"]]
    assert ops == [op for h in hosts for op in (("REQUIRE", h, "A"), ("REMOVE", h, "A"), ("ADD", h, "CNAME"))]
    assert all(oci_fake.values("example.com", h) == [("CNAME", SECONDARY_NAME + ".")] for h in hosts)


def test_oci_a_record_changed_meanwhile_is_reported_and_the_rest_of_its_zone_still_switches(oci_cfg, oci_fake):
    provider = oci_provider(oci_cfg[0], oci_fake)
    hosts = hosts_in("example.com", 3)
    patch = provider._patch

    def someone_else_first(zone, ops):  # between our read and our PATCH, an operator repoints app1
        if not oci_fake.calls("PATCH"):
            records = oci_fake.zones["example.com"]
            oci_fake.zones["example.com"] = [r for r in records if r["domain"] != "app1.example.com"]
            oci_fake.add_record("example.com", "app1.example.com", "A", "203.0.113.7")
        return patch(zone, ops)

    provider._patch = someone_else_first
    with pytest.raises(SwitchManyError) as err:
        provider.switch_many([(h, SECONDARY) for h in hosts])
    assert set(err.value.failed) == {"app1.example.com"}
    assert "changed while switching (compare-and-swap refused" in str(err.value) and "nothing overwritten" in str(err.value)
    assert set(err.value.results) == {"app0.example.com", "app2.example.com"}
    assert len(oci_fake.calls("PATCH")) == 2  # refused whole, then once more without the host that moved
    assert oci_fake.values("example.com", "app1.example.com") == [("A", "203.0.113.7")]  # not overwritten
    assert {provider.current(h).value for h in ("app0.example.com", "app2.example.com")} == {SECONDARY}


def test_oci_a_throttled_zone_is_a_transient_failure_and_running_it_again_completes(oci_cfg, oci_fake):
    provider = oci_provider(oci_cfg[0], oci_fake)
    hosts = hosts_in("example.com", 3) + hosts_in("example.org", 3)
    oci_fake.fail(429, "TooManyRequests", path_contains="/zones/example.org/records", method="PATCH")
    with pytest.raises(TransientSwitchManyError) as err:
        provider.switch_many([(h, SECONDARY) for h in hosts])
    assert set(err.value.failed) == set(hosts_in("example.org", 3))
    assert set(err.value.results) == set(hosts_in("example.com", 3))
    assert "OCI 429 TooManyRequests" in str(err.value)
    again = provider.switch_many([(h, SECONDARY) for h in hosts])  # what a retried step does
    assert [r.changed for r in again] == [False] * 3 + [True] * 3
    assert [c["path"] for c in oci_fake.calls("PATCH")][-1] == "/20180115/zones/example.org/records"


# -- sandbox -------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_sandbox_drill_knobs_hit_their_host_only_inside_a_batch():
    from cells.models import SandboxObject
    from dr.models import SandboxTrafficRecord
    from dr.traffic.providers.sandbox import SandboxTraffic

    hosts = hosts_in("example.com", 3)
    for host in hosts:
        SandboxTrafficRecord.objects.create(host=host, value=PRIMARY)
    SandboxObject.objects.create(name="switch:app2.example.com", fail_times=1, fail_message="flaky DNS API")
    provider = SandboxTraffic(plays="route53")
    with pytest.raises(TransientSwitchManyError) as err:
        provider.switch_many([(h, SECONDARY) for h in hosts])
    assert set(err.value.failed) == {"app2.example.com"} and "flaky DNS API" in str(err.value)
    assert provider.requests == [("read", "example.com"), ("write", "example.com"), ("read", "example.com")]
    assert [r.changed for r in provider.switch_many([(h, SECONDARY) for h in hosts])] == [False, False, True]
    assert provider.calls == 6 and provider.call_counts == {"read": 4, "write": 2}


def test_oci_a_zone_too_big_for_one_patch_is_split_between_hosts_never_inside_one(oci_cfg, oci_fake, monkeypatch):
    from dr.traffic.providers import oci_dns

    monkeypatch.setattr(oci_dns, "MAX_PATCH_OPERATIONS", 7)  # room for two hosts' REQUIRE+REMOVE+ADD, not three
    results = oci_provider(oci_cfg[0], oci_fake).switch_many([(h, SECONDARY) for h in hosts_in("example.com", 3)])
    sizes = [len(c["body"]["items"]) for c in oci_fake.calls("PATCH")]
    assert sizes == [6, 3]
    assert all(r.changed and "2 atomic PATCH(es)" in r.detail for r in results)
