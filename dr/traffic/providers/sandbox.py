"""Sandbox traffic provider: a DNS zone in the database. Its records start where the control plane
says the host is served (the cell's active side), as a real zone set up by the platform team would."""
from __future__ import annotations

from cells.models import Application, SandboxObject

from dr.errors import ProviderError
from dr.endpoints import endpoint_for
from dr.sandbox import consume_fault
from dr.models import SandboxTrafficRecord
from dr.traffic.base import SwitchResult, TrafficState


class SandboxTraffic:
    name = "sandbox"

    def __init__(self, plays: str = "sandbox"):
        self.plays = plays  # the provider name this sandbox stands in for (e.g. oci-dns)

    def _record(self, host: str) -> SandboxTrafficRecord:
        record = SandboxTrafficRecord.objects.filter(host=host).first()
        if record is not None:
            return record
        app = Application.objects.select_related("cell_env__placement").filter(public_host=host).first()
        if app is None:
            raise ProviderError(f"sandbox {self.plays}: no record for {host} in the sandbox zone")
        ce = app.cell_env
        record, _ = SandboxTrafficRecord.objects.get_or_create(host=host, defaults={"value": endpoint_for(ce, ce.active_side)})
        return record

    def current(self, host: str) -> TrafficState:
        consume_fault(host, "read")
        record = self._record(host)
        return TrafficState(host, record.value, {"provider": self.plays, "adapter": "sandbox"})

    def switch(self, host: str, to: str) -> SwitchResult:
        consume_fault(host, "switch")
        record = self._record(host)
        previous = record.value
        if previous == to:
            return SwitchResult(False, previous, to, f"sandbox {self.plays}: {host} already points at {to}")
        knob = SandboxObject.objects.filter(name=f"switch:{host}").first()
        if knob is not None and knob.fail_message == "no-effect":
            # The provider accepted the change but the answer did not move: verification must catch it.
            raise ProviderError(f"sandbox {self.plays}: switched {host} to {to} but it still answers {previous}")
        record.value = to
        record.save()
        return SwitchResult(True, previous, to, f"sandbox {self.plays}: {host} {previous} -> {to}, verified")
