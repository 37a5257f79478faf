"""Cloudflare traffic provider (`cloudflare`): the official `cloudflare` SDK (v4 API).

DNS mode (default): the host's A/AAAA/CNAME record is read with ``dns.records.list(zone_id,
name.exact=host)`` (one call for every type: an endpoint may be an IP or a host name) and switched
with ``dns.records.edit`` (PATCH: content and type, keeping name, TTL and the proxied flag). When
several records answer for the host (round robin), one ``dns.records.batch`` patches the first and
deletes the rest atomically. Then it is read back; a switch that did not take effect raises.

``switch_many`` (a region evacuation; the flow is TrafficProviderBase's): Cloudflare has no atomic switch of
several names except ``dns.records.batch`` (``POST /zones/{zone_id}/dns_records/batch``, run in one database
transaction), so each zone gets ONE batch call holding every host's patch (and the deletes of extra round-robin
records), chunked at the documented batch size: 200 records per call on the Free plan, 3,500 on Pro, Business
and Enterprise (developers.cloudflare.com/dns/manage-dns-records/how-to/batch-record-changes). The default, 200,
is safe on every plan; IDP_CLOUDFLARE_BATCH_SIZE raises it. A host's operations never straddle two calls. The
zone is read in one listing (every record, 5,000 a page) when it holds more than PER_HOST_READS_UP_TO of the
hosts, otherwise per host. Pool-mode hosts are switched one by one (a pool per side: nothing to batch). Every
call goes through the provider's rate limit and is counted (TrafficProviderBase._api).

Load-balancer pool mode, for hosts listed in IDP_CLOUDFLARE_POOLS: the host is a Cloudflare load
balancer with one pool per side; the side's endpoint is the address of an origin in its pool. A
switch enables the target's pool first, then disables the others (never a moment with no pool),
and reads the pools back. ``current`` is the address of the enabled origins of the enabled pools.

Credentials: CLOUDFLARE_API_TOKEN (or a mounted file named by CLOUDFLARE_API_TOKEN_FILE), sent only
as ``Authorization: Bearer``; CLOUDFLARE_API_KEY/CLOUDFLARE_EMAIL in the environment are ignored,
and the token never appears in an error message.
Zones: IDP_CLOUDFLARE_ZONES="example.com=<zone id>,…" (the longest suffix of the host wins), otherwise
``zones.list(name=…)`` on the host's parent names. Pools: IDP_CLOUDFLARE_POOLS="app.example.com=<pool
id>|<pool id>,…" with IDP_CLOUDFLARE_ACCOUNT_ID. IDP_CLOUDFLARE_BASE_URL overrides the API URL.
IDP_CLOUDFLARE_BATCH_SIZE: records per batch call in switch_many (default 200; up to 3,500 on paid plans).
"""
from __future__ import annotations

import os

try:
    import cloudflare
    from cloudflare import Cloudflare
except ImportError:  # pragma: no cover - reported by from_settings
    cloudflare = None

from dr.errors import ProviderError, TransientProviderError, Unreachable
from dr.secrets import read_secret_file
from dr.traffic.base import Change, TrafficProviderBase, TrafficState
from dr.traffic.records import ANSWER_TYPES, norm_name, norm_value, rtype_for

BATCH_SIZE = 200             # records one dns_records/batch call may operate on: 200 (Free), 3,500 (paid plans)
MAX_BATCH_SIZE = 3500
PER_HOST_READS_UP_TO = 5     # more of a zone's hosts than this in one switch_many: list the zone instead
LIST_PAGE = 5000             # records per page when listing a zone


def parse_map(raw: str, what: str) -> dict[str, str]:
    out = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not value.strip():
            raise ProviderError(f"{what} entry {item.strip()!r} is not name=value")
        out[norm_name(key)] = value.strip()
    return out


class CloudflareProvider(TrafficProviderBase):
    name = "cloudflare"

    def __init__(self, client, zones: dict[str, str] | None = None, *, pools: dict[str, list[str]] | None = None,
                 account_id: str | None = None, batch_size: int = BATCH_SIZE):
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ProviderError(f"cloudflare: batch size {batch_size} is outside 1..{MAX_BATCH_SIZE} (IDP_CLOUDFLARE_BATCH_SIZE)")
        self.client = client
        self.batch_size = batch_size
        self.zones = {norm_name(k): v for k, v in (zones or {}).items()}
        self.pools = {norm_name(k): list(v) for k, v in (pools or {}).items()}
        self.account_id = account_id
        if self.pools and not account_id:
            raise ProviderError("cloudflare: IDP_CLOUDFLARE_POOLS needs IDP_CLOUDFLARE_ACCOUNT_ID (pools belong to an account)")
        self._found: dict[str, str] = {}

    @classmethod
    def from_settings(cls):
        if cloudflare is None:
            raise ProviderError("cloudflare: the cloudflare SDK is not installed in this deployment")
        token = os.environ.get("CLOUDFLARE_API_TOKEN", "").strip()
        token_file = os.environ.get("CLOUDFLARE_API_TOKEN_FILE", "").strip()
        if not token and token_file:
            token = read_secret_file(token_file, "cloudflare", "CLOUDFLARE_API_TOKEN_FILE")
        if not token:
            raise ProviderError("cloudflare: no API token (set CLOUDFLARE_API_TOKEN or mount one at CLOUDFLARE_API_TOKEN_FILE)")
        client = Cloudflare(api_token=token, base_url=os.environ.get("IDP_CLOUDFLARE_BASE_URL") or None,
                            max_retries=2, timeout=30.0)
        # The SDK prefers X-Auth-Email/X-Auth-Key when those variables are set: use the scoped token only.
        client.api_key = client.api_email = client.user_service_key = None
        pools = {host: [p for p in ids.split("|") if p.strip()]
                 for host, ids in parse_map(os.environ.get("IDP_CLOUDFLARE_POOLS", ""), "IDP_CLOUDFLARE_POOLS").items()}
        try:
            batch_size = int(os.environ.get("IDP_CLOUDFLARE_BATCH_SIZE", "").strip() or BATCH_SIZE)
        except ValueError:
            raise ProviderError("cloudflare: IDP_CLOUDFLARE_BATCH_SIZE must be a whole number") from None
        return cls(client, parse_map(os.environ.get("IDP_CLOUDFLARE_ZONES", ""), "IDP_CLOUDFLARE_ZONES"),
                   pools=pools, account_id=os.environ.get("IDP_CLOUDFLARE_ACCOUNT_ID") or None, batch_size=batch_size)

    # -- the interface (TrafficProviderBase: switch reads, applies, reads back) -------------------------

    def _read(self, host: str) -> TrafficState:
        return self._pool_state(host) if host in self.pools else self._record_state(host)

    def _apply(self, host: str, target: str, current: TrafficState) -> str:
        return self._pool_apply(host, target, current) if host in self.pools else self._record_apply(host, target, current)

    def _settled(self, host: str, target: str, current: TrafficState) -> bool:
        if host not in self.pools:
            return current.value == target
        return current.value == target and all(p.enabled for p in self._chosen(host, target, current.raw))

    def _serving(self, state: TrafficState) -> str | None:
        if state.detail.get("mode") != "pools":
            return None
        return "pool " + ", ".join(p["name"] or p["id"] for p in state.detail["pools"] if p["enabled"])

    def _secrets(self) -> list[str]:
        return [getattr(self.client, "api_token", None) or ""]

    # -- errors ----------------------------------------------------------------------------------

    def _error(self, exc: Exception, what: str) -> ProviderError:
        text = f"{type(exc).__name__}: {exc}"
        token = getattr(self.client, "api_token", None)
        if token:
            text = text.replace(token, "***")
        if cloudflare is None:
            return ProviderError(f"{what}: {text}")
        if isinstance(exc, (cloudflare.APITimeoutError, cloudflare.APIConnectionError)):
            return Unreachable(f"{what}: Cloudflare unreachable ({type(exc).__name__})")
        if isinstance(exc, cloudflare.RateLimitError) or (isinstance(exc, cloudflare.APIStatusError) and exc.status_code >= 500):
            return TransientProviderError(f"{what}: {text}")
        if isinstance(exc, (cloudflare.AuthenticationError, cloudflare.PermissionDeniedError)):
            return ProviderError(f"{what}: the Cloudflare API token was refused or lacks permission ({text})")
        return ProviderError(f"{what}: {text}")

    # -- DNS records -----------------------------------------------------------------------------

    def _zone(self, host: str) -> str:
        matches = [z for z in self.zones if host == z or host.endswith("." + z)]
        if matches:
            return self.zones[max(matches, key=len)]
        if self.zones:
            raise ProviderError(f"cloudflare: no zone in IDP_CLOUDFLARE_ZONES ({', '.join(self.zones)}) covers {host}")
        if host in self._found:
            return self._found[host]
        labels = host.split(".")
        for i in range(len(labels) - 1):
            candidate = ".".join(labels[i:])
            try:
                self._api("read")
                page = self.client.zones.list(name=candidate, per_page=5)
            except Exception as exc:  # noqa: BLE001 - mapped
                raise self._error(exc, f"cloudflare: looking up zone {candidate}") from exc
            exact = [z for z in page.result if norm_name(z.name) == candidate]
            if exact:
                self._found[host] = exact[0].id
                return exact[0].id
        raise ProviderError(f"cloudflare: no Cloudflare zone found for {host} (set IDP_CLOUDFLARE_ZONES)")

    def _records(self, zone_id: str, host: str) -> list:
        try:
            self._api("read")
            page = self.client.dns.records.list(zone_id=zone_id, name={"exact": host}, per_page=100)
        except Exception as exc:  # noqa: BLE001 - mapped
            raise self._error(exc, f"cloudflare: reading {host}") from exc
        return [r for r in page.result if r.type in ANSWER_TYPES and norm_name(r.name) == host]

    def _zone_records(self, zone_id: str) -> list:
        """Every A/AAAA/CNAME record of the zone, page by page."""
        out, number = [], 1
        while True:
            try:
                self._api("read")
                page = self.client.dns.records.list(zone_id=zone_id, page=number, per_page=LIST_PAGE)
            except Exception as exc:  # noqa: BLE001 - mapped
                raise self._error(exc, f"cloudflare: listing the records of zone {zone_id}") from exc
            out += [r for r in page.result if r.type in ANSWER_TYPES]
            if len(page.result) < LIST_PAGE:
                return out
            number += 1

    def _record_state(self, host: str):
        zone_id = self._zone(host)
        return self._state_of(zone_id, host, self._records(zone_id, host))

    def _state_of(self, zone_id: str, host: str, records: list):
        if not records:
            raise ProviderError(f"cloudflare: no A/AAAA/CNAME record for {host} in zone {zone_id}")
        values = sorted({norm_value(r.type, r.content) for r in records})
        value = values[0] if len(values) == 1 else ",".join(values)
        detail = {"provider": self.name, "mode": "dns", "zoneId": zone_id,
                  "records": [{"id": r.id, "type": r.type, "content": r.content, "ttl": r.ttl, "proxied": r.proxied}
                              for r in records]}
        return TrafficState(host, value, detail, raw=(zone_id, records))

    @staticmethod
    def _patch_of(host: str, target: str, records: list) -> dict:
        """The change of the host's first record (content and type; name, TTL and proxied kept)."""
        first = records[0]
        change = {"name": host, "type": rtype_for(target), "content": target, "ttl": first.ttl if first.ttl is not None else 1}
        if first.proxied is not None:
            change["proxied"] = first.proxied
        return change

    def _record_apply(self, host: str, target: str, current: TrafficState) -> str:
        zone_id, records = current.raw
        first = records[0]
        change = self._patch_of(host, target, records)
        try:
            self._api("write")
            if len(records) == 1:
                self.client.dns.records.edit(first.id, zone_id=zone_id, **change)
            else:
                self.client.dns.records.batch(zone_id=zone_id, deletes=[{"id": r.id} for r in records[1:]],
                                              patches=[{"id": first.id, **change}])
        except Exception as exc:  # noqa: BLE001 - mapped
            raise self._error(exc, f"cloudflare: switching {host}") from exc
        return f"(record {first.id})"

    # -- switch_many (DNS mode: one batch call per zone) -----------------------------------------

    def _zone_key(self, host: str):
        return ("pools", host) if host in self.pools else ("dns", self._zone(host))

    def _read_many(self, key, hosts: list[str]) -> dict[str, TrafficState | ProviderError]:
        kind, zone_id = key
        if kind == "pools" or len(hosts) <= PER_HOST_READS_UP_TO:
            return super()._read_many(key, hosts)
        by_name: dict[str, list] = {h: [] for h in hosts}
        for record in self._zone_records(zone_id):
            name = norm_name(record.name)
            if name in by_name:
                by_name[name].append(record)
        out: dict[str, TrafficState | ProviderError] = {}
        for host in hosts:
            try:
                out[host] = self._state_of(zone_id, host, by_name[host])
            except ProviderError as exc:
                out[host] = exc
        return out

    def _apply_many(self, key, changes: list[Change]) -> str:
        kind, zone_id = key
        if kind == "pools":
            return super()._apply_many(key, changes)
        chunks: list[list[Change]] = []
        size = 0
        for change in changes:  # records of one host (its patch and the deletes of extras) stay in one call
            weight = len(change.before.raw[1])
            if chunks and size + weight <= self.batch_size:
                chunks[-1].append(change)
                size += weight
            else:
                chunks.append([change])
                size = weight
        for chunk in chunks:
            patches = [{"id": c.before.raw[1][0].id, **self._patch_of(c.host, c.target, c.before.raw[1])} for c in chunk]
            deletes = [{"id": r.id} for c in chunk for r in c.before.raw[1][1:]]
            try:
                self._api("write")
                self.client.dns.records.batch(zone_id=zone_id, patches=patches, **({"deletes": deletes} if deletes else {}))
            except Exception as exc:  # noqa: BLE001 - mapped; the chunk is one transaction: none of it took
                error = self._error(exc, f"cloudflare: switching {len(chunk)} host(s) in zone {zone_id} (batch)")
                for c in chunk:
                    c.error = error
        return f"in zone {zone_id} ({len(chunks)} batch call(s) for {len(changes)} host(s))"

    # -- load balancer pools ----------------------------------------------------------------------

    def _pool_state(self, host: str):
        pools = []
        for pool_id in self.pools[host]:
            try:
                self._api("read")
                pools.append(self.client.load_balancers.pools.get(pool_id, account_id=self.account_id))
            except Exception as exc:  # noqa: BLE001 - mapped
                raise self._error(exc, f"cloudflare: reading load balancer pool {pool_id} of {host}") from exc
        serving = sorted({norm_value(rtype_for(o.address), o.address) for p in pools if p.enabled
                          for o in (p.origins or []) if o.enabled is not False and o.address})
        value = None if not serving else serving[0] if len(serving) == 1 else ",".join(serving)
        detail = {"provider": self.name, "mode": "pools",
                  "pools": [{"id": p.id, "name": p.name, "enabled": p.enabled,
                             "origins": [o.address for o in (p.origins or [])]} for p in pools]}
        return TrafficState(host, value, detail, raw=pools)

    def _chosen(self, host: str, target: str, pools: list) -> list:
        """The pools with an origin at `target`; ProviderError when there is none."""
        chosen = [p for p in pools if any(o.address and norm_value(rtype_for(o.address), o.address) == target
                                          for o in (p.origins or []))]
        if not chosen:
            raise ProviderError(f"cloudflare: no pool of {host} ({', '.join(self.pools[host])}) has an origin {target}")
        return chosen

    def _pool_apply(self, host: str, target: str, current: TrafficState) -> str:
        pools = current.raw
        chosen = self._chosen(host, target, pools)
        chosen_ids = {p.id for p in chosen}
        # Enable the target first, then disable the rest: the load balancer always has a pool.
        order = [(p, True) for p in chosen if not p.enabled] + [(p, False) for p in pools if p.id not in chosen_ids and p.enabled]
        for pool, enabled in order:
            try:
                self._api("write")
                self.client.load_balancers.pools.edit(pool.id, account_id=self.account_id, enabled=enabled)
            except Exception as exc:  # noqa: BLE001 - mapped
                raise self._error(exc, f"cloudflare: {'enabling' if enabled else 'disabling'} pool {pool.id} of {host}") from exc
        return f"(pool {chosen[0].name or chosen[0].id} enabled, others disabled)"
