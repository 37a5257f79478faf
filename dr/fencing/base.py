"""Write fences: make the old writer refuse writes before a new one takes them."""
from __future__ import annotations

from typing import Protocol


class Fence(Protocol):
    name: str

    def fence(self, cell_env, side: str, epoch: int) -> dict:
        """Make `side` read-only and read it back. Raises Unreachable when the side cannot be reached.
        Returns what was observed (e.g. the replication position at the fence). Idempotent."""
