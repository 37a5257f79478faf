"""Sandbox write fence: marks the sandbox database read-only under the new epoch."""
from __future__ import annotations

from dr.replication.sandbox import claim_name, database
from dr.sandbox import consume_fault


class SandboxFence:
    name = "sandbox"

    def __init__(self, plays: str = "sandbox"):
        self.plays = plays

    def fence(self, cell_env, side: str, epoch: int) -> dict:
        consume_fault(claim_name(cell_env, side), "fence")
        db = database(cell_env, side)
        already = not db.writable
        db.writable = False
        db.save()
        db.refresh_from_db()
        return {"adapter": "sandbox", "database": db.name, "readOnly": not db.writable, "alreadyFenced": already}
