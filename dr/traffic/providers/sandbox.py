"""Sandbox traffic provider: a DNS zone in the database. Its records start where the control plane
says the host is served (the cell's active side), as a real zone set up by the platform team would.

It counts its API calls as a real provider does (`calls`, `call_counts`, and `requests`: the kind and zone of
each call, as a DNS API's server would log them), so benchmarks on the sandbox report the DNS API calls a region
evacuation makes: `switch` is a read, a write and a read-back; `switch_many` is one read, ONE write and one
read-back per zone (a host's zone here is its parent domain: app.prod.example.com is in prod.example.com).
Its rate limit is `trafficProviders.sandbox.rateLimit` in the policy (none by default: its calls are database
rows, not a cloud's API).
"""
from __future__ import annotations

from django.utils import timezone

from cells.models import Application, SandboxObject

from dr.errors import ProviderError
from dr.endpoints import endpoint_for
from dr.sandbox import consume_fault, knobs_for
from dr.models import SandboxTrafficRecord
from dr.traffic.base import Change, SwitchResult, TrafficProviderBase, TrafficState, target_value

NO_EFFECT = "no-effect"  # a switch knob whose write does not take (the read-back must catch it)


def zone_of(host: str) -> str:
    """The sandbox zone of a host: its parent domain (the host itself when it has none)."""
    return host.partition(".")[2] or host


class SandboxTraffic(TrafficProviderBase):
    name = "sandbox"

    def __init__(self, plays: str = "sandbox"):
        self.plays = plays  # the provider name this sandbox stands in for (e.g. oci-dns)
        self.requests: list[tuple[str, str]] = []  # (kind, zone) of every call, in order

    @property
    def label(self) -> str:
        return f"sandbox {self.plays}"

    def _call(self, kind: str, zone: str) -> None:
        self._api(kind)
        self.requests.append((kind, zone))

    def current(self, host: str) -> TrafficState:
        consume_fault(host, "read")
        return super().current(host)

    def switch(self, host: str, to: str) -> SwitchResult:
        consume_fault(host, "switch")
        return super().switch(host, to)

    def _record(self, host: str, found: SandboxTrafficRecord | None = None) -> SandboxTrafficRecord:
        record = found or SandboxTrafficRecord.objects.filter(host=host).first()
        if record is not None:
            return record
        app = Application.objects.select_related("cell_env__placement").filter(public_host=host).first()
        if app is None:
            raise ProviderError(f"{self.label}: no record for {host} in the sandbox zone")
        ce = app.cell_env
        record, _ = SandboxTrafficRecord.objects.get_or_create(host=host, defaults={"value": endpoint_for(ce, ce.active_side)})
        return record

    def _state(self, host: str, record: SandboxTrafficRecord) -> TrafficState:
        return TrafficState(host, target_value(record.value), {"provider": self.plays, "adapter": "sandbox"}, raw=record)

    def _read(self, host: str) -> TrafficState:
        self._call("read", zone_of(host))
        return self._state(host, self._record(host))

    def _lands(self, host: str) -> bool:
        """Whether a write to the host takes: a "no-effect" drill keeps the old answer (the read-back must catch it)."""
        knob = SandboxObject.objects.filter(name=f"switch:{host}").first()
        return knob is None or knob.fail_message != NO_EFFECT

    def _apply(self, host: str, target: str, current: TrafficState) -> str:
        self._call("write", zone_of(host))
        record = current.raw
        if self._lands(host):
            record.value = target
        record.save()
        return ""

    # -- switch_many: one read, one write, one read-back per zone ---------------------------------

    def _zone_key(self, host: str) -> str:
        return zone_of(host)

    def _read_many(self, zone: str, hosts: list[str]) -> dict[str, TrafficState | ProviderError]:
        self._call("read", zone)
        found = {r.host: r for r in SandboxTrafficRecord.objects.filter(host__in=hosts)}
        knobs = knobs_for(hosts, "read")
        out: dict[str, TrafficState | ProviderError] = {}
        for host in hosts:
            try:
                consume_fault(host, "read", knobs[host])
                out[host] = self._state(host, self._record(host, found.get(host)))
            except ProviderError as exc:
                out[host] = exc
        return out

    def _apply_many(self, zone: str, changes: list[Change]) -> str:
        self._call("write", zone)
        records = []
        knobs = knobs_for([c.host for c in changes], "switch")
        for change in changes:
            try:
                consume_fault(change.host, "switch", knobs[change.host])
            except ProviderError as exc:
                change.error = exc
                continue
            record = change.before.raw
            if not any(k.name == f"switch:{change.host}" and k.fail_message == NO_EFFECT for k in knobs[change.host]):
                record.value = change.target
            record.updated_at = timezone.now()
            records.append(record)
        SandboxTrafficRecord.objects.bulk_update(records, ["value", "updated_at"])
        return f"(sandbox zone {zone}, 1 write for {len(changes)} host(s))"
