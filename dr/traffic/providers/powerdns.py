"""PowerDNS authoritative server: switch a host by PATCHing its zone's rrsets through the HTTP API.

For on-premises teams, and the DR lab's DNS. Settings (environment): IDP_POWERDNS_URL,
IDP_POWERDNS_API_KEY, IDP_POWERDNS_SERVER_ID, IDP_POWERDNS_ZONES, and optionally
IDP_POWERDNS_RESOLVER (host:port) to verify the switch with a real DNS query as well as the API.

Reads are per zone already (``GET /zones/{zone}`` returns every rrset), so ``switch_many`` (a region
evacuation; the flow is TrafficProviderBase's) costs one GET per zone to read, ONE ``PATCH /zones/{zone}``
carrying every host's rrsets (PowerDNS applies a PATCH in one transaction: all or nothing), and one GET per
zone to read back. Every API call goes through the provider's rate limit and is counted; the DNS query that
confirms a switch is not an API call.
"""
from __future__ import annotations

import requests

from dr.errors import ProviderError, TransientProviderError, Unreachable
from dr.traffic.base import Change, TrafficProviderBase, TrafficState
from dr.traffic.records import norm_name, norm_value, rtype_for

TTL = 30


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


class PowerDnsProvider(TrafficProviderBase):
    name = "powerdns"

    def __init__(self, url: str, api_key: str, zones: list[str], server_id: str = "localhost", resolver: str = "",
                 timeout: float = 10):
        if not url or not api_key:
            raise ProviderError("powerdns: IDP_POWERDNS_URL and IDP_POWERDNS_API_KEY must be set")
        self.base = f"{url.rstrip('/')}/api/v1/servers/{server_id}"
        self.session = requests.Session()
        self.session.headers.update({"X-API-Key": api_key, "Accept": "application/json"})
        self.zones = [_fqdn(z) for z in zones]
        self.resolver = resolver
        self.timeout = timeout

    @classmethod
    def from_settings(cls) -> "PowerDnsProvider":
        from django.conf import settings

        return cls(settings.IDP_POWERDNS_URL, settings.IDP_POWERDNS_API_KEY, settings.IDP_POWERDNS_ZONES,
                   settings.IDP_POWERDNS_SERVER_ID, settings.IDP_POWERDNS_RESOLVER)

    def _zone(self, host: str) -> str:
        name = _fqdn(host)
        matches = [z for z in self.zones if name == z or name.endswith("." + z)]
        if not matches:
            raise ProviderError(f"powerdns: no configured zone holds {host} (zones: {', '.join(self.zones) or 'none'})")
        return max(matches, key=len)

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        self._api("read" if method == "GET" else "write")
        try:
            resp = self.session.request(method, f"{self.base}{path}", timeout=self.timeout, **kwargs)
        except requests.ConnectionError as exc:
            raise Unreachable(f"powerdns API unreachable: {exc.__class__.__name__}") from None
        except requests.Timeout:
            raise TransientProviderError("powerdns API timed out") from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TransientProviderError(f"powerdns {method} {path}: HTTP {resp.status_code}: {resp.text[:300]}")
        if resp.status_code >= 400:
            try:
                message = resp.json().get("error", resp.text)
            except ValueError:
                message = resp.text
            raise ProviderError(f"powerdns {method} {path}: HTTP {resp.status_code}: {message[:300]}")
        return resp

    def _answers(self, zone: str, hosts: list[str]) -> dict[str, tuple[str | None, str | None]]:
        """host -> (type, first enabled answer) of its A/AAAA/CNAME rrset, from ONE read of the zone."""
        data = self._call("GET", f"/zones/{zone}").json()
        found: dict[str, tuple[str | None, str | None]] = {h: (None, None) for h in hosts}
        for rrset in data.get("rrsets", []):
            host = norm_name(rrset["name"])
            if host in found and found[host][1] is None and rrset["type"] in ("A", "AAAA", "CNAME"):
                records = [r["content"] for r in rrset.get("records", []) if not r.get("disabled")]
                found[host] = (rrset["type"], (records[0].rstrip(".") if records and rrset["type"] == "CNAME"
                                               else records[0] if records else None))
        return found

    def _state(self, zone: str, host: str, rtype: str | None, value: str | None) -> TrafficState:
        if value is None:
            raise ProviderError(f"powerdns: no A/AAAA/CNAME record for {host} in zone {zone}")
        return TrafficState(host, norm_value(rtype, value), {"provider": "powerdns", "zone": zone, "type": rtype})

    def _read(self, host: str) -> TrafficState:
        zone = self._zone(host)
        return self._state(zone, host, *self._answers(zone, [host])[host])

    @staticmethod
    def _rrsets(host: str, target: str, current: TrafficState) -> list[dict]:
        old_type = current.detail["type"]
        new_type = rtype_for(target)
        content = _fqdn(target) if new_type == "CNAME" else target
        rrsets = [{"name": _fqdn(host), "type": new_type, "ttl": TTL, "changetype": "REPLACE",
                   "records": [{"content": content, "disabled": False}]}]
        if old_type and old_type != new_type:
            rrsets.insert(0, {"name": _fqdn(host), "type": old_type, "changetype": "DELETE"})
        return rrsets

    def _apply(self, host: str, target: str, current: TrafficState) -> str:
        zone = current.detail["zone"]
        self._call("PATCH", f"/zones/{zone}", json={"rrsets": self._rrsets(host, target, current)})
        return f"(zone {zone})"

    # -- switch_many: one GET and one PATCH per zone ----------------------------------------------

    def _zone_key(self, host: str) -> str:
        return self._zone(host)

    def _read_many(self, zone: str, hosts: list[str]) -> dict[str, TrafficState | ProviderError]:
        out: dict[str, TrafficState | ProviderError] = {}
        for host, (rtype, value) in self._answers(zone, hosts).items():
            try:
                out[host] = self._state(zone, host, rtype, value)
            except ProviderError as exc:
                out[host] = exc
        return out

    def _apply_many(self, zone: str, changes: list[Change]) -> str:
        rrsets = [r for c in changes for r in self._rrsets(c.host, c.target, c.before)]
        self._call("PATCH", f"/zones/{zone}", json={"rrsets": rrsets})
        return f"(zone {zone}, 1 PATCH for {len(changes)} host(s))"

    def _confirm(self, host: str, target: str, after: TrafficState) -> str:
        """The API answers the new record; a DNS query to IDP_POWERDNS_RESOLVER shows it is served too."""
        served = self._resolve(host, rtype_for(target))
        if served is None:
            return ""
        if norm_value(rtype_for(target), served) != target:
            raise ProviderError(f"powerdns: switched {host} to {target} but DNS still answers {served}")
        return f", and by a DNS query to {self.resolver}"

    def _secrets(self) -> list[str]:
        return [self.session.headers.get("X-API-Key", "")]

    def _resolve(self, host: str, rtype: str) -> str | None:
        if not self.resolver:
            return None
        import dns.resolver

        server, _, port = self.resolver.partition(":")
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [server]
        resolver.port = int(port or 53)
        resolver.cache = None
        try:
            answer = resolver.resolve(host, rtype, lifetime=3)
        except Exception as exc:  # noqa: BLE001 - any resolver failure means "not verified"
            raise TransientProviderError(f"powerdns: DNS query for {host} failed: {exc}") from None
        return str(answer[0]).rstrip(".")
