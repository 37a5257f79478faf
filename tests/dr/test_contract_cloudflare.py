"""Contract tests for the cloudflare traffic provider: the official SDK against a local Cloudflare v4 API.

The server (tests/dr/cffake.py) logs every request so the tests check method, path, query, Bearer
token and body.
"""
from __future__ import annotations

import socket

import pytest
from cloudflare import Cloudflare

from dr.errors import ProviderError, TransientProviderError, Unreachable
from dr.traffic.providers.cloudflare import CloudflareProvider
from tests.dr.cffake import ACCOUNT, TOKEN, ZONE

HOST = "payments.prod.example.com"
PRIMARY, SECONDARY = "192.0.2.10", "198.51.100.20"
SECONDARY_NAME = "eks-use1-prod-1.us-east-1.aws.ingress.invalid"


@pytest.fixture
def fake(cf_server):
    cf_server.reset()
    cf_server.add_record(HOST, "A", PRIMARY, ttl=60, proxied=True)
    cf_server.add_record(HOST, "TXT", "owner=payments")
    return cf_server


def sdk(base_url, token=TOKEN):
    return Cloudflare(api_token=token, base_url=base_url, max_retries=0)


@pytest.fixture
def provider(fake):
    return CloudflareProvider(sdk(fake.base_url), {"example.com": ZONE})


def test_contract_cloudflare_current_lists_records_by_exact_name(provider, fake):
    state = provider.current(HOST)
    assert state.value == PRIMARY and state.detail["zoneId"] == ZONE
    (call,) = fake.requests
    assert call["method"] == "GET" and call["path"] == f"/client/v4/zones/{ZONE}/dns_records"
    assert call["query"] == {"name.exact": HOST, "per_page": "100"}
    assert call["auth"] == f"Bearer {TOKEN}"


def test_contract_cloudflare_switch_patches_the_record_then_reads_back(provider, fake):
    result = provider.switch(HOST, SECONDARY)
    assert result.changed and result.previous == PRIMARY and result.current == SECONDARY and "verified" in result.detail
    (patch,) = fake.calls("PATCH")
    rid = next(r["id"] for r in fake.records.values() if r["type"] == "A")
    assert patch["path"] == f"/client/v4/zones/{ZONE}/dns_records/{rid}"
    assert patch["auth"] == f"Bearer {TOKEN}"
    assert patch["body"] == {"name": HOST, "type": "A", "content": SECONDARY, "ttl": 60, "proxied": True}
    assert [r["method"] for r in fake.requests] == ["GET", "PATCH", "GET"]
    assert provider.current(HOST).value == SECONDARY


def test_contract_cloudflare_switch_to_a_host_name_changes_the_type(provider, fake):
    provider.switch(HOST, SECONDARY_NAME)
    assert fake.calls("PATCH")[0]["body"]["type"] == "CNAME"
    assert provider.current(HOST).value == SECONDARY_NAME


def test_contract_cloudflare_round_robin_records_collapse_in_one_batch(provider, fake):
    fake.add_record(HOST, "A", "192.0.2.11", ttl=60, proxied=True)
    assert provider.current(HOST).value == "192.0.2.10,192.0.2.11"
    provider.switch(HOST, SECONDARY)
    (post,) = fake.calls("POST")
    assert post["path"] == f"/client/v4/zones/{ZONE}/dns_records/batch"
    assert len(post["body"]["deletes"]) == 1 and post["body"]["patches"][0]["content"] == SECONDARY
    assert provider.current(HOST).value == SECONDARY


def test_contract_cloudflare_missing_record_and_zone_are_clear_errors(fake):
    provider = CloudflareProvider(sdk(fake.base_url), {"example.com": ZONE})
    with pytest.raises(ProviderError, match="no A/AAAA/CNAME record for api.example.com"):
        provider.switch("api.example.com", SECONDARY)
    with pytest.raises(ProviderError, match="no zone in IDP_CLOUDFLARE_ZONES"):
        provider.current("app.other.test")
    discovering = CloudflareProvider(sdk(fake.base_url))
    assert discovering.current(HOST).value == PRIMARY
    assert [r["query"].get("name") for r in fake.requests if r["path"] == "/client/v4/zones"] == [
        "payments.prod.example.com", "prod.example.com", "example.com"]
    with pytest.raises(ProviderError, match="no Cloudflare zone found for app.other.test"):
        discovering.current("app.other.test")
    wrong_zone = CloudflareProvider(sdk(fake.base_url), {"example.com": "0" * 32})
    with pytest.raises(ProviderError, match="Could not route") as err:
        wrong_zone.current(HOST)
    assert not isinstance(err.value, TransientProviderError)


def test_contract_cloudflare_token_never_appears_in_errors(fake):
    wrong = "cf-wrong-token-123456"
    provider = CloudflareProvider(sdk(fake.base_url, token=wrong), {"example.com": ZONE})
    with pytest.raises(ProviderError, match="token was refused") as err:
        provider.current(HOST)
    assert wrong not in str(err.value)
    # A service that echoes the credential back in its error: the adapter scrubs it.
    fake.failures.append((400, {"code": 1000, "message": f"bad request for token {TOKEN}"}))
    provider = CloudflareProvider(sdk(fake.base_url), {"example.com": ZONE})
    with pytest.raises(ProviderError) as err:
        provider.current(HOST)
    assert TOKEN not in str(err.value) and "***" in str(err.value)


@pytest.mark.parametrize("status,code", [(429, 971), (502, 1000)])
def test_contract_cloudflare_rate_limits_and_5xx_are_transient(provider, fake, status, code):
    fake.failures.append((status, {"code": code, "message": "slow down"}))
    with pytest.raises(TransientProviderError):
        provider.current(HOST)


def test_contract_cloudflare_unreachable_api(fake):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = CloudflareProvider(sdk(f"http://127.0.0.1:{port}/client/v4"), {"example.com": ZONE})
    with pytest.raises(Unreachable):
        provider.current(HOST)


def test_contract_cloudflare_pool_mode_enables_the_target_pool_first(fake):
    fake.add_pool("pool0primary", "primary", PRIMARY, enabled=True)
    fake.add_pool("pool1secondary", "secondary", SECONDARY, enabled=False)
    provider = CloudflareProvider(sdk(fake.base_url), {"example.com": ZONE},
                                  pools={HOST: ["pool0primary", "pool1secondary"]}, account_id=ACCOUNT)
    assert provider.current(HOST).value == PRIMARY
    result = provider.switch(HOST, SECONDARY)
    assert result.changed and result.previous == PRIMARY
    patches = [(r["path"].rsplit("/", 1)[-1], r["body"]) for r in fake.calls("PATCH")]
    assert patches == [("pool1secondary", {"enabled": True}), ("pool0primary", {"enabled": False})]
    assert all(r["path"].startswith(f"/client/v4/accounts/{ACCOUNT}/load_balancers/pools/") for r in fake.calls("PATCH"))
    assert provider.current(HOST).value == SECONDARY
    assert not provider.switch(HOST, SECONDARY).changed
    with pytest.raises(ProviderError, match="has an origin 203.0.113.5"):
        provider.switch(HOST, "203.0.113.5")
    fake.frozen = True
    with pytest.raises(ProviderError, match="served by 198.51.100.20"):
        provider.switch(HOST, PRIMARY)


def test_contract_cloudflare_from_settings_uses_only_the_token(fake, monkeypatch, tmp_path):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_API_KEY", "global-key-must-not-be-used")
    monkeypatch.setenv("CLOUDFLARE_EMAIL", "ops@example.com")
    monkeypatch.setenv("IDP_CLOUDFLARE_BASE_URL", fake.base_url)
    monkeypatch.setenv("IDP_CLOUDFLARE_ZONES", f"example.com={ZONE}")
    provider = CloudflareProvider.from_settings()
    assert provider.current(HOST).value == PRIMARY
    headers = fake.requests[-1]["headers"]
    assert headers["Authorization"] == f"Bearer {TOKEN}" and "X-Auth-Key" not in headers and "X-Auth-Email" not in headers

    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    with pytest.raises(ProviderError, match="no API token"):
        CloudflareProvider.from_settings()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN_FILE", str(token_file))
    assert CloudflareProvider.from_settings().current(HOST).value == PRIMARY
    monkeypatch.setenv("IDP_CLOUDFLARE_POOLS", f"{HOST}=a|b")
    with pytest.raises(ProviderError, match="IDP_CLOUDFLARE_ACCOUNT_ID"):
        CloudflareProvider.from_settings()


def test_contract_cloudflare_is_registered():
    from django.utils.module_loading import import_string

    from dr.providers import ADAPTERS

    assert import_string(ADAPTERS["traffic"]["cloudflare"]) is CloudflareProvider
