"""AWS Route 53 traffic provider (`route53`): boto3 change_resource_record_sets, waited INSYNC, read back.

- A switch UPSERTs the host's simple A/AAAA/CNAME record set (TTL kept), or, when the record type
  changes (an IP endpoint -> a host name), DELETEs the old set exactly as read and CREATEs the new
  one in the same change batch, which Route 53 applies atomically.
- The change is waited for with the `resource_record_sets_changed` waiter (INSYNC: every Route 53
  authoritative server has it) and read back with list_resource_record_sets.
- `switch_many(pairs)` is the region evacuation (the flow is TrafficProviderBase's): hosts are grouped
  by hosted zone and each zone gets ONE change batch (split only at the API limits: 1,000
  ResourceRecord elements per request, an UPSERT counting twice, and 32,000 characters of values),
  because Route 53 allows about five API calls per second per account. Reads are batched too: a zone
  with many hosts is listed page by page (300 record sets a call) instead of one call per host.
- Every API operation the client sends (waiter polls and listing pages included) goes through the
  provider's rate limit and call counter (a botocore `before-call` hook).
- Records with a routing policy (SetIdentifier: failover/weighted/latency…) or alias records are
  refused with a clear error: this adapter switches simple records.

Credentials: the standard AWS chain only (AWS_PROFILE, AWS_ACCESS_KEY_ID/…, web identity / IRSA,
ECS/EC2 roles, role_arn in the shared config), never from the policy or the database.
Zones: IDP_ROUTE53_ZONES="example.com=Z123,other.org=Z456" (the longest suffix of the host wins);
otherwise the account's zones are listed once with list_hosted_zones_by_name (100 a page) and the
longest parent name of the host wins (a public zone is preferred over a private one of the same name).
Waiting: IDP_ROUTE53_WAIT_DELAY (seconds between polls, default 5), IDP_ROUTE53_WAIT_ATTEMPTS (default 60).
"""
from __future__ import annotations

import os

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import WaiterError
except ImportError:  # pragma: no cover - reported by from_settings
    boto3 = None

from dr import awserrors
from dr.errors import ProviderError, TransientProviderError
from dr.traffic.base import Change, TrafficProviderBase, TrafficState
from dr.traffic.records import ANSWER_TYPES, norm_name, norm_value, rtype_for

MAX_RR_ELEMENTS = 1000      # per ChangeResourceRecordSets request; an UPSERT's records count twice
MAX_VALUE_CHARS = 32000     # sum of Value characters per request (UPSERT counted twice as well)
LIST_PAGE = 300             # list_resource_record_sets MaxItems ceiling
PER_HOST_READS_UP_TO = 5    # more hosts than this in one zone: list the zone instead of one call per host


def parse_zones(raw: str) -> dict[str, str]:
    zones = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        name, sep, zone_id = item.partition("=")
        if not sep or not zone_id.strip():
            raise ProviderError(f"IDP_ROUTE53_ZONES entry {item.strip()!r} is not name=ZONEID")
        zones[norm_name(name)] = zone_id.strip().rsplit("/", 1)[-1]
    return zones


def aws_error(exc: Exception, what: str) -> ProviderError:
    if boto3 is not None and isinstance(exc, WaiterError):
        return TransientProviderError(f"{what}: change not INSYNC yet ({exc})")
    return awserrors.aws_error(exc, what, "Route 53", "route53")


class Route53Provider(TrafficProviderBase):
    name = "route53"

    def __init__(self, client, zones: dict[str, str] | None = None, *, wait_delay: int = 5, wait_attempts: int = 60):
        self.client = client
        self.zones = {norm_name(k): v.rsplit("/", 1)[-1] for k, v in (zones or {}).items()}
        self.wait_delay = wait_delay
        self.wait_attempts = wait_attempts
        self._found: dict[str, list[dict]] | None = None
        # Every operation the client sends (retries aside) first takes the rate limit and is counted.
        client.meta.events.register("before-call.route53", self._before_call, unique_id=f"idp-traffic-{id(self)}")

    def _before_call(self, model, **kwargs):
        self._api("write" if model.name.startswith("Change") else "read")

    @classmethod
    def from_settings(cls):
        if boto3 is None:
            raise ProviderError("route53: boto3 is not installed in this deployment")
        config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
        try:
            client = boto3.session.Session().client("route53", config=config)
        except Exception as exc:  # noqa: BLE001 - e.g. an unknown AWS_PROFILE
            raise ProviderError(f"route53: cannot build the AWS client: {exc}") from exc
        return cls(client, parse_zones(os.environ.get("IDP_ROUTE53_ZONES", "")),
                   wait_delay=int(os.environ.get("IDP_ROUTE53_WAIT_DELAY", "5")),
                   wait_attempts=int(os.environ.get("IDP_ROUTE53_WAIT_ATTEMPTS", "60")))

    # -- the interface (TrafficProviderBase: switch reads, applies, reads back) -------------------------

    def _read(self, host: str) -> TrafficState:
        zone_id = self._zone(host)
        rrsets = self._read_zone(zone_id, [host])[host]
        return self._state(host, zone_id, rrsets)

    def _apply(self, host: str, target: str, current: TrafficState) -> str:
        zone_id = current.detail["zoneId"]
        self._submit(zone_id, self._changes(host, current.raw, target), f"idp-multicloud DR switch of {host}")
        return f"in zone {zone_id} (1 change batch), INSYNC"

    def _secrets(self) -> list[str]:
        creds = getattr(getattr(self.client, "_request_signer", None), "_credentials", None)
        try:
            return [getattr(creds, "secret_key", None) or "", getattr(creds, "token", None) or ""] if creds else []
        except Exception:  # noqa: BLE001 - refreshing credentials failed: nothing known to mask
            return []

    # -- switch_many: one change batch per hosted zone (TrafficProviderBase._switch_many) ----------------

    def _zone_key(self, host: str) -> str:
        return self._zone(host)

    def _read_many(self, zone_id: str, hosts: list[str]) -> dict[str, TrafficState | ProviderError]:
        found = self._read_zone(zone_id, hosts)
        out: dict[str, TrafficState | ProviderError] = {}
        for host in hosts:
            try:
                out[host] = self._state(host, zone_id, found[host])
            except ProviderError as exc:
                out[host] = exc
        return out

    def _apply_many(self, zone_id: str, changes: list[Change]) -> str:
        batches = self._chunk([self._changes(c.host, c.before.raw, c.target) for c in changes])
        for number, batch in enumerate(batches, 1):
            self._submit(zone_id, batch, f"idp-multicloud DR switch of {len(batch)} change(s), batch {number}/{len(batches)}")
        return f"in zone {zone_id} ({len(batches)} change batch(es) for {len(changes)} host(s)), INSYNC"

    # -- zones -----------------------------------------------------------------------------------

    def _zone(self, host: str) -> str:
        matches = [z for z in self.zones if host == z or host.endswith("." + z)]
        if matches:
            return self.zones[max(matches, key=len)]
        if self.zones:
            raise ProviderError(f"route53: no zone in IDP_ROUTE53_ZONES ({', '.join(self.zones)}) covers {host}")
        zones = self._hosted_zones()
        for i in range(len(host.split(".")) - 1):  # longest parent name first
            candidate = host.split(".", i)[-1]
            exact = zones.get(candidate, [])
            public = [z for z in exact if not z.get("Config", {}).get("PrivateZone")]
            chosen = public or exact
            if len(chosen) > 1:
                raise ProviderError(f"route53: {len(chosen)} hosted zones named {candidate} "
                                    f"({', '.join(z['Id'] for z in chosen)}); set IDP_ROUTE53_ZONES")
            if chosen:
                return chosen[0]["Id"].rsplit("/", 1)[-1]
        raise ProviderError(f"route53: no hosted zone for {host} among the account's {sum(map(len, zones.values()))} "
                            f"zone(s); set IDP_ROUTE53_ZONES")

    def _hosted_zones(self) -> dict[str, list[dict]]:
        """Every hosted zone of the account by name, listed once (list_hosted_zones_by_name, 100 a page):
        an evacuation of hundreds of hosts costs a call or two, not a lookup per host."""
        if self._found is not None:
            return self._found
        found: dict[str, list[dict]] = {}
        kwargs: dict = {"MaxItems": "100"}
        try:
            while True:
                resp = self.client.list_hosted_zones_by_name(**kwargs)
                for zone in resp.get("HostedZones", []):
                    found.setdefault(norm_name(zone["Name"]), []).append(zone)
                if not resp.get("IsTruncated"):
                    break
                kwargs = {"MaxItems": "100", "DNSName": resp["NextDNSName"], "HostedZoneId": resp["NextHostedZoneId"]}
        except Exception as exc:  # noqa: BLE001 - mapped
            raise aws_error(exc, "route53: listing hosted zones") from exc
        self._found = found
        return found

    # -- reading ---------------------------------------------------------------------------------

    def _read_zone(self, zone_id: str, hosts: list[str]) -> dict[str, list[dict]]:
        """host -> its A/AAAA/CNAME record sets; per host for a few hosts, the whole zone listed for many."""
        found: dict[str, list[dict]] = {h: [] for h in hosts}
        try:
            if len(hosts) <= PER_HOST_READS_UP_TO:
                for host in hosts:
                    resp = self.client.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=host, MaxItems="20")
                    for rrset in resp.get("ResourceRecordSets", []):
                        if norm_name(rrset["Name"]) == host and rrset["Type"] in ANSWER_TYPES:
                            found[host].append(rrset)
            else:
                pages = self.client.get_paginator("list_resource_record_sets").paginate(
                    HostedZoneId=zone_id, PaginationConfig={"PageSize": LIST_PAGE})
                for page in pages:
                    for rrset in page.get("ResourceRecordSets", []):
                        name = norm_name(rrset["Name"])
                        if name in found and rrset["Type"] in ANSWER_TYPES:
                            found[name].append(rrset)
        except Exception as exc:  # noqa: BLE001 - mapped
            raise aws_error(exc, f"route53: reading records in zone {zone_id}") from exc
        return found

    def _state(self, host: str, zone_id: str, rrsets: list[dict]) -> TrafficState:
        if not rrsets:
            raise ProviderError(f"route53: no A/AAAA/CNAME record for {host} in hosted zone {zone_id}")
        special = [r for r in rrsets if r.get("SetIdentifier") or r.get("AliasTarget") or r.get("TrafficPolicyInstanceId")]
        if special:
            kinds = sorted({"alias" if r.get("AliasTarget") else f"routing policy ({r.get('SetIdentifier')})" for r in special})
            raise ProviderError(f"route53: {host} in zone {zone_id} is a {', '.join(kinds)} record; this adapter "
                                f"switches simple records only")
        values = sorted({norm_value(r["Type"], rr["Value"]) for r in rrsets for rr in r.get("ResourceRecords", [])})
        value = values[0] if len(values) == 1 else ",".join(values) if values else None
        return TrafficState(host, value, {"provider": self.name, "zoneId": zone_id,
                                          "rtype": ",".join(sorted(r["Type"] for r in rrsets)), "ttl": rrsets[0].get("TTL")},
                            raw=rrsets)

    # -- writing ---------------------------------------------------------------------------------

    @staticmethod
    def _changes(host: str, rrsets: list[dict], to: str) -> list[dict]:
        new_type = rtype_for(to)
        ttl = rrsets[0].get("TTL", 60)
        new = {"Name": host + ".", "Type": new_type, "TTL": ttl, "ResourceRecords": [{"Value": to}]}
        if len(rrsets) == 1 and rrsets[0]["Type"] == new_type:
            return [{"Action": "UPSERT", "ResourceRecordSet": new}]
        # The type changes (or several types answer): delete exactly what we read, create the new set,
        # in one batch; Route 53 applies it all or nothing, and refuses it if the records moved meanwhile.
        deletes = [{"Action": "DELETE", "ResourceRecordSet": {k: r[k] for k in ("Name", "Type", "TTL", "ResourceRecords") if k in r}}
                   for r in rrsets]
        return deletes + [{"Action": "CREATE", "ResourceRecordSet": new}]

    @staticmethod
    def _weight(changes: list[dict]) -> tuple[int, int]:
        elements = chars = 0
        for change in changes:
            factor = 2 if change["Action"] == "UPSERT" else 1
            records = change["ResourceRecordSet"].get("ResourceRecords", [])
            elements += factor * len(records)
            chars += factor * sum(len(r["Value"]) for r in records)
        return elements, chars

    def _chunk(self, per_host: list[list[dict]]) -> list[list[dict]]:
        """Pack each host's changes (kept together) into as few batches as the API limits allow."""
        batches, batch, elements, chars = [], [], 0, 0
        for changes in per_host:
            e, c = self._weight(changes)
            if batch and (elements + e > MAX_RR_ELEMENTS or chars + c > MAX_VALUE_CHARS):
                batches.append(batch)
                batch, elements, chars = [], 0, 0
            batch.extend(changes)
            elements, chars = elements + e, chars + c
        if batch:
            batches.append(batch)
        return batches

    def _submit(self, zone_id: str, changes: list[dict], comment: str) -> None:
        try:
            resp = self.client.change_resource_record_sets(HostedZoneId=zone_id,
                                                           ChangeBatch={"Comment": comment[:256], "Changes": changes})
            info = resp["ChangeInfo"]
            if info.get("Status") != "INSYNC":
                self.client.get_waiter("resource_record_sets_changed").wait(
                    Id=info["Id"], WaiterConfig={"Delay": self.wait_delay, "MaxAttempts": self.wait_attempts})
        except Exception as exc:  # noqa: BLE001 - mapped
            raise aws_error(exc, f"route53: changing {len(changes)} record set(s) in zone {zone_id}") from exc

