"""Batched side effects for runs that move together (a wave of a region evacuation).

Outside a batch, a step delivers its compute change at once and switches its traffic itself. Inside one
(`collecting(batch)`), every delivery a step enqueues is held for the batch (not sent to a worker, not delivered
inline) and the traffic step queues its switch; the evacuation then makes one delivery (one GitOps commit) for every queued change and one
`switch_many` per traffic provider (which batches per DNS zone), and the runs' steps, run again, find their
change made: the evacuation writes what the batched switch did for each run into that run's switch step (so the
step finds it whichever worker process steps it next). A step run again after a crash simply makes its change
alone: every change is idempotent.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from cells import pipeline

from .errors import ProviderError, TransientProviderError
from .traffic.base import SwitchResult

SWITCHED = "batchSwitch"  # the key of a switch step's output that holds what the wave's switch did for it


@dataclass
class Batch:
    deliveries: list[int] = field(default_factory=list)  # Delivery ids waiting for the wave's commit
    switches: dict[str, dict[int, tuple[str, str]]] = field(default_factory=dict)  # provider -> run id -> (host, target)
    providers_read: set[str] = field(default_factory=set)  # traffic providers a precheck of the wave has read

    def take_deliveries(self) -> list[int]:
        out, self.deliveries = self.deliveries, []
        return out

    def take_switches(self) -> dict[str, dict[int, tuple[str, str]]]:
        out, self.switches = self.switches, {}
        return out


_current: ContextVar[Batch | None] = ContextVar("dr_batch", default=None)


@contextmanager
def collecting(batch: Batch):
    """Inside: every delivery a step enqueues is held for the batch (cells.pipeline.holding), traffic switches queue."""
    token = _current.set(batch)
    try:
        with pipeline.holding(batch.deliveries):
            yield batch
    finally:
        _current.reset(token)


def switch_result(output: dict) -> tuple[SwitchResult | ProviderError | None, datetime | None]:
    """What a batched switch did for a run and when, taken out of its switch step's `output` (None: not switched
    by a batch)."""
    done = output.pop(SWITCHED, None)
    if done is None:
        return None, None
    at = datetime.fromisoformat(done["at"]) if done.get("at") else None
    if "error" in done:
        return (TransientProviderError if done.get("transient") else ProviderError)(done["error"]), at
    return SwitchResult(done["changed"], done["previous"], done["current"], done["detail"]), at


def switched_output(result: SwitchResult | Exception, at: datetime) -> dict:
    """How `switch_result` finds `result` (made at `at`) in a step's output."""
    if isinstance(result, Exception):
        return {"error": str(result), "transient": isinstance(result, TransientProviderError), "at": at.isoformat()}
    return {"changed": result.changed, "previous": result.previous, "current": result.current, "detail": result.detail,
            "at": at.isoformat()}


def defer_switch(run_id: int, provider: str, host: str, target: str) -> bool:
    """Queue a traffic switch for the batch; False outside a batch (switch it now)."""
    batch = _current.get()
    if batch is None:
        return False
    batch.switches.setdefault(provider, {})[run_id] = (host, target)
    return True


def provider_read(provider: str) -> bool:
    """Inside a batch, whether a precheck already read `provider` (its credentials work): a wave reads each
    provider once instead of once per host, and the batched switch reads every zone back anyway."""
    batch = _current.get()
    return batch is not None and provider in batch.providers_read


def note_provider_read(provider: str) -> None:
    batch = _current.get()
    if batch is not None:
        batch.providers_read.add(provider)
