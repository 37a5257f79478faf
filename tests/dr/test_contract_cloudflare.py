"""Contract tests for the cloudflare traffic provider: the official SDK against a local Cloudflare v4 API.

A real HTTP server on 127.0.0.1 answers with Cloudflare's envelope
({"success", "errors", "messages", "result"[, "result_info"]}), keeps the zone's records and the load
balancer pools, and logs every request so the tests check method, path, query, Bearer token and body.
"""
from __future__ import annotations

import json
import re
import socket
from urllib.parse import parse_qs

import pytest
from cloudflare import Cloudflare
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from dr.errors import ProviderError, TransientProviderError, Unreachable
from dr.traffic.providers.cloudflare import CloudflareProvider

TOKEN = "cf-test-token-8d1b6f0e2a"
ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
ACCOUNT = "01a7362d577a6c3019a474fd6f485823"
HOST = "payments.prod.example.com"
PRIMARY, SECONDARY = "192.0.2.10", "198.51.100.20"
SECONDARY_NAME = "eks-use1-prod-1.us-east-1.aws.ingress.invalid"


def envelope(result, status=200, errors=None, result_info=None):
    body = {"success": not errors, "errors": errors or [], "messages": [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return Response(json.dumps(body), status=status, content_type="application/json")


class CloudflareFake:
    def __init__(self):
        self.reset()
        self.server = HTTPServer(host="127.0.0.1", port=0)
        self.server.expect_request(re.compile(".*")).respond_with_handler(self.handle)
        self.server.start()

    def reset(self):
        self.requests: list[dict] = []
        self.records: dict[str, dict] = {}
        self.pools: dict[str, dict] = {}
        self.zones = {"example.com": ZONE}
        self.failures: list[tuple[int, dict]] = []
        self.frozen = False

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.port}/client/v4"

    def add_record(self, name, rtype, content, ttl=60, proxied=False):
        rid = f"rec{len(self.records) + 1:029d}"
        self.records[rid] = {"id": rid, "zone_id": ZONE, "zone_name": "example.com", "name": name, "type": rtype,
                             "content": content, "ttl": ttl, "proxied": proxied, "proxiable": True,
                             "comment": None, "tags": [], "settings": {}, "meta": {},
                             "created_on": "2026-01-01T00:00:00Z", "modified_on": "2026-01-01T00:00:00Z"}
        return rid

    def add_pool(self, pool_id, name, address, enabled):
        self.pools[pool_id] = {"id": pool_id, "name": name, "enabled": enabled, "minimum_origins": 1,
                               "origins": [{"name": f"{name}-origin", "address": address, "enabled": True, "weight": 1}]}

    def handle(self, request: Request) -> Response:
        body = request.get_data()
        entry = {"method": request.method, "path": request.path,
                 "query": {k: v[0] for k, v in parse_qs(request.query_string.decode()).items()},
                 "auth": request.headers.get("Authorization"), "headers": dict(request.headers),
                 "body": json.loads(body) if body else None}
        self.requests.append(entry)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}" or request.headers.get("X-Auth-Key"):
            return envelope(None, 403, [{"code": 9109, "message": "Invalid access token"}])
        if self.failures:
            status, error = self.failures.pop(0)
            return envelope(None, status, [error])
        path, q, data = request.path, entry["query"], entry["body"] or {}
        if path == "/client/v4/zones" and request.method == "GET":
            found = [{"id": zid, "name": name, "status": "active"} for name, zid in self.zones.items() if name == q.get("name")]
            return envelope(found, result_info={"page": 1, "per_page": 5, "count": len(found), "total_count": len(found)})
        if m := re.fullmatch(r"/client/v4/zones/(\w+)/dns_records", path):
            if m.group(1) != ZONE:
                return envelope(None, 404, [{"code": 7003, "message": "Could not route to /zones/x/dns_records"}])
            found = [r for r in self.records.values() if r["name"] == q.get("name.exact", r["name"])
                     and r["type"] == q.get("type", r["type"])]
            return envelope(found, result_info={"page": 1, "per_page": 100, "count": len(found), "total_count": len(found)})
        if re.fullmatch(r"/client/v4/zones/\w+/dns_records/batch", path) and request.method == "POST":
            for d in data.get("deletes", []):
                self.records.pop(d["id"], None)
            for p in data.get("patches", []):
                self.records[p["id"]].update({k: v for k, v in p.items() if k != "id"})
            return envelope({"deletes": [], "patches": [self.records[p["id"]] for p in data.get("patches", [])]})
        if m := re.fullmatch(r"/client/v4/zones/(\w+)/dns_records/(\w+)", path):
            record = self.records.get(m.group(2))
            if record is None:
                return envelope(None, 404, [{"code": 81044, "message": "Record does not exist."}])
            if request.method == "PATCH" and not self.frozen:
                record.update({k: v for k, v in data.items() if k in ("name", "type", "content", "ttl", "proxied")})
            return envelope(record)
        if m := re.fullmatch(r"/client/v4/accounts/(\w+)/load_balancers/pools/(\w+)", path):
            pool = self.pools.get(m.group(2))
            if m.group(1) != ACCOUNT or pool is None:
                return envelope(None, 404, [{"code": 1002, "message": "pool not found"}])
            if request.method == "PATCH" and not self.frozen:
                pool.update(data)
            return envelope(pool)
        return envelope(None, 404, [{"code": 7000, "message": f"No route for {request.method} {path}"}])

    def calls(self, method):
        return [r for r in self.requests if r["method"] == method]


@pytest.fixture(scope="module")
def cf_server():
    server = CloudflareFake()
    yield server
    server.server.stop()


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


def test_contract_cloudflare_switch_to_where_it_points_is_a_no_op(provider, fake):
    result = provider.switch(HOST, PRIMARY)
    assert not result.changed and "already points" in result.detail
    assert fake.calls("PATCH") == []


def test_contract_cloudflare_round_robin_records_collapse_in_one_batch(provider, fake):
    fake.add_record(HOST, "A", "192.0.2.11", ttl=60, proxied=True)
    assert provider.current(HOST).value == "192.0.2.10,192.0.2.11"
    provider.switch(HOST, SECONDARY)
    (post,) = fake.calls("POST")
    assert post["path"] == f"/client/v4/zones/{ZONE}/dns_records/batch"
    assert len(post["body"]["deletes"]) == 1 and post["body"]["patches"][0]["content"] == SECONDARY
    assert provider.current(HOST).value == SECONDARY


def test_contract_cloudflare_switch_that_does_not_take_effect_raises(provider, fake):
    fake.frozen = True
    with pytest.raises(ProviderError, match="still answers 192.0.2.10"):
        provider.switch(HOST, SECONDARY)


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
