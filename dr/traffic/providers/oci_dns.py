"""OCI DNS traffic provider (`oci-dns`, the default): the `oci` SDK's DnsClient.

Two modes (IDP_OCI_DNS_MODE):

- ``records`` (default): the host's A/AAAA/CNAME record set in its zone. A switch is ONE
  ``patch_zone_records`` call holding REQUIRE (every answer we read) + REMOVE (the old record set)
  + ADD (the new answer): an atomic compare-and-swap, so a record someone changed after we read it
  is refused rather than overwritten, and A -> CNAME (or back) happens without a moment where the
  name has no answer or both types. ``update_domain_records`` is never used: it replaces every
  record type at the name.
- ``steering``: the host has a FAILOVER steering policy attached (compartment IDP_OCI_COMPARTMENT).
  A manual switch enables the target's answer and disables the others (``update_steering_policy``
  is a full replace: read, change, write back with If-Match). The old side stays disabled on
  purpose: after a failover its database is fenced, and the policy's health check must not hand it
  traffic back when it recovers. ``current`` is the answer the policy serves: the enabled answer
  ranked first by the PRIORITY rule (``answer.name == '…'`` / ``answer.pool == '…'`` conditions).

Both modes are read back after writing by TrafficProviderBase.switch, which raises ProviderError when
the answer did not move.

``switch_many`` (a region evacuation; the flow is TrafficProviderBase's) in records mode: ONE
``patch_zone_records`` per zone carrying every host's REQUIRE+REMOVE+ADD (a host's operations are never
split; the zone's are chunked only above MAX_PATCH_OPERATIONS). The zone is read in one listing
(``get_zone_records``, every type: the CNAME check needs them) when it holds more than
PER_HOST_READS_UP_TO of the hosts, otherwise per host (``domain=``). When the PATCH is refused because
a REQUIRE failed (409/412: someone changed a record since we read it), the zone is read again: the
hosts that moved are reported and nothing of theirs is overwritten, and the PATCH is sent once more
for the hosts that did not move. Steering mode has one policy per host: nothing to batch, one update
per host. Every call goes through the provider's rate limit and is counted (TrafficProviderBase._api).

Credentials come only from the environment or mounted files, never from the policy or the database:
  IDP_OCI_AUTH=instance_principal | resource_principal | workload_identity  (signers, no file), or
  OCI_CONFIG_FILE (default ~/.oci/config) + OCI_CONFIG_PROFILE (default DEFAULT) for oci.config.from_file.
  IDP_OCI_REGION overrides the region.
Zones: IDP_OCI_DNS_ZONES (comma-separated zone names; the longest suffix of the host wins); when
unset, the host's parent names are tried with get_zone. IDP_OCI_DNS_VIEW (a view OCID) selects a
private zone (scope PRIVATE).
"""
from __future__ import annotations

import os
import re

import oci

from dr.errors import ProviderError, TransientProviderError, Unreachable
from dr.traffic.base import Change, TrafficProviderBase, TrafficState
from dr.traffic.records import ANSWER_TYPES, norm_name, norm_value, rtype_for

PER_HOST_READS_UP_TO = 5  # more of a zone's hosts than this in one switch_many: list the zone instead
# Oracle documents no limit on the operations of one PatchZoneRecords request (searched 2026-11); this bound
# only keeps a request body reasonable (three or four operations a host: ~300 hosts a request).
MAX_PATCH_OPERATIONS = 1000


# -- shared helpers (also used by dr.replication.goldengate) ---------------------------------------

def oci_auth() -> tuple[dict, object | None]:
    """(config, signer) from the environment: a principal signer, or a config file. Never from policy/DB."""
    mode = os.environ.get("IDP_OCI_AUTH", "").strip().lower().replace("-", "_")
    region = os.environ.get("IDP_OCI_REGION", "").strip()
    try:
        if mode in ("instance_principal", "instance_principals"):
            signer = oci.auth.signers.InstancePrincipalsSecurityTokenSigner()
            return {"region": region or signer.region}, signer
        if mode in ("resource_principal", "resource_principals"):
            signer = oci.auth.signers.get_resource_principals_signer()
            return {"region": region or signer.region}, signer
        if mode in ("workload_identity", "oke_workload_identity"):
            signer = oci.auth.signers.get_oke_workload_identity_resource_principal_signer()
            return {"region": region or getattr(signer, "region", None) or os.environ.get("OCI_RESOURCE_PRINCIPAL_REGION", "")}, signer
        if mode not in ("", "config_file", "api_key"):
            raise ProviderError(f"IDP_OCI_AUTH={mode!r} is not one of instance_principal, resource_principal, "
                                f"workload_identity, config_file")
        # oci.config.from_file only falls back to OCI_CONFIG_FILE when ~/.oci/config is missing: pass it explicitly.
        path = os.environ.get("OCI_CONFIG_FILE") or oci.config.DEFAULT_LOCATION
        profile = os.environ.get("OCI_CONFIG_PROFILE") or oci.config.DEFAULT_PROFILE
        config = oci.config.from_file(file_location=path, profile_name=profile)
        if region:
            config["region"] = region
        oci.config.validate_config(config)
        return config, None
    except ProviderError:
        raise
    except (oci.exceptions.ClientError, ValueError, OSError) as exc:
        raise ProviderError(f"no usable OCI credentials ({type(exc).__name__}: {exc}); set OCI_CONFIG_FILE/"
                            f"OCI_CONFIG_PROFILE or IDP_OCI_AUTH=instance_principal|resource_principal|workload_identity") from exc


def bounded_retry_strategy():
    """A few quick retries for throttling and 5xx inside one step; the runbook retries the step itself."""
    return oci.retry.RetryStrategyBuilder(
        max_attempts_check=True, max_attempts=3,
        total_elapsed_time_check=True, total_elapsed_time_seconds=20,
        retry_max_wait_between_calls_seconds=4, retry_base_sleep_time_seconds=1,
        service_error_check=True, service_error_retry_on_any_5xx=True,
        service_error_retry_config={429: []},
        backoff_type=oci.retry.BACKOFF_FULL_JITTER_EQUAL_ON_THROTTLE_VALUE,
    ).get_retry_strategy()


def oci_client(cls, **kwargs):
    """A real SDK client from oci_auth(), with bounded retries and request timeouts."""
    config, signer = oci_auth()
    kwargs.setdefault("retry_strategy", bounded_retry_strategy())
    kwargs.setdefault("timeout", (5, 30))
    if signer is not None:
        kwargs["signer"] = signer
    try:
        return cls(config, **kwargs)
    except (oci.exceptions.ClientError, ValueError) as exc:
        raise ProviderError(f"cannot build {cls.__name__}: {exc}") from exc


def oci_error(exc: Exception, what: str) -> ProviderError:
    """Map an SDK exception to our errors: 429/5xx/timeouts are transient, the rest permanent."""
    if isinstance(exc, oci.exceptions.ServiceError):
        brief = f"{what}: OCI {exc.status} {exc.code}: {exc.message}"
        if exc.status == 429 or exc.status >= 500:
            return TransientProviderError(brief)
        if exc.status == 401:
            return ProviderError(f"{brief} (the OCI credentials were refused: check the key, fingerprint and user)")
        if exc.status == 404:
            return ProviderError(f"{brief} (missing, or the credentials are not allowed to see it)")
        return ProviderError(brief)
    if isinstance(exc, (oci.exceptions.ConnectTimeout, oci.exceptions.RequestException)):
        return Unreachable(f"{what}: OCI unreachable ({type(exc).__name__})")
    if type(exc).__name__ == "CircuitBreakerError":
        return TransientProviderError(f"{what}: OCI circuit breaker open after repeated failures")
    if isinstance(exc, oci.exceptions.ClientError):
        return ProviderError(f"{what}: {exc}")
    return ProviderError(f"{what}: {type(exc).__name__}: {exc}")


# -- names and values ------------------------------------------------------------------------------


def zone_for(host: str, zones: list[str]) -> str | None:
    """The longest configured zone that is the host or a parent of it."""
    host = norm_name(host)
    matches = [z for z in zones if host == z or host.endswith("." + z)]
    return max(matches, key=len) if matches else None


def parse_zones(raw: str) -> list[str]:
    return [norm_name(z) for z in raw.split(",") if z.strip()]


_PRIORITY_COND = re.compile(r"""^\s*answer\.(name|pool)\s*==\s*['"]([^'"]*)['"]\s*$""")


class OciDnsProvider(TrafficProviderBase):
    name = "oci-dns"

    def __init__(self, client, zones: list[str] | None = None, *, mode: str = "records",
                 compartment_id: str | None = None, view_id: str | None = None):
        if mode not in ("records", "steering"):
            raise ProviderError(f"IDP_OCI_DNS_MODE={mode!r}: expected records or steering")
        if mode == "steering" and not compartment_id:
            raise ProviderError("oci-dns steering mode needs IDP_OCI_COMPARTMENT (where the steering policies live)")
        self.client = client
        self.zones = [norm_name(z) for z in (zones or [])]
        self.mode = mode
        self.compartment_id = compartment_id
        self.scope = {"scope": "PRIVATE", "view_id": view_id} if view_id else {}
        self._found_zones: dict[str, str] = {}

    @classmethod
    def from_settings(cls):
        return cls(
            oci_client(oci.dns.DnsClient),
            parse_zones(os.environ.get("IDP_OCI_DNS_ZONES", "")),
            mode=(os.environ.get("IDP_OCI_DNS_MODE", "records").strip().lower() or "records"),
            compartment_id=os.environ.get("IDP_OCI_COMPARTMENT") or None,
            view_id=os.environ.get("IDP_OCI_DNS_VIEW") or None,
        )

    # -- the interface (TrafficProviderBase: switch reads, applies, reads back) -------------------------

    def _read(self, host: str) -> TrafficState:
        return self._steering_state(host) if self.mode == "steering" else self._records_state(host)

    def _apply(self, host: str, target: str, current: TrafficState) -> str:
        if self.mode == "steering":
            return self._steering_apply(host, target, current)
        return self._records_apply(host, target, current)

    def _settled(self, host: str, target: str, current: TrafficState) -> bool:
        if self.mode != "steering":
            return current.value == target
        policy, _ = current.raw
        answers = [a for a in policy.answers or [] if a.rtype in ANSWER_TYPES]
        chosen = self._chosen(host, target, policy)
        others_enabled = [a for a in answers if a not in chosen and not a.is_disabled]
        return current.value == target and not others_enabled and not any(a.is_disabled for a in chosen)

    def _serving(self, state: TrafficState) -> str | None:
        if state.detail.get("mode") != "steering":
            return None
        return f"steering policy {state.detail['steeringPolicyId']}"

    # -- records mode --------------------------------------------------------------------------

    def _zone(self, host: str) -> str:
        zone = zone_for(host, self.zones)
        if zone:
            return zone
        if self.zones:
            raise ProviderError(f"oci-dns: no zone in IDP_OCI_DNS_ZONES ({', '.join(self.zones)}) covers {host}")
        if host in self._found_zones:
            return self._found_zones[host]
        labels = host.split(".")
        for i in range(len(labels) - 1):  # longest first, never a bare TLD
            candidate = ".".join(labels[i:])
            try:
                self._api("read")
                self.client.get_zone(candidate, **self.scope)
            except oci.exceptions.ServiceError as exc:
                if exc.status == 404:
                    continue
                raise oci_error(exc, f"oci-dns: looking up zone {candidate}") from exc
            except Exception as exc:  # noqa: BLE001 - mapped
                raise oci_error(exc, f"oci-dns: looking up zone {candidate}") from exc
            self._found_zones[host] = candidate
            return candidate
        raise ProviderError(f"oci-dns: no OCI DNS zone found for {host} (set IDP_OCI_DNS_ZONES)")

    def _records(self, zone: str, host: str | None) -> list:
        """The records at `host` in `zone` (every page); host None: every record of the zone."""
        items, page = [], None
        try:
            while True:
                kwargs = {**({"domain": host} if host else {}), **self.scope}
                if page:
                    kwargs["page"] = page
                self._api("read")
                resp = self.client.get_zone_records(zone, **kwargs)
                items.extend(resp.data.items or [])
                page = resp.next_page
                if not page:
                    break
        except Exception as exc:  # noqa: BLE001 - mapped
            raise oci_error(exc, f"oci-dns: reading {host or 'the records'} in zone {zone}") from exc
        return [r for r in items if host is None or norm_name(r.domain) == host]

    def _records_state(self, host: str):
        zone = self._zone(host)
        return self._state_of(zone, host, self._records(zone, host))

    def _state_of(self, zone: str, host: str, at_name: list):
        records = [r for r in at_name if r.rtype in ANSWER_TYPES]
        if not records:
            raise ProviderError(f"oci-dns: no A/AAAA/CNAME record for {host} in zone {zone}")
        values = sorted({norm_value(r.rtype, r.rdata) for r in records})
        value = values[0] if len(values) == 1 else ",".join(values)
        detail = {"provider": self.name, "mode": "records", "zone": zone,
                  "rtype": ",".join(sorted({r.rtype for r in records})), "ttl": records[0].ttl,
                  "answers": [{"rtype": r.rtype, "rdata": r.rdata, "ttl": r.ttl} for r in records],
                  "otherTypes": sorted({r.rtype for r in at_name} - set(ANSWER_TYPES))}
        return TrafficState(host, value, detail, raw=(zone, records))

    @staticmethod
    def _operations(host: str, target: str, state: TrafficState) -> list:
        """REQUIRE (every answer read) + REMOVE (the old record set) + ADD (the new answer): one host's atomic swap."""
        zone, records = state.raw
        new_type = rtype_for(target)
        if new_type == "CNAME" and state.detail["otherTypes"]:
            raise ProviderError(f"oci-dns: cannot point {host} at the host name {target}: a CNAME cannot share the name with "
                                f"its {', '.join(state.detail['otherTypes'])} record(s); use an IP endpoint or move those records")
        m = oci.dns.models
        ops = [m.RecordOperation(operation="REQUIRE", domain=r.domain, rtype=r.rtype, rdata=r.rdata) for r in records]
        ops += [m.RecordOperation(operation="REMOVE", domain=host, rtype=t) for t in sorted({r.rtype for r in records})]
        rdata = target + "." if new_type == "CNAME" else target
        ops.append(m.RecordOperation(operation="ADD", domain=host, rtype=new_type, rdata=rdata, ttl=records[0].ttl))
        return ops

    def _patch(self, zone: str, ops: list) -> None:
        self._api("write")
        self.client.patch_zone_records(zone, oci.dns.models.PatchZoneRecordsDetails(items=ops), **self.scope)

    def _records_apply(self, host: str, target: str, state: TrafficState) -> str:
        zone, _ = state.raw
        ops = self._operations(host, target, state)
        try:
            self._patch(zone, ops)
        except oci.exceptions.ServiceError as exc:
            if exc.status in (409, 412):
                # The REQUIRE precondition failed: the record moved since we read it (or a retried
                # request already applied our change). Only the read-back can tell.
                after = self._records_state(host)
                if after.value != target:
                    raise ProviderError(f"oci-dns: {host} changed while switching (compare-and-swap refused: "
                                        f"expected {state.value}, now {after.value}); nothing overwritten") from exc
            else:
                raise oci_error(exc, f"oci-dns: switching {host} in zone {zone}") from exc
        except Exception as exc:  # noqa: BLE001 - mapped
            raise oci_error(exc, f"oci-dns: switching {host} in zone {zone}") from exc
        return f"in zone {zone} (atomic REQUIRE+REMOVE+ADD)"

    # -- switch_many (records mode: one PATCH per zone) -----------------------------------------

    def _zone_key(self, host: str) -> str:
        return host if self.mode == "steering" else self._zone(host)

    def _read_many(self, zone: str, hosts: list[str]) -> dict[str, TrafficState | ProviderError]:
        if self.mode == "steering" or len(hosts) <= PER_HOST_READS_UP_TO:
            return super()._read_many(zone, hosts)
        by_name: dict[str, list] = {h: [] for h in hosts}
        for record in self._records(zone, None):  # the whole zone, page by page: every type, for the CNAME check
            name = norm_name(record.domain)
            if name in by_name:
                by_name[name].append(record)
        out: dict[str, TrafficState | ProviderError] = {}
        for host in hosts:
            try:
                out[host] = self._state_of(zone, host, by_name[host])
            except ProviderError as exc:
                out[host] = exc
        return out

    def _apply_many(self, zone: str, changes: list[Change]) -> str:
        if self.mode == "steering":
            return super()._apply_many(zone, changes)
        ops: dict[str, list] = {}
        for change in changes:
            try:
                ops[change.host] = self._operations(change.host, change.target, change.before)
            except ProviderError as exc:
                change.error = exc
        pending = [c for c in changes if c.host in ops]
        chunks: list[list[Change]] = []
        size = 0
        for change in pending:  # a host's operations stay in one request: its swap is atomic
            if chunks and size + len(ops[change.host]) <= MAX_PATCH_OPERATIONS:
                chunks[-1].append(change)
                size += len(ops[change.host])
            else:
                chunks.append([change])
                size = len(ops[change.host])
        patches = 0
        for chunk in chunks:
            patches += self._patch_chunk(zone, chunk, ops)
        return f"in zone {zone} ({patches} atomic PATCH(es) of REQUIRE+REMOVE+ADD for {len(pending)} host(s))"

    def _patch_chunk(self, zone: str, chunk: list[Change], ops: dict[str, list]) -> int:
        """PATCH one chunk; when a REQUIRE is refused, report the hosts that moved and PATCH the others once more."""
        sent = 0
        for attempt in (1, 2):
            if not chunk:
                return sent
            try:
                sent += 1
                self._patch(zone, [op for c in chunk for op in ops[c.host]])
                return sent
            except oci.exceptions.ServiceError as exc:
                if exc.status not in (409, 412):
                    error = oci_error(exc, f"oci-dns: switching {len(chunk)} host(s) in zone {zone}")
                    for c in chunk:
                        c.error = error
                    return sent
                cause = exc
            except Exception as exc:  # noqa: BLE001 - mapped
                error = oci_error(exc, f"oci-dns: switching {len(chunk)} host(s) in zone {zone}")
                for c in chunk:
                    c.error = error
                return sent
            # A REQUIRE failed: some record moved since we read it (or a retried request already applied ours).
            now = self._read_many(zone, [c.host for c in chunk])
            unmoved = []
            for c in chunk:
                state = now[c.host]
                if isinstance(state, ProviderError):
                    c.error = state
                elif state.value == c.target:
                    continue  # already there: the read-back will say so
                elif self._answers(state) != self._answers(c.before) or attempt == 2:
                    c.error = ProviderError(f"oci-dns: {c.host} changed while switching (compare-and-swap refused: "
                                            f"expected {c.before.value}, now {state.value}); nothing overwritten")
                    c.error.__cause__ = cause
                else:
                    unmoved.append(c)
            chunk = unmoved
        return sent

    @staticmethod
    def _answers(state: TrafficState) -> set:
        return {(a["rtype"], a["rdata"]) for a in state.detail.get("answers", [])}

    # -- steering mode -------------------------------------------------------------------------

    def _steering_policy(self, host: str):
        try:
            self._api("read")
            resp = self.client.list_steering_policy_attachments(self.compartment_id, domain=host,
                                                                lifecycle_state="ACTIVE")
        except Exception as exc:  # noqa: BLE001 - mapped
            raise oci_error(exc, f"oci-dns: listing steering policy attachments for {host}") from exc
        attached = [a for a in resp.data if norm_name(a.domain_name) == host
                    and (not a.rtypes or set(a.rtypes) & set(ANSWER_TYPES))]
        policy_ids = sorted({a.steering_policy_id for a in attached})
        if not policy_ids:
            raise ProviderError(f"oci-dns: no steering policy attached to {host} in compartment {self.compartment_id}")
        if len(policy_ids) > 1:
            raise ProviderError(f"oci-dns: {len(policy_ids)} steering policies attached to {host}: {', '.join(policy_ids)}")
        try:
            self._api("read")
            got = self.client.get_steering_policy(policy_ids[0])
        except Exception as exc:  # noqa: BLE001 - mapped
            raise oci_error(exc, f"oci-dns: reading steering policy {policy_ids[0]}") from exc
        return got.data, got.headers.get("etag")

    @staticmethod
    def _rank(policy) -> dict[str, int]:
        """answer name -> priority value from the PRIORITY rule's default answer data (lower serves first)."""
        ranks: dict[str, int] = {}
        for rule in policy.rules or []:
            if getattr(rule, "rule_type", None) != "PRIORITY":
                continue
            for data in getattr(rule, "default_answer_data", None) or []:
                match = _PRIORITY_COND.match(data.answer_condition or "")
                if not match:
                    continue
                field, wanted = match.groups()
                for answer in policy.answers or []:
                    if getattr(answer, field) == wanted:
                        ranks.setdefault(answer.name, data.value if data.value is not None else 0)
        return ranks

    def _steering_state(self, host: str):
        policy, etag = self._steering_policy(host)
        answers = [a for a in policy.answers or [] if a.rtype in ANSWER_TYPES]
        enabled = [a for a in answers if not a.is_disabled]
        ranks = self._rank(policy)
        serving = enabled
        if len(enabled) > 1 and all(a.name in ranks for a in enabled):
            best = min(ranks[a.name] for a in enabled)
            serving = [a for a in enabled if ranks[a.name] == best]
        values = sorted({norm_value(a.rtype, a.rdata) for a in serving})
        value = None if not values else values[0] if len(values) == 1 else ",".join(values)
        detail = {"provider": self.name, "mode": "steering", "steeringPolicyId": policy.id,
                  "template": policy.template,
                  "answers": [{"name": a.name, "rtype": a.rtype, "rdata": a.rdata, "pool": a.pool,
                               "isDisabled": bool(a.is_disabled), "priority": ranks.get(a.name)} for a in answers]}
        return TrafficState(host, value, detail, raw=(policy, etag))

    @staticmethod
    def _chosen(host: str, target: str, policy) -> list:
        """The policy's answers for `target`; ProviderError when it has none."""
        answers = [a for a in policy.answers or [] if a.rtype in ANSWER_TYPES]
        chosen = [a for a in answers if norm_value(a.rtype, a.rdata) == target]
        if not chosen:
            raise ProviderError(f"oci-dns: steering policy {policy.id} for {host} has no answer {target} "
                                f"(answers: {', '.join(a.rdata for a in answers)})")
        return chosen

    def _steering_apply(self, host: str, target: str, state: TrafficState) -> str:
        policy, etag = state.raw
        chosen = self._chosen(host, target, policy)
        for answer in policy.answers or []:
            if answer.rtype in ANSWER_TYPES:
                answer.is_disabled = answer not in chosen
        details = oci.dns.models.UpdateSteeringPolicyDetails(
            display_name=policy.display_name, ttl=policy.ttl, health_check_monitor_id=policy.health_check_monitor_id,
            template=policy.template, freeform_tags=policy.freeform_tags, defined_tags=policy.defined_tags,
            answers=policy.answers, rules=policy.rules)
        kwargs = {"if_match": etag} if etag else {}
        try:
            self._api("write")
            self.client.update_steering_policy(policy.id, details, **kwargs)
        except oci.exceptions.ServiceError as exc:
            if exc.status in (409, 412):
                raise ProviderError(f"oci-dns: steering policy {policy.id} changed while switching {host} "
                                    f"(If-Match refused); nothing overwritten") from exc
            raise oci_error(exc, f"oci-dns: updating steering policy {policy.id}") from exc
        except Exception as exc:  # noqa: BLE001 - mapped
            raise oci_error(exc, f"oci-dns: updating steering policy {policy.id}") from exc
        return f"via steering policy {policy.id} (answer {chosen[0].name} enabled, others disabled)"
