"""Cloudflare traffic provider (`cloudflare`): the official `cloudflare` SDK (v4 API).

DNS mode (default): the host's A/AAAA/CNAME record is read with ``dns.records.list(zone_id,
name.exact=host)`` (one call for every type: an endpoint may be an IP or a host name) and switched
with ``dns.records.edit`` (PATCH: content and type, keeping name, TTL and the proxied flag). When
several records answer for the host (round robin), one ``dns.records.batch`` patches the first and
deletes the rest atomically. Then it is read back; a switch that did not take effect raises.

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
from dr.traffic.base import TrafficProviderBase, TrafficState
from dr.traffic.records import ANSWER_TYPES, norm_name, norm_value, rtype_for


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
                 account_id: str | None = None):
        self.client = client
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
        return cls(client, parse_map(os.environ.get("IDP_CLOUDFLARE_ZONES", ""), "IDP_CLOUDFLARE_ZONES"),
                   pools=pools, account_id=os.environ.get("IDP_CLOUDFLARE_ACCOUNT_ID") or None)

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
            page = self.client.dns.records.list(zone_id=zone_id, name={"exact": host}, per_page=100)
        except Exception as exc:  # noqa: BLE001 - mapped
            raise self._error(exc, f"cloudflare: reading {host}") from exc
        return [r for r in page.result if r.type in ANSWER_TYPES and norm_name(r.name) == host]

    def _record_state(self, host: str):
        zone_id = self._zone(host)
        records = self._records(zone_id, host)
        if not records:
            raise ProviderError(f"cloudflare: no A/AAAA/CNAME record for {host} in zone {zone_id}")
        values = sorted({norm_value(r.type, r.content) for r in records})
        value = values[0] if len(values) == 1 else ",".join(values)
        detail = {"provider": self.name, "mode": "dns", "zoneId": zone_id,
                  "records": [{"id": r.id, "type": r.type, "content": r.content, "ttl": r.ttl, "proxied": r.proxied}
                              for r in records]}
        return TrafficState(host, value, detail, raw=(zone_id, records))

    def _record_apply(self, host: str, target: str, current: TrafficState) -> str:
        zone_id, records = current.raw
        first = records[0]
        change = {"name": host, "type": rtype_for(target), "content": target, "ttl": first.ttl if first.ttl is not None else 1}
        if first.proxied is not None:
            change["proxied"] = first.proxied
        try:
            if len(records) == 1:
                self.client.dns.records.edit(first.id, zone_id=zone_id, **change)
            else:
                self.client.dns.records.batch(zone_id=zone_id, deletes=[{"id": r.id} for r in records[1:]],
                                              patches=[{"id": first.id, **change}])
        except Exception as exc:  # noqa: BLE001 - mapped
            raise self._error(exc, f"cloudflare: switching {host}") from exc
        return f"(record {first.id})"

    # -- load balancer pools ----------------------------------------------------------------------

    def _pool_state(self, host: str):
        pools = []
        for pool_id in self.pools[host]:
            try:
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
                self.client.load_balancers.pools.edit(pool.id, account_id=self.account_id, enabled=enabled)
            except Exception as exc:  # noqa: BLE001 - mapped
                raise self._error(exc, f"cloudflare: {'enabling' if enabled else 'disabling'} pool {pool.id} of {host}") from exc
        return f"(pool {chosen[0].name or chosen[0].id} enabled, others disabled)"
