"""Sandbox traffic provider: a DNS zone in the database. Its records start where the control plane
says the host is served (the cell's active side), as a real zone set up by the platform team would."""
from __future__ import annotations

from cells.models import Application, SandboxObject

from dr.errors import ProviderError
from dr.endpoints import endpoint_for
from dr.sandbox import consume_fault
from dr.models import SandboxTrafficRecord
from dr.traffic.base import SwitchResult, TrafficProviderBase, TrafficState, target_value


class SandboxTraffic(TrafficProviderBase):
    name = "sandbox"

    def __init__(self, plays: str = "sandbox"):
        self.plays = plays  # the provider name this sandbox stands in for (e.g. oci-dns)

    @property
    def label(self) -> str:
        return f"sandbox {self.plays}"

    def current(self, host: str) -> TrafficState:
        consume_fault(host, "read")
        return super().current(host)

    def switch(self, host: str, to: str) -> SwitchResult:
        consume_fault(host, "switch")
        return super().switch(host, to)

    def _record(self, host: str) -> SandboxTrafficRecord:
        record = SandboxTrafficRecord.objects.filter(host=host).first()
        if record is not None:
            return record
        app = Application.objects.select_related("cell_env__placement").filter(public_host=host).first()
        if app is None:
            raise ProviderError(f"{self.label}: no record for {host} in the sandbox zone")
        ce = app.cell_env
        record, _ = SandboxTrafficRecord.objects.get_or_create(host=host, defaults={"value": endpoint_for(ce, ce.active_side)})
        return record

    def _read(self, host: str) -> TrafficState:
        record = self._record(host)
        return TrafficState(host, target_value(record.value), {"provider": self.plays, "adapter": "sandbox"}, raw=record)

    def _apply(self, host: str, target: str, current: TrafficState) -> str:
        record = current.raw
        knob = SandboxObject.objects.filter(name=f"switch:{host}").first()
        if knob is None or knob.fail_message != "no-effect":
            record.value = target
        # The zone takes the write; a "no-effect" drill keeps the old answer, and the read-back must catch it.
        record.save()
        return ""
