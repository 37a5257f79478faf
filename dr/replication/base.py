"""Replication probes and promoters: the data side of a failover."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass
class LagReading:
    seconds: float | None  # None: unknown (no recent datapoint, replication stopped) — never read as zero
    measured_at: datetime
    detail: dict = field(default_factory=dict)


class ReplicationProbe(Protocol):
    name: str

    def lag(self, cell_env, source_side: str, target_side: str) -> LagReading: ...


class Promoter(Protocol):
    name: str

    def promote(self, cell_env, side: str, epoch: int) -> dict:
        """Stop applying replication on `side` and make it writable under `epoch`. Idempotent."""

    def reprotect(self, cell_env, source_side: str, target_side: str) -> dict:
        """Replicate from the new writer `source_side` into `target_side` (the old primary). Idempotent."""
