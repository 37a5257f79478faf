"""Sandbox data adapters: replication lag you can set, databases you can fence and promote, sides that fail."""
from __future__ import annotations

from django.utils import timezone

from cells.models import SandboxObject

from dr.models import SandboxDatabase
from dr.sandbox import consume_fault
from dr.replication.base import LagReading

DEFAULT_LAG_SECONDS = 0.8


def claim_name(cell_env, side: str) -> str:
    return f"{cell_env.cell.name}-{cell_env.environment}-mysql-{side}"


def database(cell_env, side: str) -> SandboxDatabase:
    """The sandbox database of a side, created as the cell's current roles say."""
    db, _ = SandboxDatabase.objects.get_or_create(
        name=claim_name(cell_env, side),
        defaults={"writable": side == cell_env.writer_side, "epoch": cell_env.side_epoch(side),
                  "replicating_from": "" if side == cell_env.writer_side else claim_name(cell_env, cell_env.writer_side)},
    )
    return db


class SandboxReplication:
    """Plays every replication tool (goldengate, mysql, backup) in the embedded default."""

    name = "sandbox"

    def __init__(self, plays: str = "sandbox"):
        self.plays = plays

    def lag(self, cell_env, source_side: str, target_side: str) -> LagReading:
        repl_name = f"{cell_env.cell.name}-{cell_env.environment}-replication"
        consume_fault(repl_name, "lag")
        source = database(cell_env, source_side)
        knob = SandboxObject.objects.filter(name=repl_name).first()
        configured = knob.lag_seconds if knob and knob.lag_seconds is not None else DEFAULT_LAG_SECONDS
        # A fenced source takes no new writes: the target catches up and the lag drains to zero.
        seconds = 0.0 if not source.writable else configured
        return LagReading(seconds, timezone.now(), {"adapter": "sandbox", "plays": self.plays, "sourceWritable": source.writable})

    def promote(self, cell_env, side: str, epoch: int) -> dict:
        consume_fault(claim_name(cell_env, side), "promote")
        db = database(cell_env, side)
        already = db.writable and db.epoch == epoch and not db.replicating_from
        db.writable, db.epoch, db.replicating_from = True, epoch, ""
        db.save()
        return {"adapter": "sandbox", "database": db.name, "writable": True, "epoch": epoch, "alreadyDone": already}

    def reprotect(self, cell_env, source_side: str, target_side: str) -> dict:
        consume_fault(claim_name(cell_env, target_side), "reprotect")
        db = database(cell_env, target_side)
        db.writable, db.replicating_from = False, claim_name(cell_env, source_side)
        db.save()
        return {"adapter": "sandbox", "database": db.name, "replicatingFrom": db.replicating_from}
